"""Command line: ``python -m puzzles.sudoku generate|check|solve|import|export``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..datafile import check_output, run_data_command
from .dataset import check_dataset, load_dataset, save_dataset
from .formats import FORMATS, export_dataset, format_of_output, import_dataset
from .generate import METHODS, generate_dataset, givens_distribution


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m puzzles.sudoku", description="Sudoku data sets for SATNet experiments."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="generate puzzles with unique solutions")
    generate.add_argument("--count", type=int, required=True, help="number of puzzles")
    generate.add_argument("--box", type=int, default=3, choices=(2, 3, 4), help="box size: 2 (4x4), 3 (9x9), 4 (16x16)")
    generate.add_argument("--method", choices=METHODS, default=None,
                          help="deducible: remove cells that stay hidden singles, as in the published data "
                               "(default; ~36 givens for 9x9); unique: remove while the solution stays unique, "
                               "to a givens target (default with --givens-* or --hard)")
    generate.add_argument("--givens-mean", type=float, help="mean number of givens (default 36 for 9x9)")
    generate.add_argument("--givens-min", type=int, help="fewest givens a puzzle aims for")
    generate.add_argument("--givens-max", type=int, help="most givens a puzzle aims for")
    generate.add_argument("--hard", action="store_true", help="near-minimal puzzles (about 25 givens for 9x9)")
    generate.add_argument("--seed", type=int, help="random seed (default: fresh, recorded in the file)")
    generate.add_argument("--workers", type=int, default=1, help="worker processes (the data do not depend on it)")
    generate.add_argument("--max-attempts", type=int, default=10, help="fresh grids to try for an unreachable target")
    generate.add_argument("--variant", choices=("standard", "x"), default="standard",
                          help="x: X-Sudoku, the two main diagonals hold every digit too (hidden-single "
                               "removal; with --hard: minimal unique-solution puzzles, ~19 givens for 9x9)")
    generate.add_argument("--out", required=True, help="output .npz file (a new file)")
    generate.add_argument("--force", action="store_true", help="replace an existing --out file")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")

    check = commands.add_parser("check", help="verify a data set file, including uniqueness")
    check.add_argument("file", help="a .npz written by generate")
    check.add_argument("--quiet", action="store_true", help="no progress bar")

    solve = commands.add_parser("solve", help="solve puzzles with a trained model's rules")
    solve.add_argument("checkpoint", help="DIR/checkpoint.pt of a Sudoku run (puzzles.train)")
    solve.add_argument("puzzles", nargs="+", metavar="PUZZLE",
                       help="a board on one line ('0' or '.' blank), or a text file with one per line")
    solve.add_argument("--decode", choices=("exact", "decimate", "relaxation"), default="exact",
                       help="exact: constraint solver (OR-Tools, default); decimate: no solver; relaxation: the layer")
    solve.add_argument("--rules-data", metavar="FILE.npz", help="labels to check the rules on (default: the run's)")
    solve.add_argument("--time-limit", type=float, default=10.0, help="exact: seconds per puzzle (default 10)")

    formats = "text (81-character lines, '0' or '.' blank), csv (Kaggle's quizzes,solutions) or satnet " \
              "(a folder with SATNet's features.pt and labels.pt)"
    import_ = commands.add_parser("import", help="make a data set of a text, CSV or SATNet file",
                                  description=f"Read {formats}; solve puzzles given without a solution.")
    import_.add_argument("file", help="text or CSV file, SATNet folder or features.pt")
    import_.add_argument("--out", required=True, help="output .npz file (a new file)")
    import_.add_argument("--format", choices=FORMATS, help="the input's format (default: detected)")
    import_.add_argument("--force", action="store_true", help="replace an existing --out file")
    import_.add_argument("--quiet", action="store_true", help="no progress bar")

    export = commands.add_parser("export", help="write a data set as text, CSV or SATNet tensors",
                                 description=f"Write {formats}.")
    export.add_argument("file", help="a .npz data set")
    export.add_argument("--out", required=True, help="output file (text, csv) or folder (satnet)")
    export.add_argument("--format", choices=FORMATS, help="default: from --out (.txt, .csv, no suffix: satnet)")
    export.add_argument("--no-solutions", action="store_false", dest="solutions",
                        help="text: puzzles only (default: each line 'puzzle solution')")
    export.add_argument("--force", action="store_true", help="replace existing output files")
    return parser


def run_generate(arguments: argparse.Namespace) -> int:
    if arguments.variant == "x":
        return run_generate_x(arguments)
    asked = (arguments.givens_mean, arguments.givens_min, arguments.givens_max)
    targeted = arguments.hard or any(value is not None for value in asked)
    method = arguments.method or ("unique" if targeted else "deducible")
    if method == "deducible" and arguments.hard:
        raise ValueError("--hard needs --method unique (hidden-single removal cannot reach ~25 givens)")
    distribution = givens_distribution(arguments.box, *asked, hard=arguments.hard) if targeted else None
    check_output(arguments.out, arguments.force)  # after the options, before the (long) generation
    started = time.perf_counter()
    dataset = generate_dataset(
        arguments.count,
        box=arguments.box,
        distribution=distribution,
        seed=arguments.seed,
        workers=arguments.workers,
        max_attempts=arguments.max_attempts,
        progress=not arguments.quiet,
        method=method,
    )
    elapsed = time.perf_counter() - started
    metadata = save_dataset(arguments.out, dataset)
    realised = metadata["givens_realised"]
    print(
        f"wrote {len(dataset)} puzzles ({dataset.side}x{dataset.side}) to {arguments.out} in {elapsed:.1f} s "
        f"with {arguments.workers} worker(s); seed {metadata['seed']}"
    )
    target = (f"target mean {distribution.mean:g} on {distribution.minimum}..{distribution.maximum}; "
              if distribution is not None else "")
    print(
        f"givens ({method}): {target}realised mean {realised['mean']:.2f} (std {realised['std']:.2f}, "
        f"range {realised['min']}..{realised['max']}); "
        f"{metadata['targets_missed']} puzzle(s) stayed above an unreachable target"
    )
    return 0


def run_generate_x(arguments: argparse.Namespace) -> int:
    from .xsudoku import generate_x_dataset

    asked = (arguments.method, arguments.givens_mean, arguments.givens_min, arguments.givens_max)
    if any(value is not None for value in asked) or arguments.workers != 1:
        raise ValueError("--variant x takes only --count, --box, --seed, --hard, --out, --force and --quiet")
    method = "minimal" if arguments.hard else "deducible"
    check_output(arguments.out, arguments.force)
    started = time.perf_counter()
    seed = int(np.random.SeedSequence().entropy) if arguments.seed is None else arguments.seed
    dataset = generate_x_dataset(arguments.count, arguments.box, seed, progress=not arguments.quiet, method=method)
    metadata = save_dataset(arguments.out, dataset)
    print(f"wrote {len(dataset)} X-Sudoku puzzles ({dataset.side}x{dataset.side}) to {arguments.out} in "
          f"{time.perf_counter() - started:.1f} s; seed {seed}; {method}; givens mean {metadata['givens_realised']['mean']:.2f}")
    return 0


def run_check(arguments: argparse.Namespace) -> int:
    dataset = load_dataset(arguments.file, verify=False)
    report = check_dataset(dataset, progress=not arguments.quiet)
    for problem in report.problems:
        print(f"FAIL: {problem}")
    if len(report.no_solution):
        print(f"FAIL: {len(report.no_solution)} puzzle(s) have no solution, e.g. {report.no_solution[:5].tolist()}")
    if len(report.multiple_solutions):
        print(
            f"FAIL: {len(report.multiple_solutions)} puzzle(s) have more than one solution, "
            f"e.g. {report.multiple_solutions[:5].tolist()}"
        )
    givens = dataset.givens
    summary = (
        f"{report.count} puzzles ({dataset.side}x{dataset.side}), "
        f"givens mean {givens.mean():.2f} range {givens.min()}..{givens.max()}"
    )
    if not report.ok:
        print(f"{arguments.file}: INVALID — {summary}")
        return 1
    print(f"{arguments.file}: OK — {summary}; every solution obeys the rules, keeps the givens and is unique")
    return 0


def run_import(arguments: argparse.Namespace) -> int:
    check_output(arguments.out, arguments.force)  # before reading and solving
    started = time.perf_counter()
    dataset = import_dataset(arguments.file, arguments.format, progress=not arguments.quiet)
    save_dataset(arguments.out, dataset)
    solved = dataset.metadata["solved_on_import"]
    print(f"wrote {len(dataset)} puzzles ({dataset.side}x{dataset.side}, {dataset.metadata['source_format']}) "
          f"to {arguments.out} in {time.perf_counter() - started:.1f} s; solutions: "
          + (f"{solved} found here, each the puzzle's only one; " if solved else "")
          + f"{len(dataset) - solved} from the file, checked against the rules and the givens")
    return 0


def run_export(arguments: argparse.Namespace) -> int:
    format = format_of_output(arguments.out, arguments.format)
    dataset = load_dataset(arguments.file)
    written = export_dataset(dataset, arguments.out, format, arguments.force, arguments.solutions)
    print(f"wrote {len(dataset)} puzzles ({format}) to {', '.join(map(str, written))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command == "solve":
        from .solve import run_solve

        try:
            return run_solve(arguments)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    # run_data_command runs generate, or else the other command it is given.
    other = {"check": run_check, "import": run_import, "export": run_export}.get(arguments.command)
    return run_data_command(arguments, run_generate, other)

if __name__ == "__main__":
    sys.exit(main())
