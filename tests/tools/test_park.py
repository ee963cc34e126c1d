"""make park / make unpark: the resumable state of a run survives a new checkout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
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
    assert sorted(p.name for p in parked.iterdir()) == sorted(RUN_FILES + ("manifest.json",))

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


def test_unpark_with_nothing_parked_says_so(tmp_path):
    result = make(tmp_path, "unpark")
    assert result.returncode == 0 and "nothing parked in docs/results/parked" in result.stdout
    assert not (tmp_path / "runs").exists()


def test_park_refuses_a_run_without_checkpoint_and_a_missing_name(tmp_path):
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    result = make(tmp_path, "park", "RUNS=empty")
    assert result.returncode != 0 and "runs/empty has no checkpoint.pt" in result.stderr
    assert not (tmp_path / "docs").exists()
    result = make(tmp_path, "park")
    assert result.returncode != 0 and "usage" in result.stdout


def _parked_run(tmp_path: Path, checkpoint: bytes, part_bytes: int) -> Path:
    run = tmp_path / "runs" / "big"
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(checkpoint)
    (run / "log.csv").write_text("epoch\n1\n")
    result = make(tmp_path, "park", "RUNS=big", f"PART_BYTES={part_bytes}")
    assert result.returncode == 0, result.stderr
    assert "checkpoint.pt in 4 parts" in result.stdout
    shutil.rmtree(tmp_path / "runs")
    return tmp_path / "docs" / "results" / "parked" / "big"


def test_a_file_over_the_part_size_is_split_and_rebuilt_exactly(tmp_path):
    checkpoint = bytes(range(256)) * 39 + b"tail"  # 9988 bytes: 3 full parts of 3000 and one of 988
    parked = _parked_run(tmp_path, checkpoint, part_bytes=3000)
    sizes = {p.name: p.stat().st_size for p in parked.iterdir()}
    assert "checkpoint.pt" not in sizes
    assert [sizes[f"checkpoint.pt.part{i:03d}"] for i in range(4)] == [3000, 3000, 3000, 988]
    assert sizes["log.csv"] == len("epoch\n1\n")

    result = make(tmp_path, "unpark")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runs" / "big" / "checkpoint.pt").read_bytes() == checkpoint
    assert (tmp_path / "runs" / "big" / "log.csv").read_text() == "epoch\n1\n"


@pytest.mark.parametrize("damage", ["flip a byte", "drop a part"])
def test_a_damaged_parked_run_is_refused_and_runs_stays_untouched(tmp_path, damage):
    parked = _parked_run(tmp_path, bytes(range(256)) * 39, part_bytes=3000)
    part = parked / "checkpoint.pt.part002"
    if damage == "flip a byte":
        data = bytearray(part.read_bytes())
        data[17] ^= 1
        part.write_bytes(bytes(data))
        expected = "do not match the manifest"
    else:
        part.unlink()
        expected = "part 3 of 4"
    result = make(tmp_path, "unpark")
    assert result.returncode != 0
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs" / "big").exists()
