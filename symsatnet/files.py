"""Writing a file so that an interrupted or failed write never leaves half of it.

The data is written to a hidden temporary file beside the target and renamed over it
only once it is whole (a rename within one folder is atomic). Shared by the ``symsatnet``
command line and the puzzle scripts (data sets, checkpoints, logs).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Callable

__all__ = ["PARTIAL_SUFFIX", "partial_name", "write_atomically"]

#: Ending of the temporary files, so a cleanup can recognise an interrupted write's leftovers.
PARTIAL_SUFFIX = ".partial"


def partial_name(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process and call.

    Hidden, so it does not clutter listings; with the pid and a random part, so two writers
    of the same file (two runs in one folder, two ranks) never share a temporary file.
    """
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")


def write_atomically(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], Any],
    durable: bool = False,
    keep_previous: str | os.PathLike | None = None,
    *,
    make_folder: bool = True,
) -> None:
    """Call ``write(stream)`` on a temporary file beside ``path``, then rename it to ``path``.

    An interrupted or failed write leaves ``path`` as it was and removes the temporary
    file. The name is used exactly as given (unlike ``np.save``, no ending is added).

    Args:
        path: the file to write.
        write: called with the open binary stream; writes the content.
        durable: also flush the data to disk before the rename (checkpoints).
        keep_previous: where the file being replaced moves, once the new one is whole.
        make_folder: create the missing folders above ``path``; False lets a missing
            folder fail with ``FileNotFoundError``.
    """
    path = Path(path)
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its 0600 mode would carry over to the written file.
    temporary = partial_name(path)
    try:
        with open(temporary, "xb") as stream:
            write(stream)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
