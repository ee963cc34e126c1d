"""What defines a training run (:class:`Settings`) and the error every user-facing problem raises."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import torch

from .models import (
    DEFAULT_AUTO_EPOCHS,
    DEFAULT_AUX,
    DEFAULT_LR,
    DEFAULT_TRUTH,
    MODEL_KERNELS,
    MODELS,
    TRUTH_MODES,
    initial_config,
    training_memory,
)
from .tasks import Task

# Settings a resumed run may change; everything else must match the checkpoint.
RESUME_OVERRIDES = ("epochs", "device", "threads", "kernel", "progress", "out", "force", "resume")
# What a setting missing from an older checkpoint meant, where that differs from today's
# default: runs saved before --truth existed trained the published free truth row.
LEGACY_SETTINGS = {"truth": "free"}


class TrainingError(Exception):
    """A problem with the user's input (arguments, files); its message is one line."""


def check_choice(option: str, value: Any, choices: Sequence[str]) -> None:
    """Refuse ``value`` for ``--option`` unless it is one of ``choices``, naming them."""
    if value not in choices:
        raise TrainingError(f"--{option} must be one of {', '.join(choices)}, got {value!r}")


def check_minimums(settings: Any, minimums: Mapping[str, int]) -> None:
    """Refuse any integer setting below its minimum, named as its command-line option."""
    for name, minimum in minimums.items():
        if getattr(settings, name) < minimum:
            raise TrainingError(f"--{name.replace('_', '-')} must be >= {minimum}, got {getattr(settings, name)}")


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
    # The library's default: symfind, plus the graph method where symfind finds nothing.
    discover_method: str = "auto"
    # A plain layer after the published 10 epochs is far from symmetric (off-diagonal
    # residual 0.371 against the Sudoku group, measured): at 0.2 discovery found nothing,
    # at 0.5 a 24-orbital subgroup of the Sudoku group, whose projection of that layer
    # solved 0.999 of the test boards before any further training.
    discover_rtol: float = 0.5
    discover_max_err: float = 0.5
    # SymSATNet-Soft: comma-separated symmetry types (Task.symmetry_types; None = all) and
    # SoftSymSATNet's pathway step size, the epochs before its pathways open (None: until the
    # shared part has settled) and their gate.
    soft_groups: Optional[str] = None
    soft_path_lr: float = 1.0
    soft_warmup: Optional[int] = None  # None: until the shared part has settled (loop.warmup_over)
    soft_significance: float = 3.0
    soft_shrink: float = 3.0
    soft_shared_lr: float = 1.0
    soft_select: bool = False
    # Hold out a ninth of the training data as a validation split, evaluated every epoch
    # (and the best epoch kept in DIR/best.pt), for any model.
    validation: bool = False
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
        check_minimums(settings, dict(count=3, epochs=0, batch=1, max_iter=1, eval_batch=1, corrupt=0, seed=0, aux=0,
                                      auto_epochs=0, auto_candidates=1))
        if settings.seed >= 2**64:
            raise TrainingError(f"--seed must be below 2**64 (torch's seeds are 64-bit), got {settings.seed}")
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
        if settings.model == "symsatnet-soft":
            if not (settings.soft_significance >= 0 and math.isfinite(settings.soft_significance)):
                raise TrainingError(f"--soft-significance must be a number >= 0, got {settings.soft_significance}")
            if not (settings.soft_shrink >= 0 and math.isfinite(settings.soft_shrink)):
                raise TrainingError(f"--soft-shrink must be a number >= 0, got {settings.soft_shrink}")
            if not (0 <= settings.soft_shared_lr <= 1):
                raise TrainingError(f"--soft-shared-lr must lie in [0, 1], got {settings.soft_shared_lr}")
            if settings.soft_warmup is not None and settings.soft_warmup < 0:
                raise TrainingError(f"--soft-warmup must be >= 0, got {settings.soft_warmup}")
            if not (settings.soft_path_lr > 0 and math.isfinite(settings.soft_path_lr)):
                raise TrainingError(f"--soft-path-lr must be a positive number, got {settings.soft_path_lr}")
            try:
                task.symmetry_types(settings.soft_groups)
            except ValueError as error:
                raise TrainingError(f"--soft-groups: {error}") from None
        _check_memory(settings, task)
        check_choice("truth", settings.truth, TRUTH_MODES)
        kernels = MODEL_KERNELS[settings.model]
        if settings.kernel not in kernels:
            raise TrainingError(f"--kernel {settings.kernel!r} does not apply to {settings.model}; "
                                f"choose one of {', '.join(kernels)}")
        check_choice("device", settings.device, ("cpu", "cuda"))
        return settings

    def make_task(self) -> Task:
        return Task(self.task, self.box if self.task == "sudoku" else None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def available_memory(device: str) -> int:
    """Bytes of memory on the device: the GPU's, or the machine's physical memory."""
    if device == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(0).total_memory)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: no check
        return 2**63


def _check_memory(settings: Settings, task: Task) -> None:
    """Refuse a layer that cannot fit in memory before anything is allocated (an --aux of
    10**8 would otherwise fail deep inside torch's allocator, or swap the machine to a halt)."""
    config = initial_config(settings.model, task, settings.max_iter, aux=settings.aux)
    needed, available = training_memory(config), available_memory(settings.device)
    if needed > available:
        size = 1 + task.n + settings.aux
        raise TrainingError(
            f"--aux {settings.aux}: a layer of {size} solver variables needs about {needed / 2**30:.3g} GiB "
            f"to train, more than the {available / 2**30:.3g} GiB of memory of this "
            f"{'GPU' if settings.device == 'cuda' else 'machine'}"
        )
