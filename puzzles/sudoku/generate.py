"""Random Sudoku puzzles with unique solutions.

Two ways to remove givens from a random complete grid, in random order:

* ``method="deducible"`` (the default): a cell is blanked only if its digit then fits no
  other empty cell of its row, column or box (a *hidden single*). This is the generator
  (Park, 2018) behind the data of the published SATNet and SymSATNet experiments: about
  36 givens for 9x9, every puzzle solved by filling hidden singles back in. It matters
  for reproducing them: a SymSATNet trained on 9x9 Sudoku and run for 40 sweeps solved
  0.997 of such boards but only 0.50 of ``"unique"`` boards with the same number of
  givens (300 boards each; 0.94 of the latter after 300 sweeps).
* ``method="unique"``: skip any removal that would allow a second solution, until a
  sampled target count is reached (control over the number of givens, and a hard mode).

In ``"unique"`` mode, targets below what the removal order can reach leave a minimal puzzle
(no given can be removed); the generator then retries with fresh grids a few times and
keeps the puzzle with the fewest givens, so very low targets are met only on average.
In ``"deducible"`` mode a distribution, if given, sets a floor where removal stops.

Puzzle i of a data set draws all its randomness from SeedSequence(seed, spawn_key=(i,)),
so a data set does not depend on the number of worker processes, and a smaller data set
is a prefix of a larger one with the same seed and settings.
"""

from __future__ import annotations

import math
import multiprocessing
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

import numpy as np

from .dataset import SudokuDataset
from .solver import dig_deducible, dig_holes, random_full_grid

# (mean, minimum, maximum) givens per box size. 9x9: the published data set has about
# 36 givens on average. The others keep a similar fraction of the board.
DEFAULT_GIVENS = {2: (8.0, 6, 10), 3: (36.0, 30, 42), 4: (115.0, 100, 130)}
# Hard puzzles sit close to the minimal puzzles a random removal order reaches
# (about 24 givens on average for 9x9).
HARD_GIVENS = {2: (5.5, 4, 7), 3: (25.0, 23, 28), 4: (110.0, 100, 120)}
CHUNK_SIZE = 64
METHODS = ("deducible", "unique")


@dataclass(frozen=True)
class GivensDistribution:
    """Distribution of target givens: on minimum..maximum with the given mean.

    Among all distributions on that range with that mean it is the one of maximum
    entropy, p(k) proportional to exp(tilt * k): uniform when the mean is the midpoint,
    and skewed towards one end otherwise, with nothing assumed beyond mean and range.
    """

    mean: float
    minimum: int
    maximum: int

    def __post_init__(self) -> None:
        if self.minimum < 0 or self.minimum > self.maximum:
            raise ValueError(f"givens range {self.minimum}..{self.maximum} is empty or negative")
        if not self.minimum <= self.mean <= self.maximum:
            raise ValueError(f"givens mean {self.mean} lies outside the range {self.minimum}..{self.maximum}")

    @property
    def values(self) -> np.ndarray:
        return np.arange(self.minimum, self.maximum + 1)

    @cached_property
    def probabilities(self) -> np.ndarray:
        """Probability of each value in minimum..maximum."""
        values = self.values
        if self.minimum == self.maximum:
            return np.ones(1)
        centred = (values - values.mean()) / max(values.std(), 1e-12)
        # The tilted mean rises monotonically with the tilt, so bisection finds it.
        low, high = -60.0, 60.0
        for _ in range(200):
            tilt = (low + high) / 2
            weights = _tilted(centred, tilt)
            if weights @ values < self.mean:
                low = tilt
            else:
                high = tilt
        return _tilted(centred, (low + high) / 2)

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.choice(self.values, p=self.probabilities))


def _tilted(centred: np.ndarray, tilt: float) -> np.ndarray:
    logits = tilt * centred
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def givens_distribution(
    box: int = 3,
    mean: float | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    hard: bool = False,
) -> GivensDistribution:
    """The givens distribution for box size box, filling unset values from the defaults.

    With only a mean, the range is the default width around it; with only a range, the
    mean is its midpoint (uniform targets).
    """
    if box not in DEFAULT_GIVENS:
        raise ValueError(f"box size must be one of {sorted(DEFAULT_GIVENS)}, got {box}")
    if mean is not None and not math.isfinite(mean):
        raise ValueError(f"the givens mean must be a finite number, got {mean}")
    default_mean, default_minimum, default_maximum = (HARD_GIVENS if hard else DEFAULT_GIVENS)[box]
    cells = box**4
    half_width = (default_maximum - default_minimum) / 2
    if mean is not None and minimum is None and maximum is None:
        minimum = max(0, math.floor(mean - half_width))
        maximum = min(cells, math.ceil(mean + half_width))
    elif mean is None and (minimum is not None or maximum is not None):
        minimum = default_minimum if minimum is None else minimum
        maximum = default_maximum if maximum is None else maximum
        mean = (minimum + maximum) / 2
    else:
        mean = default_mean if mean is None else mean
        minimum = default_minimum if minimum is None else minimum
        maximum = default_maximum if maximum is None else maximum
    if maximum > cells:
        raise ValueError(f"at most {cells} givens fit on a box-{box} board, asked for up to {maximum}")
    return GivensDistribution(float(mean), int(minimum), int(maximum))


