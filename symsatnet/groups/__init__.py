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

Index conventions (part of the API, docs/design.md, "Index conventions"):

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

The package by job: :mod:`.labels` (partition arithmetic), :mod:`.base` (``Group``),
:mod:`.families` (the constructors), :mod:`.ready_made` (Sudoku and cube groups) and
:mod:`.parsing` (``parse_group``).
"""

from .labels import canonical_labels
from .base import Group
from .families import Cyclic, DirectSum, Extend, FromGenerators, Product, Symmetric, Trivial, Wreath
from .ready_made import SudokuTransposed, cube_group, sudoku_group, sudoku_transpose_permutation
from .parsing import parse_group

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
