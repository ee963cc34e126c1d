"""Mixing-method MAXSAT layers as ``nn.Module``s.

* :class:`SATNet` — clause (S-form) parametrisation, a drop-in for ``satnet.SATNet``.
* :class:`MixingLayer` — the C-form solver as a module that takes any C per call;
  the tied layers (``CSATNet``, ``SymSATNet``) build C and call it.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from . import functional
from .functional import MixInfo

#: Every solver kernel a layer may run. ``'dense'`` sweeps rows of the full C (C-form),
#: ``'clauses'`` keeps C = S Sᵀ implicit (S-form, :class:`SATNet`), ``'structured'`` sums
#: class aggregates of a group's tables (:class:`~symsatnet.SymSATNet`); ``'auto'`` lets
#: the layer pick one of those it has (its ``kernels``) for each forward.
KERNELS = ("auto", "dense", "clauses", "structured")


class _SolverSettings(nn.Module):
    """Settings shared by the layers, and the statistics of the last solve."""

    def __init__(self, k: int, max_iter: int, eps: float, prox_lam: float) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"the rank k must be an int >= 2, got {k!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
        if not (eps >= 0 and math.isfinite(eps)):
            raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
        if not (prox_lam >= 0 and math.isfinite(prox_lam)):
            raise ValueError(f"prox_lam must be finite and >= 0, got {prox_lam!r}")
        self.k, self.max_iter, self.eps, self.prox_lam = k, max_iter, float(eps), float(prox_lam)
        #: Optional CPU ``torch.Generator`` for the random starting vectors and order.
        self.generator: Optional[torch.Generator] = None
        #: Update order of the sweeps: ``"random"`` (a new permutation per forward, as
        #: in the original SATNet), None for the natural order, or a permutation.
        self.order = "random"
        #: :class:`~symsatnet.functional.MixInfo` of the last forward (sweeps run,
        #: number of outputs whose backward is clamped, ...).
        self.last_info: Optional[MixInfo] = None

    #: The kernels this layer accepts (a subset of :data:`KERNELS`).
    kernels: tuple[str, ...] = ("dense",)
    _kernel: str = "dense"

    @property
    def kernel(self) -> str:
        """The solver kernel chosen (one of ``kernels``); it may be changed at any time.

        It is an execution choice, not part of the model: ``load_state_dict`` keeps it,
        whatever kernel the saved weights were trained with."""
        return self._kernel

    @kernel.setter
    def kernel(self, kernel: str) -> None:
        self._kernel = self._check_kernel(kernel)

    def _check_kernel(self, kernel: str) -> str:
        if kernel not in self.kernels:
            raise ValueError(f"kernel must be one of {self.kernels}, got {kernel!r}")
        return kernel

    @property
    def active_kernel(self) -> str:
        """The kernel the next forward runs: ``kernel``, or what ``'auto'`` picks now (it
        depends on the sizes and the parameters' device)."""
        return self._auto_kernel() if self.kernel == "auto" else self.kernel

    def _auto_kernel(self) -> str:
        return "dense"

    def _solve_kwargs(self):
        return dict(
            k=self.k,
            max_iter=self.max_iter,
            eps=self.eps,
            prox_lam=self.prox_lam,
            generator=self.generator,
            order=self.order,
            return_info=True,
        )

    def extra_repr(self) -> str:
        return f"k={self.k}, max_iter={self.max_iter}, eps={self.eps}, prox_lam={self.prox_lam}"


class SATNet(_SolverSettings):
    r"""Differentiable MAXSAT layer with m learned clauses (S-form, C = S Sᵀ).

    Same constructor and ``forward`` as ``satnet.SATNet``, so existing code runs by
    changing the import, without its limits: any m (no multiple of 4), any rank k,
    float32 or float64, CPU or CUDA.

    Args:
        n: number of problem variables.
        m: number of clauses.
        aux: number of auxiliary variables.
        max_iter: largest number of sweeps, forward and backward.
        eps: stopping tolerance of the sweeps.
        prox_lam: diagonal increment of the backward linear system (stabilises it).
        weight_normalize: scale the initial S by sqrt(0.5 / (n + 1 + aux + m)),
            as the original layer does.
        k: rank of the relaxation (keyword only; 32 as in the original).
        kernel: ``'clauses'`` runs the S-form kernel, which never forms C and keeps
            Ω = Sᵀ V up to date (two passes over m rows of Ω per block of updates),
            ``'dense'`` forms C = S Sᵀ once per forward and runs the C-form kernel (one
            pass over N rows of V), and ``'auto'`` (default) picks ``'dense'`` on the CPU
            when N = 1 + n + aux <= 2 m, where it reads fewer rows, and ``'clauses'``
            elsewhere (keyword only). Both solve the same problem with the same update
            and gradient formulas; results agree up to rounding. Measured on 9x9 Sudoku
            (benchmarks/bench_satnet_kernels.py, forward and backward, float32, batch 40):
            ``'dense'`` is 2.0x faster for SATNet-Plain (N = 730, m = 730) and 1.26x for
            300aux (N = 1030, m = 600). The choice on CUDA is not yet measured, so
            ``'auto'`` keeps ``'clauses'`` there.

    Shape:
        - z: (B, n) in [0, 1]; is_input: (B, n) bool or int mask (nonzero = given).
        - Output: (B, n), the inputs copied through.

    Example:
        >>> layer = SATNet(9, 12, aux=3)
        >>> z = torch.rand(4, 9); given = torch.rand(4, 9) < 0.5
        >>> layer(z, given).shape
        torch.Size([4, 9])
    """

    kernels = ("auto", "dense", "clauses")

    def __init__(
        self,
        n: int,
        m: int,
        aux: int = 0,
        max_iter: int = 40,
        eps: float = 1e-4,
        prox_lam: float = 1e-2,
        weight_normalize: bool = True,
        *,
        k: int = 32,
        kernel: str = "auto",
    ) -> None:
        super().__init__(k, max_iter, eps, prox_lam)
        self.kernel = kernel
        for value, what in ((n, "n"), (m, "m")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive int, got {value!r}")
        if isinstance(aux, bool) or not isinstance(aux, int) or aux < 0:
            raise ValueError(f"aux must be an int >= 0, got {aux!r}")
        self.n, self.m, self.aux = n, m, aux
        S = torch.randn(n + 1 + aux, m)
        if weight_normalize:
            S = S * math.sqrt(0.5 / (n + 1 + aux + m))
        self.S = nn.Parameter(S)

    def forward(self, z: torch.Tensor, is_input: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.n:
            raise ValueError(f"z must have shape (batch, {self.n}), got {tuple(z.shape)}")
        if self.active_kernel == "dense":
            self.last_info = functional.mix(self.matrix(), z, is_input, **self._solve_kwargs())
        else:
            self.last_info = functional.smix(self.S, z, is_input, **self._solve_kwargs())
        return self.last_info.z

    def uses_dense(self) -> bool:
        """Whether the next forward forms C = S Sᵀ and runs the C-form kernel (kept for
        compatibility; the same as ``active_kernel == 'dense'``)."""
        return self.active_kernel == "dense"

    def _auto_kernel(self) -> str:
        # Per block of updates the C-form kernel reads N rows of V, the S-form kernel m
        # rows of Ω twice (the fields, then Ω's update).
        rows, clauses = self.S.shape
        return "dense" if self.S.device.type == "cpu" and rows <= 2 * clauses else "clauses"

    def matrix(self) -> torch.Tensor:
        """The interaction matrix C = S Sᵀ, shape (N, N) (row 0 the truth variable)."""
        return self.S @ self.S.T

    def extra_repr(self) -> str:
        return f"n={self.n}, m={self.m}, aux={self.aux}, kernel={self.kernel!r}, " + super().extra_repr()


class MixingLayer(_SolverSettings):
    r"""The C-form solver as a module: ``forward(C, z, is_input)`` for any C.

    C may be any differentiable (N, N) symmetric matrix, N = 1 + n + aux (row 0 the
    truth variable); gradients flow to whatever built it.

    Args:
        k: rank of the relaxation.
        max_iter: largest number of sweeps, forward and backward.
        eps: stopping tolerance of the sweeps.
        prox_lam: diagonal increment of the backward linear system (stabilises it).

    Shape:
        - C: (N, N); z: (B, n); is_input: (B, n). Output: (B, n).

    Example:
        >>> layer = MixingLayer(k=16)
        >>> A = torch.randn(8, 8, requires_grad=True)
        >>> z = torch.rand(2, 7); given = torch.rand(2, 7) < 0.5
        >>> layer(A + A.T, z, given).sum().backward()
    """

    def __init__(self, k: int = 32, max_iter: int = 40, eps: float = 1e-4, prox_lam: float = 0.0) -> None:
        super().__init__(k, max_iter, eps, prox_lam)

    def forward(self, C: torch.Tensor, z: torch.Tensor, is_input: torch.Tensor) -> torch.Tensor:
        self.last_info = functional.mix(C, z, is_input, **self._solve_kwargs())
        return self.last_info.z


#: The kernels of :class:`SATNet` (kept for compatibility; ``SATNet.kernels``).
SATNET_KERNELS = SATNet.kernels
