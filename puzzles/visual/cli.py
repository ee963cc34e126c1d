"""``python -m puzzles.train visual-sudoku``: train and evaluate the visual Sudoku model.

Examples::

    python -m puzzles.train visual-sudoku --out runs/visual-sym             # no leakage
    python -m puzzles.train visual-sudoku --grounding clusters --out runs/v  # cluster pretraining
    python -m puzzles.train visual-sudoku --leakage --out runs/v-leak        # published setting
    python -m puzzles.train visual-sudoku --digits mnist.npz --out runs/v    # local digit images
    python -m puzzles.train visual-sudoku --out runs/v --resume --epochs 10  # a finished run: evaluate again

Writes OUT/checkpoint.pt (every epoch, atomically), OUT/log.jsonl, OUT/run.log and
OUT/results.json. Exit status: 0 done, 1 bad input (one line), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from puzzles.commands import run_command
from puzzles.datafile import DatasetError
from puzzles.training.settings import TrainingError

from .grounding import GROUNDINGS
from .model import LAYERS

PROGRAM = "symsatnet-train visual-sudoku"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, argument_default=argparse.SUPPRESS,
                                     description="Visual Sudoku: CNN + SAT layer trained end to end from solutions.")
    parser.add_argument("--layer", choices=LAYERS, help="SAT layer behind the CNN (default symsatnet)")
    parser.add_argument("--leakage", action="store_true", help="also supervise the given cells' digits (published)")
    parser.add_argument("--grounding", choices=GROUNDINGS, help="'clusters': pretrain the CNN on rule-matched k-means clusters")
    parser.add_argument("--digits", metavar="FILE.npz", help="labelled digit images x (count, h, w), y (default: sklearn's)")
    parser.add_argument("--test-fraction", type=float, dest="test_fraction", help="digit images kept for test boards (0.3)")
    parser.add_argument("--count", type=int, help="train boards (default 3000)")
    parser.add_argument("--test-count", type=int, dest="test_count", help="test boards (default 500)")
    parser.add_argument("--epochs", type=int, help="default 10")
    parser.add_argument("--batch", type=int, help="default 40")
    parser.add_argument("--lr", type=float, help="layer learning rate (default: the layer's published one)")
    parser.add_argument("--cnn-lr", type=float, dest="cnn_lr", help="CNN learning rate (default 1e-3)")
    parser.add_argument("--cnn-warmup", type=int, dest="cnn_warmup",
                        help="epochs in which only the layer learns (default 3 with --grounding, else 0)")
    parser.add_argument("--max-iter", type=int, dest="max_iter", help="solver sweeps (default 40)")
    parser.add_argument("--seed", type=int, help="default 0")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--out", metavar="DIR", help="run folder (default runs/visual)")
    parser.add_argument("--no-decode", action="store_false", dest="decode", help="skip exact decoding at the end")
    parser.add_argument("--decode-count", type=int, dest="decode_count",
                        help="exact decoding on the first N test boards only (default: all)")
    parser.add_argument("--time-limit", type=float, dest="time_limit", help="CP-SAT seconds per board (default 10)")
    parser.add_argument("--resume", action="store_true", help="continue the run in OUT")
    parser.add_argument("--force", action="store_true", help="start over in an OUT that holds a run")
    parser.add_argument("--no-progress", action="store_false", dest="progress", help="no progress bars")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .run import VisualSettings, train_visual

    arguments = vars(build_parser().parse_args(argv))
    settings = VisualSettings(**arguments)

    def run() -> None:  # the results are printed and written to the run folder
        train_visual(settings)

    return run_command(
        run,
        program=PROGRAM,
        failures=(TrainingError, DatasetError),
        interrupted="interrupted; continue with --resume",
    )


if __name__ == "__main__":
    sys.exit(main())
