"""SymSATNet: a C-form MAXSAT layer whose problem block is invariant under a permutation group.

C is assembled from one coefficient per closed orbital of the group (docs/design.md,
"Orbital parametrisation"), a truth row and free aux rows; the forward runs the dense
kernel on the full C or the structured kernel on the group's tables (:mod:`symsatnet.structured`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from . import structured
from .functional import MixInfo, structured_mix
from .groups import Group, parse_group
from .invariant import InvariantSpace
from .layers import CFormLayer, initial_scale, symmetric_part

__all__ = ["SymSATNet", "TRUTH_MODES"]

#: How the truth row C[0, 1:n+1] is parametrised (see SymSATNet).
TRUTH_MODES = ("free", "tied")


class SymSATNet(CFormLayer):
    r"""MAXSAT layer whose problem block of C is invariant under a permutation group.

    C[g i, g j] = C[i, j] for every g in ``group`` on the n problem variables, so the n x n
    block is constant on each closed orbital: ``values[orbital_map]`` with one learned
    coefficient per closed orbital; gradients reach them as per-orbital sums of d loss / d C.

    Parameters (initialised N(0, 1), as published):
        - ``coeffs``: (K,) coefficients of the unit-norm basis matrices, K =
          ``group.num_orbitals``: C is ``coeffs[b] / sqrt(|orbital b|)`` on orbital b
          (``orbital_values()``), so every basis matrix moves alike under Adam. Orbitals on
          the diagonal, which the solver never reads, are held at 0.
        - ``truth``: the truth row C[0, 1:n+1]: (n,) entries when ``truth='free'`` (as
          published), or (num_orbits,) coefficients of unit-norm point-orbit vectors when
          ``truth='tied'`` (strictly invariant).
        - ``aux_rows``: (aux, N) free rows of the auxiliary variables (the group does not act
          on them); their aux x aux block enters through its symmetric part.
        C[0, 0] and the diagonal are irrelevant to the solver and kept at 0 / the coefficient.

    Args:
        n: number of problem variables; must equal ``group.degree``.
        group: a ``symsatnet.groups.Group`` on the problem variables.
        aux: number of auxiliary variables.
        truth: ``'free'`` or ``'tied'``, see above.
        max_iter: largest number of sweeps, forward and backward.
        eps: stopping tolerance of the sweeps.
        prox_lam: diagonal increment of the backward linear system (stabilises it).
        k: rank of the relaxation.
        kernel: the solver kernel, one of ``kernels`` (keyword only): ``'structured'``
            solves with the aggregate kernel of :mod:`symsatnet.structured` (the problem
            block is never formed; ~20x less work per sweep for Sudoku), ``'dense'`` builds
            the full C and uses the dense kernel, ``'auto'`` (default) picks
            ``'structured'`` where the group has a structure, the parameters are on the CPU
            and the structure is cheaper than a dense row, and ``'dense'`` elsewhere
            (``active_kernel`` says which). Both give the same results up to rounding. The
            kernel is not part of the model: ``load_state_dict`` keeps this one, and
            :meth:`load` uses the one recorded in the file unless given another.

    Shape:
        - z: (B, n) in [0, 1]; is_input: (B, n) bool or int mask (nonzero = given).
        - Output: (B, n), the inputs copied through.

    Example:
        >>> layer = SymSATNet(729, sudoku_group(3))       # 18 coefficients + 729 truth entries
        >>> z = torch.zeros(2, 729); given = torch.zeros(2, 729, dtype=torch.bool)
        >>> layer(z, given).shape
        torch.Size([2, 729])
        >>> layer.save("sudoku.pt"); SymSATNet.load("sudoku.pt")
    """

    coeffs: nn.Parameter
    truth: nn.Parameter
    aux_rows: nn.Parameter
    kernels = ("auto", "dense", "structured")

    def __init__(
        self,
        n: int,
        group: Group,
        aux: int = 0,
        truth: str = "free",
        max_iter: int = 40,
        eps: float = 1e-4,
        prox_lam: float = 1e-2,
        *,
        k: int = 32,
        kernel: str = "auto",
    ) -> None:
        super().__init__(n, aux, k, max_iter, eps, prox_lam)
        # Derived once here (numpy work), so forward only reads attributes and traces cleanly.
        self._tables = structured.structure(group)
        if truth not in TRUTH_MODES:
            raise ValueError(f"truth must be one of {TRUTH_MODES}, got {truth!r}")
        self.truth_mode = truth
        self.space = InvariantSpace(group, degree=self.n)
        self.kernel = kernel
        # Coefficients of unit-norm basis matrices (indicator of orbital b divided by
        # sqrt(|orbital b|)), as published: Adam then moves every basis matrix by the
        # same Frobenius amount, whatever its orbital's size. With raw entries instead,
        # a step of lr = 4e-2 moves the ~400,000 entries of Sudoku's largest orbital
        # all at once and training diverges.
        diagonal = torch.zeros(self.space.num_orbitals, dtype=torch.bool)
        diagonal[self.space.orbital_map.diagonal()] = True
        self.register_buffer("_diagonal_orbitals", diagonal, persistent=False)
        truth_size = self.n if truth == "free" else self.space.num_orbits
        self.coeffs = nn.Parameter(torch.randn(self.space.num_orbitals))
        self.truth = nn.Parameter(torch.randn(truth_size))
        self.aux_rows = nn.Parameter(torch.randn(self.aux, self.size) * initial_scale(self.size))

    @property
    def group(self) -> Group:
        """The permutation group tying the problem block."""
        return self.space.group

    def _check_kernel(self, kernel: str) -> str:
        needs = (f"a group built from Symmetric, Trivial and Wreath factors combined by Product (or an Extend "
                 f"of one); {self.group!r} is not")
        return structured.check_kernel(super()._check_kernel(kernel), self._tables, needs)

    def _auto_kernel(self) -> str:
        return "structured" if structured.worth_running(self._tables, self.coeffs.device, self.size) else "dense"

    def uses_structured(self) -> bool:
        """Whether the next forward runs the structured kernel (kept for compatibility; the
        same as ``active_kernel == 'structured'``)."""
        return self.active_kernel == "structured"

    def aux_block(self) -> torch.Tensor:
        """Rows n+1.. of C, shape (aux, N), with the aux x aux block symmetric."""
        n = self.n
        return torch.cat([self.aux_rows[:, : 1 + n], symmetric_part(self.aux_rows[:, 1 + n :])], dim=1)

    def _solve(self, z: torch.Tensor, is_input: torch.Tensor) -> MixInfo:
        if self.active_kernel != "structured":
            return super()._solve(z, is_input)
        if self.coeffs.device.type != "cpu":
            raise NotImplementedError(
                "kernel='structured' has CPU kernels only so far; use kernel='auto' (dense on "
                f"{self.coeffs.device.type}) or 'dense'"
            )
        return structured_mix(
            self._tables, self.orbital_values(), self.truth_row(), self.aux_block(), z, is_input, **self._solve_kwargs()
        )

    def orbital_values(self) -> torch.Tensor:
        """The value of C on each closed orbital, ``coeffs / sqrt(orbital size)``, shape (K,)."""
        scale = self.space.orbital_sizes.to(self.coeffs.dtype).rsqrt()
        # Orbitals on the diagonal never enter the solver: keep them at 0, so their
        # coefficients get an exact zero gradient instead of rounding noise.
        return self.coeffs * torch.where(self._diagonal_orbitals, torch.zeros_like(scale), scale)

    def truth_row(self) -> torch.Tensor:
        """C[0, 1:n+1], shape (n,)."""
        if self.truth_mode == "free":
            return self.truth
        return self.space.build_truth(self.truth * self.space.orbit_sizes.to(self.truth.dtype).rsqrt())

    def matrix(self) -> torch.Tensor:
        n, aux = self.n, self.aux
        problem = self.space.build(self.orbital_values())
        truth = self.truth_row()
        head = torch.cat([truth.new_zeros(1), truth]).unsqueeze(0)  # row 0: [C00, truth]
        top = torch.cat([head, torch.cat([truth.unsqueeze(1), problem], dim=1)], dim=0)
        if aux == 0:
            return top
        block = self.aux_block()
        return torch.cat([torch.cat([top, block[:, : 1 + n].T], dim=1), block], dim=0)

    @classmethod
    def from_matrix(
        cls,
        C: torch.Tensor | np.ndarray,
        group: Group,
        truth: str = "free",
        **settings: Any,
    ) -> "SymSATNet":
        """A layer initialised by projecting C onto the group-invariant matrices.

        Args:
            C: (N, N) full matrix with truth row and column 0, N = 1 + group.degree + aux
                (e.g. ``CSATNet.matrix()``), or just the (n, n) problem block (the truth row
                then starts at 0). Its symmetric part is used.
            group: the group on the n problem variables.
            truth: ``'free'`` copies the truth row; ``'tied'`` averages it over point orbits.
            settings: ``max_iter``, ``eps``, ``prox_lam``, ``k``, ``kernel`` as for the constructor.

        Returns:
            A ``SymSATNet`` in C's dtype; ``layer.space.residual(block)`` says how much of the
            problem block the projection discarded.
        """
        matrix = torch.as_tensor(C).detach()
        if not matrix.is_floating_point():
            matrix = matrix.to(torch.get_default_dtype())
        n = group.degree if isinstance(group, Group) else None
        if n is None:
            raise ValueError(f"group must be a symsatnet.groups.Group, got {type(group).__name__}")
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"C must be a square matrix, got shape {tuple(matrix.shape)}")
        if matrix.shape[0] == n:
            matrix = torch.cat([matrix.new_zeros(1, n), matrix], dim=0)
            matrix = torch.cat([matrix.new_zeros(n + 1, 1), matrix], dim=1)
        if matrix.shape[0] < n + 1:
            raise ValueError(
                f"C has side {matrix.shape[0]}, but the group acts on {n} variables: "
                f"expected (n, n) or (1 + n + aux) with aux >= 0"
            )
        matrix = symmetric_part(matrix)
        layer = cls(n, group, aux=matrix.shape[0] - 1 - n, truth=truth, **settings).to(matrix.dtype)
        with torch.no_grad():
            values = layer.space.project(matrix[1 : n + 1, 1 : n + 1])
            layer.coeffs.copy_(values * layer.space.orbital_sizes.to(values.dtype).sqrt())
            truth_row = matrix[0, 1 : n + 1]
            if truth == "free":
                layer.truth.copy_(truth_row)
            else:
                orbit_sizes = layer.space.orbit_sizes.to(truth_row.dtype)
                layer.truth.copy_(layer.space.project_truth(truth_row) * orbit_sizes.sqrt())
            layer.aux_rows.copy_(matrix[n + 1 :, :])
        return layer

    def _config(self) -> dict[str, Any]:
        return dict(
            n=self.n, aux=self.aux, group=repr(self.group), truth=self.truth_mode, kernel=self.kernel, **self._settings()
        )

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> "SymSATNet":
        group = parse_group(config["group"])
        return cls(
            config["n"],
            group,
            config["aux"],
            config["truth"],
            config["max_iter"],
            config["eps"],
            config["prox_lam"],
            k=config["k"],
            kernel=config.get("kernel", "auto"),
        )

    def extra_repr(self) -> str:
        return (
            f"n={self.n}, group={self.group!r}, num_orbitals={self.space.num_orbitals}, aux={self.aux}, "
            f"truth={self.truth_mode!r}, kernel={self.kernel!r}, " + super().extra_repr()
        )
