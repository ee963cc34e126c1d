"""Decoding trained Sudoku models: puzzles.evaluate --decode, puzzles.sudoku solve, and
rules carried across board sizes (puzzles.sudoku.relations)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import symsatnet
from puzzles import evaluate as evaluate_cli
from puzzles import train as train_cli
from puzzles.sudoku import cli as sudoku_cli
from puzzles.sudoku.dataset import load_dataset
from puzzles.sudoku.encoding import board_to_bits
from puzzles.sudoku.generate import generate_dataset
from puzzles.sudoku.relations import (KINDS, RewardRule, carry_reward_rules, conditional_rules, describe_pair, kind_map,
                                      resize_constraints, resize_layer, reward_rules)
from puzzles.sudoku.rules import rule_violations
from puzzles.sudoku.solve import format_board, parse_puzzle
from symsatnet.decode import Constraints


@pytest.fixture(scope="module")
def run_4x4(tmp_path_factory):
    """A SymSATNet trained on 4x4 Sudoku (test board accuracy 1.0 from epoch 3-5, see test_train)."""
    folder = tmp_path_factory.mktemp("decode")
    out = folder / "sym4"
    assert train_cli.main(["sudoku", "--box", "2", "--count", "1000", "--epochs", "6", "--threads", "1",
                           "--no-progress", "--model", "symsatnet", "--out", str(out)]) == 0
    data = folder / "minimal4.npz"
    assert sudoku_cli.main(["generate", "--count", "60", "--box", "2", "--method", "unique", "--givens-min", "0",
                            "--givens-max", "0", "--max-attempts", "1", "--seed", "9", "--out", str(data),
                            "--quiet"]) == 0
    return out / "checkpoint.pt", data


@pytest.mark.parametrize("method, extra", [("exact", []), ("exact", ["--solver", "rc2"]), ("decimate", [])])
def test_evaluate_decode_answers_obey_the_sudoku_rules(run_4x4, capsys, method, extra):
    checkpoint, data = run_4x4
    capsys.readouterr()
    assert evaluate_cli.main([str(checkpoint), str(data), "--decode", method, "--json", *extra]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["count"] == 60 and metrics["decode"] == method
    assert metrics["rules_satisfied"] == 1.0  # by the puzzle's own checker
    assert metrics["board_accuracy"] == 1.0  # unique solutions: the same boards as the labels
    if method == "exact":
        assert metrics["proved"] == 1.0 and metrics["status"] == {"optimal": 60}
        assert metrics["solver"] == (extra[1] if extra else "cpsat")


def test_evaluate_decode_bad_options(run_4x4, capsys):
    checkpoint, data = run_4x4
    capsys.readouterr()
    assert evaluate_cli.main([str(checkpoint), str(data), "--decode", "exact", "--time-limit", "0"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "time_limit" in error and "Traceback" not in error


def test_solve_cli_prints_checked_boards(run_4x4, capsys, tmp_path):
    checkpoint, data = run_4x4
    dataset = load_dataset(data, verify=False)
    lines = [format_board(puzzle) for puzzle in dataset.puzzles[:3]]
    listing = tmp_path / "puzzles.txt"
    listing.write_text("# three puzzles\n" + "\n".join(lines[1:]).replace(".", "0") + "\n")
    capsys.readouterr()
    assert sudoku_cli.main(["solve", str(checkpoint), lines[0], str(listing)]) == 0
    out = capsys.readouterr().out.splitlines()
    boards = [line.split()[0] for line in out if not line.startswith("#")]
    assert len(boards) == 3
    for board, puzzle in zip(boards, dataset.puzzles[:3]):
        assert rule_violations(parse_puzzle(board), puzzle) == []
    assert out[-1] == "# 3 of 3 boards satisfy the Sudoku rules and keep their givens"


def test_rules_learned_on_4x4_boards_solve_9x9_puzzles(run_4x4, capsys):
    checkpoint, _ = run_4x4
    puzzles9 = generate_dataset(3, box=3, seed=4, method="unique").puzzles
    capsys.readouterr()
    assert sudoku_cli.main(["solve", str(checkpoint)] + [format_board(p) for p in puzzles9]) == 0
    out = capsys.readouterr().out.splitlines()
    boards = [line.split()[0] for line in out if not line.startswith("#")]
    for board, puzzle in zip(boards, puzzles9):
        assert rule_violations(parse_puzzle(board), puzzle) == []
    assert out[-1] == "# 3 of 3 boards satisfy the Sudoku rules and keep their givens"


@pytest.mark.parametrize("argument, message", [
    ("12.4", "4 characters"),
    ("1234123412341X34", "character 'X'"),
    ("missing/puzzles.txt", "no such file"),
])
def test_solve_cli_refuses_malformed_puzzles(run_4x4, capsys, argument, message):
    checkpoint, _ = run_4x4
    capsys.readouterr()
    assert sudoku_cli.main(["solve", str(checkpoint), argument]) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and error.count("\n") == 0


def sudoku_constraints(box: int, boxes: bool = True) -> Constraints:
    """The real Sudoku rules as Constraints, built from the board's geometry (without the box
    rule: a Latin square's)."""
    side = box * box
    index = np.arange(side**3).reshape(side, side, side)  # row, column, digit
    groups = [index[r, c] for r in range(side) for c in range(side)]
    groups += [index[r, :, d] for r in range(side) for d in range(side)]
    groups += [index[:, c, d] for c in range(side) for d in range(side)]
    groups += [index[b * box:(b + 1) * box, s * box:(s + 1) * box, d].ravel()
               for b in range(box) for s in range(box) for d in range(side)] if boxes else []
    pairs = set()
    for group in groups:
        pairs.update((int(i), int(j)) for i in group for j in group if i < j)
    return Constraints(side**3, np.array(sorted(pairs)), tuple(np.sort(g) for g in groups), 0.1, 0, 0)


