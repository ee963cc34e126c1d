"""Matrices and vectors invariant under a permutation group, parametrised by orbit coefficients.

A symmetric n x n matrix C with C[g i, g j] = C[i, j] for every g in G is constant on each
closed orbital of G (docs/design.md, "Orbital parametrisation"), so it is ``coeffs[orbital_map]`` for K coefficients; a
G-invariant vector is ``coeffs[orbits]``. Both are built by one gather -- never from a dense
stack of K basis matrices -- so autograd gives d loss / d coeffs[b] as the sum of
d loss / d C over orbital b. The Reynolds projection onto invariant matrices is the
per-orbital mean.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from .groups import Group

__all__ = ["InvariantSpace", "Equivariant"]


def _as_float_tensor(value: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, bool]:
    """A floating tensor view of ``value`` and whether it came in as numpy."""
    if isinstance(value, torch.Tensor):
        tensor, from_numpy = value, False
    else:
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float64)
        tensor, from_numpy = torch.from_numpy(np.ascontiguousarray(array)), True
    if not (tensor.is_floating_point() or tensor.is_complex()):
        tensor = tensor.to(torch.get_default_dtype())
    return tensor, from_numpy


def _back(tensor: torch.Tensor, from_numpy: bool):
    return tensor.detach().cpu().numpy() if from_numpy else tensor


def _gather(coeffs: torch.Tensor, labels: torch.Tensor, count: int, what: str) -> torch.Tensor:
    """``coeffs[..., labels]`` after checking that the last dimension holds ``count`` values."""
    if coeffs.shape[-1:] != (count,):
        raise ValueError(f"expected {count} {what} coefficients in the last dimension, got shape {tuple(coeffs.shape)}")
    return coeffs[..., labels.to(coeffs.device)]


def _class_means(values: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean of ``values[..., p]`` over the points p of every class, for any leading shape."""
    labels = labels.to(values.device)
    sums = values.new_zeros(*values.shape[:-1], len(counts))
    sums = sums.index_add(-1, labels, values)
    return sums / counts.to(device=values.device, dtype=values.dtype)


