"""One-hot encoding of cube colourings for SATNet layers.

Variable (facelet f, colour c) is bit f*6 + c (docs/design.md, "Index conventions"), n = 54*6 = 324. A hidden
facelet (-1) encodes as all zeros. Any leading batch shape is allowed.
"""

from __future__ import annotations

import numpy as np

from symsatnet.cube_moves import FACELETS

COLOURS = 6
BITS = FACELETS * COLOURS


def bit_index(facelet: int, colour: int) -> int:
    """Index of the bit saying 'facelet holds colour'."""
    if not (0 <= facelet < FACELETS and 0 <= colour < COLOURS):
        raise ValueError(f"(facelet {facelet}, colour {colour}) is outside 0..{FACELETS - 1} x 0..{COLOURS - 1}")
    return facelet * COLOURS + colour


def _check_states(states: np.ndarray) -> np.ndarray:
    states = np.asarray(states)
    if states.shape[-1:] != (FACELETS,):
        raise ValueError(f"states must have shape (..., {FACELETS}), got {states.shape}")
    if ((states < -1) | (states >= COLOURS)).any():
        raise ValueError(f"colours must lie in 0..{COLOURS - 1}, or -1 for hidden")
    return states


def state_to_bits(states: np.ndarray, dtype: np.dtype = np.float32) -> np.ndarray:
    """(..., 54) colours (-1 = hidden) -> (..., 324) one-hot bits."""
    states = _check_states(states)
    one_hot = states[..., None] == np.arange(COLOURS)
    return one_hot.reshape(*states.shape[:-1], BITS).astype(dtype)


def is_input_mask(puzzles: np.ndarray) -> np.ndarray:
    """(..., 54) puzzles -> (..., 324) bool, True on every bit of a visible facelet."""
    puzzles = _check_states(puzzles)
    visible = np.repeat((puzzles != -1)[..., None], COLOURS, axis=-1)
    return visible.reshape(*puzzles.shape[:-1], BITS)


def bits_to_state(bits: np.ndarray) -> np.ndarray:
    """(..., 324) bits or probabilities -> (..., 54) int8 colours, the most probable per facelet."""
    bits = np.asarray(bits)
    if bits.shape[-1:] != (BITS,):
        raise ValueError(f"bits must have shape (..., {BITS}), got {bits.shape}")
    return bits.reshape(*bits.shape[:-1], FACELETS, COLOURS).argmax(axis=-1).astype(np.int8)
