"""Sudoku files in the formats people hold: text lines, Kaggle-style CSV, SATNet tensors.

* ``text``: one board a line, written row by row (81 characters for 9x9, 16 for 4x4, 256
  for 16x16; '0' or '.' blank; 16x16 digits 1-9 then A-G), optionally followed by its
  solution after a space, tab, ',', ';', ':' or '|'. Blank lines and '#' lines are skipped.
* ``csv``: a header naming a puzzle column (``quizzes``, ``quiz``, ``puzzle`` or
  ``puzzles``) and optionally a solution column (``solutions`` or ``solution``), as in
  Kaggle's ``sudoku.csv`` (``quizzes,solutions``, '0' blank).
* ``satnet``: the one-hot tensors of SATNet's Sudoku data (``torch.save`` files):
  ``features.pt``, shape (count, side, side, side) with an all-zero digit vector for a
  blank cell, and ``labels.pt``, the solutions in the same layout. (count, side**2, side)
  and (count, side**3) are read too.

Reading gives puzzles and, where the file has them, solutions; ``import_dataset`` solves
the rest with the exact solver and refuses puzzles with no or several solutions, naming
their lines. Writing goes through a temporary name, so a failed export leaves nothing half
written.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .. import datafile
from ..datafile import DatasetError, check_output, describe_indices, file_kind
from .dataset import SudokuDataset
from .rules import respects_givens, valid_boards

FORMATS = ("text", "csv", "satnet")
SYMBOLS = "123456789ABCDEFG"
SIDES = (4, 9, 16)
PUZZLE_COLUMNS = ("quizzes", "quiz", "puzzle", "puzzles")
SOLUTION_COLUMNS = ("solutions", "solution")
SATNET_FEATURES, SATNET_LABELS = "features.pt", "labels.pt"
TEXT_SEPARATORS = re.compile(r"[\s,;:|]+")
# Character code -> cell value: digits and A-G (either case) map to 1..16, '0' and '.' to
# blank (0), anything else to -1 (not a board character).
_VALUES = np.full(256, -1, dtype=np.int16)
_VALUES[[ord("0"), ord(".")]] = 0
for _value, _symbol in enumerate(SYMBOLS, start=1):
    _VALUES[ord(_symbol)] = _VALUES[ord(_symbol.lower())] = _value


class PuzzleFormatError(DatasetError):
    """A file or line that is not a board in the format it claims (names file and line)."""


@dataclass
class PuzzleFile:
    """Boards read from a file: puzzles, solutions (an all-zero board where the file has
    none) and where each came from, for messages: its line (text, CSV) or example (SATNet)."""

    puzzles: np.ndarray
    solutions: np.ndarray
    source: Path
    numbers: np.ndarray
    unit: str = "line"
    format: str = "text"

    def where(self, indices: Sequence[int]) -> str:
        """'FILE, line 7' or 'FILE, lines 3, 8, 9 (and 4 more)' for messages."""
        plural = "s" if len(indices) > 1 else ""
        return f"{self.source}, {self.unit}{plural} {describe_indices(self.numbers[np.asarray(indices)])}"


# ---------------------------------------------------------------- boards as text


def parse_boards(texts: Sequence[str], where: Callable[[int], str]) -> np.ndarray:
    """Board strings of one size -> (count, side, side) int8; ``where(i)`` names text i in errors."""
    if not texts:
        return np.zeros((0, 9, 9), dtype=np.int8)
    lengths = np.fromiter((len(text) for text in texts), dtype=np.int64, count=len(texts))
    wrong_size = ~np.isin(lengths, [side * side for side in SIDES])
    problems = np.flatnonzero(wrong_size | (lengths != lengths[0]))
    if len(problems):  # the first one in the file
        index, length = problems[0], lengths[problems[0]]
        if wrong_size[index]:
            raise PuzzleFormatError(f"{where(index)}: {length} characters; a 4x4, 9x9 or 16x16 board has 16, 81 or 256")
        side, first = int(round(length**0.5)), int(round(lengths[0] ** 0.5))
        raise PuzzleFormatError(f"{where(index)}: a {side}x{side} board among {first}x{first} ones")
    side = int(round(lengths[0] ** 0.5))
    try:
        codes = np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint8).reshape(len(texts), side * side)
    except UnicodeEncodeError:
        index = next(i for i, text in enumerate(texts) if not text.isascii())
        position = next(p for p, symbol in enumerate(texts[index]) if not symbol.isascii())
        raise PuzzleFormatError(_bad_character(where(index), texts[index][position], position, side)) from None
    values = _VALUES[codes]
    bad = (values < 0) | (values > side)
    if bad.any():
        index, position = np.argwhere(bad)[0]
        raise PuzzleFormatError(_bad_character(where(index), texts[index][position], position, side))
    return values.astype(np.int8).reshape(len(texts), side, side)


def _bad_character(where: str, symbol: str, position: int, side: int) -> str:
    return (f"{where}: character {symbol!r} at position {position + 1} is not a digit 1..{side} "
            f"of a {side}x{side} board, '0' or '.'")


def parse_puzzle(text: str, where: str = "puzzle") -> np.ndarray:
    """One line ('0' or '.' blank) -> (side, side) int8 board."""
    return parse_boards([text.strip()], lambda _: where)[0]


def format_board(board: np.ndarray, blank: str = ".") -> str:
    """A board on one line, row by row, ``blank`` for an empty cell."""
    return "".join(blank if value == 0 else SYMBOLS[value - 1] for value in np.asarray(board).ravel())


# ---------------------------------------------------------------- detecting and reading


def detect_format(path: str | os.PathLike) -> str:
    """'npz' (our own data set), 'text', 'csv' or 'satnet', from the path and the first bytes."""
    path = Path(path)
    if path.is_dir():
        return "satnet"
    if not path.is_file():
        raise PuzzleFormatError(f"{path}: no such file or folder")
    kind = file_kind(path)
    if kind == "a binary file" and _head(path, 3) == "\ufeff".encode():
        kind = "a text file"  # a byte-order mark (Windows editors write one) is not printable
    if kind.startswith("a zip archive"):
        return "satnet" if path.suffix == ".pt" or _is_torch_archive(path) else "npz"
    if kind == "a binary file" and path.suffix == ".pt":
        return "satnet"  # torch.save's legacy (non-zip) format
    if kind != "a text file":
        raise PuzzleFormatError(f"{path}: not a Sudoku file of a known format (it is {kind})")
    if path.suffix.lower() == ".csv":
        return "csv"
    first = _first_line(path)
    header = [name.strip().lower() for name in first.split(",")]
    return "csv" if len(header) > 1 and any(name in PUZZLE_COLUMNS for name in header) else "text"


def _head(path: Path, size: int) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(size)


def _is_torch_archive(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace") as stream:
        for line in stream:
            if line.strip() and not line.lstrip().startswith("#"):
                return line.strip()
    return ""


def read_puzzle_file(path: str | os.PathLike, format: Optional[str] = None) -> PuzzleFile:
    """Puzzles (and the solutions the file holds) of a text, CSV or SATNet file; ``format``
    None detects it. Raises PuzzleFormatError naming the file and line of any problem."""
    path = Path(path)
    format = format or detect_format(path)
    if format == "npz":
        raise PuzzleFormatError(f"{path}: already a .npz data set; nothing to import")
    if format not in FORMATS:
        raise PuzzleFormatError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "satnet":
        return _read_satnet(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not a board character
    except UnicodeDecodeError as error:
        raise PuzzleFormatError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    except IsADirectoryError:
        raise PuzzleFormatError(f"{path}: a folder; --format {format} reads a file") from None
    rows = _text_rows(path, text) if format == "text" else _csv_rows(path, text)
    if not rows:
        raise PuzzleFormatError(f"{path}: no puzzles in the file")
    numbers = np.array([number for number, _, _ in rows])
    puzzles = parse_boards([puzzle for _, puzzle, _ in rows], lambda index: f"{path}, line {numbers[index]}")
    solutions = np.zeros_like(puzzles)
    solved = [index for index, (_, _, solution) in enumerate(rows) if solution]
    if solved:
        solutions[solved] = parse_boards([rows[index][2] for index in solved],
                                         lambda index: f"{path}, line {numbers[solved[index]]}")
    return PuzzleFile(puzzles, solutions, path, numbers, "line", format)


def _text_rows(path: Path, text: str) -> list[tuple[int, str, str]]:
    """(line number, puzzle, solution or '') for each board line."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = TEXT_SEPARATORS.split(line)
        if len(fields) > 2:
            raise PuzzleFormatError(f"{path}, line {number}: {len(fields)} fields; expected a board, optionally "
                                    f"followed by its solution after a space, ',', ';', ':' or '|'")
        rows.append((number, fields[0], fields[1] if len(fields) == 2 else ""))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[int, str, str]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    names = [name.strip().lower() for name in header or []]
    puzzle_column = next((names.index(name) for name in PUZZLE_COLUMNS if name in names), None)
    if puzzle_column is None:
        raise PuzzleFormatError(f"{path}, line 1: a CSV header needs a puzzle column "
                                f"({', '.join(PUZZLE_COLUMNS)}), found {','.join(header or []) or 'nothing'}")
    solution_column = next((names.index(name) for name in SOLUTION_COLUMNS if name in names), None)
    rows = []
    for fields in reader:
        if not any(field.strip() for field in fields):
            continue
        number = reader.line_num
        if len(fields) != len(names):
            raise PuzzleFormatError(f"{path}, line {number}: {len(fields)} fields, the header has {len(names)}")
        solution = fields[solution_column].strip() if solution_column is not None else ""
        rows.append((number, fields[puzzle_column].strip(), solution))
    return rows


