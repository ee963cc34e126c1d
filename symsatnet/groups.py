"""The group language: permutation groups on variable indices, written as expressions.

A group is a small immutable, hashable value: a degree n (the points are 0..n-1) and an
expression that says how it is built. Every group gives its generators, its point orbits,
its closed orbitals (the orbits on pairs (i, j), glued under (i, j) ~ (j, i)) and its
order, and prints itself back as the expression that built it::

    >>> G = Product(Wreath(Symmetric(3), Symmetric(3)), Symmetric(9))
    >>> G.num_orbitals
    6
    >>> eval(repr(G), vars(symsatnet.groups)) == G
    True

Permutations are int64 arrays ``p`` with ``p[i]`` = the image of point ``i``.

Index conventions (part of the API, DESIGN.md §4):

* ``DirectSum(G, H)`` -- G acts on points 0..deg G - 1, H on the rest; point a of H is
  point deg G + a.
* ``Product(G, H)`` -- acts on pairs (a, b) by (g a, h b); pair (a, b) is point
  a * deg H + b, so G is the major index.
* ``Wreath(G, H)`` -- G wr H: H permutes deg H blocks of deg G points each and an
  independent copy of G acts inside every block; point (block, inner) is
  block * deg G + inner.

``DirectSum`` and ``Product`` take any number of groups (at least one) and fold them from
the left: ``Product(A, B, C)`` has the indices of ``Product(Product(A, B), C)``, which for
products is the row-major (a, b, c) order and for sums the concatenation in order.

Orbital maps are computed from the structure of the expression where that is cheaper
(orbitals of a product are products of the factors' orbits on pairs, closed under
transposition only at the end), otherwise by union-find over pairs applying each generator.
Results are cached per group and returned as read-only arrays.

Equality is structural: two expressions are equal when they were built the same way.
``equivalent`` compares the generated permutation groups instead.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "Group",
    "Trivial",
    "Symmetric",
    "Cyclic",
    "FromGenerators",
    "Extend",
    "DirectSum",
    "Product",
    "Wreath",
    "SudokuTransposed",
    "sudoku_group",
    "cube_group",
    "sudoku_transpose_permutation",
    "parse_group",
    "canonical_labels",
]

Permutation = np.ndarray


# --------------------------------------------------------------------------- helpers


def _frozen(array: np.ndarray) -> np.ndarray:
    """Mark a cached array read-only so callers cannot corrupt the cache."""
    array.flags.writeable = False
    return array


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 0..K-1 in order of first occurrence (row-major), keeping the shape.

    Two labellings describe the same partition exactly when their canonical labels are
    equal; orbits, orbitals and the partitions of :mod:`symsatnet.structured` are kept in
    this form."""
    flat = np.asarray(labels).ravel()
    _, first_index, inverse = np.unique(flat, return_index=True, return_inverse=True)
    rank = np.empty(len(first_index), dtype=np.int64)
    rank[np.argsort(first_index, kind="stable")] = np.arange(len(first_index), dtype=np.int64)
    return rank[inverse.ravel()].reshape(np.shape(labels))


