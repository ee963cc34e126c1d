"""SATNet's two kernels on the published Sudoku layers, one JSON line per configuration.

``SATNet(kernel='clauses')`` runs the S-form kernel (C = S Sᵀ never formed; per block of
updates it reads the m rows of Ω = Sᵀ V twice), ``kernel='dense'`` forms C once per
forward and runs the C-form kernel (it reads the N rows of V once). Which is faster
depends on N against 2 m; ``kernel='auto'`` picks by that count on the CPU. This script
measures both on:

  plain    n=729, m=730, aux=0  (SATNet-Plain, N = 730)
  300aux   n=729, m=600, aux=300 (SATNet-300aux, N = 1030)

with k=32, batch 40 and 40 forced sweeps (eps = 0), the two kernels timed alternately
so a busy machine slows both alike. Each line gives forward and forward+backward
milliseconds per example (median of --repeats) and the clauses/dense ratio.

Usage: python benchmarks/bench_satnet_kernels.py [--batch 40] [--repeats 3] [--threads T]
       [--device cpu|cuda] [--only plain|300aux]
"""

from __future__ import annotations

import json
import statistics

import torch

import symsatnet
from timing import machine, time_forward_backward, timing_parser  # this folder's shared part

CONFIGS = {"plain": (729, 730, 0), "300aux": (729, 600, 300)}


def time_once(layer: symsatnet.SATNet, z, given, device: str) -> tuple[float, float]:
    """Forward and forward+backward seconds of one batch."""
    layer.zero_grad()
    layer.generator = torch.Generator().manual_seed(1)
    return time_forward_backward(lambda: layer(z, given), device)


def measure(name: str, batch: int, repeats: int, device: str) -> dict:
    n, m, aux = CONFIGS[name]
    torch.manual_seed(0)
    layer = symsatnet.SATNet(n, m, aux=aux, max_iter=40, eps=0.0).to(device)
    gen = torch.Generator().manual_seed(2)
    z = torch.rand(batch, n, generator=gen).to(device)
    given = (torch.rand(batch, n, generator=gen) < 36 / 81).to(device)
    times: dict[str, list[tuple[float, float]]] = {"dense": [], "clauses": []}
    for attempt in range(repeats + 1):
        for kernel in times:
            layer.kernel = kernel
            measured = time_once(layer, z, given, device)
            if attempt > 0:  # the first round warms caches and allocators
                times[kernel].append(measured)
    layer.kernel = "auto"
    record = {
        "config": name,
        "n": n,
        "m": m,
        "aux": aux,
        **machine(device),
        "batch": batch,
        "auto_picks": "dense" if layer.uses_dense() else "clauses",
    }
    for kernel, runs in times.items():
        record[f"{kernel}_forward_ms_per_example"] = round(statistics.median(t[0] for t in runs) / batch * 1e3, 3)
        record[f"{kernel}_forward_backward_ms_per_example"] = round(statistics.median(t[1] for t in runs) / batch * 1e3, 3)
    for part in ("forward", "forward_backward"):
        record[f"clauses_over_dense_{part}"] = round(
            record[f"clauses_{part}_ms_per_example"] / record[f"dense_{part}_ms_per_example"], 2
        )
    return record


def main(argv=None) -> None:
    parser = timing_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CONFIGS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in [args.only] if args.only else list(CONFIGS):
        print(json.dumps(measure(name, args.batch, args.repeats, args.device)), flush=True)


if __name__ == "__main__":
    main()
