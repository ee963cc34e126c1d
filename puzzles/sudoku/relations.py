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
  group becomes the classes of the kinds it is made of;
* :func:`reward_rules` reads the rules a layer states through *rewards* (a strongly negative
  weight on a kind: "if this is true, so is one of those"), kept only where every training
  label obeys them, and :func:`carry_reward_rules` carries them to another size, keeping a
  rule only if the larger board stays solvable with it (see docs/design.md, "Rules that
  transfer across sizes").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from symsatnet import SymSATNet, sudoku_group
from symsatnet.decode import Constraints

__all__ = ["KINDS", "RewardRule", "carry_reward_rules", "conditional_rules", "describe_pair", "kind_map", "pair_kind",
           "resize_constraints", "resize_layer", "reward_rules"]

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


# ------------------------------------------------------------------ rules read off rewards

#: The coordinate a reward rule groups its partners by, per row/column relation of its kind.
_ROW_KEYS = {1: "row", 2: "band"}
_COLUMN_KEYS = {1: "column", 2: "stack"}


@dataclass(frozen=True)
class RewardRule:
    """"If variable i is true, exactly one of its partners of ``kind`` in each ``key`` is."

    Attributes:
        kind: the pair kind (index into :data:`KINDS`) the layer rewards.
        key: 'row', 'band', 'column' or 'stack': the partners of one variable fall into one
            class per value of this coordinate, and the rule speaks of each class.
        weight: the layer's pair weight b = 8 C on the kind (negative: a reward).
    """

    kind: int
    key: str
    weight: float

    def __str__(self) -> str:
        return f"{KINDS[self.kind]}: if one is true, exactly one per {self.key} is (weight {self.weight:+.3g})"


def _key_of(index: np.ndarray, box: int, key: str) -> np.ndarray:
    row, column, _ = _coordinates(index, box)
    return {"row": row, "band": row // box, "column": column, "stack": column // box}[key]


def conditional_rules(rules: Sequence[RewardRule], box: int) -> tuple[tuple[int, np.ndarray], ...]:
    """The ``(i, group)`` conditional exactly-one rules of ``rules`` on a board of box size ``box``."""
    kinds = kind_map(box)
    index = np.arange(box**6)
    result = []
    for rule in rules:
        keys = _key_of(index, box, rule.key)
        for i in index.tolist():
            partners = np.flatnonzero(kinds[i] == rule.kind)
            for value in np.unique(keys[partners]).tolist():
                result.append((i, partners[keys[partners] == value]))
    return tuple(result)


def _obeyed(rules: Sequence[RewardRule], box: int, labels: np.ndarray) -> bool:
    probe = _conditional_only(box**6, conditional_rules(rules, box))
    return not probe.violations(labels).any()


def _conditional_only(n: int, conditional) -> Constraints:
    return Constraints(n, np.zeros((0, 2), dtype=np.int64), (), 1.0, 0, 0, conditional)


def reward_rules(layer: SymSATNet, solutions: np.ndarray, strength: float = 0.3) -> list[RewardRule]:
    """The conditional rules a Sudoku SymSATNet states through rewards, strongest first.

    A kind whose weight is a reward of at least ``strength`` times the largest |weight| is
    read as "if a variable is true, one of its partners of this kind is", with the partners
    grouped by the coordinate the kind says is *another* one (another row or band; another
    column or stack). A reading is kept only if every one of ``solutions`` ((L, n) 0/1
    labels of the layer's own board size) obeys it.
    """
    box = _box_of(layer)
    if not 0 < strength <= 1:
        raise ValueError(f"strength must lie in (0, 1], got {strength!r}")
    labels = np.asarray(solutions)
    if labels.ndim != 2 or labels.shape[1] != box**6 or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"solutions must be (count, {box**6}) 0/1 labels, got shape {labels.shape}")
    with torch.no_grad():
        block = layer.matrix().detach().double().cpu().numpy()[1:, 1:]
    kinds = kind_map(box)
    weights = np.array([8 * block[kinds == kind].mean() if (kinds == kind).any() else 0.0
                        for kind in range(len(KINDS))])
    largest = np.abs(weights).max()
    found = []
    for kind in np.argsort(weights).tolist():
        if not weights[kind] <= -strength * largest:
            break
        row_relation, column_relation = divmod(kind // 2, 3)
        for key in (_ROW_KEYS.get(row_relation), _COLUMN_KEYS.get(column_relation)):
            rule = RewardRule(int(kind), key, float(weights[kind])) if key else None
            if rule is not None and _obeyed([rule], box, labels):
                found.append(rule)
    return found


def _solvable(constraints: Constraints, time_limit: float) -> Optional[bool]:
    """Whether some 0/1 assignment obeys every rule (None: undecided within the time limit)."""
    from symsatnet.decode import require_solver

    require_solver("cpsat")
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    variables = [model.new_bool_var("") for _ in range(constraints.n)]
    for group in constraints.exactly_one:
        model.add_exactly_one([variables[i] for i in group.tolist()])
    for i, j in constraints.loose_pairs().tolist():
        model.add_bool_or([variables[i].Not(), variables[j].Not()])
    for i, group in constraints.conditional:
        model.add(sum(variables[j] for j in group.tolist()) == 1).only_enforce_if(variables[i])
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = time_limit
    status = solver.solve(model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return True
    return False if status == cp_model.INFEASIBLE else None


def carry_reward_rules(constraints: Constraints, rules: Sequence[RewardRule], box: int,
                       time_limit: float = 30.0) -> tuple[Constraints, list[RewardRule]]:
    """``constraints`` (already for box size ``box``) plus the reward rules that keep an empty
    board of that size solvable, tried strongest first; returns them and the rules kept.

    A reading that holds on small boards can be too strong on large ones ("the other band"
    of a 4x4 board is one band, of a 9x9 board two); such a rule leaves no board at all, and
    is dropped. Needs OR-Tools.
    """
    if constraints.n != box**6:
        raise ValueError(f"the constraints are for {constraints.n} variables, not a box-{box} board")
    ordered = sorted(rules, key=lambda rule: rule.weight)
    every = replace(constraints, conditional=constraints.conditional + conditional_rules(ordered, box))
    if not ordered or _solvable(every, time_limit):  # the usual case: one check, not one per rule
        return every, list(ordered)
    kept: list[RewardRule] = []
    current = constraints
    for rule in ordered:
        trial = replace(current, conditional=current.conditional + conditional_rules([rule], box))
        if _solvable(trial, time_limit):
            kept.append(rule)
            current = trial
    return current, kept
