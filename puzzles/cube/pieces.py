"""Cubies of the 3x3x3 cube in terms of symsatnet.cube_moves' facelet numbering, and the
legality test of a colouring (can it be reached from the solved cube by moves?).

A colouring reached with slice moves has its centres moved as well. Renaming every
colour after the face its centre now sits on gives a colouring with the centres at home
that is reachable by face turns exactly when the original is reachable by face, slice
and whole-cube turns (the rotations normalise the face-turn group), so the classical
invariants apply after that renaming: every cubie present once, corner twists summing to
0 mod 3, edge flips summing to 0 mod 2, and equal corner and edge permutation parity.
"""

from __future__ import annotations

import numpy as np

from symsatnet.cube_moves import FACELETS, FACES, SOLVED, apply, facelet, whole_cube_rotations

U, R, F, D, L, B = range(6)


def _cubies(spec: list[str]) -> np.ndarray:
    """'U8 R0 F2' -> facelet indices, one row per cubie; the first facelet of a corner is on U or D."""
    return np.array([[facelet(name[0], int(name[1])) for name in cubie.split()] for cubie in spec], dtype=np.int64)


# Corners clockwise, starting on the U or D sticker; edges starting on the U/D (else F/B)
# sticker. Listed in the usual order URF UFL ULB UBR DFR DLF DBL DRB and
# UR UF UL UB DR DF DL DB FR FL BL BR, so the solved cube has every cubie at home.
CORNERS = _cubies(["U8 R0 F2", "U6 F0 L2", "U0 L0 B2", "U2 B0 R2", "D2 F8 R6", "D0 L8 F6", "D6 B8 L6", "D8 R8 B6"])
EDGES = _cubies(
    ["U5 R1", "U7 F1", "U3 L1", "U1 B1", "D5 R7", "D1 F7", "D3 L7", "D7 B7", "F5 R3", "F3 L5", "B5 L3", "B3 R5"]
)
CENTRES = np.array([facelet(face, 4) for face in FACES], dtype=np.int64)

CORNER_FACELETS = np.sort(CORNERS.ravel())
EDGE_FACELETS = np.sort(EDGES.ravel())

CORNER_COLOURS = SOLVED[CORNERS]
EDGE_COLOURS = SOLVED[EDGES]


def facelet_kind(index: int) -> str:
    """'corner', 'edge' or 'centre'."""
    if index in CENTRES:
        return "centre"
    return "corner" if index in CORNER_FACELETS else "edge"


def _centre_arrangements() -> set[tuple[int, ...]]:
    """Colours on the six centres (in face order) for each of the 24 orientations."""
    return {tuple(apply(SOLVED, rotation)[CENTRES].tolist()) for rotation in whole_cube_rotations()}


CENTRE_ARRANGEMENTS = _centre_arrangements()


def recolour_by_centres(state: np.ndarray) -> np.ndarray:
    """Rename colours after the face their centre sits on, putting every centre at home.

    Needs six distinct centre colours.
    """
    state = np.asarray(state)
    renaming = np.empty(6, dtype=np.int64)
    renaming[state[CENTRES]] = np.arange(6)
    return renaming[state]


def _parity(permutation: list[int]) -> int:
    seen = [False] * len(permutation)
    parity = 0
    for start in range(len(permutation)):
        length = 0
        position = start
        while not seen[position]:
            seen[position] = True
            position = permutation[position]
            length += 1
        if length:
            parity ^= (length - 1) & 1
    return parity


