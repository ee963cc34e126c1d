"""CUDA kernels against the CPU kernels (the specification), opcheck, large launches, compile.

Every test needs a GPU and skips itself without one. The CPU and CUDA runs share the
same V_init and order (random draws are made on the CPU and moved), so they differ only
by rounding: float64 results agree to ~1e-10 after a few sweeps, float32 to ~1e-4.
"""

import math
import os

import pytest
import torch

from symsatnet import _ext, ops
from symsatnet import functional as F

# SYMSATNET_TEST_DEVICE lets the test logic be exercised on a machine without a GPU
# (CPU against CPU); the default is the real thing.
DEVICE = os.environ.get("SYMSATNET_TEST_DEVICE", "cuda")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"
    ),
]

TOLERANCE = {torch.float64: dict(rtol=1e-9, atol=1e-10), torch.float32: dict(rtol=2e-4, atol=2e-4)}


def make_problem(form, N, k, m=8, batch=3, seed=0, dtype=torch.float64, input_fraction=0.4):
    """Weights, full-width z and is_input, V_init and a random order (all on the CPU)."""
    gen = torch.Generator().manual_seed(seed)
    if form == "C":
        A = torch.randn(N, N, generator=gen, dtype=dtype)
        weights = (A + A.T) / (2 * math.sqrt(N))
    else:
        weights = torch.randn(N, m, generator=gen, dtype=dtype) / math.sqrt(m)
    z = torch.rand(batch, N, generator=gen, dtype=dtype)
    z[:, 0] = 1
    is_input = torch.rand(batch, N, generator=gen) < input_fraction
    is_input[:, 0] = True
    V_init = torch.randn(batch, N, k, generator=gen, dtype=dtype)
    order = torch.randperm(N, generator=gen)
    return weights, z, is_input, V_init, order


def on(device, tensors):
    return [t.to(device) for t in tensors]


def forward_op(form):
    return ops.mix_forward if form == "C" else ops.smix_forward


def adjoint_op(form):
    return ops.mix_adjoint if form == "C" else ops.smix_adjoint


def assert_close_cpu(actual, expected, dtype):
    torch.testing.assert_close(actual.cpu(), expected, **TOLERANCE[dtype])


def test_cuda_kernels_registered():
    if DEVICE != "cuda":
        pytest.skip("CPU stand-in run")
    assert _ext.has_cuda(), "symsatnet._C was built without the CUDA kernels (rebuild with nvcc)"


