"""The run folder: one training at a time, and no leftovers of an interrupted one.

Two trainings writing into the same folder would interleave their checkpoints, logs and
data set, so a run holds an advisory lock on ``DIR/.lock`` (``fcntl.flock``: the kernel
drops it when the process dies, even by ``kill -9``, so a stale lock never blocks a
``--resume``). While the lock is held no other writer of ours is active in the folder, so
any temporary ``.*.partial`` file found there is an orphan of a killed run and is removed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from puzzles.datafile import PARTIAL_SUFFIX

from .settings import TrainingError

LOCK_NAME = ".lock"


class FolderLock:
    """An exclusive advisory lock on a run folder, taken at once or refused (TrainingError)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._descriptor: Optional[int] = None

    def acquire(self) -> None:
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 64).decode(errors="replace").strip() or "another process"
            os.close(descriptor)
            raise TrainingError(
                f"{self.folder} is in use by another training (pid {holder}); wait for it to end, "
                f"or give another --out"
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        # The holder's pid, for the message above; the lock itself is what counts.
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing the descriptor drops the flock
            self._descriptor = None


def remove_orphans(folder: Path) -> list[str]:
    """Delete temporary files left by killed writers (call with the folder's lock held)."""
    removed = []
    for path in folder.glob(f".*{PARTIAL_SUFFIX}"):
        if path.is_file():
            path.unlink()
            removed.append(path.name)
    return sorted(removed)
