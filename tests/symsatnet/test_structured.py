"""Structured fast path: aggregate tables from group expressions, kernels against the dense path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symsatnet import ops, structured
from symsatnet.groups import (
    Cyclic,
    DirectSum,
    FromGenerators,
    Product,
    Symmetric,
    SudokuTransposed,
    Trivial,
    Wreath,
    cube_group,
    sudoku_group,
)
from symsatnet import SymSATNet

FAMILY = [
    Symmetric(1),
    Symmetric(5),
    Trivial(3),
    Wreath(Symmetric(2), Symmetric(3)),
    Wreath(Trivial(2), Symmetric(3)),
    Wreath(Symmetric(3), Trivial(2)),
    Wreath(Wreath(Symmetric(2), Symmetric(2)), Symmetric(3)),
    Wreath(Symmetric(2), Wreath(Symmetric(2), Symmetric(2))),
    Wreath(Product(Symmetric(2), Trivial(2)), Symmetric(2)),
    Product(Symmetric(3), Trivial(2)),
    Product(Trivial(2), Wreath(Symmetric(2), Trivial(2)), Symmetric(2)),
    sudoku_group(2),
    SudokuTransposed(2),
]
UNSUPPORTED = [Cyclic(5), FromGenerators(3, [[1, 2, 0]]), DirectSum(Symmetric(2), Symmetric(3)), cube_group()]


def orbital_matrix(group, coeffs):
    return coeffs[torch.from_numpy(np.array(group.orbitals()))]


@pytest.mark.parametrize("group", FAMILY + [sudoku_group(3)], ids=repr)
def test_tables_rebuild_the_tied_matrix(group):
    tables = structured.structure(group)
    assert tables is not None and tables.num_orbitals == group.num_orbitals
    coeffs = torch.randn(group.num_orbitals, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(tables.dense_block(coeffs), orbital_matrix(group, coeffs), rtol=0, atol=1e-12)


def test_sudoku_tables_are_small():
    tables = structured.structure(sudoku_group(3))
    # 3 row x 3 column x 2 digit relations: 18 weights, 17 stored levels (the point level is v_i).
    assert tables.num_weights == 18 and tables.members.shape == (729, 17)
    assert tables.terms_per_variable == 17
    assert sum(tables.level_sizes) == (9 + 3 + 1) ** 2 * (9 + 1) - 729


@pytest.mark.parametrize("group", UNSUPPORTED, ids=repr)
def test_groups_outside_the_family_have_no_structure(group):
    assert structured.structure(group) is None


def make_pair(group, aux, truth, *, k=5, max_iter=40, eps=1e-8, prox_lam=0.02, seed=0, dtype=torch.float64):
    """Two layers with the same parameters, one per kernel, and the same solver inputs."""
    torch.manual_seed(seed)
    dense = SymSATNet(group.degree, group, aux=aux, truth=truth, max_iter=max_iter, eps=eps,
                      prox_lam=prox_lam, k=k, kernel="dense").to(dtype)
    with torch.no_grad():
        dense.coeffs.normal_(0, 0.4)
        dense.truth.normal_(0, 0.4)
        dense.aux_rows.normal_(0, 0.4)
    fast = SymSATNet(group.degree, group, aux=aux, truth=truth, max_iter=max_iter, eps=eps,
                     prox_lam=prox_lam, k=k, kernel="structured").to(dtype)
    fast.load_state_dict(dense.state_dict())
    fast.kernel = "structured"
    order = torch.randperm(dense.size, generator=torch.Generator().manual_seed(seed + 1))
    for layer in (dense, fast):
        layer.order = order
    return dense, fast


def run(layer, z, given_mask, weights, seed=3):
    layer.generator = torch.Generator().manual_seed(seed)
    zz = z.clone().requires_grad_()
    out = layer(zz, given_mask)
    (out * weights).sum().backward()
    grads = [layer.coeffs.grad, layer.truth.grad, layer.aux_rows.grad, zz.grad]
    return out.detach(), layer.last_info, grads


def assert_paths_agree(group, aux, truth, batch=3, atol=1e-10, **kwargs):
    dense, fast = make_pair(group, aux, truth, **kwargs)
    assert not dense.uses_structured() and fast.uses_structured()
    gen = torch.Generator().manual_seed(7)
    z = torch.rand(batch, group.degree, generator=gen, dtype=dense.coeffs.dtype)
    given_mask = torch.rand(batch, group.degree, generator=gen) < 0.4
    weights = torch.randn(batch, group.degree, generator=gen, dtype=dense.coeffs.dtype)
    out_d, info_d, grads_d = run(dense, z, given_mask, weights)
    out_s, info_s, grads_s = run(fast, z, given_mask, weights)
    torch.testing.assert_close(info_s.V, info_d.V, rtol=0, atol=atol)
    # z = arccos(-<v, v0>) / pi turns a rounding difference d of the cosine into sqrt(2 d)
    # next to z = 0 or 1.
    torch.testing.assert_close(out_s, out_d, rtol=0, atol=max(atol, 1e-7))
    torch.testing.assert_close(info_s.gnorm, info_d.gnorm, rtol=0, atol=atol)
    assert torch.equal(info_s.sweeps, info_d.sweeps)
    assert int(info_s.num_clamped) == int(info_d.num_clamped)
    # The dense gradient of a coefficient includes the diagonal pairs, -<u_i, v_i> = 0 up to
    # rounding times |u_i|; the structured one leaves them out. Scale the tolerance with |u|,
    # which is up to |dl/dz_o| / (pi sin(pi z_o)) (the adjoint's right-hand side).
    right_hand_side = weights.abs() / (torch.pi * torch.sin(torch.pi * out_d).clamp_min(1e-6))
    scale = max(1.0, float(right_hand_side.max()), *(float(g.abs().max()) for g in grads_d if g is not None and g.numel()))
    for name, got, expected in zip(("coeffs", "truth", "aux_rows", "z"), grads_s, grads_d):
        if name == "aux_rows" and aux == 0:
            continue  # no aux rows: the dense path never touches the empty parameter
        assert got is not None and expected is not None, name
        torch.testing.assert_close(got, expected, rtol=0, atol=atol * scale, msg=lambda m: f"{name}: {m}")


CONFIGS = [(group, aux, truth) for group in FAMILY for aux in (0, 2) for truth in ("free", "tied")]


@pytest.mark.parametrize("group, aux, truth", CONFIGS, ids=[f"{g!r}-aux{a}-{t}" for g, a, t in CONFIGS])
def test_structured_and_dense_paths_agree(group, aux, truth):
    assert_paths_agree(group, aux, truth)


def test_sudoku_box3_paths_agree():
    # Few sweeps and a small batch: the dense reference is the slow side.
    assert_paths_agree(sudoku_group(3), 1, "free", batch=2, k=4, max_iter=3, eps=0.0)


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("k", [5, 20, 40])
def test_instruction_sets_agree(isa, k, monkeypatch):
    # Each entry point uses its own vector width; k = 5, 20, 40 pad to 16, 32, 48 and so
    # cover both the whole-row hot path and the general one at every width.
    # An ISA the machine lacks falls back to the best it has (csrc/cpu/simd.h).
    monkeypatch.setenv("SYMSATNET_CPU_ISA", isa)
    assert_paths_agree(Wreath(Symmetric(2), Symmetric(3)), 2, "free", k=k)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kernel", ["dense", "structured"])
def test_thread_count_changes_nothing(kernel, two_threads):
    # Each batch item is solved by one thread: splitting the batch over 2 threads must
    # give bit-identical outputs and gradients (a shared buffer would not).
    dense, fast = make_pair(sudoku_group(2), 2, "tied", k=20, max_iter=15, eps=0.0)
    layer = dense if kernel == "dense" else fast
    gen = torch.Generator().manual_seed(11)
    z = torch.rand(7, 64, generator=gen, dtype=torch.float64)
    given_mask = torch.rand(7, 64, generator=gen) < 0.4
    weights = torch.randn(7, 64, generator=gen, dtype=torch.float64)
    out_two, _, grads_two = run(layer, z, given_mask, weights)
    torch.set_num_threads(1)
    layer.zero_grad(set_to_none=True)
    out_one, _, grads_one = run(layer, z, given_mask, weights)
    assert torch.equal(out_one, out_two)
    # Per-item results (outputs, input gradients) are the kernels' own: bit-identical.
    assert torch.equal(grads_one[3], grads_two[3])
    # Parameter gradients sum over the batch; the dense path does that in one torch GEMM
    # (einsum over batch and rank), whose blocking follows the thread count: seen to move
    # aux-row gradients by one ulp (2.2e-16). A shared buffer would be off by far more.
    for one, two in zip(grads_one[:3], grads_two[:3]):
        torch.testing.assert_close(one, two, rtol=0, atol=1e-13)


def test_float32_paths_agree():
    dense, fast = make_pair(sudoku_group(2), 0, "free", k=8, max_iter=20, eps=0.0, dtype=torch.float32)
    z = torch.rand(4, 64, generator=torch.Generator().manual_seed(1))
    given_mask = torch.rand(4, 64, generator=torch.Generator().manual_seed(2)) < 0.4
    weights = torch.randn(4, 64)
    out_d, _, grads_d = run(dense, z, given_mask, weights)
    out_s, _, grads_s = run(fast, z, given_mask, weights)
    torch.testing.assert_close(out_s, out_d, rtol=0, atol=1e-4)
    for got, expected in zip(grads_s[:2] + grads_s[3:], grads_d[:2] + grads_d[3:]):  # no aux rows
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)


def family_groups(max_degree=24):
    """Random expressions of the family, small enough for the dense reference."""
    leaves = st.builds(Symmetric, st.integers(1, 4)) | st.builds(Trivial, st.integers(1, 3))

    def extend(children):
        return st.builds(Wreath, children, children) | st.builds(Product, children, children)

    return st.recursive(leaves, extend, max_leaves=4).filter(lambda group: group.degree <= max_degree)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(group=family_groups(), aux=st.integers(0, 2), truth=st.sampled_from(["free", "tied"]))
def test_random_family_expressions(group, aux, truth):
    coeffs = torch.randn(group.num_orbitals, dtype=torch.float64)
    torch.testing.assert_close(
        structured.structure(group).dense_block(coeffs), orbital_matrix(group, coeffs), rtol=0, atol=1e-12
    )
    assert_paths_agree(group, aux, truth, batch=2, k=4, max_iter=25)


def test_gradients_match_finite_differences():
    group = Wreath(Symmetric(2), Symmetric(2))
    tables = structured.structure(group)
    gen = torch.Generator().manual_seed(4)
    coeffs = torch.randn(group.num_orbitals, dtype=torch.float64, generator=gen) * 0.5
    truth = torch.randn(4, dtype=torch.float64, generator=gen) * 0.5
    aux_rows = torch.randn(1, 6, dtype=torch.float64, generator=gen) * 0.5
    z = torch.rand(2, 4, dtype=torch.float64, generator=gen) * 0.8 + 0.1
    given_mask = torch.tensor([[True, False, False, True], [False, True, False, False]])
    direction = torch.randn(2, 4, dtype=torch.float64, generator=gen)

    def loss(c, t, a, zz):
        out = structured.mix(tables, c, t, a, zz, given_mask, k=4, max_iter=3000, eps=1e-14,
                             generator=torch.Generator().manual_seed(1))
        return (out * direction).sum()

    inputs = [x.clone().requires_grad_() for x in (coeffs, truth, aux_rows, z)]
    loss(*inputs).backward()
    for index, x in enumerate((coeffs, truth, aux_rows, z)):
        expected = torch.zeros_like(x).view(-1)
        for position in range(x.numel()):
            step = torch.zeros_like(x).view(-1)
            step[position] = 1e-6
            args_plus = [y if j != index else y + step.view_as(y) for j, y in enumerate((coeffs, truth, aux_rows, z))]
            args_minus = [y if j != index else y - step.view_as(y) for j, y in enumerate((coeffs, truth, aux_rows, z))]
            expected[position] = (loss(*args_plus) - loss(*args_minus)) / 2e-6
        torch.testing.assert_close(inputs[index].grad, expected.view_as(x), rtol=1e-5, atol=1e-7)


def test_structured_kernel_needs_a_family_group():
    with pytest.raises(ValueError, match="structured"):
        SymSATNet(5, Cyclic(5), kernel="structured")
    with pytest.raises(ValueError, match="kernel"):
        SymSATNet(4, Symmetric(4), kernel="fast")
    assert not SymSATNet(5, Cyclic(5)).uses_structured()  # 'auto' falls back to dense
    assert SymSATNet(729, sudoku_group(3)).uses_structured()
    assert not SymSATNet(729, sudoku_group(3), kernel="dense").uses_structured()
    # 17 aggregates read and 17 written per update against a dense row of 65: not worth it.
    assert not SymSATNet(64, sudoku_group(2)).uses_structured()
    # Assigning the kernel later is checked the same way.
    layer = SymSATNet(5, Cyclic(5))
    with pytest.raises(ValueError, match="structured"):
        layer.kernel = "structured"
    with pytest.raises(ValueError, match="kernel"):
        layer.kernel = "fast"
    assert layer.kernel == "auto"
    layer.kernel = "dense"
    assert layer.kernel == "dense"


def test_the_file_records_the_kernel_and_load_uses_it(tmp_path):
    layer = SymSATNet(64, sudoku_group(2), kernel="dense")
    layer.save(tmp_path / "layer.pt")
    assert torch.load(tmp_path / "layer.pt", weights_only=True)["_extra_state"]["kernel"] == "dense"
    again = SymSATNet.load(tmp_path / "layer.pt")
    assert again.kernel == "dense" and again.active_kernel == "dense"
    chosen = SymSATNet.load(tmp_path / "layer.pt", kernel="structured")
    assert chosen.kernel == "structured" and chosen.active_kernel == "structured"


def test_load_state_dict_keeps_the_constructors_kernel():
    # The kernel is an execution choice: weights trained with the dense kernel must not
    # switch a structured layer to it (a benchmark of the two once compared dense with dense).
    dense = SymSATNet(64, sudoku_group(2), kernel="dense")
    fast = SymSATNet(64, sudoku_group(2), kernel="structured")
    fast.load_state_dict(dense.state_dict())
    assert fast.kernel == "structured" and fast.active_kernel == "structured"
    assert torch.equal(fast.coeffs, dense.coeffs)
    auto = SymSATNet(729, sudoku_group(3))
    auto.load_state_dict(SymSATNet(729, sudoku_group(3), kernel="dense").state_dict())
    assert auto.kernel == "auto" and auto.active_kernel == "structured"


def test_active_kernel_names_what_the_next_forward_runs():
    assert SymSATNet(5, Cyclic(5)).active_kernel == "dense"
    assert SymSATNet(729, sudoku_group(3)).active_kernel == "structured"
    assert SymSATNet(64, sudoku_group(2)).active_kernel == "dense"
    assert SymSATNet.kernels == ("auto", "dense", "structured")


def _op_args(group=Wreath(Symmetric(2), Symmetric(3)), aux=1, batch=2, k=4):
    tables = structured.structure(group)
    t = tables.tensors()
    n, size = group.degree, 1 + group.degree + aux
    gen = torch.Generator().manual_seed(0)
    weights = tables.weights(torch.randn(group.num_orbitals, dtype=torch.float64, generator=gen))
    truth = torch.randn(n, dtype=torch.float64, generator=gen)
    aux_rows = torch.randn(aux, size, dtype=torch.float64, generator=gen)
    aux_rows[:, n + 1 :] = (aux_rows[:, n + 1 :] + aux_rows[:, n + 1 :].T) / 2
    z = torch.rand(batch, size, dtype=torch.float64, generator=gen)
    mask = torch.rand(batch, size, generator=gen) < 0.4
    mask[:, 0] = True
    mask[:, n + 1 :] = False
    V_init = torch.randn(batch, size, k, dtype=torch.float64, generator=gen)
    order = torch.randperm(size, generator=gen)
    tabs = (t["members"], t["term_offsets"], t["term_nodes"], t["term_weights"], t["refresh"])
    return weights, truth, aux_rows, tabs, z, mask, V_init, order


def test_opcheck():
    weights, truth, aux_rows, tabs, z, mask, V_init, order = _op_args()
    args = (weights.clone().requires_grad_(), truth.clone().requires_grad_(), aux_rows.clone().requires_grad_(),
            *tabs, z.clone().requires_grad_(), mask, V_init, order, 50, 1e-10, 0.01)
    torch.library.opcheck(ops.structured_forward, args)
    V, _, gnorm, _ = ops.structured_forward(weights, truth, aux_rows, *tabs, z, mask, V_init, order, 50, 1e-10, 0.01)
    W = torch.randn_like(V)

    torch.library.opcheck(
        ops.structured_adjoint,
        (weights, aux_rows, *tabs, V, ops.clamped_gnorm(gnorm, mask), mask, W, order, 50, 1e-10, 0.0),
    )
    torch.library.opcheck(ops.structured_pairings, (weights, *tabs, V, W, mask))


def test_bad_tables_are_refused():
    weights, truth, aux_rows, tabs, z, mask, V_init, order = _op_args()
    members, offsets, nodes, term_weights, refresh = tabs
    with pytest.raises(RuntimeError, match="term_weights"):
        ops.structured_forward(weights[:1], truth, aux_rows, *tabs, z, mask, V_init, order, 5, 0.0, 0.0)
    with pytest.raises(RuntimeError, match="int32"):
        ops.structured_forward(weights, truth, aux_rows, members.long(), offsets, nodes, term_weights,
                                      refresh, z, mask, V_init, order, 5, 0.0, 0.0)
    asymmetric = aux_rows.clone()
    asymmetric[0, -1] += 1.0
    bad_aux = torch.cat([asymmetric, asymmetric], 0)
    with pytest.raises(RuntimeError, match="aux_rows"):
        ops.structured_forward(weights, truth, bad_aux, *tabs, z, mask, V_init, order, 5, 0.0, 0.0)


def test_torch_compile_traces_the_structured_layer():
    # Under torch.compile the starting vectors come from the global generator.
    layer = SymSATNet(64, sudoku_group(2), max_iter=5, k=8, kernel="structured")
    z = torch.rand(3, 64)
    given_mask = torch.rand(3, 64) < 0.4
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.manual_seed(0)
    out = compiled(z, given_mask)
    out.sum().backward()
    grads = [p.grad.clone() for p in (layer.coeffs, layer.truth)]
    layer.zero_grad()
    torch.manual_seed(0)
    expected = layer(z, given_mask)
    expected.sum().backward()
    torch.testing.assert_close(out, expected)
    for got, want in zip(grads, (layer.coeffs.grad, layer.truth.grad)):
        torch.testing.assert_close(got, want)
