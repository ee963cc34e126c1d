"""Rule extraction (symsatnet.rules) and decoding (symsatnet.decode): energies, safe
hardening, exports, planted rules, and a 4x4 Sudoku model decoded and checked by the rules."""

from __future__ import annotations

import builtins
import itertools
import json

import numpy as np
import pytest
import torch

import symsatnet
from symsatnet import decode as decoding
from symsatnet import rules as rules_module
from symsatnet.decode import Constraints, DecodeError, decode, extract_constraints
from symsatnet.rules import RulesError, extract


def relaxed_objective(C: torch.Tensor, signs: np.ndarray) -> np.ndarray:
    """sum_ij C_ij <v_i, v_j> at v_i = s_i v_0 (s_0 = +1), through explicit vectors."""
    v0 = torch.randn(5, dtype=torch.float64)
    v0 = v0 / v0.norm()
    s = torch.cat([torch.ones(len(signs), 1, dtype=torch.float64), torch.from_numpy(signs)], dim=1)
    V = s[:, :, None] * v0  # (B, N, k)
    return torch.einsum("ij,bik,bjk->b", C.double(), V, V).numpy()


def layers():
    torch.manual_seed(0)
    return [
        layer.double() for layer in (
            symsatnet.CSATNet(6, aux=2),
            symsatnet.SymSATNet(8, symsatnet.Symmetric(8), aux=1, truth="tied"),
            symsatnet.SymSATNet(9, symsatnet.Product(symsatnet.Symmetric(3), symsatnet.Cyclic(3))),
            symsatnet.SATNet(5, 7, aux=3),
        )
    ]


@pytest.mark.parametrize("layer", layers(), ids=lambda layer: type(layer).__name__)
def test_energy_equals_the_relaxed_objective_at_signed_truth_vectors(layer):
    rules = extract(layer)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, size=(16, rules.size)).astype(np.float64)
    if isinstance(layer, symsatnet.SATNet):
        # Through S itself, not through matrix(): sum_ij C_ij <v_i, v_j> = |S^T V|^2.
        S = layer.S.detach().double()
        signs = np.concatenate([np.ones((16, 1)), 2 * x - 1], axis=1)
        expected = (torch.from_numpy(signs) @ S).pow(2).sum(dim=1).numpy()
    else:
        expected = relaxed_objective(layer.matrix().detach(), 2 * x - 1)
    np.testing.assert_allclose(rules.energy(x), expected, rtol=1e-10, atol=1e-10)


def test_clamped_problem_keeps_the_energy_of_every_completion():
    rules = extract(symsatnet.CSATNet(10, aux=2))
    rng = np.random.default_rng(2)
    values, given = rng.integers(0, 2, 10).astype(float), rng.random(10) < 0.4
    unary = rng.normal(size=10)
    problem = rules.clamp(values, given, unary)
    for _ in range(20):
        y = rng.integers(0, 2, problem.num_free).astype(float)
        x = problem.full(y)
        assert x[:10][given].tolist() == values[given].tolist()
        extra = (unary * np.where(given, 0, x[:10])).sum()
        assert problem.energy(y) == pytest.approx(rules.energy(x) + extra, abs=1e-10)


def brute_force_minimum(problem, allowed=None):
    best = None
    for bits in itertools.product((0, 1), repeat=problem.num_free):
        y = np.array(bits, dtype=float)
        if allowed is not None and not allowed(y):
            continue
        energy = float(problem.energy(y))
        best = energy if best is None else min(best, energy)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_hard_pairs_never_change_the_optimal_energy(seed):
    rng = np.random.default_rng(seed)
    C = rng.normal(scale=0.3, size=(10, 10))
    for i, j in ((1, 2), (3, 4), (5, 6), (7, 8)):  # strong penalties on disjoint pairs
        C[i, j] = C[j, i] = 3.0
    rules = extract(C)
    problem = rules.clamp(np.zeros(9), np.zeros(9, dtype=bool))
    hard = problem.hard_pairs()
    assert len(hard) > 0
    constrained = brute_force_minimum(problem, lambda y: not any(y[i] and y[j] for i, j in hard))
    assert constrained == pytest.approx(brute_force_minimum(problem), abs=1e-9)


