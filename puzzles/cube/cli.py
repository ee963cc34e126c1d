"""Command line: ``python -m puzzles.cube generate|check``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..datafile import check_output, run_data_command
from .dataset import (
    DEFAULT_HIDDEN,
    DEFAULT_MOVE_SET,
    SCRAMBLE_MOVE_SETS,
    check_generation_options,
    data_version,
    generate_dataset,
    load_dataset,
    save_dataset,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m puzzles.cube", description="Rubik's-cube completion data sets.")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="scrambled cubes with hidden facelets")
    generate.add_argument("--count", type=int, required=True, help="number of examples")
    generate.add_argument("--seed", type=int, help="random seed (default: fresh, recorded in the file)")
    generate.add_argument("--scramble-length", type=int, default=60, help="random moves per scramble")
    moves = generate.add_mutually_exclusive_group()
    moves.add_argument(
        "--scramble-moves",
        choices=sorted(SCRAMBLE_MOVE_SETS),
        default=DEFAULT_MOVE_SET,
        help="named set of scramble moves: published27 (the published data: U D F B L R M E S as quarter, half "
        "and inverse turns; default) or quarter18 (the quarter turns only, this package's data before version 2: "
        "even facelet permutations only)",
    )
    moves.add_argument("--moves", help="scramble moves to draw from (space-separated), instead of --scramble-moves")
    generate.add_argument("--out", required=True, help="output .npz file (a new file)")
    generate.add_argument("--force", action="store_true", help="replace an existing --out file")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")

    check = commands.add_parser("check", help="verify a data set file")
    check.add_argument("file", help="a .npz written by generate")
    return parser


def run_generate(arguments: argparse.Namespace) -> int:
    if arguments.moves is not None:
        moves = tuple(arguments.moves.replace(",", " ").split())
    else:
        moves = SCRAMBLE_MOVE_SETS[arguments.scramble_moves]
    check_generation_options(arguments.count, arguments.scramble_length, moves)
    check_output(arguments.out, arguments.force)  # after the options, before the generation
    started = time.perf_counter()
    dataset = generate_dataset(
        arguments.count,
        seed=arguments.seed,
        scramble_length=arguments.scramble_length,
        moves=moves,
        progress=not arguments.quiet,
    )
    metadata = save_dataset(arguments.out, dataset)
    hidden = ", ".join(f"{number} {kind}" for kind, number in DEFAULT_HIDDEN.items())
    print(
        f"wrote {len(dataset)} cubes to {arguments.out} in {time.perf_counter() - started:.1f} s; "
        f"{arguments.scramble_length} random moves each from {metadata['settings']['move_set'] or ' '.join(moves)}, "
        f"hidden facelets: {hidden}; seed {metadata['seed']}"
    )
    return 0


def run_check(arguments: argparse.Namespace) -> int:
    # load_dataset with verify=True already proves legality, agreement and the masks;
    # any failure arrives as a DatasetError naming the offending examples.
    dataset = load_dataset(arguments.file)
    hidden_counts = np.unique(dataset.hidden.sum(axis=1))
    print(
        f"{arguments.file}: OK — cube data version {data_version(dataset.metadata)}, {len(dataset)} cubes, all legal states; "
        f"visible facelets agree with the solutions; hidden per example: {hidden_counts.tolist()}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return run_data_command(arguments, run_generate, run_check)

if __name__ == "__main__":
    sys.exit(main())