# (form, N, k, m): small ranks pack several rows per warp, k > 32 uses several
# registers per lane, k = 300 takes the CPU fallback; N and m large enough that the
# rows no longer fit in shared memory in float64.
CASES = [
    ("C", 2, 1, 0),
    ("C", 7, 3, 0),
    ("C", 40, 8, 0),
    ("C", 130, 32, 0),
    ("C", 65, 33, 0),
    ("C", 50, 100, 0),
    ("C", 12, 300, 0),
    ("C", 1100, 32, 0),
    ("S", 2, 1, 3),
    ("S", 9, 4, 5),
    ("S", 60, 16, 40),
    ("S", 130, 32, 200),
    ("S", 70, 64, 33),
    ("S", 30, 200, 20),
    ("S", 300, 32, 1200),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("prox_lam", [0.0, 0.1])
@pytest.mark.parametrize("form,N,k,m", CASES)
def test_forward_matches_cpu(form, N, k, m, prox_lam, dtype):
    problem = make_problem(form, N, k, m, dtype=dtype, seed=N + k)
    # eps = 0 runs all sweeps, so rounding cannot change the number of sweeps.
    scalars = (6, 0.0, prox_lam)
    expected = forward_op(form)(*problem, *scalars)
    actual = forward_op(form)(*on(DEVICE, problem), *scalars)
    for got, want in zip(actual[:3], expected[:3]):
        assert got.device.type == DEVICE and got.dtype == want.dtype and got.shape == want.shape
        assert_close_cpu(got, want, dtype)
    assert actual[3].dtype == torch.int32
    torch.testing.assert_close(actual[3].cpu(), expected[3])


@pytest.mark.parametrize("form,N,k,m", [("C", 60, 16, 0), ("S", 60, 16, 50), ("S", 25, 2, 30)])
def test_stopping_rule_matches_cpu(form, N, k, m):
    problem = make_problem(form, N, k, m, seed=5)
    scalars = (500, 1e-6, 0.0)
    expected = forward_op(form)(*problem, *scalars)
    actual = forward_op(form)(*on(DEVICE, problem), *scalars)
    torch.testing.assert_close(actual[3].cpu(), expected[3])
    assert (expected[3] < 500).all(), "the problem should converge before max_iter"
    torch.testing.assert_close(actual[1].cpu(), expected[1], rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_degenerate_draws_match_cpu(dtype):
    """Zero draws fall back to basis vectors, inputs with k = 1 round onto +-v0."""
    for form in ("C", "S"):
        weights, z, is_input, V_init, order = make_problem(form, 9, 3, 4, dtype=dtype)
        V_init[0, 0] = 0  # truth direction: e_0
        V_init[1, 4] = 0  # an output's start: e_{4 % k}
        is_input[1, 4] = False
        V_init[2, 2] = V_init[2, 0]  # an input drawn along v0
        is_input[2, 2] = True
        problem = (weights, z, is_input, V_init, order)
        expected = forward_op(form)(*problem, 3, 0.0, 0.0)
        actual = forward_op(form)(*on(DEVICE, problem), 3, 0.0, 0.0)
        for got, want in zip(actual[:3], expected[:3]):
            assert_close_cpu(got, want, dtype)
        torch.testing.assert_close(actual[3].cpu(), expected[3])


def test_outputs_of_all_inputs_and_empty_batch():
    weights, z, is_input, V_init, order = make_problem("C", 6, 4)
    is_input[:] = True
    expected = ops.mix_forward(weights, z, is_input, V_init, order, 5, 1e-4, 0.0)
    actual = ops.mix_forward(*on(DEVICE, (weights, z, is_input, V_init, order)), 5, 1e-4, 0.0)
    for got, want in zip(actual, expected):
        torch.testing.assert_close(got.cpu(), want)
    empty = [t[:0] if t.dim() > 1 else t for t in (z, is_input, V_init)]
    out = ops.mix_forward(*on(DEVICE, (weights, *empty, order)), 5, 1e-4, 0.0)
    assert [tuple(t.shape) for t in out] == [(0, 6, 4), (0, 6), (0, 6), (0,)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("form,N,k,m", [c for c in CASES if c[2] != 300])
def test_adjoint_matches_cpu(form, N, k, m, dtype):
    weights, z, is_input, V_init, order = make_problem(form, N, k, m, dtype=dtype, seed=N + 2 * k)
    V, _, gnorm, _ = forward_op(form)(weights, z, is_input, V_init, order, 20, 0.0, 0.0)
    gnorm = ops.clamped_gnorm(gnorm, is_input)
    W = torch.randn(V.shape, dtype=dtype, generator=torch.Generator().manual_seed(3))
    W = torch.where(ops.output_mask(is_input).unsqueeze(-1), W, torch.zeros_like(W))
    for scalars in ((5, 0.0, 0.0), (5, 0.0, 0.2), (200, 1e-5, 0.0)):
        args = (weights, V, gnorm, is_input, W, order)
        expected = adjoint_op(form)(*args, *scalars)
        actual = adjoint_op(form)(*on(DEVICE, args), *scalars)
        assert actual.shape == expected.shape and actual.device.type == DEVICE
        # Five adjoint sweeps of a not yet converged system amplify rounding somewhat.
        scale = expected.abs().max().clamp_min(1)
        torch.testing.assert_close(actual.cpu() / scale, expected / scale, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("form", ["C", "S"])
def test_gradients_match_cpu(form, dtype):
    """Full backward through functional.mix / smix on both devices."""
    n, aux, m, batch = 30, 5, 24, 4
    gen = torch.Generator().manual_seed(11)
    size = 1 + n + aux
    if form == "C":
        A = torch.randn(size, size, generator=gen, dtype=dtype)
        weights = (A + A.T) / (2 * math.sqrt(size))
    else:
        weights = torch.randn(size, m, generator=gen, dtype=dtype) / math.sqrt(m)
    z = torch.rand(batch, n, generator=gen, dtype=dtype) * 0.8 + 0.1
    given = torch.rand(batch, n, generator=gen) < 0.5
    target = torch.rand(batch, n, generator=gen, dtype=dtype)
    order = torch.randperm(size, generator=gen)
    fn = F.mix if form == "C" else F.smix

    def run(device):
        w = weights.to(device).requires_grad_()
        zz = z.to(device).requires_grad_()
        out = fn(w, zz, given.to(device), k=16, max_iter=40, eps=0.0, order=order,
                 generator=torch.Generator().manual_seed(4), return_info=True)
        loss = ((out.z - target.to(device)) ** 2).sum()
        loss.backward()
        return out, w.grad, zz.grad

    expected, expected_dw, expected_dz = run("cpu")
    actual, actual_dw, actual_dz = run(DEVICE)
    tol = dict(rtol=1e-7, atol=1e-8) if dtype == torch.float64 else dict(rtol=5e-3, atol=5e-3)
    torch.testing.assert_close(actual.z.cpu(), expected.z, **tol)
    torch.testing.assert_close(actual_dw.cpu(), expected_dw, **tol)
    torch.testing.assert_close(actual_dz.cpu(), expected_dz, **tol)
    torch.testing.assert_close(actual.num_clamped.cpu(), expected.num_clamped)


@pytest.mark.parametrize("form", ["C", "S"])
def test_opcheck(form):
    weights, z, is_input, V_init, order = on(DEVICE, make_problem(form, 8, 3, 5, batch=2, seed=37))
    args = (weights.clone().requires_grad_(), z.clone().requires_grad_(), is_input, V_init, order, 50, 1e-10, 0.01)
    torch.library.opcheck(forward_op(form), args)
    V, _, gnorm, _ = forward_op(form)(weights, z, is_input, V_init, order, 50, 1e-10, 0.01)
    W = torch.randn_like(V)
    adjoint_args = (weights, V, ops.clamped_gnorm(gnorm, is_input), is_input, W, order, 50, 1e-10, 0.01)
    torch.library.opcheck(adjoint_op(form), adjoint_args)


def test_large_clause_matrix_launches():
    """S-form with m = 4096, N = 2000: far beyond what fits in shared memory."""
    N, m, k = 2000, 4096, 32
    weights, z, is_input, V_init, order = make_problem("S", N, k, m, batch=2, seed=7)
    expected = ops.smix_forward(weights, z, is_input, V_init, order, 2, 0.0, 0.0)
    actual = ops.smix_forward(*on(DEVICE, (weights, z, is_input, V_init, order)), 2, 0.0, 0.0)
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    for got, want in zip(actual[:3], expected[:3]):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-8, atol=1e-9)
    norms = actual[0].norm(dim=-1)
    torch.testing.assert_close(norms.cpu(), torch.ones_like(norms.cpu()), rtol=0, atol=1e-12)

    V, _, gnorm, _ = expected
    W = torch.where(ops.output_mask(is_input).unsqueeze(-1), torch.randn_like(V), torch.zeros_like(V))
    args = (weights, V, ops.clamped_gnorm(gnorm, is_input), is_input, W, order)
    U_expected = ops.smix_adjoint(*args, 2, 0.0, 0.0)
    U = ops.smix_adjoint(*on(DEVICE, args), 2, 0.0, 0.0)
    scale = U_expected.abs().max()
    torch.testing.assert_close(U.cpu() / scale, U_expected / scale, rtol=1e-8, atol=1e-9)


def test_large_dense_matrix_launches():
    """C-form with N = 2000, k = 32 in float64: the rows overflow shared memory."""
    problem = make_problem("C", 2000, 32, batch=2, seed=8)
    expected = ops.mix_forward(*problem, 2, 0.0, 0.0)
    actual = ops.mix_forward(*on(DEVICE, problem), 2, 0.0, 0.0)
    for got, want in zip(actual[:3], expected[:3]):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-8, atol=1e-9)


def test_many_items_per_device():
    """More batch items than SMs (the kernel then halves its shared-memory budget)."""
    problem = make_problem("S", 200, 32, 300, batch=300, seed=9, dtype=torch.float32)
    expected = ops.smix_forward(*problem, 3, 0.0, 0.0)
    actual = ops.smix_forward(*on(DEVICE, problem), 3, 0.0, 0.0)
    assert_close_cpu(actual[0], expected[0], torch.float32)


def test_torch_compile():
    gen = torch.Generator().manual_seed(21)
    n, aux = 10, 3
    A = torch.randn(1 + n + aux, 1 + n + aux, generator=gen).to(DEVICE)
    z = torch.rand(4, n, generator=gen).to(DEVICE)
    given = (torch.rand(4, n, generator=gen) < 0.5).to(DEVICE)

    def step(M, zz):
        C = (M + M.T) / 2
        return (F.mix(C, zz, given, k=8, max_iter=20, generator=torch.Generator().manual_seed(0)) ** 2).sum()

    backend = "inductor" if DEVICE == "cuda" else "aot_eager"
    compiled = torch.compile(step, backend=backend)
    M1 = A.clone().requires_grad_()
    out = compiled(M1, z)
    out.backward()
    M2 = A.clone().requires_grad_()
    eager = step(M2, z)
    eager.backward()
    torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(M1.grad, M2.grad, rtol=1e-4, atol=1e-5)