def _satnet_paths(path: Path) -> tuple[Path, Path]:
    """(features file, labels file) of a SATNet folder or features file."""
    if path.is_dir():
        return path / SATNET_FEATURES, path / SATNET_LABELS
    labels_name = path.name.replace("features", "labels") if "features" in path.name else SATNET_LABELS
    return path, path.with_name(labels_name)


def _load_tensor(path: Path) -> np.ndarray:
    import torch

    if not path.is_file():
        raise PuzzleFormatError(f"{path}: no such file (a SATNet data folder holds {SATNET_FEATURES} "
                                f"and {SATNET_LABELS})")
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file; never retried unsafely
        raise PuzzleFormatError(f"{path}: unreadable as a tensor file saved by torch.save "
                                f"({type(error).__name__})") from None
    if not isinstance(value, torch.Tensor):
        raise PuzzleFormatError(f"{path}: holds a {type(value).__name__}, not a tensor")
    return value.detach().numpy()


def _one_hot_boards(array: np.ndarray, path: Path, blanks: bool) -> np.ndarray:
    """(count, side, side, side), (count, side**2, side) or (count, side**3) one-hot -> boards."""
    count = len(array) if array.ndim else 0
    side = next((side for side in SIDES if array.size == count * side**3), None)
    if array.ndim < 2 or side is None or array.shape[-1] not in (side, side**3):
        raise PuzzleFormatError(f"{path}: shape {tuple(array.shape)} is not one-hot Sudoku boards "
                                f"(count, side, side, side) for side 4, 9 or 16")
    cells = array.reshape(count, side * side, side)
    not_binary = ~((cells == 0) | (cells == 1)).all(axis=2)
    per_cell = cells.sum(axis=2)
    bad = not_binary | (per_cell > 1) | (False if blanks else per_cell == 0)
    if bad.any():
        example, cell = np.argwhere(bad)[0]
        wanted = "zeros or a single one" if blanks else "a single one"
        raise PuzzleFormatError(f"{path}, example {example + 1}: cell (row {cell // side + 1}, column "
                                f"{cell % side + 1}) has digit entries {cells[example, cell].tolist()}, not {wanted}")
    values = np.where(per_cell == 1, cells.argmax(axis=2) + 1, 0)
    return values.astype(np.int8).reshape(count, side, side)


