"""C-form layers: CSATNet (untied) and SymSATNet (tied by a group)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from symsatnet import functional
from symsatnet.groups import Cyclic, DirectSum, Product, Symmetric, Trivial, Wreath, sudoku_group
from symsatnet import CSATNet, SymSATNet

GROUPS = [
    Symmetric(4),
    Cyclic(5),
    Product(Symmetric(2), Cyclic(3)),
    Wreath(Symmetric(2), Symmetric(2)),
    DirectSum(Symmetric(3), Trivial(2)),
]
IDS = [repr(group) for group in GROUPS]
CONFIGS = [(group, aux, truth) for group in GROUPS for aux in (0, 2) for truth in ("free", "tied")]
CONFIG_IDS = [f"{group!r}-aux{aux}-{truth}" for group, aux, truth in CONFIGS]


def make_layer(group, aux=0, truth="free", seed=0) -> SymSATNet:
    torch.manual_seed(seed)
    layer = SymSATNet(group.degree, group, aux=aux, truth=truth, max_iter=200, eps=1e-9, k=8).double()
    layer.generator = torch.Generator().manual_seed(seed)
    return layer


def batch(n: int, size: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.rand(size, n, generator=generator, dtype=torch.float64)
    given = torch.rand(size, n, generator=generator) < 0.5
    given[:, 0] = True
    given[:, -1] = False
    return z, given


def permutation_invariant(matrix: torch.Tensor, perm: np.ndarray) -> bool:
    index = torch.from_numpy(np.array(perm))
    return torch.equal(matrix[index][:, index], matrix)


@pytest.mark.parametrize("group, aux, truth", CONFIGS, ids=CONFIG_IDS)
def test_built_matrix_is_symmetric_and_invariant(group, aux, truth):
    layer = make_layer(group, aux, truth)
    C = layer.matrix()
    n = group.degree
    assert C.shape == (1 + n + aux, 1 + n + aux) == (layer.size,) * 2
    assert torch.equal(C, C.T)
    for perm in group.generators():
        assert permutation_invariant(C[1 : n + 1, 1 : n + 1], perm)
        if truth == "tied":
            assert torch.equal(C[0, 1 : n + 1][torch.from_numpy(np.array(perm))], C[0, 1 : n + 1])
    expected_truth = n if truth == "free" else group.num_orbits
    assert layer.truth.shape == (expected_truth,) and layer.coeffs.shape == (group.num_orbitals,)


@pytest.mark.parametrize("group, aux, truth", CONFIGS, ids=CONFIG_IDS)
def test_gradient_is_the_per_orbital_sum_of_the_matrix_gradient(group, aux, truth):
    layer = make_layer(group, aux, truth)
    n = group.degree
    z, given = batch(n)
    C = layer.matrix()
    C.retain_grad()
    out = functional.mix(C, z, given, k=layer.k, max_iter=layer.max_iter, eps=layer.eps,
                         prox_lam=layer.prox_lam, generator=torch.Generator().manual_seed(1))
    weights = torch.linspace(-1, 1, n, dtype=torch.float64)
    (out * weights).sum().backward()
    grad_C = C.grad
    assert grad_C.abs().sum() > 0
    orbital_map = torch.from_numpy(np.array(group.orbitals()))
    block = grad_C[1 : n + 1, 1 : n + 1]
    per_orbital = torch.zeros(layer.space.num_orbitals, dtype=torch.float64).index_add(0, orbital_map.ravel(), block.ravel())
    # coeffs multiply unit-norm basis matrices: C = coeffs[b] / sqrt(|orbital b|) on orbital b.
    orbital_sizes = torch.bincount(orbital_map.ravel()).double()
    torch.testing.assert_close(layer.coeffs.grad, per_orbital / orbital_sizes.sqrt(), rtol=1e-12, atol=1e-14)
    truth_grad = grad_C[0, 1 : n + 1] + grad_C[1 : n + 1, 0]
    if truth == "tied":
        orbits = torch.from_numpy(np.array(group.orbits()))
        truth_grad = torch.zeros(group.num_orbits, dtype=torch.float64).index_add(0, orbits, truth_grad)
        truth_grad = truth_grad / torch.bincount(orbits).double().sqrt()
    torch.testing.assert_close(layer.truth.grad, truth_grad, rtol=1e-12, atol=1e-14)
    if aux:
        assert layer.aux_rows.grad.abs().sum() > 0


def test_forward_equals_mix_on_the_built_matrix():
    layer = make_layer(Cyclic(5), aux=1)
    z, given = batch(5)
    out = layer(z, given)
    assert out.shape == (3, 5)
    assert torch.equal(out[given], z[given])
    again = functional.mix(layer.matrix(), z, given, k=8, max_iter=200, eps=1e-9, prox_lam=layer.prox_lam,
                           generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)
    assert layer.last_info is not None and int(layer.last_info.num_clamped) >= 0


def test_trivial_group_matches_plain_layer():
    """With the trivial group SymSATNet can represent exactly the same C as CSATNet."""
    torch.manual_seed(0)
    plain = CSATNet(4, aux=1, k=8).double()
    tied = SymSATNet.from_matrix(plain.matrix().detach(), Trivial(4), k=8)
    off_diagonal = ~torch.eye(5, dtype=torch.bool)  # the diagonal never enters; SymSATNet keeps it 0
    torch.testing.assert_close(tied.matrix()[1:, 1:][off_diagonal], plain.matrix()[1:, 1:].detach()[off_diagonal])
    torch.testing.assert_close(tied.matrix()[0, 1:], plain.matrix()[0, 1:].detach())
    z, given = batch(4)
    plain.generator, tied.generator = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(plain(z, given), tied(z, given))


@pytest.mark.parametrize("truth", ["free", "tied"])
def test_from_matrix_projects(truth):
    group = Product(Symmetric(2), Cyclic(3))
    n = group.degree
    source = make_layer(group, aux=2, truth=truth)
    rebuilt = SymSATNet.from_matrix(source.matrix().detach(), group, truth=truth, k=8)
    torch.testing.assert_close(rebuilt.matrix(), source.matrix())  # an invariant C is kept exactly
    noisy = source.matrix().detach() + 0.1 * torch.randn(n + 3, n + 3, dtype=torch.float64)
    projected = SymSATNet.from_matrix(noisy, group, truth=truth)
    symmetric = 0.5 * (noisy + noisy.T)
    expected = projected.space.project(symmetric[1 : n + 1, 1 : n + 1])
    expected[projected._diagonal_orbitals] = 0  # the diagonal never enters; SymSATNet keeps it 0
    torch.testing.assert_close(projected.orbital_values(), expected)
    block_only = SymSATNet.from_matrix(symmetric[1 : n + 1, 1 : n + 1].numpy(), group)
    assert block_only.aux == 0 and torch.equal(block_only.truth.detach(), torch.zeros(n, dtype=torch.float64))
    torch.testing.assert_close(block_only.coeffs, projected.coeffs)


def test_state_dict_round_trip(tmp_path):
    group = sudoku_group(2, transpose=True)
    layer = make_layer(group, aux=3, truth="tied")
    layer.max_iter, layer.eps = 17, 1e-3
    keys = set(layer.state_dict())
    assert keys == {"coeffs", "truth", "aux_rows", "_extra_state"}  # no orbital map: derived
    path = tmp_path / "layer.pt"
    layer.save(path)
    loaded = SymSATNet.load(path)
    assert loaded.group == group and loaded.truth_mode == "tied" and loaded.aux == 3
    assert (loaded.k, loaded.max_iter, loaded.eps) == (8, 17, 1e-3)
    assert loaded.coeffs.dtype == torch.float64
    torch.testing.assert_close(loaded.matrix(), layer.matrix(), rtol=0, atol=0)

    same_shape = make_layer(group, aux=3, truth="tied", seed=5)
    same_shape.load_state_dict(layer.state_dict())
    torch.testing.assert_close(same_shape.matrix(), layer.matrix(), rtol=0, atol=0)


def test_loading_into_a_layer_with_another_group_is_refused():
    saved = make_layer(Symmetric(4)).state_dict()
    other = make_layer(Cyclic(4))
    other.coeffs = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))  # same K, other group
    with pytest.raises(ValueError, match="saved for group"):
        other.load_state_dict(saved)


def test_csatnet_round_trip_and_symmetry(tmp_path):
    layer = CSATNet(6, aux=2, k=4)
    C = layer.matrix()
    assert C.shape == (9, 9) and torch.equal(C, C.T)
    layer.save(tmp_path / "plain.pt")
    loaded = CSATNet.load(tmp_path / "plain.pt")
    assert (loaded.n, loaded.aux, loaded.k) == (6, 2, 4)
    torch.testing.assert_close(loaded.matrix(), C, rtol=0, atol=0)
    with pytest.raises(ValueError, match="not a SymSATNet"):
        SymSATNet.load(tmp_path / "plain.pt")
    z, given = torch.rand(2, 6), torch.rand(2, 6) < 0.5
    layer(z, given).sum().backward()
    assert layer.weight.grad is not None and torch.equal(layer.weight.grad, layer.weight.grad.T)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: SymSATNet(5, Symmetric(4)), "group degree 4 does not match the 5 variables"),
        (lambda: SymSATNet(4, Symmetric(4), truth="loose"), "truth must be one of"),
        (lambda: SymSATNet(4, "S4"), "must be a symsatnet.groups.Group"),
        (lambda: SymSATNet(4, Symmetric(4), aux=-1), "aux must be an int"),
        (lambda: CSATNet(0), "n must be an int"),
        (lambda: SymSATNet.from_matrix(torch.zeros(3, 4), Symmetric(3)), "C must be a square matrix"),
        (lambda: SymSATNet.from_matrix(torch.zeros(2, 2), Symmetric(3)), "expected \\(n, n\\) or"),
        (lambda: SymSATNet(3, Symmetric(3))(torch.rand(2, 4), torch.ones(2, 4, dtype=torch.bool)), "z must have shape"),
    ],
)
def test_bad_input_raises_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_learns_equality_with_two_coefficients():
    """x2 = x1 under Symmetric(2): one off-diagonal coefficient must become negative."""
    torch.manual_seed(0)
    layer = SymSATNet(2, Symmetric(2), k=4, max_iter=30)
    layer.generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(layer.parameters(), lr=0.1)
    given = torch.tensor([[True, False]]).repeat(16, 1)
    for _ in range(40):
        x = (torch.rand(16) < 0.5).float()
        z = torch.stack([x, torch.zeros(16)], dim=1)
        out = layer(z, given)
        loss = torch.nn.functional.binary_cross_entropy(out[:, 1].clamp(1e-6, 1 - 1e-6), x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    x = torch.tensor([0.0, 1.0] * 8)
    out = layer(torch.stack([x, torch.zeros(16)], dim=1), given)
    assert ((out[:, 1] > 0.5).float() == x).all()
