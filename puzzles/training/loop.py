"""Training and evaluation of the puzzle models: data, batches, metrics, checkpoints, DDP.

:func:`train` runs a whole experiment from a :class:`Settings`; the command line
(``puzzles.train``), the demo and the tests all call it. Everything user-facing that can go
wrong raises :class:`TrainingError` with a one-line message.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from puzzles.datafile import DatasetError
from symsatnet import SymSATNet

from .models import (
    DEFAULT_AUTO_EPOCHS,
    DEFAULT_AUX,
    DEFAULT_LR,
    DEFAULT_TRUTH,
    MODEL_KERNELS,
    MODELS,
    TRUTH_MODES,
    build_layer,
    initial_config,
    layer_config,
    layer_size,
    parameter_count,
    use_kernel,
)
from .randomness import EVAL_STREAM, TRAIN_STREAM, check_stream_splits, prepare_solver, shard
from .tasks import Examples, Task, corrupt_labels, decode

CHECKPOINT_KIND = "symsatnet-train-checkpoint"
CHECKPOINT_VERSION = 1
SPLIT_STREAM, CORRUPT_STREAM = 11, 12
# Columns of log.csv (log.jsonl holds the same keys).
LOG_COLUMNS = (
    "epoch", "phase", "layer", "parameters", "lr",
    "train_loss", "train_cell_acc", "train_board_acc",
    "val_loss", "val_cell_acc", "val_board_acc",
    "test_loss", "test_cell_acc", "test_board_acc",
    "train_sweeps", "clamped", "seconds", "eval_seconds",
)
# Settings a resumed run may change; everything else must match the checkpoint.
RESUME_OVERRIDES = ("epochs", "device", "threads", "kernel", "progress", "out", "force", "resume")
# What a setting missing from an older checkpoint meant, where that differs from today's
# default: runs saved before --truth existed trained the published free truth row.
LEGACY_SETTINGS = {"truth": "free"}


class TrainingError(Exception):
    """A problem with the user's input (arguments, files); its message is one line."""


