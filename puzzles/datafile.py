"""Shared on-disk format of the puzzle data sets: a compressed .npz with a checksum.

A data set file holds named integer arrays plus one ``metadata`` entry, a JSON string
with at least ``kind`` (``"sudoku"``, ``"cube"``), ``format_version`` and ``sha256``
(a digest of every array's name, dtype, shape and bytes). Files are written to a
temporary name and renamed, so an interrupted run never leaves a half-written data set
under the final name. Reading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .commands import describe_os_error, run_command  # noqa: F401  (describe_os_error: re-exported)

# Re-exported for the puzzle scripts, which write their files through the library's atomic
# writer (symsatnet.files). Importing any symsatnet module loads torch and the compiled ops,
# which the data commands (generate, convert) need not, so the three names are looked up on
# first use (PEP 562) and `import puzzles.sudoku` stays light.
_FROM_LIBRARY = ("PARTIAL_SUFFIX", "partial_name", "write_atomically")


def __getattr__(name: str) -> Any:
    if name in _FROM_LIBRARY:
        from symsatnet import files

        return getattr(files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FORMAT_VERSION = 1
METADATA_KEY = "metadata"


class DatasetError(ValueError):
    """A data set file is missing, unreadable, corrupt or inconsistent."""


class OutputError(ValueError):
    """An output path that must not be written: an existing file (without --force), a folder."""


@dataclass
class PuzzleDataset:
    """Puzzles and their solutions, one example per row, and the metadata of their file.

    The puzzle kinds subclass it with what they read off the arrays.
    """

    puzzles: np.ndarray
    solutions: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.puzzles)


def file_kind(path: str | os.PathLike) -> str:
    """What a file looks like from its first bytes, for messages: 'a NumPy .npy array',
    'a zip archive (.npz or torch file)', 'a text file', 'an empty file' or 'a binary file'."""
    with open(path, "rb") as stream:
        head = stream.read(512)
    if not head:
        return "an empty file"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (.npz or torch file)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(character.isprintable() or character in "\t\r\n" for character in text):
        return "a text file"
    return "a binary file"


def file_in_the_way(folder: str | os.PathLike) -> Path | None:
    """The file that keeps ``folder`` from being created (itself or an ancestor), or None."""
    for candidate in (Path(folder), *Path(folder).parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def check_output(path: str | os.PathLike, force: bool, option: str = "--out") -> Path:
    """``path`` as a Path if it may be written: a new file, or an existing one with ``force``.

    Raises OutputError naming the problem otherwise (an existing file, a folder), so a
    command never replaces a user's file (a checkpoint, a data set) unasked.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder, not a file name")
    blocking = file_in_the_way(path.parent)
    if blocking is not None:
        raise OutputError(f"{option} {path}: {blocking} is a file, not a folder")
    if path.exists() and not force:
        raise OutputError(f"{option} {path} already exists; use --force to replace it, or choose another name")
    return path


def array_checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over the arrays in name order; dtype and shape are part of the digest."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        header = f"{name}|{array.dtype.str}|{','.join(map(str, array.shape))}|"
        digest.update(header.encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> dict:
    """Write arrays and metadata (plus checksum and format version); returns the metadata written."""
    if METADATA_KEY in arrays:
        raise ValueError(f"{METADATA_KEY!r} is reserved for the metadata entry")
    full_metadata = dict(metadata)
    full_metadata["format_version"] = FORMAT_VERSION
    full_metadata["sha256"] = array_checksum(arrays)
    encoded = np.array(json.dumps(full_metadata, sort_keys=True))
    # Passing a stream keeps numpy from appending ".npz" to the chosen name.
    from symsatnet.files import write_atomically

    write_atomically(path, lambda stream: np.savez_compressed(stream, **{METADATA_KEY: encoded}, **arrays))
    return full_metadata


def load_npz(path: str | os.PathLike, kind: str, array_names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict]:
    """Read and checksum-verify a data set file of the given kind.

    Raises DatasetError for a missing file, a file that is not a readable .npz, missing
    entries, a different kind or format version, or a checksum mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such data set file")
    kind_found = file_kind(path)
    if not kind_found.startswith("a zip archive"):
        raise DatasetError(f"{path}: unreadable as a .npz data set (it is {kind_found})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in (METADATA_KEY, *array_names) if name not in archive.files]
            if missing:
                raise DatasetError(f"{path}: not a {kind} data set (missing entries: {', '.join(missing)})")
            metadata_text = archive[METADATA_KEY]
            arrays = {name: archive[name] for name in array_names}
    except DatasetError:
        raise
    except Exception as error:
        # A damaged zip can fail in many ways (BadZipFile, zlib.error, struct.error,
        # EOFError, ValueError from numpy's header parser...); all mean the same here.
        raise DatasetError(f"{path}: unreadable or truncated .npz file ({type(error).__name__}: {error})") from error
    metadata = _parse_metadata(path, metadata_text)
    if metadata.get("kind") != kind:
        raise DatasetError(f"{path}: expected a {kind} data set, found kind {metadata.get('kind')!r}")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: format version {metadata.get('format_version')!r} is not supported "
            f"(this code reads version {FORMAT_VERSION})"
        )
    expected = metadata.get("sha256")
    actual = array_checksum(arrays)
    if expected != actual:
        raise DatasetError(
            f"{path}: checksum mismatch (stored {expected}, computed {actual}); the file is corrupt or was modified"
        )
    return arrays, metadata


def _parse_metadata(path: Path, metadata_text: np.ndarray) -> dict:
    if metadata_text.shape != () or metadata_text.dtype.kind != "U":
        raise DatasetError(f"{path}: malformed metadata entry")
    try:
        metadata = json.loads(str(metadata_text))
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: metadata is not valid JSON ({error})") from error
    if not isinstance(metadata, dict):
        raise DatasetError(f"{path}: metadata is not a JSON object")
    return metadata


def require(condition: bool, path: str | os.PathLike, message: str) -> None:
    """Raise DatasetError(path: message) unless condition holds."""
    if not condition:
        raise DatasetError(f"{path}: {message}")


def describe_indices(indices: np.ndarray, limit: int = 5) -> str:
    """'3, 17, 40 (and 12 more)' for error messages."""
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    extra = len(indices) - limit
    return shown + (f" (and {extra} more)" if extra > 0 else "")


def run_data_command(arguments: Any, generate: Any, check: Any) -> int:
    """Run a puzzle CLI's ``generate`` or ``check`` command with the shared exit codes.

    A bad data file is a failed check (1); bad options are usage errors (2), as in
    argparse; Ctrl-C gives 130. The message is one line on stderr, never a traceback.
    """
    return run_command(
        lambda: generate(arguments) if arguments.command == "generate" else check(arguments),
        failures=(DatasetError,),
        usage_errors=(ValueError,),
        os_error_status=2,
        out_of_memory="not enough memory for a data set of this size; generate it in parts",
        interrupted="interrupted",
    )
