"""Python side of the symsatnet:: custom ops: fake kernels for tracing and the
backward (implicit differentiation at the fixed point, docs/design.md "Backward").

The ops themselves are pure: every random draw and the update order come in as
arguments. Three families, each a forward and an adjoint sweep, with kernels
chosen by the dispatcher:

* ``mix_forward`` / ``mix_adjoint``: C-form, a dense (N, N) C (CPU and CUDA).
* ``smix_forward`` / ``smix_adjoint``: S-form, C = S Sᵀ never formed (CPU and CUDA).
* ``structured_forward`` / ``structured_adjoint`` (+ ``structured_pairings`` for the
  backward): the problem block of C tied by a group with aggregate tables
  (:mod:`symsatnet.structured`; CPU only).

Every forward is differentiable with respect to its weights and z through
``torch.library.register_autograd``. The backward of all three shares one output
cotangent (:func:`output_cotangent`) and one input gradient (:func:`input_gradient`);
only the weight gradients and the field of the adjoint vectors differ.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from . import _ext

_ext.load()

#: Outputs are returned clamped to [Z_EPS, 1 - Z_EPS]. Within Z_EPS of a pole the
#: arccos that maps v_o to z_o has an exploding derivative and float32 rounds z_o to
#: exactly 0 or 1, so a loss such as binary cross entropy would send a gradient of
#: ~1e12 through one confidently wrong output and swamp every other one (Adam then
#: stalls for hundreds of steps). The clamp makes such an output flat: its gradient
#: is zero, by the derivative of the clamp, and it is counted in ``num_clamped``.
Z_EPS = 1e-6
#: Where ``sin(pi z_o)`` of an output falls below this, ``dz_o/dv_o`` (which divides
#: by it) is evaluated at this value instead (a guard for the raw op outputs; the
#: clamp above already keeps the layers' outputs away from it).
SIN_EPS = 1e-6
#: Where the norm of an output's field ``|g_o|`` falls below this, the adjoint
#: divides by this value instead (the update direction of v_o is then undefined).
GNORM_EPS = 1e-8


def _forward_outputs_like(z: torch.Tensor, V_init: torch.Tensor):
    """Empty (V, z_out, gnorm, sweeps) as every forward op returns them."""
    batch, size = z.shape
    return (
        V_init.new_empty(batch, size, V_init.shape[2]),
        z.new_empty(batch, size),
        z.new_empty(batch, size),
        z.new_empty(batch, dtype=torch.int32),
    )


def _fake_forward(weights, z, is_input, V_init, order, max_iter, eps, prox_lam):
    return _forward_outputs_like(z, V_init)


def _fake_adjoint(weights, V, gnorm, is_input, W, order, max_iter, eps, prox_lam):
    return V.new_empty(V.shape)


def _fake_structured_forward(weights, truth, aux_rows, members, term_offsets, term_nodes, term_weights,
                             refresh, z, is_input, V_init, order, max_iter, eps, prox_lam):
    return _forward_outputs_like(z, V_init)


def _fake_structured_adjoint(weights, aux_rows, members, term_offsets, term_nodes, term_weights, refresh,
                             V, gnorm, is_input, W, order, max_iter, eps, prox_lam):
    return V.new_empty(V.shape)


def _fake_structured_pairings(weights, members, term_offsets, term_nodes, term_weights, refresh, V, U, is_input):
    return V.new_empty(V.shape[0], weights.shape[0]), V.new_empty(V.shape[0], members.shape[0], V.shape[2])


for _name in ("mix_forward", "smix_forward"):
    torch.library.register_fake(f"symsatnet::{_name}")(_fake_forward)
for _name in ("mix_adjoint", "smix_adjoint"):
    torch.library.register_fake(f"symsatnet::{_name}")(_fake_adjoint)
torch.library.register_fake("symsatnet::structured_forward")(_fake_structured_forward)
torch.library.register_fake("symsatnet::structured_adjoint")(_fake_structured_adjoint)
torch.library.register_fake("symsatnet::structured_pairings")(_fake_structured_pairings)

mix_forward = torch.ops.symsatnet.mix_forward.default
smix_forward = torch.ops.symsatnet.smix_forward.default
mix_adjoint = torch.ops.symsatnet.mix_adjoint.default
smix_adjoint = torch.ops.symsatnet.smix_adjoint.default
structured_forward = torch.ops.symsatnet.structured_forward.default
structured_adjoint = torch.ops.symsatnet.structured_adjoint.default
structured_pairings = torch.ops.symsatnet.structured_pairings.default


def output_mask(is_input: torch.Tensor) -> torch.Tensor:
    """Variables the sweeps update: everything but the truth column and the inputs."""
    mask = ~is_input
    return torch.cat([torch.zeros_like(mask[:, :1]), mask[:, 1:]], dim=1)


def clamped_gnorm(gnorm: torch.Tensor, is_input: torch.Tensor) -> torch.Tensor:
    """|g| of the outputs clamped to GNORM_EPS; 1 elsewhere (unused there)."""
    return torch.where(output_mask(is_input), gnorm.clamp_min(GNORM_EPS), torch.ones_like(gnorm))


def degenerate_outputs(z_out: torch.Tensor, gnorm: torch.Tensor, is_input: torch.Tensor) -> torch.Tensor:
    """Bool mask of the outputs that are clamped (see Z_EPS and GNORM_EPS)."""
    near_pole = (z_out < Z_EPS) | (z_out > 1 - Z_EPS)
    return output_mask(is_input) & (near_pole | (gnorm < GNORM_EPS))


def clamp_outputs(z_out: torch.Tensor, is_input: torch.Tensor) -> torch.Tensor:
    """z_out with the outputs clamped to [Z_EPS, 1 - Z_EPS]; inputs pass unchanged."""
    return torch.where(output_mask(is_input), z_out.clamp(Z_EPS, 1 - Z_EPS), z_out)


def input_directions(V_init: torch.Tensor, v0: torch.Tensor) -> torch.Tensor:
    """The unit directions r_i orthogonal to v0 that the kernels used for inputs."""
    r = V_init - (V_init * v0).sum(-1, keepdim=True) * v0
    norm = r.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, r / norm.clamp_min(torch.finfo(r.dtype).tiny), torch.zeros_like(r))


def output_cotangent(
    grad_V: Optional[torch.Tensor],
    grad_z_out: Optional[torch.Tensor],
    V: torch.Tensor,
    z_out: torch.Tensor,
    is_input: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The right-hand side W of the adjoint system, shared by every op family.

    Returns ``(W, grad_V, grad_z_out)`` with missing incoming gradients as zeros. For an
    output o, dl/dv_o = grad_V_o + grad_z_o dz_o/dv_o with dz_o/dv_o = v0 / (pi sin(pi z_o))
    (``sin`` clamped to SIN_EPS); W is zero on the truth and the inputs.
    """
    outputs = output_mask(is_input)
    v0 = V[:, :1, :]
    if grad_V is None:
        grad_V = torch.zeros_like(V)
    if grad_z_out is None:
        grad_z_out = torch.zeros_like(z_out)
    sin = torch.sin(math.pi * z_out).clamp_min(SIN_EPS)
    through_z = torch.where(outputs, grad_z_out / (math.pi * sin), torch.zeros_like(sin))
    W = torch.where(outputs.unsqueeze(-1), grad_V + through_z.unsqueeze(-1) * v0, torch.zeros_like(V))
    return W, grad_V, grad_z_out