def test_sparse_drops_weak_pairs_within_the_stated_bound():
    rng = np.random.default_rng(3)
    rules = extract(rng.normal(size=(12, 12)))
    problem = rules.clamp(np.zeros(11), np.zeros(11, dtype=bool))
    sparse = problem.sparse(0.5)
    assert (sparse.pairs == 0).sum() > (problem.pairs == 0).sum()
    y = rng.integers(0, 2, size=(200, 11)).astype(float)
    assert np.abs(sparse.energy(y) - problem.energy(y)).max() <= sparse.dropped + 1e-12
    assert problem.sparse(0) is problem
    with pytest.raises(RulesError, match="threshold"):
        problem.sparse(1.5)


def read_wcnf_cost(path, y):
    """Cost of an assignment (product variables set to the AND of their pair) in a WCNF file."""
    lines = path.read_text().splitlines()
    offset = scale = constant = None
    clauses = []
    for line in lines:
        if line.startswith("c scale"):
            words = line.split()
            scale, offset, constant = float(words[words.index("scale") + 1]), int(
                words[words.index("offset") + 1]), float(words[words.index("constant") + 1])
        elif not line.startswith("c"):
            head, *literals = line.split()
            clauses.append((head, [int(value) for value in literals[:-1]]))
    values = {index + 1: bool(bit) for index, bit in enumerate(y)}
    for head, literals in clauses:  # product variables: t <-> x_i AND x_j, read off their hard clauses
        if head == "h" and len(literals) == 2 and -literals[0] > len(y):
            values.setdefault(-literals[0], True)
            values[-literals[0]] &= values[literals[1]]
    cost = 0
    for head, literals in clauses:
        satisfied = any(values[abs(literal)] == (literal > 0) for literal in literals)
        if head != "h" and not satisfied:
            cost += int(head)
    return (cost + offset) / scale + constant


def test_wcnf_and_opb_exports_keep_the_energy(tmp_path):
    rng = np.random.default_rng(4)
    rules = extract(rng.normal(size=(8, 8)))
    path = rules.write_wcnf(tmp_path / "rules.wcnf")
    problem = rules.clamp(np.zeros(7), np.zeros(7, dtype=bool))
    for _ in range(10):
        y = rng.integers(0, 2, 7)
        assert read_wcnf_cost(path, y) == pytest.approx(problem.energy(y.astype(float)), abs=1e-4)
    opb = rules.write_opb(tmp_path / "rules.opb").read_text()
    assert opb.startswith("* #variable= 7") and "min:" in opb
    with pytest.raises(FileExistsError, match="force=True"):
        rules.write_opb(tmp_path / "rules.opb")
    rules.write_opb(tmp_path / "rules.opb", force=True)


# ---------------------------------------------------------------- planted rules, exact


def planted_layer(groups=3, size=3, penalty=2.0, reward=0.5):
    """C whose 0/1 energy rewards each true variable and penalises two trues in a group."""
    n = groups * size
    C = np.zeros((n + 1, n + 1))
    for g in range(groups):
        block = slice(1 + g * size, 1 + (g + 1) * size)
        C[block, block] = penalty / 8
    np.fill_diagonal(C, 0)
    # a_i = 4 C_0i - 4 sum_j C_ij: choose C_0i so that a_i = -reward.
    C[0, 1:] = C[1:, 0] = (-reward + 4 * C[1:, 1:].sum(axis=1)) / 4
    layer = symsatnet.CSATNet(n)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(C).float())
    return layer


