"""Symmetry discovery: find a large permutation group under which a matrix is nearly invariant.

``discover(M)`` takes a square matrix -- typically the learned problem block of a C-form
layer -- and returns a :class:`Discovery`: a group of the group language
(:mod:`symsatnet.groups`, so it plugs straight into a tied layer), its number of
parameters (closed orbitals), its relative projection error
``‖M - proj_G(M)‖ / ‖M‖`` (proj = mean over each closed orbital) and the candidates that
were weighed.

Two methods (DESIGN.md §5):

``symfind``
    The published recursive procedure on the natural index order. At every node (a stack
    of matrices that must all be invariant under the same group) it tries S_n and Z_n,
    a direct-sum split (contiguous segments whose cross rectangles are constant; when the
    segments repeat with a period, also the wreath product "same group in every block,
    blocks permuted"), and for every divisor m of n a product split through the
    Van Loan-Pitsianis rearrangement and an SVD, recursing on the stacks of left and right
    factors. Each node keeps the option with the fewest parameters that fits.
``graph``
    Quantise the off-diagonal values into a few classes (and the diagonal into vertex
    colours), compute the automorphism group of the edge-coloured graph with nauty
    (``pynauty``, an optional dependency) and return it as ``FromGenerators``. It finds
    symmetries under any ordering of the variables.
``both``
    Pool the candidates of the two; when a graph candidate has the same closed orbitals as a
    symfind candidate the structured expression is kept.

Normalisation (``_normalise``): the matrix is symmetrised, ``(M + Mᵀ)/2``, because C is
symmetric and closed orbitals cannot see an antisymmetric part; the diagonal is kept
(``diagonal="include"``, right for planted or projected matrices, and harmless for a
constant diagonal, which every group leaves invariant) or set to zero
(``diagonal="ignore"``: the mixing method never reads C_ii, so a trained layer's diagonal
is whatever it was initialised to); then the matrix is divided by its root mean square.
All tolerances below are therefore in units of the typical entry, independent of scale.

Thresholds and why they have these defaults:

``rtol`` (0.2)
    A structural hypothesis at a node (S_n, Z_n, a product or wreath, a candidate group
    for a block) is kept when its root-mean-square deviation from invariance is at most
    ``rtol`` typical entries. Segment and Kronecker-rank tests use ``rtol / 2`` because they
    average fewer, noisier numbers. Generous on purpose: it only decides what gets
    considered; a coarser hypothesis that hides real structure is removed by the
    significance test below, which knows the noise level and is much sharper than any fixed
    tolerance. 0.2 admits matrices with a few per cent of noise with a wide margin.
``max_err`` (0.2)
    The final group must have relative projection error at most ``max_err``. A group that
    explains less than ~96% of the energy (1 - 0.2²) is not called a symmetry.
``significance`` (3.5)
    z-score of the analysis-of-variance test that keeps a coarser group only when the
    finer structure it merges is indistinguishable from noise: for every closed orbital
    of the coarse candidate, the spread between the means of the finer reference cells
    inside it is compared with the spread within them (an F test, Paulson's normal
    approximation). 3.5 keeps the chance of rejecting a true group below ~1e-3 per
    orbital, while a merge of coefficients a few noise widths apart is still rejected.
    Structure smaller than the structural tolerance does not count, however significant:
    cells whose means spread by less than ``rtol / 2`` typical entries (root mean square)
    may be merged. Without that floor, nearly noise-free averages (Kronecker factors average
    thousands of entries) make every small systematic difference of a learned matrix
    "significant". On the plain Sudoku layer after 10 epochs (36% away from any group) the
    floor alone still gave a 24-orbital subgroup; with the coarsenings of the selection
    (below) as well, the 18-orbital Sudoku group.
``max_rank`` (12)
    A product split keeps at most this many Kronecker terms; a true product G x H needs at
    most min(K_G, K_H) terms, which is small for the groups of interest, while a matrix
    without product structure needs almost all of them.

Selection. The top node's options are joined by their coarsenings: the groups one or two
steps up in which two neighbouring factors A, B of a product are tied into Wreath(B, A)
(each node picks a single group, so a barely significant finer structure deep in the
search would otherwise hide the coarser group from the selection). Every candidate's error
is measured on the whole normalised matrix. Among
those with error at most ``max_err`` that (a) pass the significance test against the
reference -- the structural candidate that leaves the least residual per degree of freedom
while keeping at least half of the independent entries as residual -- (b) pass the
unimodality check (no closed orbital whose values split into two separated clusters; it
needs no reference, so it also guards the graph candidates, whose value-sorted orbitals
cannot serve as an unbiased reference) and (c) fit exactly when some structured candidate
does (noise-free input), the one with the fewest closed orbitals (the largest group) is
returned; the trivial group always qualifies. Matrices too small to leave a reference
(n <= 4 or so) are decided by ``max_err`` alone.

The graph quantisation cuts the sorted off-diagonal values at their largest gaps; the
number of classes is taken where the next gap is much smaller (largest ratio of consecutive
sorted gaps), trying the best few such places and a single class; the diagonal likewise
gives vertex colours. Classes of equal coefficients several noise widths apart separate
cleanly; when many coefficients are closer than that (large trivial or Sudoku-like groups
at several per cent noise) values land in the wrong class and the graph loses its
symmetry, so the graph method is less tolerant of noise than symfind.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any, Sequence

import numpy as np

from . import groups as G

__all__ = ["Candidate", "Discovery", "discover", "planted_matrix", "projection_error", "closed_orbitals"]

DEFAULT_RTOL = 0.2
DEFAULT_MAX_ERR = 0.2
DEFAULT_SIGNIFICANCE = 3.5
DEFAULT_MAX_RANK = 12
METHODS = ("symfind", "graph", "both")
DIAGONAL_MODES = ("include", "ignore")

# Mean square per entry (relative to the matrix's) below which a difference or a spread
# counts as round-off: sums over ~10^5 entries leave deviations near 1e-12, squares 1e-24;
# anything above (1e-8)² is real, so noise-free inputs can still reject a coarse merge.
_EXACT = 1e-16
# Relative projection error of an exact fit (round-off only).
_EXACT_FIT = 1e-9
# A graph quantisation boundary is tried at the few largest drops between consecutive gaps.
_GRAPH_QUANTISATIONS = 3
_GRAPH_MAX_CLASSES = 64


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One group that was weighed: its fit and whether it qualified."""

    group: G.Group
    num_orbitals: int
    error: float
    accepted: bool  # error <= max_err
    consistent: bool  # not rejected by the significance test
    source: str  # "symfind" or "graph"

    @property
    def expression(self) -> str:
        return repr(self.group)

    @property
    def num_parameters(self) -> int:
        """The free entries of a tied matrix (kept for compatibility; ``num_orbitals``)."""
        return self.num_orbitals