def _connected_components(num_nodes: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Component labels (smallest node of each component) of an undirected graph.

    Vectorised union-find: every round hooks each root onto the smallest root it shares an
    edge with, then compresses paths fully. Edges whose ends already share a root are dropped,
    so the work shrinks quickly; a handful of rounds suffice for permutation graphs.
    """
    parent = np.arange(num_nodes, dtype=np.int64)
    sources = np.asarray(sources, dtype=np.int64).ravel()
    targets = np.asarray(targets, dtype=np.int64).ravel()
    while True:
        root_source, root_target = parent[sources], parent[targets]
        differ = root_source != root_target
        if not differ.any():
            return parent
        sources, targets = sources[differ], targets[differ]
        root_source, root_target = root_source[differ], root_target[differ]
        high = np.maximum(root_source, root_target)
        low = np.minimum(root_source, root_target)
        # Roots only ever point to smaller roots, so no cycles can form.
        np.minimum.at(parent, high, low)
        while True:
            grandparent = parent[parent]
            if np.array_equal(grandparent, parent):
                break
            parent = grandparent


def _validate_degree(degree: object, what: str = "degree") -> int:
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {degree!r}")
    if degree < 1:
        raise ValueError(f"{what} must be at least 1, got {degree}")
    return int(degree)


def _validate_permutation(perm: object, degree: int, name: str) -> np.ndarray:
    """Check that ``perm`` is a permutation of 0..degree-1; ``name`` says which one it is."""
    try:
        array = np.asarray(perm)
    except Exception as error:  # ragged nested lists and the like
        raise ValueError(f"{name} is not an array of integers: {error}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if len(array) != degree:
        raise ValueError(f"{name} has length {len(array)}, expected the degree {degree}")
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer)
        or (np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0))
    ):
        raise ValueError(f"{name} must contain integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if degree and (array.min() < 0 or array.max() >= degree):
        bad = array[(array < 0) | (array >= degree)][0]
        raise ValueError(f"{name} maps a point to {bad}, outside 0..{degree - 1}")
    counts = np.bincount(array, minlength=degree)
    if (counts != 1).any():
        repeated = int(np.flatnonzero(counts > 1)[0])
        raise ValueError(f"{name} is not a permutation: {repeated} appears {counts[repeated]} times")
    return array


def _pair_permutation(perm: np.ndarray) -> np.ndarray:
    """The permutation that ``perm`` induces on flattened pairs i*n + j."""
    degree = len(perm)
    return (perm[:, None] * degree + perm[None, :]).ravel()


def _orbit_labels(size: int, permutations: Sequence[np.ndarray]) -> np.ndarray:
    """Orbits of the group generated by ``permutations`` of 0..size-1, labelled by their
    smallest point.

    Minimum-label propagation along every permutation in both directions, with pointer
    jumping: a label is always a point of the same orbit that is no larger, so jumping to the
    label's label stays inside the orbit and collapses long cycles in logarithmically many
    steps. A fixed point is constant on each orbit and equal to its smallest point.
    """
    labels = np.arange(size, dtype=np.int64)
    while True:
        previous = labels
        for perm in permutations:
            labels = np.minimum(labels, labels[perm])  # pull from the image
            labels[perm] = np.minimum(labels[perm], labels)  # push to the image
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, previous):
            return labels


def _pair_orbits_by_union_find(degree: int, generators: Sequence[np.ndarray]) -> np.ndarray:
    """Unclosed orbitals from generators: O(n^2 * #generators), the generic fallback."""
    labels = _orbit_labels(degree * degree, [_pair_permutation(p) for p in generators])
    return canonical_labels(labels.reshape(degree, degree))


def _orbits_by_union_find(degree: int, generators: Sequence[np.ndarray]) -> np.ndarray:
    return canonical_labels(_orbit_labels(degree, list(generators)))


def _glue_labels(labels: np.ndarray, other_labels: np.ndarray) -> np.ndarray:
    """Merge classes of ``labels`` that sit at the same position as a class in ``other_labels``."""
    num_classes = int(labels.max()) + 1
    joined = _connected_components(num_classes, labels.ravel(), other_labels.ravel())
    return canonical_labels(joined[labels])


def _combine_labels(*label_arrays: np.ndarray) -> np.ndarray:
    """One label per distinct tuple of labels (mixed radix), canonicalised."""
    combined = np.zeros(np.shape(label_arrays[0]), dtype=np.int64)
    for labels in label_arrays:
        combined = combined * (int(labels.max()) + 1) + labels
    return canonical_labels(combined)


# --------------------------------------------------------------------------- base class


class Group:
    """A permutation group on the points 0..degree-1, given as an expression.

    Subclasses provide ``_arguments`` (the constructor arguments, used for equality,
    hashing and ``repr``) and ``_generators``; they may override ``_pair_orbits`` and
    ``_orbits`` with something faster than union-find, and ``order``.
    """

    __slots__ = ("_degree", "__weakref__")

    def __init__(self, degree: int):
        object.__setattr__(self, "_degree", _validate_degree(degree))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # -- identity -----------------------------------------------------------------

    @property
    def degree(self) -> int:
        """Number of points the group acts on."""
        return self._degree

    def _arguments(self) -> tuple:
        raise NotImplementedError

    def _key(self) -> tuple:
        return (type(self).__name__, self._arguments())

    @property
    def children(self) -> tuple["Group", ...]:
        """The groups this expression is built from (empty for a leaf such as Symmetric(d))."""
        return tuple(argument for argument in self._arguments() if isinstance(argument, Group))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Group):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(argument) for argument in self._arguments())})"

    # -- structure ----------------------------------------------------------------

    def _generators(self) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def generators(self) -> tuple[np.ndarray, ...]:
        """Generating permutations (read-only int64 arrays, ``p[i]`` = image of i); may be empty."""
        return _cached(self, "generators", lambda: tuple(_frozen(p) for p in self._generators()))

    def _orbits(self) -> np.ndarray:
        return _orbits_by_union_find(self.degree, self.generators())

    def orbits(self) -> np.ndarray:
        """Point-orbit id of every point, shape (degree,), numbered by first occurrence."""
        return _cached(self, "orbits", lambda: _frozen(canonical_labels(self._orbits())))

    @property
    def num_orbits(self) -> int:
        """Number of point orbits."""
        return int(self.orbits().max()) + 1

    def _pair_orbits(self) -> np.ndarray:
        return _pair_orbits_by_union_find(self.degree, self.generators())

    def pair_orbits(self) -> np.ndarray:
        """Unclosed orbitals: orbit id of every pair (i, j), shape (n, n), canonical numbering."""
        return _cached(self, "pair_orbits", lambda: _frozen(canonical_labels(self._pair_orbits())))

    def orbitals(self) -> np.ndarray:
        """Closed orbital map: int64 (n, n), ids 0..K-1 of the orbits on pairs glued under
        (i, j) ~ (j, i), numbered by first occurrence in row-major order. Equal partitions give
        identical arrays."""

        def compute() -> np.ndarray:
            pairs = self.pair_orbits()
            return _frozen(_glue_labels(pairs, pairs.T))

        return _cached(self, "orbitals", compute)

    @property
    def num_orbitals(self) -> int:
        """K, the number of closed orbitals (free parameters of an invariant symmetric matrix)."""
        return int(self.orbitals().max()) + 1

    # -- group theory through sympy ----------------------------------------------

    def to_sympy(self):
        """The group as a ``sympy.combinatorics.PermutationGroup`` (cached)."""
        from sympy.combinatorics import Permutation as SympyPermutation
        from sympy.combinatorics import PermutationGroup

        def compute():
            generators = [SympyPermutation(p.tolist()) for p in self.generators()]
            if not generators:
                generators = [SympyPermutation(list(range(self.degree)))]
            return PermutationGroup(generators)

        return _cached(self, "sympy", compute)

    def order(self) -> int:
        """Exact number of elements (sympy's Schreier-Sims where the structure does not say)."""
        return _cached(self, "order", lambda: int(self.to_sympy().order()))

    def contains(self, perm: Sequence[int] | np.ndarray) -> bool:
        """Whether ``perm`` (``perm[i]`` = image of i) is an element of the group."""
        from sympy.combinatorics import Permutation as SympyPermutation

        array = _validate_permutation(perm, self.degree, "permutation")
        return bool(self.to_sympy().contains(SympyPermutation(array.tolist())))

    def equivalent(self, other: Group) -> bool:
        """Whether both expressions generate the same permutation group (not just equal text)."""
        if self.degree != other.degree:
            return False
        return all(other.contains(p) for p in self.generators()) and all(
            self.contains(p) for p in other.generators()
        )


