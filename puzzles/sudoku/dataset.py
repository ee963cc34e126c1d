"""Sudoku data sets: the in-memory value, saving, verified loading and full checking."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..datafile import DatasetError, PuzzleDataset, describe_indices, load_npz, require, save_npz
from .rules import box_of_side, respects_givens, valid_boards

ARRAY_NAMES = ("puzzles", "solutions")


class SudokuDataset(PuzzleDataset):
    """Puzzles and their solutions, int8 arrays of shape (count, side, side), 0 = blank."""

    @property
    def side(self) -> int:
        return self.puzzles.shape[-1]

    @property
    def box(self) -> int:
        return box_of_side(self.side)

    @property
    def givens(self) -> np.ndarray:
        """Number of givens of each puzzle."""
        return np.count_nonzero(self.puzzles, axis=(1, 2))


def save_dataset(path: str | os.PathLike, dataset: SudokuDataset) -> dict:
    """Write dataset to path (.npz) after checking its consistency; returns the stored metadata."""
    problems = consistency_problems(dataset.puzzles, dataset.solutions)
    if problems:
        raise ValueError("refusing to save an inconsistent data set: " + "; ".join(problems))
    metadata = dict(dataset.metadata, kind="sudoku", box=dataset.box, count=len(dataset))
    arrays = {"puzzles": dataset.puzzles.astype(np.int8), "solutions": dataset.solutions.astype(np.int8)}
    stored = save_npz(path, arrays, metadata)
    dataset.metadata = stored
    return stored


def load_dataset(path: str | os.PathLike, verify: bool = True) -> SudokuDataset:
    """Load a data set written by save_dataset.

    Always checks the file's integrity (readable, checksum, shapes and dtypes agree with
    the metadata). With verify (the default) also checks that every solution obeys the
    rules and agrees with its puzzle's givens. Raises DatasetError on any failure.
    """
    arrays, metadata = load_npz(path, "sudoku", ARRAY_NAMES)
    puzzles, solutions = arrays["puzzles"], arrays["solutions"]
    for name, array in arrays.items():
        require(array.dtype == np.int8, path, f"{name} must be int8, found {array.dtype}")
        require(
            array.ndim == 3 and array.shape[1] == array.shape[2],
            path,
            f"{name} must have shape (count, side, side), found {array.shape}",
        )
    same_shape = puzzles.shape == solutions.shape
    require(same_shape, path, f"puzzles {puzzles.shape} and solutions {solutions.shape} differ in shape")
    box = metadata.get("box")
    box_ok = isinstance(box, int) and puzzles.shape[1] == box * box
    require(box_ok, path, f"board side {puzzles.shape[1]} does not match box size {box!r}")
    count = metadata.get("count")
    require(count == len(puzzles), path, f"metadata count {count!r} but {len(puzzles)} puzzles stored")
    if verify:
        problems = consistency_problems(puzzles, solutions)
        require(not problems, path, "; ".join(problems))
    return SudokuDataset(puzzles, solutions, metadata)


def consistency_problems(puzzles: np.ndarray, solutions: np.ndarray) -> list[str]:
    """Why (puzzles, solutions) is not a consistent data set; [] if it is. Uniqueness is not checked."""
    if puzzles.shape != solutions.shape or puzzles.ndim != 3:
        return [f"puzzles {puzzles.shape} and solutions {solutions.shape} must both have shape (count, side, side)"]
    side = puzzles.shape[-1]
    problems = []
    bad_values = np.flatnonzero(((puzzles < 0) | (puzzles > side)).any(axis=(1, 2)))
    if len(bad_values):
        problems.append(f"puzzles with values outside 0..{side}: {describe_indices(bad_values)}")
    invalid = np.flatnonzero(~valid_boards(solutions))
    if len(invalid):
        problems.append(f"solutions breaking the rules: {describe_indices(invalid)}")
    disagreeing = np.flatnonzero(~respects_givens(solutions, puzzles))
    if len(disagreeing):
        problems.append(f"puzzles whose givens disagree with their solution: {describe_indices(disagreeing)}")
    return problems


@dataclass
class CheckReport:
    """Outcome of check_dataset: indices of puzzles failing each test."""

    count: int
    problems: list[str]
    no_solution: np.ndarray
    multiple_solutions: np.ndarray

    @property
    def ok(self) -> bool:
        return not self.problems and not len(self.no_solution) and not len(self.multiple_solutions)


def check_dataset(dataset: SudokuDataset, progress: bool = False) -> CheckReport:
    """Check rules, givens and uniqueness of every puzzle with the exact solver."""
    from tqdm import tqdm

    from .solver import count_solutions

    problems = consistency_problems(dataset.puzzles, dataset.solutions)
    counts = np.array(
        [
            count_solutions(puzzle, 2)
            for puzzle in tqdm(dataset.puzzles, disable=not progress, unit="puzzle", desc="uniqueness")
        ],
        dtype=np.int64,
    )
    return CheckReport(
        count=len(dataset),
        problems=problems,
        no_solution=np.flatnonzero(counts == 0),
        multiple_solutions=np.flatnonzero(counts >= 2),
    )


__all__ = [
    "CheckReport",
    "DatasetError",
    "SudokuDataset",
    "check_dataset",
    "consistency_problems",
    "load_dataset",
    "save_dataset",
]
