"""Choosing which symmetry types to tie, by validation (``python -m puzzles.tying``).

SoftSymSATNet finds a type broken when the data's gradient breaks it; a symmetry the data
keep but that slows learning (the cube's colour rotations, docs/design.md "Soft tying")
gives no such gradient. This search asks the validation split instead: it trains
SymSATNet hard-tied to the group all named types generate, then, greedily, releases one
type at a time (ties to the group the others generate) and keeps a release when the
validation board accuracy (or cell accuracy, ``--score cell``), averaged over the probe's
last epochs, rises by more than a margin. Every candidate is an ordinary ``puzzles.train``
run in a folder of its own on the same data, split and seed, so the search resumes where
it stopped and the chosen run can be trained further.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .loop import train
from .settings import Settings, TrainingError

#: Defaults of the search: probe length, the window its score averages over, and the rise
#: of that score a release must bring (cube curves swing by about 0.04 between epochs).
PROBE_EPOCHS, WINDOW, MARGIN = 60, 10, 0.01
RESULT = "search.json"
DIRECTIONS = ("backward", "forward")
#: What a candidate is scored by: the validation accuracy of whole boards, or of cells
#: (which rises long before any board is solved; for short probes on hard tasks).
SCORES = {"board": "val_board_acc", "cell": "val_cell_acc"}


@dataclass
class Candidate:
    """One tying tried: the types kept tied, the group they generate, its run folder and
    its score (mean validation board or cell accuracy over the probe's last ``window``
    epochs)."""

    kept: tuple[str, ...]
    group: str
    folder: str
    score: float
    test_board_acc: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Search:
    """The search's record: every candidate in the order tried, the steps taken."""

    types: tuple[str, ...]
    direction: str = "backward"
    score: str = "board"
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Optional[Candidate] = None
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"types": list(self.types), "direction": self.direction, "score": self.score, "steps": self.steps,
                "candidates": [candidate.to_dict() for candidate in self.candidates],
                "chosen": None if self.chosen is None else self.chosen.to_dict()}


def folder_name(kept: tuple[str, ...]) -> str:
    """A candidate's run folder inside the search folder: ``tied-a+b``, or ``free``."""
    return "tied-" + "+".join(kept) if kept else "free"


def probe_score(history: list[dict[str, Any]], probe_epochs: int, window: int, score: str = "board") -> float:
    """Mean validation board (or cell) accuracy over epochs probe_epochs - window + 1 .. probe_epochs."""
    key = SCORES[score]
    rows = [row for row in history if probe_epochs - window < row["epoch"] <= probe_epochs]
    if len(rows) < window or any(key not in row for row in rows):
        raise TrainingError(f"the run has no validation {score} accuracy for epochs "
                            f"{probe_epochs - window + 1}-{probe_epochs}")
    return sum(row[key] for row in rows) / len(rows)


def _read_history(folder: Path) -> list[dict[str, Any]]:
    path = folder / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temporary, path)


def _shared_data(task, base: Settings, out: Path, log: Callable[[str], None]) -> str:
    """OUT/data.npz, the data every candidate trains on: generated once (--count, --seed),
    or the file already there if it was generated with the same count and seed."""
    path = out / "data.npz"
    if path.exists():
        metadata = task.load(path).metadata
        if (metadata.get("count"), metadata.get("seed")) != (base.count, base.seed):
            raise TrainingError(f"{path} exists and was not generated with --count {base.count} --seed {base.seed}; "
                                f"give --data {path} to search on it, or another --out")
        return str(path)
    log(f"generating {base.count} {task.description} examples (seed {base.seed}) into {path}")
    dataset = task.generate(base.count, seed=base.seed, progress=base.progress)
    handle, temporary = tempfile.mkstemp(dir=out, prefix="data.", suffix=".npz")
    os.close(handle)
    task.save(temporary, dataset)
    os.replace(temporary, path)
    return str(path)


def _moves(task, named: tuple[str, ...], kept: tuple[str, ...], backward: bool) -> list[tuple[str, tuple, str]]:
    """The steps from ``kept``: each type released (backward) or added (forward), in the
    order of ``named``, as (type, types then tied, why it is not probed: '' to probe it).
    A step that leaves the generated group as it is (``rows`` released while ``columns``
    and ``transpose`` stay tied), or that reaches the same group as an earlier step, is not
    probed."""
    from symsatnet.soft import same_orbitals

    here = task.tying_group(kept)
    moves: list[tuple[str, tuple, str]] = []
    reached: list[tuple[str, object]] = []
    for name in (kept if backward else [name for name in named if name not in kept]):
        step = tuple(other for other in named if (other in kept) != (other == name))
        group = task.tying_group(step)
        same = next((other for other, seen in reached if same_orbitals(group, seen)), None)
        if same_orbitals(group, here):
            why = f"the group of {', '.join(kept) or 'nothing'} stays as it is"
        elif same is not None:
            why = f"the same group as {'releasing' if backward else 'adding'} {same}"
        else:
            why = ""
            reached.append((name, group))
        moves.append((name, step, why))
    return moves


