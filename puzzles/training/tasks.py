"""The two training tasks (Sudoku, Rubik's cube) behind one interface.

Both encode a board as ``cells`` cells holding one of ``values`` values, one bit per
(cell, value) at index cell * values + value: Sudoku (r*s + c)*s + d and the cube f*6 + c
(docs/design.md, "Index conventions"), so encoding, decoding, metrics and label corruption are written once.
Cell values are 0-based here (Sudoku digit d = value - 1; the cube's colours as stored).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from puzzles import cube as cube_data
from puzzles import sudoku as sudoku_data
from puzzles.datafile import DatasetError

TASKS = ("sudoku", "cube")


@dataclass(frozen=True)
class Task:
    """A puzzle family: its data files, encoding and symmetry group."""

    name: str
    box: Optional[int] = None  # Sudoku box size (3 for 9x9); None for the cube

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise ValueError(f"unknown task {self.name!r}; choose one of {', '.join(TASKS)}")
        if self.name == "sudoku" and self.box not in (2, 3, 4):
            raise ValueError(f"Sudoku box size must be 2, 3 or 4, got {self.box!r}")

    @property
    def values(self) -> int:
        return self.box**2 if self.name == "sudoku" else cube_data.encoding.COLOURS

    @property
    def cells(self) -> int:
        return self.box**4 if self.name == "sudoku" else cube_data.encoding.FACELETS

    @property
    def n(self) -> int:
        """Number of problem variables (bits)."""
        return self.cells * self.values

    @property
    def description(self) -> str:
        if self.name == "sudoku":
            side = self.box**2
            return f"{side}x{side} Sudoku"
        return "Rubik's-cube completion"

    def group(self):
        """The symmetry group of the rules on the problem variables."""
        from symsatnet.groups import cube_group, sudoku_group

        return sudoku_group(self.box) if self.name == "sudoku" else cube_group()

    def symmetry_types(self, names: Optional[str] = None) -> dict:
        """Named groups for soft tying (``names``: comma-separated, None = all): the factors of
        the Sudoku group (``puzzles.sudoku.xsudoku.SYMMETRY_TYPES``) or the cube's facelet
        moves and colour rotations."""
        from puzzles.sudoku.xsudoku import SYMMETRY_TYPES, sudoku_symmetry_types

        known = SYMMETRY_TYPES if self.name == "sudoku" else CUBE_SYMMETRY_TYPES
        chosen = known if names is None else tuple(name.strip() for name in names.split(",") if name.strip())
        unknown = [name for name in chosen if name not in known]
        if not chosen or unknown:
            raise ValueError(f"unknown symmetry type(s) {', '.join(map(repr, unknown)) or 'none given'}; "
                             f"choose from {', '.join(known)}")
        if self.name == "sudoku":
            return sudoku_symmetry_types(self.box, chosen)
        return {name: _cube_symmetry_type(name) for name in chosen}

    def shared_group(self, names: Optional[str] = None):
        """The group the chosen symmetry types generate, written so that the structured
        kernel applies (all six Sudoku types: ``sudoku_group(box, transpose=True)``; both
        cube types: ``cube_group()``), or None where we have no such form."""
        from puzzles.sudoku.xsudoku import SYMMETRY_TYPES
        from symsatnet.groups import cube_group, sudoku_group

        chosen = set(self.symmetry_types(names))
        if self.name == "sudoku":
            return sudoku_group(self.box, transpose=True) if chosen == set(SYMMETRY_TYPES) else None
        return cube_group() if chosen == set(CUBE_SYMMETRY_TYPES) else None

    def tying_group(self, names: tuple[str, ...]):
        """The group the symmetry types ``names`` generate (none: the trivial group), written
        as a product where the types allow it (the structured kernel, and a short expression
        for ``--group``): the cube's ``Product(facelet turns or Trivial(54), colour rotations
        or Trivial(6))``; Sudoku without ``transpose`` as a product over rows, columns and
        digits."""
        from puzzles.sudoku.xsudoku import SYMMETRY_TYPES
        from symsatnet.groups import Product, Symmetric, Trivial, Wreath, sudoku_group
        from symsatnet.soft import joint_group

        kept = set(names)
        types = self.symmetry_types(",".join(names)) if kept else {}
        if not kept:
            return Trivial(self.n)
        if self.name == "cube":
            facelets, colours = (group.children for group in (_cube_symmetry_type("facelets"),
                                                               _cube_symmetry_type("colours")))
            return Product(facelets[0] if "facelets" in kept else colours[0],
                           colours[1] if "colours" in kept else facelets[1])
        if kept == set(SYMMETRY_TYPES):
            return sudoku_group(self.box, transpose=True)
        if "transpose" in kept:
            return joint_group(list(types.values()))
        box, side = self.box, self.box**2

        def axis(within: str, blocks: str):
            inner = Symmetric(box) if within in kept else Trivial(box)
            outer = Symmetric(box) if blocks in kept else Trivial(box)
            return Trivial(side) if within not in kept and blocks not in kept else Wreath(inner, outer)

        digits = Symmetric(side) if "digits" in kept else Trivial(side)
        return Product(Product(axis("rows", "bands"), axis("columns", "stacks")), digits)

    # ---------------------------------------------------------------- data files

    def generate(self, count: int, seed: int, progress: bool = False):
        if self.name == "sudoku":
            return sudoku_data.generate_dataset(count, box=self.box, seed=seed, progress=progress)
        return cube_data.generate_dataset(count, seed=seed, progress=progress)

    def save(self, path: str | os.PathLike, dataset) -> None:
        module = sudoku_data if self.name == "sudoku" else cube_data
        module.save_dataset(path, dataset)

    def load(self, path: str | os.PathLike):
        """Load and verify a data set of this task; DatasetError names any mismatch."""
        module = sudoku_data if self.name == "sudoku" else cube_data
        dataset = module.load_dataset(path)
        if self.name == "sudoku" and dataset.box != self.box:
            side = self.box**2
            raise DatasetError(
                f"{path}: holds {dataset.side}x{dataset.side} Sudoku, this run trains on {side}x{side}"
                + (" (use --box 2)" if dataset.box == 2 else "")
            )
        return dataset

    # ---------------------------------------------------------------- encoding

    def encode(self, puzzles: np.ndarray, solutions: np.ndarray) -> "Examples":
        """Bits, masks and labels of a data set (with the puzzles package's encoders)."""
        count = len(puzzles)
        if self.name == "sudoku":
            inputs = sudoku_data.board_to_bits(puzzles)
            given = sudoku_data.is_input_mask(puzzles)
            labels = solutions.reshape(count, self.cells).astype(np.int64) - 1
        else:
            inputs = cube_data.state_to_bits(puzzles)
            given = cube_data.is_input_mask(puzzles)
            labels = solutions.astype(np.int64)
        given_cells = given.reshape(count, self.cells, self.values)[:, :, 0]
        return Examples(inputs, given, labels, given_cells)

    def boards(self, values: np.ndarray) -> np.ndarray:
        """(count, cells) 0-based values -> the data set's representation of complete boards."""
        if self.name == "sudoku":
            side = self.box**2
            return (values + 1).reshape(len(values), side, side).astype(np.int8)
        return values.astype(np.int8)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "box": self.box}