_CACHE: dict[tuple[Group, str], object] = {}


def _cached(group: Group, what: str, compute):
    """Per-group memo; groups are hashable values, so equal expressions share results."""
    key = (group, what)
    try:
        return _CACHE[key]
    except KeyError:
        value = compute()
        _CACHE[key] = value
        return value


def _check_group(group: object, what: str) -> Group:
    if not isinstance(group, Group):
        raise ValueError(f"{what} must be a Group, got {type(group).__name__}")
    return group


# --------------------------------------------------------------------------- leaves


class Trivial(Group):
    """The group containing only the identity; every pair is its own orbit.

    Closed orbitals: n(n+1)/2 (the upper triangle with the diagonal).
    """

    __slots__ = ()

    def _arguments(self) -> tuple:
        return (self.degree,)

    def _generators(self) -> tuple[np.ndarray, ...]:
        return ()

    def _orbits(self) -> np.ndarray:
        return np.arange(self.degree, dtype=np.int64)

    def _pair_orbits(self) -> np.ndarray:
        return np.arange(self.degree**2, dtype=np.int64).reshape(self.degree, self.degree)

    def order(self) -> int:
        return 1


class Symmetric(Group):
    """All permutations of n points, generated by the transposition (0 1) and the n-cycle.

    Closed orbitals: 2 for n >= 2 (diagonal, off-diagonal), 1 for n = 1.
    """

    __slots__ = ()

    def _arguments(self) -> tuple:
        return (self.degree,)

    def _generators(self) -> tuple[np.ndarray, ...]:
        n = self.degree
        if n == 1:
            return ()
        transposition = np.arange(n, dtype=np.int64)
        transposition[[0, 1]] = [1, 0]
        if n == 2:
            return (transposition,)
        return (transposition, np.roll(np.arange(n, dtype=np.int64), -1))

    def _orbits(self) -> np.ndarray:
        return np.zeros(self.degree, dtype=np.int64)

    def _pair_orbits(self) -> np.ndarray:
        return 1 - np.eye(self.degree, dtype=np.int64)

    def order(self) -> int:
        return math.factorial(self.degree)


