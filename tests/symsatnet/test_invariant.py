"""Invariant matrices by gather, the Reynolds projection, and the tied truth row."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from symsatnet.invariant import InvariantSpace
from symsatnet.groups import Cyclic, DirectSum, Product, Symmetric, Trivial, Wreath, parse_group, sudoku_group

# Written in the group language, so the ids say which group failed and the parser is used too.
EXPRESSIONS = (
    "Symmetric(5)",
    "Cyclic(6)",
    "Trivial(4)",
    "DirectSum(Symmetric(2), Cyclic(3))",
    "Product(Cyclic(3), Symmetric(3))",
    "Wreath(Symmetric(2), Cyclic(3))",
    "FromGenerators(5, [[1, 0, 2, 4, 3]])",
    "sudoku_group(2)",
    "sudoku_group(2, transpose=True)",
)
GROUPS = [parse_group(text) for text in EXPRESSIONS]
IDS = list(EXPRESSIONS)
DTYPES = [torch.float32, torch.float64]


def random_matrix(n: int, seed: int = 0, dtype=torch.float64, batch=()) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*batch, n, n, generator=generator, dtype=dtype)


def invariant_under(matrix: torch.Tensor, group) -> bool:
    for perm in group.generators():
        index = torch.from_numpy(np.array(perm))
        if not torch.equal(matrix[..., index, :][..., :, index], matrix):
            return False
    return True


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_built_matrix_is_symmetric_and_invariant(group):
    space = InvariantSpace(group)
    coeffs = torch.randn(space.num_orbitals, dtype=torch.float64)
    matrix = space.build(coeffs)
    assert matrix.shape == (group.degree, group.degree)
    assert torch.equal(matrix, matrix.T)
    assert invariant_under(matrix, group)


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_orbital_map_buffer_is_fixed_by_every_generator(group):
    orbital_map = InvariantSpace(group).orbital_map
    for perm in group.generators():
        index = torch.from_numpy(np.array(perm))
        assert torch.equal(orbital_map[index][:, index], orbital_map)


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_gradient_is_the_per_orbital_sum(group):
    space = InvariantSpace(group)
    coeffs = torch.randn(space.num_orbitals, dtype=torch.float64, requires_grad=True)
    upstream = random_matrix(group.degree, seed=1)
    (space.build(coeffs) * upstream).sum().backward()
    orbital_map = group.orbitals()
    expected = [upstream.numpy()[orbital_map == b].sum() for b in range(space.num_orbitals)]
    np.testing.assert_allclose(coeffs.grad.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_projection_is_idempotent_orthogonal_and_invariant(group, dtype):
    space = InvariantSpace(group)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    matrix, other = random_matrix(group.degree, 2, dtype), random_matrix(group.degree, 3, dtype)
    projected = space.symmetrize(matrix)
    assert projected.dtype == dtype
    assert invariant_under(projected, group)
    torch.testing.assert_close(space.symmetrize(projected), projected, rtol=tolerance, atol=tolerance)
    inner = ((matrix - projected) * space.symmetrize(other)).sum()
    assert abs(inner.item()) < tolerance * matrix.numel()
    coeffs = torch.randn(space.num_orbitals, dtype=dtype)
    torch.testing.assert_close(space.project(space.build(coeffs)), coeffs, rtol=tolerance, atol=tolerance)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, len(GROUPS) - 1), st.integers(0, 2**16))
def test_projection_is_the_closest_invariant_matrix(index, seed):
    """Perturbing the projection inside the invariant space never gets closer to M."""
    space = InvariantSpace(GROUPS[index])
    matrix = random_matrix(space.degree, seed)
    best = space.project(matrix)
    nudge = torch.randn(space.num_orbitals, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    best_distance = torch.linalg.norm(matrix - space.build(best))
    assert best_distance <= torch.linalg.norm(matrix - space.build(best + 0.01 * nudge)) + 1e-12


def test_residual():
    space = InvariantSpace(Product(Symmetric(3), Cyclic(4)))
    invariant = space.build(torch.randn(space.num_orbitals, dtype=torch.float64))
    assert space.residual(invariant).item() == pytest.approx(0, abs=1e-14)
    assert space.residual(torch.zeros(12, 12)).item() == 0
    noisy = invariant + 0.1 * random_matrix(12)
    value = space.residual(noisy).item()
    expected = torch.linalg.norm(noisy - space.symmetrize(noisy)) / torch.linalg.norm(noisy)
    assert 0 < value < 1 and value == pytest.approx(expected.item())
    assert space.residual(torch.stack([invariant, noisy])).shape == (2,)


def test_numpy_in_numpy_out_and_batches():
    space = InvariantSpace(Wreath(Symmetric(2), Symmetric(3)))
    matrices = np.random.default_rng(0).standard_normal((4, 2, 6, 6))
    coeffs = space.project(matrices)
    assert isinstance(coeffs, np.ndarray) and coeffs.shape == (4, 2, space.num_orbitals)
    np.testing.assert_allclose(coeffs[1, 0], space.project(matrices[1, 0]))
    assert isinstance(space.residual(matrices[0, 0]), float)
    assert space.residual(matrices).shape == (4, 2)
    assert space.build(torch.from_numpy(coeffs)).shape == (4, 2, 6, 6)
    assert space.project(np.eye(6, dtype=int)).dtype == np.float64


def test_float16_projection():
    space = InvariantSpace(Symmetric(4))
    coeffs = space.project(torch.ones(4, 4, dtype=torch.float16))
    assert coeffs.dtype == torch.float16 and torch.equal(coeffs, torch.ones(2, dtype=torch.float16))


def test_truth_row_tied_to_point_orbits():
    group = DirectSum(Symmetric(2), Cyclic(3), Trivial(1))
    space = InvariantSpace(group)
    assert space.num_orbits == 3 and space.orbits.tolist() == [0, 0, 1, 1, 1, 2]
    truth = space.build_truth(torch.tensor([1.0, 2.0, 3.0]))
    assert truth.tolist() == [1, 1, 2, 2, 2, 3]
    assert space.project_truth(np.array([0.0, 2.0, 3.0, 3.0, 6.0, 1.0])).tolist() == [1, 4, 1]
    for perm in group.generators():
        assert torch.equal(truth[torch.from_numpy(np.array(perm))], truth)


def test_module_behaviour():
    space = InvariantSpace(sudoku_group(2))
    assert space.state_dict() == {}  # derived from the group, not saved
    assert space.to(torch.float64).orbital_map.dtype == torch.long
    assert "num_orbitals=18" in repr(space)
    coeffs = torch.randn(18)
    assert torch.equal(space(coeffs), space.build(coeffs))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: s.build(torch.zeros(3)), "expected 2 orbital coefficients"),
        (lambda s: s.project(torch.zeros(4, 5)), r"expected matrices of shape \(\.\.\., 4, 4\)"),
        (lambda s: s.project(np.zeros(4)), "expected matrices"),
        (lambda s: s.residual(torch.zeros(3, 3)), "expected matrices"),
        (lambda s: s.build_truth(torch.zeros(2)), "expected 1 orbit coefficients"),
        (lambda s: s.project_truth(torch.zeros(5)), "expected vectors"),
        (lambda s: InvariantSpace(Symmetric(4), degree=5), "group degree 4 does not match the 5 variables"),
        (lambda s: InvariantSpace("S4"), "must be a symsatnet.groups.Group"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(InvariantSpace(Symmetric(4)))


def test_equivariant_is_a_deprecated_name_of_invariant_space():
    import symsatnet

    with pytest.warns(DeprecationWarning, match="InvariantSpace"):
        space = symsatnet.Equivariant(Symmetric(4))
    assert isinstance(space, InvariantSpace) and space.num_orbitals == 2
    assert torch.equal(space.orbital_sizes, torch.tensor([4, 12]))