def input_gradient(
    grad_V: torch.Tensor,
    field_of_u: torch.Tensor,
    grad_z_out: torch.Tensor,
    z: torch.Tensor,
    V_init: torch.Tensor,
    V: torch.Tensor,
    is_input: torch.Tensor,
) -> torch.Tensor:
    """dl/dz of the inputs, shared by every op family (zero for the truth and outputs).

    An input's vector is -cos(pi z_i) v0 + sin(pi z_i) r_i, so dl/dz_i is the total
    gradient of v_i, grad_V_i - (C U)_i (``field_of_u`` is C applied to the adjoint
    vectors U), dotted with dv_i/dz_i, plus the incoming gradient of z_out (which copies
    the input).
    """
    v0 = V[:, :1, :]
    grad_v_in = grad_V - field_of_u
    r = input_directions(V_init, v0)
    angle = math.pi * z
    dv_dz = math.pi * (torch.sin(angle).unsqueeze(-1) * v0 + torch.cos(angle).unsqueeze(-1) * r)
    through_v = (grad_v_in * dv_dz).sum(-1)
    inputs = is_input.clone()
    inputs[:, 0] = False
    return torch.where(inputs, through_v + grad_z_out, torch.zeros_like(z))


# The adjoint divides by the forward's |g_o - prox_lam v_o| = |g_o| + prox_lam at
# convergence and is called without a damping term of its own (prox_lam = 0), so it solves
# (|g_o| + prox_lam) u_o = P_o (w_o - sum_j C_oj u_j): prox_lam is the diagonal increment
# that keeps the backward system well conditioned, as in SATNet.
_ADJOINT_PROX_LAM = 0.0


def _setup_context(ctx, inputs, output):
    weights, z, is_input, V_init, order, max_iter, eps, prox_lam = inputs
    V, z_out, gnorm, _ = output
    ctx.save_for_backward(weights, z, is_input, V_init, order, V, z_out, gnorm)
    ctx.solve = (max_iter, eps, prox_lam)


