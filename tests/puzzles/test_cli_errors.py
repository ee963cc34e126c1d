"""Every command line answers bad input with one line naming the problem and a non-zero exit.

Table-driven over the cases of issue 24 (each gave a raw traceback, numpy's or torch's
advice to load a file unsafely, or silence): the mains run in-process, as a user runs them.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from puzzles import evaluate as evaluate_cli
from puzzles import plot as plot_cli
from puzzles import train as train_cli
from puzzles.cube import cli as cube_cli
from puzzles.sudoku import cli as sudoku_cli
from symsatnet import cli as symsatnet_cli

TINY = ["sudoku", "--box", "2", "--count", "60", "--batch", "10", "--threads", "1", "--no-progress",
        "--model", "symsatnet"]
MAINS: dict[str, Callable] = {
    "train": train_cli.main, "evaluate": evaluate_cli.main, "plot": plot_cli.main,
    "sudoku": sudoku_cli.main, "cube": cube_cli.main, "symsatnet": symsatnet_cli.main,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished one-epoch 4x4 run (checkpoint, data, logs)."""
    out = tmp_path_factory.mktemp("errors") / "run"
    assert train_cli.main([*TINY, "--epochs", "1", "--out", str(out)]) == 0
    return out


def _nan_checkpoint(run: Path, work: Path) -> str:
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    name = next(key for key, value in checkpoint["model_state"].items() if value.is_floating_point())
    checkpoint["model_state"][name][...] = float("nan")
    path = work / "nan" / "checkpoint.pt"
    path.parent.mkdir()
    torch.save(checkpoint, path)
    shutil.copy(run / "data.npz", path.parent / "data.npz")
    return str(path)


def _pickled_checkpoint(work: Path) -> str:
    path = work / "object.pt"
    torch.save({"kind": "symsatnet-train-checkpoint", "object": Path("x")}, path)
    return str(path)


def _text(work: Path, name: str) -> str:
    (work / name).write_text("hello\n1 2 3\n")
    return str(work / name)


def _npz_as(work: Path, name: str) -> str:
    np.savez(work / "matrix.npz", C=np.eye(3))
    os.replace(work / "matrix.npz", work / name)
    return str(work / name)


