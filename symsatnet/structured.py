"""Structured fast path: mixing sweeps that sum class aggregates instead of rows of C.

For a group built from ``Symmetric``, ``Trivial`` and ``Wreath`` of those, combined by
``Product`` (and any ``Extend`` of such a group, e.g. ``SudokuTransposed``), every orbital
matrix is a Kronecker product of factor *relation* matrices, and each relation is a signed
sum of *key* matrices T whose row x is the indicator of one class of a partition of the
points (or empty). So the problem block of C applied to V is

    (C V)_i = sum_{t in terms(i)} alpha_t A_{node_t},     alpha = M coeffs,

where A_c is the aggregate (sum of v_j) over class c. For 9x9 Sudoku the classes are
cells, (row, digit), (band, digit), ..., 18 per variable, instead of 729 row entries.

How the structure is derived from the group expression is in :mod:`symsatnet.derivation`;
this module turns it into the int32 tables of csrc/structured.h (:func:`structure`,
cached per group). The ops (``symsatnet::structured_forward`` / ``structured_adjoint`` /
``structured_pairings``, CPU only for now) and their backward are in :mod:`symsatnet.ops`;
:func:`mix` (= :func:`symsatnet.functional.structured_mix`) solves with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from .derivation import Node, TooLarge, derive
from .functional import structured_mix as mix
from .groups import Group

__all__ = ["Structure", "structure", "mix", "worth_running", "check_kernel"]


@dataclass(frozen=True, eq=False)
class Structure:
    """Aggregate tables of a group on n points (see csrc/structured.h for the layout).

    Attributes:
        n: number of problem variables.
        num_orbitals: K, the number of closed orbitals (coefficients).
        num_weights: W, the number of per-term weights alpha.
        members: (n, L) class node of every variable at every stored level.
        term_offsets, term_nodes, term_weights: the terms of each variable (CSR).
        refresh: (R, 2) (class node, source node): how to rebuild the aggregates.
        alpha_rows, alpha_cols, alpha_values: alpha = M coeffs with M in COO form.
        self_variables, self_weights: the terms a variable has on itself at the point
            level; the kernels leave them out (the diagonal never enters), the dense
            reconstruction adds them back.
        level_sizes: number of classes of every stored level.
    """

    n: int
    num_orbitals: int
    num_weights: int
    members: np.ndarray
    term_offsets: np.ndarray
    term_nodes: np.ndarray
    term_weights: np.ndarray
    refresh: np.ndarray
    alpha_rows: np.ndarray
    alpha_cols: np.ndarray
    alpha_values: np.ndarray
    self_variables: np.ndarray
    self_weights: np.ndarray
    level_sizes: tuple
    _tensors: dict = field(default_factory=dict, repr=False)

    @property
    def terms_per_variable(self) -> float:
        """Mean number of aggregates summed per update."""
        return len(self.term_nodes) / self.n

    @property
    def update_cost(self) -> float:
        """Vector operations per update (terms read + aggregates written), against N for
        the dense kernel."""
        return self.terms_per_variable + self.members.shape[1]

    def tensors(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The int32 tables on ``device`` (cached)."""
        device = torch.device(device)
        if device not in self._tensors:
            names = ("members", "term_offsets", "term_nodes", "term_weights", "refresh")
            self._tensors[device] = {
                name: torch.from_numpy(np.ascontiguousarray(getattr(self, name), dtype=np.int32)).to(device)
                for name in names
            }
            self._tensors[device].update(
                alpha_rows=torch.from_numpy(self.alpha_rows).to(device),
                alpha_cols=torch.from_numpy(self.alpha_cols).to(device),
                alpha_values=torch.from_numpy(self.alpha_values.astype(np.float64)).to(device),
            )
        return self._tensors[device]

    def weights(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Per-term weights alpha = M coeffs, (K,) -> (W,); differentiable."""
        if coeffs.shape != (self.num_orbitals,):
            raise ValueError(f"expected {self.num_orbitals} orbital coefficients, got shape {tuple(coeffs.shape)}")
        tables = self.tensors(coeffs.device)
        scaled = coeffs[tables["alpha_cols"]] * tables["alpha_values"].to(coeffs.dtype)
        return coeffs.new_zeros(self.num_weights).index_add(0, tables["alpha_rows"], scaled)

    def dense_block(self, coeffs: torch.Tensor) -> torch.Tensor:
        """The (n, n) problem block the tables describe (for tests; the fast path never
        forms it)."""
        alpha = self.weights(coeffs)
        n = self.n
        classes = int(self.members.max()) + 1 - n if self.members.size else 0
        node_points = torch.zeros(n + classes, n, dtype=coeffs.dtype, device=coeffs.device)
        node_points[:n] = torch.eye(n, dtype=coeffs.dtype, device=coeffs.device)
        if classes:
            rows = torch.from_numpy(self.members.ravel()).to(coeffs.device)
            cols = torch.arange(n, device=coeffs.device).repeat_interleave(self.members.shape[1])
            node_points[rows, cols] = 1
        counts = np.diff(self.term_offsets)
        variables = torch.from_numpy(np.repeat(np.arange(n), counts)).to(coeffs.device)
        reads = torch.zeros(n, n + classes, dtype=coeffs.dtype, device=coeffs.device)
        reads.index_put_(
            (variables, torch.from_numpy(self.term_nodes).to(coeffs.device)),
            alpha[torch.from_numpy(self.term_weights).to(coeffs.device)],
            accumulate=True,
        )
        block = reads @ node_points
        own = torch.from_numpy(self.self_variables).to(coeffs.device)
        return block.index_put((own, own), alpha[torch.from_numpy(self.self_weights).to(coeffs.device)], accumulate=True)


def _refines(fine: np.ndarray, coarse: np.ndarray) -> bool:
    pairs = np.unique(fine * (int(coarse.max()) + 1) + coarse)
    return len(pairs) == int(fine.max()) + 1


def _tables(group: Group, node: Node) -> Structure:
    n = group.degree
    closed = np.asarray(group.orbitals(), dtype=np.int64)
    num_orbitals = int(closed.max()) + 1
    relations = node.relations
    # Every relation must lie inside one closed orbital; its id is read at any of its pairs.
    pairs = np.unique(relations.ravel() * num_orbitals + closed.ravel())
    num_relations = int(relations.max()) + 1
    if len(pairs) != num_relations:
        raise RuntimeError(f"symsatnet: the derived relations of {group!r} do not refine its orbitals")
    closed_of = np.empty(num_relations, dtype=np.int64)
    closed_of[pairs // num_orbitals] = pairs % num_orbitals

    relation, key, value = node.expansion
    combined, summed = np.unique(key * num_orbitals + closed_of[relation], return_inverse=True)
    totals = np.bincount(summed.ravel(), weights=value, minlength=len(combined)).round().astype(np.int64)
    nonzero = totals != 0
    combined, totals = combined[nonzero], totals[nonzero]
    used_keys, alpha_rows = np.unique(combined // num_orbitals, return_inverse=True)
    alpha_cols = combined % num_orbitals

    key_levels = [node.keys[k][0] for k in used_keys]
    stored = sorted({level for level in key_levels if level != 0}, key=lambda level: -(int(node.levels[level].max()) + 1))
    sizes = [int(node.levels[level].max()) + 1 for level in stored]
    offsets = dict(zip(stored, n + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)))
    members = np.stack([offsets[level] + node.levels[level] for level in stored], axis=1) if stored else np.zeros((n, 0), np.int64)

    variables, nodes, weights, self_variables, self_weights = [], [], [], [], []
    for weight, k in enumerate(used_keys):
        level, points, classes = node.keys[k]
        targets = classes if level == 0 else offsets[level] + classes
        own = (targets == points) if level == 0 else np.zeros(len(points), dtype=bool)
        variables.append(points[~own])
        nodes.append(targets[~own])
        weights.append(np.full((~own).sum(), weight, dtype=np.int64))
        self_variables.append(points[own])
        self_weights.append(np.full(own.sum(), weight, dtype=np.int64))
    variables, nodes, weights = (np.concatenate(a) for a in (variables, nodes, weights))
    order = np.argsort(variables, kind="stable")
    term_offsets = np.concatenate([[0], np.cumsum(np.bincount(variables, minlength=n))])

    refresh = []
    for index, level in enumerate(stored):
        labels = node.levels[level]
        sources = [previous for previous in stored[:index] if _refines(node.levels[previous], labels)]
        if sources:
            source = min(sources, key=lambda previous: int(node.levels[previous].max()))
            fine = node.levels[source]
            first = np.unique(fine, return_index=True)[1]
            refresh.append(np.stack([offsets[level] + labels[first], offsets[source] + fine[first]], axis=1))
        else:
            refresh.append(np.stack([offsets[level] + labels, np.arange(n)], axis=1))
    refresh = np.concatenate(refresh) if refresh else np.zeros((0, 2), dtype=np.int64)

    return Structure(
        n=n,
        num_orbitals=num_orbitals,
        num_weights=len(used_keys),
        members=members,
        term_offsets=term_offsets,
        term_nodes=nodes[order],
        term_weights=weights[order],
        refresh=refresh,
        alpha_rows=alpha_rows.astype(np.int64),
        alpha_cols=alpha_cols,
        alpha_values=totals,
        self_variables=np.concatenate(self_variables),
        self_weights=np.concatenate(self_weights),
        level_sizes=tuple(sizes),
    )


_CACHE: dict = {}


def worth_running(tables: Optional[Structure], device: torch.device, size: int) -> bool:
    """Whether ``kernel='auto'`` should pick the structured kernel for C of side ``size``.

    The structured ops have CPU kernels only; a structure that reads about as many vectors
    per update as a dense row (Trivial-heavy groups) gains nothing.
    """
    return tables is not None and device.type == "cpu" and 2 * tables.update_cost <= size


def check_kernel(kernel: str, tables: Optional[Structure], needs: str) -> str:
    """``kernel``, or a ValueError when it is ``'structured'`` and there are no tables
    (``needs`` says what the layer needs for them)."""
    if kernel == "structured" and tables is None:
        raise ValueError(f"kernel='structured' needs {needs}: use kernel='auto' or 'dense'")
    return kernel


def structure(group: Group) -> Optional[Structure]:
    """The aggregate tables of ``group``, or None if it is outside the supported family
    (Product of Symmetric / Trivial / nested Wreath factors, and Extend of such a group).
    Cached per group."""
    if not isinstance(group, Group):
        raise ValueError(f"group must be a symsatnet.groups.Group, got {type(group).__name__}")
    if group not in _CACHE:
        try:
            node = derive(group)
        except TooLarge:
            node = None
        _CACHE[group] = None if node is None else _tables(group, node)
    return _CACHE[group]
