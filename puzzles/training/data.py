"""The examples of a run: loaded or generated (and cached in the run folder), split, corrupted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from puzzles.datafile import DatasetError

from .distributed import Distributed
from .settings import Settings, TrainingError
from .tasks import Examples, Task, corrupt_labels

SPLIT_STREAM, CORRUPT_STREAM = 11, 12


@dataclass
class Splits:
    train: Examples
    test: Examples
    val: Optional[Examples] = None
    source: str = ""


def _split_sizes(count: int, parts: int) -> list[int]:
    """Sizes for 9:1 (parts=2) or 8:1:1 (parts=3) of count, every part non-empty."""
    tenth = max(1, round(count / 10))
    sizes = [count - (parts - 1) * tenth] + [tenth] * (parts - 1)
    return sizes


def holds_validation(settings: Mapping[str, Any]) -> bool:
    """Whether a run with these settings (a Settings' dict, or a checkpoint's) holds out a
    validation part: SymSATNet-Auto (its choice of group), --validation, and SymSATNet-Soft's
    --soft-select."""
    return bool(settings.get("model") == "symsatnet-auto" or settings.get("validation")
                or (settings.get("model") == "symsatnet-soft" and settings.get("soft_select")))


def split_indices(count: int, seed: int, auto: bool) -> dict[str, np.ndarray]:
    """Indices of the train, (validation,) and test parts of a data set of count examples
    that a run without --test makes: 9:1, or 8:1:1 for SymSATNet-Auto."""
    order = np.random.default_rng([seed, SPLIT_STREAM]).permutation(count)
    sizes = _split_sizes(count, 3 if auto else 2)
    pieces = np.split(order, np.cumsum(sizes)[:-1])
    return {"train": pieces[0], "test": pieces[-1], **({"val": pieces[1]} if auto else {})}


def load_data(settings: Settings, task: Task, run_dir: Path, dist: Distributed, log: Callable[[str], None]) -> Splits:
    """Training/validation/test examples: from --data/--test, or generated and cached."""
    if settings.data:
        dataset = task.load(settings.data)
        source = settings.data
    else:
        cache = run_dir / "data.npz"
        dataset = _cached_dataset(cache, settings, task) if dist.main else None
        if dataset is None and dist.main and cache.exists() and not settings.force:
            # Not the data set this run generates (another count or seed, or the user's own
            # file): generating would replace it.
            raise TrainingError(
                f"{cache} exists and is not this run's generated data (--count {settings.count}, "
                f"--seed {settings.seed}); train on it with --data {cache}, replace it with --force, "
                f"or give another --out"
            )
        if dataset is None and dist.main:
            log(f"generating {settings.count} {task.description} examples (seed {settings.seed})")
            dataset = task.generate(settings.count, seed=settings.seed, progress=settings.progress)
            task.save(cache, dataset)
            log(f"cached the data set in {cache}")
        dist.barrier()
        if dataset is None:
            dataset = task.load(cache)
        source = str(cache)
    examples = task.encode(dataset.puzzles, dataset.solutions)
    auto = holds_validation(settings.to_dict())
    if settings.test:
        test = task.encode(*_arrays(task.load(settings.test)))
        if len(examples) < (3 if auto else 1):
            raise TrainingError(f"{source}: too few examples ({len(examples)}) to train on")
        order = np.random.default_rng([settings.seed, SPLIT_STREAM]).permutation(len(examples))
        if auto:
            val_size = max(1, round(len(examples) / 9))
            parts = [order[val_size:], order[:val_size]]
            train, val = examples.subset(parts[0]), examples.subset(parts[1])
        else:
            train, val = examples.subset(order), None
    else:
        if len(examples) < 3:
            raise TrainingError(f"{source}: too few examples ({len(examples)}) to split into train and test")
        parts = split_indices(len(examples), settings.seed, auto)
        train, test = examples.subset(parts["train"]), examples.subset(parts["test"])
        val = examples.subset(parts["val"]) if auto else None
    if settings.corrupt:
        try:
            corrupted = corrupt_labels(train.labels, train.given_cells, settings.corrupt, task.values, settings.seed)
        except ValueError as error:
            raise TrainingError(str(error)) from None
        train.clean_labels, train.labels = train.labels, corrupted
    return Splits(train, test, val, source)


def _arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    return dataset.puzzles, dataset.solutions


def _cached_dataset(cache: Path, settings: Settings, task: Task):
    """The cached data set if it was generated with this run's count and seed."""
    if not cache.exists():
        return None
    try:
        dataset = task.load(cache)
    except DatasetError:
        return None
    metadata = dataset.metadata
    if metadata.get("count") == settings.count and metadata.get("seed") == settings.seed:
        return dataset
    return None
