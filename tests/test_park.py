"""make park / make unpark: the resumable state of a run survives a new checkout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"
RUN_FILES = ("checkpoint.pt", "settings.json", "data.npz", "log.csv", "log.jsonl", "run.log")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(MAKEFILE), *arguments], cwd=cwd, capture_output=True, text=True
    )


def test_park_then_unpark_restores_every_file(tmp_path):
    run = tmp_path / "runs" / "long"
    run.mkdir(parents=True)
    for index, name in enumerate(RUN_FILES):
        (run / name).write_bytes(bytes([index]) * (index + 1))
    (run / "scratch.tmp").write_text("not needed to resume")

    result = make(tmp_path, "park", "RUNS=long")
    assert result.returncode == 0, result.stderr
    parked = tmp_path / "docs" / "results" / "parked" / "long"
    assert sorted(p.name for p in parked.iterdir()) == sorted(RUN_FILES)

    shutil.rmtree(tmp_path / "runs")
    result = make(tmp_path, "unpark")
    assert result.returncode == 0 and "unparked runs/long" in result.stdout
    for index, name in enumerate(RUN_FILES):
        assert (run / name).read_bytes() == bytes([index]) * (index + 1)

    # An existing run folder is never overwritten.
    (run / "checkpoint.pt").write_bytes(b"newer")
    result = make(tmp_path, "unpark")
    assert result.returncode == 0 and "left as it is" in result.stdout
    assert (run / "checkpoint.pt").read_bytes() == b"newer"


def test_park_refuses_a_run_without_checkpoint_and_a_missing_name(tmp_path):
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    result = make(tmp_path, "park", "RUNS=empty")
    assert result.returncode != 0 and "runs/empty has no checkpoint.pt" in result.stdout
    assert not (tmp_path / "docs").exists()
    result = make(tmp_path, "park")
    assert result.returncode != 0 and "usage" in result.stdout
