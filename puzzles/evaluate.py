"""Evaluate a trained checkpoint on a data set: board and cell accuracy, predicted boards.

Example::

    python -m puzzles.evaluate runs/9x9-symsatnet-seed0/checkpoint.pt test.npz --predictions pred.npy

Cell accuracy counts the cells to predict (non-given cells, hidden facelets); board
accuracy the boards with every cell right. For the cube it also breaks the accuracy down
by kind of hidden facelet (``puzzles.cube.error_breakdown``) and prints what a completer
that cannot tell a corner from its mirror image can expect (``handedness_blind_ceiling``).
``--predictions`` writes the completed boards in the data set's own layout (Sudoku: int8
(count, side, side), values 1..side; cube: int8 (count, 54) colours). Exit status: 0 done, 1 bad input, 2 usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from puzzles.commands import run_command
from puzzles.datafile import DatasetError, OutputError, check_output, write_atomically
from symsatnet.decode import SOLVERS

from .training.checkpoint import layer_from_checkpoint, load_checkpoint
from .training.data import holds_validation, split_indices
from .training.metrics import evaluate
from .training.settings import TrainingError
from .training.tasks import Task

PROGRAM = "puzzles.evaluate"
DECODE_METHODS = ("relaxation", "exact", "decimate")


def _same_file(path: str | os.PathLike, saved: str, run_dir: Path) -> bool:
    """Whether ``path`` is the run's data file ``saved`` (as given then: relative to the
    directory the run was started in, or, failing that, to the run folder)."""
    for candidate in (Path(saved), run_dir / saved):
        try:
            if candidate.exists() and os.path.samefile(path, candidate):
                return True
        except OSError:
            continue
    return False


def evaluate_checkpoint(
    checkpoint_path: str | os.PathLike,
    data_path: str | os.PathLike,
    batch: int = 100,
    seed: Optional[int] = None,
    device: str = "cpu",
    split: Optional[str] = None,
    max_iter: Optional[int] = None,
    decode: str = "relaxation",
    decode_options: Optional[dict[str, Any]] = None,
    rules_data: Optional[str | os.PathLike] = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """(metrics, predicted boards) of the checkpoint's model on the data set, or on the part
    of it (``split``: 'train', 'val' or 'test') that the run used as such; ``max_iter``
    solves with that many sweeps instead of the run's; ``decode`` = 'exact' or 'decimate'
    turns the answers into assignments that satisfy the layer's rules (puzzles.decoding),
    with ``decode_options`` for ``symsatnet.decode.decode``."""
    if decode not in DECODE_METHODS:
        raise TrainingError(f"--decode must be one of {', '.join(DECODE_METHODS)}, got {decode!r}")
    if max_iter is not None and max_iter < 1:
        raise TrainingError(f"--max-iter must be >= 1, got {max_iter}")
    checkpoint = load_checkpoint(checkpoint_path)
    task_info = checkpoint.get("task") or {}
    try:
        task = Task(task_info.get("name"), task_info.get("box"))
    except ValueError as error:
        raise TrainingError(f"{checkpoint_path}: {error}") from None
    layer = layer_from_checkpoint(checkpoint, checkpoint_path).to(device)
    layer.eval()
    if max_iter is not None:
        layer.max_iter = max_iter
    dataset = _load_data(task, data_path)
    puzzles, solutions = dataset.puzzles, dataset.solutions
    if split is not None:
        saved = checkpoint["settings"]
        if saved.get("test"):
            raise TrainingError(f"{checkpoint_path}: the run was given its data files (--data/--test); "
                                f"evaluate one of those instead of using --split")
        if saved.get("data"):  # the run split its --data file: --split needs that very file
            if not _same_file(data_path, saved["data"], Path(checkpoint_path).parent):
                raise TrainingError(f"{checkpoint_path}: the run split {saved['data']}; --split needs that file, "
                                    f"not {data_path}")
        elif len(puzzles) != int(saved.get("count", len(puzzles))):
            raise TrainingError(f"{data_path} holds {len(puzzles)} examples, the run split {saved.get('count')}: "
                                f"--split needs the run's own data set (DIR/data.npz)")
        parts = split_indices(len(puzzles), int(saved.get("seed", 0)), holds_validation(saved))
        if split not in parts:
            raise TrainingError(f"{checkpoint_path}: the run has no {split!r} split (it has {', '.join(parts)})")
        puzzles, solutions = puzzles[parts[split]], solutions[parts[split]]
    examples = task.encode(puzzles, solutions)
    variant = (getattr(dataset, "metadata", None) or {}).get("variant", "standard")
    if seed is None:
        seed = int(checkpoint["settings"].get("seed", 0))
    if decode != "relaxation":
        metrics, boards = _decoded_metrics(layer, checkpoint, checkpoint_path, task, puzzles, examples, split, decode,
                                           decode_options or {}, rules_data, batch, variant)
        return _with_separation(metrics, layer, task, variant), boards
    metrics, predicted = evaluate(layer, examples, task, seed, batch, device=device, prefix="test", keep_predictions=True)
    metrics = {
        "board_accuracy": metrics["test_board_acc"],
        "cell_accuracy": metrics["test_cell_acc"],
        "loss": metrics["test_loss"],
        "count": len(examples),
        "split": split or "all",
        "epoch": int(checkpoint["epoch"]),
        "layer": checkpoint["layer_config"].get("layer"),
        "max_iter": layer.max_iter,
    }
    boards = task.boards(predicted)
    if task.name == "cube":
        from .cube import error_breakdown, handedness_blind_ceiling

        metrics["breakdown"] = error_breakdown(puzzles, solutions, boards)
        metrics["blind_ceiling"] = handedness_blind_ceiling(puzzles, solutions)
    return _with_separation(metrics, layer, task, variant), boards


def _with_separation(metrics: dict[str, Any], layer, task: Task, variant: str) -> dict[str, Any]:
    """Sudoku: add how cleanly the layer's pair weights alone single out the rules of the
    data's variant (``symsatnet.rules.separation``; no labels involved)."""
    if task.name != "sudoku":
        return metrics
    from symsatnet.rules import RulesError, separation

    from .sudoku.rules import rule_pairs

    try:
        result = separation(layer.cpu(), rule_pairs(task.box, diagonals=variant == "x"))
    except RulesError as error:  # e.g. a layer with no pair terms yet
        metrics["rule_separation"] = {"error": str(error)}
        return metrics
    metrics["rule_separation"] = {"rules": "x-sudoku" if variant == "x" else "sudoku", **dataclasses.asdict(result),
                                  "separated": result.separated}
    return metrics


