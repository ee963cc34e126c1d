"""Training machinery behind ``puzzles.train``, ``puzzles.evaluate`` and ``puzzles.demo``."""

from .loop import Distributed, Run, RunState, Settings, TrainingError, evaluate, load_checkpoint, train
from .models import DEFAULT_LR, MODELS
from .tasks import TASKS, Examples, Task, corrupt_labels, decode

__all__ = [
    "DEFAULT_LR",
    "Distributed",
    "Examples",
    "MODELS",
    "Run",
    "RunState",
    "Settings",
    "TASKS",
    "Task",
    "TrainingError",
    "corrupt_labels",
    "decode",
    "evaluate",
    "load_checkpoint",
    "train",
]