class InvariantSpace(nn.Module):
    r"""The space of G-invariant symmetric matrices (and G-invariant vectors) on n points.

    Args:
        group: the permutation group G (a ``symsatnet.groups.Group``).
        degree: if given, the number of points the caller expects; a group of another
            degree is refused.

    Attributes:
        orbital_map: long buffer (n, n), the closed orbital of every pair, ids 0..K-1.
        orbits: long buffer (n,), the point orbit of every point, ids 0..num_orbits-1.
        num_orbitals: K, the number of coefficients of an invariant matrix.
        num_orbits: the number of coefficients of an invariant vector.
        orbital_sizes: long buffer (K,), the number of pairs in every closed orbital.
        orbit_sizes: long buffer (num_orbits,), the number of points in every orbit.

    Both maps are derived from the group, so they are not saved in the state dict.

    Shape:
        - ``build``: coefficients (\*, K) -> matrices (\*, n, n)
        - ``project``: matrices (\*, n, n) -> coefficients (\*, K)
        - ``build_truth``: coefficients (\*, num_orbits) -> vectors (\*, n)
        - ``project_truth``: vectors (\*, n) -> coefficients (\*, num_orbits)

    Example::

        >>> space = InvariantSpace(Symmetric(4))
        >>> space.build(torch.tensor([1.0, -0.5]))    # 1 on the diagonal, -0.5 elsewhere
        >>> space.project(torch.randn(4, 4))           # (2,) per-orbital means
    """

    orbital_map: torch.Tensor
    orbits: torch.Tensor
    orbital_sizes: torch.Tensor
    orbit_sizes: torch.Tensor

    def __init__(self, group: Group, degree: int | None = None):
        super().__init__()
        if not isinstance(group, Group):
            raise ValueError(f"group must be a symsatnet.groups.Group, got {type(group).__name__}")
        if degree is not None and degree != group.degree:
            raise ValueError(f"group degree {group.degree} does not match the {degree} variables")
        self.group = group
        orbital_map = torch.from_numpy(np.array(group.orbitals(), dtype=np.int64))
        orbits = torch.from_numpy(np.array(group.orbits(), dtype=np.int64))
        self.num_orbitals = int(orbital_map.max()) + 1
        self.num_orbits = int(orbits.max()) + 1
        self.register_buffer("orbital_map", orbital_map, persistent=False)
        self.register_buffer("orbits", orbits, persistent=False)
        self.register_buffer("orbital_sizes", torch.bincount(orbital_map.ravel()), persistent=False)
        self.register_buffer("orbit_sizes", torch.bincount(orbits), persistent=False)

    @property
    def degree(self) -> int:
        """n, the number of points."""
        return self.group.degree

    def extra_repr(self) -> str:
        return f"{self.group!r}, degree={self.degree}, num_orbitals={self.num_orbitals}"

    # -- matrices -------------------------------------------------------------------

    def build(self, coeffs: torch.Tensor) -> torch.Tensor:
        """The invariant matrix ``coeffs[..., orbital_map]``: (*, K) -> (*, n, n)."""
        return _gather(coeffs, self.orbital_map, self.num_orbitals, "orbital")

    forward = build

    def _check_matrix(self, matrix_shape: tuple) -> None:
        n = self.degree
        if len(matrix_shape) < 2 or tuple(matrix_shape[-2:]) != (n, n):
            raise ValueError(f"expected matrices of shape (..., {n}, {n}), got shape {tuple(matrix_shape)}")

    def project(self, matrix: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Orbital coefficients of the closest invariant matrix in Frobenius norm (per-orbital
        means, the Reynolds projection): (*, n, n) -> (*, K). Numpy in, numpy out."""
        tensor, from_numpy = _as_float_tensor(matrix)
        self._check_matrix(tuple(tensor.shape))
        flat = tensor.reshape(*tensor.shape[:-2], self.degree * self.degree)
        return _back(_class_means(flat, self.orbital_map.ravel(), self.orbital_sizes), from_numpy)

    def symmetrize(self, matrix: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """The projection as a matrix, ``build(project(matrix))``."""
        tensor, from_numpy = _as_float_tensor(matrix)
        return _back(self.build(self.project(tensor)), from_numpy)

    def residual(self, matrix: torch.Tensor | np.ndarray) -> torch.Tensor | float | np.ndarray:
        """Relative distance to the invariant matrices, ||M - P M|| / ||M|| (0 for M = 0).

        One value per matrix: a float for a single numpy matrix, an array or tensor of the
        leading shape otherwise.
        """
        tensor, from_numpy = _as_float_tensor(matrix)
        self._check_matrix(tuple(tensor.shape))
        difference = torch.linalg.matrix_norm(tensor - self.symmetrize(tensor))
        norm = torch.linalg.matrix_norm(tensor)
        ratio = torch.where(norm > 0, difference / torch.where(norm > 0, norm, 1), 0)
        if from_numpy:
            result = ratio.detach().numpy()
            return float(result) if result.ndim == 0 else result
        return ratio

    # -- truth row (vectors) ---------------------------------------------------------

    def build_truth(self, coeffs: torch.Tensor) -> torch.Tensor:
        """The invariant vector ``coeffs[..., orbits]``: (*, num_orbits) -> (*, n)."""
        return _gather(coeffs, self.orbits, self.num_orbits, "orbit")

    def project_truth(self, vector: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Per-orbit means of a vector: (*, n) -> (*, num_orbits). Numpy in, numpy out."""
        tensor, from_numpy = _as_float_tensor(vector)
        if tensor.ndim < 1 or tensor.shape[-1] != self.degree:
            raise ValueError(f"expected vectors of shape (..., {self.degree}), got shape {tuple(tensor.shape)}")
        return _back(_class_means(tensor, self.orbits, self.orbit_sizes), from_numpy)


class Equivariant(InvariantSpace):
    """Deprecated name of :class:`InvariantSpace` (the space is of *invariant* matrices)."""

    def __init__(self, group: Group, degree: int | None = None):
        warnings.warn(
            "symsatnet.Equivariant is deprecated; use symsatnet.InvariantSpace (same arguments)",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(group, degree)
