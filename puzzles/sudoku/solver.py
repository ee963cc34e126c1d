"""The compiled exact solver (puzzles/sudoku/_solver.pyx), with a build hint if it is missing."""

from __future__ import annotations

try:
    from ._solver import count_solutions, dig_deducible, dig_holes, random_full_grid, solve
except ImportError as error:  # pragma: no cover - depends on the build state
    raise ImportError(
        "the compiled Sudoku solver puzzles.sudoku._solver is not built; run `make build` "
        "(or `python setup.py build_ext --inplace`, or "
        "`cythonize -i -3 puzzles/sudoku/_solver.pyx`) in the repository root"
    ) from error

__all__ = ["count_solutions", "dig_deducible", "dig_holes", "random_full_grid", "solve"]
