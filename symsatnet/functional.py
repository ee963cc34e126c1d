"""Functional interface of the mixing-method MAXSAT layer.

``mix`` takes the interaction matrix C directly (C-form, any differentiable C);
``smix`` takes the clause matrix S with C = S Sᵀ kept implicit (S-form);
``structured_mix`` takes the tables of a group (:mod:`symsatnet.structured`) and the
coefficients of its closed orbitals, with the problem block of C never formed. Both take
the problem variables only: the truth variable (index 0) and the auxiliary
variables are added here, so z has n columns and C (or S) has N = 1 + n + aux rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional

import torch

from . import ops

if TYPE_CHECKING:
    from .structured import Structure


class MixInfo(NamedTuple):
    """What a solve returns besides the outputs (all tensors, no host sync).

    Attributes:
        z: (B, n) the outputs (inputs copied through).
        V: (B, N, k) the final unit vectors (row 0 is the truth vector).
        gnorm: (B, N) |g_o| at the last update of each output.
        sweeps: (B,) int32 number of sweeps each item ran.
        num_clamped: () int64 number of outputs within ``ops.Z_EPS`` of 0 or 1
            (returned clamped, so with zero gradient) or with |g_o| < ``ops.GNORM_EPS``
            (the backward divides by that epsilon instead).
    """

    z: torch.Tensor
    V: torch.Tensor
    gnorm: torch.Tensor
    sweeps: torch.Tensor
    num_clamped: torch.Tensor


def initial_vectors(
    batch: int,
    size: int,
    k: int,
    *,
    dtype: torch.dtype,
    device: torch.device,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Gaussian draws (B, N, k) for the starting vectors.

    Drawn on the CPU (from ``generator`` or the global CPU generator) and then moved,
    so the same seed gives the same start on every device.
    """
    draws = torch.randn(batch, size, k, generator=generator, dtype=dtype)
    return draws.to(device)


def _check_weights(weights: torch.Tensor, name: str) -> None:
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(weights).__name__}")
    if weights.dim() != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {tuple(weights.shape)}")
    if weights.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {weights.dtype}")


