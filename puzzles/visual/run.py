"""Training and evaluation of the visual Sudoku model (``python -m puzzles.train visual-sudoku``).

One run trains a CNN and a SAT layer together from solution boards, checkpoints every
epoch atomically (``--resume`` continues), and at the end measures on the test boards:
the CNN's digit accuracy, the classify-then-solve ceiling (the share of boards whose every
given is read right), the board accuracy of the relaxation, and of exact decoding with the
CNN's reading as hard givens and as soft evidence (:mod:`.evaluate`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from puzzles.datafile import write_atomically
from puzzles.training.checkpoint import save_checkpoint
from puzzles.training.folder import FolderLock, remove_orphans
from puzzles.training.randomness import EVAL_STREAM, TRAIN_STREAM, prepare_solver
from puzzles.training.settings import TrainingError, check_choice, check_minimums

from .boards import VisualBoards
from .data import VisualData, make_data
from .grounding import GROUNDINGS, pretrain_by_clusters
from .model import CELLS, LAYERS, VALUES, VisualSudoku, build_model

CHECKPOINT_KIND = "symsatnet-visual-checkpoint"
DEFAULT_LAYER_LR = {"symsatnet": 4e-2, "satnet-plain": 2e-3}


@dataclass
class VisualSettings:
    """Everything that defines a visual Sudoku run."""

    layer: str = "symsatnet"
    leakage: bool = False  # supervise the given cells' digits too (the published setting)
    grounding: str = "none"  # or 'clusters': pretrain the CNN on rule-matched k-means clusters
    count: int = 3000  # train boards
    test_count: int = 500
    test_fraction: float = 0.3  # of the digit images, kept for the test boards
    digits: Optional[str] = None  # a local .npz of labelled digit images; None: sklearn's
    epochs: int = 10
    batch: int = 40
    lr: Optional[float] = None  # of the layer; None: the layer's published rate
    cnn_lr: float = 1e-3
    # Epochs at the start in which only the layer learns (the CNN is held): None means 3
    # with grounding, 0 without. While the layer still sits on its uniform plateau (about
    # 200 steps on 9x9), its gradient tells the CNN nothing; measured, it took the
    # cluster-pretrained CNN from 0.97 to 0.41 digit accuracy in one epoch.
    cnn_warmup: Optional[int] = None
    max_iter: int = 40
    seed: int = 0
    threads: Optional[int] = None
    out: str = "runs/visual"
    decode: bool = True
    decode_count: Optional[int] = None  # decode only the first test boards; None: all
    time_limit: float = 10.0
    resume: bool = False
    force: bool = False
    progress: bool = True

    def resolved(self) -> "VisualSettings":
        settings = dataclasses.replace(self)
        check_choice("layer", settings.layer, LAYERS)
        check_choice("grounding", settings.grounding, GROUNDINGS)
        if settings.lr is None:
            settings.lr = DEFAULT_LAYER_LR[settings.layer]
        if settings.cnn_warmup is None:
            settings.cnn_warmup = 0 if settings.grounding == "none" else 3
        check_minimums(settings, dict(count=1, test_count=1, epochs=0, batch=1, max_iter=1, seed=0, cnn_warmup=0))
        if not (settings.lr > 0 and settings.cnn_lr > 0):
            raise TrainingError("--lr and --cnn-lr must be positive")
        return settings

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Settings a resumed run may change; the rest must match its checkpoint.
RESUME_OVERRIDES = ("epochs", "threads", "decode", "decode_count", "time_limit", "resume", "force", "progress", "out")


def board_tensors(boards: VisualBoards, indices: np.ndarray):
    images = torch.from_numpy(boards.images[indices])
    given = torch.from_numpy(boards.given[indices])
    targets = F.one_hot(torch.from_numpy(boards.solutions[indices] - 1), VALUES).reshape(len(indices), -1).float()
    return images, given, targets


def board_losses(outputs: torch.Tensor, targets: torch.Tensor, given: torch.Tensor, leakage: bool) -> torch.Tensor:
    """BCE per example over the bits of the blank cells, and with ``leakage`` over the given
    cells' bits too (there the outputs are the CNN's probabilities, copied through)."""
    bits = F.binary_cross_entropy(outputs.clamp(0.0, 1.0), targets, reduction="none")
    if not leakage:
        bits = bits * (~given).repeat_interleave(VALUES, dim=1)
    return bits.sum(dim=1) / outputs.shape[1]


@torch.no_grad()
def predict(model: VisualSudoku, boards: VisualBoards, seed: int, batch: int = 100):
    """(board values from the relaxation (count, 81) 1..9, CNN log-probabilities (count, 81, 9))."""
    model.eval()
    values, log_probs = [], []
    for step, start in enumerate(range(0, len(boards), batch)):
        indices = np.arange(start, min(start + batch, len(boards)))
        prepare_solver(model.layer, (seed, EVAL_STREAM, step), 0)
        images, given, _ = board_tensors(boards, indices)
        outputs, cell_log_probs = model(images, given)
        values.append(outputs.reshape(len(indices), CELLS, VALUES).argmax(-1).numpy() + 1)
        log_probs.append(cell_log_probs.numpy())
    return np.concatenate(values), np.concatenate(log_probs)


def perception_metrics(boards: VisualBoards, log_probs: np.ndarray) -> dict[str, float]:
    """Digit accuracy of the CNN on the given cells, and the classify-then-solve ceiling."""
    read = log_probs.argmax(-1) + 1
    right = (read == boards.solutions) | ~boards.given
    return {
        "digit_acc": float(right[boards.given].mean()),
        "ceiling": float(right.all(axis=1).mean()),
    }


def board_accuracy(values: np.ndarray, boards: VisualBoards) -> float:
    """Share of boards whose 81 cells (givens as read, blanks as solved) are all right."""
    return float((values == boards.solutions).all(axis=1).mean())


class VisualRun:
    """One run: call :meth:`fit`, then :meth:`final_report`."""

    def __init__(self, settings: VisualSettings, log: Callable[[str], None] = print) -> None:
        self.settings = settings.resolved()
        self.dir = Path(self.settings.out)
        self.print = log
        self.lock = FolderLock(self.dir)

    def log(self, message: str) -> None:
        self.print(message)
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "run.log", "a") as stream:
            stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {message}\n")

    def _checkpoint_path(self) -> Path:
        return self.dir / "checkpoint.pt"

    def _load(self) -> Optional[dict[str, Any]]:
        path = self._checkpoint_path()
        if not self.settings.resume:
            if path.exists() and not self.settings.force:
                raise TrainingError(f"{self.dir} already holds a run ({path.name}); use --resume to continue it, "
                                    f"--force to start over, or --out for another folder")
            return None
        if not path.exists():
            raise TrainingError(f"{path}: no such checkpoint file, nothing to resume")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint.get("kind") != CHECKPOINT_KIND:
            raise TrainingError(f"{path}: not a visual Sudoku checkpoint")
        saved = checkpoint["settings"]
        merged = {key: (getattr(self.settings, key) if key in RESUME_OVERRIDES else saved.get(key, value))
                  for key, value in self.settings.to_dict().items()}
        self.settings = VisualSettings(**merged).resolved()
        return checkpoint

    def _save(self, model, optimizer, epoch: int, history: list) -> None:
        payload = {"kind": CHECKPOINT_KIND, "settings": self.settings.to_dict(), "epoch": epoch,
                   "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
                   "torch_rng": torch.get_rng_state(), "history": history}
        save_checkpoint(payload, self._checkpoint_path())
        lines = "".join(json.dumps(row) + "\n" for row in history)
        write_atomically(self.dir / "log.jsonl", lambda stream: stream.write(lines.encode()))

    def fit(self) -> tuple[VisualSudoku, VisualData, list[dict[str, Any]]]:
        self.lock.acquire()
        try:
            remove_orphans(self.dir)
            return self._fit()
        finally:
            self.lock.release()

    def _fit(self):
        checkpoint = self._load()
        settings = self.settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        data = make_data(settings.count, settings.test_count, settings.seed, settings.digits, settings.test_fraction)
        torch.manual_seed(settings.seed)
        model = build_model(settings.layer, settings.max_iter)
        optimizer = torch.optim.Adam([
            {"params": model.layer.parameters(), "lr": settings.lr},
            {"params": model.cnn.parameters(), "lr": settings.cnn_lr},
        ])
        history: list[dict[str, Any]] = []
        epoch = 0
        if checkpoint is not None:
            model.load_state_dict(checkpoint["model_state"])
            optimizer.load_state_dict(checkpoint["optimizer_state"])
            torch.set_rng_state(checkpoint["torch_rng"])
            history, epoch = list(checkpoint["history"]), int(checkpoint["epoch"])
            self.log(f"resuming {self.dir} after epoch {epoch}")
        else:
            self.log(f"visual Sudoku: {settings.layer}, leakage {'on' if settings.leakage else 'off'}, grounding "
                     f"{settings.grounding}; {len(data.train)} train / {len(data.test)} test boards, digit images "
                     f"{data.train_pool.source} ({len(data.train_pool)} train / {len(data.test_pool)} test)")
            if settings.grounding != "none":
                started = time.perf_counter()
                report = pretrain_by_clusters(model.cnn, data.train, settings.seed)
                report["seconds"] = time.perf_counter() - started
                history.append({"epoch": 0, "phase": "grounding", **report})
                self.log(f"grounding: {json.dumps(report)}")
        while epoch < settings.epochs:
            row = self._train_epoch(model, optimizer, data.train, epoch)
            row.update(self._evaluate(model, data.test))
            epoch += 1
            row["epoch"] = epoch
            history.append(row)
            self._save(model, optimizer, epoch, history)
            self.log(" ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                              for key, value in row.items()))
        return model, data, history

    def _train_epoch(self, model, optimizer, train: VisualBoards, epoch: int) -> dict[str, Any]:
        from tqdm import tqdm

        settings = self.settings
        model.train()
        started = time.perf_counter()
        # Order and solver seeds depend on (seed, epoch, step) only, so a resumed run repeats them.
        order = np.random.default_rng([settings.seed, 24, epoch]).permutation(len(train))
        total, steps = 0.0, range(0, len(train), settings.batch)
        for step in tqdm(steps, desc=f"epoch {epoch + 1}", leave=False, disable=not settings.progress):
            indices = order[step : step + settings.batch]
            prepare_solver(model.layer, (settings.seed, TRAIN_STREAM, epoch, step), 0)
            images, given, targets = board_tensors(train, indices)
            outputs, _ = model(images, given)
            loss = board_losses(outputs, targets, given, settings.leakage).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if epoch < settings.cnn_warmup:
                for parameter in model.cnn.parameters():
                    parameter.grad = None  # Adam leaves it (and its moments) alone
            optimizer.step()
            total += float(loss.detach()) * len(indices)
        return {"train_loss": total / len(train), "seconds": time.perf_counter() - started}

    def _evaluate(self, model, test: VisualBoards) -> dict[str, float]:
        values, log_probs = predict(model, test, self.settings.seed)
        return {**{f"test_{k}": v for k, v in perception_metrics(test, log_probs).items()},
                "test_board_acc": board_accuracy(values, test)}


def train_visual(settings: VisualSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or resume) a run, then evaluate it on its test boards; returns the final report
    (also written to OUT/results.json)."""
    from .evaluate import final_report

    run = VisualRun(settings, log)
    model, data, history = run.fit()
    report = final_report(model, data, run.settings, history, run.log)
    text = json.dumps(report, indent=2) + "\n"
    write_atomically(run.dir / "results.json", lambda stream: stream.write(text.encode()))
    return report
