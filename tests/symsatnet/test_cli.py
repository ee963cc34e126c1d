"""The ``symsatnet discover`` command, driven through ``main([...])``."""

from __future__ import annotations

import json
import subprocess
import time
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from symsatnet import groups as G
from symsatnet.cli import main
from symsatnet.discovery import planted_matrix

GROUP = G.Product(G.Symmetric(3), G.Cyclic(4))


@pytest.fixture()
def planted() -> np.ndarray:
    matrix, _ = planted_matrix(GROUP, 0.01, rng=0)
    return matrix


def _full(problem: np.ndarray, aux: int = 0) -> np.ndarray:
    """A layer's full matrix: truth row 0, the problem block, then auxiliary rows."""
    n = problem.shape[0]
    rng = np.random.default_rng(1)
    full = rng.normal(size=(1 + n + aux, 1 + n + aux))
    full = full + full.T
    full[1 : 1 + n, 1 : 1 + n] = problem
    return full


def test_npy_prints_group_parameters_and_table(tmp_path: Path, planted, capsys) -> None:
    path = tmp_path / "matrix.npy"
    np.save(path, planted)
    assert main(["discover", str(path)]) == 0
    out = capsys.readouterr().out
    assert "group: Product(Symmetric(3), Cyclic(4))" in out
    assert "parameters: 6" in out
    assert "relative projection error" in out and "params" in out


