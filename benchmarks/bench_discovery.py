"""Planted-symmetry benchmark for symmetry discovery.

For random groups of several families, build a random invariant matrix
(``symsatnet.discovery.planted_matrix``), add noise, optionally shuffle the variables, run
``discover`` and check that the closed orbital partition found equals the planted one.
Prints one JSON line per (method, noise, shuffled) with the success rate and the median and
largest time, a line per family with failures, and timing lines for the 729 x 729 Sudoku
matrix (symfind, and the graph method without noise).

    python benchmarks/bench_discovery.py [--trials 20] [--seed 0] [--skip-sudoku]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from symsatnet import groups as G
from symsatnet.discovery import discover, planted_matrix


def _leaf(rng: np.random.Generator, low: int, high: int) -> G.Group:
    size = int(rng.integers(low, high + 1))
    kind = rng.choice(["S", "Z", "T"], p=[0.45, 0.4, 0.15])
    if kind == "Z" and size >= 3:
        return G.Cyclic(size)
    if kind == "T":
        return G.Trivial(size)
    return G.Symmetric(size)


FAMILIES = {
    "symmetric": lambda rng: G.Symmetric(int(rng.integers(3, 13))),
    "cyclic": lambda rng: G.Cyclic(int(rng.integers(5, 13))),
    "trivial": lambda rng: G.Trivial(int(rng.integers(3, 9))),
    "direct_sum": lambda rng: G.DirectSum(*[_leaf(rng, 2, 5) for _ in range(int(rng.integers(2, 4)))]),
    "product": lambda rng: G.Product(_leaf(rng, 2, 5), _leaf(rng, 2, 5)),
    "wreath": lambda rng: G.Wreath(_leaf(rng, 2, 4), G.Symmetric(int(rng.integers(2, 5)))
                                   if rng.random() < 0.6 else G.Cyclic(int(rng.integers(3, 5)))),
    "product_of_wreaths": lambda rng: G.Product(
        G.Wreath(G.Symmetric(2), G.Symmetric(int(rng.integers(2, 4)))), _leaf(rng, 2, 4)),
    "sudoku_box2": lambda rng: G.sudoku_group(2),
}

SETTINGS = [  # (method, shuffled)
    ("auto", False),
    ("symfind", False),
    ("graph", False),
    ("graph", True),
    ("both", True),
    ("auto", True),
]
NOISES = (0.0, 0.01, 0.05)


def run_trial(group: G.Group, noise: float, method: str, shuffled: bool, rng) -> tuple[bool, float]:
    matrix, order = planted_matrix(group, noise, rng, shuffle=shuffled)
    expected = G.canonical_labels(np.asarray(group.orbitals())[np.ix_(order, order)])
    started = time.perf_counter()
    result = discover(matrix, method=method)
    elapsed = time.perf_counter() - started
    return bool(np.array_equal(result.orbitals, expected)), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="random groups per family and setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-sudoku", action="store_true")
    args = parser.parse_args()

    for method, shuffled in SETTINGS:
        for noise in NOISES:
            rng = np.random.default_rng([args.seed, int(noise * 1000), int(shuffled)])
            times, successes, failures = [], 0, {}
            total = 0
            for family, make in FAMILIES.items():
                trials = max(1, args.trials // 4) if family == "sudoku_box2" else args.trials
                for _ in range(trials):
                    group = make(rng)
                    ok, elapsed = run_trial(group, noise, method, shuffled, rng)
                    successes += ok
                    total += 1
                    times.append(elapsed)
                    if not ok:
                        failures[family] = failures.get(family, 0) + 1
            print(json.dumps({
                "method": method, "noise": noise, "shuffled": shuffled, "trials": total,
                "success_rate": round(successes / total, 4),
                "median_seconds": round(statistics.median(times), 4),
                "max_seconds": round(max(times), 4),
                "failures_by_family": failures,
            }), flush=True)

    if not args.skip_sudoku:
        group = G.sudoku_group(3)
        for method, noise in (("symfind", 0.0), ("symfind", 0.05), ("graph", 0.0)):
            matrix, _ = planted_matrix(group, noise, np.random.default_rng(args.seed))
            started = time.perf_counter()
            result = discover(matrix, method=method)
            elapsed = time.perf_counter() - started
            print(json.dumps({
                "benchmark": "sudoku_729", "method": method, "noise": noise,
                "seconds": round(elapsed, 2), "num_orbitals": result.num_orbitals,
                "exact": bool(np.array_equal(result.orbitals, np.asarray(group.orbitals()))),
                "group": result.expression,
            }), flush=True)


if __name__ == "__main__":
    main()
