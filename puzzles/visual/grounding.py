"""Symbol grounding without the given cells' labels: pretraining the CNN on matched clusters.

Without leakage the CNN never sees a digit label, and at the start neither the CNN nor the
layer knows anything, so the gradient through the layer carries little signal. We give the
CNN a start from the data alone:

1. k-means clusters the images shown on the training boards (``clusters`` of them, more
   than 9 so that each cluster is nearly one digit).
2. Each cluster is matched to a digit by the Sudoku structure that SymSATNet's group
   already encodes (rows, columns, boxes) and the training labels of the *blank* cells
   only: a given cell's digit never equals the solution digit of a blank cell in its row,
   column or box. For every cluster we count, over its given cells, how often each digit
   appears among those blank peers, and take the digit that appears least (0 times for a
   pure cluster).
3. The CNN is trained for a few epochs on these pseudo-labels; end-to-end training
   through the layer (still without leakage) continues from there.

The true digits of the images are read only to report how right the pseudo-labels were.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .boards import VisualBoards
from .digits import SKLEARN_HINT

GROUNDINGS = ("none", "clusters")


def peer_matrix() -> np.ndarray:
    """(81, 81) bool: cells sharing a row, column or box (a cell is not its own peer)."""
    cells = np.arange(81)
    rows, columns = cells // 9, cells % 9
    boxes = (rows // 3) * 3 + columns // 3
    same = (rows[:, None] == rows) | (columns[:, None] == columns) | (boxes[:, None] == boxes)
    return same & ~np.eye(81, dtype=bool)


def blank_peer_digits(boards: VisualBoards) -> np.ndarray:
    """(count, 81, 9) bool: digit d is the solution of some blank peer of the cell."""
    blank_one_hot = (boards.solutions[..., None] == np.arange(1, 10)) & ~boards.given[..., None]
    peers = peer_matrix().astype(np.int32)
    return np.einsum("ij,bjd->bid", peers, blank_one_hot.astype(np.int32)) > 0


def cluster_digits(boards: VisualBoards, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(pool image indices shown on the boards, their pseudo-digits 1..9, report)."""
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise ValueError(SKLEARN_HINT) from None
    shown = np.unique(boards.image_index[boards.given])
    position = np.searchsorted(shown, boards.image_index[boards.given])
    first = np.zeros(len(shown), dtype=np.int64)
    first[position[::-1]] = np.arange(len(position))[::-1]
    pixels = boards.images[boards.given][first].reshape(len(shown), -1)
    assignment = KMeans(clusters, n_init=10, random_state=seed).fit_predict(pixels)
    excluded = blank_peer_digits(boards)[boards.given]  # (given cells, 9)
    cell_cluster = assignment[position]
    counts = np.zeros((clusters, 9))
    np.add.at(counts, cell_cluster, excluded)
    sizes = np.bincount(cell_cluster, minlength=clusters)
    digit_of_cluster = (counts / np.maximum(sizes, 1)[:, None]).argmin(axis=1) + 1
    pseudo = digit_of_cluster[assignment]
    truth = boards.solutions[boards.given][first]
    report = {"clusters": clusters, "images": int(len(shown)),
              "pseudo_label_acc": float((pseudo == truth).mean()),
              "digits_covered": int(len(np.unique(digit_of_cluster)))}
    return first, pseudo, report


def pretrain_by_clusters(cnn: torch.nn.Module, boards: VisualBoards, seed: int, clusters: int = 60,
                         epochs: int = 30, batch: int = 64, lr: float = 1e-3) -> dict[str, Any]:
    """Fit ``cnn`` to the rule-matched cluster digits of the training boards' images; returns a report."""
    first, pseudo, report = cluster_digits(boards, clusters, seed)
    images = torch.from_numpy(boards.images[boards.given][first])
    targets = torch.from_numpy(pseudo - 1)
    truth = torch.from_numpy(boards.solutions[boards.given][first] - 1)
    optimizer = torch.optim.Adam(cnn.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    cnn.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), batch):
            chosen = order[start : start + batch]
            loss = F.cross_entropy(cnn(images[chosen]), targets[chosen])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        report["cnn_train_acc"] = float((cnn(images).argmax(-1) == truth).float().mean())
    return report
