"""One-hot encoding of Sudoku boards for SATNet layers.

Variable (row r, column c, digit d) with d = value - 1 is bit (r*side + c)*side + d
(docs/design.md, "Index conventions"), so a side x side board becomes side**3 bits. A blank cell encodes as
all zeros. Every function accepts a single board or any leading batch shape.
"""

from __future__ import annotations

import numpy as np

from .rules import box_of_side


def bit_index(row: int, column: int, value: int, side: int) -> int:
    """Index of the bit saying 'cell (row, column) holds value' (value 1..side, rows from 0)."""
    if not (0 <= row < side and 0 <= column < side and 1 <= value <= side):
        raise ValueError(f"(row {row}, column {column}, value {value}) is outside a {side}x{side} board")
    return (row * side + column) * side + value - 1


def _side_of_boards(boards: np.ndarray) -> int:
    if boards.ndim < 2 or boards.shape[-1] != boards.shape[-2]:
        raise ValueError(f"boards must have shape (..., side, side), got {boards.shape}")
    side = boards.shape[-1]
    box_of_side(side)
    return side


def board_to_bits(boards: np.ndarray, dtype: np.dtype = np.float32) -> np.ndarray:
    """(..., side, side) boards with 0 = blank -> (..., side**3) one-hot bits."""
    boards = np.asarray(boards)
    side = _side_of_boards(boards)
    if ((boards < 0) | (boards > side)).any():
        raise ValueError(f"board values must lie in 0..{side}")
    one_hot = boards[..., None] == np.arange(1, side + 1)
    return one_hot.reshape(*boards.shape[:-2], side**3).astype(dtype)


def is_input_mask(puzzles: np.ndarray) -> np.ndarray:
    """(..., side, side) puzzles -> (..., side**3) bool, True on every bit of a given cell."""
    puzzles = np.asarray(puzzles)
    side = _side_of_boards(puzzles)
    given = np.repeat((puzzles != 0)[..., None], side, axis=-1)
    return given.reshape(*puzzles.shape[:-2], side**3)


def bits_to_board(bits: np.ndarray) -> np.ndarray:
    """(..., side**3) bits or probabilities -> (..., side, side) int8 board.

    Each cell takes its most probable digit (ties go to the smaller digit), so the
    result is always a complete board; use the rule checker to judge it.
    """
    bits = np.asarray(bits)
    length = bits.shape[-1]
    side = int(round(length ** (1 / 3)))
    if side**3 != length:
        raise ValueError(f"last dimension {length} is not side**3 for any side")
    box_of_side(side)
    per_cell = bits.reshape(*bits.shape[:-1], side, side, side)
    return (per_cell.argmax(axis=-1) + 1).astype(np.int8)