@dataclass
class Settings:
    """Everything that defines a run. ``None`` means "the published default"."""

    task: str = "sudoku"
    model: str = "symsatnet"
    box: int = 3
    data: Optional[str] = None
    test: Optional[str] = None
    count: int = 10_000
    epochs: int = 100
    batch: int = 40
    lr: Optional[float] = None
    corrupt: int = 0
    seed: int = 0
    device: str = "cpu"
    out: Optional[str] = None
    threads: Optional[int] = None
    max_iter: int = 40
    truth: str = DEFAULT_TRUTH
    # Auxiliary variables; None = the model's published number (DEFAULT_AUX).
    aux: Optional[int] = None
    # SymSATNet's group as an expression of the group language; None = the task's own.
    group: Optional[str] = None
    # The solver kernel (the `kernel` of symsatnet.SATNet / SymSATNet, models.MODEL_KERNELS):
    # it changes the speed, not the results beyond rounding, so a resumed run may switch it.
    kernel: str = "auto"
    auto_epochs: Optional[int] = None
    auto_candidates: int = 3
    auto_tolerance: float = 0.01
    discover_method: str = "symfind"
    # A plain layer after the published 10 epochs is far from symmetric (off-diagonal
    # residual 0.371 against the Sudoku group, measured): at 0.2 discovery found nothing,
    # at 0.5 a 24-orbital subgroup of the Sudoku group, whose projection of that layer
    # solved 0.999 of the test boards before any further training.
    discover_rtol: float = 0.5
    discover_max_err: float = 0.5
    eval_batch: int = 100
    progress: bool = True
    resume: bool = False
    force: bool = False

    def resolved(self) -> "Settings":
        """A copy with the published defaults filled in and every value checked."""
        settings = dataclasses.replace(self)
        if settings.model not in MODELS:
            raise TrainingError(f"unknown model {settings.model!r}; choose one of {', '.join(MODELS)}")
        try:
            task = settings.make_task()
        except ValueError as error:
            raise TrainingError(str(error)) from None
        if settings.lr is None:
            settings.lr = DEFAULT_LR[settings.model]
        if settings.aux is None:
            settings.aux = DEFAULT_AUX[settings.model]
        if settings.auto_epochs is None:
            settings.auto_epochs = DEFAULT_AUTO_EPOCHS[task.name]
        if settings.out is None:
            board = f"{task.box**2}x{task.box**2}" if task.name == "sudoku" else "cube"
            settings.out = os.path.join("runs", f"{board}-{settings.model}-seed{settings.seed}")
        for name, minimum in (("count", 3), ("epochs", 0), ("batch", 1), ("max_iter", 1), ("eval_batch", 1),
                              ("corrupt", 0), ("seed", 0), ("aux", 0), ("auto_epochs", 0), ("auto_candidates", 1)):
            if getattr(settings, name) < minimum:
                raise TrainingError(f"--{name.replace('_', '-')} must be >= {minimum}, got {getattr(settings, name)}")
        if settings.threads is not None and settings.threads < 1:
            raise TrainingError(f"--threads must be >= 1, got {settings.threads}")
        if not (settings.lr > 0 and math.isfinite(settings.lr)):
            raise TrainingError(f"--lr must be a positive number, got {settings.lr}")
        if settings.group is not None:
            if settings.model != "symsatnet":
                raise TrainingError(f"--group applies to --model symsatnet, not {settings.model}")
            try:
                initial_config(settings.model, task, settings.max_iter, group=settings.group)
            except ValueError as error:
                raise TrainingError(f"--group: {error}") from None
        if settings.truth not in TRUTH_MODES:
            raise TrainingError(f"--truth must be one of {', '.join(TRUTH_MODES)}, got {settings.truth!r}")
        kernels = MODEL_KERNELS[settings.model]
        if settings.kernel not in kernels:
            raise TrainingError(f"--kernel {settings.kernel!r} does not apply to {settings.model}; "
                                f"choose one of {', '.join(kernels)}")
        if settings.device not in ("cpu", "cuda"):
            raise TrainingError(f"--device must be cpu or cuda, got {settings.device!r}")
        return settings

    def make_task(self) -> Task:
        return Task(self.task, self.box if self.task == "sudoku" else None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        if not self.active:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        if torch.distributed.get_backend() == "nccl":
            tensor = tensor.cuda()
        torch.distributed.all_reduce(tensor)
        return tensor.cpu().tolist()


def start_distributed(device: str) -> Distributed:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1 in the environment)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return Distributed(rank, world, local_rank)


def stop_distributed(dist: Distributed) -> None:
    if dist.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# --------------------------------------------------------------------------- data


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
    auto = settings.model == "symsatnet-auto"
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


# --------------------------------------------------------------------------- batches and metrics


class Tally:
    """Sums of per-example statistics over an epoch (reduced over ranks at the end)."""

    KEYS = ("loss", "cells_right", "cells", "boards_right", "boards", "sweeps", "clamped", "batches")

    def __init__(self) -> None:
        self.values = dict.fromkeys(self.KEYS, 0.0)

    def add(self, **values: float) -> None:
        for key, value in values.items():
            self.values[key] += float(value)

    def summary(self, dist: Distributed, prefix: str) -> dict[str, float]:
        totals = dict(zip(self.KEYS, dist.sum([self.values[key] for key in self.KEYS])))
        boards = max(totals["boards"], 1.0)
        result = {
            f"{prefix}_loss": totals["loss"] / boards,
            f"{prefix}_cell_acc": totals["cells_right"] / max(totals["cells"], 1.0),
            f"{prefix}_board_acc": totals["boards_right"] / boards,
        }
        if prefix == "train":
            result["train_sweeps"] = totals["sweeps"] / max(totals["batches"], 1.0)
            result["clamped"] = int(totals["clamped"])
        return result