def search_tying(
    base: Settings,
    types: Optional[str] = None,
    probe_epochs: int = PROBE_EPOCHS,
    window: int = WINDOW,
    margin: float = MARGIN,
    epochs: Optional[int] = None,
    direction: str = "backward",
    score: str = "board",
    log: Callable[[str], None] = print,
) -> Search:
    """Greedy search over the lattice of tied symmetry types, by validation.

    Args:
        base: the runs' settings (task, data or count and seed, lr, threads, ...); ``model``
            is SymSATNet, ``out`` the search folder, ``group``/``epochs``/``validation``
            are set per candidate.
        types: comma-separated symmetry types of the task (None: all of them).
        probe_epochs: epochs every candidate trains before it is scored.
        window: its score is the mean validation accuracy (``score``) over its last ``window``
            probe epochs.
        margin: a release is kept when it raises the score by more than this.
        epochs: train the chosen candidate on to this many epochs (None: probe_epochs).
        direction: ``'backward'`` starts from every type tied and releases one at a time;
            ``'forward'`` starts from a free C and ties one more at a time (for types that
            only help when released together, as rows and columns do while the
            transposition stays tied).
        score: ``'board'`` or ``'cell'``: the validation accuracy candidates are scored by.
        log: where progress lines go.

    Returns:
        The :class:`Search`, also written to ``OUT/search.json`` after every candidate.
    """
    if not 1 <= window <= probe_epochs:
        raise TrainingError(f"--window must lie in 1..--probe-epochs ({probe_epochs}), got {window}")
    if direction not in DIRECTIONS:
        raise TrainingError(f"--direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if score not in SCORES:
        raise TrainingError(f"--score must be one of {', '.join(SCORES)}, got {score!r}")
    if not (margin >= 0):
        raise TrainingError(f"--margin must be a number >= 0, got {margin}")
    if epochs is not None and epochs < probe_epochs:
        raise TrainingError(f"--epochs ({epochs}) must be at least --probe-epochs ({probe_epochs})")
    if base.model != "symsatnet":
        raise TrainingError(f"the search trains --model symsatnet candidates, not {base.model}")
    task = base.make_task()
    try:
        named = tuple(task.symmetry_types(types))
    except ValueError as error:
        raise TrainingError(f"--types: {error}") from None
    out = Path(base.out or os.path.join("runs", f"{task.name}-tying-seed{base.seed}"))
    out.mkdir(parents=True, exist_ok=True)
    data = base.data or _shared_data(task, base, out, log)
    search = Search(named, direction, score)
    tried: dict[tuple[str, ...], Candidate] = {}

    def evaluate(kept: tuple[str, ...]) -> Candidate:
        if kept in tried:
            return tried[kept]
        folder = out / folder_name(kept)
        group = repr(task.tying_group(kept))
        history = _read_history(folder)
        done = max((row["epoch"] for row in history), default=0)
        if done < probe_epochs:
            log(f"probe: tied under {' + '.join(kept) or 'nothing (free C)'} for {probe_epochs} epochs in {folder}")
            settings = dataclasses.replace(
                base, model="symsatnet", group=group, epochs=probe_epochs, validation=True, out=str(folder),
                resume=(folder / "checkpoint.pt").exists(), force=False, data=data,
            )
            train(settings, explicit={"group", "epochs", "validation", "out"})
            history = _read_history(folder)
        value = probe_score(history, probe_epochs, window, score)
        last = next(row for row in history if row["epoch"] == probe_epochs)
        candidate = Candidate(kept, group, str(folder), round(value, 6), last["test_board_acc"])
        tried[kept] = candidate
        search.candidates.append(candidate)
        log(f"  {' + '.join(kept) or 'free C'}: score {value:.4f} (validation {score}, epochs {probe_epochs - window + 1}-{probe_epochs}); "
            f"test board {candidate.test_board_acc:.3f} at epoch {probe_epochs}")
        _write_atomically(out / RESULT, json.dumps(search.to_dict(), indent=2) + "\n")
        return candidate

    def step(text: str) -> None:
        search.steps.append(text)
        log(text)

    backward = direction == "backward"
    current = evaluate(named if backward else ())
    while True:
        moves = _moves(task, named, current.kept, backward)
        for name, _, why in moves:
            if why:
                step(f"not probed: {'releasing' if backward else 'adding'} {name} ({why})")
        scored = {name: evaluate(kept) for name, kept, why in moves if not why}
        if not scored:
            break
        name, best = max(scored.items(), key=lambda item: item[1].score)
        if best.score == 0 and current.score == 0:
            step(f"every candidate of this step scored 0 (validation {score} accuracy): the probes cannot "
                 f"tell the tyings apart; give more --probe-epochs or data"
                 f"{', or --score cell' if score == 'board' else ''}")
        verb = "released" if backward else "added"
        if best.score <= current.score + margin:
            step(f"stopped at {', '.join(current.kept) or 'nothing'} tied: the best move "
                 f"({verb} {name}) scored {best.score:.4f} against {current.score:.4f}")
            break
        step(f"{verb} {name}: {best.score:.4f} against {current.score:.4f}")
        current = best
    search.chosen = current
    log(f"chosen: tied under {' + '.join(current.kept) or 'nothing'} ({current.group[:80]}"
        f"{'...' if len(current.group) > 80 else ''}), run folder {current.folder}")
    if epochs is not None and epochs > probe_epochs:
        history = _read_history(Path(current.folder))
        if max((row["epoch"] for row in history), default=0) < epochs:
            log(f"training the chosen run on to epoch {epochs}")
            settings = dataclasses.replace(base, model="symsatnet", group=current.group, epochs=epochs,
                                           validation=True, out=current.folder, resume=True, data=data, force=False)
            train(settings, explicit={"epochs", "out"})
    _write_atomically(out / RESULT, json.dumps(search.to_dict(), indent=2) + "\n")
    return search


__all__ = ["Candidate", "DIRECTIONS", "MARGIN", "PROBE_EPOCHS", "SCORES", "Search", "WINDOW", "folder_name", "probe_score", "search_tying"]
