"""Rubik's-cube completion data: cubie tables, legality, generator, file format, CLI."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from puzzles.cube import (
    CENTRES,
    CUBE_DATA_VERSION,
    CORNER_FACELETS,
    CORNERS,
    EDGE_FACELETS,
    EDGES,
    HIDDEN,
    CubeDataset,
    DatasetError,
    bit_index,
    bits_to_state,
    error_breakdown,
    handedness_blind_ceiling,
    facelet_kind,
    generate_dataset,
    is_input_mask,
    is_valid_state,
    kociemba_facelets,
    legality_problems,
    load_dataset,
    recolour_by_centres,
    save_dataset,
    scramble,
    state_to_bits,
    state_violations,
    valid_states,
)
from puzzles.cube.cli import main as cube_main
from datafile_checks import flipped_bytes_never_give_wrong_data, old_digest_is_caught, round_trip, truncations_are_refused
from puzzles.datafile import save_npz
from symsatnet.cube_moves import FACE_TURNS, MOVES, SOLVED, apply, facelet, parse

try:
    import kociemba
except ImportError:  # optional dependency (extra "cube"); our own legality check still runs
    kociemba = None
requires_kociemba = pytest.mark.skipif(kociemba is None, reason="needs the kociemba package")

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset() -> CubeDataset:
    return generate_dataset(60, seed=3)


def solves(state: np.ndarray) -> bool:
    """Kociemba's solution, applied with our move tables, restores the (recoloured) cube."""
    solution = kociemba.solve(kociemba_facelets(state))
    return np.array_equal(apply(recolour_by_centres(state), solution), SOLVED)


# ---------------------------------------------------------------- tables and legality


def test_facelet_kinds_partition_the_cube():
    assert len(CORNER_FACELETS) == 24 and len(EDGE_FACELETS) == 24 and len(CENTRES) == 6
    everything = np.concatenate([CORNER_FACELETS, EDGE_FACELETS, CENTRES])
    assert sorted(everything.tolist()) == list(range(54))
    assert facelet_kind(facelet("U", 4)) == "centre"
    assert facelet_kind(facelet("F", 0)) == "corner"
    assert facelet_kind(facelet("F", 1)) == "edge"


@pytest.mark.parametrize("move", sorted(MOVES))
def test_moves_carry_cubies_to_cubies(move):
    # If the tables grouped stickers that do not share a cubie, some move would split them.
    for cubies in (CORNERS, EDGES):
        images = {frozenset(MOVES[move][cubie].tolist()) for cubie in cubies}
        assert images == {frozenset(cubie.tolist()) for cubie in cubies}


@requires_kociemba
@pytest.mark.parametrize("face", FACE_TURNS)
@pytest.mark.parametrize("suffix", ["", "'", "2"])
def test_facelet_mapping_agrees_with_kociemba_on_single_turns(face, suffix):
    state = apply(SOLVED, face + suffix)
    assert legality_problems(state) == []
    # Kociemba finds the one-move inverse; a wrong facelet order or turn direction
    # would give a longer answer or a different face.
    inverse = {"": "'", "'": "", "2": "2"}[suffix]
    assert kociemba.solve(kociemba_facelets(state)) == face + inverse


@requires_kociemba
@pytest.mark.parametrize("sequence", ["M", "E", "S", "x", "y' z2", "M E' S2 R U", "R U R' U' F2 D L'"])
def test_slice_turns_and_rotations_stay_legal_and_kociemba_solves_them(sequence):
    state = apply(SOLVED, sequence)
    assert legality_problems(state) == []
    assert solves(state)


def twisted_corner():
    state = SOLVED.copy()
    state[CORNERS[0]] = state[np.roll(CORNERS[0], 1)]
    return state


def flipped_edge():
    state = SOLVED.copy()
    state[EDGES[0]] = state[EDGES[0][::-1]]
    return state


def swapped_edges():
    state = SOLVED.copy()
    state[EDGES[0]], state[EDGES[1]] = SOLVED[EDGES[1]], SOLVED[EDGES[0]]
    return state


def swapped_centres():
    state = SOLVED.copy()
    state[CENTRES[[0, 1]]] = state[CENTRES[[1, 0]]]
    return state


def wrong_counts():
    state = SOLVED.copy()
    state[0] = 1
    return state