class Cyclic(Group):
    """Rotations i -> i + 1 (mod n). Closed orbitals: floor(n/2) + 1 (distance around the cycle)."""

    __slots__ = ()

    def _arguments(self) -> tuple:
        return (self.degree,)

    def _generators(self) -> tuple[np.ndarray, ...]:
        if self.degree == 1:
            return ()
        return ((np.arange(self.degree, dtype=np.int64) + 1) % self.degree,)

    def _orbits(self) -> np.ndarray:
        return np.zeros(self.degree, dtype=np.int64)

    def _pair_orbits(self) -> np.ndarray:
        points = np.arange(self.degree, dtype=np.int64)
        return (points[None, :] - points[:, None]) % self.degree

    def order(self) -> int:
        return self.degree


class FromGenerators(Group):
    """The group generated by the given permutations of 0..n-1 (``p[i]`` = image of i).

    Args:
        degree: number of points n.
        generators: permutations, each a sequence of n distinct integers in 0..n-1. An empty
            list gives the trivial group.
    """

    __slots__ = ("_generator_tuples",)

    def __init__(self, degree: int, generators: Iterable[Sequence[int]]):
        super().__init__(degree)
        if isinstance(generators, np.ndarray) and generators.ndim == 1:
            raise ValueError("generators must be a list of permutations, got a single array")
        checked = tuple(
            tuple(_validate_permutation(p, self.degree, f"generator {index}").tolist())
            for index, p in enumerate(generators)
        )
        object.__setattr__(self, "_generator_tuples", checked)

    def _arguments(self) -> tuple:
        return (self.degree, [list(p) for p in self._generator_tuples])

    def _key(self) -> tuple:
        return (type(self).__name__, self.degree, self._generator_tuples)

    def _generators(self) -> tuple[np.ndarray, ...]:
        return tuple(np.array(p, dtype=np.int64) for p in self._generator_tuples)


# --------------------------------------------------------------------------- combinators


class Extend(Group):
    """The group generated by ``group`` together with extra permutations of the same points.

    Orbits of the bigger group are the orbits of ``group`` glued together by the extra
    generators, so the structured orbitals of ``group`` are reused.
    """

    __slots__ = ("_base", "_extra_tuples")

    def __init__(self, group: Group, generators: Iterable[Sequence[int]]):
        group = _check_group(group, "Extend's group")
        super().__init__(group.degree)
        checked = tuple(
            tuple(_validate_permutation(p, group.degree, f"extra generator {index}").tolist())
            for index, p in enumerate(generators)
        )
        object.__setattr__(self, "_base", group)
        object.__setattr__(self, "_extra_tuples", checked)

    def _arguments(self) -> tuple:
        return (self._base, [list(p) for p in self._extra_tuples])

    @property
    def base(self) -> Group:
        """The group that was extended (whose orbitals refine this group's)."""
        return self._base

    def _key(self) -> tuple:
        return (type(self).__name__, self._base, self._extra_tuples)

    def _extra(self) -> tuple[np.ndarray, ...]:
        return tuple(np.array(p, dtype=np.int64) for p in self._extra_tuples)

    def _generators(self) -> tuple[np.ndarray, ...]:
        return tuple(self._base.generators()) + self._extra()

    def _orbits(self) -> np.ndarray:
        labels = self._base.orbits()
        for perm in self._extra():
            moved = np.empty_like(labels)
            moved[perm] = labels
            labels = _glue_labels(labels, moved)
        return labels

    def _pair_orbits(self) -> np.ndarray:
        labels = self._base.pair_orbits()
        for perm in self._extra():
            moved = np.empty_like(labels)
            moved[np.ix_(perm, perm)] = labels  # the pair (i, j) lands on (p i, p j)
            labels = _glue_labels(labels, moved)
        return labels


