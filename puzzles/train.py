"""Train SATNet-Plain, SATNet-300aux, SymSATNet or SymSATNet-Auto on Sudoku or the cube.

Examples::

    python -m puzzles.train sudoku --model symsatnet                # published settings
    python -m puzzles.train sudoku --box 2 --model symsatnet --count 500 --epochs 5
    python -m puzzles.train sudoku --model symsatnet --out runs/s --resume
    python -m puzzles.train visual-sudoku --out runs/v   # CNN + SymSATNet (puzzles/visual/cli.py)
    torchrun --nproc_per_node 2 -m puzzles.train sudoku --model satnet-plain

Writes DIR/log.csv, DIR/log.jsonl (per-epoch metrics and times), DIR/run.log,
DIR/checkpoint.pt (every epoch, atomically; the one before it kept as DIR/checkpoint.prev.pt,
which --resume falls back to when the newest is damaged) and, without --data, the generated
data set DIR/data.npz (a data.npz already there that is not this run's is refused without
--force). One training at a time holds DIR (an advisory lock on DIR/.lock); a second one
into the same DIR stops at once. Exit status: 0 done, 1 bad input (one-line message), 2 usage error,
130 interrupted (resume with --resume).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from puzzles.commands import run_command
from puzzles.datafile import DatasetError
from symsatnet.discovery import METHODS as DISCOVERY_METHODS

from .training.loop import SETTLE_GAIN, SETTLE_MAX_EPOCHS, train
from .training.settings import Settings, TrainingError
from .training.models import DEFAULT_LR, KERNELS, MODELS, TRUTH_MODES
from .training.tasks import TASKS

PROGRAM = "symsatnet-train"


def _epochs_or_auto(text: str) -> Optional[int]:
    """--soft-warmup's value: a whole number of epochs, or 'auto' (None)."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of epochs or 'auto', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    # Defaults are suppressed so that main() knows which options were given (a resumed
    # run refuses explicit settings that contradict its checkpoint); Settings holds them.
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Train a (symmetric) SATNet layer on Sudoku or Rubik's-cube completion.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("task", choices=TASKS, help="puzzle family")
    parser.add_argument("--model", required=True, choices=MODELS,
                        help="satnet-plain, satnet-300aux, symsatnet or symsatnet-auto")
    parser.add_argument("--box", type=int, help="Sudoku box size: 3 for 9x9 (default), 2 for 4x4")
    parser.add_argument("--data", metavar="FILE.npz", help="data set to train on (default: generate one)")
    parser.add_argument("--test", metavar="FILE.npz", help="separate test set (then --data is all training data)")
    parser.add_argument("--count", type=int, help="examples to generate without --data (default 10000)")
    parser.add_argument("--epochs", type=int, help="epochs in all (default 100; may grow on --resume)")
    parser.add_argument("--batch", type=int, help="batch size (default 40)")
    lrs = ", ".join(f"{model} {lr:g}" for model, lr in DEFAULT_LR.items())
    parser.add_argument("--lr", type=float, help=f"Adam learning rate (default: {lrs})")
    parser.add_argument("--corrupt", type=int, metavar="K", help="corrupt K label cells of every training example")
    parser.add_argument("--seed", type=int, help="seed of data, initialisation, order and solver (default 0)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default cpu")
    parser.add_argument("--out", metavar="DIR", help="run folder (default runs/<board>-<model>-seed<S>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in DIR from its checkpoint")
    parser.add_argument("--force", action="store_true", help="start over in a DIR that holds a run")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--max-iter", type=int, dest="max_iter", help="largest number of solver sweeps (default 40)")
    parser.add_argument("--truth", choices=TRUTH_MODES,
                        help=f"SymSATNet truth row: 'tied' (one coefficient per point orbit, default) or "
                             f"'free' (n entries, as published)")
    parser.add_argument("--group", metavar="EXPR",
                        help="symsatnet: the group to tie C under, an expression of the group language, e.g. "
                             "'cube_group(slices=False)' (default: the task's symmetry group)")
    parser.add_argument("--aux", type=int,
                        help="auxiliary variables (default: 300 for satnet-300aux, 0 otherwise, as published)")
    parser.add_argument("--kernel", choices=KERNELS,
                        help="solver kernel: 'auto' (default: the fastest for the layer), 'dense' (C formed), "
                             "'structured' (SymSATNet: the aggregate fast path) or 'clauses' (SATNet: the S-form "
                             "kernel, C never formed); same results up to rounding, may change on --resume")
    parser.add_argument("--eval-batch", type=int, dest="eval_batch", help="batch size of evaluation (default 100)")
    parser.add_argument("--auto-epochs", type=int, dest="auto_epochs",
                        help="symsatnet-auto: plain epochs before discovery (default 10 Sudoku, 20 cube)")
    parser.add_argument("--auto-candidates", type=int, dest="auto_candidates",
                        help="symsatnet-auto: discovered groups to compare on the validation split (default 3)")
    parser.add_argument("--discover-method", dest="discover_method", choices=DISCOVERY_METHODS,
                        help="symsatnet-auto: discovery method (default auto: symfind, and the graph method "
                             "when symfind finds nothing, as symsatnet.discover)")
    parser.add_argument("--discover-max-err", type=float, dest="discover_max_err",
                        help="symsatnet-auto: largest relative projection error (default 0.5)")
    parser.add_argument("--soft-groups", dest="soft_groups", metavar="NAMES",
                        help="symsatnet-soft: comma-separated symmetry types to tie softly (default all: "
                             "digits,rows,bands,columns,stacks,transpose for Sudoku; facelets,colours for the cube)")
    parser.add_argument("--soft-warmup", type=_epochs_or_auto, dest="soft_warmup", metavar="EPOCHS|auto",
                        help="symsatnet-soft: epochs that train the shared part alone before the pathways "
                             "open (default auto: until its training board accuracy, above 0, rises by less than "
                             f"{SETTLE_GAIN:g} in an epoch, at most {SETTLE_MAX_EPOCHS})")
    parser.add_argument("--soft-significance", type=float, dest="soft_significance", metavar="SD",
                        help="symsatnet-soft: standard deviations of its batch noise a pathway coefficient's "
                             "averaged gradient must exceed to move it off 0 (default 3)")
    parser.add_argument("--soft-shrink", type=float, dest="soft_shrink", metavar="SD",
                        help="symsatnet-soft: the pathways' L1 weight in the same units (default 3)")
    parser.add_argument("--soft-shared-lr", type=float, dest="soft_shared_lr", metavar="FACTOR",
                        help="symsatnet-soft: the shared part's learning rate once the pathways are open, as a "
                             "fraction of --lr (default 1: unchanged)")
    parser.add_argument("--soft-select", action="store_true", dest="soft_select",
                        help="symsatnet-soft: hold out a ninth of the training data for validation and keep the "
                             "epoch with the best validation board accuracy in DIR/best.pt")
    parser.add_argument("--validation", action="store_true",
                        help="hold out a ninth of the training data for validation (8:1:1 when the data set is "
                             "split into train and test), report it every epoch and keep the epoch with the best "
                             "validation board accuracy in DIR/best.pt")
    parser.add_argument("--soft-path-lr", type=float, dest="soft_path_lr",
                        help="symsatnet-soft: the pathways' gradient step size (default 1)")
    parser.add_argument("--no-progress", action="store_false", dest="progress", help="no progress bars")
    return parser


