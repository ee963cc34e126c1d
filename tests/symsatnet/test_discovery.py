"""Symmetry discovery recovers planted groups (docs/design.md, "Discovery")."""

from __future__ import annotations

import builtins
import zlib

import numpy as np
import pytest
import torch

from symsatnet import discovery as D
from symsatnet import groups as G
from symsatnet.discovery import Discovery, closed_orbitals, discover, planted_matrix, projection_error
from symsatnet.discovery.symfind import coarsenings

S, Z, T = G.Symmetric, G.Cyclic, G.Trivial

PLANTED = [
    S(7),
    Z(9),
    T(5),
    G.Product(S(3), Z(5)),
    G.Product(Z(4), Z(3)),
    G.DirectSum(S(3), S(4)),
    G.DirectSum(Z(5), S(3), T(2)),
    G.Wreath(S(3), S(3)),
    G.Wreath(Z(4), S(3)),
    G.Product(G.Wreath(S(2), S(3)), S(2)),
    G.sudoku_group(2),
]
NOISES = [0.0, 0.01, 0.05]


def _seed(*parts: object) -> int:
    """A seed that is the same in every run (str hashes are salted per process)."""
    return zlib.crc32(repr(parts).encode())


def _canonical(labels: np.ndarray) -> np.ndarray:
    _, first, inverse = np.unique(labels.ravel(), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.ravel()].reshape(labels.shape)


def _expected(group: G.Group, order: np.ndarray) -> np.ndarray:
    return _canonical(np.asarray(group.orbitals())[np.ix_(order, order)])


@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize("group", PLANTED, ids=repr)
def test_symfind_recovers_planted_group(group: G.Group, noise: float) -> None:
    matrix, order = planted_matrix(group, noise, rng=_seed(group, noise))
    result = discover(matrix, method="symfind")
    assert np.array_equal(result.orbitals, _expected(group, order)), result.summary()
    assert result.num_orbitals == group.num_orbitals
    assert result.error <= max(2 * noise, 1e-9)
    # The group plugs into the group language: its own orbital map is the one reported.
    assert isinstance(result.group, G.Group)
    assert np.array_equal(np.asarray(result.group.orbitals()), result.orbitals)


@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize("group", [S(6), Z(8), G.Product(S(3), Z(4)), G.DirectSum(S(3), Z(5)),
                                   G.Wreath(S(2), S(3)), G.Product(G.Wreath(S(2), S(2)), S(3))], ids=repr)
def test_graph_recovers_shuffled_group(group: G.Group, noise: float) -> None:
    pytest.importorskip("pynauty")
    matrix, order = planted_matrix(group, noise, rng=_seed(group, noise, "graph"), shuffle=True)
    result = discover(matrix, method="graph")
    assert np.array_equal(result.orbitals, _expected(group, order)), result.summary()


def test_symfind_alone_cannot_see_shuffled_symmetry_but_both_can() -> None:
    pytest.importorskip("pynauty")
    group = G.Product(S(3), Z(5))
    matrix, order = planted_matrix(group, 0.01, rng=3, shuffle=True)
    assert discover(matrix, method="symfind").num_orbitals > group.num_orbitals
    both = discover(matrix, method="both")
    assert np.array_equal(both.orbitals, _expected(group, order))


SHUFFLED = [S(6), Z(8), G.Product(S(3), Z(4)), G.DirectSum(S(3), Z(5)), G.Wreath(S(2), S(3)),
            G.Product(G.Wreath(S(2), S(2)), S(3))]


@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize("group", SHUFFLED, ids=repr)
def test_default_recovers_shuffled_group(group: G.Group, noise: float) -> None:
    # Issue 24 target: discover(M) with no method finds the exact group on shuffled
    # variables; 'auto' once ran the graph method only when symfind found nothing, and
    # symfind's proper subgroups cost 7 of these 18 cases.
    pytest.importorskip("pynauty")
    matrix, order = planted_matrix(group, noise, rng=_seed(group, noise, "graph"), shuffle=True)
    result = discover(matrix)
    assert result.method == "auto" and np.array_equal(result.orbitals, _expected(group, order)), result.summary()


def test_auto_keeps_the_natural_order_expression() -> None:
    pytest.importorskip("pynauty")
    natural, _ = planted_matrix(G.Wreath(S(3), S(3)), 0.01, rng=4)
    found = discover(natural)
    # The graph also runs (n <= AUTO_GRAPH_ALWAYS_DEGREE) and finds the same orbitals;
    # symfind's structured expression is kept.
    assert found.group == G.Wreath(S(3), S(3))
    assert np.array_equal(found.orbitals, np.asarray(G.Wreath(S(3), S(3)).orbitals()))


