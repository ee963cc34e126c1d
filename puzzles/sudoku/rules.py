"""The Sudoku rules: checking a predicted board against the rules and the givens.

Boards are integer arrays of shape (side, side) with side = box**2, 0 meaning blank.
"""

from __future__ import annotations

import numpy as np


def box_of_side(side: int) -> int:
    """The box size b with b*b == side; ValueError if side is not a square."""
    box = int(round(side**0.5))
    if box < 1 or box * box != side:
        raise ValueError(f"board side {side} is not a square number, so it has no box size")
    return box


def _board_array(board: np.ndarray, name: str = "board") -> np.ndarray:
    array = np.asarray(board)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"{name} must be a square 2-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    box_of_side(array.shape[0])
    return array


def _units(side: int) -> list[tuple[str, np.ndarray]]:
    """(name, flat cell indices) for every row, column and box."""
    box = box_of_side(side)
    index = np.arange(side * side).reshape(side, side)
    units = [(f"row {r + 1}", index[r]) for r in range(side)]
    units += [(f"column {c + 1}", index[:, c]) for c in range(side)]
    for band in range(box):
        for stack in range(box):
            cells = index[band * box:(band + 1) * box, stack * box:(stack + 1) * box].ravel()
            units.append((f"box {band * box + stack + 1}", cells))
    return units


def rule_violations(board: np.ndarray, puzzle: np.ndarray | None = None) -> list[str]:
    """Human-readable reasons why board is not a solution (of puzzle, if given); [] if it is."""
    board = _board_array(board)
    side = board.shape[0]
    problems = []
    flat = board.ravel()
    out_of_range = np.flatnonzero((flat < 0) | (flat > side))
    for cell in out_of_range:
        problems.append(f"cell ({cell // side + 1}, {cell % side + 1}) holds {flat[cell]}, outside 1..{side}")
    blanks = np.flatnonzero(flat == 0)
    if len(blanks):
        problems.append(f"{len(blanks)} blank cell(s), first at ({blanks[0] // side + 1}, {blanks[0] % side + 1})")
    for name, cells in _units(side):
        values = flat[cells]
        values = values[(values >= 1) & (values <= side)]
        digits, counts = np.unique(values, return_counts=True)
        for digit in digits[counts > 1]:
            problems.append(f"{name} repeats digit {digit}")
    if puzzle is not None:
        puzzle = _board_array(puzzle, "puzzle")
        if puzzle.shape != board.shape:
            problems.append(f"board shape {board.shape} differs from puzzle shape {puzzle.shape}")
        else:
            changed = np.argwhere((puzzle != 0) & (puzzle != board))
            for r, c in changed:
                problems.append(f"given at ({r + 1}, {c + 1}) was {puzzle[r, c]}, board has {board[r, c]}")
    return problems


def is_valid_solution(board: np.ndarray, puzzle: np.ndarray | None = None) -> bool:
    """True if board is complete, obeys the rules and keeps every given of puzzle."""
    return not rule_violations(board, puzzle)


def valid_boards(boards: np.ndarray) -> np.ndarray:
    """Vectorised rule check for boards of shape (count, side, side): one bool per board."""
    boards = np.asarray(boards)
    if boards.ndim != 3 or boards.shape[1] != boards.shape[2]:
        raise ValueError(f"expected boards of shape (count, side, side), got {boards.shape}")
    count, side = boards.shape[0], boards.shape[1]
    box = box_of_side(side)
    in_range = ((boards >= 1) & (boards <= side)).all(axis=(1, 2))
    # One-hot (count, row, column, digit); a complete valid board has exactly one of each
    # digit in every row, column and box.
    one_hot = boards[..., None] == np.arange(1, side + 1)
    rows_ok = (one_hot.sum(axis=2) == 1).all(axis=(1, 2))
    columns_ok = (one_hot.sum(axis=1) == 1).all(axis=(1, 2))
    by_box = one_hot.reshape(count, box, box, box, box, side).sum(axis=(2, 4))
    boxes_ok = (by_box == 1).all(axis=(1, 2, 3))
    return in_range & rows_ok & columns_ok & boxes_ok


def respects_givens(boards: np.ndarray, puzzles: np.ndarray) -> np.ndarray:
    """One bool per board: every nonzero cell of the puzzle is unchanged."""
    boards, puzzles = np.asarray(boards), np.asarray(puzzles)
    if boards.shape != puzzles.shape:
        raise ValueError(f"boards {boards.shape} and puzzles {puzzles.shape} differ in shape")
    return ((puzzles == 0) | (puzzles == boards)).all(axis=(-2, -1))


def rule_pairs(box: int = 3, diagonals: bool = False) -> np.ndarray:
    """(k, 2) indices of the pairs of one-hot variables (``encoding.bit_index`` order) that
    the rules forbid together: two digits in one cell, one digit twice in a row, column or
    box, and with ``diagonals`` (X-Sudoku) twice on a main diagonal. For
    ``symsatnet.rules.separation``."""
    side = box * box
    cells = np.arange(side * side).reshape(side, side)
    units = [cells[r] for r in range(side)] + [cells[:, c] for c in range(side)]
    units += [cells[b * box:(b + 1) * box, s * box:(s + 1) * box].ravel() for b in range(box) for s in range(box)]
    if diagonals:
        units += [cells.diagonal(), np.fliplr(cells).diagonal()]
    forbidden = np.zeros((side**3, side**3), dtype=bool)
    digits = np.arange(side)
    for cell in range(side * side):  # one digit per cell
        bits = cell * side + digits
        forbidden[np.ix_(bits, bits)] = True
    for unit in units:  # a digit once per unit
        for digit in digits:
            bits = np.asarray(unit) * side + digit
            forbidden[np.ix_(bits, bits)] = True
    return np.argwhere(np.triu(forbidden, 1))
