"""Training checkpoints: atomic writes, checked reads, the layer and random states they hold."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from puzzles.datafile import file_kind, write_atomically

from .models import build_layer
from .settings import TrainingError

CHECKPOINT_KIND = "symsatnet-train-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write a checkpoint, keeping the one it replaces as ``checkpoint.prev.pt`` beside it.

    The new file is complete on disk before the old one moves aside, so at every moment
    one whole checkpoint exists under one of the two names, and a damaged newest file (a
    disk that lied about a flush, a copy gone wrong) costs one epoch instead of the run.
    """
    write_atomically(path, lambda stream: torch.save(payload, stream), durable=True,
                     keep_previous=previous_checkpoint(path))


def previous_checkpoint(path: Path) -> Path:
    """checkpoint.pt -> checkpoint.prev.pt"""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _torch_load(path: Path) -> Any:
    """torch.load of tensors and plain data only; TrainingError (one line, no advice to
    load unsafely) when the file is not such a torch file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file fails in many ways; all mean the same here
        kind = file_kind(path)
        if not kind.startswith("a zip archive"):
            reason = f"it is {kind}, not a torch file"
        elif "weights_only" in str(error) or "Weights only" in str(error):
            # torch's own message suggests weights_only=False, which runs any code the file holds.
            reason = "it holds Python objects besides tensors and plain data; they are not loaded, for safety"
        else:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            reason = f"damaged or not a torch file: {detail[:120]}"
        raise TrainingError(f"{path}: not a readable checkpoint ({reason})") from None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and sanity-check a training checkpoint; TrainingError if it is not one, or if its
    weights are not all finite (a diverged run: nothing sensible can continue from it)."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no such checkpoint file")
    checkpoint = _torch_load(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != CHECKPOINT_KIND:
        raise TrainingError(f"{path}: not a symsatnet training checkpoint")
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise TrainingError(f"{path}: checkpoint version {checkpoint.get('version')!r} is not supported")
    missing = [key for key in ("settings", "layer_config", "model_state", "epoch") if key not in checkpoint]
    if missing:
        raise TrainingError(f"{path}: incomplete checkpoint (missing {', '.join(missing)})")
    state = checkpoint["model_state"]
    if not isinstance(state, dict):
        raise TrainingError(f"{path}: damaged checkpoint (model_state is not a state dict)")
    non_finite = [name for name, value in state.items()
                  if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()]
    if non_finite:
        raise TrainingError(f"{path}: the weights {', '.join(non_finite)} hold NaN or infinite values "
                            f"(the run diverged or the file is damaged)")
    return checkpoint


def load_checkpoint_or_previous(path: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The checkpoint at ``path``, or, when it is missing or damaged, the one it replaced
    (``checkpoint.prev.pt``), saying so through ``log``; the first error if neither loads."""
    try:
        return load_checkpoint(path)
    except TrainingError as error:
        previous = previous_checkpoint(path)
        if not previous.is_file():
            raise
        try:
            checkpoint = load_checkpoint(previous)
        except TrainingError:
            raise error from None
        log(f"{error}; resuming from the previous checkpoint {previous} (epoch {checkpoint['epoch']})")
        return checkpoint


def layer_from_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike = "checkpoint") -> nn.Module:
    """The trained layer of a checkpoint."""
    try:
        layer = build_layer(checkpoint["layer_config"])
        layer.load_state_dict(checkpoint["model_state"])
    except (KeyError, ValueError, RuntimeError, TypeError) as error:
        raise TrainingError(f"{path}: the model in the checkpoint cannot be rebuilt ({str(error).splitlines()[0]})") from None
    return layer


def rng_states(data_order: np.random.Generator) -> dict[str, Any]:
    legacy = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": (legacy[0], legacy[1].tolist(), legacy[2], legacy[3], legacy[4]),
        "python": random.getstate(),
        "data_order": data_order.bit_generator.state,
    }


def restore_rng_states(states: dict[str, Any], data_order: np.random.Generator) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    random.setstate(states["python"])
    data_order.bit_generator.state = states["data_order"]
