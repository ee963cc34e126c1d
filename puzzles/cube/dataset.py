"""Rubik's-cube completion data (docs/design.md, "Experiments and tests"): scrambled cubes with a few facelets hidden.

Each example scrambles the solved cube by 60 random moves and hides 3 corner facelets,
1 edge facelet and 1 centre facelet, distinct; edge and centre facelets uniformly at
random, corner facelets by the published rule (never all three of one corner, and a
corner with two hidden keeps a visible colour that no other such corner has). The task
is to predict the hidden colours from the rest. States are int8 arrays of 54 colours in
symsatnet.cube_moves' numbering; in ``puzzles`` a hidden facelet is -1. The hidden
colours are always determined by the rest: the other cubies fix which pieces are missing,
and the visible stickers of a cubie fix its identity.

Scramble moves are drawn uniformly from the published 27 (the face turns U D F B L R and
the slice turns M E S, each as quarter turn, half turn and inverse; ``published27``) unless
told otherwise. Every quarter turn is an odd permutation of the 54 facelets, so scrambles
of 60 quarter turns only (``quarter18``, this package's choice before data version 2) are
all even and reach half of the states the published data reaches. Files record a
``cube_version``; :func:`load_dataset` refuses another version with the reason.

Example i draws all its randomness from SeedSequence(seed, spawn_key=(i,)), so a smaller
data set is a prefix of a larger one with the same seed and settings.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from symsatnet.cube_moves import FACE_TURNS, FACELETS, MOVES, SLICE_TURNS, SOLVED

from ..datafile import DatasetError, PuzzleDataset, describe_indices, load_npz, require, save_npz
from .pieces import CENTRES, CORNER_COLOURS, CORNER_FACELETS, CORNERS, EDGE_FACELETS, legality_problems

ARRAY_NAMES = ("puzzles", "solutions")
HIDDEN = -1
# Version 1: no cube_version in the metadata, scrambles from the 18 quarter turns only.
# Version 2: scrambles from the published 27 moves by default, the move set recorded.
CUBE_DATA_VERSION = 2
SCRAMBLE_MOVE_SETS = {
    # The published generator: 9 moves, each as quarter turn, half turn and inverse.
    "published27": tuple(name + suffix for name in FACE_TURNS + SLICE_TURNS for suffix in ("", "2", "'")),
    # The generators of the published facelet group: face and slice quarter turns both ways.
    # All odd facelet permutations, so an even-length scramble is always an even one.
    "quarter18": tuple(name + suffix for name in FACE_TURNS + SLICE_TURNS for suffix in ("", "'")),
}
DEFAULT_MOVE_SET = "published27"
DEFAULT_SCRAMBLE_MOVES = SCRAMBLE_MOVE_SETS[DEFAULT_MOVE_SET]
DEFAULT_HIDDEN = {"corner": 3, "edge": 1, "centre": 1}
FACELETS_OF_KIND = {"corner": CORNER_FACELETS, "edge": EDGE_FACELETS, "centre": CENTRES}


class CubeDataset(PuzzleDataset):
    """Scrambled cubes (solutions) and the same with hidden facelets set to -1 (puzzles), int8 (count, 54)."""

    @property
    def hidden(self) -> np.ndarray:
        """(count, 54) bool: True where the facelet is to be predicted."""
        return self.puzzles == HIDDEN


def scramble(
    rng: np.random.Generator, length: int = 60, moves: tuple[str, ...] = DEFAULT_SCRAMBLE_MOVES
) -> tuple[np.ndarray, list[str]]:
    """(state, move names): the solved cube after length moves drawn uniformly from moves."""
    names = [moves[i] for i in rng.integers(len(moves), size=length)]
    position = np.arange(FACELETS)
    # Track where each sticker goes (push convention), then place the colours once.
    for name in names:
        position = MOVES[name][position]
    state = np.empty(FACELETS, dtype=np.int8)
    state[position] = SOLVED
    return state, names


def _hidden_corner_facelets(rng: np.random.Generator, state: np.ndarray, number: int) -> np.ndarray:
    """number corner facelets to hide, as the published data does.

    A random corner gets one hidden facelet; a corner picked again gets a second one only
    if its last visible colour is none of the colours of the corners that already have two
    hidden, so every corner stays identifiable from what is visible; never all three.
    (The published code sometimes hid fewer when no second facelet qualified; this one
    draws again until exactly ``number`` are hidden.)
    """
    if number > 2 * len(CORNERS):
        raise ValueError(f"at most {2 * len(CORNERS)} corner facelets can be hidden, asked for {number}")
    hidden_at: dict[int, list[int]] = {}
    twice: list[int] = []
    for _ in range(100_000):
        if sum(map(len, hidden_at.values())) == number:
            break
        corner = int(rng.integers(len(CORNERS)))
        taken = hidden_at.setdefault(corner, [])
        if not taken:
            taken.append(int(rng.integers(3)))
            continue
        if len(taken) == 2:
            continue
        forbidden = set(state[CORNERS[twice]].ravel().tolist())
        for position in rng.permutation([p for p in range(3) if p != taken[0]]).tolist():
            visible = 3 - taken[0] - position
            if int(state[CORNERS[corner, visible]]) not in forbidden:
                taken.append(position)
                twice.append(corner)
                break
    else:  # pragma: no cover - needs an impossible request
        raise RuntimeError(f"could not hide {number} corner facelets")
    return np.array([CORNERS[corner, p] for corner, positions in hidden_at.items() for p in positions], dtype=np.int64)


def choose_hidden(
    rng: np.random.Generator, hidden: dict[str, int] = DEFAULT_HIDDEN, state: np.ndarray | None = None
) -> np.ndarray:
    """Sorted facelet indices to hide: hidden[kind] distinct facelets of each kind.

    With the cube's state, corner facelets follow the published rule
    (:func:`_hidden_corner_facelets`); without it they are drawn uniformly.
    """
    chosen = []
    for kind, number in hidden.items():
        if kind == "corner" and state is not None:
            chosen.append(_hidden_corner_facelets(rng, state, number))
        else:
            chosen.append(rng.choice(FACELETS_OF_KIND[kind], size=number, replace=False))
    return np.sort(np.concatenate(chosen))


def example_rng(seed: int, index: int) -> np.random.Generator:
    """The generator all of example index's randomness comes from."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def check_generation_options(
    count: int, scramble_length: int, moves: tuple[str, ...], hidden: dict[str, int] | None = None
) -> dict[str, int]:
    """ValueError naming the first bad option of :func:`generate_dataset`; the hidden counts to use."""
    hidden = dict(DEFAULT_HIDDEN if hidden is None else hidden)
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    if scramble_length < 0:
        raise ValueError(f"scramble length must be non-negative, got {scramble_length}")
    unknown = [name for name in moves if name not in MOVES]
    if unknown or not moves:
        raise ValueError(f"unknown scramble moves {unknown}; known: {' '.join(MOVES)}")
    for kind, number in hidden.items():
        if kind not in FACELETS_OF_KIND or not 0 <= number <= len(FACELETS_OF_KIND[kind]):
            raise ValueError(f"cannot hide {number} {kind} facelets")
    return hidden


