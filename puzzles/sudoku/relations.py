"""How two Sudoku variables relate, and carrying learned rules from one board size to another.

The Sudoku group (permute rows inside bands and bands, the same for columns, permute digits)
has the same 18 closed orbitals on pairs of variables for every box size: a pair is in the
same row, in another row of the same band, or in another band; likewise for columns and
stacks; with the same digit or another. So a rule learned on 4x4 boards ("same row, same
digit: at most one") is a rule for 9x9 and 16x16 boards too:

* :func:`resize_layer` builds a SymSATNet for another box size whose C holds, on each kind
  of pair, the per-entry value the trained layer holds on that kind (not its normalised
  coefficient, which depends on the orbital's size);
* :func:`resize_constraints` carries the logical rules (``symsatnet.decode.Constraints``)
  by kind: a kind whose every pair is an at-most-one pair stays one, and each exactly-one
  group becomes the classes of the kinds it is made of.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from symsatnet import SymSATNet, sudoku_group
from symsatnet.decode import Constraints

__all__ = ["KINDS", "describe_pair", "kind_map", "pair_kind", "resize_constraints", "resize_layer"]

_LINES = ("same {0}", "another {0} of the same {1}", "another {1}")
#: Names of the 18 kinds, indexed by ``(row_relation * 3 + column_relation) * 2 + digit_relation``.
KINDS = tuple(
    f"{_LINES[row].format('row', 'band')}, {_LINES[column].format('column', 'stack')}, "
    f"{'same digit' if digit == 0 else 'another digit'}"
    for row in range(3) for column in range(3) for digit in range(2)
)


def _coordinates(index: np.ndarray, box: int):
    side = box * box
    cell, digit = np.divmod(index, side)
    row, column = np.divmod(cell, side)
    return row, column, digit


def _line_relation(a: np.ndarray, b: np.ndarray, box: int) -> np.ndarray:
    return np.where(a == b, 0, np.where(a // box == b // box, 1, 2))


def pair_kind(i, j, box: int):
    """The kind (0..17) of the pair of variables i, j (0-based, (r * side + c) * side + d)."""
    r1, c1, d1 = _coordinates(np.asarray(i), box)
    r2, c2, d2 = _coordinates(np.asarray(j), box)
    return (_line_relation(r1, r2, box) * 3 + _line_relation(c1, c2, box)) * 2 + (d1 != d2)


def kind_map(box: int) -> np.ndarray:
    """(n, n) int array: the kind of every pair of a board with this box size."""
    index = np.arange(box**6)
    return pair_kind(index[:, None], index[None, :], box).astype(np.int64)


def describe_pair(box: int) -> Callable[[int, int], str]:
    """``describe(i, j)`` naming how two variables relate, for ``symsatnet.rules.orbital_rules``."""
    def describe(i: int, j: int) -> str:
        kind = int(pair_kind(i, j, box))
        return "same cell, another digit" if kind == 1 else KINDS[kind]

    return describe


def _box_of(layer: SymSATNet) -> int:
    box = round(layer.n ** (1 / 6))
    if box**6 != layer.n or layer.group != sudoku_group(box):
        raise ValueError(f"resizing needs a SymSATNet tied under sudoku_group(box), got {layer.group!r} on "
                         f"{layer.n} variables")
    return box


def resize_layer(layer: SymSATNet, box: int) -> SymSATNet:
    """A SymSATNet for boards of another box size with the same per-entry value on every kind."""
    source_box = _box_of(layer)
    if layer.aux:
        raise ValueError("resizing a layer with auxiliary variables is not supported (their rows are not tied)")
    with torch.no_grad():
        matrix = layer.matrix().detach().double().cpu().numpy()
    source_kinds = kind_map(source_box)
    block = matrix[1:, 1:]
    values = np.array([block[source_kinds == kind].mean() for kind in range(len(KINDS))])
    target_kinds = kind_map(box)
    n = box**6
    full = np.zeros((n + 1, n + 1))
    full[1:, 1:] = values[target_kinds]
    full[0, 1:] = full[1:, 0] = matrix[0, 1:].mean()
    resized = SymSATNet.from_matrix(torch.from_numpy(full), sudoku_group(box), truth=layer.truth_mode,
                                    max_iter=layer.max_iter, eps=layer.eps, prox_lam=layer.prox_lam, k=layer.k)
    return resized.to(next(layer.parameters()).dtype)


def resize_constraints(constraints: Constraints, from_box: int, to_box: int) -> Constraints:
    """The same rules, kind by kind, on boards of box size ``to_box``."""
    if constraints.n != from_box**6:
        raise ValueError(f"the constraints are for {constraints.n} variables, not a box-{from_box} board")
    source = kind_map(from_box)
    amo = constraints.adjacency()
    off_diagonal = ~np.eye(len(source), dtype=bool)
    kinds = [kind for kind in range(len(KINDS))
             if (source == kind).any() and amo[(source == kind) & off_diagonal].all()]
    target = kind_map(to_box)
    rule = np.isin(target, kinds)
    np.fill_diagonal(rule, False)
    pairs = np.argwhere(np.triu(rule, 1))
    group_kinds = {tuple(sorted(set(source[np.ix_(group, group)][off_diagonal[np.ix_(group, group)]].tolist())))
                   for group in constraints.exactly_one}
    groups = []
    for kinds_of_group in sorted(group_kinds):
        linked = np.isin(target, kinds_of_group) | np.eye(len(target), dtype=bool)
        seen = np.zeros(len(target), dtype=bool)
        for start in range(len(target)):
            if seen[start]:
                continue
            members = np.flatnonzero(linked[start])
            seen[members] = True
            # Keep a class only if it is a clique of those kinds (an exactly-one group must be).
            if len(members) > 1 and linked[np.ix_(members, members)].all():
                groups.append(members)
    return Constraints(to_box**6, pairs.astype(np.int64), tuple(groups), constraints.strength,
                       constraints.labels, constraints.refuted)