def example_losses(outputs: torch.Tensor, targets: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
    """Binary cross entropy on the output (non-given) bits, summed per example and divided by n.

    Equal to the published mean BCE over all bits, where copied inputs contribute nothing.
    """
    bits = F.binary_cross_entropy(outputs.clamp(0.0, 1.0), targets, reduction="none")
    return (bits * (~given)).sum(dim=1) / outputs.shape[1]


def score(outputs: torch.Tensor, examples: Examples, indices: np.ndarray, values: int):
    """(predicted values, cells right, cells to predict, boards right) of a batch."""
    predicted = decode(outputs.detach().cpu().numpy(), values)
    truth = examples.truth[indices]
    to_predict = ~examples.given_cells[indices]
    right = predicted == truth
    return predicted, int((right & to_predict).sum()), int(to_predict.sum()), int(right.all(axis=1).sum())


def _batch_tensors(examples: Examples, indices: np.ndarray, device: torch.device):
    inputs = torch.from_numpy(examples.inputs[indices]).to(device)
    given = torch.from_numpy(examples.given[indices]).to(device)
    return inputs, given


@torch.no_grad()
def evaluate(
    layer: nn.Module,
    examples: Examples,
    task: Task,
    seed: int,
    batch: int = 100,
    dist: Distributed = Distributed(),
    device: torch.device | str = "cpu",
    prefix: str = "test",
    keep_predictions: bool = False,
):
    """Loss and accuracies of ``layer`` on ``examples`` (and this rank's predictions)."""
    device = torch.device(device)
    tally = Tally()
    predictions = []
    for step, start in enumerate(range(0, len(examples), batch)):
        indices, offset = shard(np.arange(start, min(start + batch, len(examples))), dist.rank, dist.world)
        if not len(indices):
            continue
        prepare_solver(layer, (seed, EVAL_STREAM, step), offset)
        inputs, given = _batch_tensors(examples, indices, device)
        outputs = layer(inputs, given)
        targets = torch.from_numpy(examples.target_bits(indices, task.values)).to(device)
        losses = example_losses(outputs, targets, given)
        predicted, cells_right, cells, boards_right = score(outputs, examples, indices, task.values)
        tally.add(loss=losses.sum(), cells_right=cells_right, cells=cells, boards_right=boards_right, boards=len(indices))
        if keep_predictions:
            predictions.append(predicted)
    metrics = tally.summary(dist, prefix)
    if keep_predictions:
        stacked = np.concatenate(predictions) if predictions else np.zeros((0, task.cells), dtype=np.int64)
        return metrics, stacked
    return metrics


# --------------------------------------------------------------------------- checkpoints


def save_atomically(payload: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if temporary.exists():
            temporary.unlink()
        raise


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and sanity-check a training checkpoint; TrainingError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file fails in many ways; all mean the same here
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrainingError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != CHECKPOINT_KIND:
        raise TrainingError(f"{path}: not a symsatnet training checkpoint")
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise TrainingError(f"{path}: checkpoint version {checkpoint.get('version')!r} is not supported")
    missing = [key for key in ("settings", "layer_config", "model_state", "epoch") if key not in checkpoint]
    if missing:
        raise TrainingError(f"{path}: incomplete checkpoint (missing {', '.join(missing)})")
    return checkpoint


def layer_from_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike = "checkpoint") -> nn.Module:
    """The trained layer of a checkpoint."""
    try:
        layer = build_layer(checkpoint["layer_config"])
        layer.load_state_dict(checkpoint["model_state"])
    except (KeyError, ValueError, RuntimeError, TypeError) as error:
        raise TrainingError(f"{path}: the model in the checkpoint cannot be rebuilt ({str(error).splitlines()[0]})") from None
    return layer


def _rng_states(data_order: np.random.Generator) -> dict[str, Any]:
    legacy = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": (legacy[0], legacy[1].tolist(), legacy[2], legacy[3], legacy[4]),
        "python": random.getstate(),
        "data_order": data_order.bit_generator.state,
    }


def _restore_rng_states(states: dict[str, Any], data_order: np.random.Generator) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    random.setstate(states["python"])
    data_order.bit_generator.state = states["data_order"]


# --------------------------------------------------------------------------- the run


@dataclass
class RunState:
    """What changes during a run (and is saved in the checkpoint)."""

    layer: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    phase: str = "plain"
    history: list[dict[str, Any]] = field(default_factory=list)
    discovery: Optional[dict[str, Any]] = None