@dataclasses.dataclass(frozen=True, eq=False)
class Discovery:
    """The result of :func:`discover`.

    Attributes:
        group: the discovered group (a :class:`symsatnet.groups.Group`).
        num_orbitals: its number of closed orbitals, the free entries of a tied matrix
            (``num_parameters`` is the old name).
        error: relative projection error ``‖M - proj_G(M)‖ / ‖M‖`` of the normalised matrix.
        orbitals: the closed orbital map of ``group``, int64 (n, n).
        candidates: every candidate weighed, best first.
        method, rtol, max_err, diagonal: the settings used.
        seconds: wall-clock time of the search.
    """

    group: G.Group
    num_orbitals: int
    error: float
    orbitals: np.ndarray
    candidates: tuple[Candidate, ...]
    method: str
    rtol: float
    max_err: float
    diagonal: str
    seconds: float

    @property
    def expression(self) -> str:
        return repr(self.group)

    @property
    def degree(self) -> int:
        return self.group.degree

    @property
    def num_parameters(self) -> int:
        """The free entries of a tied matrix (kept for compatibility; ``num_orbitals``)."""
        return self.num_orbitals

    def table(self, limit: int = 8) -> str:
        """The best ``limit`` candidates as an aligned text table."""
        rows = [("params", "error", "ok", "source", "group")]
        for candidate in self.candidates[:limit]:
            mark = "yes" if candidate.accepted and candidate.consistent else (
                "noisy" if candidate.accepted else "no")
            rows.append((str(candidate.num_orbitals), f"{candidate.error:.4f}", mark,
                         candidate.source, _shorten(candidate.expression, 90)))
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines = ["  ".join(cell.rjust(width) if column < 2 else cell.ljust(width)
                           for column, (cell, width) in enumerate(zip(row[:4], widths)))
                 + "  " + row[4] for row in rows]
        if len(self.candidates) > limit:
            lines.append(f"... and {len(self.candidates) - limit} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def summary(self, limit: int = 8) -> str:
        """Group, parameters, error, settings and the best ``limit`` candidates."""
        n = self.group.degree
        return (f"group: {self.expression}\n"
                f"parameters: {self.num_orbitals} (of {n * (n + 1) // 2} for a free "
                f"symmetric {n}x{n} matrix)\n"
                f"relative projection error: {self.error:.4g}\n"
                f"method: {self.method}, rtol={self.rtol:g}, max_err={self.max_err:g}, "
                f"diagonal={self.diagonal}, {self.seconds:.2f} s\n\n"
                f"candidates:\n{self.table(limit)}")

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        """JSON-ready summary (the orbital map is left out; it is ``orbitals``)."""
        chosen = self.candidates if limit is None else self.candidates[:limit]
        return {
            "group": self.expression,
            "degree": self.group.degree,
            "num_orbitals": self.num_orbitals,
            # The key of the first JSON files, kept for the readers of those.
            "num_parameters": self.num_orbitals,
            "error": self.error,
            "order": self._order_text(),
            "method": self.method,
            "rtol": self.rtol,
            "max_err": self.max_err,
            "diagonal": self.diagonal,
            "seconds": self.seconds,
            "candidates": [
                {"group": c.expression, "num_orbitals": c.num_orbitals, "num_parameters": c.num_orbitals, "error": c.error,
                 "accepted": c.accepted, "consistent": c.consistent, "source": c.source}
                for c in chosen
            ],
        }

    def _order_text(self) -> str | None:
        # Generated groups need Schreier-Sims in sympy, which is slow for many points.
        if isinstance(self.group, G.FromGenerators) and self.group.degree > 200:
            return None
        return str(self.group.order())

    def to_json(self, limit: int | None = None) -> str:
        return json.dumps(self.to_dict(limit))


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


# --------------------------------------------------------------------------- input


def _as_matrix(matrix: object) -> np.ndarray:
    """Validate and convert the input to a float64 numpy array; ValueError on bad input."""
    if isinstance(matrix, (str, bytes, dict, set)) or matrix is None:
        raise ValueError(f"expected a square matrix (numpy array or torch tensor), got {type(matrix).__name__}")
    try:
        import torch

        if isinstance(matrix, torch.Tensor):
            if matrix.is_complex():
                raise ValueError("the matrix must be real, got a complex tensor")
            matrix = matrix.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        array = np.asarray(matrix)
    except Exception as error:
        raise ValueError(f"cannot read the input as a matrix: {error}") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"expected a numeric matrix, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise ValueError("the matrix must be real, got a complex array")
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {array.shape}")
    if array.shape[0] != array.shape[1]:
        raise ValueError(f"the matrix must be square, got shape {array.shape[0]}x{array.shape[1]}")
    if array.shape[0] < 2:
        raise ValueError(f"the matrix is too small to have symmetries: {array.shape[0]}x{array.shape[1]}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"the matrix has {bad} non-finite entries (NaN or inf)")
    return array


def _normalise(matrix: np.ndarray, diagonal: str) -> np.ndarray:
    """Symmetrise, handle the diagonal and scale to unit root mean square (module docs)."""
    symmetric = (matrix + matrix.T) / 2
    if diagonal == "ignore":
        np.fill_diagonal(symmetric, 0.0)
    scale = math.sqrt(float(np.mean(symmetric**2)))
    return symmetric / scale if scale > 0 else symmetric


def planted_matrix(
    group: G.Group,
    noise: float = 0.0,
    rng: np.random.Generator | int | None = None,
    shuffle: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A random G-invariant symmetric matrix plus noise: the test case of discovery.

    The coefficients of the closed orbitals are a random arrangement of evenly spaced values
    in [-1, 1], jittered by ±10% of the spacing and scaled by a random factor: random, yet
    pairwise distinct by construction, so that the planted group is the largest group the
    noise-free matrix is invariant under (equal coefficients would make a larger group the
    right answer). Symmetric Gaussian noise is added with ‖noise‖ = ``noise`` · ‖C‖.

    Returns:
        (matrix, order): with ``shuffle``, the variables are put in a random order and
        ``matrix[i, j]`` is entry ``(order[i], order[j])`` of the planted matrix; otherwise
        ``order`` is the identity.
    """
    generator = np.random.default_rng(rng)
    labels = closed_orbitals(group)
    count = int(labels.max()) + 1
    spacing = 2.0 / max(count - 1, 1)
    coefficients = np.linspace(-1.0, 1.0, count) if count > 1 else np.ones(1)
    coefficients = generator.permutation(coefficients) + generator.uniform(-0.1, 0.1, count) * spacing
    matrix = coefficients[labels] * math.exp(generator.uniform(-3, 3))
    if noise > 0:
        gaussian = generator.normal(size=matrix.shape)
        gaussian = (gaussian + gaussian.T) / 2
        matrix = matrix + gaussian * (noise * np.linalg.norm(matrix) / np.linalg.norm(gaussian))
    order = generator.permutation(group.degree) if shuffle else np.arange(group.degree)
    return matrix[np.ix_(order, order)], order


# --------------------------------------------------------------------------- partitions


def closed_orbitals(group: G.Group) -> np.ndarray:
    """The closed orbital map of ``group`` (int64 (n, n), canonical numbering)."""
    return np.asarray(group.orbitals())


def _residual_energy(stack: np.ndarray, labels: np.ndarray) -> float:
    """‖S - proj(S)‖² where proj replaces every entry by the mean of its class.

    Computed from the deviations themselves, not as Σx² - (Σx)²/n, so an exactly invariant
    matrix gives round-off zero rather than the square root of a cancellation error.
    """
    count = int(labels.max()) + 1
    keys, deviations = _deviations(stack, labels, count)
    return float(np.dot(deviations, deviations))


def _deviations(stack: np.ndarray, labels: np.ndarray, count: int):
    """Class key of every entry of the stack and its deviation from its class mean."""
    matrices = stack.shape[0]
    keys = (np.arange(matrices)[:, None] * count + labels.ravel()[None, :]).ravel()
    values = stack.reshape(-1)
    length = matrices * count
    numbers = np.bincount(keys, minlength=length)
    means = np.bincount(keys, values, minlength=length) / np.maximum(numbers, 1)
    return keys, values - means[keys]


def projection_error(matrix: object, group_or_orbitals: G.Group | np.ndarray) -> float:
    """Relative projection error ‖M - proj_G(M)‖ / ‖M‖ of a matrix (no normalisation)."""
    array = _as_matrix(matrix)
    labels = (closed_orbitals(group_or_orbitals) if isinstance(group_or_orbitals, G.Group)
              else np.asarray(group_or_orbitals, dtype=np.int64))
    if labels.shape != array.shape:
        raise ValueError(f"orbital map shape {labels.shape} does not match the matrix {array.shape}")
    total = float(np.sum(array**2))
    if total == 0:
        return 0.0
    return math.sqrt(_residual_energy(array[None], G.canonical_labels(labels)) / total)


def _f_critical(numerator_dof: float, denominator_dof: float, z: float) -> float:
    """Upper quantile of F(d1, d2) at normal score z (Paulson's cube-root approximation)."""
    a = 1 - 2 / (9 * denominator_dof)
    b = 1 - 2 / (9 * numerator_dof)
    p = 2 / (9 * numerator_dof)
    q = 2 / (9 * denominator_dof)
    leading = a * a - z * z * q
    if leading <= 0:  # too few denominator degrees of freedom to reject anything
        return math.inf
    discriminant = a * a * b * b - leading * (b * b - z * z * p)
    root = (a * b + math.sqrt(max(discriminant, 0.0))) / leading
    return root**3


def _consistent(stack: np.ndarray, coarse: np.ndarray, fine: np.ndarray, z: float, floor: float = 0.0) -> bool:
    """Whether merging the cells of ``fine`` into the classes of ``coarse`` is explained by noise
    (or is smaller than ``floor``, a mean square per entry relative to the stack's).

    One F test per (matrix, coarse class): between-cell against within-cell variance, the
    latter pooled over the whole stack when a class has too few entries to estimate its own.
    Entries of these matrices come in (near) transposed pairs, so degrees of freedom are
    halved.
    """
    coarse_count = int(coarse.max()) + 1
    cells = G.canonical_labels(coarse.astype(np.int64) * (int(fine.max()) + 1) + fine)
    cell_count = int(cells.max()) + 1
    cell_class = np.zeros(cell_count, dtype=np.int64)
    cell_class[cells.ravel()] = coarse.ravel()
    matrices = stack.shape[0]
    cell_keys, cell_deviations = _deviations(stack, cells, cell_count)
    class_keys, class_deviations = _deviations(stack, coarse, coarse_count)
    length = matrices * coarse_count
    # Map every entry's cell key to its class key; the between-cell part of a class's
    # spread is its total spread minus the within-cell spread (both from deviations).
    within = np.bincount(class_keys, cell_deviations**2, minlength=length)
    total = np.bincount(class_keys, class_deviations**2, minlength=length)
    between = np.maximum(total - within, 0.0)
    class_number = np.bincount(class_keys, minlength=length).astype(np.float64)
    present_cells = np.unique(cell_keys)
    class_of_cell = (present_cells // cell_count) * coarse_count + cell_class[present_cells % cell_count]
    class_cells = np.bincount(class_of_cell, minlength=length).astype(np.float64)

    scale = max(float(np.mean(stack**2)), 1e-300)
    pooled_dof = float(np.sum(class_number - class_cells))
    pooled = within.sum() / pooled_dof if pooled_dof > 0 else 0.0
    for key in np.flatnonzero(class_cells > 1):
        numerator_dof = class_cells[key] - 1
        own_dof = class_number[key] - class_cells[key]
        variance, dof = (within[key] / own_dof, own_dof) if own_dof >= 20 else (pooled, pooled_dof)
        # Paired entries count every independent deviation twice in both sums; the within
        # variance is per entry already, the between sum must be halved to match.
        between_mean = between[key] / 2 / numerator_dof
        if between[key] / class_number[key] <= max(_EXACT, floor) * scale:
            continue
        if variance <= _EXACT * scale:
            return False  # exact data: any real difference between cells is structure
        critical = _f_critical(max(numerator_dof / 2, 1.0), max(dof / 2, 1.0), z)
        if between_mean > critical * variance:
            return False
    return True


def _unimodal(matrix: np.ndarray, labels: np.ndarray, smallest: int = 10) -> bool:
    """Whether no closed orbital's values fall into two well separated groups.

    For every orbital with at least ``smallest`` distinct entries (upper triangle), the best
    split of its sorted values into two runs keeps a fraction r of the spread. One Gaussian
    of s values keeps about 1 - 2/π ≈ 0.36, and less than 0.36 - 1.2/√s only about once in
    10⁴ (simulated for s = 10..1000); two clusters five or more noise widths apart keep
    less than 0.2. So r below min(0.36 - 1.2/√s, 0.2) means two coefficients were merged;
    the cap keeps flat but unimodal spreads (a uniform one keeps 0.25) from counting.
    Unlike the F test this needs no finer reference, so it also guards candidates found by
    sorting values.
    """
    n = matrix.shape[0]
    rows, columns = np.triu_indices(n)
    values = matrix[rows, columns]
    classes = labels[rows, columns]
    order = np.lexsort((values, classes))
    values, classes = values[order], classes[order]
    starts = np.flatnonzero(np.r_[True, classes[1:] != classes[:-1]])
    ends = np.r_[starts[1:], len(values)]
    scale = max(float(np.mean(matrix**2)), 1e-300)
    for start, end in zip(starts, ends):
        size = end - start
        if size < smallest:
            continue
        chunk = values[start:end]
        centred = chunk - chunk.mean()
        total = float(np.dot(centred, centred))
        if total / size <= _EXACT * scale:
            continue
        prefix = np.cumsum(centred)
        prefix_squares = np.cumsum(centred * centred)
        left = np.arange(2, size - 1)  # both sides keep at least two entries
        left_sum, left_squares = prefix[left - 1], prefix_squares[left - 1]
        right_sum, right_squares = prefix[-1] - left_sum, prefix_squares[-1] - left_squares
        split = (left_squares - left_sum**2 / left) + (right_squares - right_sum**2 / (size - left))
        if float(split.min()) < min(0.36 - 1.2 / math.sqrt(size), 0.2) * total:
            return False
    return True


# --------------------------------------------------------------------------- symfind


@dataclasses.dataclass(frozen=True)
class _Settings:
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
    return math.sqrt(_residual_energy(stack, _pair_labels(group)) / stack.size)


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


def _options(stack: np.ndarray, settings: _Settings) -> list[G.Group]:
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


# Product splits and wreath block sizes followed per node (see _options).
_PRODUCT_SPLITS = 3
_WREATHS = 3


# Rounds of factor merges and most supergroups proposed for the final selection (see
# _coarsenings): the Sudoku group is one merge from its largest near-miss subgroups.
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


def _coarsenings(groups: Sequence[G.Group], rounds: int = _MERGE_ROUNDS, limit: int = _MERGE_LIMIT) -> list[G.Group]:
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


def _factor_group(factors: np.ndarray, settings: _Settings) -> G.Group:
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


def _choose(stack: np.ndarray, settings: _Settings) -> G.Group:
    """The option with the fewest orbitals that fits the node and hides no significant structure."""
    n = stack.shape[-1]
    if n == 1:
        return G.Trivial(1)
    fitting = [option for option in _options(stack, settings)
               if _rms_deviation(stack, option) <= settings.rtol]
    return _select(stack, fitting, lambda group: int(_pair_labels(group).max()) + 1,
                   _pair_labels, settings)


def _select(stack, groups: Sequence[G.Group], size, labels_of, settings: _Settings) -> G.Group:
    """Fewest ``size`` among ``groups`` that pass the significance test against the reference."""
    unique: dict[G.Group, int] = {}
    for group in groups:
        unique.setdefault(group, size(group))
    ordered = sorted(unique, key=lambda group: unique[group])
    reference = _reference(ordered, unique, labels_of, stack.shape[-1] ** 2,
                           lambda group: _residual_energy(stack, labels_of(group)))
    if reference is None:  # too small to measure noise: the fit test alone decides
        return ordered[0]
    for group in ordered:
        if _consistent(stack, labels_of(group), reference, settings.significance, settings.floor):
            return group
    return G.Trivial(stack.shape[-1])


def _reference(ordered: Sequence[G.Group], sizes: dict, labels_of, entries: int, residual):
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


# --------------------------------------------------------------------------- graph


_PYNAUTY_HINT = ("method='graph' needs the optional dependency pynauty: "
                 "pip install pynauty  (or: pip install symsatnet[graph])")


def _import_pynauty():
    try:
        import pynauty
    except ImportError as error:
        raise ImportError(f"{_PYNAUTY_HINT} ({error})") from None
    return pynauty


def _gap_quantisations(values: np.ndarray, limit: int) -> list[np.ndarray]:
    """A few plausible class labellings of 1-D values, from the largest gaps.

    Classes of equal coefficients plus noise are separated by the largest gaps between
    sorted values; the right number of classes is where the next largest gap is much
    smaller (the ratio of consecutive sorted gaps drops). The best few drops are returned,
    one labelling each, plus the single class (k = 1).
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    gaps = np.diff(ordered)
    labellings = [np.zeros(len(values), dtype=np.int64)]
    if len(gaps) == 0 or ordered[-1] - ordered[0] <= 0:
        return labellings
    widest = np.sort(gaps)[::-1][: limit]
    floor = max(float(widest[0]) * 1e-12, 1e-300)
    ratios = widest[:-1] / np.maximum(widest[1:], floor)
    best = np.argsort(ratios)[::-1][:_GRAPH_QUANTISATIONS]
    for cut_count in sorted(int(index) + 1 for index in best):
        threshold = widest[cut_count - 1]
        cuts = np.flatnonzero(gaps >= threshold)[:cut_count]
        sorted_labels = np.zeros(len(values), dtype=np.int64)
        sorted_labels[cuts + 1] = 1
        labels = np.empty(len(values), dtype=np.int64)
        labels[order] = np.cumsum(sorted_labels)
        labellings.append(labels)
    return labellings


def _automorphisms(n: int, edge_labels: np.ndarray, vertex_labels: np.ndarray) -> list[np.ndarray]:
    """Generators of the automorphisms of the complete graph with coloured edges and vertices.

    Edge colours become bit patterns across layers of copies of the vertices (copy l of v is
    vertex l*n + v, consecutive copies joined), so nauty, which knows vertex colours only,
    sees them; the commonest colour is pattern 0, i.e. no edges at all.
    """
    pynauty = _import_pynauty()
    upper_rows, upper_columns = np.triu_indices(n, 1)
    counts = np.bincount(edge_labels)
    code = np.empty(len(counts), dtype=np.int64)
    code[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
    edge_codes = code[edge_labels]
    layers = max(1, int(np.ceil(np.log2(max(len(counts), 2)))))
    adjacency: dict[int, list[int]] = {}
    for layer in range(layers):
        chosen = (edge_codes >> layer) & 1 == 1
        sources = upper_rows[chosen] + layer * n
        targets = upper_columns[chosen] + layer * n
        order = np.argsort(sources, kind="stable")
        sources, targets = sources[order], targets[order]
        starts = np.flatnonzero(np.r_[True, sources[1:] != sources[:-1]]) if len(sources) else []
        for begin, end in zip(starts, list(starts[1:]) + [len(sources)]):
            adjacency[int(sources[begin])] = targets[begin:end].tolist()
    for layer in range(layers - 1):
        for vertex in range(n):
            adjacency.setdefault(layer * n + vertex, []).append((layer + 1) * n + vertex)
    colouring = []
    for layer in range(layers):
        for label in range(int(vertex_labels.max()) + 1):
            colouring.append({int(v) + layer * n for v in np.flatnonzero(vertex_labels == label)})
    graph = pynauty.Graph(layers * n, directed=False, adjacency_dict=adjacency, vertex_coloring=colouring)
    generators = pynauty.autgrp(graph)[0]
    return [np.asarray(generator[:n], dtype=np.int64) for generator in generators]


def _graph_options(matrix: np.ndarray, include_diagonal: bool) -> list[G.Group]:
    """Automorphism groups of the quantised matrix, one per plausible quantisation."""
    n = matrix.shape[0]
    upper = matrix[np.triu_indices(n, 1)]
    edge_labellings = _gap_quantisations(upper, _GRAPH_MAX_CLASSES)
    vertex_labellings = (_gap_quantisations(np.diag(matrix).copy(), _GRAPH_MAX_CLASSES)
                         if include_diagonal else [np.zeros(n, dtype=np.int64)])
    found: list[G.Group] = []
    seen: set = set()
    for vertex_labels in vertex_labellings:
        for edge_labels in edge_labellings:
            generators = _automorphisms(n, edge_labels, vertex_labels)
            key = tuple(tuple(p.tolist()) for p in generators)
            if key in seen:
                continue
            seen.add(key)
            found.append(G.FromGenerators(n, generators) if generators else G.Trivial(n))
    return found


# --------------------------------------------------------------------------- driver


def discover(
    M: object,
    rtol: float = DEFAULT_RTOL,
    max_err: float = DEFAULT_MAX_ERR,
    method: str = "symfind",
    *,
    diagonal: str = "include",
    significance: float = DEFAULT_SIGNIFICANCE,
    max_rank: int = DEFAULT_MAX_RANK,
) -> Discovery:
    """Find a large permutation group under which the square matrix ``M`` is nearly invariant.

    Args:
        M: square matrix, numpy array or torch tensor (n >= 2, finite, real); for a C-form
            layer pass the learned problem block (rows/columns 1..n).
        rtol: tolerance of the structural tests inside the search (module docs).
        max_err: largest relative projection error of the returned group.
        method: ``"symfind"`` (natural index order, structured expressions), ``"graph"``
            (any order, needs pynauty) or ``"both"``.
        diagonal: ``"include"`` or ``"ignore"`` (set C_ii to zero first; see module docs).
        significance: z-score of the test that stops a coarser group hiding real structure.
        max_rank: most Kronecker terms a product split may keep.

    Returns:
        A :class:`Discovery`. The trivial group is returned when nothing better fits.

    Example:
        >>> from symsatnet.groups import Product, Symmetric, Cyclic
        >>> G = Product(Symmetric(3), Cyclic(5))
        >>> M = np.random.default_rng(0).normal(size=G.num_orbitals)[G.orbitals()]
        >>> discover(M).num_orbitals == G.num_orbitals
        True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if diagonal not in DIAGONAL_MODES:
        raise ValueError(f"diagonal must be one of {', '.join(DIAGONAL_MODES)}; got {diagonal!r}")
    for value, name in ((rtol, "rtol"), (max_err, "max_err"), (significance, "significance")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if isinstance(max_rank, bool) or not isinstance(max_rank, int) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer, got {max_rank!r}")
    if method in ("graph", "both"):
        _import_pynauty()  # fail before any work
    array = _as_matrix(M)
    started = time.perf_counter()
    matrix = _normalise(array, diagonal)
    n = matrix.shape[0]
    settings = _Settings(float(rtol), float(max_err), float(significance), max_rank)

    sources: dict[G.Group, str] = {}
    if method in ("symfind", "both"):
        options = _options(matrix[None], settings)
        for group in options + _coarsenings(options):
            sources.setdefault(group, "symfind")
    if method in ("graph", "both"):
        # A graph group with the same orbitals as a symfind group adds nothing but a less
        # readable expression.
        known = {_partition_key(group) for group in sources}
        for group in _graph_options(matrix, diagonal == "include"):
            if _partition_key(group) not in known:
                sources.setdefault(group, "graph")
    sources.setdefault(G.Trivial(n), "symfind" if method != "graph" else "graph")

    candidates = _rank(matrix, sources, settings)
    best = next(c for c in candidates if c.accepted and c.consistent)
    return Discovery(
        group=best.group,
        num_orbitals=best.num_orbitals,
        error=best.error,
        orbitals=closed_orbitals(best.group),
        candidates=tuple(candidates),
        method=method,
        rtol=float(rtol),
        max_err=float(max_err),
        diagonal=diagonal,
        seconds=time.perf_counter() - started,
    )


def _partition_key(group: G.Group) -> bytes:
    return np.asarray(group.orbitals()).tobytes()


def _rank(matrix: np.ndarray, sources: dict[G.Group, str], settings: _Settings) -> list[Candidate]:
    """Evaluate every candidate globally and sort: qualifying ones first, fewest parameters first."""
    stack = matrix[None]
    total = float(np.sum(matrix**2))
    rows = []
    for group, source in sources.items():
        labels = closed_orbitals(group)
        error = math.sqrt(_residual_energy(stack, labels) / total) if total > 0 else 0.0
        rows.append((group, source, labels, int(labels.max()) + 1, error))
    # Graph candidates come from sorting the values into classes, so their cells are
    # correlated with the noise and would make a biased reference; only structural (symfind)
    # candidates serve as one. Every candidate also gets the unimodality check, which needs
    # no reference.
    accepted = [row for row in rows if (row[4] <= settings.max_err or isinstance(row[0], G.Trivial))
                and row[1] == "symfind"]
    accepted.sort(key=lambda row: row[3])
    n = matrix.shape[0]
    residuals = {row[0]: row[4] ** 2 * total for row in accepted}
    reference = _reference([row[0] for row in accepted], {row[0]: row[3] for row in accepted},
                           closed_orbitals, n * (n + 1) // 2, residuals.__getitem__)
    # When a non-trivial group fits exactly the input has no noise, and a coarser group
    # with any error at all merges coefficients that differ.
    exact = any(row[4] <= _EXACT_FIT and row[3] < n * (n + 1) // 2 for row in rows)
    candidates = []
    for group, source, labels, size, error in rows:
        is_accepted = error <= settings.max_err or isinstance(group, G.Trivial)
        is_consistent = not is_accepted or (
            not (exact and error > 100 * _EXACT_FIT)
            and (reference is None or _consistent(stack, labels, reference, settings.significance, settings.floor))
            and _unimodal(matrix, labels))
        candidates.append(Candidate(group, size, error, is_accepted, is_consistent, source))
    candidates.sort(key=lambda c: (not (c.accepted and c.consistent), c.num_orbitals, c.error))
    return candidates
