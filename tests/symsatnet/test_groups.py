"""The group language: generators, orbits, closed orbitals, orders, printing, validation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symsatnet.groups as groups
from symsatnet.groups import labels as group_labels
from symsatnet.groups import (
    Cyclic,
    DirectSum,
    Extend,
    FromGenerators,
    Product,
    SudokuTransposed,
    Symmetric,
    Trivial,
    Wreath,
    cube_group,
    sudoku_group,
    sudoku_transpose_permutation,
)

# --------------------------------------------------------------------------- references


def brute_force_pair_orbits(degree: int, generators) -> np.ndarray:
    """Textbook union-find over pairs, one pair at a time (independent of the library code)."""
    parent = list(range(degree * degree))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for perm in generators:
        for i in range(degree):
            for j in range(degree):
                a, b = find(i * degree + j), find(int(perm[i]) * degree + int(perm[j]))
                parent[max(a, b)] = min(a, b)
    roots = np.array([find(node) for node in range(degree * degree)]).reshape(degree, degree)
    return roots


def same_partition(labels: np.ndarray, other: np.ndarray) -> bool:
    """Whether two label arrays describe the same partition (bijection between labels)."""
    pairs = set(zip(labels.ravel().tolist(), other.ravel().tolist()))
    return len(pairs) == len(set(labels.ravel().tolist())) == len(set(other.ravel().tolist()))


def close_under_transpose(pair_labels: np.ndarray) -> np.ndarray:
    degree = len(pair_labels)
    parent = {label: label for label in pair_labels.ravel().tolist()}

    def find(label):
        while parent[label] != label:
            label = parent[label]
        return label

    for i in range(degree):
        for j in range(degree):
            a, b = find(pair_labels[i, j]), find(pair_labels[j, i])
            parent[max(a, b)] = min(a, b)
    return np.vectorize(find)(pair_labels)


def is_canonical(labels: np.ndarray) -> bool:
    """Ids 0..K-1 appear for the first time in increasing order, scanning row-major."""
    flat = labels.ravel().tolist()
    first_seen = list(dict.fromkeys(flat))
    return first_seen == list(range(len(first_seen)))


def elements(group) -> list[np.ndarray]:
    return [np.array(g.array_form) for g in group.to_sympy().generate()]


# --------------------------------------------------------------------------- strategies


def small_groups(max_degree: int = 12):
    """Random group expressions of degree <= max_degree."""
    leaves = st.one_of(
        st.integers(1, 4).map(Trivial),
        st.integers(1, 4).map(Symmetric),
        st.integers(1, 5).map(Cyclic),
        st.integers(1, 5).flatmap(
            lambda n: st.lists(st.permutations(list(range(n))), max_size=2).map(
                lambda gens, n=n: FromGenerators(n, gens)
            )
        ),
    )

    def extend(children):
        pairs = st.tuples(children, children)
        return st.one_of(
            pairs.map(lambda gh: DirectSum(*gh)),
            pairs.map(lambda gh: Product(*gh)),
            pairs.map(lambda gh: Wreath(*gh)),
        )

    return st.recursive(leaves, extend, max_leaves=3).filter(lambda g: g.degree <= max_degree)


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])

# --------------------------------------------------------------------------- known counts


@pytest.mark.parametrize("n", range(1, 9))
def test_symmetric_has_two_closed_orbitals(n):
    assert Symmetric(n).num_orbitals == (1 if n == 1 else 2)


@pytest.mark.parametrize("n", range(1, 12))
def test_cyclic_has_floor_half_plus_one_closed_orbitals(n):
    assert Cyclic(n).num_orbitals == n // 2 + 1


@pytest.mark.parametrize("n", range(1, 9))
def test_trivial_has_upper_triangle_orbitals(n):
    assert Trivial(n).num_orbitals == n * (n + 1) // 2


@pytest.mark.parametrize(
    "box, transpose, expected",
    [(1, False, 1), (1, True, 1), (2, False, 18), (2, True, 12), (3, False, 18), (3, True, 12)],
)
def test_sudoku_orbital_counts(box, transpose, expected):
    group = sudoku_group(box, transpose=transpose)
    assert group.degree == box**6
    assert group.num_orbitals == expected
    generic = group_labels.pair_orbits_by_union_find(group.degree, group.generators())
    assert np.array_equal(group_labels.glue_labels(generic, generic.T), group.orbitals())


def test_sudoku_box_two_matches_textbook_union_find():
    for group in (sudoku_group(2), sudoku_group(2, transpose=True)):
        reference = close_under_transpose(brute_force_pair_orbits(group.degree, group.generators()))
        assert same_partition(reference, group.orbitals())


def test_sudoku_orbitals_are_the_rule_relations():
    """box 3: pairs relate by row (same/same band/other), column (same) and digit (same/other)."""
    side = 9
    row, column, digit = np.unravel_index(np.arange(side**3), (side,) * 3)

    def line_relation(coordinate):
        same = coordinate[:, None] == coordinate[None, :]
        same_band = coordinate[:, None] // 3 == coordinate[None, :] // 3
        return np.where(same, 0, np.where(same_band, 1, 2))

    relation = (line_relation(row) * 3 + line_relation(column)) * 2 + (digit[:, None] != digit[None, :])
    assert same_partition(relation, sudoku_group(3).orbitals())


def test_sudoku_transpose_is_a_symmetry_of_the_rules():
    transpose = sudoku_transpose_permutation(3)
    base = sudoku_group(3)
    assert not base.contains(transpose)
    assert sudoku_group(3, transpose=True).contains(transpose)
    assert sudoku_group(3, transpose=True).order() == 2 * base.order() == 2 * (6**3 * 6) ** 2 * math.factorial(9)
    small = sudoku_group(2, transpose=True)
    assert small.order() == int(small.to_sympy().order()) == 2 * (2**2 * 2) ** 2 * math.factorial(4)


def test_cube_group_orbitals_and_order():
    group = cube_group()
    assert group.degree == 324
    generic = group_labels.pair_orbits_by_union_find(group.degree, group.generators())
    assert np.array_equal(group_labels.glue_labels(generic, generic.T), group.orbitals())
    assert group.num_orbitals == 36
    # face turns and slices give the face-turn group times the 24 rotations; colours: 24
    assert group.order() == 43_252_003_274_489_856_000 * 24 * 24


def test_cube_group_without_slices_fixes_the_centres():
    from symsatnet import cube_moves

    group = cube_group(slices=False)
    assert group.degree == 324 and groups.parse_group("cube_group(slices=False)") == group
    generic = group_labels.pair_orbits_by_union_find(group.degree, group.generators())
    assert np.array_equal(group_labels.glue_labels(generic, generic.T), group.orbitals())
    # The face-turn group (order 43,252,003,274,489,856,000) times the colour rotations.
    assert group.order() == 43_252_003_274_489_856_000 * 24
    # A subgroup of the full one: every generator is in it, and it has more orbitals.
    full = cube_group()
    assert all(full.contains(g) for g in group.generators()) and group.num_orbitals > full.num_orbitals
    # Centre facelets are fixed points of the facelet action: each centre is its own orbit.
    centres = [cube_moves.facelet(face, 4) for face in cube_moves.FACES]
    facelet_orbits = group.orbits().reshape(54, 6)[:, 0]
    assert len({int(facelet_orbits[c]) for c in centres}) == 6
    assert all((facelet_orbits == facelet_orbits[c]).sum() == 1 for c in centres)



def test_cube_group_without_colour_rotations_weighs_colour_pairs_apart():
    group = cube_group(colours=False)
    assert groups.parse_group("cube_group(colours=False)") == group
    generic = group_labels.pair_orbits_by_union_find(group.degree, group.generators())
    assert np.array_equal(group_labels.glue_labels(generic, generic.T), group.orbitals())
    assert group.num_orbitals == 312 and group.order() == 43_252_003_274_489_856_000 * 24
    full = cube_group()
    assert all(full.contains(g) for g in group.generators())
    # Colours are never moved: (f, c) and (f', c') share an orbit only if c == c'.
    colour_of = np.arange(324) % 6
    orbit = group.orbits()
    assert all(len(set(colour_of[orbit == o].tolist())) == 1 for o in range(group.num_orbits))
    both = cube_group(slices=False, colours=False)
    assert both.num_orbitals > group.num_orbitals and all(group.contains(g) for g in both.generators())


# --------------------------------------------------------------------------- structure vs brute force


@FAST
@given(small_groups())
def test_structured_orbitals_equal_brute_force(group):
    pair_orbits = group.pair_orbits()
    reference = brute_force_pair_orbits(group.degree, group.generators())
    assert same_partition(reference, pair_orbits)
    assert same_partition(close_under_transpose(reference), group.orbitals())
    assert is_canonical(pair_orbits) and is_canonical(group.orbitals()) and is_canonical(group.orbits())
    assert same_partition(np.diag(reference), group.orbits())


@FAST
@given(small_groups(max_degree=8))
def test_orbitals_from_enumerated_elements(group):
    """Where the group is small enough to list, compute orbitals from every element directly."""
    if group.order() > 400:
        return
    degree = group.degree
    labels = -np.ones((degree, degree), dtype=np.int64)
    next_label = 0
    all_elements = elements(group)
    for i, j in itertools.product(range(degree), repeat=2):
        if labels[i, j] < 0:
            for g in all_elements:
                labels[g[i], g[j]] = labels[g[j], g[i]] = next_label
            next_label += 1
    assert np.array_equal(labels, group.orbitals())


@FAST
@given(small_groups())
def test_every_generator_fixes_every_orbital(group):
    orbital_map = group.orbitals()
    assert np.array_equal(orbital_map, orbital_map.T)
    for perm in group.generators():
        assert np.array_equal(orbital_map[perm][:, perm], orbital_map)
        assert np.array_equal(group.orbits()[perm], group.orbits())


@FAST
@given(small_groups())
def test_structural_order_matches_sympy(group):
    assert group.order() == int(group.to_sympy().order())


@FAST
@given(small_groups(), small_groups())
def test_order_formulas(first, second):
    if first.degree * second.degree > 16:
        return
    assert Product(first, second).order() == first.order() * second.order()
    assert DirectSum(first, second).order() == first.order() * second.order()
    assert Wreath(first, second).order() == first.order() ** second.degree * second.order()


@pytest.mark.parametrize("n", range(1, 7))
def test_leaf_orders(n):
    assert Symmetric(n).order() == math.factorial(n) == Symmetric(n).to_sympy().order()
    assert Cyclic(n).order() == n == Cyclic(n).to_sympy().order()
    assert Trivial(n).order() == 1


# --------------------------------------------------------------------------- index conventions


def test_direct_sum_places_second_group_after_first():
    group = DirectSum(Trivial(2), Cyclic(3))
    assert group.generators()[0].tolist() == [0, 1, 3, 4, 2]
    assert group.orbits().tolist() == [0, 1, 2, 2, 2]


def test_product_makes_first_factor_major():
    group = Product(Cyclic(2), Trivial(3))
    # (a, b) -> (a + 1, b): point a*3 + b -> ((a+1) % 2)*3 + b
    assert group.generators()[0].tolist() == [3, 4, 5, 0, 1, 2]
    assert group.orbits().tolist() == [0, 1, 2, 0, 1, 2]


def test_wreath_blocks_are_contiguous():
    group = Wreath(Trivial(2), Cyclic(3))
    assert group.generators()[0].tolist() == [2, 3, 4, 5, 0, 1]
    inner = Wreath(Cyclic(2), Trivial(3))
    assert inner.orbits().tolist() == [0, 0, 1, 1, 2, 2]
    assert inner.order() == 8


@pytest.mark.parametrize("combinator", [Product, DirectSum])
def test_variadic_combinators_fold_left(combinator):
    parts = (Cyclic(3), Symmetric(2), FromGenerators(3, [[1, 0, 2]]))
    flat, nested = combinator(*parts), combinator(combinator(*parts[:2]), parts[2])
    assert flat != nested  # different expressions ...
    assert np.array_equal(flat.orbitals(), nested.orbitals())  # ... same indices and orbitals
    assert flat.equivalent(nested)
    assert combinator(parts[0]).equivalent(parts[0])


def test_extend_glues_orbits():
    group = Extend(Trivial(4), [[1, 0, 2, 3]])
    assert group.orbits().tolist() == [0, 0, 1, 2]
    assert group.order() == 2
    assert group.equivalent(DirectSum(Symmetric(2), Trivial(2)))


# --------------------------------------------------------------------------- values


@FAST
@given(small_groups())
def test_repr_round_trips(group):
    again = eval(repr(group), vars(groups))
    assert again == group and hash(again) == hash(group)
    assert groups.parse_group(repr(group)) == group


@pytest.mark.parametrize(
    "group",
    [sudoku_group(2), sudoku_group(3, transpose=True), Extend(Cyclic(3), [[1, 0, 2]]), FromGenerators(3, [])],
)
def test_repr_round_trips_for_named_groups(group):
    assert eval(repr(group), vars(groups)) == group
    assert groups.parse_group(repr(group)) == group


@pytest.mark.parametrize(
    "text",
    ["__import__('os').getcwd()", "Symmetric(3) + 1", "3", "Symmetric(", "Symmetric(n=3)", "Cyclic('3')",
     "Product(*[Symmetric(2)])", "open('x')", "Symmetric(3).order()"],
)
def test_parse_group_refuses_anything_but_group_expressions(text):
    with pytest.raises(ValueError):
        groups.parse_group(text)


def test_parse_group_accepts_keywords_of_ready_made_groups():
    assert groups.parse_group("sudoku_group(box=2, transpose=True)") == SudokuTransposed(2)


def test_fromgenerators_prints_lists():
    assert repr(FromGenerators(3, [np.array([1, 2, 0])])) == "FromGenerators(3, [[1, 2, 0]])"


def test_groups_are_immutable_hashable_values():
    assert len({Symmetric(3), Symmetric(3), Cyclic(3)}) == 2
    assert Symmetric(3) != Cyclic(3) and Symmetric(3) != Symmetric(4)
    group = Symmetric(3)
    with pytest.raises(AttributeError):
        group.anything = 1
    with pytest.raises(ValueError):
        group.orbitals()[0, 0] = 5


def test_generators_of_symmetric_are_transposition_and_cycle():
    transposition, cycle = Symmetric(4).generators()
    assert transposition.tolist() == [1, 0, 2, 3] and cycle.tolist() == [1, 2, 3, 0]
    assert all(p.dtype == np.int64 for p in sudoku_group(2).generators())


def test_contains():
    assert Cyclic(4).contains([1, 2, 3, 0]) and not Cyclic(4).contains([1, 0, 2, 3])
    assert Symmetric(5).contains([4, 3, 2, 1, 0])
    assert Product(Symmetric(2), Trivial(2)).contains([2, 3, 0, 1])
    assert not Product(Symmetric(2), Trivial(2)).contains([1, 0, 2, 3])


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "generators, message",
    [
        ([[0, 1]], "generator 0 has length 2"),
        ([[0, 1, 2], [0, 0, 1]], "generator 1 is not a permutation"),
        ([[0, 1, 3]], "generator 0 maps a point to 3"),
        ([[0, 1, -1]], "generator 0 maps a point to -1"),
        ([[0.5, 1, 2]], "generator 0 must contain integers"),
        ([["a", "b", "c"]], "generator 0 must contain integers"),
        ([[[0, 1, 2]]], "generator 0 must be one-dimensional"),
        ([[True, False, True]], "generator 0 must contain integers"),
    ],
)
def test_bad_generators_are_refused(generators, message):
    with pytest.raises(ValueError, match=message):
        FromGenerators(3, generators)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Trivial(0),
        lambda: Symmetric(-1),
        lambda: Cyclic(0),
        lambda: FromGenerators(0, []),
        lambda: Symmetric(2.5),
        lambda: DirectSum(),
        lambda: Product(),
        lambda: Wreath(3, Symmetric(2)),
        lambda: Product(Symmetric(2), "S3"),
        lambda: Extend(Symmetric(3), [[0, 1]]),
        lambda: sudoku_group(0),
        lambda: Symmetric(3).contains([0, 1]),
        lambda: Symmetric(3).contains([0, 0, 1]),
    ],
)
def test_bad_input_raises_value_error(build):
    with pytest.raises(ValueError):
        build()


def test_float_generators_with_integer_values_are_accepted():
    assert FromGenerators(3, [np.array([1.0, 2.0, 0.0])]) == FromGenerators(3, [[1, 2, 0]])


# --------------------------------------------------------------------------- speed


def test_generic_orbitals_of_degree_729():
    # A transitive generated group on 729 points: one point orbit, and the closed orbitals
    # agree with the structured ones where both exist (~0.2 s alone; not asserted).
    perm = np.random.default_rng(0).permutation(729)
    group = FromGenerators(729, [np.roll(np.arange(729), 1), perm])
    assert group.orbitals().shape == (729, 729) and len(set(group.orbits().tolist())) == 1
    assert SudokuTransposed(3).num_orbitals == 12


def test_children_and_canonical_labels_are_public():
    inner, outer = Symmetric(2), Cyclic(3)
    wreath = Wreath(inner, outer)
    assert wreath.inner == inner and wreath.outer == outer and wreath.children == (inner, outer)
    product = Product(Symmetric(2), Trivial(3))
    assert product.factors == (Symmetric(2), Trivial(3)) == product.children
    extended = Extend(Symmetric(3), [[1, 2, 0]])
    assert extended.base == Symmetric(3) and extended.children == (Symmetric(3),)
    assert DirectSum(Symmetric(2), Cyclic(3)).parts == (Symmetric(2), Cyclic(3))
    assert Symmetric(4).children == ()
    labels = np.array([[7, 3], [3, 9]])
    assert groups.canonical_labels(labels).tolist() == [[0, 1], [1, 2]]


@pytest.mark.parametrize("group", [Symmetric(12), Product(Wreath(Symmetric(2), Symmetric(3)), Cyclic(4))], ids=repr)
def test_pair_orbits_from_many_generators_are_exact(group):
    # More generators than the propagation takes at once: random products of them come
    # first, then every generator that still breaks the partition (the result is exact).
    rng = np.random.default_rng(0)
    generators = list(group.generators())
    extra = []
    for _ in range(40):  # redundant generators: products and transpositions of the group's
        chosen = rng.choice(len(generators), size=3)
        product = np.arange(group.degree)
        for index in chosen:
            product = generators[index][product]
        extra.append(product)
    many = FromGenerators(group.degree, extra + generators)
    assert len(many.generators()) > 16
    assert np.array_equal(many.pair_orbits(), group.pair_orbits())
    assert np.array_equal(many.orbitals(), group.orbitals())


def test_pair_orbits_of_many_transpositions():
    n = 30
    transpositions = []
    for i in range(n - 1):
        perm = np.arange(n)
        perm[[i, i + 1]] = perm[[i + 1, i]]
        transpositions.append(perm)
    assert np.array_equal(FromGenerators(n, transpositions).pair_orbits(), Symmetric(n).pair_orbits())
    # Transpositions of the first half only: S_15 on 0..14, the rest fixed.
    half = FromGenerators(n, transpositions[:14] + [np.arange(n)] * 10)
    assert np.array_equal(half.orbitals(), DirectSum(Symmetric(15), Trivial(15)).orbitals())


@pytest.mark.parametrize("family", [groups.Trivial, groups.Symmetric, groups.Cyclic])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10])
def test_closed_form_counts_match_the_orbital_maps(family, n: int) -> None:
    group = family(n)
    assert group.num_orbitals == int(np.asarray(group.orbitals()).max()) + 1
    assert group.num_orbits == int(np.asarray(group.orbits()).max()) + 1


def test_huge_degrees_count_without_an_n_by_n_array() -> None:
    # Issue 24: Symmetric(10**9).num_orbitals once built a 10^9 x 10^9 array (MemoryError).
    n = 10**9
    assert groups.Symmetric(n).num_orbitals == 2 and groups.Symmetric(n).num_orbits == 1
    assert groups.Cyclic(n).num_orbitals == n // 2 + 1
    assert groups.Trivial(n).num_orbitals == n * (n + 1) // 2
    with pytest.raises(ValueError, match="orbital map of degree 1000000000 needs"):
        groups.Symmetric(n).orbitals()
    with pytest.raises(ValueError, match="at most degree"):
        groups.Product(groups.Symmetric(10**5), groups.Cyclic(2)).num_orbitals
