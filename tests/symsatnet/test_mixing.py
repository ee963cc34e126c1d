"""Core solver: forward against the reference, gradients three ways, invariants, opcheck."""

import math
import os

import pytest
import torch

import symsatnet
from symsatnet import functional as F
from symsatnet import ops, reference

FORMS = ["C", "S"]


def make_problem(form, n=6, aux=1, m=5, batch=2, seed=0, dtype=torch.float64):
    """A small random problem: weights (C symmetric or S), z and a given-mask."""
    gen = torch.Generator().manual_seed(seed)
    size = 1 + n + aux
    if form == "C":
        A = torch.randn(size, size, generator=gen, dtype=dtype)
        weights = (A + A.T) / 2
    else:
        weights = torch.randn(size, m, generator=gen, dtype=dtype) / math.sqrt(m)
    z = torch.rand(batch, n, generator=gen, dtype=dtype) * 0.8 + 0.1
    given = torch.rand(batch, n, generator=gen) < 0.4
    given[:, 0] = True
    given[:, -1] = False
    return weights, z, given


def solve(form, weights, z, given, seed=1, **kwargs):
    fn = F.mix if form == "C" else F.smix
    kwargs.setdefault("k", 4)
    return fn(weights, z, given, generator=torch.Generator().manual_seed(seed), **kwargs)


def dense_matrix(form, weights):
    return weights if form == "C" else weights @ weights.T


def full_width(z, given, aux):
    batch = z.shape[0]
    z_full = torch.cat([z.new_ones(batch, 1), z, z.new_zeros(batch, aux)], 1)
    mask = torch.cat([given.new_ones(batch, 1), given, given.new_zeros(batch, aux)], 1)
    return z_full, mask


TIGHT = dict(max_iter=3000, eps=1e-14)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("prox_lam", [0.0, 0.05])
def test_forward_matches_reference(form, prox_lam):
    weights, z, given = make_problem(form)
    info = solve(form, weights, z, given, max_iter=30, eps=1e-6, prox_lam=prox_lam, return_info=True)
    V_init = F.initial_vectors(2, 8, 4, dtype=torch.float64, device="cpu", generator=torch.Generator().manual_seed(1))
    z_full, mask = full_width(z, given, aux=1)
    V, z_out, gnorm = reference.forward(dense_matrix(form, weights), z_full, mask, V_init, max_iter=30, eps=1e-6, prox_lam=prox_lam)
    torch.testing.assert_close(info.V, V, rtol=0, atol=1e-12)
    torch.testing.assert_close(info.z, z_out[:, 1:7], rtol=0, atol=1e-12)
    torch.testing.assert_close(info.gnorm, gnorm, rtol=0, atol=1e-12)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("prox_lam", [0.0, 0.1])