def one_hot_labels(groups, size, count, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros((count, groups * size), dtype=np.float32)
    for row in range(count):
        for g in range(groups):
            labels[row, g * size + rng.integers(size)] = 1
    return labels


def test_constraints_of_a_planted_layer_are_its_groups():
    layer = planted_layer()
    found = extract_constraints(layer, one_hot_labels(3, 3, 50))
    assert sorted(map(list, found.exactly_one)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(found.at_most_one) == 9 and found.refuted == 0
    # A label with two trues in a group refutes that group's pairs.
    labels = one_hot_labels(3, 3, 50)
    labels[0, :3] = [1, 1, 0]
    refuted = extract_constraints(layer, labels)
    assert refuted.refuted == 1 and len(refuted.exactly_one) == 2
    assert extract_constraints(layer).exactly_one == ()
    with pytest.raises(DecodeError, match="shape"):
        extract_constraints(layer, np.zeros((3, 4)))


EXACT_AND_DECIMATE = [("exact", "cpsat"), ("exact", "rc2"), ("decimate", "cpsat")]


@pytest.mark.parametrize("method, solver", EXACT_AND_DECIMATE)
def test_decoding_a_planted_problem_reaches_the_brute_force_optimum(method, solver):
    rng = np.random.default_rng(5)
    layer = planted_layer()
    with torch.no_grad():  # unequal rewards, so the optimum is unique
        layer.weight[0, 1:] += torch.from_numpy(rng.normal(scale=0.05, size=9)).float()
        layer.weight[1:, 0] = layer.weight[0, 1:]
    constraints = extract_constraints(layer, one_hot_labels(3, 3, 50))
    rules = extract(layer)
    given = torch.zeros(4, 9, dtype=torch.bool)
    given[1, 0] = given[2, 4] = given[3, 8] = True
    z = torch.zeros(4, 9)
    z[1, 0] = z[2, 4] = z[3, 8] = 1
    result = decode(layer, z, given, method, solver=solver, constraints=constraints)
    groups = constraints.exactly_one
    for b in range(4):
        problem = rules.clamp(z[b].numpy(), given[b].numpy())

        def allowed(y, problem=problem):
            x = problem.full(y)[:9]
            return all(x[list(group)].sum() == 1 for group in groups)

        assert result.consistent[b]
        if method == "exact":  # decimate promises rules kept, not the least energy
            assert result.energy[b] == pytest.approx(brute_force_minimum(problem, allowed), abs=1e-5)
        assert (result.x[b][given[b].numpy()] == 1).all()
    if method == "exact":
        assert result.proved.all() and set(result.status) == {"optimal"}


CONDITIONAL = ((0, np.array([3])), (1, np.array([7, 8])), (4, np.array([6])))


@pytest.mark.parametrize("method, solver", EXACT_AND_DECIMATE)
def test_conditional_rules_are_kept_and_the_optimum_under_them_is_found(method, solver):
    """'if x_i then exactly one of the group': the planted energy alone would break them."""
    rng = np.random.default_rng(3)
    layer = planted_layer()
    with torch.no_grad():  # favour 0, 1 and 4 in the problem's optimum, and 5 over 3 and 6
        bias = torch.from_numpy(rng.normal(scale=0.02, size=9)).float()
        bias[[0, 1, 4]] += 0.6
        bias[[3, 6]] -= 0.3
        layer.weight[0, 1:] += bias / 4
        layer.weight[1:, 0] = layer.weight[0, 1:]
    plain = extract_constraints(layer, one_hot_labels(3, 3, 50))
    constraints = Constraints(plain.n, plain.at_most_one, plain.exactly_one, plain.strength, plain.labels,
                              plain.refuted, CONDITIONAL)
    rules = extract(layer)
    given = torch.zeros(3, 9, dtype=torch.bool)
    given[1, 0] = given[2, 1] = True
    z = torch.zeros(3, 9)
    z[1, 0] = z[2, 1] = 1
    unconstrained = decode(layer, z, given, method, solver=solver, constraints=plain)
    assert (constraints.violations(unconstrained.x) > 0).any()  # so the rules have work to do
    result = decode(layer, z, given, method, solver=solver, constraints=constraints)
    assert (constraints.violations(result.x) == 0).all() and result.consistent.all()
    if method == "exact":
        for b in range(3):
            problem = rules.clamp(z[b].numpy(), given[b].numpy())

            def allowed(y, problem=problem):
                return constraints.violations(problem.full(y)[:9]) == 0

            assert result.energy[b] == pytest.approx(brute_force_minimum(problem, allowed), abs=1e-5)
        assert result.proved.all()


def test_conditional_violations_count_only_true_antecedents():
    constraints = Constraints(9, np.zeros((0, 2), dtype=np.int64), (), 0.1, 0, 0, CONDITIONAL)
    x = np.zeros((3, 9))
    x[1, [0, 1, 7, 8]] = 1  # 0 without 3; 1 with two of 7, 8
    x[2, [0, 3, 4, 6]] = 1
    assert constraints.violations(x).tolist() == [0, 2, 0]
    assert "3 conditional" in constraints.describe()


def test_contradicting_givens_are_flagged_not_crashed():
    layer = planted_layer()
    constraints = extract_constraints(layer, one_hot_labels(3, 3, 50))
    z = torch.zeros(1, 9)
    z[0, :2] = 1
    given = torch.zeros(1, 9, dtype=torch.bool)
    given[0, :2] = True  # two trues in one exactly-one group
    for method, solver in EXACT_AND_DECIMATE:
        result = decode(layer, z, given, method, solver=solver, constraints=constraints)
        assert result.status == ["infeasible"] and not result.consistent[0] and not result.proved[0]


@pytest.mark.parametrize("solver", decoding.SOLVERS)
def test_a_contradiction_only_the_solver_finds_is_flagged(solver):
    """No rule is broken by the givens alone: x_3 = 0 rules out each of 0, 1, 2 through its
    conditional rule, and then their exactly-one group cannot hold."""
    layer = planted_layer()
    plain = extract_constraints(layer, one_hot_labels(3, 3, 50))
    constraints = Constraints(plain.n, plain.at_most_one, plain.exactly_one, plain.strength, plain.labels,
                              plain.refuted, tuple((i, np.array([3])) for i in range(3)))
    given = torch.zeros(1, 9, dtype=torch.bool)
    given[0, 3] = True
    result = decode(layer, torch.zeros(1, 9), given, "exact", solver=solver, constraints=constraints)
    assert result.status == ["infeasible"] and not result.proved[0]


def noisy_planted_layer(seed: int):
    """A planted layer with random pair terms of both signs between the groups and random
    rewards, so the objective has soft pair penalties and rewards besides the rules."""
    rng = np.random.default_rng(seed)
    layer = planted_layer()
    with torch.no_grad():
        noise = rng.normal(scale=0.02, size=(10, 10))
        noise = noise + noise.T
        noise[0] = noise[:, 0] = 0
        np.fill_diagonal(noise, 0)
        layer.weight += torch.from_numpy(noise).float()
        layer.weight[0, 1:] += torch.from_numpy(rng.normal(scale=0.05, size=9)).float()
        layer.weight[1:, 0] = layer.weight[0, 1:]
    return layer


@pytest.mark.parametrize("seed", range(4))
def test_cpsat_and_rc2_reach_the_same_brute_force_optimum_with_soft_pairs(seed):
    """Both exact solvers get the same objective: linear terms after clamping, soft pair
    penalties and rewards, unary evidence; their energies equal a brute force's minimum."""
    rng = np.random.default_rng(100 + seed)
    layer = noisy_planted_layer(seed)
    constraints = extract_constraints(layer, one_hot_labels(3, 3, 50))
    rules = extract(layer)
    off_rules = ~constraints.adjacency() & ~np.eye(9, dtype=bool)
    assert (rules.pairs[:9, :9][off_rules] > 0).any() and (rules.pairs[:9, :9][off_rules] < 0).any()
    given = torch.zeros(3, 9, dtype=torch.bool)
    given[1, 2] = given[2, 4] = given[2, 6] = True
    z = torch.zeros(3, 9)
    z[1, 2] = z[2, 4] = 1
    unary = torch.from_numpy(rng.normal(scale=0.1, size=(3, 9)))
    energies = {}
    for solver in decoding.SOLVERS:
        result = decode(layer, z, given, "exact", solver=solver, constraints=constraints, unary=unary,
                        soft_threshold=1e-9)
        assert result.proved.all() and result.consistent.all()
        energies[solver] = result.energy
    for b in range(3):
        problem = rules.clamp(z[b].numpy(), given[b].numpy(), unary[b].numpy())

        def allowed(y, problem=problem):
            return constraints.violations(problem.full(y)[:9]) == 0

        best = brute_force_minimum(problem, allowed)
        assert energies["cpsat"][b] == pytest.approx(best, abs=1e-5)
        assert energies["rc2"][b] == pytest.approx(best, abs=1e-5)


def test_rc2_formula_scales_weights_to_integers_within_the_stated_bound():
    item = decoding._ItemModel(np.arange(3), False, [("exactly_one", [0, 1, 2])],
                               np.array([0.5, -0.25, 1e-7]), [(0, 1, -0.3)])
    formula, scale = decoding._rc2_formula(item)
    assert scale == pytest.approx(decoding.RC2_RESOLUTION / 0.5)
    assert formula.hard == [[1, 2, 3], [-1, -2], [-1, -3], [-2, -3], [-4, 1], [-4, 2]]
    # 1e-7 is below half a unit (0.5 / scale = 2.5e-7): it rounds to 0 and leaves the objective.
    assert formula.soft == [[-1], [2], [4]]
    assert formula.wght == [1_000_000, 500_000, 600_000]


def test_bad_input_gets_clear_errors(monkeypatch):
    layer = planted_layer()
    z, given = torch.zeros(2, 9), torch.zeros(2, 9, dtype=torch.bool)
    with pytest.raises(DecodeError, match="method must be one of"):
        decode(layer, z, given, "greedy")
    with pytest.raises(DecodeError, match="solver must be one of"):
        decode(layer, z, given, "exact", solver="gurobi")
    with pytest.raises(DecodeError, match="shape"):
        decode(layer, torch.zeros(2, 8), torch.zeros(2, 8, dtype=torch.bool), "relaxation")
    bad = z.clone()
    bad[0, 0] = float("nan")
    given_nan = given.clone()
    given_nan[0, 0] = True
    with pytest.raises(DecodeError, match="NaN"):
        decode(layer, bad, given_nan, "relaxation")
    with pytest.raises(DecodeError, match="constraints are for n = 4"):
        decode(layer, z, given, "decimate", constraints=Constraints(4, np.zeros((0, 2), int), (), 0.1, 0, 0))
    with pytest.raises(DecodeError, match="cannot decode"):
        decode(torch.nn.Linear(2, 2), z, given, "relaxation")
    with pytest.raises(RulesError, match="not finite"):
        with torch.no_grad():
            broken = planted_layer()
            broken.weight[1, 2] = float("inf")
        extract(broken)
    real_import = builtins.__import__

    def without(package):
        def guarded_import(name, *args, **kwargs):
            if name.startswith(package):
                raise ImportError(f"no {package} here")
            return real_import(name, *args, **kwargs)

        return guarded_import

    monkeypatch.setattr(builtins, "__import__", without("ortools"))
    with pytest.raises(DecodeError, match="pip install ortools"):
        decode(layer, z, given, "exact")
    decode(layer, z, given, "exact", solver="rc2")  # RC2 does not need OR-Tools
    monkeypatch.setattr(builtins, "__import__", without("pysat"))
    with pytest.raises(DecodeError, match="pip install python-sat"):
        decode(layer, z, given, "exact", solver="rc2")


@pytest.mark.parametrize("solver", decoding.SOLVERS)
def test_a_time_limit_is_flagged(solver):
    layer = planted_layer(groups=6, size=6)
    constraints = extract_constraints(layer, one_hot_labels(6, 6, 50))
    result = decode(layer, torch.zeros(1, 36), torch.zeros(1, 36, dtype=torch.bool), "exact", solver=solver,
                    constraints=constraints, time_limit=1e-9)
    assert result.status[0] in ("feasible", "unknown", "optimal")
    assert result.proved[0] == (result.status[0] == "optimal")


def test_orbital_rules_read_a_symsatnet():
    layer = symsatnet.SymSATNet(9, symsatnet.Product(symsatnet.Symmetric(3), symsatnet.Symmetric(3)))
    table = rules_module.orbital_rules(layer, describe=lambda i, j: f"{i}-{j}")
    values = layer.orbital_values().detach().numpy()
    assert len(table) == 3  # 4 closed orbitals, one of them the diagonal
    assert [abs(rule.weight) for rule in table] == sorted((abs(rule.weight) for rule in table), reverse=True)
    for rule in table:
        assert rule.weight == pytest.approx(8 * values[rule.orbital], rel=1e-6)
        i, j = rule.example
        assert layer.space.orbital_map[i, j] == rule.orbital and rule.description == f"{i}-{j}"
    with pytest.raises(RulesError, match="SymSATNet"):
        rules_module.orbital_rules(symsatnet.CSATNet(3))


def test_worker_processes_use_the_chosen_solver():
    """Worker processes (processes=2) decode with RC2 too and agree with one process."""
    layer = noisy_planted_layer(7)
    constraints = extract_constraints(layer, one_hot_labels(3, 3, 50))
    given = torch.zeros(4, 9, dtype=torch.bool)
    given[1, 2] = given[2, 4] = given[3, 6] = True
    z = given.float()
    here = decode(layer, z, given, "exact", solver="rc2", constraints=constraints, soft_threshold=1e-9)
    workers = decode(layer, z, given, "exact", solver="rc2", constraints=constraints, soft_threshold=1e-9,
                     processes=2)
    assert (workers.x == here.x).all() and workers.proved.all() and workers.energy == pytest.approx(here.energy)


def _matrix_with_pairs(n: int, pairs: np.ndarray, rule: float, other: float) -> np.ndarray:
    """A full C (truth first) whose energy weighs the given pairs ``rule`` and every other pair ``other``."""
    weights = np.full((n, n), other)
    weights[pairs[:, 0], pairs[:, 1]] = weights[pairs[:, 1], pairs[:, 0]] = rule
    np.fill_diagonal(weights, 0)
    C = np.zeros((n + 1, n + 1))
    C[1:, 1:] = weights / 8  # b_ij = 8 C_ij
    return C


def test_separation_reads_planted_rules_and_counts_the_pairs_that_blur_them():
    from symsatnet.rules import separation

    rng = np.random.default_rng(0)
    n = 12
    upper = np.argwhere(np.triu(np.ones((n, n), dtype=bool), 1))
    planted = upper[rng.choice(len(upper), 10, replace=False)]
    result = separation(_matrix_with_pairs(n, planted, rule=1.0, other=0.2), planted)
    assert result.separated and result.rule_pairs == 10
    assert result.weakest_rule == pytest.approx(1.0) and result.strongest_other == pytest.approx(0.2)
    assert "separated" in str(result)
    C = _matrix_with_pairs(n, planted, rule=1.0, other=0.2)
    blurred = [pair for pair in upper.tolist() if pair not in planted.tolist()][:3]
    for i, j in blurred:
        C[1 + i, 1 + j] = C[1 + j, 1 + i] = 1.5 / 8
    result = separation(C, planted)
    assert not result.separated and result.others_above == 3
    assert result.weakest_rule == pytest.approx(1 / 1.5)
    # Order and duplicates of the given pairs do not matter.
    assert separation(C, np.concatenate([planted[:, ::-1], planted])) == result


def test_a_layer_tied_under_the_sudoku_group_cannot_single_out_the_diagonal_pairs():
    from puzzles.sudoku.rules import rule_pairs
    from symsatnet.rules import separation

    layer = symsatnet.SymSATNet(64, symsatnet.sudoku_group(2))
    with torch.no_grad():
        layer.coeffs.normal_()
    # Whatever its coefficients, each diagonal-only pair shares its orbital with non-rule pairs.
    assert separation(layer, rule_pairs(2, diagonals=True)).others_above > 0
    # A matrix that weighs exactly the X rules is separated; the plain rules then are not.
    C = _matrix_with_pairs(64, rule_pairs(2, diagonals=True), rule=1.0, other=-0.1)
    assert separation(C, rule_pairs(2, diagonals=True)).separated
    assert separation(C, rule_pairs(2)).others_above == len(rule_pairs(2, diagonals=True)) - len(rule_pairs(2))


def test_separation_refuses_bad_pairs():
    from symsatnet.rules import separation

    C = _matrix_with_pairs(4, np.array([[0, 1]]), rule=1.0, other=0.0)
    for pairs, message in [(np.zeros((0, 2), dtype=int), "non-empty"), (np.array([[0, 1.0]]), "integer"),
                           (np.array([[0, 4]]), "two different problem variables"),
                           (np.array([[2, 2]]), "two different problem variables")]:
        with pytest.raises(RulesError, match=message):
            separation(C, pairs)
    with pytest.raises(RulesError, match="no pair terms"):
        separation(np.zeros((5, 5)), np.array([[0, 1]]))