def generate_dataset(
    count: int,
    seed: int | None = None,
    scramble_length: int = 60,
    moves: tuple[str, ...] = DEFAULT_SCRAMBLE_MOVES,
    hidden: dict[str, int] | None = None,
    progress: bool = False,
) -> CubeDataset:
    """count completion examples; with seed None a fresh seed is drawn and recorded."""
    from tqdm import tqdm

    hidden = check_generation_options(count, scramble_length, moves, hidden)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    solutions = np.empty((count, FACELETS), dtype=np.int8)
    puzzles = np.empty_like(solutions)
    for index in tqdm(range(count), disable=not progress, unit="cube", desc="cube"):
        rng = example_rng(seed, index)
        solutions[index], _ = scramble(rng, scramble_length, moves)
        puzzles[index] = solutions[index]
        puzzles[index, choose_hidden(rng, hidden, solutions[index])] = HIDDEN
    move_set = next((name for name, names in SCRAMBLE_MOVE_SETS.items() if names == tuple(moves)), None)
    metadata = {
        "kind": "cube",
        "cube_version": CUBE_DATA_VERSION,
        "generator": "puzzles.cube.dataset",
        "count": count,
        "seed": seed,
        "settings": {"scramble_length": scramble_length, "moves": list(moves), "move_set": move_set, "hidden": hidden},
    }
    return CubeDataset(puzzles, solutions, metadata)


def consistency_problems(puzzles: np.ndarray, solutions: np.ndarray, hidden: dict[str, int] | None = None) -> list[str]:
    """Why (puzzles, solutions) is not a consistent data set; [] if it is.

    Checks that every solution is a legal cube, that puzzles agree with their solutions
    on visible facelets, and (if hidden is given) the number of hidden facelets of each kind.
    """
    if puzzles.shape != solutions.shape or puzzles.ndim != 2 or puzzles.shape[1] != FACELETS:
        return [f"puzzles {puzzles.shape} and solutions {solutions.shape} must both have shape (count, {FACELETS})"]
    problems = []
    illegal = np.flatnonzero([bool(legality_problems(solution)) for solution in solutions])
    if len(illegal):
        first = legality_problems(solutions[illegal[0]])[0]
        problems.append(f"solutions that are not legal cube states: {describe_indices(illegal)} (first: {first})")
    bad_values = np.flatnonzero(((puzzles < HIDDEN) | (puzzles > 5)).any(axis=1))
    if len(bad_values):
        problems.append(f"puzzles with values outside -1..5: {describe_indices(bad_values)}")
    disagreeing = np.flatnonzero(((puzzles != HIDDEN) & (puzzles != solutions)).any(axis=1))
    if len(disagreeing):
        problems.append(f"puzzles whose visible facelets disagree with their solution: {describe_indices(disagreeing)}")
    if hidden is not None:
        for kind, number in hidden.items():
            counts = (puzzles[:, FACELETS_OF_KIND[kind]] == HIDDEN).sum(axis=1)
            wrong = np.flatnonzero(counts != number)
            if len(wrong):
                problems.append(f"puzzles without exactly {number} hidden {kind} facelet(s): {describe_indices(wrong)}")
    return problems