def generate_puzzle(
    box: int, target_givens: int, rng: np.random.Generator, max_attempts: int = 10, method: str = "unique"
) -> tuple[np.ndarray, np.ndarray]:
    """(puzzle, solution): a puzzle with a unique solution and target_givens givens if reachable."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    cells = box**4
    dig = dig_deducible if method == "deducible" else dig_holes
    # Without a floor, hidden-single removal ends where it ends: one grid, one order,
    # which gives the published data's ~36 givens (keeping the fewest of several would
    # bias it lower).
    attempts = 1 if method == "deducible" and target_givens == 0 else max_attempts
    best = None
    for _ in range(attempts):
        solution = random_full_grid(box, int(rng.integers(0, 2**63)))
        puzzle = dig(solution, rng.permutation(cells), target_givens)
        if best is None or np.count_nonzero(puzzle) < np.count_nonzero(best[0]):
            best = (puzzle, solution)
        if np.count_nonzero(puzzle) <= target_givens:
            break
    return best


def puzzle_rng(seed: int, index: int) -> np.random.Generator:
    """The generator that all of puzzle index's randomness comes from."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def _generate_range(job: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    box, distribution, seed, start, stop, max_attempts, method = job
    side = box * box
    puzzles = np.zeros((stop - start, side, side), dtype=np.int8)
    solutions = np.zeros_like(puzzles)
    targets = np.zeros(stop - start, dtype=np.int64)
    for offset, index in enumerate(range(start, stop)):
        rng = puzzle_rng(seed, index)
        targets[offset] = 0 if distribution is None else distribution.sample(rng)
        puzzles[offset], solutions[offset] = generate_puzzle(box, int(targets[offset]), rng, max_attempts, method)
    return puzzles, solutions, targets


def _jobs(count: int, box: int, distribution: GivensDistribution | None, seed: int, max_attempts: int,
          method: str) -> Iterator[tuple]:
    for start in range(0, count, CHUNK_SIZE):
        yield box, distribution, seed, start, min(start + CHUNK_SIZE, count), max_attempts, method


def generate_dataset(
    count: int,
    box: int = 3,
    distribution: GivensDistribution | None = None,
    seed: int | None = None,
    workers: int = 1,
    max_attempts: int = 10,
    progress: bool = False,
    method: str = "deducible",
) -> SudokuDataset:
    """count puzzles with unique solutions; the same seed gives the same data for any workers.

    method: ``"deducible"`` (hidden-single removal as in the published data; a
    distribution, if given, is a floor on the givens) or ``"unique"`` (removal to a
    target drawn from distribution, default ``givens_distribution(box)``); see the
    module docs. With seed None a fresh seed is drawn and recorded in the metadata.
    """
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    if workers < 1:
        raise ValueError(f"workers must be positive, got {workers}")
    if max_attempts < 1:
        raise ValueError(f"max attempts must be at least 1 (the first grid is an attempt), got {max_attempts}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "unique":
        distribution = distribution or givens_distribution(box)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    side = box * box
    puzzles = np.zeros((count, side, side), dtype=np.int8)
    solutions = np.zeros_like(puzzles)
    targets = np.zeros(count, dtype=np.int64)
    jobs = list(_jobs(count, box, distribution, seed, max_attempts, method))
    from tqdm import tqdm

    with tqdm(total=count, disable=not progress, unit="puzzle", desc=f"sudoku {side}x{side}") as bar:
        for job, (chunk_puzzles, chunk_solutions, chunk_targets) in zip(jobs, _run(jobs, workers)):
            start, stop = job[3], job[4]
            puzzles[start:stop] = chunk_puzzles
            solutions[start:stop] = chunk_solutions
            targets[start:stop] = chunk_targets
            bar.update(stop - start)
    givens = np.count_nonzero(puzzles, axis=(1, 2))
    metadata = {
        "kind": "sudoku",
        "generator": "puzzles.sudoku.generate",
        "box": box,
        "count": count,
        "seed": seed,
        "settings": {
            "method": method,
            **_target_settings(distribution),
            "max_attempts": max_attempts,
        },
        "givens_realised": _summary(givens),
        "targets_missed": int(np.count_nonzero(givens > targets)) if distribution is not None else 0,
    }
    return SudokuDataset(puzzles, solutions, metadata)


def _target_settings(distribution: GivensDistribution | None) -> dict:
    """The givens target of the metadata (None throughout without a distribution)."""
    if distribution is None:
        return {"givens_mean": None, "givens_min": None, "givens_max": None}
    return {"givens_mean": distribution.mean, "givens_min": distribution.minimum, "givens_max": distribution.maximum}


def _run(jobs: list[tuple], workers: int) -> Iterator[tuple]:
    if workers == 1 or len(jobs) == 1:
        yield from map(_generate_range, jobs)
        return
    # spawn, not fork: the caller may have threads (torch, tqdm) that fork would copy
    # in an undefined state.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(_generate_range, jobs)


def _summary(givens: np.ndarray) -> dict:
    values, counts = np.unique(givens, return_counts=True)
    return {
        "mean": round(float(givens.mean()), 4),
        "std": round(float(givens.std()), 4),
        "min": int(givens.min()),
        "max": int(givens.max()),
        "histogram": {str(int(v)): int(c) for v, c in zip(values, counts)},
    }
