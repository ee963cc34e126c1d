"""``python -m puzzles.sudoku solve CHECKPOINT PUZZLE...``: answers from a trained model's rules.

PUZZLE is a board written row by row on one line (81 characters for 9x9, 16 for 4x4, 256
for 16x16; '0' or '.' for a blank; for 16x16 the digits 1-9 then A-G) or a file of them:
text lines, Kaggle-style CSV, SATNet tensors or our .npz (``puzzles.sudoku.formats``).
Each board is decoded (``symsatnet.decode``) and printed with whether it satisfies the
Sudoku rules and keeps the givens. A model trained on another board
size is carried over kind by kind (``puzzles.sudoku.relations``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .encoding import board_to_bits, is_input_mask
from .formats import PuzzleFormatError, detect_format, format_board, parse_puzzle, read_puzzle_file
from .rules import box_of_side, rule_violations

__all__ = ["PuzzleFormatError", "format_board", "parse_puzzle", "read_puzzles", "run_solve", "solve_puzzles"]


def read_puzzles(sources: Sequence[str]) -> np.ndarray:
    """Boards from puzzle strings and files: text (one puzzle a line; blank and '#' lines
    skipped), CSV or SATNet tensors (``puzzles.sudoku.formats``); solutions in them are ignored."""
    boards = []
    for source in sources:
        path = Path(source)
        if path.exists():
            if detect_format(path) == "npz":
                from .dataset import load_dataset

                boards.extend(load_dataset(path, verify=False).puzzles)
            else:
                boards.extend(read_puzzle_file(path).puzzles)
        elif os.sep in source or source.endswith((".txt", ".csv", ".pt", ".npz")):
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
    from ..datafile import DatasetError
    from ..training.settings import TrainingError
    from symsatnet.decode import DecodeError

    try:
        puzzles = read_puzzles(arguments.puzzles)
        options = {"time_limit": arguments.time_limit} if arguments.decode == "exact" else {}
        boards, status, note = solve_puzzles(arguments.checkpoint, puzzles, arguments.decode,
                                             arguments.rules_data, **options)
    except (DatasetError, TrainingError, DecodeError, OSError) as error:
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
