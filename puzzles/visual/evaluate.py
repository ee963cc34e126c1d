"""The final measurements of a visual Sudoku run on its test boards.

* ``digit_acc``: the CNN alone on the test boards' given cells (unseen images).
* ``ceiling``: classify-then-solve, the share of test boards whose every given the CNN
  reads right (a perfect solver of the read puzzle can do no better, as each puzzle has one
  solution).
* ``relaxation``: the model's own forward, argmax per cell, givens as the CNN reads them.
* ``exact_hard``: exact decoding (CP-SAT under the layer's extracted rules) with the CNN's
  argmax as hard givens.
* ``exact_soft``: exact decoding with every cell free and the CNN's negative
  log-likelihoods on the given cells as unary costs (soft evidence): the most likely reading
  of the givens that the learned rules can complete, so the rules can correct perception.

A board counts as right when all 81 cells equal the solution.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch

from puzzles.decoding import answer_values
from puzzles.training.tasks import Task

from .boards import VisualBoards
from .data import VisualData
from .model import CELLS, VALUES, VisualSudoku
from .run import VisualSettings, board_accuracy, perception_metrics, predict

#: Largest unary cost of one digit reading (nats): a probability of ~1e-13 or less.
MAX_COST = 30.0


def solution_bits(boards: VisualBoards) -> np.ndarray:
    return (boards.solutions[..., None] == np.arange(1, 10)).reshape(len(boards), -1).astype(np.float32)


def decode_boards(model: VisualSudoku, boards: VisualBoards, log_probs: np.ndarray, constraints, soft: bool,
                  time_limit: float) -> tuple[np.ndarray, Any]:
    """(count, 81) digits 1..9 (0 where a cell has no single digit) and the decoder's report."""
    from symsatnet.decode import decode

    count = len(boards)
    given_bits = torch.from_numpy(boards.given).repeat_interleave(VALUES, dim=1)
    if soft:
        z = torch.zeros(count, CELLS * VALUES)
        is_input = torch.zeros_like(given_bits)
        costs = np.where(boards.given[..., None], -np.clip(log_probs, -MAX_COST, 0.0), 0.0)
        unary = torch.from_numpy(costs.reshape(count, -1))
    else:
        read = log_probs.argmax(-1)
        z = torch.nn.functional.one_hot(torch.from_numpy(read), VALUES).reshape(count, -1).float()
        z = z * given_bits
        is_input, unary = given_bits, None
    result = decode(model.layer, z, is_input, "exact", constraints=constraints, unary=unary, time_limit=time_limit)
    return answer_values(result.x, Task("sudoku", 3)) + 1, result


def final_report(model: VisualSudoku, data: VisualData, settings: VisualSettings, history: list,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """Every measurement of the module docstring on ``data.test``."""
    from symsatnet.decode import DecodeError, extract_constraints

    test = data.test
    values, log_probs = predict(model, test, settings.seed)
    report: dict[str, Any] = {
        "settings": settings.to_dict(),
        "test_boards": len(test),
        "mean_givens": float(test.given.sum(axis=1).mean()),
        **perception_metrics(test, log_probs),
        "relaxation": board_accuracy(values, test),
        "train_seconds": float(sum(row.get("seconds", 0.0) for row in history)),
    }
    log(f"test: digit accuracy {report['digit_acc']:.4f}, ceiling {report['ceiling']:.4f}, "
        f"relaxation board accuracy {report['relaxation']:.4f}")
    if not settings.decode:
        return report
    model.eval()
    try:
        constraints = extract_constraints(model.layer, solution_bits(data.train))
    except DecodeError as error:
        report["decode_error"] = str(error)
        log(f"no exact decoding: {error}")
        return report
    report["rules"] = constraints.describe()
    count = getattr(settings, "decode_count", None) or len(test)
    chosen, chosen_log_probs = test.subset(np.arange(min(count, len(test)))), log_probs[:count]
    report["decoded_boards"] = len(chosen)
    report["ceiling_on_decoded"] = perception_metrics(chosen, chosen_log_probs)["ceiling"]
    for name, soft in (("exact_hard", False), ("exact_soft", True)):
        started = time.perf_counter()
        decoded, result = decode_boards(model, chosen, chosen_log_probs, constraints, soft, settings.time_limit)
        report[name] = board_accuracy(decoded, chosen)
        report[f"{name}_seconds"] = time.perf_counter() - started
        report[f"{name}_proved"] = float(np.mean(result.proved))
        log(f"{name}: board accuracy {report[name]:.4f} ({report[f'{name}_seconds']:.0f} s)")
    return report
