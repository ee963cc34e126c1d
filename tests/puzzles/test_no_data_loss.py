"""No command replaces or loses a user's file unasked (issue 24's six silent data-loss cases).

Each test runs the command line in-process as a user would and checks the file afterwards:
the refusal must leave the bytes as they were, and --force must be the way to replace them.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from puzzles import evaluate as evaluate_cli
from puzzles import train as train_cli
from puzzles.cube import cli as cube_cli
from puzzles.sudoku import cli as sudoku_cli
from symsatnet import cli as symsatnet_cli

TINY = ["sudoku", "--box", "2", "--count", "60", "--batch", "10", "--threads", "1", "--no-progress",
        "--model", "symsatnet"]


def train(out: Path, *options: str, epochs: int = 1) -> int:
    return train_cli.main([*TINY, "--epochs", str(epochs), "--out", str(out), *options])


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if "seconds" not in k} for line in lines]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    assert train(out) == 0
    return out


def test_evaluate_refuses_to_overwrite_predictions(finished_run, tmp_path, capsys):
    checkpoint, data = finished_run / "checkpoint.pt", finished_run / "data.npz"
    before = data.read_bytes()
    # Case 1: --predictions naming the data set (or the checkpoint) destroyed it.
    assert evaluate_cli.main([str(checkpoint), str(data), "--predictions", str(data)]) == 1
    assert "already exists" in error_line(capsys) and data.read_bytes() == before
    target = tmp_path / "predictions.npy"
    target.write_bytes(b"mine")
    assert evaluate_cli.main([str(checkpoint), str(data), "--predictions", str(target)]) == 1
    assert target.read_bytes() == b"mine"
    capsys.readouterr()
    assert evaluate_cli.main([str(checkpoint), str(data), "--predictions", str(target), "--force"]) == 0
    assert np.load(target).shape == (60, 4, 4)


def test_discover_orbitals_never_replaces_the_input_and_writes_the_path_given(tmp_path, capsys):
    matrix = tmp_path / "M.npy"
    np.save(matrix, np.eye(4) + 1.0)
    before = matrix.read_bytes()
    # Case 2: --orbitals M.npy overwrote the input matrix.
    assert symsatnet_cli.main(["discover", str(matrix), "--orbitals", str(matrix)]) == 1
    assert "already exists" in error_line(capsys) and matrix.read_bytes() == before
    # ... and --orbitals X wrote X.npy while saying "written to X".
    plain = tmp_path / "orbits"
    assert symsatnet_cli.main(["discover", str(matrix), "--orbitals", str(plain)]) == 0
    assert plain.is_file() and not (tmp_path / "orbits.npy").exists()
    assert f"written to {plain}" in capsys.readouterr().out
    assert np.load(plain).shape == (4, 4)
    assert symsatnet_cli.main(["discover", str(matrix), "--orbitals", str(plain), "--force"]) == 0


def test_a_second_training_into_a_locked_folder_fails_at_once(finished_run, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    # Case 3: two trainings into one --out both started and clobbered each other. The lock
    # is an flock on DIR/.lock; holding it here stands for a training still running.
    with open(out / ".lock", "w") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert train(out) == 1
        assert "in use by another training" in error_line(capsys)
        assert train(out, "--force") == 1
        assert not (out / "checkpoint.pt").exists() and not (out / "data.npz").exists()
    # Once the holder is gone (closed, or killed: the kernel drops an flock), training starts.
    capsys.readouterr()
    assert train(out) == 0
    # And a finished training leaves the folder unlocked for the next --resume.
    assert train(out, "--resume", epochs=2) == 0


def test_training_never_replaces_a_foreign_data_set(tmp_path, capsys):
    out = tmp_path / "mine"
    # Case 4: a data.npz of the user's in the run folder was replaced by generated data.
    assert sudoku_cli.main(["generate", "--count", "7", "--box", "2", "--seed", "3", "--quiet",
                            "--out", str(out / "data.npz")]) == 0
    before = (out / "data.npz").read_bytes()
    capsys.readouterr()
    assert train(out) == 1
    assert "is not this run's generated data" in error_line(capsys)
    assert (out / "data.npz").read_bytes() == before
    assert train(out, "--force") == 0 and (out / "data.npz").read_bytes() != before


@pytest.mark.parametrize("cli, options", [
    (sudoku_cli, ["--count", "3", "--box", "2", "--seed", "1"]),
    (cube_cli, ["--count", "2", "--seed", "1"]),
])
def test_generate_refuses_an_existing_out(tmp_path, capsys, cli, options):
    target = tmp_path / "data.npz"
    target.write_bytes(b"precious")
    # Case 5: generate --out EXISTING overwrote it.
    assert cli.main(["generate", *options, "--quiet", "--out", str(target)]) != 0
    assert "already exists" in error_line(capsys) and target.read_bytes() == b"precious"
    assert cli.main(["generate", *options, "--quiet", "--out", str(target), "--force"]) == 0
    assert target.read_bytes()[:2] == b"PK"


def test_orphans_are_removed_and_a_damaged_checkpoint_falls_back_to_the_previous(tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(straight, epochs=3) == 0
    assert train(resumed, epochs=2) == 0
    # Case 6: a kill during the checkpoint write left an orphan that nothing removed, and
    # only one checkpoint was kept.
    orphan = resumed / ".checkpoint.pt.4242.partial"
    orphan.write_bytes(b"\0" * 1000)
    previous = resumed / "checkpoint.prev.pt"
    assert previous.is_file()
    assert torch.load(previous, weights_only=True)["epoch"] == 1
    checkpoint = resumed / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:500])  # damaged
    capsys.readouterr()
    assert train(resumed, "--resume", epochs=3) == 0
    out = capsys.readouterr().out
    assert "resuming from the previous checkpoint" in out and "removed 1 temporary file" in out
    assert not orphan.exists()
    assert not [path.name for path in resumed.iterdir() if path.name.endswith(".partial")]
    # Epoch 2 is trained again from epoch 1's checkpoint: the same run as without the damage.
    assert rows(resumed) == rows(straight)


def test_partial_names_are_unique_per_write(tmp_path):
    from puzzles.datafile import partial_name

    names = {partial_name(tmp_path / "log.csv") for _ in range(100)}
    assert len(names) == 100
    assert all(name.name.startswith(".log.csv.") and str(os.getpid()) in name.name for name in names)
