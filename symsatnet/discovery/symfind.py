"""The symfind search: the published recursive procedure on the natural index order
(S_n, Z_n, direct sums and wreaths of repeated segments, Kronecker product splits),
and the coarsenings offered to the final selection (docs/design.md, "Discovery")."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from .. import groups as G
from .statistics import consistent, residual_energy


@dataclasses.dataclass(frozen=True)
class Settings:
    rtol: float
    max_err: float
    significance: float
    max_rank: int
    # The parts of every direct sum built in this search, so nested sums can be flattened.
    components: dict = dataclasses.field(default_factory=dict)

    @property
    def floor(self) -> float:
        """Smallest mean square spread of merged cells that counts as structure (module docs)."""
        return (self.rtol / 2) ** 2


def _pair_labels(group: G.Group) -> np.ndarray:
    return np.asarray(group.pair_orbits())


def _rms_deviation(stack: np.ndarray, group: G.Group) -> float:
    """Root mean square of S - proj_G(S) over all entries of the stack (unclosed orbitals)."""
    return math.sqrt(residual_energy(stack, _pair_labels(group)) / stack.size)


def _segments(stack: np.ndarray, tolerance: float) -> list[int]:
    """Boundaries [0, b1, ..., n] of a contiguous segmentation whose cross rectangles are
    (nearly) constant: direct-sum components in natural order.

    Greedy from the left: a segment [s, e) qualifies when, in every column outside it, its
    rows agree (mean within-column variance <= tolerance²); the longest qualifying segment is
    taken, since a union of components qualifies too and the recursion into the segment
    separates them again. For large n the scan over all ends looks at a fixed sample of
    columns (it is a mean, so a sample estimates it); the chosen segment is then checked on
    all columns and row by row (``_segment_fits``), falling back to shorter ones.
    """
    matrices, n, _ = stack.shape
    if n > _SEGMENT_COLUMNS:
        sample = np.sort(np.random.default_rng(0).choice(n, _SEGMENT_COLUMNS, replace=False))
    else:
        sample = np.arange(n)
    limit = tolerance * tolerance
    boundaries = [0]
    start = 0
    while start < n:
        ends = np.arange(start + 1, n + 1)
        valid = _outside_variance(stack, start, sample) <= limit
        if start == 0:
            valid[-1] = False  # the whole range is not a split
        end = start + 1
        for candidate in ends[np.flatnonzero(valid)][::-1]:
            if candidate == start + 1 or _segment_fits(stack, start, candidate, limit):
                end = int(candidate)
                break
        boundaries.append(end)
        start = end
    return boundaries


# Columns sampled by the segment scan of large matrices (see _segments).
_SEGMENT_COLUMNS = 192


def _outside_variance(stack: np.ndarray, start: int, columns: np.ndarray) -> np.ndarray:
    """For every end e > start: mean over the given columns outside [start, e) (and over the
    stack) of the variance of rows start..e-1 in that column."""
    matrices, n, _ = stack.shape
    rows = stack[:, start:, :][:, :, columns]  # (T, n - start, m)
    sizes = np.arange(1, n - start + 1, dtype=np.float64)[None, :, None]
    mean = np.cumsum(rows, axis=1) / sizes
    variance = np.maximum(np.cumsum(rows * rows, axis=1) / sizes - mean * mean, 0.0)
    per_column = variance.sum(axis=0)  # (n - start, m)
    prefix = np.concatenate([np.zeros((n - start, 1)), np.cumsum(per_column, axis=1)], axis=1)
    ends = np.arange(start + 1, n + 1)
    before = int(np.searchsorted(columns, start))
    from_end = np.searchsorted(columns, ends)
    outside = prefix[:, before] + (prefix[:, len(columns)] - prefix[np.arange(n - start), from_end])
    count = (before + len(columns) - from_end) * matrices
    return np.where(count > 0, outside / np.maximum(count, 1), np.inf)


def _segment_fits(stack: np.ndarray, start: int, end: int, limit: float) -> bool:
    """Check a segment on all outside columns, row by row: a few rows of another component
    barely move the mean variance of a long segment, but each of them is far from the
    column means (so every row must stay within twice the limit)."""
    outside = np.r_[0:start, end : stack.shape[-1]]
    if len(outside) == 0:
        return False
    rows = stack[:, start:end, :][:, :, outside]
    squares = (rows - rows.mean(axis=1, keepdims=True)) ** 2  # (T, rows, columns)
    per_row = squares.mean(axis=(0, 2))
    return float(per_row.mean()) <= limit and float(per_row.max()) <= 2 * limit


def _cross_block_deviation(stack: np.ndarray, block: int) -> float:
    """Root mean square deviation of the off-diagonal blocks of size ``block`` from their
    means: small when every cross block is constant, as in a wreath product with a
    transitive inner group."""
    matrices, n, _ = stack.shape
    blocks = n // block
    shaped = stack.reshape(matrices, blocks, block, blocks, block)
    deviation = shaped - shaped.mean(axis=(2, 4), keepdims=True)
    off_diagonal = ~np.eye(blocks, dtype=bool)
    squares = (deviation**2).sum(axis=(2, 4))[:, off_diagonal]
    return math.sqrt(float(squares.sum()) / (matrices * off_diagonal.sum() * block * block))


#: Where the tail of a Kronecker rearrangement stays above the energy budget within
#: max_rank terms, a split is still kept if its singular values drop by this ratio after
#: r <= max_rank terms (the rest is then a flat noise floor). Measured on a SATNet-Plain
#: layer after 10 epochs of 9x9 Sudoku: the cell x digit split has singular values
#: 1, 0.318, then 0.042, 0.041, 0.040, ... (ratio 7.6 after the two true terms).
GAP_RATIO = 4.0


def _gap_rank(singular: np.ndarray, max_rank: int) -> int:
    """Terms before the first drop by GAP_RATIO in the singular values; max_rank + 1 if none."""
    for rank in range(1, min(max_rank, len(singular) - 1) + 1):
        if singular[rank] <= GAP_RATIO ** -1 * singular[rank - 1]:
            return rank
    return max_rank + 1


def _kronecker_factors(stack: np.ndarray, m: int, tolerance: float, max_rank: int):
    """Left (m x m) and right (n/m x n/m) factor stacks of a near Kronecker decomposition.

    Van Loan-Pitsianis: entry ((a, b), (a', b')) of an (m f) x (m f) matrix goes to row
    (a, a') and column (b, b') of an m² x f² matrix, where A ⊗ B becomes the rank-one
    vec(A) vec(B)ᵀ. The left factors span the column space of all rearranged matrices side
    by side, the right factors the row space of all of them stacked; both are weighted by
    their singular values so that noise per entry stays what it was in the input.
    Returns None when too many terms are needed.
    """
    matrices, n, _ = stack.shape
    f = n // m
    rearranged = stack.reshape(matrices, m, f, m, f).transpose(0, 1, 3, 2, 4).reshape(matrices, m * m, f * f)
    total = float(np.sum(rearranged**2))
    if total == 0:
        return None
    budget = tolerance * tolerance * stack.size

    def truncated(matrix: np.ndarray, left: bool):
        u, singular, vt = np.linalg.svd(matrix, full_matrices=False)
        energy = singular**2
        tail = np.concatenate([np.cumsum(energy[::-1])[::-1], [0.0]])
        rank = int(np.argmax(tail <= budget))
        if rank > max_rank:  # a noise floor above the budget: cut at a clear gap instead
            rank = _gap_rank(singular, max_rank)
        vectors = u[:, :rank].T if left else vt[:rank]
        return rank, singular[:rank, None] * vectors

    side_by_side = rearranged.transpose(1, 0, 2).reshape(m * m, matrices * f * f)
    left_rank, left = truncated(side_by_side, True)
    right_rank, right = truncated(rearranged.reshape(matrices * m * m, f * f), False)
    rank = max(left_rank, right_rank)
    if rank == 0 or rank > max_rank or (left_rank >= m * m and right_rank >= f * f):
        return None
    tail = float(np.sum(rearranged**2)) - float(np.sum(left**2))
    return left.reshape(left_rank, m, m), right.reshape(right_rank, f, f), rank, tail


def symfind_options(stack: np.ndarray, settings: Settings) -> list[G.Group]:
    """All structural hypotheses for one node, children already chosen recursively."""
    n = stack.shape[-1]
    if n == 1:
        return [G.Trivial(1)]
    options: list[G.Group] = [G.Trivial(n), G.Symmetric(n)]
    if n >= 3:
        options.append(G.Cyclic(n))
    structure_tolerance = settings.rtol / 2
    # When S_n already fits, every wreath and product split fits as well (they are its
    # subgroups), and recursing into all of them costs exponential time; only the best
    # wreath and the best product split are followed then (finer structure that S_n hides
    # shows up in them, and the significance test decides), and no direct sum.
    symmetric_fits = _rms_deviation(stack, G.Symmetric(n)) <= settings.rtol

    # A direct-sum split of an S_n-fitting node peels one point at a time (every split
    # qualifies), a chain as deep as n; it can only give subgroups, so it is skipped.
    boundaries = [0, n] if symmetric_fits else _segments(stack, structure_tolerance)
    if len(boundaries) > 2 and len(boundaries) <= n:  # all singletons would be Trivial(n)
        parts = []
        for start, end in zip(boundaries, boundaries[1:]):
            part = _choose(stack[:, start:end, start:end], settings)
            parts.extend(settings.components.get(part, (part,)))
        direct_sum = G.DirectSum(*parts)
        settings.components[direct_sum] = tuple(parts)
        options.append(direct_sum)

    wreaths = []
    for block in range(2, n // 2 + 1):
        if n % block == 0:
            deviation = _cross_block_deviation(stack, block)
            if deviation <= structure_tolerance:
                wreaths.append((deviation, block))
    for _, block in sorted(wreaths)[: 1 if symmetric_fits else _WREATHS]:
        blocks = n // block
        shaped = stack.reshape(stack.shape[0], blocks, block, blocks, block)
        diagonal_blocks = shaped[:, np.arange(blocks), :, np.arange(blocks), :]  # (blocks, T, block, block)
        inner = _choose(diagonal_blocks.mean(axis=0), settings)
        outer = _choose(shaped.mean(axis=(2, 4)), settings)
        options.append(G.Wreath(inner, outer))

    splits = []
    for m in range(2, n // 2 + 1):
        if n % m == 0:
            factors = _kronecker_factors(stack, m, structure_tolerance, settings.max_rank)
            if factors is not None:
                splits.append(factors)
    # Recursing into every split of every factor grows like 3^(number of prime factors);
    # the splits needing the fewest Kronecker terms are the likely true ones.
    splits.sort(key=lambda split: (split[2], split[3]))
    for left, right, _, _ in splits[: 1 if symmetric_fits else _PRODUCT_SPLITS]:
        options.append(G.Product(_factor_group(left, settings), _factor_group(right, settings)))
    return options


# Product splits and wreath block sizes followed per node (see symfind_options).
_PRODUCT_SPLITS = 3
_WREATHS = 3


# Rounds of factor merges and most supergroups proposed for the final selection (see
# coarsenings): the Sudoku group is one merge from its largest near-miss subgroups.
_MERGE_ROUNDS = 2
_MERGE_LIMIT = 48


def _product_factors(group: G.Group) -> list[G.Group]:
    """The factors of a product with nested products flattened (products fold from the
    left, so Product(A, Product(B, C)) and Product(A, B, C) number points alike)."""
    if not isinstance(group, G.Product):
        return [group]
    return [factor for child in group.factors for factor in _product_factors(child)]


def _product(factors: list[G.Group]) -> G.Group:
    return factors[0] if len(factors) == 1 else G.Product(*factors)


def _merges(group: G.Group) -> list[G.Group]:
    """Groups that contain ``group``, one step up: two neighbouring factors A, B of a product
    become Wreath(B, A) (blocks numbered by A, points inside by B, as in Product(A, B), which
    is its subgroup of A acting on all blocks alike), at any depth of the expression."""
    if isinstance(group, G.Product):
        factors = _product_factors(group)
        merged = [_product(factors[:i] + [G.Wreath(factors[i + 1], factors[i])] + factors[i + 2 :])
                  for i in range(len(factors) - 1)]
        for i, factor in enumerate(factors):
            merged += [_product(factors[:i] + [other] + factors[i + 1 :]) for other in _merges(factor)]
        return merged
    if isinstance(group, G.Wreath):
        inner, outer = group.inner, group.outer
        return [G.Wreath(other, outer) for other in _merges(inner)] + [G.Wreath(inner, other) for other in _merges(outer)]
    if isinstance(group, G.DirectSum):
        parts = list(group.parts)
        return [G.DirectSum(*(parts[:i] + [other] + parts[i + 1 :])) for i, part in enumerate(parts) for other in _merges(part)]
    return []


def coarsenings(groups: Sequence[G.Group], rounds: int = _MERGE_ROUNDS, limit: int = _MERGE_LIMIT) -> list[G.Group]:
    """Supergroups of ``groups`` by up to ``rounds`` factor merges (``_merges``), at most
    ``limit`` of them, for the final selection to weigh.

    Each node of the search picks one group, and where a finer structure is barely
    significant there (a product of band and row-in-band permutations instead of the
    wreath that ties them), the coarser group is never offered at the top. The top-level
    selection sees the whole matrix, with its noise reference, the structure floor and the
    unimodality check, and can take the coarser group when the structure it hides is small.
    """
    seen = set(groups)
    found: list[G.Group] = []
    frontier = list(groups)
    for _ in range(rounds):
        following = []
        for group in frontier:
            for merged in _merges(group):
                if merged not in seen and len(found) < limit:
                    seen.add(merged)
                    found.append(merged)
                    following.append(merged)
        frontier = following
    return found


def _factor_group(factors: np.ndarray, settings: Settings) -> G.Group:
    """The group of a factor stack; factors spanning every matrix only allow the trivial group.

    The stack is scaled to unit root mean square first, as the whole matrix is, so rtol
    means the same relative deviation at every level (a factor carries the product's size
    in its scale; noise that is not independent per entry, as in learned matrices, would
    otherwise fail every structural test of the factor).
    """
    size = factors.shape[-1]
    if factors.shape[0] >= size * size:
        return G.Trivial(size)
    scale = math.sqrt(float(np.mean(factors**2)))
    return _choose(factors / scale if scale > 0 else factors, settings)


def _choose(stack: np.ndarray, settings: Settings) -> G.Group:
    """The option with the fewest orbitals that fits the node and hides no significant structure."""
    n = stack.shape[-1]
    if n == 1:
        return G.Trivial(1)
    fitting = [option for option in symfind_options(stack, settings)
               if _rms_deviation(stack, option) <= settings.rtol]
    return _select(stack, fitting, lambda group: int(_pair_labels(group).max()) + 1,
                   _pair_labels, settings)


def _select(stack, groups: Sequence[G.Group], size, labels_of, settings: Settings) -> G.Group:
    """Fewest ``size`` among ``groups`` that pass the significance test against the reference."""
    unique: dict[G.Group, int] = {}
    for group in groups:
        unique.setdefault(group, size(group))
    ordered = sorted(unique, key=lambda group: unique[group])
    reference = reference_group(ordered, unique, labels_of, stack.shape[-1] ** 2,
                           lambda group: residual_energy(stack, labels_of(group)))
    if reference is None:  # too small to measure noise: the fit test alone decides
        return ordered[0]
    for group in ordered:
        if consistent(stack, labels_of(group), reference, settings.significance, settings.floor):
            return group
    return G.Trivial(stack.shape[-1])


def reference_group(ordered: Sequence[G.Group], sizes: dict, labels_of, entries: int, residual):
    """Labels of the candidate that best measures the noise: the smallest residual per
    residual degree of freedom among those leaving at least half of the ``entries`` that can
    differ (a structure that misses real structure leaves more residual, whatever its
    number of orbitals). None if no candidate leaves enough."""
    best, best_variance = None, math.inf
    for group in ordered:
        dof = entries - sizes[group]
        if dof >= max(8, entries / 2):
            variance = residual(group) / dof
            if variance < best_variance:
                best, best_variance = group, variance
    return None if best is None else labels_of(best)