def _read_satnet(path: Path) -> PuzzleFile:
    features_path, labels_path = _satnet_paths(path)
    puzzles = _one_hot_boards(_load_tensor(features_path), features_path, blanks=True)
    if labels_path.exists():
        solutions = _one_hot_boards(_load_tensor(labels_path), labels_path, blanks=False)
        if solutions.shape != puzzles.shape:
            raise PuzzleFormatError(f"{labels_path}: {len(solutions)} boards of side {solutions.shape[-1]}, "
                                    f"{features_path} has {len(puzzles)} of side {puzzles.shape[-1]}")
    else:
        solutions = np.zeros_like(puzzles)
    return PuzzleFile(puzzles, solutions, features_path, np.arange(1, len(puzzles) + 1), "example", "satnet")


# ---------------------------------------------------------------- importing


def check_given_solutions(read: PuzzleFile) -> None:
    """Refuse given solutions that break the rules or disagree with their puzzle's givens."""
    given = np.flatnonzero(read.solutions.any(axis=(1, 2)))
    broken = given[~valid_boards(read.solutions[given])]
    if len(broken):
        raise PuzzleFormatError(f"{read.where(broken)}: the solution breaks the Sudoku rules")
    disagreeing = given[~respects_givens(read.solutions[given], read.puzzles[given])]
    if len(disagreeing):
        raise PuzzleFormatError(f"{read.where(disagreeing)}: the solution changes a given digit")


