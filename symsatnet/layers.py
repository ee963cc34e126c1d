"""Mixing-method MAXSAT layers as ``nn.Module``s, on one base.

* :class:`MaxSATLayer` — the base: solver settings, the kernel choice (``kernel``,
  ``active_kernel``) and the statistics of the last solve.
* :class:`CFormLayer` — base of the layers that assemble the full C: their forward, and
  the state dict that describes the layer, so ``load(path)`` needs nothing but the file.
* :class:`SATNet` — clause (S-form) parametrisation, a drop-in for ``satnet.SATNet``.
* :class:`CSATNet` — a free symmetric C ("SATNet-Plain", C-form).
* :class:`MixingLayer` — the C-form solver as a module that takes any C per call.

:class:`~symsatnet.symsatnet.SymSATNet`, whose C is tied by a group, has its own module.
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from . import functional
from .functional import MixInfo

#: Every solver kernel a layer may run. ``'dense'`` sweeps rows of the full C (C-form),
#: ``'clauses'`` keeps C = S Sᵀ implicit (S-form, :class:`SATNet`), ``'structured'`` sums
#: class aggregates of a group's tables (:class:`~symsatnet.SymSATNet`); ``'auto'`` lets
#: the layer pick one of those it has (its ``kernels``) for each forward.
KERNELS = ("auto", "dense", "clauses", "structured")


__all__ = ["KERNELS", "MaxSATLayer", "CFormLayer", "SATNet", "CSATNet", "MixingLayer"]


def check_count(value: object, what: str, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming ``what`` unless it is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")
    return int(value)


def initial_scale(size: int) -> float:
    """Spread of an off-diagonal entry of SATNet's initial C = S Sᵀ with m = N clauses.

    S has N(0, 0.5 / (N + m)) entries, so C_ij (i != j) has standard deviation
    sqrt(m) * 0.5 / (N + m) = 0.25 / sqrt(N): the same scale as the published layers.
    """
    return 0.25 / math.sqrt(size)


def symmetric_part(matrix: torch.Tensor) -> torch.Tensor:
    """(A + Aᵀ) / 2 over the last two dimensions."""
    return 0.5 * (matrix + matrix.transpose(-1, -2))


class MaxSATLayer(nn.Module):
    """Base of the layers: solver settings, the kernel choice and the statistics of the last
    solve."""

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


class SATNet(MaxSATLayer):
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


class CFormLayer(MaxSATLayer):
    """Base of the layers that assemble the full C: forward, state dict and files.

    The state dict holds, besides the parameters, a description of the layer (sizes,
    solver settings, the kernel it ran and, for ``SymSATNet``, the group), so
    :meth:`load` rebuilds it from the file alone. ``load_state_dict`` checks the sizes
    (and group) and keeps this layer's kernel."""

    n: int
    aux: int

    def __init__(self, n: int, aux: int, k: int, max_iter: int, eps: float, prox_lam: float) -> None:
        super().__init__(k, max_iter, eps, prox_lam)
        self.n = check_count(n, "n", 1)
        self.aux = check_count(aux, "aux", 0)

    @property
    def size(self) -> int:
        """N = 1 + n + aux, the side of C."""
        return 1 + self.n + self.aux

    def matrix(self) -> torch.Tensor:
        """The current full symmetric C, shape (N, N); differentiable in the parameters."""
        raise NotImplementedError

    def forward(self, z: torch.Tensor, is_input: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.n:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must have shape (batch, {self.n}), got {shape}")
        self.last_info = self._solve(z, is_input)
        return self.last_info.z

    def _solve(self, z: torch.Tensor, is_input: torch.Tensor) -> functional.MixInfo:
        return functional.mix(self.matrix(), z, is_input, **self._solve_kwargs())

    def _settings(self) -> dict[str, Any]:
        return dict(k=self.k, max_iter=self.max_iter, eps=self.eps, prox_lam=self.prox_lam)

    def _config(self) -> dict[str, Any]:
        return dict(n=self.n, aux=self.aux, **self._settings())

    def get_extra_state(self) -> dict[str, Any]:
        return {"layer": type(self).__name__, **self._config()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("layer") != type(self).__name__:
            found = state.get("layer") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"this state dict belongs to a {found}, not a {type(self).__name__}")
        mine = self._config()
        for key in ("n", "aux", "group", "truth"):
            if key in mine and state.get(key) != mine[key]:
                raise ValueError(
                    f"the state dict was saved for {key} = {state.get(key)!r}, this layer has {mine[key]!r}; "
                    f"use {type(self).__name__}.load to rebuild the layer from the file"
                )
        self.k, self.max_iter = int(state["k"]), int(state["max_iter"])
        self.eps, self.prox_lam = float(state["eps"]), float(state["prox_lam"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the state dict (parameters, sizes, settings, group) to ``path``."""
        torch.save(self.state_dict(), path)

    @classmethod
    def _from_config(cls, config: dict[str, Any]):
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: Any = None, *, kernel: Optional[str] = None):
        """Rebuild a layer saved with :meth:`save` from the file alone.

        Args:
            path: the file.
            map_location: as for ``torch.load``.
            kernel: the solver kernel of the new layer; default: the one the file records
                (``'auto'`` for files that record none).
        """
        state_dict = torch.load(path, map_location=map_location, weights_only=True)
        config = state_dict.get("_extra_state")
        if not isinstance(config, dict) or config.get("layer") != cls.__name__:
            found = config.get("layer") if isinstance(config, dict) else "no layer description"
            raise ValueError(f"{os.fspath(path)!r} holds {found}, not a {cls.__name__}")
        layer = cls._from_config(config)
        if kernel is not None:
            layer.kernel = kernel
        dtype = next(iter(value for value in state_dict.values() if isinstance(value, torch.Tensor))).dtype
        layer = layer.to(dtype=dtype)
        layer.load_state_dict(state_dict)
        return layer


class CSATNet(CFormLayer):
    r"""MAXSAT layer with a free symmetric interaction matrix C (C-form, "SATNet-Plain").

    The parameter ``weight`` is (N, N) and the layer uses its symmetric part, so C stays
    symmetric under any optimiser. Its initial value is SATNet's C = S Sᵀ for a random
    (N, N) clause matrix S scaled like ``SATNet(weight_normalize=True)``.

    Args:
        n: number of problem variables.
        aux: number of auxiliary variables.
        max_iter: largest number of sweeps, forward and backward.
        eps: stopping tolerance of the sweeps.
        prox_lam: diagonal increment of the backward linear system (stabilises it).
        k: rank of the relaxation.

    Shape:
        - z: (B, n) in [0, 1]; is_input: (B, n) bool or int mask (nonzero = given).
        - Output: (B, n), the inputs copied through.

    Example:
        >>> layer = CSATNet(9, aux=2)
        >>> z = torch.rand(4, 9); given = torch.rand(4, 9) < 0.5
        >>> layer(z, given).shape
        torch.Size([4, 9])
        >>> SymSATNet.from_matrix(layer.matrix().detach(), Cyclic(9))   # tie it afterwards
    """

    def __init__(
        self,
        n: int,
        aux: int = 0,
        max_iter: int = 40,
        eps: float = 1e-4,
        prox_lam: float = 1e-2,
        *,
        k: int = 32,
    ) -> None:
        super().__init__(n, aux, k, max_iter, eps, prox_lam)
        clauses = torch.randn(self.size, self.size) * math.sqrt(0.5 / (2 * self.size))
        self.weight = nn.Parameter(clauses @ clauses.T)

    def matrix(self) -> torch.Tensor:
        return symmetric_part(self.weight)

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> "CSATNet":
        return cls(
            config["n"], config["aux"], config["max_iter"], config["eps"], config["prox_lam"], k=config["k"]
        )

    def extra_repr(self) -> str:
        return f"n={self.n}, aux={self.aux}, " + super().extra_repr()


class MixingLayer(MaxSATLayer):
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

