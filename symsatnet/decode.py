"""Decoding: from a trained layer's rules to 0/1 answers that satisfy them.

The relaxation plus rounding only propagates; it cannot search, so it fails on puzzles that
need search (docs/results.md, "Exact decoding"). Decoding here works on the *logical* rules
read off the layer's energy (:mod:`symsatnet.rules`):

* **at most one**: pairs of problem variables whose pair weight ``b_ij`` is a strong
  penalty (``b_ij >= strength * max b``) and, when training labels are given, that are never
  both true in any label;
* **exactly one**: the maximal cliques of the at-most-one pairs in which every training
  label has exactly one true variable (needs labels: for one-hot encodings these are the
  cells, and for Sudoku also the row, column and box digits).

Methods of :func:`decode`:

* ``'relaxation'``: the layer's own forward and rounding (``z > 0.5``), as before.
* ``'exact'``: a constraint solver (OR-Tools CP-SAT, an optional dependency) finds an
  assignment that satisfies every rule and minimises the layer's energy restricted to its
  linear terms and the pair terms that are not rules (``soft_threshold``), warm-started
  from the relaxation's rounding, with a per-item time limit; ``proved`` says whether the
  solver proved optimality, ``status`` whether the givens contradict the rules.
  ``solver='rc2'`` solves the same problem as weighted partial MaxSAT with python-sat's
  RC2 (core-guided; weights scaled to integers, see :func:`_rc2_formula`; no
  warm start, and a time limit reached leaves the relaxation's rounding).
* ``'decimate'`` (no external solver): fixes the most confident unknown to true, propagates
  the rules, solves the relaxation again with our kernels with everything fixed so far
  clamped, and backtracks (trying false) when propagation meets a contradiction; it stops
  when the relaxation's rounding satisfies every rule or everything is fixed.

Every result is checked against the extracted rules (``consistent``); puzzle code checks it
against the puzzle's own rules too.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from .rules import Problem, Rules, RulesError, extract

__all__ = ["Constraints", "Decoded", "DecodeError", "METHODS", "SOLVERS", "decode", "extract_constraints",
           "require_solver"]

METHODS = ("relaxation", "exact", "decimate")
#: Exact solvers of method='exact': OR-Tools CP-SAT (the default) and python-sat's RC2 (MaxSAT).
SOLVERS = ("cpsat", "rc2")
#: Install hints of the optional solvers used by method='exact'.
ORTOOLS_HINT = "method='exact' needs OR-Tools: pip install ortools (or pip install 'symsatnet[decode]')"
PYSAT_HINT = "method='exact', solver='rc2' needs python-sat: pip install python-sat (or pip install 'symsatnet[sat]')"


class DecodeError(ValueError):
    """A decode request that cannot be carried out (bad input, missing solver)."""


# ---------------------------------------------------------------------------- constraints


@dataclass(frozen=True)
class Constraints:
    """Logical rules over the n problem variables.

    Attributes:
        n: number of problem variables.
        at_most_one: (P, 2) int pairs (i < j), never both true.
        exactly_one: groups (int arrays), exactly one true in each.
        strength: the relative pair weight above which a penalty became a candidate.
        labels: how many training labels checked the rules (0: none).
        refuted: candidate pairs dropped because some label has both true.
        conditional: rules ``(i, group)``: if variable i is true, exactly one of ``group`` is
            (read off rewards rather than penalties, e.g. by
            ``puzzles.sudoku.relations.reward_rules``). Empty by default.
    """

    n: int
    at_most_one: np.ndarray
    exactly_one: tuple[np.ndarray, ...]
    strength: float
    labels: int
    refuted: int
    conditional: tuple[tuple[int, np.ndarray], ...] = ()

    def conditional_incidence(self) -> tuple[np.ndarray, np.ndarray]:
        """(antecedents (Q,), membership (Q, n) bool) of the conditional rules."""
        antecedents = np.array([i for i, _ in self.conditional], dtype=np.int64)
        matrix = np.zeros((len(self.conditional), self.n), dtype=bool)
        for row, (_, group) in enumerate(self.conditional):
            matrix[row, group] = True
        return antecedents, matrix

    def adjacency(self) -> np.ndarray:
        """(n, n) bool, True where two variables may not both be true (groups included)."""
        matrix = np.zeros((self.n, self.n), dtype=bool)
        if len(self.at_most_one):
            i, j = self.at_most_one[:, 0], self.at_most_one[:, 1]
            matrix[i, j] = matrix[j, i] = True
        for group in self.exactly_one:
            matrix[np.ix_(group, group)] = True
        np.fill_diagonal(matrix, False)
        return matrix

    @functools.cached_property
    def _loose_pairs(self) -> np.ndarray:
        return self._find_loose_pairs()

    def loose_pairs(self) -> np.ndarray:
        """The at-most-one pairs that no exactly-one group already contains."""
        return self._loose_pairs

    def _find_loose_pairs(self) -> np.ndarray:
        """The at-most-one pairs that no exactly-one group already contains."""
        if not self.exactly_one:
            return self.at_most_one
        group_of = np.full((len(self.exactly_one), self.n), False)
        for row, group in enumerate(self.exactly_one):
            group_of[row, group] = True
        i, j = self.at_most_one[:, 0], self.at_most_one[:, 1]
        covered = (group_of[:, i] & group_of[:, j]).any(axis=0) if len(i) else np.zeros(0, dtype=bool)
        return self.at_most_one[~covered]

    def incidence(self) -> np.ndarray:
        """(groups, n) bool membership of the exactly-one groups."""
        matrix = np.zeros((len(self.exactly_one), self.n), dtype=bool)
        for row, group in enumerate(self.exactly_one):
            matrix[row, group] = True
        return matrix

    def violations(self, x: np.ndarray) -> np.ndarray:
        """Number of broken rules of each 0/1 assignment, shape (...,) for x of shape (..., n)."""
        x = np.asarray(x) > 0.5
        broken = np.zeros(x.shape[:-1], dtype=np.int64)
        if len(self.at_most_one):
            broken += (x[..., self.at_most_one[:, 0]] & x[..., self.at_most_one[:, 1]]).sum(axis=-1)
        if self.exactly_one:
            counts = x.astype(np.int64) @ self.incidence().T.astype(np.int64)
            broken += (counts != 1).sum(axis=-1)
        if self.conditional:
            antecedents, members = self.conditional_incidence()
            counts = x.astype(np.int64) @ members.T.astype(np.int64)
            broken += (x[..., antecedents] & (counts != 1)).sum(axis=-1)
        return broken

    def describe(self) -> str:
        sizes = sorted({len(group) for group in self.exactly_one})
        checked = f"checked on {self.labels} labels, {self.refuted} candidate pairs refuted" if self.labels else \
            "not checked on labels"
        conditional = f", {len(self.conditional)} conditional exactly-one rules" if self.conditional else ""
        return (f"{len(self.at_most_one)} at-most-one pairs, {len(self.exactly_one)} exactly-one groups "
                f"(sizes {sizes}){conditional}; {checked}")


def extract_constraints(
    layer_or_rules,
    solutions: Optional[np.ndarray] = None,
    strength: float = 0.1,
    max_groups: int = 100_000,
) -> Constraints:
    """Read the logical rules (:class:`Constraints`) off a layer's energy.

    Args:
        layer_or_rules: a layer (see :func:`symsatnet.rules.extract`) or its :class:`Rules`.
        solutions: optional (L, n) 0/1 training labels. Candidates that some label breaks are
            dropped, and the exactly-one groups are the cliques every label fills once.
            Without labels there are no exactly-one groups.
        strength: a pair is a candidate when ``b_ij >= strength * max b`` (b > 0: a penalty).
        max_groups: refuse a candidate graph with more maximal cliques than this.
    """
    rules = layer_or_rules if isinstance(layer_or_rules, Rules) else extract(layer_or_rules)
    if not 0 < strength <= 1:
        raise DecodeError(f"strength must lie in (0, 1], got {strength!r}")
    n = rules.n
    pairs = np.triu(rules.pairs[:n, :n], 1)
    largest = float(pairs.max()) if pairs.size else 0.0
    if largest <= 0:
        raise DecodeError("the layer's energy has no penalty between problem variables: there are no rules to read")
    candidates = np.argwhere(pairs >= strength * largest)
    labels, refuted, groups = 0, 0, ()
    if solutions is not None:
        x = _as_labels(solutions, n)
        labels = len(x)
        together = x.T @ x  # float32 counts of labels with both true
        both = together[candidates[:, 0], candidates[:, 1]] > 0
        refuted = int(both.sum())
        candidates = candidates[~both]
        groups = _exactly_one_groups(n, candidates, x, max_groups)
    return Constraints(n, candidates.astype(np.int64), groups, float(strength), labels, refuted)


def _as_labels(solutions, n: int) -> np.ndarray:
    x = np.asarray(solutions.detach().cpu().numpy() if isinstance(solutions, torch.Tensor) else solutions)
    if x.ndim != 2 or x.shape[1] != n:
        raise DecodeError(f"solutions must have shape (count, {n}), got {x.shape}")
    if not np.isin(x, (0, 1)).all():
        raise DecodeError("solutions must be 0/1 labels")
    if len(x) == 0:
        raise DecodeError("solutions is empty: give at least one label or None")
    return x.astype(np.float32)


def _exactly_one_groups(n: int, pairs: np.ndarray, x: np.ndarray, max_groups: int) -> tuple[np.ndarray, ...]:
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(pairs.tolist())
    groups = []
    for count, clique in enumerate(nx.find_cliques(graph)):
        if count >= max_groups:
            raise DecodeError(f"the at-most-one pairs form more than {max_groups} cliques; raise strength "
                              f"(now a fraction of the largest penalty) to keep only the strong rules")
        if len(clique) < 2:
            continue
        members = np.array(sorted(clique), dtype=np.int64)
        if (x[:, members].sum(axis=1) == 1).all():
            groups.append(members)
    groups.sort(key=lambda group: group.tolist())
    return tuple(groups)


# ------------------------------------------------------------------------------- decoding


@dataclass
class Decoded:
    """What :func:`decode` returns, one row per item.

    Attributes:
        x: (B, n) int8 0/1 answers.
        consistent: (B,) bool, the answer breaks none of the extracted rules.
        proved: (B,) bool, 'exact' only: the solver proved the answer optimal.
        status: per item 'optimal', 'feasible' (time limit, best found), 'infeasible' (the
            givens contradict the rules), 'unknown' (time limit, nothing found: the
            relaxation's rounding is returned), 'solved' / 'exhausted' (decimate: search
            finished / node budget spent) or 'relaxation'.
        energy: (B,) the layer's energy of each answer (auxiliaries set by the relaxation).
        seconds: (B,) 'exact': solve time per item plus its share of the relaxation;
            'decimate': time from the start of the search until the item finished (items
            are searched together); 'relaxation': the batch time divided by B.
        nodes: (B,) decisions made ('decimate'), else 0.
    """

    x: np.ndarray
    consistent: np.ndarray
    proved: np.ndarray
    status: list[str]
    energy: np.ndarray
    seconds: np.ndarray
    nodes: np.ndarray


def decode(
    layer: torch.nn.Module,
    z: torch.Tensor,
    is_input: torch.Tensor,
    method: str = "exact",
    *,
    solver: str = "cpsat",
    constraints: Optional[Constraints] = None,
    solutions: Optional[np.ndarray] = None,
    unary: Optional[torch.Tensor] = None,
    soft_threshold: float = 1.0,
    time_limit: float = 10.0,
    processes: int = 1,
    max_nodes: int = 2000,
    batch: int = 100,
    progress: bool = False,
) -> Decoded:
    """0/1 answers for the unknown entries of z under the layer's rules.

    Args:
        layer: a trained ``SATNet``, ``CSATNet`` or ``SymSATNet`` (anything with ``matrix()``).
        z: (B, n) values; given entries are rounded at 0.5.
        is_input: (B, n) mask of given entries.
        method: ``'exact'``, ``'decimate'`` or ``'relaxation'`` (see the module docstring).
        solver: the exact solver, ``'cpsat'`` (OR-Tools CP-SAT) or ``'rc2'`` (python-sat's
            RC2); both get the same rules and objective. Read by 'exact' only.
        constraints: the rules (:func:`extract_constraints`); built from ``solutions`` if None.
        solutions: training labels (L, n) to check the rules on when ``constraints`` is None.
        unary: optional (B, n) extra cost of setting each variable true (soft evidence).
        soft_threshold: 'exact' keeps in its objective the non-rule pair terms with
            ``|b| >= soft_threshold * max |b|`` (1.0: linear terms only, the fast default).
        time_limit: seconds per item for the solver ('exact').
        processes: worker processes for 'exact' (items are independent).
        max_nodes: decision budget per item ('decimate').
        batch: items per relaxation call.
        progress: show a progress bar (tqdm).
    """
    if method not in METHODS:
        raise DecodeError(f"method must be one of {METHODS}, got {method!r}")
    z, is_input = _check_inputs(layer, z, is_input)
    if unary is not None:
        unary = torch.as_tensor(unary, dtype=torch.float64)
        if unary.shape != z.shape or not torch.isfinite(unary[~is_input]).all():
            raise DecodeError(f"unary must be a finite tensor of shape {tuple(z.shape)} on the unknown entries")
    if solver not in SOLVERS:
        raise DecodeError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if method == "exact":
        require_solver(solver)
    rules = extract(layer)
    if method != "relaxation" and constraints is None:
        constraints = extract_constraints(rules, solutions)
    if constraints is not None and constraints.n != layer.n:
        raise DecodeError(f"the constraints are for n = {constraints.n} variables, the layer has {layer.n}")
    started = time.perf_counter()
    relaxed, aux_values = _relax(layer, z, is_input, batch)
    relax_seconds = (time.perf_counter() - started) / max(len(z), 1)
    rounded = (relaxed > 0.5).astype(np.int8)
    given = is_input.numpy()
    values = (z.numpy() >= 0.5).astype(np.int8)
    rounded[given] = values[given]
    count = len(z)
    nodes = np.zeros(count, dtype=np.int64)
    if method == "relaxation":
        x, proved, status = rounded, np.zeros(count, dtype=bool), ["relaxation"] * count
        seconds = np.full(count, relax_seconds)
    elif method == "exact":
        x, proved, status, seconds = _decode_exact(rules, constraints, values, given, rounded, unary,
                                                   soft_threshold, time_limit, processes, progress, solver)
        seconds = seconds + relax_seconds
    else:
        x, status, seconds, nodes = _decimate(layer, constraints, values, given, relaxed, max_nodes, batch, progress)
        proved = np.zeros(count, dtype=bool)
    consistent = constraints.violations(x) == 0 if constraints is not None else np.zeros(count, dtype=bool)
    full = np.concatenate([x.astype(np.float64), aux_values], axis=1)
    energy = rules.energy(full)
    if unary is not None:
        energy = energy + (unary.numpy() * np.where(given, 0, x)).sum(axis=1)
    return Decoded(x.astype(np.int8), consistent, proved, status, energy, seconds, nodes)


def _check_inputs(layer, z, is_input):
    n = getattr(layer, "n", None)
    if n is None or not callable(getattr(layer, "matrix", None)):
        raise DecodeError(f"cannot decode a {type(layer).__name__}: a SATNet, CSATNet or SymSATNet layer is needed")
    if not isinstance(z, torch.Tensor) or not isinstance(is_input, torch.Tensor):
        raise DecodeError("z and is_input must be torch.Tensors")
    if z.dim() != 2 or z.shape[1] != n or is_input.shape != z.shape:
        raise DecodeError(f"z and is_input must have shape (batch, {n}), got {tuple(z.shape)} and "
                          f"{tuple(is_input.shape)}")
    if is_input.dtype.is_floating_point:
        raise DecodeError("is_input must be a bool or integer mask")
    is_input = is_input.detach().cpu() != 0
    z = z.detach().cpu().to(torch.float64)
    if not torch.isfinite(z[is_input]).all():
        raise DecodeError("a given entry of z is NaN or infinite")
    return z, is_input


def _relax(layer, z: torch.Tensor, is_input: torch.Tensor, batch: int):
    """The layer's relaxed outputs (B, n) and the auxiliaries' rounded values (B, aux)."""
    parameter = next(layer.parameters())
    dtype, device = parameter.dtype, parameter.device
    outputs, aux = [], []
    aux_count = int(getattr(layer, "aux", 0))
    with torch.no_grad():
        for start in range(0, len(z), batch):
            part = z[start:start + batch].nan_to_num(0.5).clamp(0, 1).to(device=device, dtype=dtype)
            mask = is_input[start:start + batch].to(device)
            outputs.append(layer(part, mask).detach().cpu().double().numpy())
            info = getattr(layer, "last_info", None)
            if aux_count and info is not None:
                V = info.V.detach().cpu().double()
                truth = V[:, :1, :]
                aux.append(((V[:, 1 + layer.n:, :] * truth).sum(-1) > 0).numpy().astype(np.float64))
            else:
                aux.append(np.zeros((len(part), aux_count)))
    if not outputs:
        return np.zeros((0, layer.n)), np.zeros((0, aux_count))
    return np.concatenate(outputs), np.concatenate(aux)


def require_solver(solver: str) -> None:
    """Raise :class:`DecodeError` with the install hint if ``solver`` ('cpsat' or 'rc2')
    cannot be imported (both are optional extras)."""
    modules, hint = {"cpsat": (("ortools.sat.python.cp_model",), ORTOOLS_HINT),
                     "rc2": (("pysat.examples.rc2", "pysat.formula"), PYSAT_HINT)}[solver]
    try:
        for module in modules:
            __import__(module)
    except ImportError:
        raise DecodeError(hint) from None


def _progress(iterable, total: int, enabled: bool, what: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=what, unit="item")


# ---------------------------------------------------------------------- exact (CP-SAT, RC2)

# Set once per worker process, so the (n, n) tables travel once, not per item.
_SHARED: dict = {}


def _init_exact(rules: Rules, constraints: Constraints, soft_threshold: float, time_limit: float,
                solver: str = "cpsat") -> None:
    _SHARED.update(rules=rules, constraints=constraints, soft_threshold=soft_threshold, time_limit=time_limit,
                   solver=solver)


def _decode_exact(rules, constraints, values, given, rounded, unary, soft_threshold, time_limit, processes, progress,
                  solver="cpsat"):
    if not (time_limit > 0):
        raise DecodeError(f"time_limit must be > 0 seconds, got {time_limit!r}")
    if not 0 < soft_threshold <= 1:
        raise DecodeError(f"soft_threshold must lie in (0, 1], got {soft_threshold!r}")
    count = len(values)
    jobs = [(values[b], given[b], rounded[b], None if unary is None else unary[b].numpy()) for b in range(count)]
    if processes is None or processes < 1:
        raise DecodeError(f"processes must be >= 1, got {processes!r}")
    if processes == 1 or count <= 1:
        _init_exact(rules, constraints, soft_threshold, time_limit, solver)
        results = [_solve_item(job) for job in _progress(jobs, count, progress, "exact decoding")]
    else:
        with ProcessPoolExecutor(processes, initializer=_init_exact,
                                 initargs=(rules, constraints, soft_threshold, time_limit, solver)) as pool:
            results = list(_progress(pool.map(_solve_item, jobs, chunksize=8), count, progress, "exact decoding"))
    x = np.stack([result[0] for result in results]) if results else np.zeros((0, rules.n), dtype=np.int8)
    proved = np.array([result[1] for result in results], dtype=bool)
    status = [result[2] for result in results]
    seconds = np.array([result[3] for result in results], dtype=np.float64)
    return x, proved, status, seconds


@dataclass
class _ItemModel:
    """One item's exact problem over its free problem variables, solver-neutral.

    ``records`` are the hard rules in the order they are read off the constraints, each one
    of ``("exactly_one", members)``, ``("zero", a)`` (x_a = 0), ``("not_both", a, b)`` or
    ``("sum", members, total, enforce)`` (sum = total, 0 or 1, only where x_enforce is true
    when ``enforce`` is not None); indices are positions in ``free``. The objective is
    ``linear @ y + sum(weight * y_a * y_b for a, b, weight in pair_terms)``.
    """

    free: np.ndarray
    contradiction: bool
    records: list
    linear: np.ndarray
    pair_terms: list


def _item_model(values, given, unary) -> _ItemModel:
    """The hard rules and the objective that both exact solvers get for one item."""
    rules, constraints = _SHARED["rules"], _SHARED["constraints"]
    n = rules.n
    fixed_true = np.zeros(n, dtype=bool)
    fixed_true[given] = values[given] > 0
    free = np.flatnonzero(~given)  # auxiliaries leave the objective with their pairs
    position = np.full(n, -1)
    position[free] = np.arange(len(free))
    records: list = []
    contradiction = False
    for group in constraints.exactly_one:
        ones = int(fixed_true[group].sum())
        members = [int(position[i]) for i in group.tolist() if position[i] >= 0]
        if ones > 1 or (ones == 0 and not members):
            contradiction = True
        elif ones == 1:
            records += [("zero", member) for member in members]
        else:
            records.append(("exactly_one", members))
    for i, j in constraints.loose_pairs().tolist():
        a, b = int(position[i]), int(position[j])
        if fixed_true[i] and fixed_true[j]:
            contradiction = True
        elif fixed_true[i] and b >= 0:
            records.append(("zero", b))
        elif fixed_true[j] and a >= 0:
            records.append(("zero", a))
        elif a >= 0 and b >= 0:
            records.append(("not_both", a, b))
    for i, group in constraints.conditional:
        ones = int(fixed_true[group].sum())
        members = [int(position[j]) for j in group.tolist() if position[j] >= 0]
        if position[i] < 0:  # a given antecedent: the rule holds or not, whatever the solver does
            if fixed_true[i]:
                if ones > 1 or (ones == 0 and not members):
                    contradiction = True
                elif members:
                    records.append(("sum", members, 1 - ones, None))
        elif ones > 1 or (ones == 0 and not members):
            records.append(("zero", int(position[i])))
        elif members:
            records.append(("sum", members, 1 - ones, int(position[i])))
    # The energy's linear terms with the given entries folded in: a_i + sum_{given true j} b_ij.
    linear = rules.linear[free] + rules.pairs[np.ix_(free, np.flatnonzero(fixed_true))].sum(axis=1)
    if unary is not None:
        linear = linear + unary[free]
    pair_terms = []
    if not contradiction and _SHARED["soft_threshold"] < 1:
        problem = rules.clamp(values.astype(np.float64), given, unary)
        index_of_free = np.searchsorted(problem.free, free)
        pair_terms = _soft_pair_terms(problem, index_of_free, constraints, free)
    return _ItemModel(free, contradiction, records, linear, pair_terms)


def _solve_item(job):
    """One item with the chosen exact solver: (x, proved, status, seconds)."""
    values, given, hint, unary = job
    started = time.perf_counter()
    with _cyclic_gc_paused():
        item = _item_model(values, given, unary)
        if item.contradiction:
            return hint.astype(np.int8), False, "infeasible", time.perf_counter() - started
        solve = _solve_cpsat if _SHARED["solver"] == "cpsat" else _solve_rc2
        free_values, proved, status = solve(item, hint)
    seconds = time.perf_counter() - started
    if free_values is None:
        return hint.astype(np.int8), False, status, seconds
    x = np.where(given, values, 0).astype(np.int8)
    x[item.free] = free_values
    return x, proved, status, seconds


def _solve_cpsat(item: _ItemModel, hint):
    """CP-SAT on one item: (free values or None, proved, status)."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    variables = [model.new_bool_var(f"x{i}") for i in item.free.tolist()]
    for record in item.records:
        kind = record[0]
        if kind == "exactly_one":
            model.add_exactly_one([variables[a] for a in record[1]])
        elif kind == "zero":
            model.add(variables[record[1]] == 0)
        elif kind == "not_both":
            model.add_bool_or([variables[record[1]].Not(), variables[record[2]].Not()])
        else:
            _, members, total, enforce = record
            constraint = model.add(sum(variables[a] for a in members) == total)
            if enforce is not None:
                constraint.only_enforce_if(variables[enforce])
    objective = [float(weight) * variable for weight, variable in zip(item.linear.tolist(), variables)]
    for a, b, weight in item.pair_terms:  # a product variable each
        product = model.new_bool_var("")
        if weight > 0:
            model.add_bool_or([variables[a].Not(), variables[b].Not(), product])
        else:
            model.add_implication(product, variables[a])
            model.add_implication(product, variables[b])
        objective.append(weight * product)
    model.minimize(sum(objective))
    for i, variable in zip(item.free.tolist(), variables):
        model.add_hint(variable, int(hint[i]))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = float(_SHARED["time_limit"])
    status = solver.solve(model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        found = np.array([solver.value(variable) for variable in variables], dtype=np.int8)
        return found, status == cp_model.OPTIMAL, "optimal" if status == cp_model.OPTIMAL else "feasible"
    return None, False, "infeasible" if status == cp_model.INFEASIBLE else "unknown"


#: Integer resolution of the weights handed to RC2: the largest |weight| of an item maps to
#: this many units (see :func:`_rc2_formula`).
RC2_RESOLUTION = 10**6


def _rc2_formula(item: _ItemModel):
    """The item as weighted partial MaxSAT: (WCNF, scale).

    Free position a is variable a + 1. Hard clauses: an exactly-one group is one clause
    "at least one" plus "not both" for each pair; ``sum`` records likewise with the
    literal ``-x_enforce`` added to each clause (x_enforce -> exactly one / none). Soft
    clauses carry the objective: a cost ``w y_a`` (w > 0) is the clause ``-y_a`` of weight
    w, a reward (w < 0) the clause ``y_a`` of weight |w| (the constant w is dropped: it
    does not move the optimum); a pair penalty is ``-y_a -y_b``, a pair reward a product
    variable p with hard p -> y_a, p -> y_b and the soft clause ``p``. MaxSAT weights are
    integers: every weight is multiplied by ``scale = RC2_RESOLUTION / max |weight|`` and
    rounded, so each term is off by at most 0.5 / scale and RC2's optimum is optimal for
    the true weights up to (number of objective terms) / scale.
    """
    from pysat.formula import WCNF

    hard: list[list[int]] = []  # plain lists: WCNF.append's per-clause bookkeeping is slower
    for record in item.records:
        kind = record[0]
        if kind == "zero":
            hard.append([-(record[1] + 1)])
        elif kind == "not_both":
            hard.append([-(record[1] + 1), -(record[2] + 1)])
        else:
            members, total = record[1], 1
            condition: list[int] = []
            if kind == "sum":
                _, members, total, enforce = record
                condition = [] if enforce is None else [-(enforce + 1)]
            literals = [a + 1 for a in members]
            if total == 1:
                hard.append(condition + literals)
                hard += [condition + [-p, -q] for p, q in itertools.combinations(literals, 2)]
            else:
                hard += [condition + [-p] for p in literals]
    weights = [abs(float(weight)) for weight in item.linear.tolist()] + [abs(w) for _, _, w in item.pair_terms]
    largest = max(weights, default=0.0)
    scale = RC2_RESOLUTION / largest if largest > 0 else 1.0
    soft: list[list[int]] = []
    soft_weights: list[int] = []
    for a, weight in enumerate(item.linear.tolist()):
        units = int(round(weight * scale))
        if units:
            soft.append([-(a + 1)] if units > 0 else [a + 1])
            soft_weights.append(abs(units))
    top = len(item.free)
    for a, b, weight in item.pair_terms:
        units = int(round(weight * scale))
        if units > 0:
            soft.append([-(a + 1), -(b + 1)])
            soft_weights.append(units)
        elif units < 0:
            top += 1
            hard += [[-top, a + 1], [-top, b + 1]]
            soft.append([top])
            soft_weights.append(-units)
    formula = WCNF()
    formula.hard, formula.soft, formula.wght, formula.nv = hard, soft, soft_weights, top
    formula.topw = sum(soft_weights) + 1
    return formula, scale


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Pause Python's cyclic garbage collector (restored on exit).

    One item's model is built from some 10^4 small Python objects (RC2's clauses above
    all); allocating them now and then triggers a full collection that walks every object
    of the process (torch's included) and lands on one item: 9x9 items of 100-160 ms
    instead of ~13 ms with RC2 here, and a mean per item some 20% higher. The models hold
    no reference cycles that need collecting before the item is done.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _solve_rc2(item: _ItemModel, hint):
    """python-sat's RC2 on one item: (free values or None, proved, status).

    Plain RC2 with Glucose 3 (its default oracle): on 9x9 Sudoku it was 3-4x faster than
    RC2Stratified and 1.3x faster than with AtMost1 detection, core exhaustion and
    minimisation switched on. RC2 is core-guided: it meets an assignment only when it has
    proved it optimal, so a time limit reached leaves nothing better than the relaxation's
    rounding ('unknown'); it takes no warm start.
    """
    from pysat.examples.rc2 import RC2

    formula, _ = _rc2_formula(item)
    with RC2(formula, solver="g3") as solver:
        timer = threading.Timer(float(_SHARED["time_limit"]), solver.interrupt)
        timer.start()
        try:
            model = solver.compute(expect_interrupt=True)
        finally:
            timer.cancel()
        interrupted = solver.interrupted
    if model is None:
        return None, False, "unknown" if interrupted else "infeasible"
    truth = np.zeros(len(item.free) + 1, dtype=bool)
    chosen = [literal for literal in model if 0 < literal <= len(item.free)]
    truth[chosen] = True
    return truth[1:].astype(np.int8), True, "optimal"


def _soft_pair_terms(problem: Problem, index_of_free, constraints: Constraints, free) -> list:
    """(a, b, weight) of the strong non-rule pairs, a and b positions in ``free``."""
    threshold = _SHARED["soft_threshold"]
    pairs = problem.pairs[np.ix_(index_of_free, index_of_free)]
    largest = float(np.abs(pairs).max()) if pairs.size else 0.0
    if threshold >= 1 or largest == 0:
        return []
    upper = np.triu(pairs, 1)
    forbidden = constraints.adjacency()[np.ix_(free, free)]
    rows, columns = np.nonzero((np.abs(upper) >= threshold * largest) & ~forbidden)
    return [(a, b, float(upper[a, b])) for a, b in zip(rows.tolist(), columns.tolist())]


# ------------------------------------------------------------------------ decimate (no solver)


class _Propagator:
    """Unit propagation of the rules on vectors with -1 (unknown), 0 and 1."""

    def __init__(self, constraints: Constraints):
        self.adjacency = constraints.adjacency().astype(np.float32)
        self.incidence = constraints.incidence().astype(np.float32)
        self.antecedents, members = constraints.conditional_incidence()
        self.members = members.astype(np.float32)

    def _conditional(self, state: np.ndarray) -> Optional[bool]:
        """One round on the conditional rules: False on a contradiction, True if it changed
        something, None if not."""
        if not len(self.antecedents):
            return None
        ones = self.members @ (state == 1).astype(np.float32)
        unknown = self.members @ (state == -1).astype(np.float32)
        impossible = (ones > 1) | ((ones == 0) & (unknown == 0))
        antecedent = state[self.antecedents]
        if (impossible & (antecedent == 1)).any():
            return False
        changed = False
        ruled_out = self.antecedents[impossible & (antecedent == -1)]
        if len(ruled_out):
            state[ruled_out] = 0
            changed = True
        forced = (antecedent == 1) & (ones == 0) & (unknown == 1)
        if forced.any():
            state[(self.members[forced].sum(axis=0) > 0) & (state == -1)] = 1
            changed = True
        blocked = (antecedent == 1) & (ones == 1) & (unknown > 0)
        if blocked.any():
            state[(self.members[blocked].sum(axis=0) > 0) & (state == -1)] = 0
            changed = True
        return True if changed else None

    def __call__(self, state: np.ndarray) -> bool:
        """Propagate in place; False on a contradiction."""
        while True:
            ones = (state == 1).astype(np.float32)
            if ones @ self.adjacency @ ones > 0:
                return False
            blocked = (self.adjacency @ ones > 0) & (state == -1)
            state[blocked] = 0
            conditional = self._conditional(state)
            if conditional is False:
                return False
            if conditional:
                continue
            if not len(self.incidence):
                return True
            group_ones = self.incidence @ (state == 1).astype(np.float32)
            group_unknown = self.incidence @ (state == -1).astype(np.float32)
            if ((group_ones == 0) & (group_unknown == 0)).any() or (group_ones > 1).any():
                return False
            forced = (group_ones == 0) & (group_unknown == 1)
            if not forced.any():
                return True
            members = (self.incidence[forced].sum(axis=0) > 0) & (state == -1)
            state[members] = 1


def _decimate(layer, constraints, values, given, relaxed, max_nodes, batch, progress):
    if constraints is None:
        raise DecodeError("method='decimate' needs rules: give constraints or training solutions")
    if max_nodes < 1:
        raise DecodeError(f"max_nodes must be >= 1, got {max_nodes!r}")
    propagate = _Propagator(constraints)
    count, n = values.shape
    started = time.perf_counter()
    states = np.where(given, values, -1).astype(np.int8)
    stacks: list[list] = [[] for _ in range(count)]
    status = ["" for _ in range(count)]
    nodes = np.zeros(count, dtype=np.int64)
    finish_time = np.zeros(count)
    answers = (relaxed > 0.5).astype(np.int8)
    for b in range(count):
        if not propagate(states[b]):
            status[b] = "infeasible"
    current = relaxed.copy()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count, desc="decimating", unit="item")
    while True:
        active = [b for b in range(count) if not status[b]]
        for b in active:
            state = states[b]
            guess = np.where(state >= 0, state, current[b] > 0.5).astype(np.int8)
            if constraints.violations(guess) == 0 or (state >= 0).all():
                answers[b] = guess
                status[b] = "solved" if constraints.violations(guess) == 0 else "exhausted"
            elif nodes[b] >= max_nodes:
                answers[b] = guess
                status[b] = "exhausted"
            else:
                _decide(b, states, stacks, current[b], propagate, nodes, status)
            if status[b]:
                finish_time[b] = time.perf_counter() - started
                if bar is not None:
                    bar.update(1)
        active = [b for b in range(count) if not status[b]]
        if not active:
            break
        # Solve the relaxation again with everything fixed so far clamped.
        index = np.array(active)
        fixed = torch.from_numpy(states[index] >= 0)
        z = torch.from_numpy(np.where(states[index] >= 0, states[index], 0.5).astype(np.float64))
        current[index], _ = _relax(layer, z, fixed, batch)
    if bar is not None:
        bar.close()
    for b in range(count):
        if status[b] == "infeasible":
            answers[b] = np.where(given[b], values[b], answers[b])
    return answers, status, finish_time, nodes


def _decide(b, states, stacks, confidence, propagate, nodes, status):
    """One decision (most confident unknown set true), backtracking on contradictions."""
    state = states[b]
    unknown = np.flatnonzero(state == -1)
    choice = int(unknown[np.argmax(confidence[unknown])])
    stacks[b].append((state.copy(), choice))
    nodes[b] += 1
    trial = state.copy()
    trial[choice] = 1
    if propagate(trial):
        states[b] = trial
        return
    # Undo decisions until one whose alternative (false) propagates cleanly.
    while stacks[b]:
        saved, variable = stacks[b].pop()
        trial = saved.copy()
        trial[variable] = 0
        if propagate(trial):
            states[b] = trial
            return
    status[b] = "infeasible"