def legality_problems(state: np.ndarray) -> list[str]:
    """Why the 54-colour state cannot arise from the solved cube by moves; [] if it can."""
    state = np.asarray(state)
    if state.shape != (FACELETS,):
        return [f"a state has {FACELETS} facelets, got shape {state.shape}"]
    if not np.issubdtype(state.dtype, np.integer) or state.min() < 0 or state.max() > 5:
        return ["colours must be integers 0..5"]
    counts = np.bincount(state, minlength=6)
    if (counts != 9).any():
        return [f"every colour must appear 9 times, counts are {counts.tolist()}"]
    if tuple(state[CENTRES].tolist()) not in CENTRE_ARRANGEMENTS:
        return [f"centre colours {state[CENTRES].tolist()} are not an orientation of the solved cube"]
    home = recolour_by_centres(state)
    problems = []
    corner_pieces, twist = [], 0
    for position, stickers in enumerate(CORNERS):
        colours = home[stickers].tolist()
        up_or_down = [k for k, colour in enumerate(colours) if colour in (U, D)]
        rotated = colours[up_or_down[0]:] + colours[:up_or_down[0]] if len(up_or_down) == 1 else None
        matches = [piece for piece, piece_colours in enumerate(CORNER_COLOURS.tolist()) if piece_colours == rotated]
        if not matches:
            problems.append(f"corner {position} has colours {colours}, which no corner cubie has")
            continue
        corner_pieces.append(matches[0])
        twist += up_or_down[0]
    edge_pieces, flip = [], 0
    for position, stickers in enumerate(EDGES):
        colours = home[stickers].tolist()
        for piece, piece_colours in enumerate(EDGE_COLOURS.tolist()):
            if colours == piece_colours or colours[::-1] == piece_colours:
                edge_pieces.append(piece)
                flip += colours != piece_colours
                break
        else:
            problems.append(f"edge {position} has colours {colours}, which no edge cubie has")
    if problems:
        return problems
    if sorted(corner_pieces) != list(range(8)):
        problems.append("some corner cubie appears twice")
    if sorted(edge_pieces) != list(range(12)):
        problems.append("some edge cubie appears twice")
    if problems:
        return problems
    if twist % 3:
        problems.append(f"corner twists sum to {twist % 3} mod 3 (a single corner is twisted)")
    if flip % 2:
        problems.append("edge flips sum to 1 mod 2 (a single edge is flipped)")
    if _parity(corner_pieces) != _parity(edge_pieces):
        problems.append("corner and edge permutations differ in parity (two cubies are swapped)")
    return problems


def facelet_origins(state: np.ndarray) -> np.ndarray:
    """(54,) int: origins[f] is the facelet of the solved cube whose sticker now lies on f.

    Defined for legal states (ValueError otherwise): a cubie is known by its colours, its
    stickers by their order around it, and a centre by its colour (the solved cube's face
    of that colour). The state is SOLVED[origins].
    """
    state = np.asarray(state)
    problems = legality_problems(state)
    if problems:
        raise ValueError("not a legal cube state: " + "; ".join(problems))
    origins = np.empty(FACELETS, dtype=np.int64)
    origins[CENTRES] = CENTRES[state[CENTRES]]
    for pieces, piece_colours in ((CORNERS, CORNER_COLOURS.tolist()), (EDGES, EDGE_COLOURS.tolist())):
        size = pieces.shape[1]
        for stickers in pieces:
            colours = state[stickers].tolist()
            # A legal state holds each cubie once, with its stickers in a cyclic order of the
            # solved cubie (corners), or either order (edges).
            for piece, solved in enumerate(piece_colours):
                shifts = [k for k in range(size) if colours == solved[k:] + solved[:k]]
                if shifts:
                    origins[stickers] = np.roll(pieces[piece], -shifts[0])
                    break
    return origins


def facelet_parity(state: np.ndarray) -> int:
    """0 if a legal state is an even permutation of the solved cube's 54 facelets, 1 if odd.

    Every quarter turn (face or slice) is odd, every half turn even.
    """
    return _parity(facelet_origins(state).tolist())


def kociemba_facelets(state: np.ndarray) -> str:
    """Kociemba's facelet string of a state (centres brought home by renaming colours).

    cube_moves numbers facelets in Kociemba's order (URFDLB faces, row-major), so only
    the colours need renaming.
    """
    return "".join(FACES[colour] for colour in recolour_by_centres(state).tolist())


def solve_with_kociemba(state: np.ndarray) -> str:
    """A face-turn sequence taking the centre-renamed state to SOLVED (needs the kociemba package)."""
    try:
        import kociemba
    except ImportError as error:  # pragma: no cover - optional dependency
        raise ImportError("solve_with_kociemba needs the kociemba package: pip install 'symsatnet[cube]'") from error
    return kociemba.solve(kociemba_facelets(state))
