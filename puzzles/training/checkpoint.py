"""Training checkpoints: atomic writes, checked reads, the layer and random states they hold."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .models import build_layer
from .settings import TrainingError

CHECKPOINT_KIND = "symsatnet-train-checkpoint"
CHECKPOINT_VERSION = 1


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