def as_sets(constraints: Constraints):
    return ({tuple(pair) for pair in constraints.at_most_one.tolist()},
            {tuple(group.tolist()) for group in constraints.exactly_one})


def test_resized_rules_are_the_rules_of_the_larger_board():
    assert as_sets(resize_constraints(sudoku_constraints(2), 2, 3)) == as_sets(sudoku_constraints(3))
    with pytest.raises(ValueError, match="box-3"):
        resize_constraints(sudoku_constraints(2), 3, 2)


def test_resized_layer_keeps_each_kinds_value():
    torch.manual_seed(0)
    small = symsatnet.SymSATNet(64, symsatnet.sudoku_group(2), truth="tied").double()
    large = resize_layer(small, 3)
    assert large.group == symsatnet.sudoku_group(3) and large.n == 729
    small_c, large_c = small.matrix().detach().numpy(), large.matrix().detach().numpy()
    small_kinds, large_kinds = kind_map(2), kind_map(3)
    for kind in range(len(KINDS)):
        expected = small_c[1:, 1:][small_kinds == kind]
        assert np.ptp(expected) < 1e-12  # one value per kind: the kinds are the orbitals
        np.testing.assert_allclose(large_c[1:, 1:][large_kinds == kind], expected[0], rtol=1e-10)
    np.testing.assert_allclose(large_c[0, 1:], small_c[0, 1], rtol=1e-10)
    with pytest.raises(ValueError, match="sudoku_group"):
        resize_layer(symsatnet.SymSATNet(64, symsatnet.Symmetric(64)), 3)


def test_pair_descriptions():
    describe = describe_pair(3)
    assert describe(0, 1) == "same cell, another digit"
    assert describe(0, 9) == "same row, another column of the same stack, same digit"
    assert describe(0, 9 * 9 * 3) == "another band, same column, same digit"
    assert len(set(KINDS)) == 18


def kind_of(text: str) -> int:
    return KINDS.index(text)


#: Two kinds a 4x4 model can reward to state the box rule, and one whose reading holds on
#: 4x4 boards only ("the other band" is one band there, two on 9x9 boards).
BOX_BY_ROWS = "another row of the same band, another stack, same digit"
BOX_BY_BANDS = "another band, another column of the same stack, same digit"
TOO_STRONG = "another band, another stack, same digit"


def rewarding_layer() -> symsatnet.SymSATNet:
    """A 4x4 SymSATNet that penalises the Latin-square rules and rewards three kinds."""
    weights = np.zeros(len(KINDS))
    for kind in ("same row, same column, another digit", "same row, another column of the same stack, same digit",
                 "same row, another stack, same digit", "another row of the same band, same column, same digit",
                 "another band, same column, same digit"):
        weights[kind_of(kind)] = 6.0
    weights[kind_of(BOX_BY_ROWS)], weights[kind_of(BOX_BY_BANDS)], weights[kind_of(TOO_STRONG)] = -4.0, -3.5, -3.0
    full = np.zeros((65, 65))
    full[1:, 1:] = weights[kind_map(2)] / 8
    np.fill_diagonal(full, 0)
    return symsatnet.SymSATNet.from_matrix(torch.from_numpy(full), symsatnet.sudoku_group(2)).double()


