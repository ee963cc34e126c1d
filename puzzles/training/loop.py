"""The training run: :func:`train` runs a whole experiment from a :class:`Settings`.

The command line (``puzzles.train``), the demo and the tests all call it. The jobs around
the loop live beside it: settings, distributed, data, metrics, checkpoint, auto (the
SymSATNet-Auto switch). Everything user-facing that can go wrong raises
:class:`TrainingError` with a one-line message.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .auto import discover_and_tie
from puzzles.datafile import file_in_the_way, write_atomically

from .checkpoint import (
    CHECKPOINT_KIND,
    CHECKPOINT_VERSION,
    layer_from_checkpoint,
    load_checkpoint_or_previous,
    previous_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from .data import Splits, load_data
from .distributed import Distributed, start_distributed, stop_distributed
from .folder import FolderLock, remove_orphans
from .metrics import Tally, batch_tensors, evaluate, example_losses, score
from .models import build_layer, initial_config, layer_config, layer_size, parameter_count, use_kernel
from .randomness import TRAIN_STREAM, check_stream_splits, prepare_solver, shard
from .settings import LEGACY_SETTINGS, RESUME_OVERRIDES, Settings, TrainingError
from .tasks import Examples

# Columns of log.csv (log.jsonl holds the same keys).
LOG_COLUMNS = (
    "epoch", "phase", "layer", "parameters", "lr",
    "train_loss", "train_cell_acc", "train_board_acc",
    "val_loss", "val_cell_acc", "val_board_acc",
    "test_loss", "test_cell_acc", "test_board_acc",
    "train_sweeps", "clamped", "seconds", "eval_seconds",
)


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
        self.lock = FolderLock(self.dir)

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
            write_atomically(self.dir / name, lambda stream: stream.write(content.encode()))

    # ------------------------------------------------------------ setup

    def _prepare_directory(self) -> Optional[dict[str, Any]]:
        """Check the run folder (and lock it on rank 0); return the checkpoint to resume from, if any."""
        checkpoint_path = self.dir / "checkpoint.pt"
        blocking = file_in_the_way(self.dir)
        if blocking is not None:
            raise TrainingError(f"--out {self.dir}: {blocking} is a file, not a folder")
        if self.settings.resume and not (checkpoint_path.exists() or previous_checkpoint(checkpoint_path).exists()):
            raise TrainingError(
                f"{checkpoint_path}: no such checkpoint file, nothing to resume "
                f"(drop --resume to start a new run in {self.dir})"
            )
        if self.dist.main:
            self.lock.acquire()
            removed = remove_orphans(self.dir)
            if removed:
                self.log(f"removed {len(removed)} temporary file(s) left by an interrupted run: {', '.join(removed)}")
        if self.settings.resume:
            checkpoint = load_checkpoint_or_previous(checkpoint_path, self.log)
            self._check_resumable(checkpoint)
            return checkpoint
        occupied = [name for name in ("checkpoint.pt", "checkpoint.prev.pt", "log.csv") if (self.dir / name).exists()]
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

    def apply_kernel(self, layer: nn.Module) -> str:
        """Give the layer the --kernel of this run; returns the kernel it will run."""
        try:
            return use_kernel(layer, self.settings.kernel)
        except ValueError as error:
            raise TrainingError(f"--kernel {self.settings.kernel}: {error}") from None

    def new_optimizer(self, layer: nn.Module) -> torch.optim.Optimizer:
        if hasattr(layer, "optimizer"):  # SoftSymSATNet: significance-gated steps on its pathways
            return layer.optimizer(self.settings.lr, self.settings.soft_significance, self.settings.soft_shrink)
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
        # Buffers (orbital maps) never change, so they need no sync before each forward; a
        # parameter can be empty (aux = 0). torch 2.13 renames broadcast_buffers (deprecated,
        # a FutureWarning on every rank) to forward_sync_buffers, which still syncs buffers once
        # at init: harmless, every rank builds the same ones. Older torch knows only the first.
        no_buffer_sync = {next(name for name in ("forward_sync_buffers", "broadcast_buffers")
                               if name in inspect.signature(DistributedDataParallel).parameters): False}
        return DistributedDataParallel(layer, device_ids=device_ids, find_unused_parameters=True, **no_buffer_sync)

    def _fresh_state(self) -> RunState:
        seed = self.settings.seed
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        config = initial_config(self.settings.model, self.task, self.settings.max_iter, self.settings.truth,
                                self.settings.aux, self.settings.group, self.settings.soft_groups,
                                self.settings.soft_path_lr)
        layer = build_layer(config).to(self.device)
        phase = "plain" if self.settings.model == "symsatnet-auto" else "fixed"
        return RunState(layer, self.new_optimizer(layer), phase=phase)

    def _restored_state(self, checkpoint: dict[str, Any]) -> RunState:
        path = self.dir / "checkpoint.pt"
        layer = layer_from_checkpoint(checkpoint, path).to(self.device)
        optimizer = self.new_optimizer(layer)
        try:
            optimizer.load_state_dict(checkpoint["optimizer_state"])
            restore_rng_states(checkpoint["rng"], self.data_order)
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

    def _save_checkpoint(self, state: RunState, name: str = "checkpoint.pt") -> None:
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
            "rng": rng_states(self.data_order),
            "history": state.history,
            "discovery": state.discovery,
        }
        save_checkpoint(payload, self.dir / name)

    def _soft_phase(self, state: RunState) -> None:
        """SoftSymSATNet: the shared part alone while the warm-up lasts (:func:`warmup_over`),
        then the pathways open and the shared part learns at --soft-shared-lr times the rate.
        Other layers: nothing."""
        if not hasattr(state.layer, "open_pathways"):
            return
        opened = warmup_over(self.settings.soft_warmup, state.history[:state.epoch], state.epoch)
        if opened and state.phase == "warm-up":
            boards = ", ".join(f"{row['train_board_acc']:.3f}" for row in state.history[:state.epoch])
            self.log(f"pathways open after {state.epoch} warm-up epoch(s) (training board accuracy {boards})")
        state.phase = "pathways" if opened else "warm-up"
        state.layer.open_pathways(opened)
        state.optimizer.param_groups[0]["lr"] = self.settings.lr * (self.settings.soft_shared_lr if opened else 1.0)

    # ------------------------------------------------------------ epochs

    def _train_epoch(self, state: RunState, model: nn.Module, train: Examples) -> dict[str, float]:
        from tqdm import tqdm

        settings, dist, layer = self.settings, self.dist, state.layer
        layer.train()
        self._soft_phase(state)
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
            inputs, given = batch_tensors(train, indices, self.device)
            targets = torch.from_numpy(train.target_bits(indices, self.task.values)).to(self.device)
            outputs = model(inputs, given)
            losses = example_losses(outputs, targets, given)
            state.optimizer.zero_grad(set_to_none=True)
            loss = losses.sum() * weight
            loss.backward()
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

    def evaluate_layer(self, layer: nn.Module, examples: Examples, prefix: str) -> dict[str, float]:
        layer.eval()
        return evaluate(layer, examples, self.task, self.settings.seed, self.settings.eval_batch,
                        self.dist, self.device, prefix)

    def _discover(self, state: RunState, splits: Splits) -> None:
        """SymSATNet-Auto: find the group of the plain layer's C and continue with it tied."""
        discover_and_tie(self, state, splits)

    # ------------------------------------------------------------ main loop

    def fit(self, explicit: set[str] = frozenset()) -> RunState:
        """Train (or continue training) to ``settings.epochs``; returns the final state."""
        self.dist = start_distributed(self.settings.device)
        try:
            return self._fit(explicit)
        finally:
            self.lock.release()
            stop_distributed(self.dist)

    def _fit(self, explicit: set[str]) -> RunState:
        checkpoint = self._prepare_directory()
        if checkpoint is not None:
            self._apply_checkpoint_settings(checkpoint, set(explicit))
            done = int(checkpoint["epoch"])
            if done >= self.settings.epochs:
                state = "is finished" if done == self.settings.epochs else "has trained more"
                raise TrainingError(f"{self.dir} {state}: {done} epochs done, --epochs {self.settings.epochs} asked; "
                                    f"give --epochs above {done} to train it further")
        self._start_device()
        if self.dist.main:
            self.dir.mkdir(parents=True, exist_ok=True)
        settings = self.settings
        splits = load_data(settings, self.task, self.dir, self.dist, self.log)
        state = self._restored_state(checkpoint) if checkpoint else self._fresh_state()
        self._soft_phase(state)  # before the kernel is chosen: the warm-up runs the structured one
        kernel = self.apply_kernel(state.layer)
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
        if settings.epochs == 0:
            self.log(f"--epochs 0: data set ready ({splits.source}); nothing trained, no checkpoint written")
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
                row.update(self.evaluate_layer(state.layer, splits.val, "val"))
            row.update(self.evaluate_layer(state.layer, splits.test, "test"))
            row.update(seconds=round(seconds, 3), eval_seconds=round(time.perf_counter() - started, 3))
            if hasattr(state.layer, "symmetry_levels"):  # log.jsonl keeps them; log.csv ignores them
                row["symmetry_levels"] = state.layer.symmetry_levels()
            state.history.append(row)
            self.log(_epoch_line(row, settings.epochs))
            if state.phase == "plain" and state.epoch >= settings.auto_epochs:
                self._discover(state, splits)
                model = self._wrap(state.layer)
            if self.dist.main:
                self._save_checkpoint(state)
                if _best_so_far(settings, state.history):  # --soft-select / --validation: the model to use
                    self._save_checkpoint(state, "best.pt")
                    self.log(f"best validation board accuracy so far ({row['val_board_acc']:.4f}): {self.dir / 'best.pt'}")
                self.write_logs(state.history)
            self.dist.barrier()
        return state



