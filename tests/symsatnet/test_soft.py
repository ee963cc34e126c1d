"""SoftSymSATNet (soft tying with learned strengths) and the X-Sudoku benchmark."""

import json

import numpy as np
import pytest
import torch

from puzzles.sudoku.rules import is_valid_solution
from puzzles.sudoku.xsudoku import (
    SYMMETRY_TYPES,
    count_solutions,
    diagonal_violations,
    generate_x_dataset,
    sudoku_symmetry_types,
)
from puzzles.training.tasks import Task
from symsatnet import InvariantSpace, SymSATNet
from symsatnet.groups import Cyclic, Product, Symmetric, Trivial, sudoku_group
from symsatnet.soft import SoftSymSATNet

# 12 points = (a, b) with a in 0..2, b in 0..3 (index a * 4 + b): "left" permutes a, "right" b.
LEFT, RIGHT = Product(Symmetric(3), Trivial(4)), Product(Trivial(3), Symmetric(4))


def planted_layer(broken: float) -> SoftSymSATNet:
    """A float64 layer whose C is invariant under LEFT, and under RIGHT up to ``broken``."""
    torch.manual_seed(0)
    layer = SoftSymSATNet(12, {"left": LEFT, "right": RIGHT}).double()
    both = InvariantSpace(Product(Symmetric(3), Symmetric(4)))
    block = both.build(torch.randn(both.num_orbitals, dtype=torch.float64))
    # A LEFT-invariant violation of RIGHT: weigh pairs by their b coordinates.
    b = torch.arange(12) % 4
    violation = ((b[:, None] == 0) & (b[None, :] == 1)).double()
    block = (block + broken * (violation + violation.T)).fill_diagonal_(0.0)  # SymSATNet holds it at 0
    truth = InvariantSpace(Product(Symmetric(3), Symmetric(4))).build_truth(torch.ones(1, dtype=torch.float64))
    matrix = torch.zeros(13, 13, dtype=torch.float64)
    matrix[1:, 1:], matrix[0, 1:], matrix[1:, 0] = block, truth, truth
    layer.load_matrix(matrix)
    return layer


def test_regularizer_is_zero_on_invariant_matrices_and_grows_with_a_violation():
    values = [planted_layer(broken).regularizer().item() for broken in (0.0, 0.01, 0.1, 1.0)]
    assert values[0] == 0.0
    assert values[1] > 0 and values[1] < values[2] < values[3]


def test_regularizer_gradient_by_finite_differences():
    layer = planted_layer(0.3)
    block, truth = layer.problem_block().detach(), layer.truth_row().detach()
    block = block + 0.01 * torch.randn_like(block)
    truth = truth + 0.01 * torch.randn_like(truth)
    torch.autograd.gradcheck(layer.prior, (block.requires_grad_(), truth.requires_grad_()))
    # and through the parameters: the regulariser's gradient is that of the prior of C
    layer.regularizer().backward()
    assert layer.residual.grad.abs().sum() > 0 and layer.coeffs.grad.abs().max() < 1e-9


def test_levels_recover_one_exact_and_one_broken_symmetry():
    levels = planted_layer(0.5).symmetry_levels()
    assert levels["left"]["residual"] < 1e-12 and levels["left"]["relative_strength"] == pytest.approx(1.0)
    assert levels["right"]["residual"] > 0.05 and levels["right"]["relative_strength"] < 1e-3


def test_harden_ties_the_exact_groups_and_keeps_the_rest_soft():
    layer = planted_layer(0.5)
    hard = layer.harden(0.01)
    assert isinstance(hard, SoftSymSATNet) and list(hard.groups) == ["right"] and hard.tie.group == LEFT
    torch.testing.assert_close(hard.matrix(), layer.matrix())  # nothing lost: C was LEFT-invariant
    tied = planted_layer(0.0).harden(0.01)
    assert isinstance(tied, SymSATNet)
    torch.testing.assert_close(tied.matrix(), planted_layer(0.0).matrix())