# Options that mean something only for some tasks or models: given elsewhere they would be
# ignored silently (``cube --box 7``), so they are refused.
SUDOKU_ONLY = ("box",)
AUTO_ONLY = ("auto_epochs", "auto_candidates", "discover_method", "discover_max_err")
SOFT_ONLY = ("soft_groups", "soft_path_lr", "soft_warmup", "soft_significance", "soft_shrink", "soft_shared_lr",
             "soft_select")


def irrelevant_option(arguments: dict) -> Optional[str]:
    """Why an explicitly given option does not apply to the task or model, or None."""
    for name in SUDOKU_ONLY:
        if name in arguments and arguments["task"] != "sudoku":
            return f"--{name.replace('_', '-')} applies to the sudoku task, not {arguments['task']}"
    for name in AUTO_ONLY:
        if name in arguments and arguments["model"] != "symsatnet-auto":
            return f"--{name.replace('_', '-')} applies to --model symsatnet-auto, not {arguments['model']}"
    for name in SOFT_ONLY:
        if name in arguments and arguments["model"] != "symsatnet-soft":
            return f"--{name.replace('_', '-')} applies to --model symsatnet-soft, not {arguments['model']}"
    return None


def zero_epochs(arguments: dict) -> Optional[str]:
    """Why ``--epochs 0`` for a new run is refused (it would train nothing, write no checkpoint), or None."""
    if arguments.get("epochs") == 0 and not arguments.get("resume"):
        return (f"--epochs 0 trains nothing and writes no checkpoint; give --epochs 1 or more "
                f"(`python -m puzzles.{arguments['task']} generate` makes a data set without training)")
    return None


OUT_OF_MEMORY = "out of memory; try a smaller --batch, --eval-batch or --aux"


def _is_out_of_memory(error: RuntimeError) -> bool:
    import torch

    return isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["visual-sudoku"]:  # a model around the layer, with options of its own
        from .visual.cli import main as visual_main

        return visual_main(argv[1:])
    arguments = vars(build_parser().parse_args(argv))
    problem = irrelevant_option(arguments) or zero_epochs(arguments)
    if problem:
        print(f"{PROGRAM}: error: {problem}", file=sys.stderr)
        return 2
    settings = Settings(**arguments)
    out = settings.out or "the run folder"
    return run_command(
        lambda: _train_reporting_memory(settings, set(arguments)),
        program=PROGRAM,
        failures=(TrainingError, DatasetError),
        out_of_memory=OUT_OF_MEMORY,
        interrupted=f"interrupted; continue with --resume (checkpoint in {out})",
    )


def _train_reporting_memory(settings: Settings, explicit: set[str]) -> None:
    """``train``, with torch's out-of-memory error raised as the MemoryError it is."""
    try:
        train(settings, explicit=explicit)
    except RuntimeError as error:  # torch's allocators raise RuntimeError, not MemoryError
        if not _is_out_of_memory(error):
            raise
        raise MemoryError(str(error)) from error


if __name__ == "__main__":
    sys.exit(main())
