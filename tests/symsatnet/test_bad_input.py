"""Bad input gets a clear error that names the problem (functional API, layers, raw ops)."""

import math

import pytest
import torch

import symsatnet
from symsatnet import functional as F
from symsatnet import ops


def good(form="C", n=4, aux=1, batch=2, dtype=torch.float64):
    size = 1 + n + aux
    if form == "C":
        A = torch.randn(size, size, dtype=dtype)
        weights = A + A.T
    else:
        weights = torch.randn(size, 3, dtype=dtype)
    z = torch.full((batch, n), 0.5, dtype=dtype)
    given = torch.zeros(batch, n, dtype=torch.bool)
    given[:, 0] = True
    return weights, z, given


def call(form, weights, z, given, **kwargs):
    return (F.mix if form == "C" else F.smix)(weights, z, given, **kwargs)


def with_nan(t, value=math.nan):
    t = t.clone()
    t.view(-1)[1] = value
    return t


def given_nan(z, value=math.nan):
    z = z.clone()
    z[0, 0] = value  # column 0 is given (good())
    return z


CASES = [
    # (description, form, mutate(weights, z, given) -> (weights, z, given, kwargs), error, message)
    ("z is 1-D", "C", lambda w, z, g: (w, z[0], g, {}), ValueError, "z must have shape"),
    ("z has too many columns", "C", lambda w, z, g: (w, torch.cat([z, z], 1), torch.cat([g, g], 1), {}), ValueError, "rows but needs"),
    ("z dtype differs", "C", lambda w, z, g: (w, z.float(), g, {}), TypeError, "dtype"),
    ("weights are integers", "C", lambda w, z, g: (w.long(), z, g, {}), TypeError, "float32 or float64"),
    ("C is not square", "C", lambda w, z, g: (w[:, :-1], z, g, {}), ValueError, "square"),
    ("C is not symmetric", "C", lambda w, z, g: (w + torch.triu(torch.ones_like(w), 1), z, g, {}), RuntimeError, "symmetric"),
    ("C is 3-D", "C", lambda w, z, g: (w[None], z, g, {}), ValueError, "2-D"),
    ("z above one", "C", lambda w, z, g: (w, z + 0.6, g, {}), RuntimeError, r"\[0, 1\]"),
    ("z below zero", "S", lambda w, z, g: (w, z - 0.6, g, {}), RuntimeError, r"\[0, 1\]"),
    ("NaN in a given z", "C", lambda w, z, g: (w, given_nan(z), g, {}), RuntimeError, "z contains NaN"),
    ("inf in a given z", "S", lambda w, z, g: (w, given_nan(z, math.inf), g, {}), RuntimeError, "z contains NaN or inf"),
    ("NaN in C", "C", lambda w, z, g: (with_nan(w) + with_nan(w).T, z, g, {}), RuntimeError, "C contains NaN"),
    ("inf in S", "S", lambda w, z, g: (with_nan(w, math.inf), z, g, {}), RuntimeError, "S contains NaN"),
    ("mask has the wrong shape", "C", lambda w, z, g: (w, z, g[:, :-1], {}), ValueError, "is_input must have the shape"),
    ("mask is float", "S", lambda w, z, g: (w, z, g.double(), {}), TypeError, "bool or integer"),
    ("mask on another device", "C", lambda w, z, g: (w, z, g.to("meta"), {}), ValueError, "is_input is on meta"),
    ("z on another device", "C", lambda w, z, g: (w, z.to("meta"), g, {}), ValueError, "z is on meta"),
    ("rank one", "C", lambda w, z, g: (w, z, g, {"k": 1}), ValueError, "k must be an int >= 2"),
    ("rank not an int", "S", lambda w, z, g: (w, z, g, {"k": 2.5}), ValueError, "k must be an int"),
    ("no sweeps", "C", lambda w, z, g: (w, z, g, {"max_iter": 0}), ValueError, "max_iter must be an int >= 1"),
    ("negative eps", "C", lambda w, z, g: (w, z, g, {"eps": -1.0}), RuntimeError, "eps must be"),
    ("negative prox", "S", lambda w, z, g: (w, z, g, {"prox_lam": -1.0}), RuntimeError, "prox_lam must be"),
    ("order not a permutation", "C", lambda w, z, g: (w, z, g, {"order": torch.zeros(6, dtype=torch.long)}), RuntimeError, "permutation"),
    ("order too short", "S", lambda w, z, g: (w, z, g, {"order": torch.arange(3)}), ValueError, "order must list"),
    ("weights not a tensor", "C", lambda w, z, g: (w.tolist(), z, g, {}), TypeError, "must be a torch.Tensor"),
]