def test_json_and_orbitals_file(tmp_path: Path, planted, capsys) -> None:
    path, orbitals = tmp_path / "matrix.npy", tmp_path / "orbitals.npy"
    np.save(path, planted)
    assert main(["discover", str(path), "--json", "--orbitals", str(orbitals), "--limit", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["group"] == "Product(Symmetric(3), Cyclic(4))"
    assert summary["num_parameters"] == 6 and summary["degree"] == 12
    assert 0 <= summary["error"] < 0.05
    assert len(summary["candidates"]) == 3
    saved = np.load(orbitals)
    assert saved.dtype == np.int64 and saved.shape == (12, 12)
    assert np.array_equal(saved, np.asarray(GROUP.orbitals()))


@pytest.mark.parametrize("key", ["weight", "C", "layer.matrix"])
def test_state_dict_uses_the_problem_block(tmp_path: Path, planted, key: str, capsys) -> None:
    path = tmp_path / "layer.pt"
    torch.save({key: torch.tensor(_full(planted)), "other": torch.zeros(3)}, path)
    assert main(["discover", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_parameters"] == 6 and summary["diagonal"] == "include"


def test_aux_rows_need_n_and_nested_checkpoints_work(tmp_path: Path, planted, capsys) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {"weight": torch.tensor(_full(planted, aux=4))}, "epoch": 3}, path)
    assert main(["discover", str(path), "--n", "12", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_parameters"] == 6


def test_full_npy_and_bare_tensor(tmp_path: Path, planted, capsys) -> None:
    npy, pt = tmp_path / "full.npy", tmp_path / "full.pt"
    np.save(npy, _full(planted))
    torch.save(torch.tensor(_full(planted)), pt)
    for argv in (["discover", str(npy), "--full", "--json"], ["discover", str(pt), "--json"]):
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out)["num_parameters"] == 6


def test_s_form_state_dict(tmp_path: Path, capsys) -> None:
    path = tmp_path / "satnet.pt"
    torch.save({"S": torch.randn(8, 5, dtype=torch.float64)}, path)
    assert main(["discover", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # C = S S^T: its diagonal |s_i|^2 never enters the solver and is left out.
    assert summary["degree"] == 7 and summary["diagonal"] == "ignore"


def test_graph_method(tmp_path: Path, capsys) -> None:
    pytest.importorskip("pynauty")
    matrix, order = planted_matrix(GROUP, 0.01, rng=2, shuffle=True)
    path = tmp_path / "shuffled.npy"
    np.save(path, matrix)
    assert main(["discover", str(path), "--method", "graph", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_parameters"] == 6


@pytest.mark.parametrize(
    "content, message",
    [
        (np.ones((3, 4)), "not a square matrix"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "non-finite"),
        (np.ones((1, 1)), "too small"),
        (np.ones(4), "not a square matrix"),
    ],
)
def test_bad_matrices_exit_1_with_a_message(tmp_path: Path, content, message: str, capsys) -> None:
    path = tmp_path / "bad.npy"
    np.save(path, content)
    assert main(["discover", str(path)]) == 1
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.err.startswith("symsatnet discover: error:")


@pytest.mark.parametrize(
    "name, write, message",
    [
        ("missing.npy", None, "no such file"),
        ("junk.npy", b"not numpy", "cannot read"),
        ("junk.pt", b"not torch", "cannot read"),
        ("matrix.txt", b"1 2\n3 4\n", "unsupported file type"),
        ("coeffs.pt", "coeffs", "holds no interaction matrix"),
        ("two.pt", "two", "several matrices"),
    ],
)
def test_unreadable_input_exits_1(tmp_path: Path, name: str, write, message: str, capsys) -> None:
    path = tmp_path / name
    if write == "coeffs":
        torch.save({"coeffs": torch.randn(6)}, path)
    elif write == "two":
        torch.save({"a.weight": torch.eye(4), "b.weight": torch.eye(5)}, path)
    elif write is not None:
        path.write_bytes(write)
    assert main(["discover", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_bad_n_and_key(tmp_path: Path, planted, capsys) -> None:
    path = tmp_path / "layer.pt"
    torch.save({"weight": torch.tensor(_full(planted))}, path)
    assert main(["discover", str(path), "--n", "40"]) == 1
    assert "does not fit" in capsys.readouterr().err
    assert main(["discover", str(path), "--key", "nope"]) == 1
    assert "no tensor named" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [[], ["discover"], ["discover", "x.npy", "--rtol", "-1"], ["discover", "x.npy", "--max-err", "abc"],
     ["discover", "x.npy", "--method", "magic"], ["discover", "x.npy", "--n", "0"], ["frobnicate"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_python_dash_m(tmp_path: Path, planted) -> None:
    path = tmp_path / "matrix.npy"
    np.save(path, planted)
    completed = subprocess.run([sys.executable, "-m", "symsatnet.cli", "discover", str(path), "--json"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["num_parameters"] == 6
    bad = tmp_path / "bad.npy"
    np.save(bad, np.ones((2, 3)))
    completed = subprocess.run([sys.executable, "-m", "symsatnet.cli", "discover", str(bad)],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr


def test_training_checkpoint_layout(tmp_path: Path, planted, capsys) -> None:
    # puzzles.train keeps the layer's state dict under "model_state", beside optimizer and RNG state.
    path = tmp_path / "checkpoint.pt"
    torch.save({"kind": "checkpoint", "model_state": {"weight": torch.tensor(_full(planted))},
                "optimizer_state": {"state": {}}, "epoch": 10}, path)
    assert main(["discover", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_parameters"] == 6


def test_very_large_matrices_are_refused_at_once(tmp_path: Path, capsys) -> None:
    # Issue 24: a 5000 x 5000 matrix ran 588 s (5.9 GB) without a word; now a one-line
    # refusal before any work, and --max-degree lifts the guard.
    path = tmp_path / "big.npy"
    np.save(path, np.eye(60))
    started = time.perf_counter()
    assert main(["discover", str(path), "--max-degree", "50"]) == 1
    assert "at most max_degree=50 variables, got 60" in capsys.readouterr().err
    assert time.perf_counter() - started < 5
    assert main(["discover", str(path), "--max-degree", "60", "--json"]) == 0
    from symsatnet.discovery import DISCOVER_MAX_DEGREE, discover

    with pytest.raises(ValueError, match=f"at most max_degree={DISCOVER_MAX_DEGREE} variables"):
        discover(np.eye(DISCOVER_MAX_DEGREE + 1))
