"""Per-example time of the mixing-method layers, one JSON line per configuration.

Configurations (docs/design.md, "Forward"): every run does the same work (eps = 0,
all sweeps forced):

  c-form    n=729 (N=730), k=32, batch 40, 40 sweeps  (SATNet-Plain / SymSATNet size)
  s-form    n=729, m=600, aux=300, k=32, batch 40, 40 sweeps  (SATNet-300aux)

Each line reports forward and forward+backward milliseconds per example (median of
--repeats runs after a warm-up), the thread count and the floating-point rate of
the forward sweeps (compare it with the machine's peak: it does not depend on how
busy the machine is as much as the times do).

Usage: python benchmarks/bench_mixing.py [--batch 40] [--repeats 3] [--threads T]
       [--device cpu|cuda] [--only c-form|s-form] [--compare-satnet]
"""

from __future__ import annotations

import json
import os
import statistics

import torch

from symsatnet import functional as F
from timing import machine, time_forward_backward, timing_parser  # this folder's shared part


def problem(form: str, batch: int, device: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n = 729
    if form == "c-form":
        size = n + 1
        A = torch.randn(size, size, generator=gen) * (0.25 / size**0.5)
        weights = (A + A.T).to(device)
    else:
        size, m = n + 1 + 300, 600
        weights = (torch.randn(size, m, generator=gen) * (0.5 / (size + m)) ** 0.5).to(device)
    z = torch.rand(batch, n, generator=gen).to(device)
    given = (torch.rand(batch, n, generator=gen) < 36 / 81).to(device)
    return weights, z, given


def time_layer(form: str, batch: int, repeats: int, device: str, k: int, sweeps: int):
    weights, z, given = problem(form, batch, device)
    weights.requires_grad_()
    solve = F.mix if form == "c-form" else F.smix
    kwargs = dict(k=k, max_iter=sweeps, eps=0.0, generator=torch.Generator().manual_seed(1))
    forward_times, total_times = [], []
    for attempt in range(repeats + 1):
        forward, total = time_forward_backward(lambda: solve(weights, z, given, **kwargs), device)
        if attempt > 0:  # the first run warms caches and allocators
            forward_times.append(forward)
            total_times.append(total)
    return statistics.median(forward_times), statistics.median(total_times), float((~given).sum()) / batch


def sweep_flops(form: str, outputs_per_example: float, k: int, sweeps: int) -> float:
    """Multiply-adds of the forward sweeps of one example, as flops (2 per FMA)."""
    if form == "c-form":
        return 2.0 * outputs_per_example * 730 * k * sweeps
    # S-form: the field (m) and the rank-one update of Omega (m) per update, N=1030 rows incl. aux.
    return 2.0 * (outputs_per_example + 300) * 2 * 600 * k * sweeps


def time_original_satnet(batch: int, repeats: int, sweeps: int):
    """Forward and forward+backward seconds of the original ``satnet`` package (S-form
    config), or None when it is not installed. It is not a dependency: build it from its
    repository yourself to compare (it needs m to be a multiple of 4; 600 is)."""
    try:
        import satnet  # the original package (locuslab), if the user installed it
    except ImportError:
        return None
    weights, z, given = problem("s-form", batch, "cpu")
    layer = satnet.SATNet(729, 600, aux=300, max_iter=sweeps, eps=0.0)
    with torch.no_grad():
        layer.S.copy_(weights)
    forward_times, total_times = [], []
    for attempt in range(repeats + 1):
        forward, total = time_forward_backward(lambda: layer(z, given.int()), "cpu")
        if attempt > 0:
            forward_times.append(forward)
            total_times.append(total)
    return statistics.median(forward_times), statistics.median(total_times)


def main(argv=None) -> None:
    parser = timing_parser(__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--sweeps", type=int, default=40)
    parser.add_argument("--only", choices=["c-form", "s-form"])
    parser.add_argument(
        "--compare-satnet", action="store_true", help="also time the original satnet package on the S-form config, if installed"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    forms = [args.only] if args.only else ["c-form", "s-form"]
    for form in forms:
        forward, total, outputs = time_layer(form, args.batch, args.repeats, args.device, args.k, args.sweeps)
        record = {
            "config": form,
            **machine(args.device),
            "isa": os.environ.get("SYMSATNET_CPU_ISA") or "best available",
            "batch": args.batch,
            "k": args.k,
            "sweeps": args.sweeps,
            "forward_ms_per_example": round(forward / args.batch * 1e3, 3),
            "forward_backward_ms_per_example": round(total / args.batch * 1e3, 3),
            "forward_gflops": round(sweep_flops(form, outputs, args.k, args.sweeps) * args.batch / forward / 1e9, 1),
        }
        if form == "s-form" and args.compare_satnet:
            original = time_original_satnet(args.batch, args.repeats, args.sweeps)
            if original is None:
                record["original_satnet"] = "not installed"
            else:
                record["original_satnet_forward_backward_ms_per_example"] = round(original[1] / args.batch * 1e3, 3)
                record["speedup_vs_original_satnet"] = round(original[1] / total, 2)
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