@pytest.mark.parametrize(
    "make_state,message",
    [
        (twisted_corner, "twists"),
        (flipped_edge, "flips"),
        (swapped_edges, "parity"),
        (swapped_centres, "centre colours"),
        (wrong_counts, "9 times"),
    ],
)
def test_illegal_states_are_caught_like_kociemba_does(make_state, message):
    state = make_state()
    problems = legality_problems(state)
    assert any(message in problem for problem in problems), problems
    assert not is_valid_state(state)
    if kociemba is not None and message != "centre colours":  # kociemba's string needs six distinct centres
        with pytest.raises(ValueError):
            kociemba.solve(kociemba_facelets(state))


# ---------------------------------------------------------------- generator


def test_scramble_matches_cube_moves_apply():
    state, names = scramble(np.random.default_rng(0), 60)
    assert len(names) == 60 and set(names) <= set(MOVES)
    np.testing.assert_array_equal(state, apply(SOLVED, names))
    np.testing.assert_array_equal(parse(" ".join(names)), names)


def test_generated_states_are_legal_and_solvable(dataset):
    assert dataset.solutions.shape == (60, 54) and dataset.solutions.dtype == np.int8
    assert valid_states(dataset.solutions).all()
    if kociemba is not None:
        assert all(solves(state) for state in dataset.solutions[:12])
    # 60 slice-and-face moves leave centres displaced in most examples.
    moved = (dataset.solutions[:, CENTRES] != np.arange(6)).any(axis=1)
    assert moved.mean() > 0.5


def test_hidden_facelets_are_three_corners_an_edge_and_a_centre(dataset):
    hidden = dataset.hidden
    assert (hidden.sum(axis=1) == 5).all()
    assert (hidden[:, CORNER_FACELETS].sum(axis=1) == 3).all()
    assert (hidden[:, EDGE_FACELETS].sum(axis=1) == 1).all()
    assert (hidden[:, CENTRES].sum(axis=1) == 1).all()
    visible = ~hidden
    np.testing.assert_array_equal(dataset.puzzles[visible], dataset.solutions[visible])
    assert len({tuple(np.flatnonzero(row)) for row in hidden}) > 50  # masks vary


def test_hidden_colours_are_determined_by_the_visible_ones(dataset):
    for puzzle, solution in zip(dataset.puzzles[:8], dataset.solutions[:8]):
        hidden = np.flatnonzero(puzzle == HIDDEN)
        # Each colour appears 9 times, so the hidden colours are the missing ones in some order.
        missing = np.repeat(np.arange(6), 9 - np.bincount(puzzle[puzzle != HIDDEN], minlength=6))
        legal = set()
        for order in set(itertools.permutations(missing.tolist())):
            candidate = puzzle.copy()
            candidate[hidden] = order
            if not legality_problems(candidate):
                legal.add(order)
        assert legal == {tuple(solution[hidden].tolist())}


def test_determinism_and_prefix_property():
    first = generate_dataset(15, seed=11)
    again = generate_dataset(15, seed=11)
    np.testing.assert_array_equal(first.puzzles, again.puzzles)
    np.testing.assert_array_equal(first.solutions, again.solutions)
    prefix = generate_dataset(5, seed=11)
    np.testing.assert_array_equal(prefix.puzzles, first.puzzles[:5])
    assert not np.array_equal(generate_dataset(5, seed=12).solutions, prefix.solutions)


@pytest.mark.parametrize(
    "arguments",
    [{"count": 0}, {"count": 3, "moves": ("U", "Q")}, {"count": 3, "hidden": {"corner": 30}}, {"count": 3, "seed": -1}],
)
def test_generator_rejects_bad_settings(arguments):
    with pytest.raises(ValueError):
        generate_dataset(**arguments)


# ---------------------------------------------------------------- checker and encoding


def test_checker_reports_changed_visible_facelets(dataset):
    puzzle, solution = dataset.puzzles[0], dataset.solutions[0]
    assert state_violations(solution, puzzle) == []
    visible = np.flatnonzero(puzzle != HIDDEN)
    other = solution.copy()
    # Swap two differently coloured visible corner stickers: colour counts stay right.
    a = next(i for i in visible if i in CORNER_FACELETS)
    b = next(i for i in visible if i in CORNER_FACELETS and solution[i] != solution[a])
    other[[a, b]] = other[[b, a]]
    problems = state_violations(other, puzzle)
    assert any("visible facelet" in p for p in problems)


def test_encoding_layout_and_round_trip(dataset):
    bits = state_to_bits(dataset.solutions)
    assert bits.shape == (60, 324)
    assert (bits.sum(axis=1) == 54).all()
    f = 17
    assert bits[0, f * 6 + dataset.solutions[0, f]] == 1
    assert bit_index(f, int(dataset.solutions[0, f])) == f * 6 + int(dataset.solutions[0, f])
    np.testing.assert_array_equal(bits_to_state(bits), dataset.solutions)
    puzzle_bits = state_to_bits(dataset.puzzles)
    mask = is_input_mask(dataset.puzzles)
    assert mask.dtype == bool and (mask.sum(axis=1) == 6 * 49).all()
    assert (puzzle_bits[~mask] == 0).all()
    np.testing.assert_array_equal(puzzle_bits[mask], bits[mask])