class Run:
    """One training run: settings, data, model, logs. Call :meth:`fit`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.resolved()
        self.task = self.settings.make_task()
        self.dir = Path(self.settings.out)
        self.dist = Distributed()
        self.device = torch.device("cpu")
        self.data_order = np.random.default_rng([self.settings.seed, 3])

    # ------------------------------------------------------------ logging

    def log(self, message: str) -> None:
        """Print on rank 0 and append to DIR/run.log with a time stamp."""
        if not self.dist.main:
            return
        print(message, flush=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "run.log", "a") as stream:
            stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {message}\n")

    def write_logs(self, history: list[dict[str, Any]]) -> None:
        """Rewrite log.csv and log.jsonl from the history (so a resume never duplicates rows)."""
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=LOG_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({key: ("" if row.get(key) is None else row.get(key)) for key in LOG_COLUMNS})
        lines = "".join(json.dumps(row) + "\n" for row in history)
        for name, content in (("log.csv", text.getvalue()), ("log.jsonl", lines)):
            temporary = self.dir / f".{name}.partial"
            temporary.write_text(content)
            os.replace(temporary, self.dir / name)

    # ------------------------------------------------------------ setup

    def _prepare_directory(self) -> Optional[dict[str, Any]]:
        """Check the run folder; return the checkpoint to resume from, if any."""
        checkpoint_path = self.dir / "checkpoint.pt"
        if self.settings.resume:
            if not checkpoint_path.exists():
                raise TrainingError(
                    f"{checkpoint_path}: no such checkpoint file, nothing to resume "
                    f"(drop --resume to start a new run in {self.dir})"
                )
            checkpoint = load_checkpoint(checkpoint_path)
            self._check_resumable(checkpoint)
            return checkpoint
        occupied = [name for name in ("checkpoint.pt", "log.csv") if (self.dir / name).exists()]
        if occupied and not self.settings.force:
            raise TrainingError(
                f"{self.dir} already holds a run ({occupied[0]}); use --resume to continue it, "
                f"--force to start over, or --out for another folder"
            )
        return None

    def _check_resumable(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint["settings"]
        path = self.dir / "checkpoint.pt"
        for key in ("task", "model"):
            if saved.get(key) != getattr(self.settings, key):
                raise TrainingError(
                    f"{path} is a {saved.get('task')} {saved.get('model')} run, "
                    f"not {self.settings.task} {self.settings.model}"
                )
        if self.settings.task == "sudoku" and saved.get("box") != self.settings.box:
            raise TrainingError(f"{path} was trained with --box {saved.get('box')}, not {self.settings.box}")

    def _apply_checkpoint_settings(self, checkpoint: dict[str, Any], explicit: set[str]) -> None:
        """Take the run's settings from the checkpoint; explicit conflicting ones are refused."""
        saved = checkpoint["settings"]
        for key in explicit - set(RESUME_OVERRIDES):
            if key in saved and saved[key] != getattr(self.settings, key):
                raise TrainingError(
                    f"--{key.replace('_', '-')} {getattr(self.settings, key)} differs from the checkpoint's "
                    f"{saved[key]}; a resumed run keeps its settings (only {', '.join('--' + k for k in ('epochs', 'device', 'threads', 'kernel'))} may change)"
                )
        merged = {key: saved.get(key, LEGACY_SETTINGS.get(key, value)) for key, value in self.settings.to_dict().items()}
        for key in RESUME_OVERRIDES:
            merged[key] = getattr(self.settings, key)
        self.settings = Settings(**merged).resolved()

    def _start_device(self) -> None:
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        if self.settings.device == "cuda":
            if not torch.cuda.is_available():
                raise TrainingError("--device cuda: no CUDA device is available (or torch was built without CUDA)")
            self.device = torch.device("cuda", self.dist.local_rank)

    def _use_kernel(self, layer: nn.Module) -> str:
        """Give the layer the --kernel of this run; returns the kernel it will run."""
        try:
            return use_kernel(layer, self.settings.kernel)
        except ValueError as error:
            raise TrainingError(f"--kernel {self.settings.kernel}: {error}") from None

    def _new_optimizer(self, layer: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(layer.parameters(), lr=self.settings.lr)

    def _wrap(self, layer: nn.Module) -> nn.Module:
        if not self.dist.active:
            return layer
        from torch.nn.parallel import DistributedDataParallel

        dtype = next(layer.parameters()).dtype
        if not check_stream_splits(layer_size(layer), layer.k, dtype):
            raise TrainingError(
                f"random starting vectors of rank k = {layer.k} cannot be split across ranks reproducibly "
                f"on this torch build; train in one process"
            )
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Buffers (orbital maps) never change; a parameter can be empty (aux = 0).
        return DistributedDataParallel(layer, device_ids=device_ids, broadcast_buffers=False, find_unused_parameters=True)

    def _fresh_state(self) -> RunState:
        seed = self.settings.seed
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        config = initial_config(self.settings.model, self.task, self.settings.max_iter, self.settings.truth,
                                self.settings.aux, self.settings.group)
        layer = build_layer(config).to(self.device)
        phase = "plain" if self.settings.model == "symsatnet-auto" else "fixed"
        return RunState(layer, self._new_optimizer(layer), phase=phase)

    def _restored_state(self, checkpoint: dict[str, Any]) -> RunState:
        path = self.dir / "checkpoint.pt"
        layer = layer_from_checkpoint(checkpoint, path).to(self.device)
        optimizer = self._new_optimizer(layer)
        try:
            optimizer.load_state_dict(checkpoint["optimizer_state"])
            _restore_rng_states(checkpoint["rng"], self.data_order)
        except (KeyError, ValueError, TypeError) as error:
            raise TrainingError(f"{path}: damaged optimizer or random state ({error})") from None
        return RunState(
            layer,
            optimizer,
            epoch=int(checkpoint["epoch"]),
            phase=checkpoint.get("phase", "fixed"),
            history=list(checkpoint.get("history", [])),
            discovery=checkpoint.get("discovery"),
        )

    def _save_checkpoint(self, state: RunState) -> None:
        payload = {
            "kind": CHECKPOINT_KIND,
            "version": CHECKPOINT_VERSION,
            "task": self.task.to_dict(),
            "model": self.settings.model,
            "settings": self.settings.to_dict(),
            "epoch": state.epoch,
            "phase": state.phase,
            "layer_config": layer_config(state.layer),
            "model_state": {key: value.detach().cpu() if isinstance(value, torch.Tensor) else value
                            for key, value in state.layer.state_dict().items()},
            "optimizer_state": state.optimizer.state_dict(),
            "rng": _rng_states(self.data_order),
            "history": state.history,
            "discovery": state.discovery,
        }
        save_atomically(payload, self.dir / "checkpoint.pt")

    # ------------------------------------------------------------ epochs

    def _train_epoch(self, state: RunState, model: nn.Module, train: Examples) -> dict[str, float]:
        from tqdm import tqdm

        settings, dist, layer = self.settings, self.dist, state.layer
        layer.train()
        order = self.data_order.permutation(len(train))
        steps = range(0, len(train), settings.batch)
        tally = Tally()
        bar = tqdm(total=len(steps), desc=f"epoch {state.epoch + 1}", unit="batch", leave=False,
                   disable=not (settings.progress and dist.main))
        for step, start in enumerate(steps):
            batch = order[start : start + settings.batch]
            indices, offset = shard(batch, dist.rank, dist.world)
            weight = dist.world / len(batch)
            counted = len(indices) > 0
            if not counted:  # a short last batch: this rank still joins the gradient exchange
                indices, weight = batch[:1], 0.0
            prepare_solver(layer, (settings.seed, TRAIN_STREAM, state.epoch, step), offset)
            inputs, given = _batch_tensors(train, indices, self.device)
            targets = torch.from_numpy(train.target_bits(indices, self.task.values)).to(self.device)
            outputs = model(inputs, given)
            losses = example_losses(outputs, targets, given)
            state.optimizer.zero_grad(set_to_none=True)
            (losses.sum() * weight).backward()
            state.optimizer.step()
            if counted:
                _, cells_right, cells, boards_right = score(outputs, train, indices, self.task.values)
                info = layer.last_info
                tally.add(loss=losses.detach().sum(), cells_right=cells_right, cells=cells,
                          boards_right=boards_right, boards=len(indices),
                          sweeps=info.sweeps.float().mean() if info is not None else 0.0,
                          clamped=info.num_clamped if info is not None else 0, batches=1)
                bar.set_postfix(loss=f"{losses.detach().mean().item():.4f}", refresh=False)
            bar.update(1)
        bar.close()
        return tally.summary(dist, "train")

    def _evaluate(self, layer: nn.Module, examples: Examples, prefix: str) -> dict[str, float]:
        layer.eval()
        return evaluate(layer, examples, self.task, self.settings.seed, self.settings.eval_batch,
                        self.dist, self.device, prefix)

    def _discover(self, state: RunState, splits: Splits) -> None:
        """SymSATNet-Auto: find the group of the plain layer's C and continue with it tied."""
        from symsatnet.discovery import closed_orbitals, discover

        settings, n = self.settings, self.task.n
        C = state.layer.matrix().detach().cpu().double()
        problem_block = C[1 : n + 1, 1 : n + 1].numpy()
        if self.dist.main:
            # The searched matrix, kept so discovery can be rerun with other settings
            # (`symsatnet discover DIR/plain_matrix.npy`) after the plain layer is gone.
            temporary = self.dir / ".plain_matrix.npy.partial"
            with open(temporary, "wb") as stream:
                np.save(stream, problem_block)
            os.replace(temporary, self.dir / "plain_matrix.npy")
        self.log(f"epoch {state.epoch}: looking for the symmetry of the learned {n}x{n} matrix "
                 f"({settings.discover_method}, rtol={settings.discover_rtol}, max_err={settings.discover_max_err})")
        found = discover(problem_block, rtol=settings.discover_rtol,
                         max_err=settings.discover_max_err, method=settings.discover_method, diagonal="ignore")
        self.log(f"found {found.expression} with {found.num_parameters} parameters, "
                 f"relative projection error {found.error:.4f} ({found.seconds:.1f} s)")
        candidates, partitions = [], set()
        for candidate in found.candidates:  # qualifying groups, best first, one per orbital partition
            key = closed_orbitals(candidate.group).tobytes()
            if candidate.accepted and candidate.consistent and key not in partitions:
                partitions.add(key)
                candidates.append(candidate)
        candidates = candidates[: settings.auto_candidates]
        solver = dict(max_iter=state.layer.max_iter, eps=state.layer.eps, prox_lam=state.layer.prox_lam, k=state.layer.k)
        weighed = []
        for candidate in candidates:
            tied = SymSATNet.from_matrix(C.float(), candidate.group, truth=settings.truth, **solver).to(self.device)
            accuracy = None
            if len(candidates) > 1 and splits.val is not None:
                accuracy = self._evaluate(tied, splits.val, "val")["val_board_acc"]
                self.log(f"  candidate {candidate.expression} ({candidate.num_parameters} parameters): "
                         f"validation board accuracy {accuracy:.4f}")
            weighed.append((candidate, tied, accuracy))
        chosen = _choose(weighed, settings.auto_tolerance)
        candidate, tied, accuracy = chosen
        # A group that ties nothing (Trivial, or products of Trivial) would only swap the
        # S-form plain layer for a C-form one with the same C, which trains differently:
        # measured on the cube (epoch 20 plain, test board 0.174), the C-form continuation
        # fell to 0.10 at once and was at 0.11 after 80 more epochs. Keep the plain layer.
        untied = candidate.group.num_orbitals >= n * (n + 1) // 2
        state.discovery = {
            "epoch": state.epoch,
            "group": candidate.expression,
            "num_parameters": candidate.num_parameters,
            "error": candidate.error,
            "validation_board_acc": accuracy,
            "kept_plain_layer": untied,
            "search": found.to_dict(limit=10),
            "candidates": [{"group": c.expression, "num_parameters": c.num_parameters, "error": c.error,
                            "validation_board_acc": a} for c, _, a in weighed],
        }
        if self.dist.main:
            (self.dir / "discovery.json").write_text(json.dumps(state.discovery, indent=2) + "\n")
        if untied:
            self.log(f"{candidate.expression} ties no entries (no symmetry within max_err "
                     f"{settings.discover_max_err}): continuing with the plain layer from epoch {state.epoch + 1}")
            state.phase = "untied"
            return
        self.log(f"continuing with SymSATNet({candidate.expression}), {candidate.num_parameters} orbital "
                 f"coefficients, from epoch {state.epoch + 1}")
        self._use_kernel(tied)
        state.layer = tied
        state.optimizer = self._new_optimizer(tied)
        state.phase = "symmetric"

    # ------------------------------------------------------------ main loop

    def fit(self, explicit: set[str] = frozenset()) -> RunState:
        """Train (or continue training) to ``settings.epochs``; returns the final state."""
        self.dist = start_distributed(self.settings.device)
        try:
            return self._fit(explicit)
        finally:
            stop_distributed(self.dist)

    def _fit(self, explicit: set[str]) -> RunState:
        checkpoint = self._prepare_directory()
        if checkpoint is not None:
            self._apply_checkpoint_settings(checkpoint, set(explicit))
        self._start_device()
        if self.dist.main:
            self.dir.mkdir(parents=True, exist_ok=True)
        settings = self.settings
        splits = load_data(settings, self.task, self.dir, self.dist, self.log)
        state = self._restored_state(checkpoint) if checkpoint else self._fresh_state()
        kernel = self._use_kernel(state.layer)
        if checkpoint:
            self.log(f"resuming {self.dir} after epoch {state.epoch} ({state.layer.__class__.__name__}, "
                     f"{kernel} kernel)")
            if self.dist.main:
                self.write_logs(state.history)
        else:
            self.log(f"training {settings.model} on {self.task.description}: {len(splits.train)} train, "
                     + (f"{len(splits.val)} validation, " if splits.val is not None else "")
                     + f"{len(splits.test)} test examples from {splits.source}; batch {settings.batch}, "
                     f"lr {settings.lr:g}, {settings.epochs} epochs, seed {settings.seed}"
                     + (f", {settings.corrupt} corrupted label cells" if settings.corrupt else "")
                     + (f", {self.dist.world} processes" if self.dist.active else "")
                     + f"; {kernel} kernel")
            if self.dist.main:
                (self.dir / "settings.json").write_text(json.dumps(settings.to_dict(), indent=2) + "\n")
        model = self._wrap(state.layer)
        while state.epoch < settings.epochs:
            started = time.perf_counter()
            train_metrics = self._train_epoch(state, model, splits.train)
            seconds = time.perf_counter() - started
            state.epoch += 1
            started = time.perf_counter()
            row: dict[str, Any] = {"epoch": state.epoch, "phase": state.phase, "layer": type(state.layer).__name__,
                                   "parameters": parameter_count(state.layer), "lr": settings.lr, **train_metrics}
            if splits.val is not None:
                row.update(self._evaluate(state.layer, splits.val, "val"))
            row.update(self._evaluate(state.layer, splits.test, "test"))
            row.update(seconds=round(seconds, 3), eval_seconds=round(time.perf_counter() - started, 3))
            state.history.append(row)
            self.log(_epoch_line(row, settings.epochs))
            if state.phase == "plain" and state.epoch >= settings.auto_epochs:
                self._discover(state, splits)
                model = self._wrap(state.layer)
            if self.dist.main:
                self._save_checkpoint(state)
                self.write_logs(state.history)
            self.dist.barrier()
        return state


def _choose(weighed: list, tolerance: float):
    """The largest group (fewest parameters) whose validation accuracy is within tolerance of the best."""
    scored = [entry for entry in weighed if entry[2] is not None]
    if not scored:
        return weighed[0]
    best = max(entry[2] for entry in scored)
    return min((entry for entry in scored if entry[2] >= best - tolerance), key=lambda entry: entry[0].num_parameters)


def _epoch_line(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}",
             f"train board {row['train_board_acc']:.3f}"]
    if row.get("val_board_acc") is not None:
        parts.append(f"val board {row['val_board_acc']:.3f}")
    parts += [f"test board {row['test_board_acc']:.3f} cell {row['test_cell_acc']:.3f}",
              f"{row['seconds']:.1f}+{row['eval_seconds']:.1f} s"]
    return "  ".join(parts)


def train(settings: Settings, explicit: set[str] = frozenset()) -> RunState:
    """Run the experiment described by ``settings``; see :class:`Run`."""
    return Run(settings).fit(explicit)


__all__ = ["Distributed", "Run", "RunState", "Settings", "TrainingError", "evaluate", "layer_from_checkpoint",
           "load_checkpoint", "load_data", "save_atomically", "train"]