def _make_backward(adjoint, dense: bool):
    def backward(ctx, grad_V, grad_z_out, grad_gnorm, grad_sweeps):
        weights, z, is_input, V_init, order, V, z_out, gnorm = ctx.saved_tensors
        W, grad_V, grad_z_out = output_cotangent(grad_V, grad_z_out, V, z_out, is_input)
        max_iter, eps, _ = ctx.solve
        U = adjoint(weights, V, clamped_gnorm(gnorm, is_input), is_input, W, order, max_iter, eps,
                    _ADJOINT_PROX_LAM)

        grad_weights = grad_z = None
        if dense:
            # g_o = sum_j C_oj v_j, so dl/dC_ab = -<u_a, v_b>, summed over the batch.
            if ctx.needs_input_grad[0]:
                grad_weights = -torch.einsum("bik,bjk->ij", U, V)
                # The diagonal never enters the sweeps: its gradient is exactly zero
                # (-<u_i, v_i> is zero only up to rounding, which Adam would amplify).
                grad_weights.diagonal().zero_()
            field_of_u = torch.matmul(weights.mT, U)
        else:
            # C = S S^T: dl/dS = -(U V^T + V U^T) S without the diagonal of U V^T.
            US = torch.matmul(U.mT, weights)  # (B, k, m)
            if ctx.needs_input_grad[0]:
                VS = torch.matmul(V.mT, weights)
                grad_weights = -(torch.matmul(U, VS) + torch.matmul(V, US)).sum(0)
                # Remove the diagonal's share, -2 <u_a, v_a> s_a: exactly zero in exact
                # arithmetic since C_aa never enters, rounding noise otherwise.
                self_pairs = (U * V).sum(-1).sum(0)
                grad_weights = grad_weights + 2 * self_pairs.unsqueeze(-1) * weights
            field_of_u = torch.matmul(weights, US.mT)
        if ctx.needs_input_grad[1]:
            grad_z = input_gradient(grad_V, field_of_u, grad_z_out, z, V_init, V, is_input)
        return grad_weights, grad_z, None, None, None, None, None, None

    return backward


torch.library.register_autograd(
    "symsatnet::mix_forward", _make_backward(mix_adjoint, dense=True), setup_context=_setup_context
)
torch.library.register_autograd(
    "symsatnet::smix_forward", _make_backward(smix_adjoint, dense=False), setup_context=_setup_context
)


def _setup_structured_context(ctx, inputs, output):
    (weights, truth, aux_rows, members, offsets, nodes, term_weights, refresh,
     z, is_input, V_init, order, max_iter, eps, prox_lam) = inputs
    V, z_out, gnorm, _ = output
    ctx.save_for_backward(weights, aux_rows, members, offsets, nodes, term_weights, refresh,
                          z, is_input, V_init, order, V, z_out, gnorm)
    ctx.solve = (max_iter, eps, prox_lam)


def _structured_backward(ctx, grad_V, grad_z_out, grad_gnorm, grad_sweeps):
    (weights, aux_rows, members, offsets, nodes, term_weights, refresh,
     z, is_input, V_init, order, V, z_out, gnorm) = ctx.saved_tensors
    tables = (members, offsets, nodes, term_weights, refresh)
    n = members.shape[0]
    W, grad_V, grad_z_out = output_cotangent(grad_V, grad_z_out, V, z_out, is_input)
    max_iter, eps, _ = ctx.solve
    U = structured_adjoint(weights, aux_rows, *tables, V, clamped_gnorm(gnorm, is_input), is_input, W,
                           order, max_iter, eps, _ADJOINT_PROX_LAM)
    pairings, field_problem = structured_pairings(weights, *tables, V, U, is_input)
    U_aux, V_aux = U[:, n + 1 :], V[:, n + 1 :]

    grad_weights = grad_truth = grad_aux = grad_z = None
    if ctx.needs_input_grad[0]:
        # dl/dC_ab = -<u_a, v_b>; a weight's entries are the pairs its terms read.
        grad_weights = -pairings.sum(0)
    if ctx.needs_input_grad[1]:
        # C_0p and C_p0 are the same entry; u_0 = 0.
        grad_truth = -torch.einsum("bpk,bk->p", U[:, 1 : n + 1], V[:, 0])
    if ctx.needs_input_grad[2]:
        # Row a of the aux block is used as a row, and its first 1 + n entries also as a column.
        grad_aux = -torch.einsum("bak,bjk->aj", U_aux, V)
        grad_aux[:, : n + 1] -= torch.einsum("bjk,bak->aj", U[:, : n + 1], V_aux)
    if ctx.needs_input_grad[8]:
        field_of_u = torch.zeros_like(V)
        field_of_u[:, 1 : n + 1] = field_problem + torch.einsum("ap,bak->bpk", aux_rows[:, 1 : n + 1], U_aux)
        grad_z = input_gradient(grad_V, field_of_u, grad_z_out, z, V_init, V, is_input)
    return (grad_weights, grad_truth, grad_aux, None, None, None, None, None, grad_z,
            None, None, None, None, None, None)


torch.library.register_autograd(
    "symsatnet::structured_forward", _structured_backward, setup_context=_setup_structured_context
)