# (name, command, arguments from (run folder, scratch folder), words the message must hold)
CASES = [
    ("train --out a file", "train", lambda r, w: [*TINY, "--out", str(r / "log.csv")], "is a file, not a folder"),
    ("train --out under a file", "train", lambda r, w: [*TINY, "--out", str(r / "log.csv" / "x")], "log.csv is a file, not a folder"),
    ("seed beyond 64 bits", "train", lambda r, w: [*TINY, "--seed", str(2**64), "--out", str(w / "s")], "below 2**64"),
    ("impossible --aux", "train", lambda r, w: [*TINY, "--aux", "100000000", "--out", str(w / "a")], "GiB"),
    ("resume NaN weights", "train",
     lambda r, w: [*TINY, "--resume", "--epochs", "2", "--out", str(Path(_nan_checkpoint(r, w)).parent)], "NaN"),
    ("resume a finished run", "train", lambda r, w: [*TINY, "--resume", "--epochs", "1", "--out", str(r)], "is finished"),
    ("resume asking fewer epochs", "train",
     lambda r, w: [*TINY, "--resume", "--epochs", "0", "--out", str(r)], "has trained more"),
    ("cube --box 7", "train", lambda r, w: ["cube", "--box", "7", "--model", "symsatnet", "--out", str(w / "c")],
     "--box applies to the sudoku task"),
    ("auto option on another model", "train",
     lambda r, w: [*TINY, "--auto-epochs", "3", "--out", str(w / "x")], "applies to --model symsatnet-auto"),
    ("evaluate NaN weights", "evaluate", lambda r, w: [_nan_checkpoint(r, w), str(r / "data.npz")], "NaN"),
    ("evaluate a text checkpoint", "evaluate", lambda r, w: [_text(w, "c.pt"), str(r / "data.npz")], "text file"),
    ("evaluate a pickled checkpoint", "evaluate", lambda r, w: [_pickled_checkpoint(w), str(r / "data.npz")],
     "not loaded, for safety"),
    ("evaluate a .npy renamed .npz", "evaluate",
     lambda r, w: [str(r / "checkpoint.pt"), str(_npy_as(w, "d.npz"))], ".npy"),
    ("evaluate seed beyond 64 bits", "evaluate",
     lambda r, w: [str(r / "checkpoint.pt"), str(r / "data.npz"), "--seed", str(2**70)], "--seed"),
    ("generate --hard --max-attempts 0", "sudoku",
     lambda r, w: ["generate", "--count", "2", "--box", "2", "--hard", "--max-attempts", "0", "--out", str(w / "g.npz")],
     "max attempts"),
    ("--givens-mean nan", "sudoku",
     lambda r, w: ["generate", "--count", "2", "--box", "2", "--givens-mean", "nan", "--out", str(w / "g.npz")],
     "finite"),
    ("generate --out under a file", "sudoku",
     lambda r, w: ["generate", "--count", "2", "--box", "2", "--quiet", "--out", str(r / "log.csv" / "g.npz")],
     "log.csv is a file, not a folder"),
    ("check a text file", "sudoku", lambda r, w: ["check", _text(w, "t.npz")], "text file"),
    ("cube check a text file", "cube", lambda r, w: ["check", _text(w, "t.npz")], "text file"),
    ("plot --out x.txt", "plot", lambda r, w: [str(r), "--out", str(w / "x.txt")], "cannot draw .txt"),
    ("discover a .npz renamed .npy", "symsatnet", lambda r, w: ["discover", _npz_as(w, "m.npy")], ".npz"),
    ("discover a text .npy", "symsatnet", lambda r, w: ["discover", _text(w, "m.npy")], "text file"),
    ("discover a pickled .pt", "symsatnet", lambda r, w: ["discover", _pickled_checkpoint(w)], "for safety"),
]


def _npy_as(work: Path, name: str) -> Path:
    np.save(work / "array.npy", np.zeros((2, 4, 4), np.int8))
    os.replace(work / "array.npy", work / name)
    return work / name


@pytest.mark.parametrize("name, command, arguments, expected", CASES, ids=[case[0] for case in CASES])
def test_bad_input_gives_one_line_and_a_failure_status(run_dir, tmp_path, capsys, name, command, arguments, expected):
    argv = arguments(run_dir, tmp_path)
    capsys.readouterr()
    code = MAINS[command](argv)
    err = capsys.readouterr().err
    assert code != 0, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0], lines[0]
    assert "weights_only" not in err and "allow_pickle" not in err


def test_a_full_disk_is_one_line(run_dir, tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "full" / "checkpoint.pt"))

    monkeypatch.setattr(torch, "save", full)
    code = train_cli.main([*TINY, "--epochs", "1", "--out", str(tmp_path / "full")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [f"symsatnet-train: error: {tmp_path / 'full' / 'checkpoint.pt'}: No space left on device"]
    assert not [path for path in (tmp_path / "full").iterdir() if path.name.endswith(".partial")]


@pytest.mark.parametrize("resume", [False, True])
def test_a_read_only_folder_is_one_line(run_dir, tmp_path, capsys, monkeypatch, resume):
    out = tmp_path / "ro"
    if resume:
        shutil.copytree(run_dir, out)
    from puzzles.training import folder

    def refused(path, *args, **kwargs):  # what a read-only folder answers (root ignores chmod)
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(folder.os, "open", refused)
    options = ["--resume", "--epochs", "2"] if resume else ["--epochs", "1"]
    code = train_cli.main([*TINY, *options, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "Permission denied" in err


def test_epochs_zero_is_refused(tmp_path, capsys):
    assert train_cli.main([*TINY, "--epochs", "0", "--out", str(tmp_path / "z")]) == 2
    error = capsys.readouterr().err.strip()
    assert "--epochs 0 trains nothing" in error and "puzzles.sudoku generate" in error and "\n" not in error
    assert not (tmp_path / "z").exists()