CUBE_SYMMETRY_TYPES = ("facelets", "colours")


def _cube_symmetry_type(name: str):
    """The cube group's factor ``name`` (cube_group's facelet turns or colour rotations) on
    the (facelet, colour) variables, the other factor trivial."""
    from symsatnet.groups import Product, Trivial, cube_group

    facelets, colours = cube_group().children
    if name == "facelets":
        return Product(facelets, Trivial(colours.degree))
    return Product(Trivial(facelets.degree), colours)


@dataclass
class Examples:
    """A data set as the trainer sees it.

    Attributes:
        inputs: (count, n) float32 bits of the given cells (zeros elsewhere).
        given: (count, n) bool, True on every bit of a given cell.
        labels: (count, cells) int64 0-based value of every cell (the training targets,
            possibly corrupted).
        given_cells: (count, cells) bool.
        clean_labels: the uncorrupted labels, used for accuracies (None: same as labels).
    """

    inputs: np.ndarray
    given: np.ndarray
    labels: np.ndarray
    given_cells: np.ndarray
    clean_labels: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, indices: np.ndarray) -> "Examples":
        clean = None if self.clean_labels is None else self.clean_labels[indices]
        return Examples(self.inputs[indices], self.given[indices], self.labels[indices], self.given_cells[indices], clean)

    @property
    def truth(self) -> np.ndarray:
        """Labels the accuracies are measured against."""
        return self.labels if self.clean_labels is None else self.clean_labels

    def target_bits(self, indices: np.ndarray, values: int) -> np.ndarray:
        """(len(indices), n) float32 one-hot training targets."""
        labels = self.labels[indices]
        one_hot = labels[..., None] == np.arange(values)
        return one_hot.reshape(len(indices), -1).astype(np.float32)


def corrupt_labels(
    labels: np.ndarray, given_cells: np.ndarray, count: int, values: int, seed: int
) -> np.ndarray:
    """Change ``count`` non-given cells of every label to a different random value.

    The robustness experiment of docs/design.md, "Experiments and tests": only cells the model must predict are
    changed (given cells never enter the loss). Deterministic in ``seed``, so the
    corruption is fixed per example for the whole run (and across resumes and ranks).
    """
    labels = np.asarray(labels)
    if count == 0:
        return labels.copy()
    if count < 0:
        raise ValueError(f"the number of corrupted cells must be >= 0, got {count}")
    blanks = (~given_cells).sum(axis=1)
    if len(blanks) and blanks.min() < count:
        raise ValueError(
            f"cannot corrupt {count} cells per example: some examples have only {int(blanks.min())} cells to predict"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC0], spawn_key=(1,)))
    keys = rng.random(labels.shape)
    keys[given_cells] = 2.0  # never pick a given cell
    chosen = np.argsort(keys, axis=1, kind="stable")[:, :count]
    shifts = rng.integers(1, values, size=chosen.shape)
    corrupted = labels.copy()
    rows = np.arange(len(labels))[:, None]
    corrupted[rows, chosen] = (labels[rows, chosen] + shifts) % values
    return corrupted


def decode(outputs: np.ndarray, values: int) -> np.ndarray:
    """(count, n) output probabilities -> (count, cells) 0-based argmax value per cell."""
    return outputs.reshape(len(outputs), -1, values).argmax(axis=-1)


__all__ = ["TASKS", "Examples", "Task", "corrupt_labels", "decode"]
