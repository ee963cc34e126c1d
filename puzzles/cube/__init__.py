"""Rubik's-cube completion data: scrambles, hidden facelets, legality checker, encoding.

Facelet numbering and moves come from symsatnet.cube_moves (the single source of truth).
Command line: ``python -m puzzles.cube generate|check`` (see ``cli.py``).
"""

from ..datafile import DatasetError
from .dataset import (
    CUBE_DATA_VERSION,
    DEFAULT_HIDDEN,
    DEFAULT_SCRAMBLE_MOVES,
    HIDDEN,
    SCRAMBLE_MOVE_SETS,
    CubeDataset,
    choose_hidden,
    consistency_problems,
    error_breakdown,
    handedness_blind_ceiling,
    generate_dataset,
    load_dataset,
    save_dataset,
    scramble,
)
from .encoding import bit_index, bits_to_state, is_input_mask, state_to_bits
from .pieces import (
    CENTRES,
    CORNER_FACELETS,
    CORNERS,
    EDGE_FACELETS,
    EDGES,
    facelet_kind,
    kociemba_facelets,
    legality_problems,
    recolour_by_centres,
    solve_with_kociemba,
)
from .rules import is_valid_state, state_violations, valid_states

__all__ = [
    "CENTRES",
    "CORNERS",
    "CORNER_FACELETS",
    "CubeDataset",
    "CUBE_DATA_VERSION",
    "DEFAULT_HIDDEN",
    "SCRAMBLE_MOVE_SETS",
    "DEFAULT_SCRAMBLE_MOVES",
    "DatasetError",
    "EDGES",
    "EDGE_FACELETS",
    "HIDDEN",
    "bit_index",
    "bits_to_state",
    "choose_hidden",
    "consistency_problems",
    "error_breakdown",
    "handedness_blind_ceiling",
    "facelet_kind",
    "generate_dataset",
    "is_input_mask",
    "is_valid_state",
    "kociemba_facelets",
    "legality_problems",
    "load_dataset",
    "recolour_by_centres",
    "save_dataset",
    "scramble",
    "solve_with_kociemba",
    "state_to_bits",
    "state_violations",
    "valid_states",
]