#: ``--soft-warmup auto``: the warm-up ends after the first epoch whose training board
#: accuracy rose by less than SETTLE_GAIN over the epoch before's, both above 0 (a take-off
#: that has only begun, 0 then 0.003, is not a plateau); or after SETTLE_MAX_EPOCHS epochs
#: (a shared part that never leaves 0).
SETTLE_GAIN = 0.02
SETTLE_MAX_EPOCHS = 10


def warmup_over(warmup: Optional[int], history: list[dict[str, Any]], epoch: int) -> bool:
    """Whether SoftSymSATNet's pathways are open for epoch ``epoch + 1``: after ``warmup``
    epochs, or (``warmup`` None) once the shared part has settled in ``history``, the rows of
    the epochs done. Once true it stays true as the history grows."""
    if warmup is not None:
        return epoch >= warmup
    if epoch >= SETTLE_MAX_EPOCHS:
        return True
    boards = [row["train_board_acc"] for row in history]
    return any(before > 0 and now - before < SETTLE_GAIN for before, now in zip(boards, boards[1:]))


def _best_so_far(settings: Settings, history: list[dict[str, Any]]) -> bool:
    """Whether --soft-select or --validation should keep the last epoch: its validation board
    accuracy is above every earlier epoch's (ties keep the earlier, less trained one)."""
    selects = settings.validation or (settings.model == "symsatnet-soft" and settings.soft_select)
    if not selects or "val_board_acc" not in history[-1]:
        return False
    return all(history[-1]["val_board_acc"] > row.get("val_board_acc", -1.0) for row in history[:-1])


def _epoch_line(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}",
             f"train board {row['train_board_acc']:.3f}"]
    if row.get("val_board_acc") is not None:
        parts.append(f"val board {row['val_board_acc']:.3f}")
    parts += [f"test board {row['test_board_acc']:.3f} cell {row['test_cell_acc']:.3f}",
              f"{row['seconds']:.1f}+{row['eval_seconds']:.1f} s"]
    if row.get("symmetry_levels"):
        parts.append("residuals " + " ".join(f"{name} {level['residual']:.3f}"
                                             for name, level in row["symmetry_levels"].items()))
    return "  ".join(parts)


def train(settings: Settings, explicit: set[str] = frozenset()) -> RunState:
    """Run the experiment described by ``settings``; see :class:`Run`."""
    return Run(settings).fit(explicit)


__all__ = ["LOG_COLUMNS", "Run", "RunState", "SETTLE_GAIN", "SETTLE_MAX_EPOCHS", "train", "warmup_over"]