def save_dataset(path: str | os.PathLike, dataset: CubeDataset) -> dict:
    """Write dataset to path (.npz) after checking its consistency; returns the stored metadata."""
    hidden = dataset.metadata.get("settings", {}).get("hidden")
    problems = consistency_problems(dataset.puzzles, dataset.solutions, hidden)
    if problems:
        raise ValueError("refusing to save an inconsistent data set: " + "; ".join(problems))
    metadata = dict(dataset.metadata, kind="cube", count=len(dataset))
    metadata.setdefault("cube_version", CUBE_DATA_VERSION)
    arrays = {"puzzles": dataset.puzzles.astype(np.int8), "solutions": dataset.solutions.astype(np.int8)}
    stored = save_npz(path, arrays, metadata)
    dataset.metadata = stored
    return stored


def data_version(metadata: dict) -> int:
    """The cube data version a file's metadata records (1 for files from before versions)."""
    return metadata.get("cube_version", 1)


def load_dataset(path: str | os.PathLike, verify: bool = True, old_version: bool = False) -> CubeDataset:
    """Load a data set written by save_dataset; raises DatasetError on any failure.

    Always checks integrity (readable, checksum, shapes, dtypes, count) and the cube data
    version (another version than CUBE_DATA_VERSION is refused with what differs, unless
    old_version allows version 1, e.g. to evaluate a model trained on it); with verify
    also that every solution is a legal cube, puzzles agree with it, and the hidden
    facelets match the recorded settings.
    """
    arrays, metadata = load_npz(path, "cube", ARRAY_NAMES)
    version = data_version(metadata)
    if version != CUBE_DATA_VERSION and not (old_version and version == 1):
        detail = (
            "scrambles drawn from the 18 quarter turns only, so every state is an even facelet permutation "
            "(half of the states the published 27-move scrambles reach)"
            if version == 1
            else "a version this code does not know"
        )
        raise DatasetError(
            f"{path}: cube data version {version!r} ({detail}); this code reads version {CUBE_DATA_VERSION}. "
            f"Regenerate it (python -m puzzles.cube generate; --scramble-moves quarter18 gives the old "
            f"move set in the current format) rather than mixing it with new data"
        )
    puzzles, solutions = arrays["puzzles"], arrays["solutions"]
    for name, array in arrays.items():
        require(array.dtype == np.int8, path, f"{name} must be int8, found {array.dtype}")
        shape_ok = array.ndim == 2 and array.shape[1] == FACELETS
        require(shape_ok, path, f"{name} must have shape (count, {FACELETS}), found {array.shape}")
    same_shape = puzzles.shape == solutions.shape
    require(same_shape, path, f"puzzles {puzzles.shape} and solutions {solutions.shape} differ in shape")
    count = metadata.get("count")
    require(count == len(puzzles), path, f"metadata count {count!r} but {len(puzzles)} examples stored")
    if verify:
        hidden = metadata.get("settings", {}).get("hidden")
        problems = consistency_problems(puzzles, solutions, hidden)
        require(not problems, path, "; ".join(problems))
    return CubeDataset(puzzles, solutions, metadata)


__all__ = [
    "CubeDataset",
    "DatasetError",
    "CUBE_DATA_VERSION",
    "DEFAULT_SCRAMBLE_MOVES",
    "HIDDEN",
    "SCRAMBLE_MOVE_SETS",
    "data_version",
    "choose_hidden",
    "consistency_problems",
    "generate_dataset",
    "load_dataset",
    "save_dataset",
    "scramble",
]


