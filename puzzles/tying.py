"""Choose which symmetry types to tie SymSATNet to, by validation.

Examples::

    python -m puzzles.tying cube --out runs/cube-tying --threads 1 --epochs 100
    python -m puzzles.tying sudoku --box 2 --count 1000 --types digits,rows,columns --probe-epochs 6 --window 3

Trains SymSATNet tied to the group all named types generate, then releases one type at a
time (greedy, by the mean validation board accuracy of a probe's last --window epochs; a
ninth of the training data is held out, 8:1:1) and stops when no release gains more than
--margin; ``--direction forward`` starts from a free C and ties one type more at a time. Every candidate is a ``puzzles.train`` run in OUT/tied-TYPES (OUT/free: none
tied) on OUT/data.npz; OUT/search.json records the candidates, their scores and the
choice. Run it again to resume. Exit status as for ``puzzles.train``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from puzzles.commands import run_command
from puzzles.datafile import DatasetError

from .training.settings import Settings, TrainingError
from .training.tasks import TASKS
from .training.tying import DIRECTIONS, MARGIN, PROBE_EPOCHS, SCORES, WINDOW, search_tying

PROGRAM = "python -m puzzles.tying"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=TASKS, help="puzzle family")
    parser.add_argument("--types", metavar="NAMES",
                        help="comma-separated symmetry types to search over (default all: "
                             "digits,rows,bands,columns,stacks,transpose for Sudoku; facelets,colours for the cube)")
    parser.add_argument("--box", type=int, default=3, help="Sudoku box size (default 3)")
    parser.add_argument("--data", metavar="FILE.npz", help="data set (default: generate --count examples into OUT)")
    parser.add_argument("--count", type=int, default=10_000, help="examples to generate (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, split, initialisation (default 0)")
    parser.add_argument("--direction", choices=DIRECTIONS, default="backward",
                        help="backward (default): start with every type tied and release one at a time; "
                             "forward: start from a free C and tie one more at a time")
    parser.add_argument("--probe-epochs", type=int, default=PROBE_EPOCHS, dest="probe_epochs",
                        help=f"epochs every candidate trains before it is scored (default {PROBE_EPOCHS})")
    parser.add_argument("--window", type=int, default=WINDOW,
                        help=f"a candidate's score averages its last WINDOW probe epochs (default {WINDOW})")
    parser.add_argument("--score", choices=tuple(SCORES), default="board",
                        help="score candidates by validation board accuracy (default) or cell accuracy "
                             "(rises long before any board is solved: for short probes on hard tasks)")
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help=f"validation accuracy a release must gain to be kept (default {MARGIN:g})")
    parser.add_argument("--epochs", type=int,
                        help="train the chosen candidate on to this many epochs (default: --probe-epochs)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default 4e-2, SymSATNet's)")
    parser.add_argument("--batch", type=int, default=40, help="batch size (default 40)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    parser.add_argument("--out", metavar="DIR", help="search folder (default runs/<task>-tying-seed<S>)")
    parser.add_argument("--no-progress", action="store_false", dest="progress", help="no progress bars")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    arguments = vars(build_parser().parse_args(argv))
    if arguments["task"] != "sudoku" and arguments["box"] != 3:
        print(f"{PROGRAM}: error: --box applies to the sudoku task, not {arguments['task']}", file=sys.stderr)
        return 2
    search = {key: arguments.pop(key) for key in ("types", "probe_epochs", "window", "margin", "epochs", "direction", "score")}
    settings = Settings(model="symsatnet", **arguments)
    try:
        settings.resolved()  # every run setting checked before anything is generated
    except TrainingError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    return run_command(
        lambda: _search(settings, search),
        program=PROGRAM,
        failures=(TrainingError, DatasetError),
        interrupted="interrupted; run the same command again to resume",
    )


def _search(settings: Settings, search: dict) -> None:
    search_tying(settings, search["types"], search["probe_epochs"], search["window"], search["margin"],
                 search["epochs"], search["direction"], search["score"])


if __name__ == "__main__":
    sys.exit(main())