def _check_groups(groups: tuple, name: str) -> tuple:
    if not groups:
        raise ValueError(f"{name} needs at least one group")
    for index, group in enumerate(groups):
        _check_group(group, f"{name}'s argument {index}")
    return groups


class DirectSum(Group):
    """G acting on the first deg G points, H on the rest (point a of H is deg G + a).

    ``DirectSum(A, B, C)`` folds from the left and is the concatenation A, B, C. With a
    single argument it is that group on the same points.
    """

    __slots__ = ("_parts",)

    def __init__(self, *groups: Group):
        groups = _check_groups(groups, "DirectSum")
        super().__init__(sum(group.degree for group in groups))
        object.__setattr__(self, "_parts", tuple(groups))

    def _arguments(self) -> tuple:
        return self._parts

    @property
    def parts(self) -> tuple[Group, ...]:
        """The summands, in the order of their points."""
        return self._parts

    def _offsets(self) -> list[int]:
        return list(np.cumsum([0] + [part.degree for part in self._parts[:-1]]))

    def _generators(self) -> tuple[np.ndarray, ...]:
        identity = np.arange(self.degree, dtype=np.int64)
        generators = []
        for offset, part in zip(self._offsets(), self._parts):
            for perm in part.generators():
                full = identity.copy()
                full[offset : offset + part.degree] = perm + offset
                generators.append(full)
        return tuple(generators)

    def _orbits(self) -> np.ndarray:
        labels, shift = [], 0
        for part in self._parts:
            labels.append(part.orbits() + shift)
            shift += part.num_orbits
        return np.concatenate(labels)

    def _pair_orbits(self) -> np.ndarray:
        # Blocks (p, q) of the pair matrix are independent: diagonal blocks carry the part's
        # own pair orbits, off-diagonal blocks the product of the two parts' point orbits.
        part_count = len(self._parts)
        blocks = [[None] * part_count for _ in range(part_count)]
        shift = 0
        for p, first in enumerate(self._parts):
            for q, second in enumerate(self._parts):
                if p == q:
                    block = first.pair_orbits().astype(np.int64)
                else:
                    block = first.orbits()[:, None] * second.num_orbits + second.orbits()[None, :]
                blocks[p][q] = block + shift
                shift += int(block.max()) + 1
        return np.block(blocks)

    def order(self) -> int:
        return math.prod(part.order() for part in self._parts)


class Product(Group):
    """Acts on pairs (a, b) by (g a, h b); pair (a, b) is point a * deg H + b (G major).

    ``Product(A, B, C)`` folds from the left: point (a, b, c) is (a * deg B + b) * deg C + c.
    """

    __slots__ = ("_factors",)

    def __init__(self, *groups: Group):
        groups = _check_groups(groups, "Product")
        super().__init__(math.prod(group.degree for group in groups))
        object.__setattr__(self, "_factors", tuple(groups))

    def _arguments(self) -> tuple:
        return self._factors

    @property
    def factors(self) -> tuple[Group, ...]:
        """The factors as given (a nested Product stays one factor)."""
        return self._factors

    def _coordinates(self) -> list[np.ndarray]:
        """For every factor, the coordinate of each point (row-major over the factors)."""
        degrees = [factor.degree for factor in self._factors]
        return list(np.unravel_index(np.arange(self.degree, dtype=np.int64), degrees))

    def _generators(self) -> tuple[np.ndarray, ...]:
        degrees = [factor.degree for factor in self._factors]
        coordinates = self._coordinates()
        generators = []
        for axis, factor in enumerate(self._factors):
            for perm in factor.generators():
                moved = list(coordinates)
                moved[axis] = perm[coordinates[axis]]
                generators.append(np.ravel_multi_index(moved, degrees).astype(np.int64))
        return tuple(generators)

    def _orbits(self) -> np.ndarray:
        coordinates = self._coordinates()
        return _combine_labels(
            *[factor.orbits()[coordinate] for factor, coordinate in zip(self._factors, coordinates)]
        )

    def _pair_orbits(self) -> np.ndarray:
        # A pair of points is a tuple of pairs of coordinates; the product group moves each
        # coordinate pair independently, so the unclosed orbital is the tuple of factor ones.
        coordinates = self._coordinates()
        return _combine_labels(
            *[
                factor.pair_orbits()[np.ix_(coordinate, coordinate)]
                for factor, coordinate in zip(self._factors, coordinates)
            ]
        )

    def order(self) -> int:
        return math.prod(factor.order() for factor in self._factors)