def test_rules_read_off_rewards_carry_to_9x9_only_where_they_stay_true():
    solutions4 = board_to_bits(generate_dataset(40, box=2, seed=1).solutions).reshape(40, -1)
    found = reward_rules(rewarding_layer(), solutions4)
    assert {(KINDS[rule.kind], rule.key) for rule in found} == {
        (BOX_BY_ROWS, "row"), (BOX_BY_ROWS, "stack"), (BOX_BY_BANDS, "band"), (BOX_BY_BANDS, "column"),
        (TOO_STRONG, "band"), (TOO_STRONG, "stack")}
    latin9 = resize_constraints(sudoku_constraints(2, boxes=False), 2, 3)
    carried, kept = carry_reward_rules(latin9, found, 3)
    assert {KINDS[rule.kind] for rule in kept} == {BOX_BY_ROWS, BOX_BY_BANDS}
    # What is kept is true of real 9x9 Sudokus, and with the Latin-square rules it is the box rule:
    solutions9 = board_to_bits(generate_dataset(5, box=3, seed=2).solutions).reshape(5, -1)
    assert (carried.violations(solutions9) == 0).all()
    cyclic = (np.arange(9)[:, None] + np.arange(9)[None, :]) % 9 + 1  # a Latin square, boxes broken
    assert latin9.violations(board_to_bits(cyclic).reshape(1, -1))[0] == 0
    assert carried.violations(board_to_bits(cyclic).reshape(1, -1))[0] > 0
    # The dropped readings are false on 9x9 boards.
    too_strong = [rule for rule in found if KINDS[rule.kind] == TOO_STRONG]
    probe = Constraints(729, np.zeros((0, 2), dtype=np.int64), (), 0.1, 0, 0, conditional_rules(too_strong, 3))
    assert (probe.violations(solutions9) > 0).all()


def test_reward_rules_refuse_bad_input():
    with pytest.raises(ValueError, match="0/1 labels"):
        reward_rules(rewarding_layer(), np.zeros((3, 81)))
    with pytest.raises(ValueError, match="strength"):
        reward_rules(rewarding_layer(), np.zeros((3, 64)), strength=0)
    assert "exactly one per row" in str(RewardRule(kind_of(BOX_BY_ROWS), "row", -4.0))


def test_evaluate_reports_whether_the_layer_alone_separates_the_rules(run_4x4, capsys):
    checkpoint, data = run_4x4
    capsys.readouterr()
    assert evaluate_cli.main([str(checkpoint), str(data), "--json"]) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rule_separation"]
    # The trained tied layer penalises exactly the Sudoku rule pairs above all others.
    assert found["rules"] == "sudoku" and found["separated"] and found["rule_pairs"] == 4 * 4 * (4 * 7 + 4 * 3) // 2
    assert found["weakest_rule"] > found["strongest_other"]
    assert evaluate_cli.main([str(checkpoint), str(data)]) == 0
    assert "sudoku rule pairs in the layer's weights alone" in capsys.readouterr().out


def test_evaluate_checks_x_sudoku_answers_by_the_diagonal_rule_too(run_4x4, tmp_path, capsys):
    from puzzles.sudoku.dataset import save_dataset
    from puzzles.sudoku.rules import is_valid_solution
    from puzzles.sudoku.xsudoku import diagonal_violations, generate_x_dataset

    checkpoint, _ = run_4x4
    data, predictions = tmp_path / "x4.npz", tmp_path / "boards.npy"
    dataset = generate_x_dataset(40, box=2, seed=4, method="minimal")
    save_dataset(data, dataset)
    capsys.readouterr()
    assert evaluate_cli.main([str(checkpoint), str(data), "--decode", "exact", "--json",
                              "--predictions", str(predictions)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    boards = np.load(predictions)
    by_x_rules = [is_valid_solution(board, puzzle) and not diagonal_violations(board)
                  for board, puzzle in zip(boards, dataset.puzzles)]
    assert metrics["rules_satisfied"] == pytest.approx(np.mean(by_x_rules))
    assert metrics["rules_satisfied"] < 1  # Sudoku rules alone leave minimal X puzzles open (0.375 measured)
    # A layer tied under the Sudoku group cannot single out the diagonal pairs.
    assert metrics["rule_separation"]["rules"] == "x-sudoku" and not metrics["rule_separation"]["separated"]


def test_diagonals_hold_matches_the_per_board_check():
    from puzzles.sudoku.xsudoku import diagonal_violations, diagonals_hold, generate_x_dataset

    solutions = generate_x_dataset(6, box=3, seed=2).solutions
    swapped = solutions[:, [1, 0, 2, 3, 4, 5, 6, 7, 8]]  # still Sudoku, diagonals broken (most boards)
    boards = np.concatenate([solutions, swapped])
    assert diagonals_hold(boards).tolist() == [not diagonal_violations(board) for board in boards]
    assert diagonals_hold(solutions).all() and not diagonals_hold(swapped).all()
    with pytest.raises(ValueError, match="shape"):
        diagonals_hold(solutions[0])
