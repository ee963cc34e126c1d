"""The nn.Module layers: SATNet (drop-in of satnet.SATNet) and MixingLayer."""

import itertools
import math

import pytest
import torch

import symsatnet
from symsatnet import functional as F


@pytest.mark.parametrize("m", [1, 5, 7, 33])
def test_satnet_any_clause_count(m):
    layer = symsatnet.SATNet(6, m, aux=2)
    assert layer.S.shape == (9, m)
    z = torch.rand(3, 6)
    given = torch.tensor([[1, 0, 1, 0, 0, 1]] * 3, dtype=torch.int32)
    out = layer(z, given)
    assert out.shape == (3, 6) and out.dtype == torch.float32
    assert torch.equal(out[given.bool()], z[given.bool()])
    out.sum().backward()
    assert layer.S.grad is not None and torch.isfinite(layer.S.grad).all() and layer.S.grad.abs().sum() > 0
    assert layer.last_info.sweeps.shape == (3,)


def test_satnet_weight_normalize_scales_initial_clauses():
    torch.manual_seed(0)
    scaled = symsatnet.SATNet(50, 60, aux=10)
    torch.manual_seed(0)
    raw = symsatnet.SATNet(50, 60, aux=10, weight_normalize=False)
    torch.testing.assert_close(scaled.S, raw.S * math.sqrt(0.5 / (50 + 1 + 10 + 60)))


@pytest.mark.parametrize("kernel", ["clauses", "dense"])
def test_satnet_matches_functional_and_double_precision(kernel):
    layer = symsatnet.SATNet(5, 4, aux=1, max_iter=30, eps=1e-6, kernel=kernel).double()
    z = torch.rand(2, 5, dtype=torch.float64)
    given = torch.rand(2, 5) < 0.5
    layer.generator = torch.Generator().manual_seed(3)
    out = layer(z, given)
    solve = dict(max_iter=30, eps=1e-6, prox_lam=1e-2, order="random", generator=torch.Generator().manual_seed(3))
    if kernel == "clauses":
        expected = F.smix(layer.S, z, given, **solve)
    else:
        expected = F.mix(layer.S @ layer.S.T, z, given, **solve)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("n, m, aux", [(6, 4, 2), (12, 30, 0), (20, 9, 5), (64, 65, 0)])
def test_satnet_kernels_agree(n, m, aux):
    # 'dense' (C = S S^T formed, C-form kernel) and 'clauses' (S-form kernel) follow the
    # same updates from the same start: outputs and every gradient agree up to rounding.
    torch.manual_seed(n + m)
    layer = symsatnet.SATNet(n, m, aux=aux, max_iter=25, eps=0.0).double()
    z = torch.rand(3, n, dtype=torch.float64)
    given = torch.rand(3, n) < 0.4
    weights = torch.rand(3, n, dtype=torch.float64)
    results = {}
    for kernel in ("dense", "clauses"):
        layer.kernel = kernel
        layer.zero_grad()
        layer.generator = torch.Generator().manual_seed(7)
        z_in = z.clone().requires_grad_()
        out = layer(z_in, given)
        (out * weights).sum().backward()
        results[kernel] = (out.detach(), layer.S.grad.clone(), z_in.grad.clone(), layer.last_info.sweeps)
    dense, clauses = results["dense"], results["clauses"]
    torch.testing.assert_close(dense[0], clauses[0], rtol=0, atol=1e-10)
    scale = clauses[1].abs().max()
    assert scale > 0
    torch.testing.assert_close(dense[1], clauses[1], rtol=0, atol=1e-9 * scale)
    torch.testing.assert_close(dense[2], clauses[2], rtol=0, atol=1e-9 * max(clauses[2].abs().max(), 1.0))
    assert torch.equal(dense[3], clauses[3])