def _load_data(task: Task, data_path: str | os.PathLike):
    """The task's data set; a Sudoku text, CSV or SATNet file is imported on the fly
    (``puzzles.sudoku.formats``: missing solutions solved, each checked to be unique)."""
    if task.name == "sudoku" and os.path.exists(data_path):
        from .sudoku.formats import detect_format, import_dataset

        if detect_format(data_path) != "npz":
            return import_dataset(data_path, box=task.box)
    return task.load(data_path)


def _decoded_metrics(layer, checkpoint, checkpoint_path, task, puzzles, examples, split, method, options,
                     rules_data, batch, variant) -> tuple[dict[str, Any], np.ndarray]:
    from .decoding import decode_examples, rules_of_checkpoint, rules_satisfied
    from symsatnet.decode import DecodeError
    from symsatnet.rules import RulesError

    try:
        constraints = rules_of_checkpoint(layer.cpu(), checkpoint, checkpoint_path, task, rules_data)
        predicted, report = decode_examples(layer, examples, task, method, constraints, batch=batch, **options)
    except (DecodeError, RulesError) as error:
        raise TrainingError(str(error)) from None
    truth = examples.truth
    to_predict = ~examples.given_cells
    boards = task.boards(predicted)
    statuses = {name: report.status.count(name) for name in sorted(set(report.status))}
    metrics = {
        "board_accuracy": float((predicted == truth).all(axis=1).mean()) if len(truth) else 0.0,
        "cell_accuracy": float(((predicted == truth) & to_predict).sum() / max(int(to_predict.sum()), 1)),
        "rules_satisfied": float(rules_satisfied(task, puzzles, boards, variant).mean()) if len(truth) else 0.0,
        "consistent": float(report.consistent.mean()) if len(truth) else 0.0,
        "proved": float(report.proved.mean()) if len(truth) else 0.0,
        "status": statuses,
        "median_seconds": float(np.median(report.seconds)) if len(truth) else 0.0,
        "rules": constraints.describe(),
        "count": len(examples),
        "split": split or "all",
        "epoch": int(checkpoint["epoch"]),
        "layer": checkpoint["layer_config"].get("layer"),
        "max_iter": layer.max_iter,
        "decode": method,
    }
    if method == "exact":
        metrics["solver"] = options.get("solver", "cpsat")
    return metrics, boards


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Evaluate a training checkpoint on a data set.")
    parser.add_argument("checkpoint", help="DIR/checkpoint.pt written by puzzles.train")
    parser.add_argument("data", metavar="DATA", help="Sudoku or cube data set (.npz) of the checkpoint's task; "
                        "for Sudoku also a text, CSV or SATNet file (imported on the fly)")
    parser.add_argument("--predictions", metavar="OUT.npy", help="write the predicted boards here (a new file)")
    parser.add_argument("--force", action="store_true", help="replace an existing --predictions file")
    parser.add_argument("--split", choices=("train", "val", "test"),
                        help="only the part of FILE.npz (the run's DIR/data.npz) that the run used as such")
    parser.add_argument("--batch", type=int, default=100, help="evaluation batch size (default 100)")
    parser.add_argument("--seed", type=int, help="seed of the solver's random start (default: the run's)")
    parser.add_argument("--max-iter", type=int, dest="max_iter",
                        help="solver sweeps (default: the run's, 40 in the published settings)")
    parser.add_argument("--decode", choices=DECODE_METHODS, default="relaxation",
                        help="relaxation: the layer's rounding (default); exact: a constraint solver (OR-Tools) "
                             "on the layer's rules; decimate: our own search, no solver needed")
    parser.add_argument("--rules-data", metavar="FILE.npz",
                        help="labels to check the layer's rules on (default: the run's training part)")
    parser.add_argument("--solver", choices=SOLVERS, default="cpsat",
                        help="exact: OR-Tools CP-SAT (default) or python-sat's RC2 MaxSAT solver")
    parser.add_argument("--time-limit", type=float, default=10.0, help="exact: seconds per puzzle (default 10)")
    parser.add_argument("--processes", type=int, default=1, help="exact: worker processes (default 1)")
    parser.add_argument("--max-nodes", type=int, default=2000, help="decimate: decisions per puzzle (default 2000)")
    parser.add_argument("--progress", action="store_true", help="progress bar while decoding")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(
        lambda: _print_metrics(args, _run(args)),
        program=PROGRAM,
        failures=(TrainingError, DatasetError, OutputError),
        out_of_memory="out of memory; try a smaller --batch",
    )


