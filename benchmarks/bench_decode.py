"""Decoding a trained Sudoku/cube checkpoint on several data sets: accuracy and time per puzzle.

One JSON line per (data set, method[, solver]): board accuracy against the labels, the fraction of
boards that satisfy the puzzle's own rules (Sudoku rules and givens; cube legality and the
visible facelets), the fraction proved optimal, and the median / mean / 90th-percentile
decode time per puzzle. 'exact' times are per item on one core (relaxation share included);
'decimate' times are the wall time of the whole batch divided by its size (its items are
solved together, one relaxation call per decision level); 'relaxation' likewise. With
several ``--solvers``, 'exact' runs once per solver, back to back on the same puzzles.

Usage:
    python benchmarks/bench_decode.py CHECKPOINT NAME=FILE.npz [NAME=FILE.npz ...]
        [--methods relaxation,decimate,exact] [--solvers cpsat,rc2] [--count N] [--threads 1]
        [--time-limit 10]
        [--out results.jsonl]

A data set of another box size than the checkpoint's (Sudoku) is decoded with the rules
carried over kind by kind (puzzles.sudoku.relations); 'relaxation' is skipped for it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from puzzles.decoding import decode_examples, rules_of_checkpoint, rules_satisfied  # noqa: E402
from puzzles.training.checkpoint import layer_from_checkpoint, load_checkpoint  # noqa: E402
from puzzles.training.tasks import Task  # noqa: E402
from symsatnet.decode import SOLVERS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("data", nargs="+", metavar="NAME=FILE.npz")
    parser.add_argument("--methods", default="relaxation,decimate,exact")
    parser.add_argument("--solvers", default="cpsat",
                        help="exact solvers, comma-separated: cpsat (OR-Tools CP-SAT), rc2 (python-sat's RC2)")
    parser.add_argument("--count", type=int, default=1000, help="first N puzzles of each file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--max-iter", type=int, help="relaxation sweeps (default: the run's)")
    parser.add_argument("--out", help="append the JSON lines to this file too")
    args = parser.parse_args()
    solvers = args.solvers.split(",")
    unknown = sorted(set(solvers) - set(SOLVERS))
    if unknown:
        parser.error(f"unknown solver(s) {', '.join(unknown)}; choose from {', '.join(SOLVERS)}")
    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.checkpoint)
    info = checkpoint["task"]
    task = Task(info["name"], info.get("box"))
    layer = layer_from_checkpoint(checkpoint, args.checkpoint).eval()
    if args.max_iter:
        layer.max_iter = args.max_iter
    started = time.perf_counter()
    constraints = rules_of_checkpoint(layer, checkpoint, args.checkpoint, task)
    rules_seconds = time.perf_counter() - started
    print(f"# rules: {constraints.describe()} ({rules_seconds:.1f} s)", flush=True)
    for item in args.data:
        name, _, path = item.partition("=")
        target_task, target_layer, target_constraints = task, layer, constraints
        dataset = np.load(path)
        puzzles, solutions = dataset["puzzles"][: args.count], dataset["solutions"][: args.count]
        if task.name == "sudoku" and puzzles.shape[-1] != task.box**2:
            from puzzles.sudoku.relations import resize_constraints, resize_layer

            box = int(round(puzzles.shape[-1] ** 0.5))
            target_task = Task("sudoku", box)
            target_layer = resize_layer(layer, box)
            target_constraints = resize_constraints(constraints, task.box, box)
        examples = target_task.encode(puzzles, solutions)
        runs = [(method, solver) for method in args.methods.split(",")
                for solver in (solvers if method == "exact" else [None])]
        for method, solver in runs:
            if method == "relaxation" and target_task != task:
                continue
            began = time.perf_counter()
            if method == "relaxation":
                with torch.no_grad():
                    outputs = target_layer(torch.from_numpy(examples.inputs), torch.from_numpy(examples.given))
                values = outputs.numpy().reshape(len(puzzles), target_task.cells, target_task.values).argmax(-1)
                seconds = np.full(len(puzzles), (time.perf_counter() - began) / len(puzzles))
                proved = np.zeros(len(puzzles), dtype=bool)
                status = {}
            else:
                options = {"time_limit": args.time_limit, "solver": solver} if method == "exact" else {}
                values, report = decode_examples(target_layer, examples, target_task, method, target_constraints,
                                                 **options)
                seconds = report.seconds if method == "exact" else np.full(
                    len(puzzles), (time.perf_counter() - began) / len(puzzles))
                proved = report.proved
                status = {state: report.status.count(state) for state in sorted(set(report.status))}
            boards = target_task.boards(values)
            line = {
                "bench": "decode", "checkpoint": args.checkpoint, "layer": type(layer).__name__,
                "data": name, "file": path, "count": len(puzzles),
                "givens_mean": float((examples.given_cells.sum(axis=1)).mean()),
                "method": method, "solver": solver,
                "board_accuracy": float((values == examples.truth).all(axis=1).mean()),
                "rules_satisfied": float(rules_satisfied(target_task, puzzles, boards).mean()),
                "proved": float(proved.mean()),
                "status": status,
                "median_ms": 1000 * float(np.median(seconds)),
                "mean_ms": 1000 * float(np.mean(seconds)),
                "p90_ms": 1000 * float(np.percentile(seconds, 90)),
                "wall_s": time.perf_counter() - began,
                "threads": args.threads, "max_iter": target_layer.max_iter,
                "machine": platform.processor() or platform.machine(),
                "rules": target_constraints.describe(),
            }
            print(json.dumps(line), flush=True)
            if args.out:
                with open(args.out, "a") as stream:
                    stream.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