def _prepare(weights, z, is_input, k, max_iter, order, generator, name):
    """Validate the problem-level arguments and build the full (N-column) state."""
    if not isinstance(z, torch.Tensor) or not isinstance(is_input, torch.Tensor):
        raise TypeError("z and is_input must be torch.Tensors")
    if z.dim() != 2:
        raise ValueError(f"z must have shape (batch, n), got {tuple(z.shape)}")
    if z.dtype != weights.dtype:
        raise TypeError(f"z has dtype {z.dtype} but {name} has dtype {weights.dtype}; use one dtype")
    if is_input.shape != z.shape:
        raise ValueError(f"is_input must have the shape of z {tuple(z.shape)}, got {tuple(is_input.shape)}")
    if is_input.dtype.is_floating_point or is_input.dtype.is_complex:
        raise TypeError(f"is_input must be a bool or integer mask (nonzero = given), got {is_input.dtype}")
    for tensor, what in ((z, "z"), (is_input, "is_input")):
        if tensor.device != weights.device:
            raise ValueError(f"{what} is on {tensor.device} but {name} is on {weights.device}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"the rank k must be an int >= 2, got {k!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    batch, n = z.shape
    size = weights.shape[0]
    aux = size - 1 - n
    if aux < 0:
        raise ValueError(
            f"{name} has {size} rows but needs 1 + n + aux with n = {n} problem variables "
            f"(z has {n} columns)"
        )
    z_full = torch.cat([z.new_ones(batch, 1), z, z.new_zeros(batch, aux)], dim=1)
    given = is_input != 0
    mask = torch.cat([given.new_ones(batch, 1), given, given.new_zeros(batch, aux)], dim=1)
    V_init = initial_vectors(batch, size, k, dtype=weights.dtype, device=weights.device, generator=generator)
    if order is None:
        order = torch.arange(size, device=weights.device)
    elif isinstance(order, str):
        if order != "random":
            raise ValueError(f"order must be None, 'random' or a permutation tensor, got {order!r}")
        order = torch.randperm(size, generator=generator).to(weights.device)
    else:
        order = torch.as_tensor(order, dtype=torch.long, device=weights.device)
        if order.shape != (size,):
            raise ValueError(f"order must list all N = {size} variables, got shape {tuple(order.shape)}")
    return z_full, mask, V_init, order, n


def _finish(result, mask, n, return_info):
    V, z_out, gnorm, sweeps = result
    z = ops.clamp_outputs(z_out, mask)[:, 1 : n + 1]
    if not return_info:
        return z
    num_clamped = ops.degenerate_outputs(z_out, gnorm, mask).sum()
    return MixInfo(z, V, gnorm, sweeps, num_clamped)


def mix(
    C: torch.Tensor,
    z: torch.Tensor,
    is_input: torch.Tensor,
    *,
    k: int = 32,
    max_iter: int = 40,
    eps: float = 1e-4,
    prox_lam: float = 0.0,
    generator: Optional[torch.Generator] = None,
    order: Optional[torch.Tensor] = None,
    return_info: bool = False,
):
    """Solve the relaxed MAXSAT problem with interaction matrix ``C`` (C-form).

    Args:
        C: (N, N) symmetric matrix, N = 1 + n + aux; row/column 0 is the truth
            variable, then the n problem variables, then aux. Its diagonal never
            enters. Differentiable.
        z: (B, n) values in [0, 1]; only the entries marked in ``is_input`` are read.
            Differentiable.
        is_input: (B, n) bool or integer mask, nonzero where z is given.
        k: rank of the relaxation (length of each variable's vector), >= 2.
        max_iter: largest number of sweeps (forward, and again backward).
        eps: stop once no vector moves by more than ``eps`` in a sweep (backward:
            relative to the largest adjoint vector). 0 runs all ``max_iter`` sweeps.
        prox_lam: diagonal increment of the backward system, as in SATNet: the
            adjoint solves (|g_o| + prox_lam) u_o = P_o (w_o - sum_j C_oj u_j), which
            keeps it well conditioned where |g_o| is small (0 gives the exact implicit
            gradient). In the forward each update is a proximal step with this weight,
            which damps the sweeps without moving their fixed points.
        generator: CPU ``torch.Generator`` for the random starting vectors
            (default: the global generator; under ``torch.compile`` leave it None
            and seed with ``torch.manual_seed``: a Generator object is not traceable).
        order: (N,) permutation giving the order of updates in a sweep, or
            ``"random"`` for a fresh permutation drawn from ``generator`` on each call
            (as the original SATNet does); default 0, 1, ..., N-1. The truth and the
            inputs are skipped.
        return_info: also return the vectors and solver statistics as a ``MixInfo``.

    Returns:
        (B, n) outputs in [Z_EPS, 1 - Z_EPS] (``ops.Z_EPS`` = 1e-6; see there why)
        with the inputs copied through unchanged, or a ``MixInfo``.

    Example:
        >>> C = torch.randn(6, 6, dtype=torch.float64); C = C + C.T
        >>> z = torch.tensor([[1.0, 0.0, 0.5, 0.5, 0.5]], dtype=torch.float64)
        >>> given = torch.tensor([[True, True, False, False, False]])
        >>> mix(C, z, given).shape
        torch.Size([1, 5])
    """
    _check_weights(C, "C")
    if C.shape[0] != C.shape[1]:
        raise ValueError(f"C must be square, got shape {tuple(C.shape)}")
    z_full, mask, V_init, order, n = _prepare(C, z, is_input, k, max_iter, order, generator, "C")
    result = ops.mix_forward(C, z_full, mask, V_init, order, max_iter, float(eps), float(prox_lam))
    return _finish(result, mask, n, return_info)


def smix(
    S: torch.Tensor,
    z: torch.Tensor,
    is_input: torch.Tensor,
    *,
    k: int = 32,
    max_iter: int = 40,
    eps: float = 1e-4,
    prox_lam: float = 0.0,
    generator: Optional[torch.Generator] = None,
    order: Optional[torch.Tensor] = None,
    return_info: bool = False,
):
    """Solve the relaxed MAXSAT problem with C = S Sᵀ (S-form, C never formed).

    Args:
        S: (N, m) clause matrix, N = 1 + n + aux, any m >= 1. Differentiable.
        Others as in :func:`mix`.

    Returns:
        (B, n) outputs, or a ``MixInfo``.
    """
    _check_weights(S, "S")
    z_full, mask, V_init, order, n = _prepare(S, z, is_input, k, max_iter, order, generator, "S")
    result = ops.smix_forward(S, z_full, mask, V_init, order, max_iter, float(eps), float(prox_lam))
    return _finish(result, mask, n, return_info)


def structured_mix(
    tables: "Structure",
    coeffs: torch.Tensor,
    truth: torch.Tensor,
    aux_rows: torch.Tensor,
    z: torch.Tensor,
    is_input: torch.Tensor,
    *,
    k: int = 32,
    max_iter: int = 40,
    eps: float = 1e-4,
    prox_lam: float = 0.0,
    generator: Optional[torch.Generator] = None,
    order: Optional[torch.Tensor] = None,
    return_info: bool = False,
):
    """:func:`mix` for C whose problem block is tied by a structured group.

    C is never formed: the problem block is given by ``tables`` (from
    :func:`symsatnet.structured.structure`)
    and the closed-orbital coefficients. Same random draws, update order, stopping rules
    and outputs as ``functional.mix`` on the dense C.

    Args:
        tables: the group's :class:`~symsatnet.structured.Structure`.
        coeffs: (K,) orbital coefficients (ids of ``group.orbitals()``). Differentiable.
        truth: (n,) the truth row C[0, 1:n+1]. Differentiable.
        aux_rows: (aux, N) rows n+1.. of C, N = 1 + n + aux; the aux x aux block must be
            symmetric. Differentiable.
        z, is_input, k, max_iter, eps, prox_lam, generator, order, return_info: as in
            :func:`mix`.

    Returns:
        (B, n) outputs, or a ``MixInfo``.
    """
    _check_weights(aux_rows, "aux_rows")
    n = tables.n
    size = 1 + n + aux_rows.shape[0]
    if aux_rows.shape[1] != size:
        raise ValueError(f"aux_rows must have shape (aux, {size}) for n = {n}, got {tuple(aux_rows.shape)}")
    if truth.shape != (n,):
        raise ValueError(f"truth must have shape ({n},), got {tuple(truth.shape)}")
    if z.dim() != 2 or z.shape[1] != n:
        raise ValueError(f"z must have shape (batch, {n}), got {tuple(z.shape)}")
    stand_in = aux_rows.new_empty(size, 0)  # carries N, dtype and device for the shared preparation
    z_full, mask, V_init, order, n = _prepare(stand_in, z, is_input, k, max_iter, order, generator, "C")
    t = tables.tensors(coeffs.device)
    result = ops.structured_forward(
        tables.weights(coeffs), truth, aux_rows, t["members"], t["term_offsets"], t["term_nodes"],
        t["term_weights"], t["refresh"], z_full, mask, V_init, order, max_iter, float(eps), float(prox_lam),
    )
    return _finish(result, mask, n, return_info)