def test_satnet_kernel_choice_and_errors():
    # 'auto' forms C where the C-form kernel reads fewer rows per block (N <= 2 m).
    assert symsatnet.SATNet(729, 730).uses_dense()            # SATNet-Plain on 9x9 Sudoku
    assert symsatnet.SATNet(729, 600, aux=300).uses_dense()   # SATNet-300aux: N = 1030 <= 1200
    assert not symsatnet.SATNet(100, 20, aux=5).uses_dense()  # few clauses: the S-form kernel
    assert not symsatnet.SATNet(729, 730, kernel="clauses").uses_dense()
    assert symsatnet.SATNet(100, 20, kernel="dense").uses_dense()
    layer = symsatnet.SATNet(4, 6)
    assert "kernel='auto'" in repr(layer)
    with pytest.raises(ValueError, match="kernel must be one of"):
        layer.kernel = "structured"
    with pytest.raises(ValueError, match="kernel must be one of"):
        symsatnet.SATNet(4, 6, kernel="fast")
    # active_kernel names the kernel itself, in the one vocabulary of symsatnet.layers.KERNELS.
    assert symsatnet.SATNet(729, 730).active_kernel == "dense"
    assert symsatnet.SATNet(100, 20, aux=5).active_kernel == "clauses"
    assert symsatnet.SATNet(100, 20, kernel="clauses").active_kernel == "clauses"
    assert set(symsatnet.SATNet.kernels) | set(symsatnet.SymSATNet.kernels) == set(symsatnet.layers.KERNELS)
    assert symsatnet.MixingLayer().active_kernel == "dense"


def test_mixing_layer_gradient_reaches_builder():
    layer = symsatnet.MixingLayer(k=8, max_iter=20)
    A = torch.randn(7, 7, requires_grad=True)
    z = torch.rand(2, 6)
    given = torch.rand(2, 6) < 0.5
    layer(A + A.T, z, given).sum().backward()
    assert A.grad is not None and A.grad.abs().sum() > 0
    assert int(layer.last_info.num_clamped) >= 0


def test_satnet_state_dict_round_trip():
    layer = symsatnet.SATNet(4, 6, aux=2)
    other = symsatnet.SATNet(4, 6, aux=2)
    other.load_state_dict(layer.state_dict())
    assert torch.equal(other.S, layer.S)
    assert "n=4, m=6, aux=2" in repr(layer)


@pytest.mark.parametrize("seed", [0, 1])
def test_satnet_learns_parity_of_two_bits(seed):
    # XOR is not linearly separable: the layer must learn clauses through its aux
    # variables. With m=16, aux=8 this setting learned it in 8 of 8 seeds we tried.
    torch.manual_seed(seed)
    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2))).repeat(4, 1)
    target = bits.sum(1) % 2
    z = torch.cat([bits, torch.zeros(16, 1)], 1)
    given = torch.tensor([[1, 1, 0]] * 16, dtype=torch.int32)
    layer = symsatnet.SATNet(3, 16, aux=8)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(400):
        out = layer(z, given)[:, 2]
        loss = torch.nn.functional.binary_cross_entropy(out, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        prediction = layer(z, given)[:, 2] > 0.5
    assert torch.equal(prediction.float(), target)


@pytest.mark.parametrize("make", [lambda: symsatnet.SATNet(10, 7, aux=2), lambda: symsatnet.SymSATNet(64, symsatnet.sudoku_group(2))])
def test_layers_compile_without_graph_breaks(make):
    # Under torch.compile the starting vectors come from the global generator
    # (torch.randn with an explicit Generator object is not traceable).
    layer = make()
    n = layer.n
    z = torch.rand(3, n)
    given = torch.rand(3, n) < 0.4
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.manual_seed(0)
    out = compiled(z, given)
    out.sum().backward()
    parameters = [p for p in layer.parameters() if p.numel() > 0]  # SymSATNet's aux rows may be empty
    grads = [p.grad.clone() for p in parameters]
    layer.zero_grad()
    torch.manual_seed(0)
    expected = layer(z, given)
    expected.sum().backward()
    torch.testing.assert_close(out, expected)
    for got, want in zip(grads, [p.grad for p in parameters]):
        torch.testing.assert_close(got, want)
