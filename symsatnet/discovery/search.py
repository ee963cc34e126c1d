"""The driver of discovery: validate the settings, gather the candidates of the methods,
rank them on the whole matrix and return a :class:`~symsatnet.discovery.results.Discovery`."""

from __future__ import annotations

import math
import time

import numpy as np

from .. import groups as G
from .graph import graph_options, import_pynauty
from .results import Candidate, Discovery
from .statistics import as_matrix, closed_orbitals, consistent, normalise, residual_energy, unimodal
from .symfind import Settings, coarsenings, reference_group, symfind_options

DEFAULT_RTOL = 0.2
DEFAULT_MAX_ERR = 0.2
DEFAULT_SIGNIFICANCE = 3.5
DEFAULT_MAX_RANK = 12
METHODS = ("auto", "symfind", "graph", "both")
#: The graph method builds an n x n colouring and nauty graphs with up to n log2(classes)
#: vertices; beyond this many variables it is refused (``'graph'``, ``'both'``) or
#: skipped (``'auto'``). 729-variable Sudoku matrices take ~10 s.
GRAPH_MAX_DEGREE = 2048
#: Up to this many variables ``'auto'`` runs the graph method even when symfind found a
#: group (on shuffled variables symfind often finds a proper subgroup of the real one);
#: above it, only when symfind found nothing, because on a noisy 729-variable Sudoku
#: matrix the graph part alone takes ~45 s on 2 cores.
AUTO_GRAPH_ALWAYS_DEGREE = 256
DIAGONAL_MODES = ("include", "ignore")
#: Largest matrix ``discover`` takes: its time grows about as n^2.5 (729 variables: a few
#: seconds; 5000: ~10 minutes and 6 GB), so beyond this it refuses at once rather than
#: running for minutes without output. ``max_degree`` raises it.
DISCOVER_MAX_DEGREE = 2048

# Relative projection error of an exact fit (round-off only).
_EXACT_FIT = 1e-9


def discover(
    M: object,
    rtol: float = DEFAULT_RTOL,
    max_err: float = DEFAULT_MAX_ERR,
    method: str = "auto",
    *,
    diagonal: str = "include",
    significance: float = DEFAULT_SIGNIFICANCE,
    max_rank: int = DEFAULT_MAX_RANK,
    max_degree: int = DISCOVER_MAX_DEGREE,
) -> Discovery:
    """Find a large permutation group under which the square matrix ``M`` is nearly invariant.

    Args:
        M: square matrix, numpy array or torch tensor (n >= 2, finite, real); for a C-form
            layer pass the learned problem block (rows/columns 1..n).
        rtol: tolerance of the structural tests inside the search (module docs).
        max_err: largest relative projection error of the returned group.
        method: ``"symfind"`` (natural index order, structured expressions), ``"graph"``
            (any order, needs pynauty), ``"both"`` (the candidates of the two pooled) or
            ``"auto"`` (default): symfind, and the graph method as well when pynauty is
            installed, up to ``AUTO_GRAPH_ALWAYS_DEGREE`` variables always, up to
            ``GRAPH_MAX_DEGREE`` when symfind found nothing; the group with the fewest
            parameters that fits wins, and a graph group with the orbitals of a symfind
            group is dropped, so the natural-order result keeps its expression.
        diagonal: ``"include"`` or ``"ignore"`` (set C_ii to zero first; see module docs).
        significance: z-score of the test that stops a coarser group hiding real structure.
        max_rank: most Kronecker terms a product split may keep.
        max_degree: largest n accepted (``DISCOVER_MAX_DEGREE``); larger matrices are
            refused with a ValueError, as the search would run for many minutes.

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
    array = as_matrix(M)
    if method in ("graph", "both"):
        import_pynauty()  # fail before any work
        if array.shape[0] > GRAPH_MAX_DEGREE:
            raise ValueError(f"method={method!r} handles at most {GRAPH_MAX_DEGREE} variables, got "
                             f"{array.shape[0]}; use method='symfind'")
    if array.shape[0] > max_degree:
        minutes = 10 * (array.shape[0] / 5000) ** 2.5
        raise ValueError(f"discover handles at most max_degree={max_degree} variables, got "
                         f"{array.shape[0]} (about {minutes:.0f} minutes of search); pass a "
                         "larger max_degree to run it anyway")
    started = time.perf_counter()
    matrix = normalise(array, diagonal)
    n = matrix.shape[0]
    settings = Settings(float(rtol), float(max_err), float(significance), max_rank)

    sources: dict[G.Group, str] = {}
    if method != "graph":
        options = symfind_options(matrix[None], settings)
        for group in options + coarsenings(options):
            sources.setdefault(group, "symfind")
    sources.setdefault(G.Trivial(n), "symfind" if method != "graph" else "graph")
    candidates = _rank(matrix, sources, settings) if method == "auto" else []
    if method in ("graph", "both") or (method == "auto" and _graph_wanted(candidates, n)):
        # A graph group with the same orbitals as a symfind group adds nothing but a less
        # readable expression.
        known = {_partition_key(group) for group in sources}
        added = False
        for group in graph_options(matrix, diagonal == "include"):
            if _partition_key(group) not in known:
                added = sources.setdefault(group, "graph") == "graph" or added
        candidates = candidates if method == "auto" and not added else []
    if not candidates:
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


def _graph_wanted(candidates: list[Candidate], n: int) -> bool:
    """Whether ``'auto'`` also runs the graph method: pynauty is installed and the matrix is
    small (``AUTO_GRAPH_ALWAYS_DEGREE``), or symfind found nothing but the trivial group and
    the matrix is within ``GRAPH_MAX_DEGREE``. On small matrices symfind finding a group is
    no reason to skip it: on shuffled variables symfind often finds a proper subgroup."""
    best = next(c for c in candidates if c.accepted and c.consistent)
    limit = GRAPH_MAX_DEGREE if isinstance(best.group, G.Trivial) else AUTO_GRAPH_ALWAYS_DEGREE
    if n > limit:
        return False
    try:
        import_pynauty()
    except ImportError:
        return False
    return True


def _partition_key(group: G.Group) -> bytes:
    return np.asarray(group.orbitals()).tobytes()


def _rank(matrix: np.ndarray, sources: dict[G.Group, str], settings: Settings) -> list[Candidate]:
    """Evaluate every candidate globally and sort: qualifying ones first, fewest parameters first."""
    stack = matrix[None]
    total = float(np.sum(matrix**2))
    rows = []
    for group, source in sources.items():
        labels = closed_orbitals(group)
        error = math.sqrt(residual_energy(stack, labels) / total) if total > 0 else 0.0
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
    reference = reference_group([row[0] for row in accepted], {row[0]: row[3] for row in accepted},
                           closed_orbitals, n * (n + 1) // 2, residuals.__getitem__)
    # When a non-trivial group fits exactly the input has no noise, and a coarser group
    # with any error at all merges coefficients that differ.
    exact = any(row[4] <= _EXACT_FIT and row[3] < n * (n + 1) // 2 for row in rows)
    candidates = []
    for group, source, labels, size, error in rows:
        is_accepted = error <= settings.max_err or isinstance(group, G.Trivial)
        is_consistent = not is_accepted or (
            not (exact and error > 100 * _EXACT_FIT)
            and (reference is None or consistent(stack, labels, reference, settings.significance, settings.floor))
            and unimodal(matrix, labels))
        candidates.append(Candidate(group, size, error, is_accepted, is_consistent, source))
    candidates.sort(key=lambda c: (not (c.accepted and c.consistent), c.num_orbitals, c.error))
    return candidates
