"""Input handling and the statistics of discovery: normalisation, projection errors, the
significance (F) test that keeps a coarser group only when what it merges is noise, and
the unimodality check (docs/design.md, "Discovery")."""

from __future__ import annotations

import math

import numpy as np

from .. import groups as G

# Mean square per entry (relative to the matrix's) below which a difference or a spread
# counts as round-off: sums over ~10^5 entries leave deviations near 1e-12, squares 1e-24;
# anything above (1e-8)² is real, so noise-free inputs can still reject a coarse merge.
_EXACT = 1e-16


def as_matrix(matrix: object) -> np.ndarray:
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


def normalise(matrix: np.ndarray, diagonal: str) -> np.ndarray:
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


def residual_energy(stack: np.ndarray, labels: np.ndarray) -> float:
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
    array = as_matrix(matrix)
    labels = (closed_orbitals(group_or_orbitals) if isinstance(group_or_orbitals, G.Group)
              else np.asarray(group_or_orbitals, dtype=np.int64))
    if labels.shape != array.shape:
        raise ValueError(f"orbital map shape {labels.shape} does not match the matrix {array.shape}")
    total = float(np.sum(array**2))
    if total == 0:
        return 0.0
    return math.sqrt(residual_energy(array[None], G.canonical_labels(labels)) / total)


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


def consistent(stack: np.ndarray, coarse: np.ndarray, fine: np.ndarray, z: float, floor: float = 0.0) -> bool:
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


def unimodal(matrix: np.ndarray, labels: np.ndarray, smallest: int = 10) -> bool:
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
