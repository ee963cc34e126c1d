"""The train and test boards of a visual Sudoku run (made again from the seed, never stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from puzzles.datafile import DatasetError
from puzzles.sudoku import generate_dataset

from .boards import VisualBoards, render_boards
from .digits import DigitImages, load_digit_images, split_pools


@dataclass
class VisualData:
    train: VisualBoards
    test: VisualBoards
    train_pool: DigitImages
    test_pool: DigitImages


def make_data(train_count: int, test_count: int, seed: int, digits: Optional[str] = None,
              test_fraction: float = 0.3) -> VisualData:
    """Generated 9x9 puzzles (~36 givens), train boards drawn from the train image pool and
    test boards from the disjoint test pool."""
    if train_count < 1 or test_count < 1:
        raise DatasetError(f"need at least one train and one test board, got {train_count} and {test_count}")
    images = load_digit_images(digits)
    train_pool, test_pool = split_pools(images, test_fraction, seed)
    puzzles = generate_dataset(train_count + test_count, box=3, seed=seed)
    train = render_boards(puzzles.puzzles[:train_count], puzzles.solutions[:train_count], train_pool, seed)
    test = render_boards(puzzles.puzzles[train_count:], puzzles.solutions[train_count:], test_pool, seed + 1)
    return VisualData(train, test, train_pool, test_pool)
