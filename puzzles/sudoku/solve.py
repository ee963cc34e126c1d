"""``python -m puzzles.sudoku solve CHECKPOINT PUZZLE...``: answers from a trained model's rules.

PUZZLE is a board written row by row on one line (81 characters for 9x9, 16 for 4x4, 256
for 16x16; '0' or '.' for a blank; for 16x16 the digits 1-9 then A-G) or a text file with
one such line per puzzle. Each board is decoded (``symsatnet.decode``) and printed with
whether it satisfies the Sudoku rules and keeps the givens. A model trained on another board
size is carried over kind by kind (``puzzles.sudoku.relations``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .encoding import board_to_bits, is_input_mask
from .rules import box_of_side, rule_violations

SYMBOLS = "123456789ABCDEFG"


class PuzzleFormatError(ValueError):
    """A puzzle line that is not a board."""


def parse_puzzle(text: str, where: str = "puzzle") -> np.ndarray:
    """One line ('0' or '.' blank) -> (side, side) int8 board."""
    line = text.strip()
    side = int(round(len(line) ** 0.5))
    if side * side != len(line) or side not in (4, 9, 16):
        raise PuzzleFormatError(f"{where}: {len(line)} characters; a 4x4, 9x9 or 16x16 board has 16, 81 or 256")
    values = np.zeros(len(line), dtype=np.int8)
    for position, symbol in enumerate(line.upper()):
        if symbol in ".0":
            continue
        value = SYMBOLS.find(symbol) + 1
        if value < 1 or value > side:
            raise PuzzleFormatError(f"{where}: character {symbol!r} at position {position + 1} is not a digit "
                                    f"1..{side} of a {side}x{side} board, '0' or '.'")
        values[position] = value
    return values.reshape(side, side)


def format_board(board: np.ndarray) -> str:
    return "".join("." if value == 0 else SYMBOLS[value - 1] for value in np.asarray(board).ravel())


def read_puzzles(sources: Sequence[str]) -> np.ndarray:
    """Boards from puzzle strings and text files (one puzzle a line; blank and '#' lines skipped)."""
    boards = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if line.strip() and not line.lstrip().startswith("#"):
                    boards.append(parse_puzzle(line, f"{source}, line {number}"))
        elif os.sep in source or source.endswith(".txt"):
            raise PuzzleFormatError(f"{source}: no such file")
        else:
            boards.append(parse_puzzle(source))
    if not boards:
        raise PuzzleFormatError("no puzzle given")
    sides = {board.shape[0] for board in boards}
    if len(sides) > 1:
        raise PuzzleFormatError(f"puzzles of different sizes ({sorted(sides)}); solve one size at a time")
    return np.stack(boards)


def solve_puzzles(checkpoint_path: str | os.PathLike, puzzles: np.ndarray, method: str = "exact",
                  rules_data: str | None = None, **options) -> tuple[np.ndarray, list[str], str]:
    """(boards, decoder status per board, a note on the model used)."""
    from ..decoding import answer_values, rule_labels
    from ..training.checkpoint import layer_from_checkpoint, load_checkpoint
    from ..training.settings import TrainingError
    from ..training.tasks import Task
    from symsatnet.decode import decode, extract_constraints

    checkpoint = load_checkpoint(checkpoint_path)
    task_info = checkpoint.get("task") or {}
    if task_info.get("name") != "sudoku":
        raise TrainingError(f"{checkpoint_path}: a {task_info.get('name')} model, not a Sudoku one")
    trained_box = int(task_info.get("box", 3))
    box = box_of_side(puzzles.shape[-1])
    layer = layer_from_checkpoint(checkpoint, checkpoint_path)
    layer.eval()
    note = f"{type(layer).__name__} trained on {trained_box**2}x{trained_box**2} boards"
    if method == "relaxation":
        constraints = None
        if box != trained_box:
            raise TrainingError(f"the model was trained on {trained_box**2}x{trained_box**2} boards; "
                                f"--decode relaxation cannot resize it, use exact or decimate")
    else:
        labels = rule_labels(checkpoint, checkpoint_path, Task("sudoku", trained_box), rules_data)
        constraints = extract_constraints(layer, labels)
    if box != trained_box:
        from .relations import carry_reward_rules, resize_constraints, resize_layer, reward_rules

        layer_small = layer
        try:
            layer = resize_layer(layer, box)
        except ValueError as error:
            raise TrainingError(str(error)) from None
        constraints = resize_constraints(constraints, trained_box, box)
        found = reward_rules(layer_small, labels)
        constraints, kept = carry_reward_rules(constraints, found, box)
        note += (f", its rules carried over to {box**2}x{box**2} kind by kind "
                 f"({len(kept)} of {len(found)} rules read off rewards kept)")
    z = torch.from_numpy(board_to_bits(puzzles))
    given = torch.from_numpy(is_input_mask(puzzles))
    result = decode(layer, z, given, method, constraints=constraints, **options)
    board_task = Task("sudoku", box)
    # A cell without a single digit comes out blank (value -1 + 1), and the check says so.
    return board_task.boards(answer_values(result.x, board_task)), result.status, note


def run_solve(arguments) -> int:
    from ..training.settings import TrainingError
    from symsatnet.decode import DecodeError

    try:
        puzzles = read_puzzles(arguments.puzzles)
        options = {"time_limit": arguments.time_limit} if arguments.decode == "exact" else {}
        boards, status, note = solve_puzzles(arguments.checkpoint, puzzles, arguments.decode,
                                             arguments.rules_data, **options)
    except (PuzzleFormatError, TrainingError, DecodeError, OSError) as error:
        raise ValueError(str(error)) from None
    print(f"# {note}; decode {arguments.decode}")
    good = 0
    for board, puzzle, state in zip(boards, puzzles, status):
        problems = rule_violations(board, puzzle)
        good += not problems
        verdict = "ok" if not problems else "BREAKS THE RULES: " + "; ".join(problems[:3])
        print(f"{format_board(board)}  {verdict} ({state})")
    print(f"# {good} of {len(boards)} boards satisfy the Sudoku rules and keep their givens")
    return 0 if good == len(boards) else 3
