"""The structure of a group expression, derived recursively: partitions of the points,
*keys* (rows of a key matrix read one class of a partition) and *relations* (the orbitals
of the family group before closing under transposition), each relation a signed sum of
keys. :mod:`symsatnet.structured` turns the result into the tables the kernels read
(docs/design.md, "Structured kernel").

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
have no structure: :func:`derive` (and :func:`symsatnet.structured.structure`) returns
``None`` and callers use the dense kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .groups import Extend, Group, Product, Symmetric, Trivial, Wreath, canonical_labels

__all__ = ["MAX_KEYS", "Node", "TooLarge", "derive"]

#: Build no structure with more keys than this (``Trivial`` factors have d**2 keys);
#: such a group gains nothing over the dense kernel anyway.
MAX_KEYS = 200_000


class TooLarge(Exception):
    """The structure would need more than MAX_KEYS keys."""


@dataclass
class Node:
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
        self.node = Node(degree)
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
                raise TooLarge
            self._keys[signature] = len(self.node.keys)
            self.node.keys.append((level, points, classes))
        return self._keys[signature]

    def finish(self, relations: np.ndarray, rows, keys, values, orbit_level: int) -> Node:
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


def _symmetric(degree: int) -> Node:
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


def _trivial(degree: int) -> Node:
    if degree * degree > MAX_KEYS:
        raise TooLarge
    builder = _Builder(degree)
    keys = [
        builder.add_key(0, np.array([x]), np.array([y])) for x in range(degree) for y in range(degree)
    ]
    relations = np.arange(degree * degree, dtype=np.int64).reshape(degree, degree)
    ids = np.arange(degree * degree)
    return builder.finish(relations, ids, keys, np.ones(degree * degree, dtype=np.int64), 0)


def _wreath(inner: Node, outer: Node) -> Node:
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


def _product(first: Node, second: Node) -> Node:
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


def derive(group: Group) -> Optional[Node]:
    """The structure of a family group, or None outside the family (raises TooLarge past
    MAX_KEYS keys)."""
    if isinstance(group, Extend):
        # A bigger group has coarser orbitals: each is a union of the base's relations.
        return derive(group.base)
    if type(group) is Symmetric:
        return _symmetric(group.degree)
    if type(group) is Trivial:
        return _trivial(group.degree)
    if type(group) is Wreath:
        inner, outer = derive(group.inner), derive(group.outer)
        return None if inner is None or outer is None else _wreath(inner, outer)
    if type(group) is Product:
        nodes = [derive(factor) for factor in group.factors]
        if any(node is None for node in nodes):
            return None
        result = nodes[0]
        for node in nodes[1:]:
            result = _product(result, node)
        return result
    return None
