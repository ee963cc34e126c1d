"""Training machinery behind ``puzzles.train``, ``puzzles.evaluate`` and ``puzzles.demo``.

One module per job: ``settings`` (what defines a run), ``distributed`` (torchrun ranks),
``data`` (examples and their splits), ``metrics`` (losses, accuracies, evaluation),
``checkpoint`` (saving and loading), ``auto`` (SymSATNet-Auto's switch to a discovered
group), ``loop`` (the run itself); ``models``, ``tasks`` and ``randomness`` beneath them.
"""

from .checkpoint import load_checkpoint
from .distributed import Distributed
from .loop import Run, RunState, train
from .metrics import evaluate
from .settings import Settings, TrainingError
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