def test_auto_skips_the_graph_on_large_matrices_where_symfind_found_a_group(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pynauty")
    from symsatnet.discovery import search

    called = []
    monkeypatch.setattr(search, "graph_options", lambda *args: called.append(1) or [])
    monkeypatch.setattr(search, "AUTO_GRAPH_ALWAYS_DEGREE", 8)
    natural, _ = planted_matrix(G.Wreath(S(3), S(3)), 0.01, rng=4)
    assert discover(natural).group == G.Wreath(S(3), S(3)) and not called
    shuffled, _ = planted_matrix(G.Product(S(3), Z(5)), 0.01, rng=3, shuffle=True)
    discover(shuffled)  # symfind finds nothing: the graph runs up to GRAPH_MAX_DEGREE
    assert called


def test_auto_without_pynauty_is_symfind(monkeypatch: pytest.MonkeyPatch) -> None:
    test_graph_without_pynauty_says_how_to_install(monkeypatch)  # pynauty now fails to import
    shuffled, _ = planted_matrix(G.Product(S(3), Z(5)), 0.01, rng=3, shuffle=True)
    assert isinstance(discover(shuffled).group, G.Trivial)


def test_graph_method_refuses_very_large_matrices() -> None:
    from symsatnet.discovery import GRAPH_MAX_DEGREE

    pytest.importorskip("pynauty")
    with pytest.raises(ValueError, match=f"at most {GRAPH_MAX_DEGREE} variables"):
        discover(np.eye(GRAPH_MAX_DEGREE + 1), method="graph")


def test_graph_method_finds_the_sudoku_group() -> None:
    # n = 729: nauty returns hundreds of generators (728 for the one-class graph, S_729);
    # their orbitals once took minutes (timed by benchmarks/bench_discovery.py, ~10 s now).
    pytest.importorskip("pynauty")
    group = G.sudoku_group(3)
    matrix, _ = planted_matrix(group, 0.0, rng=0)
    result = discover(matrix, method="graph")
    assert result.num_orbitals == 18
    assert np.array_equal(result.orbitals, np.asarray(group.orbitals()))


def test_both_keeps_the_structured_expression() -> None:
    pytest.importorskip("pynauty")
    group = G.Wreath(S(3), S(3))
    matrix, _ = planted_matrix(group, 0.01, rng=4)
    result = discover(matrix, method="both")
    assert result.group == group  # the graph finds the same orbitals; the expression wins


def test_sudoku_box3_is_found() -> None:
    # Its time (target < 30 s) is measured by benchmarks/bench_discovery.py.
    group = G.sudoku_group(3)
    matrix, _ = planted_matrix(group, 0.05, rng=0)
    result = discover(matrix)
    assert result.num_orbitals == 18
    assert np.array_equal(result.orbitals, np.asarray(group.orbitals()))


@pytest.mark.parametrize("method", ["symfind", "graph"])
@pytest.mark.parametrize("n", [6, 12, 30])
def test_pure_noise_gives_no_spurious_symmetry(method: str, n: int) -> None:
    if method == "graph":
        pytest.importorskip("pynauty")
    rng = np.random.default_rng(n)
    noise = rng.normal(size=(n, n))
    result = discover(noise + noise.T, method=method)
    assert result.num_orbitals >= n * (n + 1) // 2 - 1, result.summary()


def test_scale_and_torch_input_do_not_matter() -> None:
    group = G.Product(S(2), Z(5))
    matrix, _ = planted_matrix(group, 0.01, rng=5)
    reference = discover(matrix)
    for variant in (matrix * 1e-6, matrix * 1e6, torch.tensor(matrix, dtype=torch.float32)):
        result = discover(variant)
        assert np.array_equal(result.orbitals, reference.orbitals)


def test_ignoring_a_random_diagonal() -> None:
    group = G.Wreath(S(3), S(2))
    matrix, _ = planted_matrix(group, 0.0, rng=6)
    typical = np.sqrt(np.mean(matrix**2))
    matrix = matrix + np.diag(np.random.default_rng(0).normal(size=6) * 3 * typical)
    assert discover(matrix).num_orbitals > group.num_orbitals  # the diagonal breaks it
    result = discover(matrix, diagonal="ignore")
    assert result.num_orbitals == group.num_orbitals


def test_projection_error_matches_definition() -> None:
    group = G.Product(S(3), S(2))
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(6, 6))
    matrix = matrix + matrix.T
    labels = np.asarray(group.orbitals())
    means = np.bincount(labels.ravel(), matrix.ravel()) / np.bincount(labels.ravel())
    expected = np.linalg.norm(matrix - means[labels]) / np.linalg.norm(matrix)
    assert projection_error(matrix, group) == pytest.approx(expected)
    assert projection_error(matrix, labels) == pytest.approx(expected)


