"""Structured vs dense kernel of SymSATNet on 9x9 Sudoku, one JSON line per measurement.

Both layers hold the same coefficients, truth row, starting vectors and update order
(SymSATNet(729, sudoku_group(3)), k=32, batch 40, 40 sweeps, eps=0 so every run does the
same work, all cores). The kernels alternate within each repeat, so a busy machine slows
both alike; the ratio (dense / structured) is the number to read. Lines:

  {"kernel": "dense"|"structured", "forward_ms_per_example", "total_ms_per_example", ...}
  {"ratio": ..., "forward": dense/structured, "forward_backward": dense/structured}
  {"epoch_equivalent": ..., "examples": 9000, "extrapolated_from_batches": ...}

Usage: PYTHONPATH=. python benchmarks/bench_structured.py [--batch 40] [--repeats 3]
       [--threads T] [--box 3] [--sweeps 40] [--order natural|random]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from symsatnet.groups import sudoku_group
from symsatnet import SymSATNet


def make_layers(box: int, sweeps: int, k: int, order: str):
    group = sudoku_group(box)
    torch.manual_seed(0)
    dense = SymSATNet(group.degree, group, max_iter=sweeps, eps=0.0, k=k, kernel="dense")
    fast = SymSATNet(group.degree, group, max_iter=sweeps, eps=0.0, k=k, kernel="structured")
    fast.load_state_dict(dense.state_dict(), strict=False)
    fast.kernel = "structured"
    for layer in (dense, fast):
        # 'random' draws the permutation from the layer's generator, which both seed alike.
        layer.order = None if order == "natural" else "random"
    return dense, fast


def problem(n: int, side: int, batch: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.rand(batch, n, generator=gen)
    # About 36 given cells of 81: all side digit bits of a given cell are inputs.
    cells = torch.rand(batch, n // side, generator=gen) < 36 / 81
    given = cells.repeat_interleave(side, dim=1)
    return z, given


def run_once(layer: SymSATNet, z, given, backward: bool) -> float:
    layer.generator = torch.Generator().manual_seed(1)
    layer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out = layer(z, given)
    if backward:
        out.square().sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--box", type=int, default=3)
    parser.add_argument("--sweeps", type=int, default=40)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--order", choices=["natural", "random"], default="natural",
                        help="update order: natural, or a random permutation per forward as in training")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dense, fast = make_layers(args.box, args.sweeps, args.k, args.order)
    side = args.box**2
    z, given = problem(dense.n, side, args.batch)

    with torch.no_grad():
        outputs = []
        for layer in (dense, fast):
            layer.generator = torch.Generator().manual_seed(1)
            outputs.append(layer(z, given))
        agree = (outputs[0] - outputs[1]).abs().max().item()
    times = {name: {"forward": [], "total": []} for name in ("dense", "structured")}
    for attempt in range(args.repeats + 1):
        for name, layer in (("dense", dense), ("structured", fast)):
            with torch.no_grad():
                forward = run_once(layer, z, given, backward=False)
            total = run_once(layer, z, given, backward=True)
            if attempt > 0:  # the first round warms up
                times[name]["forward"].append(forward)
                times[name]["total"].append(total)

    medians = {}
    common = dict(box=args.box, n=dense.n, batch=args.batch, sweeps=args.sweeps, k=args.k, order=args.order,
                  threads=torch.get_num_threads(), repeats=args.repeats)
    for name, record in times.items():
        forward = statistics.median(record["forward"]) / args.batch
        total = statistics.median(record["total"]) / args.batch
        medians[name] = (forward, total)
        print(json.dumps(dict(kernel=name, forward_ms_per_example=round(forward * 1e3, 4),
                              total_ms_per_example=round(total * 1e3, 4), **common)))
    ratio_forward = medians["dense"][0] / medians["structured"][0]
    ratio_total = medians["dense"][1] / medians["structured"][1]
    print(json.dumps(dict(ratio="dense/structured", forward=round(ratio_forward, 2),
                          forward_backward=round(ratio_total, 2), max_output_difference=agree, **common)))
    examples = 9000
    for name, (_, total) in medians.items():
        print(json.dumps(dict(epoch_equivalent=name, examples=examples,
                              seconds=round(total * examples, 1),
                              extrapolated_from_batches=args.repeats, batch=args.batch,
                              note="9000 examples fwd+bwd, extrapolated from the measured batches")))


if __name__ == "__main__":
    main()