# ---------------------------------------------------------------- file format


def test_save_load_round_trip(tmp_path, dataset):
    loaded = round_trip(tmp_path / "cube.npz", save_dataset, load_dataset, dataset)
    assert loaded.metadata["seed"] == 3
    assert loaded.metadata["settings"]["scramble_length"] == 60
    assert loaded.metadata["settings"]["hidden"] == {"corner": 3, "edge": 1, "centre": 1}


def test_missing_truncated_and_corrupt_files(tmp_path, dataset):
    with pytest.raises(DatasetError, match="no such"):
        load_dataset(tmp_path / "absent.npz")
    path = tmp_path / "cube.npz"
    save_dataset(path, dataset)
    truncations_are_refused(path, load_dataset)
    flipped_bytes_never_give_wrong_data(path, load_dataset, {"puzzles": dataset.puzzles, "solutions": dataset.solutions})


def write_raw(path, puzzles, solutions, **metadata_changes):
    metadata = {
        "kind": "cube",
        "cube_version": CUBE_DATA_VERSION,
        "count": len(puzzles),
        "settings": {"hidden": {"corner": 3, "edge": 1, "centre": 1}},
        **metadata_changes,
    }
    save_npz(path, {"puzzles": puzzles, "solutions": solutions}, metadata)


def _swap_edge_colours(puzzles, solutions, hidden):  # an edge cubie flipped: no longer legal
    solutions[4, EDGES[0]] = solutions[4, EDGES[0][::-1]]
    puzzles[4, EDGES[0]] = solutions[4, EDGES[0]]
    puzzles[4, hidden[4]] = HIDDEN
    return puzzles, solutions, {}


def _recolour_a_visible_facelet(puzzles, solutions, hidden):
    visible = np.flatnonzero(puzzles[2] != HIDDEN)[0]
    puzzles[2, visible] = (puzzles[2, visible] + 1) % 6
    return puzzles, solutions, {}


def _hide_an_edge_facelet(puzzles, solutions, hidden):
    visible_edge = next(i for i in EDGE_FACELETS if puzzles[7, i] != HIDDEN)
    puzzles[7, visible_edge] = HIDDEN
    return puzzles, solutions, {}


