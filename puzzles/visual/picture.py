"""A PNG of a few test boards: the given images, the predicted solution, errors marked.

``python -m puzzles.visual.picture RUN_DIR --out docs/results/visual_sudoku.png`` rebuilds the
run's test boards from its settings, decodes the first few with soft evidence (or the
relaxation with ``--relaxation``) and draws them. Needs matplotlib (``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..commands import run_command
from .boards import VisualBoards

MATPLOTLIB_HINT = "the picture needs matplotlib: pip install matplotlib (or pip install 'symsatnet[plot]')"


def draw_boards(boards: VisualBoards, predicted: np.ndarray, read: np.ndarray, path: str | Path,
                title: str = "") -> None:
    """Draw each board: given cells as their images (a red frame and the CNN's reading in the
    corner where the answer differs from the solution), blank cells as the predicted digit
    (black when right, red with the true digit in the corner when wrong)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError(MATPLOTLIB_HINT) from None
    count = len(boards)
    figure, axes = plt.subplots(1, count, figsize=(3.1 * count, 3.4), squeeze=False)
    for board, axis in enumerate(axes[0]):
        canvas = np.ones((9 * 10, 9 * 10))
        for cell in np.flatnonzero(boards.given[board]):
            row, column = divmod(cell, 9)
            image = _resize(boards.images[board, cell], 8)
            canvas[row * 10 + 1 : row * 10 + 9, column * 10 + 1 : column * 10 + 9] = 1 - image
        axis.imshow(canvas, cmap="gray", vmin=0, vmax=1, extent=(0, 9, 9, 0))
        for cell in range(81):
            row, column = divmod(cell, 9)
            wrong = predicted[board, cell] != boards.solutions[board, cell]
            if boards.given[board, cell]:
                if wrong:
                    axis.add_patch(plt.Rectangle((column + 0.04, row + 0.04), 0.92, 0.92, fill=False, color="red", lw=1.5))
                    axis.text(column + 0.9, row + 0.3, str(predicted[board, cell]), color="red", fontsize=6, ha="right")
                continue
            axis.text(column + 0.5, row + 0.55, str(predicted[board, cell]), ha="center", va="center", fontsize=9,
                      color="red" if wrong else "black")
            if wrong:
                axis.text(column + 0.9, row + 0.3, str(boards.solutions[board, cell]), color="green", fontsize=6, ha="right")
        for line in range(10):
            width = 1.2 if line % 3 == 0 else 0.3
            axis.axhline(line, color="black", lw=width)
            axis.axvline(line, color="black", lw=width)
        misread = int(((read[board] != boards.solutions[board]) & boards.given[board]).sum())
        errors = int((predicted[board] != boards.solutions[board]).sum())
        axis.set_title(f"{misread} given(s) misread by the CNN, {errors} error(s) after solving", fontsize=7)
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour resize of a square image to side x side (MNIST's 28 -> 8)."""
    positions = (np.arange(side) * image.shape[0] / side).astype(int)
    return image[np.ix_(positions, positions)]


PROGRAM = "python -m puzzles.visual.picture"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder of python -m puzzles.train visual-sudoku")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--boards", type=int, default=3, help="test boards to draw (default 3)")
    parser.add_argument("--skip", type=int, default=0, help="start at this test board (default 0)")
    parser.add_argument("--relaxation", action="store_true", help="the relaxation's answers, not exact decoding")
    arguments = parser.parse_args(argv)
    return run_command(lambda: _draw_run(arguments), program=PROGRAM, failures=(ValueError,))


def _draw_run(arguments: argparse.Namespace) -> None:
    """Draw the test boards of the run ``arguments.run`` as its model answers them."""
    import torch

    from .data import make_data
    from .evaluate import decode_boards, solution_bits
    from .model import build_model
    from .run import CHECKPOINT_KIND, VisualSettings, predict

    checkpoint = torch.load(Path(arguments.run) / "checkpoint.pt", map_location="cpu", weights_only=True)
    if checkpoint.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{arguments.run} holds no visual Sudoku checkpoint")
    settings = VisualSettings(**checkpoint["settings"]).resolved()
    data = make_data(settings.count, settings.test_count, settings.seed, settings.digits, settings.test_fraction)
    model = build_model(settings.layer, settings.max_iter)
    model.load_state_dict(checkpoint["model_state"])
    chosen = data.test.subset(np.arange(arguments.skip, arguments.skip + arguments.boards))
    values, log_probs = predict(model, chosen, settings.seed)
    if not arguments.relaxation:
        from symsatnet.decode import extract_constraints

        constraints = extract_constraints(model.layer, solution_bits(data.train))
        values, _ = decode_boards(model, chosen, log_probs, constraints, True, settings.time_limit)
    method = "relaxation" if arguments.relaxation else "exact decoding with soft evidence"
    draw_boards(chosen, values, log_probs.argmax(-1) + 1, arguments.out,
                title=f"Visual Sudoku test boards ({settings.layer}, {method}); red: wrong")


if __name__ == "__main__":
    sys.exit(main())
