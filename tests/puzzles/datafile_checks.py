"""Checks every puzzle data format must pass when its file is damaged (shared by the Sudoku
and cube data tests): a truncated file is refused, a flipped byte is refused or changes
nothing, and arrays re-saved under the old digest are caught by the checksum."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pytest

from puzzles.datafile import DatasetError


def truncations_are_refused(path: Path, load: Callable) -> None:
    data = path.read_bytes()
    for length in (0, 10, 100, len(data) // 2, len(data) - 2, len(data) - 1):
        path.write_bytes(data[:length])
        with pytest.raises(DatasetError):
            load(path)
    path.write_bytes(data)


def flipped_bytes_never_give_wrong_data(path: Path, load: Callable, arrays: Mapping[str, np.ndarray],
                                        positions: int = 60) -> None:
    # Some bytes (zip timestamps) carry no data; damage there may go unnoticed, but the
    # arrays read back must then be the original ones.
    data = path.read_bytes()
    for position in np.linspace(0, len(data) - 1, positions).astype(int):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            loaded = load(path)
        except DatasetError:
            continue
        for name, expected in arrays.items():
            np.testing.assert_array_equal(getattr(loaded, name), expected)
    path.write_bytes(data)


def old_digest_is_caught(path: Path, load: Callable, metadata: dict, arrays: Mapping[str, np.ndarray]) -> None:
    """Re-save changed arrays with the old metadata (digest included), as a hand edit would."""
    with open(path, "wb") as stream:
        np.savez_compressed(stream, metadata=np.array(json.dumps(metadata)), **arrays)
    with pytest.raises(DatasetError, match="checksum"):
        load(path)


def round_trip(path: Path, save: Callable, load: Callable, dataset):
    """Save ``dataset``, read it back, check its arrays came back unchanged; the loaded copy."""
    save(path, dataset)
    loaded = load(path)
    for name in ("puzzles", "solutions"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(dataset, name))
    return loaded