def test_gradients_match_direct_adjoint_solve(form, prox_lam):
    # prox_lam > 0: SATNet's regularised backward, (|g| + prox_lam) u = P (w - C u).
    weights, z, given = make_problem(form, seed=3)
    weights_p = weights.clone().requires_grad_()
    z_p = z.clone().requires_grad_()
    grad_out = torch.randn(z.shape, dtype=z.dtype, generator=torch.Generator().manual_seed(7))
    (solve(form, weights_p, z_p, given, prox_lam=prox_lam, **TIGHT) * grad_out).sum().backward()

    C = dense_matrix(form, weights).detach()
    V_init = F.initial_vectors(2, 8, 4, dtype=torch.float64, device="cpu", generator=torch.Generator().manual_seed(1))
    z_full, mask = full_width(z, given, aux=1)
    grad_full = torch.cat([torch.zeros(2, 1, dtype=z.dtype), grad_out, torch.zeros(2, 1, dtype=z.dtype)], 1)
    grad_C, grad_z = reference.gradients(C, z_full, mask, V_init, grad_full, prox_lam=prox_lam, **TIGHT)
    if form == "S":
        # C = S S^T: chain the reference dC into dS.
        grad_S = (grad_C + grad_C.T) @ weights
        torch.testing.assert_close(weights_p.grad, grad_S, rtol=1e-8, atol=1e-10)
    else:
        torch.testing.assert_close(weights_p.grad, grad_C, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(z_p.grad, grad_z[:, 1:7], rtol=1e-8, atol=1e-10)


def finite_difference(loss, x, h=1e-6):
    grad = torch.zeros_like(x)
    flat = grad.view(-1)
    for i in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[i] = h
        step = step.view_as(x)
        flat[i] = (loss(x + step) - loss(x - step)) / (2 * h)
    return grad


@pytest.mark.parametrize("form", FORMS)
def test_gradients_match_finite_differences(form):
    weights, z, given = make_problem(form, n=4, aux=1, m=3, seed=5)
    grad_out = torch.randn(z.shape, dtype=z.dtype, generator=torch.Generator().manual_seed(2))

    def loss(w, zz):
        return (solve(form, w, zz, given, **TIGHT) * grad_out).sum()

    if form == "C":
        # Perturb C symmetrically: parametrise by its upper triangle.
        rows, cols = torch.triu_indices(6, 6)
        upper = weights[rows, cols].clone()

        def build(u):
            M = torch.zeros(6, 6, dtype=u.dtype)
            M = M.index_put((rows, cols), u)
            return M + M.T - torch.diag(torch.diag(M))

        u = upper.clone().requires_grad_()
        loss(build(u), z).backward()
        expected = finite_difference(lambda x: loss(build(x), z), upper)
        torch.testing.assert_close(u.grad, expected, rtol=1e-5, atol=1e-7)
    else:
        w = weights.clone().requires_grad_()
        loss(w, z).backward()
        torch.testing.assert_close(w.grad, finite_difference(lambda x: loss(x, z), weights), rtol=1e-5, atol=1e-7)
    zz = z.clone().requires_grad_()
    loss(weights, zz).backward()
    expected_z = finite_difference(lambda x: loss(weights, x), z)
    torch.testing.assert_close(zz.grad, expected_z, rtol=1e-5, atol=1e-7)
    assert (zz.grad[~given] == 0).all() and (zz.grad[given] != 0).any()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("prox_lam", [0.0, 0.1])
def test_objective_never_increases(form, prox_lam):
    weights, z, given = make_problem(form, n=12, aux=3, m=7, batch=3, seed=11)
    C = dense_matrix(form, weights)
    values = []
    for sweeps in range(1, 15):
        info = solve(form, weights, z, given, max_iter=sweeps, eps=0.0, prox_lam=prox_lam, return_info=True)
        values.append(reference.objective(C, info.V))
    values = torch.stack(values)
    assert (values[1:] <= values[:-1] + 1e-12).all()
    assert (values[-1] < values[0]).all()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inputs_pass_through_and_outputs_in_range(form, dtype):
    weights, z, given = make_problem(form, n=10, aux=2, batch=4, seed=13, dtype=dtype)
    out = solve(form, weights, z, given, max_iter=10)
    assert out.dtype == dtype and out.shape == z.shape
    assert torch.equal(out[given], z[given])
    assert ((out >= 0) & (out <= 1)).all()


@pytest.mark.parametrize("form", FORMS)
def test_deterministic_under_seed(form):
    weights, z, given = make_problem(form, n=20, aux=3, batch=5, seed=17, dtype=torch.float32)
    first = solve(form, weights, z, given, k=32, max_iter=20)
    second = solve(form, weights, z, given, k=32, max_iter=20)
    other = solve(form, weights, z, given, k=32, max_iter=20, seed=99)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    shuffled = solve(form, weights, z, given, k=32, max_iter=20, order="random")
    assert torch.equal(shuffled, solve(form, weights, z, given, k=32, max_iter=20, order="random"))
    assert not torch.equal(shuffled, first)
    torch.manual_seed(5)
    a = (F.mix if form == "C" else F.smix)(weights, z, given, max_iter=5)
    torch.manual_seed(5)
    b = (F.mix if form == "C" else F.smix)(weights, z, given, max_iter=5)
    assert torch.equal(a, b)


def test_kernels_use_the_threads_torch_is_given():
    # The kernels split the batch with at::parallel_for, an OpenMP pragma in ATen's
    # headers: a build without -fopenmp runs it on one thread whatever the setting.
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            assert torch.ops.symsatnet.parallel_threads() == threads
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("form", FORMS)
def test_thread_count_changes_nothing(form):
    weights, z, given = make_problem(form, n=20, aux=3, batch=7, seed=29)
    weights.requires_grad_()
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            weights.grad = None
            out = solve(form, weights, z, given, k=20, max_iter=15, eps=0.0)
            (out * torch.arange(20.0, dtype=out.dtype)).sum().backward()
            results.append((out.detach(), weights.grad.clone()))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("isa", ["baseline", "avx2"])
def test_instruction_sets_agree(form, isa, monkeypatch):
    weights, z, given = make_problem(form, n=30, aux=5, m=21, batch=3, seed=19)
    best = solve(form, weights, z, given, k=20, max_iter=15)
    monkeypatch.setenv("SYMSATNET_CPU_ISA", isa)
    forced = solve(form, weights, z, given, k=20, max_iter=15)
    torch.testing.assert_close(forced, best, rtol=0, atol=1e-10)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("k", [2, 3, 17, 33, 70])
def test_any_rank_and_size(form, k):
    # Sizes that are not multiples of the block or vector width.
    weights, z, given = make_problem(form, n=13, aux=4, m=11, batch=3, seed=k)
    out = solve(form, weights, z, given, k=k, max_iter=8, eps=0.0, return_info=True)
    V_init = F.initial_vectors(3, 18, k, dtype=torch.float64, device="cpu", generator=torch.Generator().manual_seed(1))
    z_full, mask = full_width(z, given, aux=4)
    V, _, _ = reference.forward(dense_matrix(form, weights), z_full, mask, V_init, max_iter=8, eps=0.0)
    torch.testing.assert_close(out.V, V, rtol=0, atol=1e-11)


@pytest.mark.parametrize("form", FORMS)
def test_update_order_is_respected(form):
    weights, z, given = make_problem(form, n=9, aux=2, batch=2, seed=23)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(4))
    info = solve(form, weights, z, given, max_iter=5, eps=0.0, order=order, return_info=True)
    V_init = F.initial_vectors(2, 12, 4, dtype=torch.float64, device="cpu", generator=torch.Generator().manual_seed(1))
    z_full, mask = full_width(z, given, aux=2)
    V, _, _ = reference.forward(dense_matrix(form, weights), z_full, mask, V_init, order=order, max_iter=5, eps=0.0)
    torch.testing.assert_close(info.V, V, rtol=0, atol=1e-12)


