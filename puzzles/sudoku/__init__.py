"""Sudoku puzzles with unique solutions: generator, exact solver, checker, encoding.

The solver is compiled from ``_solver.pyx`` (Cython); everything else is NumPy.
Command line: ``python -m puzzles.sudoku generate|check`` (see ``cli.py``).
"""

from ..datafile import DatasetError
from .dataset import CheckReport, SudokuDataset, check_dataset, consistency_problems, load_dataset, save_dataset
from .encoding import bit_index, bits_to_board, board_to_bits, is_input_mask
from .generate import GivensDistribution, generate_dataset, generate_puzzle, givens_distribution
from .rules import box_of_side, is_valid_solution, respects_givens, rule_pairs, rule_violations, valid_boards
from .solver import count_solutions, dig_deducible, dig_holes, random_full_grid, solve

__all__ = [
    "CheckReport",
    "DatasetError",
    "GivensDistribution",
    "SudokuDataset",
    "bit_index",
    "bits_to_board",
    "board_to_bits",
    "box_of_side",
    "check_dataset",
    "consistency_problems",
    "count_solutions",
    "dig_deducible",
    "dig_holes",
    "generate_dataset",
    "generate_puzzle",
    "givens_distribution",
    "is_input_mask",
    "is_valid_solution",
    "load_dataset",
    "random_full_grid",
    "respects_givens",
    "rule_pairs",
    "rule_violations",
    "save_dataset",
    "solve",
    "valid_boards",
]