@pytest.mark.parametrize("description, form, mutate, error, message", CASES, ids=[c[0] for c in CASES])
def test_functional_rejects(description, form, mutate, error, message):
    weights, z, given, kwargs = mutate(*good(form))
    with pytest.raises(error, match=message):
        call(form, weights, z, given, **kwargs)


@pytest.mark.parametrize("form", ["C", "S"])
@pytest.mark.parametrize("value", [math.nan, math.inf, 7.0])
def test_unread_entries_of_z_may_hold_anything(form, value):
    # Issue 24: only given entries of z are read (the others start from the random
    # vectors), so a placeholder NaN there was wrongly rejected; the result is unchanged.
    weights, z, given = good(form)
    odd = z.clone()
    odd[~given] = value
    seed = lambda: torch.Generator().manual_seed(0)
    expected = call(form, weights, z, given, generator=seed())
    assert torch.equal(call(form, weights, odd, given, generator=seed()), expected)


def test_integer_mask_is_accepted_like_bool():
    weights, z, given = good("S")
    a = F.smix(weights, z, given, generator=torch.Generator().manual_seed(0))
    b = F.smix(weights, z, given.int(), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_raw_ops_check_shapes():
    weights, z, given = good("C")
    z_full = torch.cat([torch.ones(2, 1, dtype=z.dtype), z, torch.zeros(2, 1, dtype=z.dtype)], 1)
    mask = torch.cat([torch.ones(2, 1, dtype=torch.bool), given, torch.zeros(2, 1, dtype=torch.bool)], 1)
    V_init = torch.randn(2, 6, 4, dtype=z.dtype)
    order = torch.arange(6)
    with pytest.raises(RuntimeError, match="V_init must have shape"):
        ops.mix_forward(weights, z_full, mask, V_init[:1], order, 5, 1e-4, 0.0)
    with pytest.raises(RuntimeError, match="is_input must be a bool tensor"):
        ops.mix_forward(weights, z_full, mask.int(), V_init, order, 5, 1e-4, 0.0)
    with pytest.raises(RuntimeError, match="V_init contains NaN"):
        ops.mix_forward(weights, z_full, mask, with_nan(V_init), order, 5, 1e-4, 0.0)
    V, _, gnorm, _ = ops.mix_forward(weights, z_full, mask, V_init, order, 5, 1e-4, 0.0)
    with pytest.raises(RuntimeError, match="gnorm must be positive"):
        ops.mix_adjoint(weights, V, torch.zeros_like(gnorm), mask, torch.randn_like(V), order, 5, 1e-4, 0.0)
    with pytest.raises(RuntimeError, match="incoming gradient contains NaN"):
        ops.mix_adjoint(weights, V, ops.clamped_gnorm(gnorm, mask), mask, with_nan(V), order, 5, 1e-4, 0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n=0, m=4), "n must be a positive int"),
        (dict(n=3, m=0), "m must be a positive int"),
        (dict(n=3, m=4, aux=-1), "aux must be an int >= 0"),
        (dict(n=3, m=4, max_iter=0), "max_iter must be an int >= 1"),
        (dict(n=3, m=4, eps=math.nan), "eps must be finite"),
        (dict(n=3, m=4, prox_lam=-0.5), "prox_lam must be finite"),
        (dict(n=3, m=4, k=1), "k must be an int >= 2"),
    ],
)
def test_satnet_constructor_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        symsatnet.SATNet(**kwargs)


def test_satnet_forward_rejects_wrong_width():
    layer = symsatnet.SATNet(5, 7)
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 5\)"):
        layer(torch.rand(2, 4), torch.ones(2, 4, dtype=torch.int32))
