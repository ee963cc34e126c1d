"""tools/pathway_gradients.py: the significance of a SoftSymSATNet's pathway gradients."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

TOOL = Path(__file__).resolve().parents[2] / "tools" / "pathway_gradients.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("pathway_gradients", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_significance_tells_a_planted_mean_from_noise(tool):
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(400, 1000, generator=generator, dtype=torch.float64)
    z = tool.significance(noise)
    assert z.max() < tool.noise_maximum(1000) + 1.5  # about 3.5 for 1000 draws
    planted = noise.clone()
    planted[:, 7] += 0.5  # half a standard deviation on every batch: |mean| / error about 10
    z = tool.significance(planted)
    assert z.argmax() == 7 and z[7] > 6
    constant = torch.ones(5, 3, dtype=torch.float64)
    assert tool.significance(constant).eq(0).all()  # no spread: reported as 0, not inf or nan
    with pytest.raises(ValueError, match="batches >= 2"):
        tool.significance(noise[:1])


def test_report_on_a_soft_checkpoint_and_clear_errors(tool, tmp_path, capsys):
    from puzzles import train as train_cli

    run = tmp_path / "run"
    assert train_cli.main(["sudoku", "--box", "2", "--count", "60", "--epochs", "1", "--threads", "1", "--no-progress",
                           "--model", "symsatnet-soft", "--soft-groups", "digits,rows", "--out", str(run)]) == 0
    capsys.readouterr()
    assert tool.main([str(run / "checkpoint.pt"), str(run / "data.npz"), "--batches", "5", "--batch", "8",
                      "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["pathway"] for row in rows] == ["digits (problem block)", "rows (problem block)",
                                                "digits (truth row)", "rows (truth row)"]
    assert all(row["coefficients"] > 0 and row["largest"] >= 0 and 0 <= row["above_3"] <= 1 for row in rows)
    assert {row["batches"] for row in rows} == {5}
    # Disjoint batches only: 60 examples hold 7 batches of 8, not 20.
    assert tool.main([str(run / "checkpoint.pt"), str(run / "data.npz"), "--batches", "20", "--batch", "8",
                      "--json"]) == 0
    assert {json.loads(line)["batches"] for line in capsys.readouterr().out.splitlines()} == {7}
    # The checkpoint is only read: its pathways stay closed and at 0.
    state = torch.load(run / "checkpoint.pt", weights_only=False)["model_state"]
    assert all(not value.any() for key, value in state.items() if key.startswith(("paths.", "truth_paths.")))

    plain = tmp_path / "plain"
    assert train_cli.main(["sudoku", "--box", "2", "--count", "60", "--epochs", "1", "--threads", "1", "--no-progress",
                           "--model", "symsatnet", "--out", str(plain)]) == 0
    capsys.readouterr()
    assert tool.main([str(plain / "checkpoint.pt"), str(plain / "data.npz")]) == 1
    assert "not a SoftSymSATNet" in capsys.readouterr().err
    assert tool.main([str(run / "checkpoint.pt"), str(run / "data.npz"), "--batches", "1"]) == 1
    assert "--batches must be >= 2" in capsys.readouterr().err
