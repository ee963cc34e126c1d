"""Facelet numbering and move tables of the 3x3x3 Rubik's cube (the single source of truth).

Numbering. Faces in the order ``FACES = "URFDLB"`` (face index 0..5, as in Kociemba's
facelet strings). Face F has facelets 9*F + pos, pos = 3*row + column read row-major as you
look straight at that face from outside, held so that:

* U: seen from above, B edge at the top (row 0), F edge at the bottom;
* R, F, L, B: seen from their own side, U edge at the top;
* D: seen from below, F edge at the top, B edge at the bottom.

So pos 4 is the centre; e.g. the corner URF holds facelets U8 (8), R0 (9), F2 (20). In 3D
(x to the right face R, y up to U, z toward the front F) facelet (F, row, column) sits on the
cubie at ``normal + (column-1)*right + (row-1)*down`` with the table ``_FACE_FRAMES`` below.

A state is an int array of 54 colours (any leading batch shape is allowed); a solved face has
the colour of its face index: ``SOLVED = [0]*9 + [1]*9 + ... + [5]*9``.

Moves (Singmaster). "U" "D" "F" "B" "L" "R": quarter turn of that face clockwise as seen looking
at the face. Slices: "M" turns the middle layer between L and R like L, "E" the one between U and
D like D, "S" the one between F and B like F. Whole-cube rotations: "x" like R, "y" like U, "z"
like F. A suffix "'" is the inverse, "2" the half turn. Sequences are strings of space-separated
moves, e.g. ``"R U R' U'"``, applied left to right.

Permutation convention ("push"): a move is an int array ``perm`` with ``perm[i]`` = the position
the sticker at facelet i moves to, so

    new_state[perm[i]] = state[i]        (numpy: new_state[..., perm] = state)

This is the group language's convention (``p[i]`` = image of i), so the tables can be used as
generators directly. Doing ``a`` then ``b`` is the permutation ``b[a]`` (``compose(a, b)``).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "FACELETS",
    "FACES",
    "SOLVED",
    "MOVES",
    "BASE_MOVES",
    "FACE_TURNS",
    "SLICE_TURNS",
    "ROTATIONS",
    "facelet",
    "compose",
    "inverse",
    "parse",
    "sequence_permutation",
    "inverse_sequence",
    "apply",
    "rotation_colour_permutation",
    "whole_cube_rotations",
    "to_facelet_string",
    "from_facelet_string",
]

FACES = "URFDLB"
FACELETS = 54
SOLVED = np.repeat(np.arange(6, dtype=np.int64), 9)
SOLVED.flags.writeable = False

# Face -> (outward normal, screen-right, screen-down) in x-right, y-up, z-front coordinates.
_FACE_FRAMES = {
    "U": ((0, 1, 0), (1, 0, 0), (0, 0, 1)),
    "R": ((1, 0, 0), (0, 0, -1), (0, -1, 0)),
    "F": ((0, 0, 1), (1, 0, 0), (0, -1, 0)),
    "D": ((0, -1, 0), (1, 0, 0), (0, 0, -1)),
    "L": ((-1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "B": ((0, 0, -1), (-1, 0, 0), (0, -1, 0)),
}

# Move -> (axis it turns clockwise about, which layers: coordinate along the axis or None = all).
_AXES = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}
_TURNS = {
    **{face: (frame[0], 1) for face, frame in _FACE_FRAMES.items()},
    "M": ((-1, 0, 0), 0),
    "E": ((0, -1, 0), 0),
    "S": ((0, 0, 1), 0),
    **{name: (axis, None) for name, axis in _AXES.items()},
}

FACE_TURNS = ("U", "D", "F", "B", "L", "R")
SLICE_TURNS = ("M", "E", "S")
ROTATIONS = ("x", "y", "z")
BASE_MOVES = FACE_TURNS + SLICE_TURNS + ROTATIONS


def facelet(face: str, position: int) -> int:
    """Index of facelet ``position`` (0..8, row-major) of ``face`` (one of "URFDLB")."""
    if face not in FACES or len(face) != 1:
        raise ValueError(f"face must be one of {FACES!r}, got {face!r}")
    if not 0 <= position < 9:
        raise ValueError(f"position must be in 0..8, got {position}")
    return 9 * FACES.index(face) + position


def _facelet_geometry() -> np.ndarray:
    """(54, 2, 3) int array: the cubie position and outward normal of every facelet."""
    geometry = np.zeros((FACELETS, 2, 3), dtype=np.int64)
    for face_index, face in enumerate(FACES):
        normal, right, down = (np.array(v) for v in _FACE_FRAMES[face])
        for row in range(3):
            for column in range(3):
                cubie = normal + (column - 1) * right + (row - 1) * down
                geometry[9 * face_index + 3 * row + column] = (cubie, normal)
    return geometry


def _clockwise_quarter(axis: Sequence[int]) -> np.ndarray:
    """Rotation by -90 degrees about ``axis`` (clockwise seen from its tip), integer matrix."""
    x, y, z = axis
    cross = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3, dtype=np.int64) - cross + cross @ cross  # Rodrigues with sin = -1, cos = 0


def _turn_permutation(axis: Sequence[int], layer: int | None) -> np.ndarray:
    geometry = _facelet_geometry()
    where = {tuple(geometry[i].ravel()): i for i in range(FACELETS)}
    rotation = _clockwise_quarter(axis)
    perm = np.arange(FACELETS, dtype=np.int64)
    for i in range(FACELETS):
        cubie, normal = geometry[i]
        if layer is None or int(cubie @ np.array(axis)) == layer:
            perm[i] = where[tuple(np.concatenate([rotation @ cubie, rotation @ normal]))]
    return perm


def compose(*perms: np.ndarray) -> np.ndarray:
    """The permutation doing ``perms[0]`` first, then ``perms[1]``, ...: ``b[a]`` for two."""
    result = np.arange(FACELETS, dtype=np.int64)
    for perm in perms:
        result = np.asarray(perm, dtype=np.int64)[result]
    return result


def inverse(perm: np.ndarray) -> np.ndarray:
    """The inverse permutation."""
    perm = np.asarray(perm, dtype=np.int64)
    result = np.empty_like(perm)
    result[perm] = np.arange(len(perm), dtype=np.int64)
    return result


def _build_moves() -> dict[str, np.ndarray]:
    moves = {}
    for name in BASE_MOVES:
        axis, layer = _TURNS[name]
        quarter = _turn_permutation(axis, layer)
        half = compose(quarter, quarter)
        for suffix, perm in (("", quarter), ("2", half), ("'", inverse(quarter))):
            perm.flags.writeable = False
            moves[name + suffix] = perm
    return moves


MOVES: dict[str, np.ndarray] = _build_moves()
"""Facelet permutations (push convention) of every move: base, inverse ("U'") and half ("U2")."""


def parse(sequence: str | Iterable[str]) -> list[str]:
    """Split ``"R U R' U'"`` (or a list of names) into move names, checking every one.

    ``"U2'"`` is accepted as ``"U2"``; whitespace and commas separate moves.
    """
    tokens = sequence.replace(",", " ").split() if isinstance(sequence, str) else list(sequence)
    names = []
    for token in tokens:
        name = token[:-1] if token.endswith("2'") else token
        if name not in MOVES:
            raise ValueError(f"unknown move {token!r}; known: {' '.join(MOVES)}")
        names.append(name)
    return names


def sequence_permutation(sequence: str | Iterable[str] | np.ndarray) -> np.ndarray:
    """The facelet permutation of a move, a sequence of moves, or an explicit permutation."""
    if isinstance(sequence, np.ndarray) and np.issubdtype(sequence.dtype, np.integer):
        if sequence.shape != (FACELETS,):
            raise ValueError(f"a permutation must have shape ({FACELETS},), got {sequence.shape}")
        return sequence.astype(np.int64)
    return compose(*(MOVES[name] for name in parse(sequence)))


def inverse_sequence(sequence: str | Iterable[str]) -> str:
    """The sequence undoing ``sequence``: reversed, each move inverted (``"R U"`` -> ``"U' R'"``)."""
    def invert(name: str) -> str:
        if name.endswith("2"):
            return name
        return name[:-1] if name.endswith("'") else name + "'"

    return " ".join(invert(name) for name in reversed(parse(sequence)))


def apply(state: np.ndarray, moves: str | Iterable[str] | np.ndarray) -> np.ndarray:
    """Apply a move, a sequence (``"R U R' U'"``) or a permutation to state(s) of shape (..., 54)."""
    state = np.asarray(state)
    if state.shape[-1:] != (FACELETS,):
        raise ValueError(f"a state must have shape (..., {FACELETS}), got {state.shape}")
    perm = sequence_permutation(moves)
    result = np.empty_like(state)
    result[..., perm] = state
    return result


def rotation_colour_permutation(rotation: str | Iterable[str]) -> np.ndarray:
    """The 6-permutation q of colours a whole-cube rotation induces: q[f] = face that face f's
    centre moves to. Recolouring the rotated solved cube by q gives it back:
    ``q[apply(SOLVED, rotation)] == SOLVED``.

    Raises ValueError if the sequence contains face or slice turns that are not whole-cube
    rotations overall (some centre would not stay a centre with its face intact).
    """
    perm = sequence_permutation(rotation)
    centres = 9 * np.arange(6) + 4
    faces = perm[centres] // 9
    rotated_solved = apply(SOLVED, perm)
    if len(set(faces.tolist())) != 6 or not np.array_equal(faces[rotated_solved], SOLVED):
        raise ValueError(f"{rotation!r} is not a whole-cube rotation")
    return faces.astype(np.int64)


def whole_cube_rotations() -> list[np.ndarray]:
    """The 24 whole-cube rotations as facelet permutations (identity first)."""
    found = {tuple(range(FACELETS)): np.arange(FACELETS, dtype=np.int64)}
    frontier = list(found.values())
    while frontier:
        next_frontier = []
        for perm in frontier:
            for name in ROTATIONS:
                product = compose(perm, MOVES[name])
                if tuple(product) not in found:
                    found[tuple(product)] = product
                    next_frontier.append(product)
        frontier = next_frontier
    return list(found.values())


def to_facelet_string(state: np.ndarray) -> str:
    """A single state as 54 face letters (colour c -> FACES[c]), Kociemba's facelet string."""
    state = np.asarray(state)
    if state.shape != (FACELETS,):
        raise ValueError(f"expected one state of shape ({FACELETS},), got {state.shape}")
    return "".join(FACES[colour] for colour in state.tolist())


def from_facelet_string(text: str) -> np.ndarray:
    """Inverse of ``to_facelet_string``."""
    if len(text) != FACELETS or any(letter not in FACES for letter in text):
        raise ValueError(f"expected {FACELETS} letters from {FACES!r}, got {text!r}")
    return np.array([FACES.index(letter) for letter in text], dtype=np.int64)
