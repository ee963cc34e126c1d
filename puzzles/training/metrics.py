"""Losses, accuracies and the evaluation of a layer on examples (sharded over ranks)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .distributed import Distributed
from .randomness import EVAL_STREAM, shard, prepare_solver
from .tasks import Examples, Task, decode


class Tally:
    """Sums of per-example statistics over an epoch (reduced over ranks at the end)."""

    KEYS = ("loss", "cells_right", "cells", "boards_right", "boards", "sweeps", "clamped", "batches")

    def __init__(self) -> None:
        self.values = dict.fromkeys(self.KEYS, 0.0)

    def add(self, **values: float) -> None:
        for key, value in values.items():
            self.values[key] += float(value)

    def summary(self, dist: Distributed, prefix: str) -> dict[str, float]:
        totals = dict(zip(self.KEYS, dist.sum([self.values[key] for key in self.KEYS])))
        boards = max(totals["boards"], 1.0)
        result = {
            f"{prefix}_loss": totals["loss"] / boards,
            f"{prefix}_cell_acc": totals["cells_right"] / max(totals["cells"], 1.0),
            f"{prefix}_board_acc": totals["boards_right"] / boards,
        }
        if prefix == "train":
            result["train_sweeps"] = totals["sweeps"] / max(totals["batches"], 1.0)
            result["clamped"] = int(totals["clamped"])
        return result


def example_losses(outputs: torch.Tensor, targets: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
    """Binary cross entropy on the output (non-given) bits, summed per example and divided by n.

    Equal to the published mean BCE over all bits, where copied inputs contribute nothing.
    """
    bits = F.binary_cross_entropy(outputs.clamp(0.0, 1.0), targets, reduction="none")
    return (bits * (~given)).sum(dim=1) / outputs.shape[1]


def score(outputs: torch.Tensor, examples: Examples, indices: np.ndarray, values: int):
    """(predicted values, cells right, cells to predict, boards right) of a batch."""
    predicted = decode(outputs.detach().cpu().numpy(), values)
    truth = examples.truth[indices]
    to_predict = ~examples.given_cells[indices]
    right = predicted == truth
    return predicted, int((right & to_predict).sum()), int(to_predict.sum()), int(right.all(axis=1).sum())


def batch_tensors(examples: Examples, indices: np.ndarray, device: torch.device):
    inputs = torch.from_numpy(examples.inputs[indices]).to(device)
    given = torch.from_numpy(examples.given[indices]).to(device)
    return inputs, given


@torch.no_grad()
def evaluate(
    layer: nn.Module,
    examples: Examples,
    task: Task,
    seed: int,
    batch: int = 100,
    dist: Distributed = Distributed(),
    device: torch.device | str = "cpu",
    prefix: str = "test",
    keep_predictions: bool = False,
):
    """Loss and accuracies of ``layer`` on ``examples`` (and this rank's predictions)."""
    device = torch.device(device)
    tally = Tally()
    predictions = []
    for step, start in enumerate(range(0, len(examples), batch)):
        indices, offset = shard(np.arange(start, min(start + batch, len(examples))), dist.rank, dist.world)
        if not len(indices):
            continue
        prepare_solver(layer, (seed, EVAL_STREAM, step), offset)
        inputs, given = batch_tensors(examples, indices, device)
        outputs = layer(inputs, given)
        targets = torch.from_numpy(examples.target_bits(indices, task.values)).to(device)
        losses = example_losses(outputs, targets, given)
        predicted, cells_right, cells, boards_right = score(outputs, examples, indices, task.values)
        tally.add(loss=losses.sum(), cells_right=cells_right, cells=cells, boards_right=boards_right, boards=len(indices))
        if keep_predictions:
            predictions.append(predicted)
    metrics = tally.summary(dist, prefix)
    if keep_predictions:
        stacked = np.concatenate(predictions) if predictions else np.zeros((0, task.cells), dtype=np.int64)
        return metrics, stacked
    return metrics
