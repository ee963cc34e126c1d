"""The visual Sudoku model: a small CNN reads the given cells, a SAT layer solves the board.

The CNN's per-cell digit probabilities become the input bits of the given cells
(``is_input`` marks them, as published); the layer fills in the blank cells and copies the
inputs through, and gradients flow from the loss through the layer into the CNN.
"""

from __future__ import annotations

import torch
from torch import nn

from puzzles.training.models import build_layer, initial_config
from puzzles.training.tasks import Task

VALUES = 9
CELLS = 81
#: Models of the comparison (the layer behind the CNN), as in ``puzzles.train``.
LAYERS = ("symsatnet", "satnet-plain")


class DigitCNN(nn.Module):
    """Square grey images (any side >= 4) -> 9 logits (digits 1..9)."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.AdaptiveMaxPool2d(4),  # 8x8 sklearn digits and 28x28 MNIST alike
        )
        self.classify = nn.Sequential(nn.Flatten(), nn.Linear(32 * 16, hidden), nn.ReLU(), nn.Linear(hidden, VALUES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(images.unsqueeze(1)))


class VisualSudoku(nn.Module):
    """CNN + SAT layer.

    Shape:
        - images: (B, 81, h, w); given: (B, 81) bool.
        - Output: (bits (B, 729) in [0, 1], log-probabilities (B, 81, 9) of the CNN, -inf-free,
          zeros on blank cells).
    """

    def __init__(self, layer: nn.Module, cnn: DigitCNN | None = None) -> None:
        super().__init__()
        self.cnn = cnn if cnn is not None else DigitCNN()
        self.layer = layer

    def digit_log_probs(self, images: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
        """(B, 81, 9) log-probabilities of the given cells (zeros on blank cells)."""
        log_probs = images.new_zeros(*given.shape, VALUES)
        log_probs[given] = torch.log_softmax(self.cnn(images[given]), dim=-1)
        return log_probs

    def forward(self, images: torch.Tensor, given: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs = self.digit_log_probs(images, given)
        z = (log_probs.exp() * given.unsqueeze(-1)).reshape(len(given), CELLS * VALUES)
        is_input = given.repeat_interleave(VALUES, dim=1)
        return self.layer(z, is_input), log_probs


def build_model(layer_name: str, max_iter: int) -> VisualSudoku:
    """A fresh CNN and a 9x9 SymSATNet (tied truth row) or SATNet-Plain (random from torch's RNG)."""
    if layer_name not in LAYERS:
        raise ValueError(f"unknown layer {layer_name!r}; choose one of {', '.join(LAYERS)}")
    config = initial_config(layer_name, Task("sudoku", 3), max_iter)
    return VisualSudoku(build_layer(config))
