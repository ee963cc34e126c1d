"""The search over which symmetry types to tie (puzzles.tying) and --validation."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from puzzles import evaluate as evaluate_cli
from puzzles import train as train_cli
from puzzles import tying as tying_cli
from puzzles.training import Settings
from puzzles.training import tying
from puzzles.training.tasks import Task
from symsatnet.groups import Trivial
from symsatnet.soft import joint_group


def _partition(group) -> np.ndarray:
    """Orbital labels renumbered by first appearance, so equal partitions compare equal."""
    labels = np.asarray(group.orbitals()).ravel()
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse]


@pytest.mark.parametrize("task", [Task("sudoku", 2), Task("cube")], ids=["sudoku4", "cube"])
def test_tying_group_is_the_group_the_types_generate(task):
    names = list(task.symmetry_types())
    for size in range(1, len(names) + 1):
        for kept in itertools.combinations(names, size):
            written = task.tying_group(kept)
            generated = joint_group(list(task.symmetry_types(",".join(kept)).values()))
            assert written.degree == task.n
            assert np.array_equal(_partition(written), _partition(generated)), kept
    assert repr(task.tying_group(())) == repr(Trivial(task.n))


def test_probe_score_is_the_mean_over_the_window():
    history = [{"epoch": e, "val_board_acc": v} for e, v in enumerate([0.1, 0.2, 0.4, 0.8, 0.9], start=1)]
    assert tying.probe_score(history, 4, 2) == pytest.approx(0.6)  # epochs 3-4, not 5
    assert tying.probe_score(history, 5, 5) == pytest.approx(0.48)
    with pytest.raises(tying.TrainingError, match="no validation board accuracy for epochs 5-6"):
        tying.probe_score(history, 6, 2)
    with pytest.raises(tying.TrainingError, match="no validation board accuracy"):
        tying.probe_score([{"epoch": 1, "test_board_acc": 0.5}], 1, 1)


class FakeTraining:
    """Stands in for puzzles.training.train: writes a log whose validation board (and, if
    ``cells`` is given, cell) accuracy is a given function of the tied types, and records
    every call."""

    def __init__(self, task: Task, score, cells=None):
        self.score, self.cells, self.calls = score, cells, []
        names = list(task.symmetry_types())
        self.kept_of = {repr(task.tying_group(kept)): kept
                        for size in range(len(names) + 1) for kept in itertools.combinations(names, size)}

    def __call__(self, settings: Settings, explicit=frozenset()):
        kept = self.kept_of[settings.group]
        assert settings.model == "symsatnet" and settings.validation and settings.data
        folder = Path(settings.out)
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "log.jsonl"
        done = len(log.read_text().splitlines()) if log.exists() else 0
        assert settings.resume == (done > 0)
        with log.open("a") as stream:
            for epoch in range(done + 1, settings.epochs + 1):
                value = self.score(set(kept))
                row = {"epoch": epoch, "val_board_acc": value, "test_board_acc": value / 2}
                if self.cells is not None:
                    row["val_cell_acc"] = self.cells(set(kept))
                stream.write(json.dumps(row) + "\n")
        (folder / "checkpoint.pt").write_bytes(b"")
        self.calls.append((kept, settings.epochs))


def _search(tmp_path, monkeypatch, task_name, score, **options):
    task = Task(task_name, 2 if task_name == "sudoku" else None)
    fake = FakeTraining(task, score)
    monkeypatch.setattr(tying, "train", fake)
    base = Settings(task=task_name, box=2, model="symsatnet", data=str(tmp_path / "given.npz"), out=str(tmp_path / "s"))
    result = tying.search_tying(base, log=lambda line: None, **options)
    return result, fake


def test_greedy_search_releases_what_validation_pays_for(tmp_path, monkeypatch):
    # The cube's story: untying the colours helps, untying the facelet turns hurts.
    scores = {("colours", "facelets"): 0.60, ("facelets",): 0.66, ("colours",): 0.40, (): 0.45}
    result, fake = _search(tmp_path, monkeypatch, "cube", lambda kept: scores[tuple(sorted(kept))],
                           probe_epochs=4, window=2, epochs=7)
    assert result.chosen.kept == ("facelets",)
    assert result.chosen.group == repr(Task("cube").tying_group(("facelets",)))
    assert [candidate.kept for candidate in result.candidates] == [("facelets", "colours"), ("colours",),
                                                                   ("facelets",), ()]
    assert result.steps[0].startswith("released colours") and result.steps[1].startswith("stopped at facelets tied")
    # Every candidate probed once for 4 epochs; the chosen one trained on to 7.
    assert fake.calls == [(("facelets", "colours"), 4), (("colours",), 4), (("facelets",), 4), ((), 4),
                          (("facelets",), 7)]
    saved = json.loads((tmp_path / "s" / tying.RESULT).read_text())
    assert saved["chosen"]["kept"] == ["facelets"] and len(saved["candidates"]) == 4
    assert saved["chosen"]["score"] == pytest.approx(0.66) and saved["chosen"]["test_board_acc"] == pytest.approx(0.33)


def test_a_release_must_gain_more_than_the_margin(tmp_path, monkeypatch):
    scores = {("colours", "facelets"): 0.60, ("facelets",): 0.605, ("colours",): 0.40, (): 0.45}
    result, fake = _search(tmp_path, monkeypatch, "cube", lambda kept: scores[tuple(sorted(kept))],
                           probe_epochs=3, window=3, margin=0.01)
    assert result.chosen.kept == ("facelets", "colours") and len(fake.calls) == 3
    result, _ = _search(tmp_path / "again", monkeypatch, "cube", lambda kept: scores[tuple(sorted(kept))],
                        probe_epochs=3, window=3, margin=0.001)
    assert result.chosen.kept == ("facelets",)


def test_search_walks_down_several_steps_and_resumes_without_retraining(tmp_path, monkeypatch):
    def score(kept):  # digits must stay tied; rows and columns are better released
        return 0.5 + 0.1 * ("rows" not in kept) + 0.05 * ("columns" not in kept) - 0.3 * ("digits" not in kept)

    options = dict(types="digits,rows,columns", probe_epochs=2, window=1)
    result, fake = _search(tmp_path, monkeypatch, "sudoku", score, **options)
    assert result.chosen.kept == ("digits",)
    assert [step.split(":")[0] for step in result.steps] == ["released rows", "released columns", "stopped at digits tied"]
    # 1 + 3 + 2 + 1 candidates, none twice.
    assert len(fake.calls) == 7 and len({kept for kept, _ in fake.calls}) == 7
    again, fake_again = _search(tmp_path, monkeypatch, "sudoku", score, **options)
    assert fake_again.calls == [] and again.chosen == result.chosen


def test_forward_search_ties_what_validation_pays_for_and_skips_steps_that_change_nothing(tmp_path, monkeypatch):
    # X-Sudoku's story: digits and the transposition hold, the line permutations break the
    # diagonal rule. Released one at a time from the full group, rows and columns change
    # nothing (the transposition and the other generate them), so the backward search
    # cannot leave it; the forward search ties digits, then the transposition, and stops.
    def score(kept):
        return 0.2 + 0.3 * ("digits" in kept) + 0.05 * ("transpose" in kept) - 0.2 * ({"rows", "columns"} & kept != set())

    options = dict(types="digits,rows,columns,transpose", probe_epochs=2, window=1)
    backward, fake = _search(tmp_path / "b", monkeypatch, "sudoku", score, **options)
    assert backward.chosen.kept == ("digits", "rows", "columns", "transpose")
    assert [kept for kept, _ in fake.calls] == [("digits", "rows", "columns", "transpose"),
                                                ("rows", "columns", "transpose"), ("digits", "rows", "columns")]
    assert sum(step.startswith("not probed: releasing rows") for step in backward.steps) == 1
    forward, fake = _search(tmp_path / "f", monkeypatch, "sudoku", score, direction="forward", **options)
    assert forward.chosen.kept == ("digits", "transpose")
    assert forward.steps[:2] == ["added digits: 0.5000 against 0.2000", "added transpose: 0.5500 against 0.5000"]
    # From {digits, transpose}, adding rows or adding columns reach the same group: one probe.
    assert [kept for kept, _ in fake.calls][-1:] == [("digits", "rows", "transpose")]
    assert any("the same group as adding rows" in step for step in forward.steps)
    assert json.loads((tmp_path / "f" / "s" / tying.RESULT).read_text())["direction"] == "forward"


def test_search_end_to_end_on_4x4(tmp_path, capsys):
    out = tmp_path / "search"
    argv = ["sudoku", "--box", "2", "--count", "90", "--types", "digits,rows", "--probe-epochs", "2", "--window", "1",
            "--batch", "10", "--threads", "1", "--no-progress", "--out", str(out)]
    assert tying_cli.main(argv) == 0
    saved = json.loads((out / tying.RESULT).read_text())
    folders = {tuple(candidate["kept"]): Path(candidate["folder"]) for candidate in saved["candidates"]}
    assert set(folders) >= {("digits", "rows"), ("rows",), ("digits",)}
    # Each candidate is a real run with a validation split; its score is recomputed from its own log.
    for candidate in saved["candidates"]:
        lines = [json.loads(line) for line in (Path(candidate["folder"]) / "log.jsonl").read_text().splitlines()]
        assert len(lines) == 2 and candidate["score"] == pytest.approx(lines[1]["val_board_acc"], abs=1e-6)
        settings = json.loads((Path(candidate["folder"]) / "settings.json").read_text())
        assert settings["validation"] and settings["data"] == str(out / "data.npz")
        assert settings["group"] == candidate["group"]
    # The choice follows from the scores: release while it gains more than the margin.
    chosen, by_kept = saved["chosen"], {tuple(c["kept"]): c for c in saved["candidates"]}
    expected = by_kept[("digits", "rows")]
    best_release = max((by_kept[("rows",)], by_kept[("digits",)]), key=lambda c: c["score"])
    if best_release["score"] > expected["score"] + tying.MARGIN:
        expected = best_release
        if by_kept[()]["score"] > expected["score"] + tying.MARGIN:
            expected = by_kept[()]
    assert chosen == expected
    # Running it again trains nothing more.
    sizes = {kept: (folder / "log.jsonl").stat().st_size for kept, folder in folders.items()}
    assert tying_cli.main(argv) == 0
    assert {kept: (folder / "log.jsonl").stat().st_size for kept, folder in folders.items()} == sizes
    # puzzles.evaluate --split test on a candidate reproduces its logged test accuracy.
    capsys.readouterr()
    folder = Path(chosen["folder"])
    assert evaluate_cli.main([str(folder / "checkpoint.pt"), str(out / "data.npz"), "--split", "test", "--json",
                              "--threads", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    logged = json.loads((folder / "log.jsonl").read_text().splitlines()[-1])
    assert report["board_accuracy"] == pytest.approx(logged["test_board_acc"])


@pytest.mark.parametrize(
    "options, message",
    [
        (["--window", "5", "--probe-epochs", "4"], "--window must lie in 1..--probe-epochs (4)"),
        (["--margin", "-0.1"], "--margin must be a number >= 0"),
        (["--epochs", "2", "--probe-epochs", "4", "--window", "2"], "--epochs (2) must be at least --probe-epochs (4)"),
        (["--types", "digits,diagonals"], "--types: unknown symmetry type(s) 'diagonals'"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--margin", "nan"], "--margin must be a number >= 0"),
    ],
)
def test_cli_refuses_bad_options(tmp_path, capsys, options, message):
    code = tying_cli.main(["sudoku", "--box", "2", "--count", "30", "--out", str(tmp_path / "s"), "--no-progress",
                           *options])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_refuses_box_for_the_cube_and_foreign_data(tmp_path, capsys):
    assert tying_cli.main(["cube", "--box", "2", "--out", str(tmp_path / "c")]) == 2
    assert "--box applies to the sudoku task" in capsys.readouterr().err
    out = tmp_path / "s"
    base = ["sudoku", "--box", "2", "--probe-epochs", "1", "--window", "1", "--types", "digits", "--batch", "10",
            "--threads", "1", "--no-progress", "--out", str(out)]
    assert tying_cli.main([*base, "--count", "30"]) == 0
    before = (out / "data.npz").read_bytes()
    assert tying_cli.main([*base, "--count", "40"]) == 1
    assert "was not generated with --count 40 --seed 0" in capsys.readouterr().err
    assert (out / "data.npz").read_bytes() == before  # never overwritten


def test_validation_option_holds_out_a_ninth_and_keeps_the_best_epoch(tmp_path, capsys):
    run = tmp_path / "run"
    common = ["sudoku", "--box", "2", "--count", "90", "--batch", "10", "--threads", "1", "--no-progress",
              "--model", "symsatnet", "--out", str(run)]
    assert train_cli.main([*common, "--validation", "--epochs", "3"]) == 0
    assert "72 train, 9 validation, 9 test examples" in (run / "run.log").read_text()
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    accuracies = [row["val_board_acc"] for row in lines]
    assert torch.load(run / "best.pt", weights_only=False)["epoch"] == 1 + accuracies.index(max(accuracies))
    # evaluate --split knows the 8:1:1 split of such a run.
    capsys.readouterr()
    assert evaluate_cli.main([str(run / "checkpoint.pt"), str(run / "data.npz"), "--split", "val", "--json",
                              "--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["board_accuracy"] == pytest.approx(accuracies[-1])


def test_probe_score_by_cells():
    history = [{"epoch": e, "val_board_acc": 0.0, "val_cell_acc": c} for e, c in enumerate([0.3, 0.5, 0.7], start=1)]
    assert tying.probe_score(history, 3, 2, "cell") == pytest.approx(0.6)
    assert tying.probe_score(history, 3, 2) == 0.0
    with pytest.raises(tying.TrainingError, match="no validation cell accuracy"):
        tying.probe_score([{"epoch": 1, "val_board_acc": 0.5}], 1, 1, "cell")


def test_a_search_where_no_probe_solves_a_board_says_so_and_cells_can_decide(tmp_path, monkeypatch):
    # Short probes on a hard task: no board solved anywhere, but the cells tell digits apart.
    def cells(kept):
        return 0.3 + 0.2 * ("digits" in kept)

    task = Task("sudoku", 2)
    base = Settings(task="sudoku", box=2, model="symsatnet", data=str(tmp_path / "given.npz"))
    options = dict(types="digits,rows", probe_epochs=2, window=1, direction="forward", log=lambda line: None)
    monkeypatch.setattr(tying, "train", FakeTraining(task, lambda kept: 0.0, cells))
    board = tying.search_tying(dataclasses.replace(base, out=str(tmp_path / "board")), **options)
    assert board.chosen.kept == () and "scored 0 (validation board accuracy)" in board.steps[0]
    assert "--score cell" in board.steps[0]
    monkeypatch.setattr(tying, "train", FakeTraining(task, lambda kept: 0.0, cells))
    cell = tying.search_tying(dataclasses.replace(base, out=str(tmp_path / "cell")), score="cell", **options)
    assert cell.chosen.kept == ("digits",) and cell.steps[0] == "added digits: 0.5000 against 0.3000"
    assert json.loads((tmp_path / "cell" / tying.RESULT).read_text())["score"] == "cell"
    with pytest.raises(tying.TrainingError, match="--score must be one of board, cell"):
        tying.search_tying(base, score="cells", **options)