def solve_missing(read: PuzzleFile, progress: bool = False) -> int:
    """Fill in, with the exact solver, every solution the file lacks; returns how many.

    A puzzle with no solution or more than one is refused, named by its line."""
    from tqdm import tqdm

    from .solver import count_solutions, solve

    missing = np.flatnonzero(~read.solutions.any(axis=(1, 2)))
    counts = np.zeros(len(missing), dtype=np.int64)
    for position, index in enumerate(tqdm(missing, disable=not progress, unit="puzzle", desc="solving")):
        counts[position] = count_solutions(read.puzzles[index], 2)
        if counts[position] == 1:
            read.solutions[index] = solve(read.puzzles[index])
    for count, problem in ((0, "has no solution"), (2, "has more than one solution")):
        failed = missing[counts == count]
        if len(failed):
            raise PuzzleFormatError(f"{read.where(failed)}: the puzzle {problem}")
    return len(missing)


def import_dataset(path: str | os.PathLike, format: Optional[str] = None, progress: bool = False,
                   box: Optional[int] = None) -> SudokuDataset:
    """A data set from a text, CSV or SATNet file: given solutions are checked, missing ones
    solved (unique solutions only). Raises PuzzleFormatError naming the line of a problem, or,
    with ``box``, saying that the boards have another size (before any solving)."""
    read = read_puzzle_file(path, format)
    side = read.puzzles.shape[-1]
    if box is not None and side != box * box:
        raise PuzzleFormatError(f"{path}: holds {side}x{side} Sudoku, not {box * box}x{box * box}")
    check_given_solutions(read)
    solved = solve_missing(read, progress)  # the solver's answers obey the rules: no second check
    metadata = {"source": str(path), "source_format": read.format, "solved_on_import": solved}
    return SudokuDataset(read.puzzles, read.solutions, metadata)


# ---------------------------------------------------------------- exporting


def format_of_output(path: str | os.PathLike, format: Optional[str]) -> str:
    """The export format: ``format`` if given, else from the suffix (.txt, .csv, none or .pt: satnet)."""
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    by_suffix = {".txt": "text", ".csv": "csv", "": "satnet"}
    if suffix not in by_suffix:
        raise ValueError(f"cannot tell the format from {path}; give --format {'|'.join(FORMATS)}")
    return by_suffix[suffix]


def export_dataset(dataset: SudokuDataset, path: str | os.PathLike, format: str,
                   force: bool = False, solutions: bool = True) -> list[Path]:
    """Write the data set as text, CSV or a SATNet folder; returns the files written.

    Existing files are refused without ``force``; every file goes through a temporary name.
    ``solutions`` False writes text lines without the solution (the SATNet and CSV formats
    always carry them)."""
    path = Path(path)
    if format == "satnet":
        return _export_satnet(dataset, path, force)
    check_output(path, force)
    blank = "." if format == "text" else "0"
    puzzles = [format_board(board, blank) for board in dataset.puzzles]
    answers = [format_board(board, blank) for board in dataset.solutions]
    if format == "csv":
        lines = ["quizzes,solutions", *(f"{p},{s}" for p, s in zip(puzzles, answers))]
    elif format == "text":
        lines = [f"{p} {s}" for p, s in zip(puzzles, answers)] if solutions else puzzles
    else:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    content = ("\n".join(lines) + "\n").encode("ascii")
    datafile.write_atomically(path, lambda stream: stream.write(content))
    return [path]


def _export_satnet(dataset: SudokuDataset, folder: Path, force: bool) -> list[Path]:
    import torch

    from .encoding import board_to_bits

    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file; the satnet format writes a folder "
                         f"({SATNET_FEATURES}, {SATNET_LABELS})")
    targets = [folder / SATNET_FEATURES, folder / SATNET_LABELS]
    for target in targets:
        check_output(target, force)
    shape = (len(dataset), dataset.side, dataset.side, dataset.side)
    tensors = [torch.from_numpy(board_to_bits(boards).reshape(shape)) for boards in (dataset.puzzles, dataset.solutions)]
    if folder.exists():
        for target, tensor in zip(targets, tensors):
            datafile.write_atomically(target, lambda stream, tensor=tensor: torch.save(tensor, stream))
        return targets
    # A new folder appears whole or not at all: both files go into a hidden one, renamed at the end.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        staging.mkdir()
        for target, tensor in zip(targets, tensors):
            torch.save(tensor, staging / target.name)
        os.rename(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return targets


__all__ = [
    "FORMATS",
    "PuzzleFile",
    "PuzzleFormatError",
    "detect_format",
    "export_dataset",
    "format_board",
    "format_of_output",
    "import_dataset",
    "parse_boards",
    "parse_puzzle",
    "read_puzzle_file",
]
