"""Rule extraction: the discrete problem that a trained layer's relaxation relaxes.

The mixing method minimises ``sum_ij C_ij <v_i, v_j>`` over unit vectors. Restricted to
vectors ``v_i = s_i v_0`` with signs ``s_i = 2 x_i - 1`` (``x_i = 1``: variable i true, the
truth variable ``s_0 = +1``), the objective becomes the energy of a 0/1 assignment

    E(x) = constant + sum_i a_i x_i + sum_{i<j} b_ij x_i x_j,
    a_i  = 4 C_0i - 4 sum_{j >= 1, j != i} C_ij,      b_ij = 8 C_ij,

over the problem variables 1..n and the auxiliary variables n+1..N-1 (docs/design.md,
"Decoding"). ``extract`` returns it as :class:`Rules`; ``Rules.clamp`` folds given entries
into the linear terms and returns the :class:`Problem` over the free variables that the
decoders in :mod:`symsatnet.decode` solve.

The 0/1 form is the one to make sparse: a pair term costs only when both variables are
true, and a solution of a puzzle sets few variables true (81 of 729 for 9x9 Sudoku), so a
weak pair changes the energy of an assignment by ``|b_ij|`` at most and only on its true
pairs. ``Problem.sparse(threshold)`` drops pairs with ``|b_ij| < threshold * max |b|``
(a *measured* criterion: docs/results.md reports the decoded accuracy for each choice; 0
keeps everything and is exact). Separately, ``Problem.hard_pairs`` marks pairs whose
penalty is so large that no optimum has both variables true (a *safe* criterion, proved
in its docstring): the decoders pass them on as constraints ``x_i + x_j <= 1``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

__all__ = ["Rules", "Problem", "OrbitalRule", "Separation", "extract", "interaction_matrix", "orbital_rules",
           "separation"]


class RulesError(ValueError):
    """A layer or an input whose discrete problem cannot be built."""


def interaction_matrix(layer: torch.nn.Module) -> np.ndarray:
    """The full symmetric (N, N) matrix C of a layer, as float64 numpy.

    Works for every layer with a ``matrix()`` method (``SATNet`` through C = S Sᵀ,
    ``CSATNet``, ``SymSATNet``) or a plain tensor/array C.
    """
    if isinstance(layer, (torch.Tensor, np.ndarray)):
        matrix = layer.detach().cpu().numpy() if isinstance(layer, torch.Tensor) else np.asarray(layer)
    elif callable(getattr(layer, "matrix", None)):
        with torch.no_grad():
            clauses = getattr(layer, "S", None)
            if isinstance(clauses, torch.Tensor):  # S-form: S Sᵀ in float64, not rounded to float32 sums
                clauses = clauses.detach().cpu().double()
                matrix = (clauses @ clauses.T).numpy()
            else:
                matrix = layer.matrix().detach().cpu().double().numpy()
    else:
        raise RulesError(
            f"cannot extract rules from a {type(layer).__name__}: it has no interaction matrix "
            f"(a SATNet, CSATNet or SymSATNet layer, or an (N, N) matrix C, is needed)"
        )
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise RulesError(f"C must be a square matrix of side >= 2, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise RulesError("C holds NaN or infinite entries: the layer's weights are not finite")
    return 0.5 * (matrix + matrix.T)


@dataclass(frozen=True)
class Rules:
    """The 0/1 energy of all N - 1 variables (problem variables first, then auxiliaries).

    Attributes:
        n: number of problem variables (indices 0..n-1 here are C's rows 1..n).
        aux: number of auxiliary variables (indices n..n+aux-1).
        linear: (n + aux,) a_i.
        pairs: (n + aux, n + aux) symmetric b_ij with a zero diagonal (each pair once in
            the energy, i < j).
        constant: the energy of the all-false assignment.
    """

    n: int
    aux: int
    linear: np.ndarray
    pairs: np.ndarray
    constant: float

    @property
    def size(self) -> int:
        """n + aux, the number of decision variables."""
        return self.n + self.aux

    def energy(self, x: np.ndarray) -> np.ndarray:
        """E(x) for 0/1 assignments of shape (..., n + aux); equals the layer's relaxed
        objective at the vectors ``(2 x - 1) v_0``."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.size:
            raise RulesError(f"assignments must have {self.size} entries (n + aux), got shape {x.shape}")
        quadratic = 0.5 * np.einsum("...i,ij,...j->...", x, self.pairs, x)
        return self.constant + x @ self.linear + quadratic

    def clamp(self, values: np.ndarray, given: np.ndarray, unary: Optional[np.ndarray] = None) -> "Problem":
        """The problem over the free variables with the given ones fixed.

        Args:
            values: (n,) 0/1 (or [0, 1], rounded at 0.5) values; only given entries are read.
            given: (n,) bool, which problem variables are fixed. Auxiliaries are always free.
            unary: optional (n,) extra cost of setting each problem variable true (soft
                evidence, e.g. a negative log-likelihood ratio); given entries ignore it.
        """
        values = np.asarray(values, dtype=np.float64)
        given = np.asarray(given).astype(bool)
        if values.shape != (self.n,) or given.shape != (self.n,):
            raise RulesError(f"values and given must have shape ({self.n},), got {values.shape} and {given.shape}")
        known = values[given]
        if not np.isfinite(known).all():
            raise RulesError("a given entry is NaN or infinite")
        fixed = np.concatenate([given, np.zeros(self.aux, dtype=bool)])
        fixed_values = np.zeros(self.size)
        fixed_values[: self.n][given] = (known >= 0.5).astype(np.float64)
        free = np.flatnonzero(~fixed)
        linear = self.linear.copy()
        if unary is not None:
            unary = np.asarray(unary, dtype=np.float64)
            if unary.shape != (self.n,) or not np.isfinite(unary[~given]).all():
                raise RulesError(f"unary must be a finite ({self.n},) array on the free entries")
            linear[: self.n] += np.where(given, 0.0, unary)
        ones = np.flatnonzero(fixed_values > 0)
        constant = self.constant + linear[ones].sum() + 0.5 * self.pairs[np.ix_(ones, ones)].sum()
        folded = linear[free] + self.pairs[np.ix_(free, ones)].sum(axis=1)
        return Problem(
            size=self.size,
            free=free,
            fixed_values=fixed_values,
            linear=folded,
            pairs=self.pairs[np.ix_(free, free)],
            constant=float(constant),
        )

    def write_wcnf(self, path: str | os.PathLike, values=None, given=None, *, scale: float | None = None,
                   force: bool = False) -> Path:
        """Write the (clamped) problem as weighted partial MaxSAT (WCNF, 2022 format)."""
        problem = self._for_export(values, given)
        return problem.write_wcnf(path, scale=scale, force=force)

    def write_opb(self, path: str | os.PathLike, values=None, given=None, *, scale: float | None = None,
                  force: bool = False) -> Path:
        """Write the (clamped) problem as a pseudo-Boolean optimisation file (OPB)."""
        problem = self._for_export(values, given)
        return problem.write_opb(path, scale=scale, force=force)

    def _for_export(self, values, given) -> "Problem":
        if given is None:
            return self.clamp(np.zeros(self.n), np.zeros(self.n, dtype=bool))
        return self.clamp(values, given)


@dataclass
class Problem:
    """The 0/1 energy over the free variables of one instance.

    ``energy(y) = constant + linear @ y + sum_{i<j} pairs[i, j] y_i y_j`` for a 0/1 vector y
    over ``free`` (indices into the n + aux variables of :class:`Rules`).
    """

    size: int
    free: np.ndarray
    fixed_values: np.ndarray
    linear: np.ndarray
    pairs: np.ndarray
    constant: float
    dropped: float = 0.0
    _hard: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def num_free(self) -> int:
        return len(self.free)

    def energy(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return self.constant + y @ self.linear + 0.5 * np.einsum("...i,ij,...j->...", y, self.pairs, y)

    def full(self, y: np.ndarray) -> np.ndarray:
        """The assignment of all n + aux variables with the free ones set to ``y``."""
        x = self.fixed_values.copy()
        x[self.free] = np.asarray(y) > 0.5
        return x

    def sparse(self, threshold: float) -> "Problem":
        """A copy without the pairs weaker than ``threshold * max |b|``.

        ``dropped`` records the largest amount by which the energy of any assignment can
        change: the sum of the dropped positive pair weights plus the sum of the dropped
        negative ones' magnitudes (a dropped pair changes the energy only where both are true).
        """
        if not 0 <= threshold < 1 or not math.isfinite(threshold):
            raise RulesError(f"threshold must lie in [0, 1), got {threshold!r}")
        pairs = self.pairs
        scale = float(np.abs(pairs).max()) if pairs.size else 0.0
        if threshold == 0 or scale == 0:
            return self
        weak = np.abs(pairs) < threshold * scale
        dropped = 0.5 * float(np.abs(pairs[weak]).sum())
        return Problem(self.size, self.free, self.fixed_values, self.linear, np.where(weak, 0.0, pairs),
                       self.constant, self.dropped + dropped)

    def hard_pairs(self) -> np.ndarray:
        """(P, 2) pairs (i < j, free indices) that no optimum needs with both true.

        Pair (i, j) is hard when ``b_ij >= max(G_i, G_j)`` where ``G_i = -(a_i + sum_{k != i, j}
        min(0, b_ik))`` is the most that setting y_i true can ever lower the energy apart from
        the pair itself. Then in any assignment with y_i = y_j = 1, setting y_i to 0 changes
        the energy by ``-(a_i + b_ij + sum_k b_ik y_k) <= G_i - b_ij <= 0``: some optimum
        (every one, where the inequality is strict) keeps them apart, so the constraint
        ``y_i + y_j <= 1`` leaves the optimal energy unchanged.
        """
        if self._hard is None:
            negative = np.minimum(self.pairs, 0.0)
            reach = -(self.linear + negative.sum(axis=1))  # G_i before removing the pair
            # G_i without the pair's own term (it is positive here, so it contributed 0).
            upper = np.triu(self.pairs, 1)
            candidates = np.argwhere(upper > 0)
            if len(candidates):
                i, j = candidates[:, 0], candidates[:, 1]
                weights = upper[i, j]
                keep = (weights >= reach[i]) & (weights >= reach[j])
                candidates = candidates[keep]
            self._hard = candidates.reshape(-1, 2)
        return self._hard

    # -- export -----------------------------------------------------------------------

    def _integer_terms(self, scale: float | None):
        """Integer weights (scaled, rounded) of the linear and pair terms, and the scale."""
        magnitudes = np.concatenate([np.abs(self.linear), np.abs(np.triu(self.pairs, 1)).ravel()])
        largest = float(magnitudes.max()) if magnitudes.size else 0.0
        if scale is None:
            scale = 1e6 / largest if largest > 0 else 1.0
        if not (scale > 0 and math.isfinite(scale)):
            raise RulesError(f"scale must be a positive number, got {scale!r}")
        linear = np.rint(self.linear * scale).astype(np.int64)
        upper = np.triu(self.pairs, 1)
        rows, columns = np.nonzero(np.rint(upper * scale))
        weights = np.rint(upper[rows, columns] * scale).astype(np.int64)
        return linear, rows, columns, weights, scale

    def write_wcnf(self, path, *, scale: float | None = None, force: bool = False) -> Path:
        """Weighted partial MaxSAT: the hard pairs as hard clauses, every term as soft clauses.

        Variable v (1-based) is free variable v - 1. A cost ``w x_i`` (w > 0) is the soft
        clause ``-x_i`` of weight w; a reward (w < 0) is the soft clause ``x_i`` of weight |w|
        with w added to the offset; a pair penalty is the soft clause ``-x_i -x_j``; a pair
        reward takes a fresh variable t with hard clauses t -> x_i, t -> x_j and the soft
        clause ``t`` of weight |w|. Weights are the energy times ``scale`` rounded to integers
        (default: the largest term maps to 10^6); the comment header gives the scale and
        the offset so that energy = (cost + offset) / scale + constant.
        """
        linear, rows, columns, weights, scale = self._integer_terms(scale)
        hard = {tuple(pair) for pair in self.hard_pairs().tolist()}
        lines, offset, extra = [], 0, self.num_free
        for variable, weight in enumerate(linear.tolist(), start=1):
            if weight > 0:
                lines.append(f"{weight} -{variable} 0")
            elif weight < 0:
                lines.append(f"{-weight} {variable} 0")
                offset += weight
        for i, j, weight in zip(rows.tolist(), columns.tolist(), weights.tolist()):
            if (i, j) in hard:
                lines.append(f"h -{i + 1} -{j + 1} 0")
            if weight > 0:
                lines.append(f"{weight} -{i + 1} -{j + 1} 0")
            else:
                extra += 1
                lines += [f"h -{extra} {i + 1} 0", f"h -{extra} {j + 1} 0", f"{-weight} {extra} 0"]
                offset += weight
        header = [f"c symsatnet rules: {self.num_free} free variables, {extra - self.num_free} product variables",
                  "c energy = (cost + offset) / scale + constant, with",
                  f"c scale {scale!r} offset {offset} constant {self.constant!r}"]
        return _write_text(path, header + lines, force)

    def write_opb(self, path, *, scale: float | None = None, force: bool = False) -> Path:
        """Pseudo-Boolean optimisation (OPB): ``min: linear + products``, hard pairs as constraints."""
        linear, rows, columns, weights, scale = self._integer_terms(scale)
        terms = [f"{weight:+d} x{variable}" for variable, weight in enumerate(linear.tolist(), start=1) if weight]
        terms += [f"{weight:+d} x{i + 1} x{j + 1}" for i, j, weight in zip(rows.tolist(), columns.tolist(),
                                                                         weights.tolist())]
        hard = self.hard_pairs()
        lines = [f"* #variable= {self.num_free} #constraint= {len(hard)}",
                 f"* energy = objective / {scale!r} + {self.constant!r}",
                 "min: " + " ".join(terms) + " ;"]
        lines += [f"-1 x{i + 1} -1 x{j + 1} >= -1 ;" for i, j in hard.tolist()]
        return _write_text(path, lines, force)


def _write_text(path, lines: Sequence[str], force: bool) -> Path:
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass force=True to replace it")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        temporary.write_text("\n".join(lines) + "\n")
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def extract(layer: torch.nn.Module | torch.Tensor | np.ndarray, n: Optional[int] = None) -> Rules:
    """The 0/1 energy (:class:`Rules`) of a trained layer or of a full matrix C.

    Args:
        layer: ``SATNet`` (C = S Sᵀ, auxiliaries included), ``CSATNet``, ``SymSATNet``, or an
            (N, N) matrix C with the truth variable first.
        n: number of problem variables; taken from ``layer.n`` when it has one, else N - 1.
    """
    matrix = interaction_matrix(layer)
    size = matrix.shape[0]
    if n is None:
        n = int(getattr(layer, "n", size - 1))
    if not 1 <= n <= size - 1:
        raise RulesError(f"n = {n} problem variables do not fit a C of side {size}")
    body = matrix[1:, 1:]
    off_diagonal = body - np.diag(np.diag(body))
    linear = 4 * matrix[0, 1:] - 4 * off_diagonal.sum(axis=1)
    pairs = 8 * off_diagonal
    constant = matrix[0, 0] + np.trace(body) + off_diagonal.sum() - 2 * matrix[0, 1:].sum()
    return Rules(n=n, aux=size - 1 - n, linear=linear, pairs=pairs, constant=float(constant))


@dataclass(frozen=True)
class Separation:
    """How cleanly a layer's pair penalties single out a known set of rule pairs.

    Weights are the energy's ``b_ij`` between problem variables, as fractions of the largest.

    Attributes:
        rule_pairs: number of (unordered) rule pairs given.
        weakest_rule: the smallest weight on a rule pair.
        strongest_other: the largest weight on any other pair.
        others_above: other pairs weighing at least ``weakest_rule``; 0 means a single
            threshold (any strength in (strongest_other, weakest_rule]) reads exactly the
            rule pairs off the layer, with no labels.
    """

    rule_pairs: int
    weakest_rule: float
    strongest_other: float
    others_above: int

    @property
    def separated(self) -> bool:
        return self.others_above == 0

    def __str__(self) -> str:
        verdict = ("separated" if self.separated
                   else f"{self.others_above} other pair(s) weigh at least the weakest rule pair")
        return (f"{self.rule_pairs} rule pairs: weakest {self.weakest_rule:.3f}, strongest other pair "
                f"{self.strongest_other:.3f} of the largest weight; {verdict}")


def separation(layer_or_rules, rule_pairs: np.ndarray) -> Separation:
    """Whether a layer's energy alone tells the given rule pairs from all other pairs.

    A label-free check of what a layer has learnt (``symsatnet.decode.extract_constraints``
    instead refutes candidate pairs with training labels, which can supply a rule the layer
    cannot express): e.g. a layer tied under the Sudoku group weighs X-Sudoku's
    diagonal pairs exactly like the other pairs of their orbital.

    Args:
        layer_or_rules: a layer or matrix for :func:`extract`, or its :class:`Rules`.
        rule_pairs: (k, 2) indices of problem variables (0-based, i != j), the pairs that
            the rules forbid together (e.g. ``puzzles.sudoku.rules.rule_pairs``).
    """
    rules = layer_or_rules if isinstance(layer_or_rules, Rules) else extract(layer_or_rules)
    n = rules.n
    pairs = np.asarray(rule_pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) == 0 or not np.issubdtype(pairs.dtype, np.integer):
        raise RulesError(f"rule_pairs must be a non-empty (k, 2) integer array, got shape {pairs.shape} "
                         f"and dtype {pairs.dtype}")
    if pairs.min() < 0 or pairs.max() >= n or (pairs[:, 0] == pairs[:, 1]).any():
        raise RulesError(f"rule_pairs must join two different problem variables in 0..{n - 1}")
    weights = (rules.pairs[:n, :n] + rules.pairs[:n, :n].T) / 2
    largest = float(np.abs(weights).max())
    if largest == 0:
        raise RulesError("the layer's energy has no pair terms between problem variables")
    is_rule = np.zeros((n, n), dtype=bool)
    is_rule[pairs[:, 0], pairs[:, 1]] = is_rule[pairs[:, 1], pairs[:, 0]] = True
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    rule_weights, other_weights = weights[is_rule & upper], weights[~is_rule & upper]
    weakest = float(rule_weights.min())
    strongest_other = float(other_weights.max()) if other_weights.size else -math.inf
    return Separation(int(len(rule_weights)), weakest / largest, strongest_other / largest,
                      int((other_weights >= weakest).sum()))


# ------------------------------------------------------------------------- readable rules


@dataclass(frozen=True)
class OrbitalRule:
    """One closed orbital of a SymSATNet's group, read as a rule.

    Attributes:
        orbital: its id in ``layer.space.orbital_map``.
        size: number of ordered pairs (i, j) in it.
        value: C on it.
        weight: b = 8 C, the energy added when both variables of a pair are true.
        example: one pair (i, j) of problem variables in it (0-based).
        meaning: a short reading: 'at most one' (strong penalty), 'together' (reward), or 'weak'.
        description: what ``describe(i, j)`` says of the example pair, if given.
    """

    orbital: int
    size: int
    value: float
    weight: float
    example: tuple[int, int]
    meaning: str
    description: str = ""

    def __str__(self) -> str:
        text = self.description or f"pairs like {self.example}"
        return f"{text}: weight {self.weight:+.3g} ({self.meaning}; {self.size} pairs)"


def orbital_rules(layer, describe: Optional[Callable[[int, int], str]] = None,
                  weak: float = 0.05) -> list[OrbitalRule]:
    """The rules of a ``SymSATNet``, one per off-diagonal closed orbital, strongest first.

    Args:
        layer: a ``SymSATNet`` (anything with ``space.orbital_map`` and ``orbital_values()``).
        describe: optional ``describe(i, j) -> str`` naming the relation of two problem
            variables (e.g. ``puzzles.sudoku.describe_pair``).
        weak: an orbital whose |weight| is below ``weak`` times the largest is called 'weak'.
    """
    space = getattr(layer, "space", None)
    if space is None or not callable(getattr(layer, "orbital_values", None)):
        raise RulesError(f"orbital rules need a SymSATNet, got a {type(layer).__name__}")
    orbital_map = space.orbital_map.cpu().numpy()
    with torch.no_grad():
        values = layer.orbital_values().detach().cpu().double().numpy()
    diagonal = set(np.unique(np.diag(orbital_map)).tolist())
    sizes = np.bincount(orbital_map.ravel(), minlength=len(values))
    off = [b for b in range(len(values)) if b not in diagonal]
    largest = max((abs(8 * values[b]) for b in off), default=0.0)
    rules = []
    for b in off:
        i, j = (int(v) for v in np.argwhere(orbital_map == b)[0])
        weight = 8 * float(values[b])
        if abs(weight) < weak * largest:
            meaning = "weak"
        elif weight > 0:
            meaning = "at most one"
        else:
            meaning = "together"
        rules.append(OrbitalRule(b, int(sizes[b]), float(values[b]), weight, (i, j), meaning,
                                 describe(i, j) if describe else ""))
    return sorted(rules, key=lambda rule: -abs(rule.weight))