def test_early_stop_counts_sweeps():
    weights, z, given = make_problem("C", n=8, batch=3, seed=29)
    info = solve("C", weights, z, given, max_iter=500, eps=1e-5, return_info=True)
    assert (info.sweeps < 500).all() and (info.sweeps >= 1).all()
    info = solve("C", weights, z, given, max_iter=7, eps=0.0, return_info=True)
    assert (info.sweeps == 7).all()


def test_degenerate_outputs_are_clamped_and_counted():
    # Output 1 couples only to the truth: it lands exactly on +-v0 (sin(pi z) = 0).
    # Output 2 has an all-zero row: its field is zero.
    size = 5
    C = torch.zeros(size, size, dtype=torch.float64)
    C[0, 1] = C[1, 0] = -2.0
    C[3, 4] = C[4, 3] = 0.7
    C[0, 4] = C[4, 0] = 0.3
    C[3, 0] = C[0, 3] = -0.2
    z = torch.full((1, 4), 0.5, dtype=torch.float64)
    given = torch.tensor([[False, False, True, False]])
    Cp = C.clone().requires_grad_()
    zp = z.clone().requires_grad_()
    info = F.mix(Cp, zp, given, k=4, max_iter=50, generator=torch.Generator().manual_seed(0), return_info=True)
    assert int(info.num_clamped) == 2
    (info.z * torch.tensor([[1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)).sum().backward()
    assert torch.isfinite(Cp.grad).all() and torch.isfinite(zp.grad).all()
    assert Cp.grad.abs().sum() > 0


def test_gradient_through_vectors():
    # Backpropagating through the returned V also reaches C. With k = 2 the truth
    # and one input span the space, so no rotation leaves the solution's objective
    # unchanged and V itself (not only z) is a differentiable function of C.
    weights, z, given = make_problem("C", seed=31)
    C = weights.clone().requires_grad_()
    info = solve("C", C, z, given, k=2, return_info=True, **TIGHT)
    (info.V[:, 1:, :1] ** 3).sum().backward()
    grad = C.grad.clone()

    def loss(Cx):
        return (solve("C", Cx, z, given, k=2, return_info=True, **TIGHT).V[:, 1:, :1] ** 3).sum()

    h = 1e-6
    E = torch.zeros_like(weights)
    E[2, 6] = E[6, 2] = 1
    fd = (loss(weights + h * E) - loss(weights - h * E)) / (2 * h)
    torch.testing.assert_close(grad[2, 6] + grad[6, 2], fd, rtol=1e-5, atol=1e-8)


def _op_samples(form):
    weights, z, given = make_problem(form, n=5, aux=1, m=4, batch=2, seed=37)
    z_full, mask = full_width(z, given, aux=1)
    V_init = torch.randn(2, 7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    order = torch.arange(7)
    return weights, z_full, mask, V_init, order


@pytest.mark.parametrize("form", FORMS)
def test_opcheck(form):
    weights, z_full, mask, V_init, order = _op_samples(form)
    forward = ops.mix_forward if form == "C" else ops.smix_forward
    adjoint = ops.mix_adjoint if form == "C" else ops.smix_adjoint
    args = (weights.clone().requires_grad_(), z_full.clone().requires_grad_(), mask, V_init, order, 50, 1e-10, 0.01)
    torch.library.opcheck(forward, args)
    V, _, gnorm, _ = forward(*[a.detach() if isinstance(a, torch.Tensor) else a for a in args])
    W = torch.randn_like(V)
    torch.library.opcheck(adjoint, (weights, V, ops.clamped_gnorm(gnorm, mask), mask, W, order, 50, 1e-10, 0.01))


def test_torch_compile_traces_without_graph_breaks():
    weights, z, given = make_problem("C", n=6, aux=1, seed=41, dtype=torch.float32)

    def step(A, zz):
        C = A + A.T
        return F.mix(C, zz, given, k=8, max_iter=20).sum()

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    A = weights.clone().requires_grad_()
    torch.manual_seed(0)
    out = compiled(A, z)
    out.backward()
    B = weights.clone().requires_grad_()
    torch.manual_seed(0)
    step(B, z).backward()
    torch.testing.assert_close(A.grad, B.grad)


def test_extension_import_error_explains_build(monkeypatch):
    import importlib

    from symsatnet import _ext

    def missing(name):
        raise ImportError("No module named 'symsatnet._C'")

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(ImportError, match="pip install --no-build-isolation -e"):
        _ext.load()


def test_package_exports():
    assert symsatnet.SATNet is not None and symsatnet.MixingLayer is not None


@pytest.mark.parametrize("dtype", [torch.float64])
def test_saturated_wrong_output_does_not_swamp_the_gradient(dtype):
    # Output 1 couples only to the truth, so it lands on v0 (z = 1 up to rounding)
    # while the target says 0. Binary cross entropy would send ~1e12 through
    # it; the clamp to [Z_EPS, 1 - Z_EPS] makes it flat, so the other outputs'
    # gradients stay what they are.
    size = 6
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(size, size, generator=gen, dtype=dtype) * 0.3
    C = (A + A.T) / 2
    C[1, :] = 0
    C[:, 1] = 0
    C[0, 1] = C[1, 0] = -5.0
    z = torch.full((1, 5), 0.5, dtype=dtype)
    given = torch.tensor([[False, False, True, False, False]])
    target = torch.tensor([[0.0, 1.0, 0.5, 0.0, 1.0]], dtype=dtype)
    Cp = C.clone().requires_grad_()
    info = F.mix(Cp, z, given, k=4, max_iter=100, generator=torch.Generator().manual_seed(1), return_info=True)
    assert info.z[0, 0] == 1 - ops.Z_EPS
    assert int(info.num_clamped) >= 1
    outputs = ~given[0]
    loss = torch.nn.functional.binary_cross_entropy(info.z[:, outputs], target[:, outputs])
    loss.backward()
    assert torch.isfinite(Cp.grad).all()
    assert Cp.grad.abs().max() < 100
    assert Cp.grad[3:, 3:].abs().sum() > 0
