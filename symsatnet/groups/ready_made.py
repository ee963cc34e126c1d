"""Ready-made groups of the puzzles: the Sudoku group (with or without the transpose)
and the Rubik's cube group on facelets."""

from __future__ import annotations

import numpy as np

from .labels import validate_degree
from .base import Group
from .families import Extend, FromGenerators, Product, Symmetric, Trivial, Wreath


def _sudoku_base(box: int) -> Group:
    box = validate_degree(box, "box")
    lines = Wreath(Symmetric(box), Symmetric(box))
    return Product(Product(lines, lines), Symmetric(box * box))


def sudoku_transpose_permutation(box: int = 3) -> np.ndarray:
    """Swap rows and columns: variable (r, c, d) -> (c, r, d), index (r*s + c)*s + d."""
    side = validate_degree(box, "box") ** 2
    row, column, digit = np.unravel_index(np.arange(side**3, dtype=np.int64), (side, side, side))
    return np.ravel_multi_index((column, row, digit), (side, side, side)).astype(np.int64)


class SudokuTransposed(Extend):
    """The Sudoku rule group with the board transposition (rows <-> columns) added.

    Same points as ``sudoku_group(box)``; prints as ``SudokuTransposed(box)`` rather than
    spelling out the transposition.
    """

    __slots__ = ("_box",)

    def __init__(self, box: int = 3):
        box = validate_degree(box, "box")
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
    from .. import cube_moves

    turns = "UDFBLRMES" if slices else "UDFBLR"
    facelets = FromGenerators(cube_moves.FACELETS, [cube_moves.MOVES[name] for name in turns])
    if not colours:
        return Product(facelets, Trivial(len(cube_moves.FACES)))
    rotations = FromGenerators(
        len(cube_moves.FACES), [cube_moves.rotation_colour_permutation(name) for name in "xyz"]
    )
    return Product(facelets, rotations)