def _run(args: argparse.Namespace) -> dict[str, Any]:
    """Check the options, evaluate, write the predictions; the metrics."""
    if args.batch < 1:
        raise TrainingError(f"--batch must be >= 1, got {args.batch}")
    if args.seed is not None and not 0 <= args.seed < 2**64:
        raise TrainingError(f"--seed must lie in 0..2**64-1, got {args.seed}")
    if args.threads is not None:
        if args.threads < 1:
            raise TrainingError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda: no CUDA device is available")
    if args.predictions:  # before the (long) evaluation, so a refusal costs nothing
        check_output(args.predictions, args.force, "--predictions")
    options = {}
    if args.decode == "exact":
        options = dict(solver=args.solver, time_limit=args.time_limit, processes=args.processes,
                       progress=args.progress)
    elif args.decode == "decimate":
        options = dict(max_nodes=args.max_nodes, progress=args.progress)
    metrics, boards = evaluate_checkpoint(args.checkpoint, args.data, args.batch, args.seed, args.device,
                                         args.split, args.max_iter, args.decode, options, args.rules_data)
    if args.predictions:
        _save_npy(Path(args.predictions), boards)
    return metrics


def _print_metrics(args: argparse.Namespace, metrics: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"board accuracy {metrics['board_accuracy']:.4f}  cell accuracy {metrics['cell_accuracy']:.4f}  "
              f"({metrics['count']} examples, split {metrics['split']}, {metrics['layer']} after epoch {metrics['epoch']}, "
              f"{metrics['max_iter']} sweeps)")
        if "decode" in metrics:
            print(f"  decode {metrics['decode']}: puzzle rules satisfied {metrics['rules_satisfied']:.4f}, "
                  f"layer rules satisfied {metrics['consistent']:.4f}, proved optimal {metrics['proved']:.4f}, "
                  f"median {1000 * metrics['median_seconds']:.1f} ms per puzzle; status {metrics['status']}")
            print(f"  rules: {metrics['rules']}")
        if "rule_separation" in metrics:
            found = metrics["rule_separation"]
            if "error" in found:
                print(f"  rule separation: {found['error']}")
            else:
                verdict = ("separated" if found["separated"] else
                           f"{found['others_above']} other pair(s) weigh at least the weakest rule pair")
                print(f"  {found['rules']} rule pairs in the layer's weights alone: "
                      f"weakest {found['weakest_rule']:.3f}, strongest other pair {found['strongest_other']:.3f} "
                      f"of the largest; {verdict}")
        def shown(value: Optional[float]) -> str:
            return "-" if value is None else f"{value:.4f}"

        for name, part in metrics.get("breakdown", {}).items():
            print(f"  {name:<17} {shown(part['accuracy']):>7}  ({part['count']})")
        if "blind_ceiling" in metrics:
            ceiling = metrics["blind_ceiling"]
            print(f"  expected of a handedness-blind completer: board {shown(ceiling['board'])}, "
                  f"corner alone {shown(ceiling['corner_alone'])}, corner paired {shown(ceiling['corner_paired'])}")
        if args.predictions:
            print(f"predictions written to {args.predictions}")


def _save_npy(path: Path, array: np.ndarray) -> None:
    """np.save through a temporary name, so a failed write leaves no partial file (and a
    stream, so numpy writes exactly ``path``, adding no ".npy")."""
    write_atomically(path, lambda stream: np.save(stream, array))


if __name__ == "__main__":
    sys.exit(main())
