"""Learning curves of several runs in one PNG.

Example::

    python -m puzzles.plot runs/9x9-* --out curves.png
    python -m puzzles.plot runs/a runs/b --metric test_cell_acc

Reads DIR/log.csv of every run (written by puzzles.train) and draws the metric (test board
accuracy by default) against the epoch, one line per run, labelled by folder name.
Needs matplotlib (``pip install matplotlib`` or ``pip install symsatnet[plot]``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Optional, Sequence

from .commands import run_command

PROGRAM = "puzzles.plot"
METRICS = {
    "test_board_acc": "test board accuracy",
    "test_cell_acc": "test cell accuracy",
    "train_board_acc": "train board accuracy",
    "train_loss": "train loss",
    "test_loss": "test loss",
    "val_board_acc": "validation board accuracy",
}


class PlotError(Exception):
    """Bad input for the plot (missing or empty logs, no matplotlib)."""


def read_curve(run_dir: str | Path, metric: str = "test_board_acc") -> tuple[list[int], list[float], list[int]]:
    """(epochs, values, epochs where the layer changed) from DIR/log.csv."""
    path = Path(run_dir) / "log.csv"
    if not path.is_file():
        raise PlotError(f"{path}: no such log (is {run_dir} a training run folder?)")
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    if rows and metric not in rows[0]:
        raise PlotError(f"{path}: has no column {metric!r}")
    epochs, values, switches = [], [], []
    previous_layer = None
    for row in rows:
        if not row.get(metric):
            continue
        try:
            epochs.append(int(row["epoch"]))
            values.append(float(row[metric]))
        except (KeyError, ValueError):
            raise PlotError(f"{path}: malformed row {row}") from None
        if previous_layer is not None and row.get("layer") != previous_layer:
            switches.append(int(row["epoch"]))
        previous_layer = row.get("layer")
    if not epochs:
        raise PlotError(f"{path}: no epochs logged yet")
    return epochs, values, switches


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotError("plotting needs matplotlib: pip install matplotlib (or pip install 'symsatnet[plot]')") from None
    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as pyplot

    return pyplot


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path, metric: str = "test_board_acc",
              title: Optional[str] = None) -> Path:
    """Draw ``metric`` against epoch for every run into the PNG ``out``; returns its path."""
    curves = [(Path(run_dir), *read_curve(run_dir, metric)) for run_dir in run_dirs]
    pyplot = _pyplot()
    suffix = Path(out).suffix.lower().lstrip(".")
    formats = pyplot.figure().canvas.get_supported_filetypes()
    pyplot.close("all")
    if suffix not in formats:
        kind = f".{suffix} files" if suffix else "files without a suffix"
        raise PlotError(f"--out {out}: cannot draw {kind}; use one of {', '.join(sorted(formats))} (e.g. .png)")
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for run_dir, epochs, values, switches in curves:
        line, = axes.plot(epochs, values, marker="o" if len(epochs) < 30 else None, markersize=3,
                          label=run_dir.resolve().name)
        for epoch in switches:  # SymSATNet-Auto: where the discovered group took over
            axes.axvline(epoch - 0.5, color=line.get_color(), linestyle=":", linewidth=1)
    axes.set_xlabel("epoch")
    axes.set_ylabel(METRICS.get(metric, metric))
    if metric.endswith("_acc"):
        axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    pyplot.close(figure)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Plot learning curves of training runs.")
    parser.add_argument("runs", nargs="+", metavar="DIR", help="run folders holding log.csv")
    parser.add_argument("--out", default="learning_curves.png", metavar="FILE.png",
                        help="output image (default learning_curves.png)")
    parser.add_argument("--metric", default="test_board_acc", help=f"column to plot: {', '.join(METRICS)} ...")
    parser.add_argument("--title", help="figure title")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: print(f"wrote {plot_runs(args.runs, args.out, args.metric, args.title)}"),
                       program=PROGRAM, failures=(PlotError,))


if __name__ == "__main__":
    sys.exit(main())
