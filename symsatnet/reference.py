"""A small pure-PyTorch mixing method: the test oracle of the compiled kernels.

Slow (Python loops over variables) and meant for small problems. It follows the
same conventions as the ops (same starting vectors from ``V_init``, same update
order, same stopping rule), and its backward solves the adjoint linear system
directly with ``torch.linalg.solve`` instead of by sweeps.
"""

from __future__ import annotations

import math

import torch


def initial_state(z: torch.Tensor, is_input: torch.Tensor, V_init: torch.Tensor) -> torch.Tensor:
    """Starting vectors (B, N, k) built from full-width z/is_input (column 0 = truth)."""
    v0 = V_init[:, :1] / V_init[:, :1].norm(dim=-1, keepdim=True)
    r = V_init - (V_init * v0).sum(-1, keepdim=True) * v0
    r = r / r.norm(dim=-1, keepdim=True)
    angle = math.pi * z.unsqueeze(-1)
    inputs = -torch.cos(angle) * v0 + torch.sin(angle) * r
    starts = V_init / V_init.norm(dim=-1, keepdim=True)
    V = torch.where(is_input.unsqueeze(-1), inputs, starts)
    V[:, 0] = v0[:, 0]
    return V


def objective(C: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """f(V) = sum_{i != j} C_ij <v_i, v_j> per batch item (the diagonal never enters)."""
    gram = V @ V.mT
    off = C - torch.diag(torch.diag(C))
    return (off * gram).sum((-1, -2))


def forward(C, z, is_input, V_init, order=None, max_iter=40, eps=1e-4, prox_lam=0.0):
    """Forward sweeps on full-width inputs. Returns (V, z_out, gnorm)."""
    batch, size = z.shape
    order = range(size) if order is None else [int(i) for i in order]
    V = initial_state(z, is_input, V_init).clone()
    gnorm = torch.zeros(batch, size, dtype=C.dtype)
    for b in range(batch):
        for _ in range(max_iter):
            largest = 0.0
            for i in order:
                if i == 0 or is_input[b, i]:
                    continue
                g = C[i] @ V[b] - (C[i, i] + prox_lam) * V[b, i]
                gnorm[b, i] = g.norm()
                new = -g / g.norm()
                largest = max(largest, float((new - V[b, i]).norm()))
                V[b, i] = new
            if largest < eps:
                break
    cosine = -(V * V[:, :1]).sum(-1)
    z_out = torch.where(is_input, z, torch.arccos(cosine.clamp(-1, 1)) / math.pi)
    z_out[:, 0] = 1
    return V, z_out, gnorm


def adjoint(C, V, gnorm, is_input, W):
    """Solve the adjoint system directly: for outputs o,
    |g_o| u_o + P_o sum_{j != o} C_oj u_j = P_o w_o  (u_o orthogonal to v_o).
    """
    batch, size, k = V.shape
    U = torch.zeros_like(V)
    for b in range(batch):
        outs = [i for i in range(1, size) if not is_input[b, i]]
        count = len(outs)
        A = torch.zeros(count * k, count * k, dtype=C.dtype)
        rhs = torch.zeros(count * k, dtype=C.dtype)
        eye = torch.eye(k, dtype=C.dtype)
        for a, o in enumerate(outs):
            P = eye - torch.outer(V[b, o], V[b, o])
            rhs[a * k : (a + 1) * k] = P @ W[b, o]
            for c, j in enumerate(outs):
                block = gnorm[b, o] * eye if j == o else C[o, j] * P
                A[a * k : (a + 1) * k, c * k : (c + 1) * k] = block
        solution = torch.linalg.solve(A, rhs)
        for a, o in enumerate(outs):
            U[b, o] = solution[a * k : (a + 1) * k]
    return U


def gradients(C, z, is_input, V_init, grad_z_out, order=None, max_iter=200, eps=1e-12, prox_lam=0.0):
    """dl/dC and dl/dz (full width) of l = <grad_z_out, z_out>, via the direct adjoint.

    The forward's gnorm is |g_o - prox_lam v_o| = |g_o| + prox_lam at convergence, so the
    adjoint system below carries SATNet's diagonal increment prox_lam.
    """
    V, z_out, gnorm = forward(C, z, is_input, V_init, order, max_iter, eps, prox_lam)
    v0 = V[:, :1]
    outputs = ~is_input.clone()
    outputs[:, 0] = False
    sin = torch.sin(math.pi * z_out)
    W = torch.where(outputs.unsqueeze(-1), (grad_z_out / (math.pi * sin)).unsqueeze(-1) * v0, torch.zeros_like(V))
    U = adjoint(C, V, gnorm, is_input, W)
    grad_C = -torch.einsum("bik,bjk->ij", U, V)
    grad_v = -(C.mT @ U)
    r = V_init - (V_init * v0).sum(-1, keepdim=True) * v0
    r = r / r.norm(dim=-1, keepdim=True)
    angle = math.pi * z
    dv_dz = math.pi * (torch.sin(angle).unsqueeze(-1) * v0 + torch.cos(angle).unsqueeze(-1) * r)
    inputs = is_input.clone()
    inputs[:, 0] = False
    grad_z = torch.where(inputs, (grad_v * dv_dz).sum(-1) + grad_z_out, torch.zeros_like(z))
    return grad_C, grad_z
