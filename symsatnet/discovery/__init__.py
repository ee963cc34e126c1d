"""Symmetry discovery: find a large permutation group under which a matrix is nearly invariant.

``discover(M)`` takes a square matrix -- typically the learned problem block of a C-form
layer -- and returns a :class:`Discovery`: a group of the group language
(:mod:`symsatnet.groups`, so it plugs straight into a tied layer), its number of
parameters (closed orbitals), its relative projection error
``‖M - proj_G(M)‖ / ‖M‖`` (proj = mean over each closed orbital) and the candidates that
were weighed.

Two methods (docs/design.md, "Discovery"):

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
``auto`` (the default)
    symfind, and the graph method as well (pooled as in ``both``): on variables in an
    unknown order symfind finds nothing or a proper subgroup. The graph part is skipped
    without pynauty, beyond ``AUTO_GRAPH_ALWAYS_DEGREE`` variables when symfind found a
    group, and beyond ``GRAPH_MAX_DEGREE`` variables.

Normalisation (``statistics.normalise``): the matrix is symmetrised, ``(M + Mᵀ)/2``, because C is
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

The package by job: :mod:`.results` (``Candidate``, ``Discovery``), :mod:`.statistics`
(input, projection errors, the significance test), :mod:`.symfind`, :mod:`.graph` and
:mod:`.search` (``discover`` and the ranking of candidates).
"""

from .results import Candidate, Discovery
from .search import (
    DEFAULT_MAX_ERR,
    DEFAULT_MAX_RANK,
    DEFAULT_RTOL,
    DEFAULT_SIGNIFICANCE,
    DIAGONAL_MODES,
    DISCOVER_MAX_DEGREE,
    AUTO_GRAPH_ALWAYS_DEGREE,
    GRAPH_MAX_DEGREE,
    METHODS,
    discover,
)
from .statistics import closed_orbitals, planted_matrix, projection_error

__all__ = ["Candidate", "Discovery", "discover", "planted_matrix", "projection_error", "closed_orbitals"]
