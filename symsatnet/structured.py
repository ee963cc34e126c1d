"""Structured fast path: mixing sweeps that sum class aggregates instead of rows of C.

For a group built from ``Symmetric``, ``Trivial`` and ``Wreath`` of those, combined by
``Product`` (and any ``Extend`` of such a group, e.g. ``SudokuTransposed``), every orbital
matrix is a Kronecker product of factor *relation* matrices, and each relation is a signed
sum of *key* matrices T whose row x is the indicator of one class of a partition of the
points (or empty). So the problem block of C applied to V is

    (C V)_i = sum_{t in terms(i)} alpha_t A_{node_t},     alpha = M coeffs,

where A_c is the aggregate (sum of v_j) over class c. For 9x9 Sudoku the classes are
cells, (row, digit), (band, digit), ..., 18 per variable, instead of 729 row entries.

The derivation is recursive over the group expression:

* ``Symmetric(d)``: partitions {points, all}; relations "same point" = T_point and
  "other point" = T_all - T_point.
* ``Trivial(d)``: partition {points}; relation (x, y) = the key "row x reads class {y}".
* ``Wreath(G, H)``: inside a block, (H-orbit of the block) x (G relation); across blocks,
  (H relation) x (G-orbit of each point). Its partitions are (block, G partition) and
  (H partition, G-orbit).
* ``Product(G, H)``: products of partitions, keys and relations (Kronecker).

The relations found this way are the orbitals of the family group before closing under
transposition; the closed orbital of each comes from ``group.orbitals()`` at one pair of
it (checked against the whole partition), so the coefficient ids are the group's own.
Groups outside the family (``Cyclic``, ``FromGenerators``, ``DirectSum``, the cube group)
have no structure: :func:`structure` returns ``None`` and callers use the dense kernel.

The ops (``symsatnet::structured_forward`` / ``structured_adjoint`` /
``structured_pairings``, CPU only for now) follow the dense ops' conventions
(``symsatnet.ops``); the backward gives gradients for the per-term weights alpha (from
aggregate pairings, never from a dense matrix), the truth row, the aux rows and z.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from . import functional, ops
from .groups import Extend, Group, Product, Symmetric, Trivial, Wreath, canonical_labels

__all__ = ["Structure", "structure", "mix"]

#: Build no structure with more keys than this (``Trivial`` factors have d**2 keys);
#: such a group gains nothing over the dense kernel anyway.
MAX_KEYS = 200_000


class _TooLarge(Exception):
    pass


# --------------------------------------------------------------------------- derivation


@dataclass
class _Node:
    """The structure of one sub-expression on its own points 0..degree-1.

    levels: partitions of the points as canonical labels; levels[0] is the points.
    orbit_level: which level is the partition into point orbits.
    keys: (level, points, classes): key row x (x in points, sorted) reads the class
        classes[x] of that level; other rows are empty.
    relations: (degree, degree) relation id of every pair (ids 0..R-1).
    expansion: COO (relation, key, value): indicator(relations == r) = sum value * T_key.
    """

    degree: int
    levels: list = field(default_factory=list)
    orbit_level: int = 0
    keys: list = field(default_factory=list)
    relations: np.ndarray = None
    expansion: tuple = None


class _Builder:
    """Registers partitions and keys of a node, merging equal ones."""

    def __init__(self, degree: int):
        self.node = _Node(degree)
        self._levels: dict[bytes, int] = {}
        self._keys: dict[tuple, int] = {}
        self.add_level(np.arange(degree, dtype=np.int64))

    def add_level(self, raw: np.ndarray) -> tuple[int, np.ndarray]:
        """Level id of the partition with labels ``raw`` and the map raw label -> stored label."""
        canonical = canonical_labels(raw).astype(np.int64)
        signature = canonical.tobytes()
        if signature not in self._levels:
            self._levels[signature] = len(self.node.levels)
            self.node.levels.append(canonical)
        translate = np.full(int(raw.max()) + 1, -1, dtype=np.int64)
        translate[raw] = canonical
        return self._levels[signature], translate

    def add_key(self, level: int, points: np.ndarray, classes: np.ndarray) -> int:
        order = np.argsort(points, kind="stable")
        points, classes = points[order].astype(np.int64), classes[order].astype(np.int64)
        signature = (level, points.tobytes(), classes.tobytes())
        if signature not in self._keys:
            if len(self.node.keys) >= MAX_KEYS:
                raise _TooLarge
            self._keys[signature] = len(self.node.keys)
            self.node.keys.append((level, points, classes))
        return self._keys[signature]

    def finish(self, relations: np.ndarray, rows, keys, values, orbit_level: int) -> _Node:
        # Compact the relation ids and drop expansion rows of relations that never occur.
        used, compact = np.unique(relations, return_inverse=True)
        remap = np.full(int(used.max()) + 1 if len(used) else 1, -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        rows, keys, values = (np.asarray(a, dtype=np.int64) for a in (rows, keys, values))
        inside = rows <= used.max()
        rows, keys, values = rows[inside], keys[inside], values[inside]
        known = remap[rows] >= 0
        node = self.node
        node.relations = compact.reshape(relations.shape)
        node.expansion = (remap[rows[known]], keys[known], values[known])
        node.orbit_level = orbit_level
        return node


def _symmetric(degree: int) -> _Node:
    builder = _Builder(degree)
    points = np.arange(degree, dtype=np.int64)
    everything, _ = builder.add_level(np.zeros(degree, dtype=np.int64))
    same = builder.add_key(0, points, points)
    anywhere = builder.add_key(everything, points, np.zeros(degree, dtype=np.int64))
    relations = 1 - np.eye(degree, dtype=np.int64)
    rows, keys, values = [0], [same], [1]
    if degree > 1:
        rows += [1, 1]
        keys += [anywhere, same]
        values += [1, -1]
    return builder.finish(relations, rows, keys, values, everything)


def _trivial(degree: int) -> _Node:
    if degree * degree > MAX_KEYS:
        raise _TooLarge
    builder = _Builder(degree)
    keys = [
        builder.add_key(0, np.array([x]), np.array([y])) for x in range(degree) for y in range(degree)
    ]
    relations = np.arange(degree * degree, dtype=np.int64).reshape(degree, degree)
    ids = np.arange(degree * degree)
    return builder.finish(relations, ids, keys, np.ones(degree * degree, dtype=np.int64), 0)


def _wreath(inner: _Node, outer: _Node) -> _Node:
    a, b = inner.degree, outer.degree
    builder = _Builder(a * b)
    points = np.arange(a * b, dtype=np.int64)
    block, within_point = points // a, points % a
    inner_orbits = inner.levels[inner.orbit_level]
    outer_orbits = outer.levels[outer.orbit_level]
    num_inner_orbits, num_outer_orbits = int(inner_orbits.max()) + 1, int(outer_orbits.max()) + 1
    # Partitions: (block, inner partition) and (outer partition, inner orbit).
    within = [
        builder.add_level(block * (int(labels.max()) + 1) + labels[within_point])
        + (int(labels.max()) + 1,)
        for labels in inner.levels
    ]
    across = [builder.add_level(labels[block] * num_inner_orbits + inner_orbits[within_point]) for labels in outer.levels]

    inner_relations = int(inner.relations.max()) + 1
    outer_relations = int(outer.relations.max()) + 1
    rows, keys, values = [], [], []
    # Within a block of outer orbit o: D_o (x) (inner relation rho).
    for orbit in range(num_outer_orbits):
        blocks = np.flatnonzero(outer_orbits == orbit)
        key_ids = []
        for level, key_points, key_classes in inner.keys:
            level_id, translate, count = within[level]
            key_ids.append(
                builder.add_key(
                    level_id,
                    (blocks[:, None] * a + key_points[None, :]).ravel(),
                    translate[(blocks[:, None] * count + key_classes[None, :]).ravel()],
                )
            )
        relation, key, value = inner.expansion
        rows.append(orbit * inner_relations + relation)
        keys.append(np.array(key_ids, dtype=np.int64)[key])
        values.append(value)
    # Across blocks: (outer relation sigma, off the diagonal) (x) 1_p 1_q^T for inner orbits p, q.
    offset = num_outer_orbits * inner_relations
    diagonal = set(np.unique(np.diagonal(outer.relations)).tolist())
    relation, key, value = outer.expansion
    off_diagonal = np.array([r not in diagonal for r in relation.tolist()], dtype=bool)
    for p in range(num_inner_orbits):
        inner_points = np.flatnonzero(inner_orbits == p)
        for q in range(num_inner_orbits):
            key_ids = []
            for level, key_points, key_classes in outer.keys:
                level_id, translate = across[level]
                key_ids.append(
                    builder.add_key(
                        level_id,
                        (key_points[:, None] * a + inner_points[None, :]).ravel(),
                        translate[np.repeat(key_classes * num_inner_orbits + q, len(inner_points))],
                    )
                )
            rows.append(offset + (relation[off_diagonal] * num_inner_orbits + p) * num_inner_orbits + q)
            keys.append(np.array(key_ids, dtype=np.int64)[key[off_diagonal]])
            values.append(value[off_diagonal])
    same_block = block[:, None] == block[None, :]
    inside = outer_orbits[block][:, None] * inner_relations + inner.relations[np.ix_(within_point, within_point)]
    between = (
        offset
        + (outer.relations[np.ix_(block, block)] * num_inner_orbits + inner_orbits[within_point][:, None])
        * num_inner_orbits
        + inner_orbits[within_point][None, :]
    )
    relations = np.where(same_block, inside, between)
    del outer_relations
    return builder.finish(
        relations, np.concatenate(rows), np.concatenate(keys), np.concatenate(values), across[outer.orbit_level][0]
    )


def _product(first: _Node, second: _Node) -> _Node:
    da, db = first.degree, second.degree
    builder = _Builder(da * db)
    points = np.arange(da * db, dtype=np.int64)
    major, minor = points // db, points % db
    levels = {}
    for la, labels_a in enumerate(first.levels):
        for lb, labels_b in enumerate(second.levels):
            count = int(labels_b.max()) + 1
            levels[la, lb] = builder.add_level(labels_a[major] * count + labels_b[minor]) + (count,)
    key_ids = np.empty((len(first.keys), len(second.keys)), dtype=np.int64)
    for ka, (la, points_a, classes_a) in enumerate(first.keys):
        for kb, (lb, points_b, classes_b) in enumerate(second.keys):
            level_id, translate, count = levels[la, lb]
            key_ids[ka, kb] = builder.add_key(
                level_id,
                (points_a[:, None] * db + points_b[None, :]).ravel(),
                translate[(classes_a[:, None] * count + classes_b[None, :]).ravel()],
            )
    relations_b = int(second.relations.max()) + 1
    relations = first.relations[np.ix_(major, major)] * relations_b + second.relations[np.ix_(minor, minor)]
    ra, ka, va = first.expansion
    rb, kb, vb = second.expansion
    rows = (ra[:, None] * relations_b + rb[None, :]).ravel()
    keys = key_ids[ka[:, None], kb[None, :]].ravel()
    values = (va[:, None] * vb[None, :]).ravel()
    orbit = levels[first.orbit_level, second.orbit_level][0]
    return builder.finish(relations, rows, keys, values, orbit)


def _node(group: Group) -> Optional[_Node]:
    """The structure of a family group, or None outside the family."""
    if isinstance(group, Extend):
        # A bigger group has coarser orbitals: each is a union of the base's relations.
        return _node(group.base)
    if type(group) is Symmetric:
        return _symmetric(group.degree)
    if type(group) is Trivial:
        return _trivial(group.degree)
    if type(group) is Wreath:
        inner, outer = _node(group.inner), _node(group.outer)
        return None if inner is None or outer is None else _wreath(inner, outer)
    if type(group) is Product:
        nodes = [_node(factor) for factor in group.factors]
        if any(node is None for node in nodes):
            return None
        result = nodes[0]
        for node in nodes[1:]:
            result = _product(result, node)
        return result
    return None


# --------------------------------------------------------------------------- the tables


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


def _tables(group: Group, node: _Node) -> Structure:
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


def structure(group: Group) -> Optional[Structure]:
    """The aggregate tables of ``group``, or None if it is outside the supported family
    (Product of Symmetric / Trivial / nested Wreath factors, and Extend of such a group).
    Cached per group."""
    if not isinstance(group, Group):
        raise ValueError(f"group must be a symsatnet.groups.Group, got {type(group).__name__}")
    if group not in _CACHE:
        try:
            node = _node(group)
        except _TooLarge:
            node = None
        _CACHE[group] = None if node is None else _tables(group, node)
    return _CACHE[group]


# --------------------------------------------------------------------------- functional


def mix(
    tables: Structure,
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
    """:func:`symsatnet.functional.mix` for C whose problem block is tied by a structured group.

    C is never formed: the problem block is given by ``tables`` (from :func:`structure`)
    and the closed-orbital coefficients. Same random draws, update order, stopping rules
    and outputs as ``functional.mix`` on the dense C.

    Args:
        tables: the group's :class:`Structure`.
        coeffs: (K,) orbital coefficients (ids of ``group.orbitals()``). Differentiable.
        truth: (n,) the truth row C[0, 1:n+1]. Differentiable.
        aux_rows: (aux, N) rows n+1.. of C, N = 1 + n + aux; the aux x aux block must be
            symmetric. Differentiable.
        z, is_input, k, max_iter, eps, prox_lam, generator, order, return_info: as in
            :func:`symsatnet.functional.mix`.

    Returns:
        (B, n) outputs, or a ``functional.MixInfo``.
    """
    functional._check_weights(aux_rows, "aux_rows")
    n = tables.n
    size = 1 + n + aux_rows.shape[0]
    if aux_rows.shape[1] != size:
        raise ValueError(f"aux_rows must have shape (aux, {size}) for n = {n}, got {tuple(aux_rows.shape)}")
    if truth.shape != (n,):
        raise ValueError(f"truth must have shape ({n},), got {tuple(truth.shape)}")
    if z.dim() != 2 or z.shape[1] != n:
        raise ValueError(f"z must have shape (batch, {n}), got {tuple(z.shape)}")
    stand_in = aux_rows.new_empty(size, 0)  # carries N, dtype and device for the shared preparation
    z_full, mask, V_init, order, n = functional._prepare(stand_in, z, is_input, k, max_iter, order, generator, "C")
    t = tables.tensors(coeffs.device)
    result = ops.structured_forward(
        tables.weights(coeffs), truth, aux_rows, t["members"], t["term_offsets"], t["term_nodes"],
        t["term_weights"], t["refresh"], z_full, mask, V_init, order, max_iter, float(eps), float(prox_lam),
    )
    return functional._finish(result, mask, n, return_info)