def error_breakdown(puzzles: np.ndarray, solutions: np.ndarray, predictions: np.ndarray) -> dict:
    """Where completions go wrong: accuracy per kind of hidden facelet, and board accuracy
    per arrangement of the hidden corner facelets.

    Hidden corner facelets are split into those alone on their corner ("corner_alone") and
    those sharing it with a second hidden one ("corner_paired"). Board accuracy is given for
    the boards whose hidden corner facelets are on distinct corners ("corners_distinct") and
    for those with a pair on one corner ("corners_paired"). Each entry is
    ``{"count": ..., "accuracy": ...}`` (accuracy None for a count of 0).
    """
    puzzles, solutions, predictions = (np.asarray(a) for a in (puzzles, solutions, predictions))
    if not (puzzles.shape == solutions.shape == predictions.shape) or puzzles.ndim != 2 or puzzles.shape[1] != FACELETS:
        raise ValueError(
            f"puzzles, solutions and predictions must all have shape (count, {FACELETS}), got "
            f"{puzzles.shape}, {solutions.shape} and {predictions.shape}"
        )
    hidden = puzzles == HIDDEN
    right = predictions == solutions
    corner_of = np.full(FACELETS, -1)
    for index, stickers in enumerate(CORNERS):
        corner_of[stickers] = index
    # Hidden facelets per corner, per board: (count, 8).
    per_corner = np.stack([hidden[:, stickers].sum(axis=1) for stickers in CORNERS], axis=1)
    is_corner = corner_of >= 0
    shares = np.zeros_like(hidden)
    shares[:, is_corner] = per_corner[:, corner_of[is_corner]] >= 2
    masks = {
        "corner_alone": hidden & is_corner & ~shares,
        "corner_paired": hidden & shares,
        "edge": hidden & np.isin(np.arange(FACELETS), EDGE_FACELETS),
        "centre": hidden & np.isin(np.arange(FACELETS), CENTRES),
    }

    def entry(selected: np.ndarray, ok: np.ndarray) -> dict:
        count = int(selected.sum())
        return {"count": count, "accuracy": float(ok[selected].mean()) if count else None}

    result = {name: entry(mask, right) for name, mask in masks.items()}
    board_right = (right | ~hidden).all(axis=1)
    paired = (per_corner >= 2).any(axis=1)
    result["corners_distinct"] = entry(~paired, board_right)
    result["corners_paired"] = entry(paired, board_right)
    return result


def handedness_blind_ceiling(puzzles: np.ndarray, solutions: np.ndarray) -> dict:
    """The accuracy a completer that cannot tell a corner cubie from its mirror image can expect.

    Such a completer knows every hidden edge and centre facelet, and which cubie sits on each
    corner as far as the visible colours and "every corner cubie once" decide (colours as
    sets, so without handedness). Among the assignments of cubies to corners that remain it
    picks one at random; a corner with one hidden facelet is then complete, and the two hidden
    facelets of a paired corner get the cubie's two other colours in either order, right half
    the time. A yardstick for layers that cannot see handedness: the orbitals of
    ``cube_group()`` give a corner and its mirror image the same within-corner energy (see
    tests/puzzles/test_cube_data.py), so such a layer can tell them apart only from the rest of the
    board; on boards with a paired corner no blind completer beats 1/2.

    Returns ``{"count", "board", "corner_alone", "corner_paired"}``: expected board
    accuracy and expected accuracy on each kind of hidden corner facelet (None where there
    is none).
    """
    puzzles, solutions = np.asarray(puzzles), np.asarray(solutions)
    if puzzles.shape != solutions.shape or puzzles.ndim != 2 or puzzles.shape[1] != FACELETS:
        raise ValueError(
            f"puzzles and solutions must both have shape (count, {FACELETS}), got {puzzles.shape} and {solutions.shape}"
        )
    cubies = [frozenset(colours) for colours in CORNER_COLOURS.tolist()]
    boards, alone, paired = [], [], []
    for number, (puzzle, solution) in enumerate(zip(puzzles, solutions)):
        hidden = puzzle[CORNERS] == HIDDEN  # (8, 3)
        candidates = [
            [k for k, cubie in enumerate(cubies) if set(puzzle[stickers][~hidden[c]].tolist()) <= cubie]
            for c, stickers in enumerate(CORNERS)
        ]
        truth = [cubies.index(frozenset(solution[stickers].tolist())) for stickers in CORNERS]
        assignments = [a for a in itertools.product(*candidates) if len(set(a)) == len(cubies)]
        if tuple(truth) not in assignments:
            raise ValueError(f"board {number}: its solution does not agree with its visible corner colours")
        pairs = int((hidden.sum(axis=1) == 2).sum())
        boards.append(0.5**pairs / len(assignments))
        for c in np.flatnonzero(hidden.any(axis=1)):
            share = sum(a[c] == truth[c] for a in assignments) / len(assignments)
            if hidden[c].sum() == 1:
                alone.append(share)
            else:
                paired.extend([share / 2] * int(hidden[c].sum()))

    def mean(values: list) -> float | None:
        return float(np.mean(values)) if values else None

    return {"count": len(boards), "board": mean(boards), "corner_alone": mean(alone), "corner_paired": mean(paired)}
