"""Sudoku data: exact solver, generator, file format, checker, encoding and CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datafile_checks import flipped_bytes_never_give_wrong_data, old_digest_is_caught, round_trip, truncations_are_refused
from puzzles.datafile import save_npz
from puzzles.sudoku import (
    DatasetError,
    SudokuDataset,
    bit_index,
    bits_to_board,
    board_to_bits,
    check_dataset,
    count_solutions,
    generate_dataset,
    givens_distribution,
    is_input_mask,
    is_valid_solution,
    load_dataset,
    random_full_grid,
    rule_violations,
    save_dataset,
    solve,
    valid_boards,
)
from puzzles.sudoku.cli import main as sudoku_main
from puzzles.sudoku.generate import CHUNK_SIZE

REPOSITORY = Path(__file__).resolve().parents[2]

# "AI Escargot", a standard hard puzzle with one solution.
ESCARGOT = "1....7.9..3..2...8..96..5....53..9...1..8...26....4...3......1..4......7..7...3.."
ESCARGOT_SOLUTION = "162857493534129678789643521475312986913586742628794135356478219241935867897261354"


def parse(text: str) -> np.ndarray:
    side = int(round(len(text) ** 0.5))
    return np.array([0 if ch == "." else int(ch) for ch in text], dtype=np.int8).reshape(side, side)


@pytest.fixture(scope="module")
def small_dataset() -> SudokuDataset:
    return generate_dataset(40, box=3, seed=7)


# ---------------------------------------------------------------- solver


@pytest.mark.parametrize("box", [2, 3, 4])
def test_empty_grid_has_several_solutions(box):
    empty = np.zeros((box * box, box * box), dtype=np.int8)
    assert count_solutions(empty, 2) == 2
    assert count_solutions(empty, 1) == 1
    assert is_valid_solution(solve(empty))


def contradiction_visible() -> np.ndarray:
    grid = np.zeros((9, 9), dtype=np.int8)
    grid[0, 0] = grid[0, 5] = 4
    return grid


def contradiction_hidden() -> np.ndarray:
    # No two givens clash, but row 1 needs its 9 in the last cell, and column 9
    # already has a 9 further down.
    grid = np.zeros((9, 9), dtype=np.int8)
    grid[0, :8] = np.arange(1, 9)
    grid[4, 8] = 9
    return grid


@pytest.mark.parametrize("make_grid", [contradiction_visible, contradiction_hidden])
def test_contradictory_grids_have_no_solution(make_grid):
    grid = make_grid()
    assert count_solutions(grid, 2) == 0
    assert solve(grid) is None


def test_known_puzzle_has_exactly_its_solution():
    puzzle, solution = parse(ESCARGOT), parse(ESCARGOT_SOLUTION)
    assert count_solutions(puzzle, 2) == 1
    np.testing.assert_array_equal(solve(puzzle), solution)
    # Removing one given of this minimal puzzle must allow a second solution.
    relaxed = puzzle.copy()
    relaxed[0, 0] = 0
    assert count_solutions(relaxed, 2) == 2


def test_full_grid_counts_once_and_counting_respects_the_limit():
    grid = random_full_grid(3, 11)
    assert count_solutions(grid, 2) == 1
    assert count_solutions(np.zeros((4, 4), np.int8), 1000) == 288  # all 4x4 Sudoku grids


@pytest.mark.parametrize("bad", [np.zeros((9, 8), np.int8), np.zeros((5, 5), np.int8)])
def test_solver_rejects_non_sudoku_shapes(bad):
    with pytest.raises(ValueError):
        count_solutions(bad)


@pytest.mark.parametrize("box", [2, 3, 4])
def test_random_full_grids_are_valid_and_seeded(box):
    grids = [random_full_grid(box, seed) for seed in (1, 2, 1)]
    assert all(is_valid_solution(grid) for grid in grids)
    np.testing.assert_array_equal(grids[0], grids[2])
    assert not np.array_equal(grids[0], grids[1])


# ---------------------------------------------------------------- generator


def _fill_hidden_singles(puzzle: np.ndarray) -> np.ndarray:
    """Fill cells whose digit fits nowhere else in a row, column or box, until none is left."""
    board = puzzle.astype(int).copy()
    side = board.shape[0]
    box = int(round(side**0.5))
    units = [[(r, c) for c in range(side)] for r in range(side)]
    units += [[(r, c) for r in range(side)] for c in range(side)]
    units += [[(box * (b // box) + i, box * (b % box) + j) for i in range(box) for j in range(box)] for b in range(side)]

    def fits(r, c, digit):
        top, left = box * (r // box), box * (c // box)
        return (board[r, c] == 0 and digit not in board[r, :] and digit not in board[:, c]
                and digit not in board[top:top + box, left:left + box])

    progress = True
    while progress:
        progress = False
        for unit in units:
            for digit in range(1, side + 1):
                spots = [(r, c) for r, c in unit if fits(r, c, digit)]
                if len(spots) == 1:
                    board[spots[0]] = digit
                    progress = True
    return board


@pytest.mark.parametrize("box,count", [(2, 40), (3, 40)])
def test_deducible_puzzles_fall_to_hidden_singles(box, count):
    # The published data's generator: every blank is recovered by hidden singles alone.
    dataset = generate_dataset(count, box=box, seed=8)
    assert dataset.metadata["settings"]["method"] == "deducible"
    for puzzle, solution in zip(dataset.puzzles, dataset.solutions):
        np.testing.assert_array_equal(_fill_hidden_singles(puzzle), solution)
        assert count_solutions(puzzle, 2) == 1
    if box == 3:  # about 36 givens, as in the published data (36.2)
        assert 33 <= dataset.givens.mean() <= 39


@pytest.mark.parametrize("method", ["deducible", "unique"])
@pytest.mark.parametrize("box,count", [(2, 60), (3, 30), (4, 3)])
def test_generated_puzzles_are_valid_and_unique(box, count, method):
    dataset = generate_dataset(count, box=box, seed=3, method=method)
    assert dataset.puzzles.shape == (count, box * box, box * box)
    assert dataset.puzzles.dtype == np.int8 and dataset.solutions.dtype == np.int8
    assert valid_boards(dataset.solutions).all()
    for puzzle, solution in zip(dataset.puzzles, dataset.solutions):
        assert count_solutions(puzzle, 2) == 1
        assert is_valid_solution(solution, puzzle)


def test_givens_follow_the_requested_distribution():
    distribution = givens_distribution(3, mean=34, minimum=30, maximum=40)
    assert distribution.probabilities @ distribution.values == pytest.approx(34)
    dataset = generate_dataset(200, box=3, distribution=distribution, seed=5, method="unique")
    givens = dataset.givens
    assert givens.min() >= 30 and givens.max() <= 40
    assert abs(givens.mean() - 34) < 0.8
    assert dataset.metadata["givens_realised"]["mean"] == pytest.approx(givens.mean(), abs=1e-3)
    assert dataset.metadata["targets_missed"] == 0


def test_hard_mode_reaches_about_25_givens():
    dataset = generate_dataset(30, box=3, distribution=givens_distribution(3, hard=True), seed=9, method="unique")
    assert dataset.givens.max() <= 28
    assert dataset.givens.mean() < 26.5
    assert all(count_solutions(p, 2) == 1 for p in dataset.puzzles)


@pytest.mark.parametrize(
    "arguments,mean,minimum,maximum",
    [
        ({}, 36, 30, 42),
        ({"mean": 30}, 30, 24, 36),
        ({"minimum": 28, "maximum": 32}, 30, 28, 32),
        ({"mean": 40, "minimum": 40, "maximum": 40}, 40, 40, 40),
    ],
)
def test_givens_distribution_defaults(arguments, mean, minimum, maximum):
    distribution = givens_distribution(3, **arguments)
    assert (distribution.mean, distribution.minimum, distribution.maximum) == (mean, minimum, maximum)
    assert distribution.probabilities.sum() == pytest.approx(1)
    assert distribution.probabilities @ distribution.values == pytest.approx(mean)


@pytest.mark.parametrize(
    "arguments", [{"mean": 50, "minimum": 30, "maximum": 40}, {"minimum": 40, "maximum": 30}, {"maximum": 90}]
)
def test_givens_distribution_rejects_impossible_settings(arguments):
    with pytest.raises(ValueError):
        givens_distribution(3, **arguments)


def test_generation_is_deterministic_and_independent_of_workers():
    count = 2 * CHUNK_SIZE + 5  # several chunks, the last one partial
    serial = generate_dataset(count, box=2, seed=21, workers=1)
    parallel = generate_dataset(count, box=2, seed=21, workers=2)
    np.testing.assert_array_equal(serial.puzzles, parallel.puzzles)
    np.testing.assert_array_equal(serial.solutions, parallel.solutions)
    prefix = generate_dataset(10, box=2, seed=21)
    np.testing.assert_array_equal(prefix.puzzles, serial.puzzles[:10])
    other = generate_dataset(10, box=2, seed=22)
    assert not np.array_equal(other.puzzles, prefix.puzzles)


def test_fresh_seed_is_recorded_and_reproduces_the_data():
    first = generate_dataset(5, box=2)
    again = generate_dataset(5, box=2, seed=first.metadata["seed"])
    np.testing.assert_array_equal(first.puzzles, again.puzzles)


# ---------------------------------------------------------------- file format


def test_save_load_round_trip(tmp_path, small_dataset):
    loaded = round_trip(tmp_path / "sudoku.npz", save_dataset, load_dataset, small_dataset)
    assert loaded.box == 3 and len(loaded) == 40
    assert loaded.metadata["seed"] == 7 and loaded.metadata["format_version"] == 1
    assert loaded.metadata["settings"]["method"] == "deducible"
    assert loaded.metadata["settings"]["givens_mean"] is None
    assert len(loaded.metadata["sha256"]) == 64


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="no such"):
        load_dataset(tmp_path / "absent.npz")


def test_truncated_file(tmp_path, small_dataset):
    path = tmp_path / "sudoku.npz"
    save_dataset(path, small_dataset)
    truncations_are_refused(path, load_dataset)


def test_corrupt_bytes_never_give_wrong_data(tmp_path, small_dataset):
    path = tmp_path / "sudoku.npz"
    save_dataset(path, small_dataset)
    arrays = {"puzzles": small_dataset.puzzles, "solutions": small_dataset.solutions}
    flipped_bytes_never_give_wrong_data(path, load_dataset, arrays)


def write_raw(path, puzzles, solutions, **metadata_changes):
    box = int(round(puzzles.shape[-1] ** 0.5))
    metadata = {"kind": "sudoku", "box": box, "count": len(puzzles), **metadata_changes}
    save_npz(path, {"puzzles": puzzles, "solutions": solutions}, metadata)


def test_checksum_mismatch(tmp_path, small_dataset):
    path = tmp_path / "sudoku.npz"
    metadata = save_dataset(path, small_dataset)
    tampered = small_dataset.puzzles.copy()
    tampered[0, 0, 0] = 0 if tampered[0, 0, 0] else small_dataset.solutions[0, 0, 0]
    old_digest_is_caught(path, load_dataset, metadata, {"puzzles": tampered, "solutions": small_dataset.solutions})


@pytest.mark.parametrize(
    "damage,message",
    [
        ("swap_solution_cells", "breaking the rules"),
        ("change_given", "disagree"),
        ("wrong_dtype", "int8"),
        ("wrong_count", "count"),
        ("wrong_box", "box"),
        ("wrong_kind", "expected a sudoku"),
        ("shape_mismatch", "differ in shape"),
    ],
)
def test_inconsistent_files(tmp_path, small_dataset, damage, message):
    puzzles, solutions = small_dataset.puzzles.copy(), small_dataset.solutions.copy()
    changes = {}
    if damage == "swap_solution_cells":
        solutions[3, 0, [0, 1]] = solutions[3, 0, [1, 0]]
        puzzles[3, 0, :2] = 0
    elif damage == "change_given":
        r, c = np.argwhere(puzzles[5] != 0)[0]
        puzzles[5, r, c] = puzzles[5, r, c] % 9 + 1
    elif damage == "wrong_dtype":
        puzzles = puzzles.astype(np.int16)
    elif damage == "wrong_count":
        changes["count"] = 39
    elif damage == "wrong_box":
        changes["box"] = 2
    elif damage == "wrong_kind":
        changes["kind"] = "cube"
    elif damage == "shape_mismatch":
        solutions = solutions[:-1]
    path = tmp_path / "bad.npz"
    write_raw(path, puzzles, solutions, **changes)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_not_an_npz_file(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello")
    with pytest.raises(DatasetError, match="unreadable"):
        load_dataset(path)
    other = tmp_path / "other.npz"
    np.savez(other, puzzles=np.zeros((1, 4, 4), np.int8))
    with pytest.raises(DatasetError, match="missing entries"):
        load_dataset(other)


def test_save_refuses_inconsistent_data(tmp_path, small_dataset):
    broken = SudokuDataset(small_dataset.puzzles, np.zeros_like(small_dataset.solutions))
    with pytest.raises(ValueError, match="inconsistent"):
        save_dataset(tmp_path / "x.npz", broken)


def test_check_dataset_finds_non_unique_and_unsolvable(small_dataset):
    puzzles = small_dataset.puzzles.copy()
    puzzles[2] = 0  # still agrees with its solution, but no longer unique
    report = check_dataset(SudokuDataset(puzzles, small_dataset.solutions))
    assert not report.ok and report.multiple_solutions.tolist() == [2]
    assert check_dataset(small_dataset).ok


# ---------------------------------------------------------------- checker


def test_checker_accepts_solution_and_reports_each_violation():
    puzzle, solution = parse(ESCARGOT), parse(ESCARGOT_SOLUTION)
    assert rule_violations(solution, puzzle) == []
    swapped = solution.copy()
    swapped[0, [1, 2]] = swapped[0, [2, 1]]  # row stays a permutation; columns break
    problems = " | ".join(rule_violations(swapped))
    assert "column 2 repeats" in problems and "column 3 repeats" in problems and "row" not in problems
    changed = solution.copy()
    changed[[0, 1], 0] = changed[[1, 0], 0]  # (1, 1) is a given of the puzzle
    assert any("given at (1, 1)" in p for p in rule_violations(changed, puzzle))
    blank = solution.copy()
    blank[4, 4] = 0
    assert any("blank" in p for p in rule_violations(blank))
    out_of_range = solution.copy()
    out_of_range[8, 8] = 10
    assert any("outside 1..9" in p for p in rule_violations(out_of_range))
    box_clash = np.tile(np.arange(1, 10, dtype=np.int8), (9, 1))
    for r in range(9):
        box_clash[r] = np.roll(box_clash[r], r)  # Latin square: rows and columns fine, boxes not
    problems = rule_violations(box_clash)
    assert problems and all(p.startswith("box") for p in problems)
    assert valid_boards(np.stack([solution, swapped, box_clash, blank])).tolist() == [True, False, False, False]


# ---------------------------------------------------------------- encoding


def test_one_hot_encoding_layout_and_round_trip(small_dataset):
    solution = small_dataset.solutions[0]
    bits = board_to_bits(solution)
    assert bits.shape == (729,) and bits.sum() == 81
    r, c = 4, 7
    assert bits[bit_index(r, c, int(solution[r, c]), 9)] == 1
    assert bits[(r * 9 + c) * 9 + int(solution[r, c]) - 1] == 1
    np.testing.assert_array_equal(bits_to_board(board_to_bits(small_dataset.solutions)), small_dataset.solutions)
    puzzle_bits = board_to_bits(small_dataset.puzzles)
    mask = is_input_mask(small_dataset.puzzles)
    assert mask.shape == (40, 729) and mask.dtype == bool
    # Every bit of a given cell is an input, and only those; set bits all lie in inputs.
    np.testing.assert_array_equal(mask.sum(axis=1), 9 * small_dataset.givens)
    assert (puzzle_bits[~mask] == 0).all()
    np.testing.assert_array_equal(puzzle_bits.sum(axis=1), small_dataset.givens)


# ---------------------------------------------------------------- command line


def test_cli_generate_then_check(tmp_path, capsys):
    path = tmp_path / "cli.npz"
    assert sudoku_main(["generate", "--count", "20", "--box", "2", "--seed", "4", "--quiet", "--out", str(path)]) == 0
    assert "realised mean" in capsys.readouterr().out
    assert sudoku_main(["check", str(path), "--quiet"]) == 0
    assert "OK" in capsys.readouterr().out


def test_cli_check_reports_non_unique_puzzles(tmp_path, capsys, small_dataset):
    path = tmp_path / "ambiguous.npz"
    puzzles = small_dataset.puzzles.copy()
    puzzles[[1, 4]] = 0
    save_dataset(path, SudokuDataset(puzzles, small_dataset.solutions, {"seed": 0}))
    assert sudoku_main(["check", str(path), "--quiet"]) == 1
    output = capsys.readouterr().out
    assert "more than one solution" in output and "[1, 4]" in output and "INVALID" in output


def test_cli_bad_inputs_give_clear_errors(tmp_path, capsys):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    assert sudoku_main(["check", str(path)]) == 1
    assert "error:" in capsys.readouterr().err
    assert sudoku_main(["check", str(tmp_path / "missing.npz")]) == 1
    assert "no such" in capsys.readouterr().err
    impossible = ["--givens-mean", "50", "--givens-min", "30", "--givens-max", "40"]
    assert sudoku_main(["generate", "--count", "5", *impossible, "--out", str(path)]) == 2
    assert "outside the range" in capsys.readouterr().err
    assert sudoku_main(["generate", "--count", "5", "--hard", "--method", "deducible", "--out", str(path)]) == 2
    assert "--method unique" in capsys.readouterr().err


def test_module_entry_point_runs_as_a_subprocess(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "puzzles.sudoku", "check", str(path)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("box", [2, 3])
def test_rule_pairs_are_the_conflicts_of_sudoku_and_x_sudoku(box):
    from puzzles.sudoku import board_to_bits, rule_pairs
    from puzzles.sudoku.xsudoku import generate_x_dataset

    side = box * box
    # Each cell has 3 * (side - 1) - 2 * (box - 1) peers per digit, and side - 1 other digits.
    peers = 3 * (side - 1) - 2 * (box - 1)
    plain = rule_pairs(box)
    assert len(plain) == side * side * (side * peers + side * (side - 1)) // 2
    crossing = rule_pairs(box, diagonals=True)
    assert set(map(tuple, plain.tolist())) < set(map(tuple, crossing.tolist()))
    # No X-Sudoku solution has both variables of a rule pair true.
    bits = board_to_bits(generate_x_dataset(5, box=box, seed=1).solutions.reshape(5, side, side))
    assert not (bits[:, crossing[:, 0]] * bits[:, crossing[:, 1]]).any()
    assert (plain[:, 0] < plain[:, 1]).all()