def test_result_reports_candidates_and_prints() -> None:
    matrix, _ = planted_matrix(G.DirectSum(S(3), S(4)), 0.01, rng=8)
    result = discover(matrix)
    assert isinstance(result, Discovery)
    assert result.candidates[0].group == result.group
    assert len(result.candidates) >= 3
    text = str(result)
    assert "DirectSum(Symmetric(3), Symmetric(4))" in text and "params" in text
    summary = result.to_dict()
    assert summary["num_orbitals"] == summary["num_parameters"] == 5 and summary["group"] == repr(result.group)
    assert result.orbitals.dtype == np.int64 and result.orbitals.shape == (7, 7)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.ones((3, 4)), "square"),
        (np.ones(5), "2-D"),
        (np.ones((1, 1)), "too small"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "non-finite"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "non-finite"),
        ("matrix.npy", "square matrix"),
        (None, "square matrix"),
        (np.array([["a", "b"], ["c", "d"]]), "numeric"),
        (np.ones((2, 2), dtype=complex), "real"),
    ],
)
def test_bad_input_is_a_clear_value_error(bad, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        discover(bad)


@pytest.mark.parametrize(
    "options, message",
    [({"method": "magic"}, "method"), ({"rtol": 0.0}, "rtol"), ({"max_err": -1}, "max_err"),
     ({"diagonal": "maybe"}, "diagonal"), ({"max_rank": 0}, "max_rank")],
)
def test_bad_options_are_value_errors(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        discover(np.eye(3), **options)


def test_graph_without_pynauty_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pynauty":
            raise ImportError("No module named 'pynauty'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    for method in ("graph", "both"):
        with pytest.raises(ImportError, match=r"pip install pynauty.*symsatnet\[graph\]"):
            discover(np.eye(4), method=method)
    assert discover(np.eye(4), method="symfind").num_orbitals == 2  # symfind needs no nauty


@pytest.mark.parametrize("group", [G.Wreath(Z(5), S(24)), G.DirectSum(G.Product(S(3), Z(20)), S(40))], ids=repr)
def test_highly_composite_degrees_are_recovered(group: G.Group) -> None:
    # Every divisor offers a product split and a wreath; following all of them recursively
    # once took minutes on such degrees. Speed itself is measured by
    # benchmarks/bench_discovery.py, not asserted here (timings vary on a shared machine).
    matrix, _ = planted_matrix(group, 0.05, rng=9)
    result = discover(matrix)
    assert np.array_equal(result.orbitals, np.asarray(group.orbitals()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learned_like_noise_keeps_the_sudoku_group(seed):
    # Learned matrices are not planted values plus independent noise: an S-form layer's
    # C = S Sᵀ carries a random Wishart part. With one of 30% relative size, the factor
    # tests used to reject the wreaths (a 24-32 parameter subgroup came back); scaling
    # each factor stack to unit RMS and cutting Kronecker terms at a singular-value gap
    # recover the 18-orbital 4x4 Sudoku group.
    group = G.sudoku_group(2)
    rng = np.random.default_rng(seed)
    values = rng.normal(size=group.num_orbitals)
    matrix = values[np.asarray(group.orbitals())]
    clauses = rng.normal(size=(group.degree, group.degree))
    noise = clauses @ clauses.T
    np.fill_diagonal(matrix, 0.0)
    np.fill_diagonal(noise, 0.0)
    noise *= 0.3 * np.linalg.norm(matrix) / np.linalg.norm(noise)
    found = discover(matrix + noise, rtol=0.5, max_err=0.5, diagonal="ignore")
    assert found.num_orbitals == group.num_orbitals
    assert np.array_equal(found.orbitals, closed_orbitals(group))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_systematic_structure_does_not_split_the_group(seed):
    # A learned matrix can carry structure that is systematic but small next to its noise:
    # here 4x4 Sudoku values plus 10% on the pairs "other band, same row in its band" (a
    # structure of the product of band and row-in-band permutations, not of the wreath)
    # plus 30% independent noise. The row factor's averages are nearly noise-free, so the
    # significance test alone split the rows and returned a 24-orbital subgroup for every
    # seed; with the structure floor (rtol / 2) and the coarsening proposals of the final
    # selection the 18-orbital Sudoku group comes back.
    group = G.sudoku_group(2)
    n = group.degree
    row = np.arange(n) // 16
    band, position = row // 2, row % 2
    pairs = (band[:, None] != band[None, :]) & (position[:, None] == position[None, :])
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=group.num_orbitals)[np.asarray(group.orbitals())]
    scale = np.sqrt(np.mean(matrix**2))
    matrix = matrix + 0.1 * scale * pairs + 0.3 * scale * rng.normal(size=(n, n))
    found = discover((matrix + matrix.T) / 2, rtol=0.5, max_err=0.5)
    assert np.array_equal(found.orbitals, closed_orbitals(group))


def test_coarsenings_are_supergroups():
    # Every proposed merge contains the group it came from: the group's generators keep
    # each closed orbital of the merge.
    base = G.Product(G.Symmetric(2), G.Product(G.Symmetric(3), G.Trivial(2)))
    proposals = coarsenings([base])
    assert G.Product(G.Wreath(G.Symmetric(3), G.Symmetric(2)), G.Trivial(2)) in proposals
    assert G.Product(G.Symmetric(2), G.Wreath(G.Trivial(2), G.Symmetric(3))) in proposals
    for merged in proposals:
        labels = closed_orbitals(merged)
        for perm in base.generators():
            assert np.array_equal(labels[np.ix_(perm, perm)], labels)
        assert labels.max() <= closed_orbitals(base).max()
