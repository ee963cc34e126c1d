"""Visual Sudoku boards: the given cells shown as handwritten digit images.

Every given cell gets an image of its digit drawn from one pool (the train or the test
pool of :mod:`.digits`); within one board no image repeats, across boards images repeat.
Blank cells hold a blank (all-zero) image and are known from ``given``, as published.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from puzzles.datafile import DatasetError

from .digits import DIGITS, DigitImages


@dataclass
class VisualBoards:
    """Boards as the visual model sees them.

    Attributes:
        images: (count, 81, h, w) float32, the digit image of every given cell, zeros elsewhere.
        given: (count, 81) bool, the given cells.
        solutions: (count, 81) int64 digits 1..9 of the solved boards (the training labels).
        image_index: (count, 81) int64, which pool image each given cell shows (-1: blank).
    """

    images: np.ndarray
    given: np.ndarray
    solutions: np.ndarray
    image_index: np.ndarray

    def __len__(self) -> int:
        return len(self.given)

    def subset(self, indices: np.ndarray) -> "VisualBoards":
        return VisualBoards(self.images[indices], self.given[indices], self.solutions[indices],
                            self.image_index[indices])


def render_boards(puzzles: np.ndarray, solutions: np.ndarray, pool: DigitImages, seed: int) -> VisualBoards:
    """Draw an image of ``pool`` for every given cell of ``puzzles`` (count, 9, 9), 0 = blank.

    DatasetError when a digit's pool holds fewer images than a board has givens of it.
    """
    count = len(puzzles)
    flat_puzzles = np.asarray(puzzles).reshape(count, -1).astype(np.int64)
    flat_solutions = np.asarray(solutions).reshape(count, -1).astype(np.int64)
    if flat_puzzles.shape[1] != 81:
        raise DatasetError(f"visual Sudoku is 9x9, got boards of {flat_puzzles.shape[1]} cells")
    given = flat_puzzles > 0
    _check_pool(flat_puzzles, pool)
    members = {int(digit): np.flatnonzero(pool.digits == digit) for digit in DIGITS}
    rng = np.random.default_rng([seed, 22])
    image_index = np.full(flat_puzzles.shape, -1, dtype=np.int64)
    for board in range(count):
        for digit, choices in members.items():
            cells = np.flatnonzero(flat_puzzles[board] == digit)
            if len(cells):
                image_index[board, cells] = rng.choice(choices, size=len(cells), replace=False)
    side = pool.images.shape[-1]
    images = np.zeros((count, 81, side, side), dtype=np.float32)
    images[given] = pool.images[image_index[given]]
    return VisualBoards(images, given, flat_solutions, image_index)


def _check_pool(flat_puzzles: np.ndarray, pool: DigitImages) -> None:
    sizes = pool.pool_sizes()
    for digit in DIGITS:
        most = int((flat_puzzles == digit).sum(axis=1).max(initial=0))
        if sizes[int(digit)] < most:
            raise DatasetError(
                f"the image pool holds {sizes[int(digit)]} images of digit {digit}, but a board shows it "
                f"{most} times (images do not repeat within a board); use more digit images or a smaller "
                f"test fraction")