def test_trains_a_step_and_round_trips_through_a_file(tmp_path):
    torch.manual_seed(1)
    layer = SoftSymSATNet(12, {"left": LEFT, "cyclic": Cyclic(12)}, aux=2, k=8, max_iter=5)
    z, given = torch.rand(3, 12), torch.rand(3, 12) < 0.5
    (layer(z, given).sum() + layer.regularizer()).backward()
    assert layer.residual.grad.abs().sum() > 0 and layer.coeffs.grad.abs().sum() > 0
    layer.save(tmp_path / "soft.pt")
    loaded = SoftSymSATNet.load(tmp_path / "soft.pt")
    torch.testing.assert_close(loaded.matrix(), layer.matrix())
    assert list(loaded.groups) == ["left", "cyclic"]


@pytest.mark.parametrize(
    "groups, message",
    [
        ({}, "non-empty mapping"),
        ({"left": Symmetric(5)}, "'left' acts on 5 points"),
        ({"left": "S3"}, "must be a symsatnet.groups.Group"),
    ],
)
def test_bad_groups_are_clear_errors(groups, message):
    with pytest.raises(ValueError, match=message):
        SoftSymSATNet(12, groups)


def test_unknown_symmetry_type_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown symmetry type.*'diagonals'"):
        Task("sudoku", 3).symmetry_types("digits,diagonals")
    with pytest.raises(ValueError, match="unknown symmetry type"):
        sudoku_symmetry_types(2, ("rows", "nope"))


def test_symmetry_types_generate_the_sudoku_group():
    types = sudoku_symmetry_types(2)
    assert tuple(types) == SYMMETRY_TYPES
    tied = [name for name in SYMMETRY_TYPES if name != "transpose"]
    joint = InvariantSpace(Product(*[types[name] for name in tied[:1]]))  # a valid group
    assert joint.degree == 64
    # Invariant under every factor except transpose <=> invariant under sudoku_group(2).
    space = InvariantSpace(sudoku_group(2))
    matrix = space.build(torch.randn(space.num_orbitals))
    for name in tied:
        assert InvariantSpace(types[name]).residual(matrix) < 1e-6


@pytest.mark.parametrize("box", [2, 3])
def test_x_sudoku_boards_keep_the_diagonal_rule_and_have_one_solution(box):
    dataset = generate_x_dataset(8, box=box, seed=3)
    assert dataset.metadata["variant"] == "x"
    for puzzle, solution in zip(dataset.puzzles, dataset.solutions):
        assert is_valid_solution(solution, puzzle)
        assert diagonal_violations(solution) == []
        assert count_solutions(puzzle) == 1
    # A prefix with the same seed is the same data.
    np.testing.assert_array_equal(generate_x_dataset(3, box=box, seed=3).puzzles, dataset.puzzles[:3])


def test_x_rules_are_what_breaks_the_row_symmetry():
    solution = generate_x_dataset(1, box=3, seed=0).solutions[0]
    swapped = solution[[1, 0, 2, 3, 4, 5, 6, 7, 8]]  # rows within the first band
    assert is_valid_solution(swapped)
    assert diagonal_violations(swapped) != []
    assert diagonal_violations(solution.T) == []  # the transposition keeps them


def test_trains_through_the_cli_logs_levels_and_resumes(tmp_path, capsys):
    from puzzles import train as train_cli

    tiny = ["sudoku", "--box", "2", "--count", "60", "--batch", "10", "--threads", "1", "--no-progress",
            "--model", "symsatnet-soft", "--soft-groups", "digits,rows", "--out", str(tmp_path / "run")]
    assert train_cli.main([*tiny, "--epochs", "1"]) == 0
    assert train_cli.main([*tiny, "--epochs", "2", "--resume"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [row["layer"] for row in lines] == ["SoftSymSATNet"] * 2
    assert set(lines[-1]["symmetry_levels"]) == {"digits", "rows"}
    assert "residuals digits" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options, message",
    [
        (["--model", "symsatnet-soft", "--soft-groups", "digits,diagonals"], "unknown symmetry type"),
        (["--model", "symsatnet", "--soft-groups", "digits"], "applies to --model symsatnet-soft"),
    ],
)
def test_cli_refuses_bad_soft_options(tmp_path, capsys, options, message):
    from puzzles import train as train_cli

    code = train_cli.main(["sudoku", "--box", "2", "--count", "60", "--out", str(tmp_path / "run"), *options])
    assert code != 0 and message in capsys.readouterr().err
