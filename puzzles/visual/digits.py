"""Labelled handwritten digit images for visual Sudoku, split into disjoint pools.

The default source is scikit-learn's bundled digits (``sklearn.datasets.load_digits``:
1,797 8x8 images, no download); any labelled digit images can be given as a local .npz
file holding ``x`` (count, height, width) and ``y`` (count,) integer labels, e.g. MNIST.
Only the digits 1..9 are used (Sudoku has no 0). Pixels are scaled to [0, 1].
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from puzzles.datafile import DatasetError

SKLEARN_HINT = ("the bundled digit images need scikit-learn: pip install scikit-learn "
                "(or give a local file of labelled digit images with --digits FILE.npz)")
DIGITS = np.arange(1, 10)


@dataclass(frozen=True)
class DigitImages:
    """Images (count, height, width) float32 in [0, 1] and their digits (count,) in 1..9."""

    images: np.ndarray
    digits: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.digits)

    def subset(self, indices: np.ndarray) -> "DigitImages":
        return DigitImages(self.images[indices], self.digits[indices], self.source)

    def pool_sizes(self) -> dict[int, int]:
        """Images of each digit 1..9."""
        return {int(digit): int((self.digits == digit).sum()) for digit in DIGITS}


def load_sklearn_digits() -> DigitImages:
    """scikit-learn's bundled 8x8 digits 1..9 (1,619 images)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError(SKLEARN_HINT) from None
    bunch = load_digits()
    keep = bunch.target > 0
    images = (bunch.images[keep] / 16.0).astype(np.float32)
    return DigitImages(images, bunch.target[keep].astype(np.int64), "sklearn-digits")


def load_digit_file(path: str | os.PathLike) -> DigitImages:
    """Labelled digit images from a local .npz with ``x`` (count, h, w) and ``y`` (count,);
    DatasetError (one line) for a file of the wrong shape or labels."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if not {"x", "y"} <= names:
                raise DatasetError(f"{path}: a digit file needs arrays 'x' (images) and 'y' (labels), "
                                   f"it holds {', '.join(sorted(names)) or 'nothing'}")
            images, labels = archive["x"], archive["y"]
    except (OSError, ValueError) as error:
        if isinstance(error, DatasetError):
            raise
        raise DatasetError(f"{path}: not a readable .npz file of digit images ({str(error).splitlines()[0]})") from None
    if images.ndim != 3 or images.shape[1] != images.shape[2] or images.shape[1] < 4:
        raise DatasetError(f"{path}: 'x' must hold square images (count, side, side) with side >= 4, "
                           f"got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{path}: 'y' must hold one label per image ({len(images)}), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DatasetError(f"{path}: 'y' must hold integer digits 0..9")
    if not np.issubdtype(images.dtype, np.number) or not np.isfinite(images).all():
        raise DatasetError(f"{path}: 'x' must hold finite numbers")
    keep = labels > 0
    images = images[keep].astype(np.float32)
    top = float(images.max(initial=0.0))
    if top > 0:
        images /= top  # 0..255 (MNIST) or 0..16 (sklearn) alike
    return DigitImages(images, labels[keep].astype(np.int64), f"file:{os.fspath(path)}")


def load_digit_images(path: Optional[str | os.PathLike] = None) -> DigitImages:
    """The bundled digits, or those of a local file."""
    return load_sklearn_digits() if path is None else load_digit_file(path)


def split_pools(images: DigitImages, test_fraction: float, seed: int) -> tuple[DigitImages, DigitImages]:
    """Disjoint (train, test) pools: ``test_fraction`` of every digit's images go to test."""
    if not 0 < test_fraction < 1:
        raise DatasetError(f"the test fraction of the digit images must lie in (0, 1), got {test_fraction}")
    rng = np.random.default_rng([seed, 21])
    train, test = [], []
    for digit in DIGITS:
        members = rng.permutation(np.flatnonzero(images.digits == digit))
        cut = int(round(len(members) * test_fraction))
        test.append(members[:cut])
        train.append(members[cut:])
    return images.subset(np.sort(np.concatenate(train))), images.subset(np.sort(np.concatenate(test)))