# Each damage to a file, and the words the refusal must contain.
DAMAGES = {
    "illegal_solution": (_swap_edge_colours, "not legal"),
    "changed_visible": (_recolour_a_visible_facelet, "disagree"),
    "extra_hidden": (_hide_an_edge_facelet, "hidden edge"),
    "wrong_kind": (lambda p, s, h: (p, s, {"kind": "sudoku"}), "expected a cube"),
    "wrong_count": (lambda p, s, h: (p, s, {"count": 61}), "count"),
    "wrong_shape": (lambda p, s, h: (p[:, :53], s[:, :53], {}), "shape"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_inconsistent_files(tmp_path, dataset, damage):
    spoil, message = DAMAGES[damage]
    puzzles, solutions, changes = spoil(dataset.puzzles.copy(), dataset.solutions.copy(), dataset.hidden)
    path = tmp_path / "bad.npz"
    write_raw(path, puzzles, solutions, **changes)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_checksum_mismatch(tmp_path, dataset):
    path = tmp_path / "cube.npz"
    metadata = save_dataset(path, dataset)
    puzzles = dataset.puzzles.copy()
    puzzles[0, CENTRES] = HIDDEN
    old_digest_is_caught(path, load_dataset, metadata, {"puzzles": puzzles, "solutions": dataset.solutions})


# ---------------------------------------------------------------- command line


def test_cli_generate_then_check(tmp_path, capsys):
    path = tmp_path / "cli.npz"
    assert cube_main(["generate", "--count", "30", "--seed", "5", "--quiet", "--out", str(path)]) == 0
    assert "wrote 30 cubes" in capsys.readouterr().out
    assert cube_main(["check", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
    np.testing.assert_array_equal(load_dataset(path).solutions, generate_dataset(30, seed=5).solutions)


def test_cli_bad_inputs_give_clear_errors(tmp_path, capsys, dataset):
    bad = tmp_path / "bad.npz"
    puzzles = dataset.puzzles.copy()
    puzzles[1, CENTRES] = HIDDEN
    write_raw(bad, puzzles, dataset.solutions, count=60)
    assert cube_main(["check", str(bad)]) == 1
    assert "hidden centre" in capsys.readouterr().err
    assert cube_main(["check", str(tmp_path / "missing.npz")]) == 1
    assert "no such" in capsys.readouterr().err
    assert cube_main(["generate", "--count", "3", "--moves", "U Q", "--out", str(bad)]) == 2
    assert "unknown scramble moves" in capsys.readouterr().err


def test_module_entry_point_runs_as_a_subprocess(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_text("not a zip")
    result = subprocess.run(
        [sys.executable, "-m", "puzzles.cube", "check", str(path)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_hidden_corners_follow_the_published_rule():
    from puzzles.cube.pieces import CORNERS

    dataset = generate_dataset(300, seed=13)
    for puzzle, solution in zip(dataset.puzzles, dataset.solutions):
        hidden_per_corner = (puzzle[CORNERS] < 0).sum(axis=1)
        assert hidden_per_corner.sum() == 3 and hidden_per_corner.max() <= 2
        twice = np.flatnonzero(hidden_per_corner == 2)
        visible = [int(solution[CORNERS[c]][puzzle[CORNERS[c]] >= 0][0]) for c in twice]
        # the later of two such corners shows a colour the other does not have at all
        if len(twice) == 2:
            first, second = (set(solution[CORNERS[c]].tolist()) for c in twice)
            assert visible[0] not in second or visible[1] not in first


def test_error_breakdown_counts_each_kind_of_hidden_facelet(dataset):
    puzzles, solutions = dataset.puzzles, dataset.solutions
    count = len(puzzles)
    perfect = error_breakdown(puzzles, solutions, solutions)
    assert perfect["corner_alone"]["count"] + perfect["corner_paired"]["count"] == 3 * count
    assert perfect["edge"]["count"] == perfect["centre"]["count"] == count
    assert perfect["corners_distinct"]["count"] + perfect["corners_paired"]["count"] == count
    assert all(part["accuracy"] == 1.0 for part in perfect.values() if part["count"])
    # The published rule pairs hidden facelets on one corner in part of the boards.
    assert perfect["corner_paired"]["count"] == 2 * perfect["corners_paired"]["count"] > 0

    predictions = solutions.copy()
    wrong = lambda board, f: (solutions[board, f] + 1) % 6  # noqa: E731
    paired_board = next(b for b in range(count) if any((puzzles[b, c] == HIDDEN).sum() == 2 for c in CORNERS))
    corner = next(c for c in CORNERS if (puzzles[paired_board, c] == HIDDEN).sum() == 2)
    facelet_paired = int(corner[puzzles[paired_board, corner] == HIDDEN][0])
    predictions[paired_board, facelet_paired] = wrong(paired_board, facelet_paired)
    other = next(b for b in range(count) if all((puzzles[b, c] == HIDDEN).sum() < 2 for c in CORNERS))
    centre = int(CENTRES[puzzles[other, CENTRES] == HIDDEN][0])
    predictions[other, centre] = wrong(other, centre)
    visible = int(np.flatnonzero(puzzles[other] != HIDDEN)[0])
    predictions[other, visible] = wrong(other, visible)  # not a completion error: not counted
    result = error_breakdown(puzzles, solutions, predictions)
    assert result["corner_paired"]["accuracy"] == pytest.approx(1 - 1 / perfect["corner_paired"]["count"])
    assert result["corner_alone"]["accuracy"] == 1.0 and result["edge"]["accuracy"] == 1.0
    assert result["centre"]["accuracy"] == pytest.approx(1 - 1 / count)
    assert result["corners_paired"]["accuracy"] == pytest.approx(1 - 1 / perfect["corners_paired"]["count"])
    assert result["corners_distinct"]["accuracy"] == pytest.approx(1 - 1 / perfect["corners_distinct"]["count"])
    with pytest.raises(ValueError, match="must all have shape"):
        error_breakdown(puzzles, solutions, solutions[:, :53])


def _opposite_colours() -> dict[int, int]:
    """Each colour's opposite: the one colour that shares no corner cubie with it."""
    from puzzles.cube.pieces import CORNER_COLOURS

    together = {(x, y) for k in CORNER_COLOURS.tolist() for x in k for y in k}
    return {x: next(y for y in range(6) if (x, y) not in together) for x in range(6)}


OPPOSITE = _opposite_colours()


def _handedness_blind_placements(group) -> tuple[int, int]:
    """(placements whose mirror image gets the same within-corner orbitals, placements).

    A placement is a cubie on a corner in one of its 3 twists with one facelet marked. Its
    mirror swaps the colours of the two unmarked facelets (a cubie that does not exist); its
    opposite gives the marked facelet the colour opposite its own (the other cubie with the
    two unmarked colours, in the wrong handedness). Both are compared with the placement.
    A layer tied under ``group`` gives two placements the same energy from the corner's own
    three pairs when the multisets of their orbital ids agree.
    """
    from collections import Counter

    from puzzles.cube.pieces import CORNER_COLOURS

    orbitals = group.orbitals()
    blind = total = 0
    for stickers in CORNERS.tolist():
        for cubie in CORNER_COLOURS.tolist():
            for twist in range(3):
                colours = cubie[twist:] + cubie[:twist]
                for seen in range(3):
                    first, second = (p for p in range(3) if p != seen)
                    mirror = list(colours)
                    mirror[first], mirror[second] = colours[second], colours[first]

                    def ids(placed):
                        v = [stickers[p] * 6 + placed[p] for p in range(3)]
                        return Counter(int(orbitals[v[a], v[b]]) for a, b in ((0, 1), (0, 2), (1, 2)))

                    total += 1
                    blind += ids(colours) == ids(mirror)
                    # one hidden facelet: its colour against the opposite one (the third
                    # colour of the other cubie with the two visible colours)
                    other = list(colours)
                    other[seen] = OPPOSITE[colours[seen]]
                    total += 1
                    blind += ids(colours) == ids(other)
    return blind, total


def test_every_ordered_pair_of_adjacent_colours_turns_clockwise_on_exactly_one_corner():
    # Why no pairwise rule inside a corner fixes the order of two hidden colours: both
    # orders are made of clockwise pairs that real cubies have (docs/results.md, cube).
    from collections import Counter

    from puzzles.cube.pieces import CORNER_COLOURS

    clockwise = Counter((k[i], k[(i + 1) % 3]) for k in CORNER_COLOURS.tolist() for i in range(3))
    assert len(clockwise) == 24 and set(clockwise.values()) == {1}


def test_cube_group_orbitals_cannot_tell_a_corner_from_its_mirror_images():
    from symsatnet.groups import FromGenerators, Product, Trivial, cube_group

    for group in (cube_group(), cube_group(slices=False)):
        assert _handedness_blind_placements(group) == (1152, 1152)
    # Without the colour symmetry the orbitals do tell them apart, so the check can fail.
    moves = FromGenerators(54, [MOVES[name] for name in "UDFBLRMES"])
    facelets_only = Product(moves, Trivial(6))
    blind, total = _handedness_blind_placements(facelets_only)
    assert total == 1152 and blind < total


def _blind_completions(puzzle: np.ndarray) -> int:
    """Reference: colourings of the hidden corner facelets that make all 8 corners show
    distinct cubies' colour sets (orientation ignored), by brute force over 6**3."""
    from puzzles.cube.pieces import CORNER_COLOURS

    cubies = {frozenset(k) for k in CORNER_COLOURS.tolist()}
    hidden = [f for f in CORNER_FACELETS if puzzle[f] == HIDDEN]
    count = 0
    for colours in itertools.product(range(6), repeat=len(hidden)):
        board = puzzle.copy()
        board[hidden] = colours
        sets = {frozenset(board[stickers].tolist()) for stickers in CORNERS}
        count += sets == cubies
    return count


def test_handedness_blind_ceiling_matches_brute_force(dataset):
    puzzles, solutions = dataset.puzzles[:40], dataset.solutions[:40]
    expected = np.mean([1 / _blind_completions(p) for p in puzzles])
    ceiling = handedness_blind_ceiling(puzzles, solutions)
    assert ceiling["count"] == 40
    assert ceiling["board"] == pytest.approx(expected, abs=1e-12)
    # a paired facelet is right half the time at best; most boards leave some choice
    assert ceiling["corner_paired"] <= 0.5 and 0.5 < ceiling["board"] < 1
    assert 0.5 < ceiling["corner_alone"] <= 1


def test_handedness_blind_ceiling_rejects_bad_input(dataset):
    with pytest.raises(ValueError, match="shape"):
        handedness_blind_ceiling(dataset.puzzles[:3], dataset.solutions[:2])
    wrong = dataset.solutions[:2].copy()
    wrong[0, CORNERS[0]] = wrong[0, CORNERS[1]]  # corner 0 shows corner 1's cubie
    with pytest.raises(ValueError, match="board 0"):
        handedness_blind_ceiling(dataset.puzzles[:2], wrong)
