"""Mean and spread over seeds of cube training runs, from their log CSVs (issue 20).

Command line::

    python -m puzzles.cube.seeds "SymSATNet free=runs/cube-symsatnet-free-seed0 runs/cube-symsatnet-free-seed1" \\
        "SATNet-Plain=runs/cube-satnet-plain-seed0 runs/cube-satnet-plain-seed1" --plot seeds.png

Each argument is ``LABEL=LOG LOG ...`` where a LOG is a run folder (its log.csv is read) or
a CSV written by ``puzzles.train``. For every model it prints the test board accuracy of
each seed at the last epoch all its seeds reached, their mean, sample standard deviation
and range, the same at the epoch (up to then) where the mean over seeds is highest, and
the last epoch that all models share. ``--plot`` draws each model's mean with its range
shaded and every seed as a thin line (needs matplotlib).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METRIC = "test_board_acc"


class SeedsError(Exception):
    """A missing, empty or malformed log."""


def read_log(path: str | Path, metric: str = METRIC) -> dict[int, float]:
    """{epoch: metric} of one run's log.csv (a run folder or the CSV itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "log.csv"
    if not path.is_file():
        raise SeedsError(f"{path}: no such log")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise SeedsError(f"{path}: no epochs logged")
    if metric not in rows[0] or "epoch" not in rows[0]:
        raise SeedsError(f"{path}: no 'epoch' or {metric!r} column")
    return {int(row["epoch"]): float(row[metric]) for row in rows if row[metric] not in ("", None)}


@dataclass
class SeedSummary:
    label: str
    epochs: list[int]  # epochs every seed reached
    values: np.ndarray  # (seeds, len(epochs))

    def at(self, epoch: int) -> dict:
        column = self.values[:, self.epochs.index(epoch)]
        return {
            "epoch": epoch,
            "seeds": column.tolist(),
            "mean": float(column.mean()),
            "std": float(column.std(ddof=1)) if len(column) > 1 else None,
            "min": float(column.min()),
            "max": float(column.max()),
        }

    def last(self, up_to: int | None = None) -> dict:
        epochs = [e for e in self.epochs if up_to is None or e <= up_to]
        return self.at(epochs[-1])

    def best(self, up_to: int | None = None) -> dict:
        """The epoch (up to up_to) where the mean over seeds is highest; the earliest on ties."""
        epochs = [e for e in self.epochs if up_to is None or e <= up_to]
        means = [self.values[:, self.epochs.index(e)].mean() for e in epochs]
        return self.at(epochs[int(np.argmax(means))])


def summarise(label: str, logs: list[str | Path], metric: str = METRIC) -> SeedSummary:
    curves = [read_log(log, metric) for log in logs]
    epochs = sorted(set.intersection(*(set(curve) for curve in curves)))
    if not epochs:
        raise SeedsError(f"{label}: its runs share no epoch")
    return SeedSummary(label, epochs, np.array([[curve[e] for e in epochs] for curve in curves]))


def describe(entry: dict) -> str:
    seeds = ", ".join(f"{value:.3f}" for value in entry["seeds"])
    spread = f" ± {entry['std']:.3f} (sd)" if entry["std"] is not None else ""
    return f"epoch {entry['epoch']}: mean {entry['mean']:.3f}{spread}, range {entry['min']:.3f}–{entry['max']:.3f} [{seeds}]"


def plot(summaries: list[SeedSummary], out: str | Path, reference: dict[str, float] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for index, summary in enumerate(summaries):
        colour = f"C{index}"
        mean = summary.values.mean(axis=0)
        axes.fill_between(summary.epochs, summary.values.min(axis=0), summary.values.max(axis=0), color=colour, alpha=0.2)
        for row in summary.values:
            axes.plot(summary.epochs, row, color=colour, linewidth=0.6, alpha=0.6)
        axes.plot(summary.epochs, mean, color=colour, linewidth=2, label=f"{summary.label} ({len(summary.values)} seeds)")
    for index, (name, value) in enumerate((reference or {}).items()):
        axes.axhline(value, color="grey", linestyle=("--", ":", "-.")[index % 3], linewidth=1, label=name)
    axes.set_xlabel("epoch")
    axes.set_ylabel("test board accuracy")
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m puzzles.cube.seeds", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="LABEL=LOG [LOG ...]", help="a model and its runs' logs")
    parser.add_argument("--metric", default=METRIC, help=f"log column (default {METRIC})")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the seeds' curves and spread")
    parser.add_argument("--reference", action="append", default=[], metavar="NAME=VALUE",
                        help="horizontal line on the plot, e.g. 'published SymSATNet=0.66'")
    arguments = parser.parse_args(argv)
    try:
        summaries = []
        for spec in arguments.models:
            label, sep, logs = spec.partition("=")
            if not sep or not logs.split():
                raise SeedsError(f"{spec!r}: expected LABEL=LOG [LOG ...]")
            summaries.append(summarise(label.strip(), logs.split(), arguments.metric))
        reference = {}
        for spec in arguments.reference:
            name, sep, value = spec.rpartition("=")
            if not sep:
                raise SeedsError(f"--reference {spec!r}: expected NAME=VALUE")
            reference[name] = float(value)
    except (SeedsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    common = min(summary.epochs[-1] for summary in summaries)
    for summary in summaries:
        print(f"{summary.label}: {len(summary.values)} seeds, epochs 1–{summary.epochs[-1]} in all")
        print(f"  last epoch of all its seeds  {describe(summary.last())}")
        print(f"  best mean over seeds         {describe(summary.best())}")
        if common < summary.epochs[-1]:
            print(f"  at the models' common {common:3d}  {describe(summary.at(common))}")
            print(f"  best mean up to {common:3d}        {describe(summary.best(common))}")
    if arguments.plot:
        plot(summaries, arguments.plot, reference)
        print(f"wrote {arguments.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