class Wreath(Group):
    """G wr H: H permutes deg H blocks, an independent copy of G acts inside each block.

    Point (block, inner) is block * deg G + inner, so blocks are contiguous runs of deg G
    points. Order |G|^(deg H) * |H|.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, inner: Group, outer: Group):
        inner = _check_group(inner, "Wreath's inner group")
        outer = _check_group(outer, "Wreath's outer group")
        super().__init__(inner.degree * outer.degree)
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_outer", outer)

    def _arguments(self) -> tuple:
        return (self._inner, self._outer)

    @property
    def inner(self) -> Group:
        """The group acting inside every block."""
        return self._inner

    @property
    def outer(self) -> Group:
        """The group permuting the blocks."""
        return self._outer

    def _split(self) -> tuple[np.ndarray, np.ndarray]:
        points = np.arange(self.degree, dtype=np.int64)
        return points // self._inner.degree, points % self._inner.degree

    def _generators(self) -> tuple[np.ndarray, ...]:
        inner_degree = self._inner.degree
        block, inner = self._split()
        generators = []
        # The outer group carries G from one block to every block of the same outer orbit,
        # so one copy of G's generators per outer orbit is enough.
        outer_orbits = self._outer.orbits()
        representatives = [int(np.flatnonzero(outer_orbits == orbit)[0]) for orbit in range(self._outer.num_orbits)]
        for representative in representatives:
            for perm in self._inner.generators():
                full = np.arange(self.degree, dtype=np.int64)
                start = representative * inner_degree
                full[start : start + inner_degree] = perm + start
                generators.append(full)
        for perm in self._outer.generators():
            generators.append(perm[block] * inner_degree + inner)
        return tuple(generators)

    def _orbits(self) -> np.ndarray:
        block, inner = self._split()
        return _combine_labels(self._outer.orbits()[block], self._inner.orbits()[inner])

    def _pair_orbits(self) -> np.ndarray:
        # Inside one block the copy of G moves both points together: (outer orbit of the block,
        # G-orbital of the inner pair). Across two blocks the copies are independent:
        # (H-orbital of the block pair, G-orbit of each inner point).
        block, inner = self._split()
        same_block = block[:, None] == block[None, :]
        inner_orbits = self._inner.orbits()
        within = _combine_labels(
            np.broadcast_to(self._outer.orbits()[block][:, None], same_block.shape),
            self._inner.pair_orbits()[np.ix_(inner, inner)],
        )
        across = _combine_labels(
            self._outer.pair_orbits()[np.ix_(block, block)],
            np.broadcast_to(inner_orbits[inner][:, None], same_block.shape),
            np.broadcast_to(inner_orbits[inner][None, :], same_block.shape),
        )
        return np.where(same_block, within, across + int(within.max()) + 1)

    def order(self) -> int:
        return self._inner.order() ** self._outer.degree * self._outer.order()


# --------------------------------------------------------------------------- ready-made groups


def _sudoku_base(box: int) -> Group:
    box = _validate_degree(box, "box")
    lines = Wreath(Symmetric(box), Symmetric(box))
    return Product(Product(lines, lines), Symmetric(box * box))


def sudoku_transpose_permutation(box: int = 3) -> np.ndarray:
    """Swap rows and columns: variable (r, c, d) -> (c, r, d), index (r*s + c)*s + d."""
    side = _validate_degree(box, "box") ** 2
    row, column, digit = np.unravel_index(np.arange(side**3, dtype=np.int64), (side, side, side))
    return np.ravel_multi_index((column, row, digit), (side, side, side)).astype(np.int64)


class SudokuTransposed(Extend):
    """The Sudoku rule group with the board transposition (rows <-> columns) added.

    Same points as ``sudoku_group(box)``; prints as ``SudokuTransposed(box)`` rather than
    spelling out the transposition.
    """

    __slots__ = ("_box",)

    def __init__(self, box: int = 3):
        box = _validate_degree(box, "box")
        super().__init__(_sudoku_base(box), [sudoku_transpose_permutation(box)])
        object.__setattr__(self, "_box", box)

    def _arguments(self) -> tuple:
        return (self._box,)

    def _key(self) -> tuple:
        return (type(self).__name__, self._box)

    def order(self) -> int:
        # The transposition normalises the base group and, for box >= 2, is not in it.
        return self._base.order() * (2 if self._box >= 2 else 1)


def sudoku_group(box: int = 3, transpose: bool = False) -> Group:
    """Symmetries of the Sudoku rules on the one-hot variables (row r, column c, digit d).

    Variable index (r*s + c)*s + d with s = box**2; rows are band*box + row-in-band, which is
    Wreath's block*deg G + inner, so the group is
    ``Product(Product(Wreath(S_b, S_b), Wreath(S_b, S_b)), S_s)``: permute rows inside a band
    and the bands, the same for columns, and the digits. ``transpose=True`` adds the
    rows <-> columns swap (``SudokuTransposed``).

    Closed orbitals: 18 for box 2 and 3 (3 row relations x 3 column relations x 2 digit
    relations); 12 with the transposition (the two line relations become unordered).
    """
    if transpose:
        return SudokuTransposed(box)
    return _sudoku_base(box)


def cube_group(slices: bool = True, colours: bool = True) -> Group:
    """Symmetries of the Rubik's-cube completion task on variables (facelet f, colour c) = f*6 + c.

    ``Product(G_facelets, G_colours)``: face turns U D F B L R and slice turns M E S on the 54
    facelets (numbering in ``symsatnet.cube_moves``), times the permutations of the 6 colours
    that the 24 whole-cube rotations induce (the published group, 36 orbitals). Subgroups:
    ``slices=False`` leaves out the slice turns, so the 6 centre facelets stay put and its
    orbitals tell them apart; ``colours=False`` puts ``Trivial(6)`` on the colours (312
    orbitals), so a tied matrix may weigh each pair of colours on its own.
    """
    from . import cube_moves

    turns = "UDFBLRMES" if slices else "UDFBLR"
    facelets = FromGenerators(cube_moves.FACELETS, [cube_moves.MOVES[name] for name in turns])
    if not colours:
        return Product(facelets, Trivial(len(cube_moves.FACES)))
    rotations = FromGenerators(
        len(cube_moves.FACES), [cube_moves.rotation_colour_permutation(name) for name in "xyz"]
    )
    return Product(facelets, rotations)


# --------------------------------------------------------------------------- parsing


_CONSTRUCTORS = {
    constructor.__name__: constructor
    for constructor in (
        Trivial,
        Symmetric,
        Cyclic,
        FromGenerators,
        Extend,
        DirectSum,
        Product,
        Wreath,
        SudokuTransposed,
        sudoku_group,
        cube_group,
    )
}


def parse_group(text: str) -> Group:
    """Read a group back from its ``repr`` without ``eval``: only the constructors of this
    module, integer and boolean literals and lists of them are accepted, so text from a file
    cannot run code."""

    def evaluate(node: ast.AST):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CONSTRUCTORS:
            arguments = [evaluate(argument) for argument in node.args]
            keywords = {keyword.arg: evaluate(keyword.value) for keyword in node.keywords if keyword.arg}
            if len(keywords) != len(node.keywords):
                raise ValueError("**keyword unpacking is not part of a group expression")
            try:
                return _CONSTRUCTORS[node.func.id](*arguments, **keywords)
            except TypeError as error:  # wrong arguments for the constructor
                raise ValueError(f"bad arguments in {ast.unparse(node)!r}: {error}") from None
        if isinstance(node, (ast.List, ast.Tuple)):
            return [evaluate(element) for element in node.elts]
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, bool)):
            return node.value
        raise ValueError(f"not part of a group expression: {ast.unparse(node)!r}")

    if not isinstance(text, str):
        raise ValueError(f"expected a group expression as a string, got {type(text).__name__}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"not a group expression: {error.msg}") from None
    group = evaluate(tree.body)
    if not isinstance(group, Group):
        raise ValueError(f"{text!r} does not describe a group")
    return group
