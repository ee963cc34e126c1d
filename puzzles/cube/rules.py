"""Checking a predicted cube colouring against legality and the visible facelets."""

from __future__ import annotations

import numpy as np

from symsatnet.cube_moves import FACELETS, FACES

from .pieces import legality_problems

HIDDEN = -1


def state_violations(state: np.ndarray, puzzle: np.ndarray | None = None) -> list[str]:
    """Why state is not a legal cube completing puzzle (-1 = hidden facelet); [] if it is."""
    state = np.asarray(state)
    problems = legality_problems(state)
    if puzzle is not None:
        puzzle = np.asarray(puzzle)
        if puzzle.shape != (FACELETS,):
            return problems + [f"puzzle must have shape ({FACELETS},), got {puzzle.shape}"]
        if state.shape == puzzle.shape:
            for index in np.flatnonzero((puzzle != HIDDEN) & (puzzle != state)):
                face, position = FACES[index // 9], index % 9
                problems.append(
                    f"visible facelet {face}{position} (index {index}) was {puzzle[index]}, state has {state[index]}"
                )
    return problems


def is_valid_state(state: np.ndarray, puzzle: np.ndarray | None = None) -> bool:
    """True if state is a legal cube and keeps every visible facelet of puzzle."""
    return not state_violations(state, puzzle)


def valid_states(states: np.ndarray) -> np.ndarray:
    """One bool per state of a (count, 54) array: is it a legal cube?"""
    return np.array([not legality_problems(state) for state in np.asarray(states)], dtype=bool)
