"""Puzzle data sets, checkers and training scripts built on symsatnet."""
