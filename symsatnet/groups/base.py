"""The base class :class:`Group`: identity (equality, hashing, ``repr``), generators,
orbits, closed orbitals, order and membership, with a per-group cache."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .labels import canonical_labels, frozen, glue_labels, orbits_by_union_find, pair_orbits_by_union_find, validate_degree, validate_permutation


#: Largest degree whose n x n orbital maps are built (8 n^2 bytes each: 2.1 GB here).
MAX_PAIR_DEGREE = 16384

class Group:
    """A permutation group on the points 0..degree-1, given as an expression.

    Subclasses provide ``_arguments`` (the constructor arguments, used for equality,
    hashing and ``repr``) and ``_generators``; they may override ``_pair_orbits`` and
    ``_orbits`` with something faster than union-find, and ``order``.
    """

    __slots__ = ("_degree", "__weakref__")

    def __init__(self, degree: int):
        object.__setattr__(self, "_degree", validate_degree(degree))

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
        return _cached(self, "generators", lambda: tuple(frozen(p) for p in self._generators()))

    def _orbits(self) -> np.ndarray:
        return orbits_by_union_find(self.degree, self.generators())

    def orbits(self) -> np.ndarray:
        """Point-orbit id of every point, shape (degree,), numbered by first occurrence."""
        return _cached(self, "orbits", lambda: frozen(canonical_labels(self._orbits())))

    def _num_orbits(self) -> int:
        return int(self.orbits().max()) + 1

    @property
    def num_orbits(self) -> int:
        """Number of point orbits."""
        return self._num_orbits()

    def _pair_orbits(self) -> np.ndarray:
        return pair_orbits_by_union_find(self.degree, self.generators())

    def _check_pair_array_size(self) -> None:
        # An n x n int64 map needs 8 n^2 bytes (8 GB at n = 32768); refuse before numpy
        # tries, with a message, rather than a MemoryError or minutes of swapping.
        if self.degree > MAX_PAIR_DEGREE:
            raise ValueError(f"{self!r}: the n x n orbital map of degree {self.degree} needs "
                             f"{8 * self.degree**2 / 1e9:.3g} GB; at most degree {MAX_PAIR_DEGREE} "
                             "is supported (num_orbitals has a closed form for Trivial, "
                             "Symmetric and Cyclic)")

    def pair_orbits(self) -> np.ndarray:
        """Unclosed orbitals: orbit id of every pair (i, j), shape (n, n), canonical numbering."""
        self._check_pair_array_size()
        return _cached(self, "pair_orbits", lambda: frozen(canonical_labels(self._pair_orbits())))

    def orbitals(self) -> np.ndarray:
        """Closed orbital map: int64 (n, n), ids 0..K-1 of the orbits on pairs glued under
        (i, j) ~ (j, i), numbered by first occurrence in row-major order. Equal partitions give
        identical arrays."""

        self._check_pair_array_size()

        def compute() -> np.ndarray:
            pairs = self.pair_orbits()
            return frozen(glue_labels(pairs, pairs.T))

        return _cached(self, "orbitals", compute)

    def _num_orbitals(self) -> int:
        return int(self.orbitals().max()) + 1

    @property
    def num_orbitals(self) -> int:
        """K, the number of closed orbitals (free parameters of an invariant symmetric matrix).
        Closed forms where the family has one (no n x n map), else from :meth:`orbitals`."""
        return self._num_orbitals()

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

        array = validate_permutation(perm, self.degree, "permutation")
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


def check_group(group: object, what: str) -> Group:
    if not isinstance(group, Group):
        raise ValueError(f"{what} must be a Group, got {type(group).__name__}")
    return group


# --------------------------------------------------------------------------- leaves
