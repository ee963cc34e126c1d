"""Do the data push a SoftSymSATNet's pathways? The significance of each pathway's mean gradient.

    python tools/pathway_gradients.py DIR/checkpoint.pt DATA.npz [--batches 200] [--batch 40]

Loads a ``--model symsatnet-soft`` checkpoint (typically the end of its warm-up), opens its
pathways without moving anything, and collects the loss gradient of every pathway
coefficient over ``--batches`` disjoint batches of DATA.npz (the checkpoint's task; pass
the data it trained on; at most as many batches as the data hold). For each pathway it
prints the number of coefficients, the largest |mean| / standard error among them, what
the largest of that many draws of pure noise would be (the 1 - 1/(2k) quantile of
|N(0, 1)|), and the share of coefficients above 3.
A pathway whose largest value is no more than noise's gets no evidence from the data: the
gate of PathwayOptimizer will keep it at 0 (docs/design.md, "Soft tying", on why that is
forced when the data keep the pathway's symmetry). Exit status 0, or 1 with a one-line
message on bad input.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Optional, Sequence

import numpy as np
import torch


def significance(gradients: torch.Tensor) -> torch.Tensor:
    """Per column of a (batches, coefficients) gradient sample: |mean| / standard error
    (0 where a coefficient's gradient never varies)."""
    if gradients.dim() != 2 or gradients.shape[0] < 2:
        raise ValueError(f"need a (batches >= 2, coefficients) sample, got shape {tuple(gradients.shape)}")
    error = gradients.std(dim=0) / gradients.shape[0] ** 0.5
    mean = gradients.mean(dim=0).abs()
    return torch.where(error > 0, mean / error.clamp_min(torch.finfo(error.dtype).tiny), torch.zeros_like(mean))


def noise_maximum(count: int) -> float:
    """About the largest of ``count`` draws of |N(0, 1)|: its 1 - 1/(2 count) quantile."""
    return statistics.NormalDist().inv_cdf(1 - 1 / (4 * count))


def pathway_report(checkpoint_path: str, data_path: str, batches: int = 200, batch: int = 40,
                   seed: int = 0) -> list[dict]:
    from puzzles.training.checkpoint import layer_from_checkpoint, load_checkpoint
    from puzzles.training.metrics import batch_tensors, example_losses
    from puzzles.training.settings import TrainingError
    from puzzles.training.tasks import Task

    if batches < 2 or batch < 1:
        raise TrainingError(f"--batches must be >= 2 and --batch >= 1, got {batches} and {batch}")
    checkpoint = load_checkpoint(checkpoint_path)
    layer = layer_from_checkpoint(checkpoint, checkpoint_path)
    if not hasattr(layer, "open_pathways"):
        raise TrainingError(f"{checkpoint_path}: a {type(layer).__name__}, not a SoftSymSATNet "
                            f"(--model symsatnet-soft)")
    task_info = checkpoint.get("task") or {}
    task = Task(task_info.get("name"), task_info.get("box"))
    dataset = task.load(data_path)
    examples = task.encode(dataset.puzzles, dataset.solutions)
    layer.train()
    layer.open_pathways(True)
    parameters = [*layer.paths, *layer.truth_paths]
    kinds = [*layer.names, *(["tie"] if layer.tie is not None else [])]  # one pathway per space, in order
    names = [*(f"{name} (problem block)" for name in kinds), *(f"{name} (truth row)" for name in kinds)]
    # Disjoint batches: an example seen twice would make its batches correlated and the
    # standard error too small.
    batches = min(batches, len(examples) // batch)
    if batches < 2:
        raise TrainingError(f"{data_path} holds {len(examples)} examples: fewer than 2 batches of {batch}")
    torch.manual_seed(seed)  # the solver's random start, so a report can be repeated
    order = np.random.default_rng(seed).permutation(len(examples))
    device = torch.device("cpu")
    samples = []
    for step in range(batches):
        indices = order[step * batch:(step + 1) * batch]
        inputs, given = batch_tensors(examples, indices, device)
        targets = torch.from_numpy(examples.target_bits(indices, task.values))
        layer.zero_grad(set_to_none=True)
        example_losses(layer(inputs, given), targets, given).mean().backward()
        samples.append(torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel())
                                  for p in parameters]).double())
    z = significance(torch.stack(samples))
    report, start = [], 0
    for name, theta in zip(names, parameters):
        part = z[start:start + theta.numel()]
        start += theta.numel()
        if theta.numel() == 0:
            continue
        report.append({"pathway": name, "coefficients": theta.numel(), "batches": batches, "largest": float(part.max()),
                       "noise_largest": noise_maximum(theta.numel()), "above_3": float((part > 3).double().mean())})
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pathway_gradients", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="DIR/checkpoint.pt of a --model symsatnet-soft run")
    parser.add_argument("data", help="a data set (.npz) of the checkpoint's task, e.g. the one it trained on")
    parser.add_argument("--batches", type=int, default=200, help="batches to average over (default 200)")
    parser.add_argument("--batch", type=int, default=40, help="examples per batch (default 40, the training batch)")
    parser.add_argument("--seed", type=int, default=0,
                        help="order of the examples and the solver's random start (default 0)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="one JSON line per pathway")
    args = parser.parse_args(argv)
    from puzzles.commands import run_command
    from puzzles.datafile import DatasetError
    from puzzles.training.settings import TrainingError

    def run() -> None:
        if args.threads is not None:
            if args.threads < 1:
                raise TrainingError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        for row in pathway_report(args.checkpoint, args.data, args.batches, args.batch, args.seed):
            if args.json:
                print(json.dumps(row))
            else:
                print(f"{row['pathway']}: {row['coefficients']} coefficients, {row['batches']} batches, "
                      f"largest |mean| / standard error {row['largest']:.1f} "
                      f"(noise alone: about {row['noise_largest']:.1f}), {100 * row['above_3']:.1f}% above 3")

    return run_command(run, program="pathway_gradients", failures=(TrainingError, DatasetError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
