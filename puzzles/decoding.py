"""Decoding trained puzzle models: rules from the run's training labels, answers checked
against the puzzle's own rules (``symsatnet.decode`` does the work).

The logical rules of a layer (``symsatnet.decode.extract_constraints``) are checked on the
labels of the run's *training* part only, so the test boards never shape them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from symsatnet.decode import Constraints, Decoded, decode, extract_constraints

from .training.data import holds_validation, split_indices
from .training.settings import TrainingError
from .training.tasks import Examples, Task

__all__ = ["answer_values", "training_labels", "rules_of_checkpoint", "decode_examples", "rule_labels", "rules_satisfied"]


def _label_bits(task: Task, solutions: np.ndarray) -> np.ndarray:
    values = task.encode(solutions, solutions).labels
    return (values[..., None] == np.arange(task.values)).reshape(len(values), -1).astype(np.float32)


def training_labels(checkpoint: dict[str, Any], checkpoint_path: str | os.PathLike, task: Task) -> np.ndarray:
    """(L, n) one-hot labels of the examples the run trained on (uncorrupted)."""
    settings = checkpoint.get("settings") or {}
    run_dir = Path(checkpoint_path).parent
    if settings.get("data"):
        source = Path(settings["data"])
        if not source.is_absolute() and not source.exists():
            source = run_dir / source
        dataset = task.load(source)
        solutions = dataset.solutions
        if not settings.get("test"):
            parts = split_indices(len(solutions), int(settings.get("seed", 0)), holds_validation(settings))
            solutions = solutions[parts["train"]]
    else:
        source = run_dir / "data.npz"
        if not source.is_file():
            raise TrainingError(f"{source}: the run's data set is missing, and decoding reads its rules' "
                                f"check from the training labels; give --rules-data FILE.npz")
        dataset = task.load(source)
        parts = split_indices(len(dataset.solutions), int(settings.get("seed", 0)),
                              holds_validation(settings))
        solutions = dataset.solutions[parts["train"]]
    return _label_bits(task, solutions)


def rules_of_checkpoint(layer: torch.nn.Module, checkpoint: dict[str, Any], checkpoint_path: str | os.PathLike,
                        task: Task, rules_data: Optional[str | os.PathLike] = None,
                        strength: float = 0.1) -> Constraints:
    """The layer's logical rules, checked on the run's training labels (or on ``rules_data``)."""
    return extract_constraints(layer, rule_labels(checkpoint, checkpoint_path, task, rules_data), strength=strength)


def rule_labels(checkpoint: dict[str, Any], checkpoint_path: str | os.PathLike, task: Task,
                rules_data: Optional[str | os.PathLike] = None) -> np.ndarray:
    """(L, n) one-hot labels that check a model's rules: ``rules_data``'s, or the run's training part."""
    if rules_data is not None:
        return _label_bits(task, task.load(rules_data).solutions)
    return training_labels(checkpoint, checkpoint_path, task)


def answer_values(x: np.ndarray, task: Task) -> np.ndarray:
    """(count, cells) 0-based values of 0/1 answers (count, n); -1 where a cell has not
    exactly one true bit (an answer that breaks the rules), so it never counts as right by
    the accident of argmax."""
    bits = np.asarray(x).reshape(len(x), task.cells, task.values)
    values = bits.argmax(axis=-1)
    values[bits.sum(axis=-1) != 1] = -1
    return values


def decode_examples(layer: torch.nn.Module, examples: Examples, task: Task, method: str,
                    constraints: Constraints, **options: Any) -> tuple[np.ndarray, Decoded]:
    """(count, cells) 0-based predicted values and the decoder's report."""
    if method == "relaxation":
        raise ValueError("use puzzles.evaluate without --decode for the relaxation")
    z = torch.from_numpy(examples.inputs)
    given = torch.from_numpy(examples.given)
    result = decode(layer, z, given, method, constraints=constraints, **options)
    return answer_values(result.x, task), result


def rules_satisfied(task: Task, puzzles: np.ndarray, boards: np.ndarray, variant: str = "standard") -> np.ndarray:
    """One bool per board: a solution by the puzzle's own rules that keeps the givens
    (``variant='x'``: X-Sudoku, whose main diagonals must hold every digit too)."""
    if task.name == "sudoku":
        from .sudoku.rules import respects_givens, valid_boards

        valid = valid_boards(boards) & respects_givens(boards, puzzles)
        if variant == "x":
            from .sudoku.xsudoku import diagonals_hold

            valid &= diagonals_hold(boards)
        return valid
    from .cube.rules import is_valid_state

    return np.array([is_valid_state(board, puzzle) for board, puzzle in zip(boards, puzzles)], dtype=bool)
