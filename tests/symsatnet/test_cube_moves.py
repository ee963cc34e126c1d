"""Facelet numbering and move tables of the Rubik's cube."""

from __future__ import annotations

import numpy as np
import pytest
from sympy.combinatorics import Permutation, PermutationGroup

from symsatnet import cube_moves
from symsatnet.cube_moves import FACELETS, MOVES, SOLVED, apply, compose, inverse, sequence_permutation

IDENTITY = np.arange(FACELETS)
CENTRES = 9 * np.arange(6) + 4


def power(perm: np.ndarray, exponent: int) -> np.ndarray:
    return compose(*([perm] * exponent))


def sympy_group(names) -> PermutationGroup:
    return PermutationGroup([Permutation(MOVES[name].tolist()) for name in names])


@pytest.mark.parametrize("name", cube_moves.BASE_MOVES)
def test_quarter_turns_have_order_four(name):
    perm = MOVES[name]
    assert sorted(perm.tolist()) == list(range(FACELETS))
    assert not np.array_equal(perm, IDENTITY) and not np.array_equal(power(perm, 2), IDENTITY)
    assert np.array_equal(power(perm, 4), IDENTITY)
    assert np.array_equal(MOVES[name + "2"], power(perm, 2))
    assert np.array_equal(MOVES[name + "'"], power(perm, 3))
    assert np.array_equal(compose(perm, MOVES[name + "'"]), IDENTITY)


@pytest.mark.parametrize("name", cube_moves.FACE_TURNS)
def test_face_turns_move_twenty_facelets_and_fix_centres(name):
    perm = MOVES[name]
    assert np.array_equal(perm[CENTRES], CENTRES)
    assert (perm != IDENTITY).sum() == 20  # 8 on the face, 12 on the ring around it


@pytest.mark.parametrize("name", cube_moves.SLICE_TURNS + cube_moves.ROTATIONS)
def test_slices_and_rotations_move_centres(name):
    assert (MOVES[name][CENTRES] != CENTRES).sum() == 4


def test_sexy_move_has_order_six():
    sexy = sequence_permutation("R U R' U'")
    assert not np.array_equal(power(sexy, 3), IDENTITY)
    assert np.array_equal(power(sexy, 6), IDENTITY)


@pytest.mark.parametrize(
    "move, equivalent",
    [("M", "L' R x'"), ("E", "U D' y'"), ("S", "F' B z"), ("x", "R M' L'"), ("y", "U E' D'"), ("z", "F S B'")],
)
def test_slice_and_rotation_identities(move, equivalent):
    assert np.array_equal(MOVES[move], sequence_permutation(equivalent))


def test_face_turn_group_has_the_known_order():
    assert sympy_group(cube_moves.FACE_TURNS).order() == 43_252_003_274_489_856_000


def test_push_convention_on_a_marked_sticker():
    """U sends the front face's top row to the left face: new_state[perm[i]] = state[i]."""
    state = np.zeros(FACELETS, dtype=np.int64)
    front_top_left = cube_moves.facelet("F", 0)
    state[front_top_left] = 1
    moved = apply(state, "U")
    assert moved[cube_moves.facelet("L", 0)] == 1 and moved.sum() == 1
    assert MOVES["U"][front_top_left] == cube_moves.facelet("L", 0)


@pytest.mark.parametrize(
    "sequence, expected",
    [
        ("R", "UUFUUFUUF" "RRRRRRRRR" "FFDFFDFFD" "DDBDDBDDB" "LLLLLLLLL" "UBBUBBUBB"),
        ("U", "UUUUUUUUU" "BBBRRRRRR" "RRRFFFFFF" "DDDDDDDDD" "FFFLLLLLL" "LLLBBBBBB"),
    ],
)
def test_known_facelet_strings(sequence, expected):
    assert cube_moves.to_facelet_string(apply(SOLVED, sequence)) == expected
    assert np.array_equal(cube_moves.from_facelet_string(expected), apply(SOLVED, sequence))


def test_sequences_apply_left_to_right_and_batch():
    rng = np.random.default_rng(0)
    states = rng.integers(0, 6, size=(3, FACELETS))
    assert np.array_equal(apply(states, "R U"), apply(apply(states, "R"), "U"))
    assert np.array_equal(apply(states, ["R", "U"]), apply(states, sequence_permutation("R U")))
    scramble = "R U2 F' L D B2 M E' S x y' z2"
    assert np.array_equal(apply(apply(states, scramble), cube_moves.inverse_sequence(scramble)), states)
    assert np.array_equal(inverse(sequence_permutation(scramble)), sequence_permutation(cube_moves.inverse_sequence(scramble)))


def test_whole_cube_rotations_form_a_group_of_order_24():
    rotations = cube_moves.whole_cube_rotations()
    assert len(rotations) == 24 and len({tuple(r) for r in rotations}) == 24
    assert sympy_group(cube_moves.ROTATIONS).order() == 24
    colours = PermutationGroup(
        [Permutation(cube_moves.rotation_colour_permutation(name).tolist()) for name in cube_moves.ROTATIONS]
    )
    assert colours.order() == 24


def test_rotation_colour_permutation_recolours_the_rotated_cube_back():
    for rotation in cube_moves.whole_cube_rotations():
        colour_perm = cube_moves.rotation_colour_permutation(rotation)
        assert np.array_equal(colour_perm[apply(SOLVED, rotation)], SOLVED)
    # x carries F's centre to U, U's to B, B's to D, D's to F (R and L stay)
    assert cube_moves.rotation_colour_permutation("x").tolist() == [5, 1, 0, 2, 4, 3]


def test_rotations_commute_with_recolouring_of_moves():
    """Rotating the cube, turning, rotating back is a turn of another face: U under x is B."""
    assert np.array_equal(sequence_permutation("x U x'"), MOVES["F"])
    assert np.array_equal(sequence_permutation("x' U x"), MOVES["B"])


@pytest.mark.parametrize(
    "call",
    [
        lambda: sequence_permutation("R Q"),
        lambda: apply(np.zeros(53), "R"),
        lambda: cube_moves.rotation_colour_permutation("R"),
        lambda: cube_moves.facelet("X", 0),
        lambda: cube_moves.facelet("U", 9),
        lambda: cube_moves.from_facelet_string("U" * 53),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_tables_are_read_only():
    with pytest.raises(ValueError):
        MOVES["U"][0] = 3
    with pytest.raises(ValueError):
        SOLVED[0] = 3
