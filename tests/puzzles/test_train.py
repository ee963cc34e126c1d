"""Training CLI, evaluation, plots: tiny 4x4 Sudoku runs (resume, DDP, bad input, learning)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from puzzles import evaluate as evaluate_cli
from puzzles import plot as plot_cli
from puzzles import train as train_cli
from puzzles.sudoku import cli as sudoku_cli
from puzzles.training import DEFAULT_LR, Settings, corrupt_labels
from puzzles.training.loop import LOG_COLUMNS

REPO = Path(__file__).resolve().parents[2]
TINY = ["sudoku", "--box", "2", "--count", "60", "--batch", "10", "--threads", "1", "--no-progress"]


def run(out: Path, *options: str, model: str = "symsatnet", epochs: int = 1) -> int:
    return train_cli.main([*TINY, "--model", model, "--epochs", str(epochs), "--out", str(out), *options])


def rows(run_dir: Path) -> list[dict]:
    """Logged epochs without the wall-clock columns."""
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if "seconds" not in k} for line in lines]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model_state"]
    return {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}


def test_published_defaults():
    settings = Settings(model="symsatnet").resolved()
    assert (settings.batch, settings.epochs, settings.count, settings.lr) == (40, 100, 10_000, 4e-2)
    assert DEFAULT_LR == {"satnet-plain": 2e-3, "satnet-300aux": 2e-3, "symsatnet": 4e-2, "symsatnet-auto": 2e-3,
                          "symsatnet-soft": 4e-2}
    assert Settings(model="symsatnet-auto", task="cube").resolved().auto_epochs == 20
    assert {model: Settings(model=model).resolved().aux for model in DEFAULT_LR} == {
        "satnet-plain": 0, "satnet-300aux": 300, "symsatnet": 0, "symsatnet-auto": 0, "symsatnet-soft": 0}


def test_discover_method_is_the_librarys_default():
    import inspect

    from symsatnet import discovery

    library_default = inspect.signature(discovery.discover).parameters["method"].default
    assert Settings(model="symsatnet-auto").resolved().discover_method == library_default == "auto"
    option = next(action for action in train_cli.build_parser()._actions if action.dest == "discover_method")
    assert tuple(option.choices) == discovery.METHODS


@pytest.mark.parametrize("model", ["symsatnet", "symsatnet-auto", "satnet-plain"])
def test_aux_option_adds_auxiliary_variables(tmp_path, capsys, monkeypatch, model):
    extra = ["--auto-epochs", "1"] if model == "symsatnet-auto" else []
    _symmetric_discovery(monkeypatch)
    assert run(tmp_path / "r", "--aux", "5", *extra, model=model, epochs=2) == 0
    from puzzles.training.checkpoint import layer_from_checkpoint, load_checkpoint

    checkpoint = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    layer = layer_from_checkpoint(checkpoint)
    assert layer.aux == 5 and checkpoint["settings"]["aux"] == 5
    assert type(layer).__name__ == ("SATNet" if model == "satnet-plain" else "SymSATNet")
    assert layer.matrix().shape == (1 + 16 * 4 + 5,) * 2
    assert all(np.isfinite(row["train_loss"]) for row in rows(tmp_path / "r"))
    capsys.readouterr()
    assert run(tmp_path / "r", "--resume", "--aux", "3", *extra, model=model, epochs=3) == 1
    assert "--aux 3 differs from the checkpoint's 5" in _error_line(capsys)
    assert run(tmp_path / "bad", "--aux", "-1", model=model) == 1
    assert "--aux must be >= 0" in _error_line(capsys)


@pytest.mark.parametrize("model", ["symsatnet", "satnet-plain"])
def test_run_writes_logs_checkpoint_and_data(tmp_path, model):
    assert run(tmp_path / "r", model=model, epochs=2) == 0
    run_dir = tmp_path / "r"
    assert {"log.csv", "log.jsonl", "run.log", "checkpoint.pt", "data.npz"} <= {p.name for p in run_dir.iterdir()}
    header = (run_dir / "log.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == LOG_COLUMNS
    logged = rows(run_dir)
    assert [row["epoch"] for row in logged] == [1, 2]
    for row in logged:
        for key in ("train_loss", "train_cell_acc", "train_board_acc", "test_cell_acc", "test_board_acc"):
            assert np.isfinite(row[key])
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["model"] == model
    assert set(checkpoint["rng"]) == {"torch", "numpy", "python", "data_order"}


def _symmetric_discovery(monkeypatch):
    """Make discovery see the Sudoku-symmetric part of what it is given.

    After one epoch on 48 puzzles the plain layer is nowhere near symmetric (projection
    error ~0.99 against the 4x4 Sudoku group), and discovery rightly answers Trivial; the
    training loop's switch to a tied layer needs a real group to exercise.
    """
    from symsatnet import discovery
    from symsatnet.invariant import InvariantSpace
    from symsatnet.groups import sudoku_group

    real, basis = discovery.discover, InvariantSpace(sudoku_group(2))

    def discover(matrix, **options):
        return real(basis.symmetrize(np.asarray(matrix)), **options)

    monkeypatch.setattr(discovery, "discover", discover)
    return discover


@pytest.mark.parametrize("model", ["symsatnet", "symsatnet-auto"])
def test_resume_gives_identical_results(tmp_path, monkeypatch, model):
    # symsatnet-auto switches to the discovered group after epoch 1, so the resumed
    # half starts from a checkpoint of the tied layer.
    extra = ["--auto-epochs", "1"] if model == "symsatnet-auto" else []
    discover = _symmetric_discovery(monkeypatch)
    assert run(tmp_path / "straight", *extra, model=model, epochs=2) == 0
    assert run(tmp_path / "resumed", *extra, model=model, epochs=1) == 0
    assert run(tmp_path / "resumed", "--resume", *extra, model=model, epochs=2) == 0
    assert rows(tmp_path / "straight") == rows(tmp_path / "resumed")
    first, second = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    if model == "symsatnet-auto":
        assert [row["layer"] for row in rows(tmp_path / "resumed")] == ["SATNet", "SymSATNet"]
        assert "found" in (tmp_path / "resumed" / "run.log").read_text()
        # The searched matrix is kept, and discovery on it finds the run's group again.
        matrix = np.load(tmp_path / "resumed" / "plain_matrix.npy")
        assert matrix.shape == (64, 64)
        checkpoint = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
        settings = checkpoint["settings"]
        found = discover(matrix, rtol=settings["discover_rtol"], max_err=settings["discover_max_err"], diagonal="ignore")
        assert found.expression == checkpoint["discovery"]["search"]["group"]


def test_data_parallel_matches_single_process(tmp_path):
    # Two gloo ranks through torchrun against one process on the same global batches:
    # 40 training examples in batches of 39 and 1, so the first is split 19 + 20 and in
    # the second rank 0 holds nothing (it joins the gradient exchange with weight 0).
    # Only the gradient sums' rounding differs (order of summation across ranks); two
    # Adam steps keep that at float32 noise. Longer runs drift apart visibly: at lr 4e-2
    # the solver, which often stops at max_iter, amplifies 1e-7 differences step by step.
    options = ["sudoku", "--box", "2", "--count", "44", "--batch", "39", "--epochs", "1", "--threads", "1",
               "--no-progress", "--model", "symsatnet"]
    environment = dict(os.environ, OMP_NUM_THREADS="1",
                       PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)])))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "puzzles.train", *options, "--out", str(tmp_path / "ddp")]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 and re.search(r"exitcode: -\d+", result.stderr):
        # A rank killed by a signal (once, SIGABRT, in about six full-suite runs on the 2-core VM;
        # not reproduced in 45 launches alone or under load): launch the pair once more. A
        # failure of our code exits with a status, not a signal, and is not retried.
        first = result.stderr
        shutil.rmtree(tmp_path / "ddp", ignore_errors=True)
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{first[:3000]}\n...\n{result.stderr[:3000]}\n...\n{result.stderr[-2000:]}"
    assert result.returncode == 0, f"{result.stderr[:3000]}\n...\n{result.stderr[-2000:]}"
    assert "Warning" not in result.stderr, result.stderr[-2000:]  # torch 2.13 deprecated broadcast_buffers
    assert "2 processes" in (tmp_path / "ddp" / "run.log").read_text()
    assert train_cli.main([*options, "--out", str(tmp_path / "single")]) == 0
    ddp, single = rows(tmp_path / "ddp")[0], rows(tmp_path / "single")[0]
    for key in ("train_loss", "train_cell_acc", "test_loss", "test_cell_acc"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key
    for key, value in weights(tmp_path / "single").items():
        torch.testing.assert_close(weights(tmp_path / "ddp")[key], value, rtol=1e-5, atol=1e-6)


def test_corrupt_labels_changes_k_blank_cells():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 9, size=(50, 81))
    given = rng.random((50, 81)) < 0.45
    corrupted = corrupt_labels(labels, given, 3, 9, seed=7)
    changed = corrupted != labels
    assert (changed.sum(axis=1) == 3).all()
    assert not (changed & given).any()
    assert ((corrupted >= 0) & (corrupted < 9)).all()
    np.testing.assert_array_equal(corrupted, corrupt_labels(labels, given, 3, 9, seed=7))
    assert not np.array_equal(corrupted, corrupt_labels(labels, given, 3, 9, seed=8))
    np.testing.assert_array_equal(corrupt_labels(labels, given, 0, 9, seed=7), labels)
    with pytest.raises(ValueError, match="cells to predict"):
        corrupt_labels(labels, np.ones_like(given), 1, 9, seed=7)


def test_corrupt_option_trains(tmp_path):
    assert run(tmp_path / "c", "--corrupt", "2") == 0
    assert "2 corrupted label cells" in (tmp_path / "c" / "run.log").read_text()


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("argv", [
    ["sudoku", "--model", "satnet-huge"],
    ["chess", "--model", "symsatnet"],
    ["sudoku"],
])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(argv)
    assert exit_info.value.code == 2


def test_missing_and_corrupt_data(tmp_path, capsys):
    assert run(tmp_path / "a", "--data", str(tmp_path / "nope.npz")) == 1
    assert "no such data set file" in _error_line(capsys)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert run(tmp_path / "b", "--data", str(broken)) == 1
    assert "unreadable" in _error_line(capsys)


def test_data_of_another_board_size(tmp_path, capsys):
    assert run(tmp_path / "small") == 0
    capsys.readouterr()
    code = train_cli.main(["sudoku", "--model", "symsatnet", "--data", str(tmp_path / "small" / "data.npz"),
                           "--out", str(tmp_path / "big"), "--no-progress"])
    assert code == 1 and "--box 2" in _error_line(capsys)


def test_existing_run_is_never_overwritten(tmp_path, capsys):
    assert run(tmp_path / "r") == 0
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert run(tmp_path / "r") == 1
    assert "--resume" in _error_line(capsys)
    assert (tmp_path / "r" / "checkpoint.pt").read_bytes() == before
    assert run(tmp_path / "r", "--force") == 0


def test_resume_errors(tmp_path, capsys):
    assert run(tmp_path / "empty", "--resume") == 1
    line = _error_line(capsys)
    assert "no such checkpoint" in line and "drop --resume" in line
    assert run(tmp_path / "r") == 0
    capsys.readouterr()
    assert run(tmp_path / "r", "--resume", model="satnet-plain", epochs=2) == 1
    assert "not sudoku satnet-plain" in _error_line(capsys)
    assert run(tmp_path / "r", "--resume", "--lr", "0.5", epochs=2) == 1
    assert "--lr" in _error_line(capsys)
    checkpoint = tmp_path / "r" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert run(tmp_path / "r", "--resume", epochs=2) == 1
    assert "not a readable checkpoint" in _error_line(capsys)


def test_kernel_option(tmp_path, capsys):
    # The two kernels solve the same problem: same losses up to rounding; the structured
    # one is the default for the Sudoku group, and a resumed run may switch.
    assert run(tmp_path / "dense", "--kernel", "dense", epochs=2) == 0
    assert run(tmp_path / "fast", epochs=2) == 0
    dense, fast = rows(tmp_path / "dense"), rows(tmp_path / "fast")
    for one, other in zip(dense, fast):
        assert one["train_loss"] == pytest.approx(other["train_loss"], rel=1e-4)
    from puzzles.training.checkpoint import layer_from_checkpoint, load_checkpoint

    # The checkpoint records the kernel the run used; rebuilding the layer does not switch
    # to it (the kernel is an execution choice, not part of the model).
    checkpoint = load_checkpoint(tmp_path / "dense" / "checkpoint.pt")
    assert checkpoint["model_state"]["_extra_state"]["kernel"] == "dense"
    assert layer_from_checkpoint(checkpoint).kernel == "auto"
    assert run(tmp_path / "dense", "--resume", "--kernel", "structured", epochs=3) == 0
    checkpoint = load_checkpoint(tmp_path / "dense" / "checkpoint.pt")
    assert checkpoint["model_state"]["_extra_state"]["kernel"] == "structured"
    capsys.readouterr()
    assert run(tmp_path / "plain", "--kernel", "structured", model="satnet-plain") == 1
    assert "--kernel 'structured' does not apply to satnet-plain" in _error_line(capsys)
    assert run(tmp_path / "sym", "--kernel", "clauses", model="symsatnet") == 1
    assert "--kernel 'clauses' does not apply to symsatnet" in _error_line(capsys)
    assert not (tmp_path / "plain").exists() and not (tmp_path / "sym").exists()


def test_satnet_kernel_option(tmp_path):
    # SATNet-Plain runs the dense kernel by default (C = S S^T formed); 'clauses' gives the
    # same training up to rounding, and a resumed run may switch.
    assert run(tmp_path / "dense", model="satnet-plain", epochs=2) == 0
    assert run(tmp_path / "clauses", "--kernel", "clauses", model="satnet-plain", epochs=2) == 0
    for one, other in zip(rows(tmp_path / "dense"), rows(tmp_path / "clauses")):
        assert one["train_loss"] == pytest.approx(other["train_loss"], rel=1e-4)
    assert "dense kernel" in (tmp_path / "dense" / "run.log").read_text()
    assert "clauses kernel" in (tmp_path / "clauses" / "run.log").read_text()
    assert run(tmp_path / "clauses", "--resume", "--kernel", "dense", model="satnet-plain", epochs=3) == 0
    assert "after epoch 2 (SATNet, dense kernel)" in (tmp_path / "clauses" / "run.log").read_text()
    assert [row["epoch"] for row in rows(tmp_path / "clauses")] == [1, 2, 3]


def test_auto_keeps_the_plain_layer_when_no_symmetry_is_found(tmp_path):
    # A max_err no symmetric group meets leaves only a group that ties nothing.
    options = ["--auto-epochs", "1", "--discover-max-err", "1e-12"]
    assert run(tmp_path / "straight", *options, model="symsatnet-auto", epochs=3) == 0
    logged = rows(tmp_path / "straight")
    assert [(row["phase"], row["layer"]) for row in logged] == [("plain", "SATNet"), ("untied", "SATNet"), ("untied", "SATNet")]
    assert len({row["parameters"] for row in logged}) == 1
    found = json.loads((tmp_path / "straight" / "discovery.json").read_text())
    assert found["kept_plain_layer"] is True and found["epoch"] == 1
    assert "continuing with the plain layer" in (tmp_path / "straight" / "run.log").read_text()
    # Discovery runs once: the resumed run neither repeats it nor differs.
    assert run(tmp_path / "resumed", *options, model="symsatnet-auto", epochs=2) == 0
    assert run(tmp_path / "resumed", "--resume", *options, model="symsatnet-auto", epochs=3) == 0
    assert rows(tmp_path / "resumed") == logged
    assert (tmp_path / "resumed" / "run.log").read_text().count("looking for the symmetry") == 1


def test_group_option_ties_under_the_given_group(tmp_path, capsys):
    # The 4x4 Sudoku group without the row/column hierarchy: digits and cells permuted freely.
    expression = "Product(Symmetric(16), Symmetric(4))"
    assert run(tmp_path / "r", "--group", expression, epochs=2) == 0
    from puzzles.training.checkpoint import layer_from_checkpoint, load_checkpoint
    from symsatnet.groups import parse_group

    layer = layer_from_checkpoint(load_checkpoint(tmp_path / "r" / "checkpoint.pt"))
    assert layer.group == parse_group(expression) and layer.coeffs.numel() == parse_group(expression).num_orbitals
    assert run(tmp_path / "r", "--resume", epochs=3) == 0  # the group comes back from the checkpoint
    assert layer_from_checkpoint(load_checkpoint(tmp_path / "r" / "checkpoint.pt")).group == parse_group(expression)
    capsys.readouterr()
    for options, message in (
        (["--group", "Symmetric(10)"], "--group: the group acts on 10 points, the task has 64 variables"),
        (["--group", "Symmetric("], "--group: not a group expression"),
        (["--group", "__import__('os')"], "--group: not part of a group expression"),
        (["--group", "Symmetric(64)", "--model", "satnet-plain"], "--group applies to --model symsatnet"),
    ):
        assert train_cli.main([*TINY, "--model", "symsatnet", "--out", str(tmp_path / "bad"), *options]) == 1
        assert message in _error_line(capsys)
        assert not (tmp_path / "bad").exists()


def test_evaluate_cli(tmp_path, capsys):
    assert run(tmp_path / "r") == 0
    capsys.readouterr()
    data, predictions = tmp_path / "r" / "data.npz", tmp_path / "pred.npy"
    code = evaluate_cli.main([str(tmp_path / "r" / "checkpoint.pt"), str(data), "--predictions", str(predictions), "--json"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= metrics["board_accuracy"] <= metrics["cell_accuracy"] + 1e-9 <= 1 + 1e-9
    assert "breakdown" not in metrics  # cube only
    boards = np.load(predictions)
    assert boards.shape == (60, 4, 4) and boards.dtype == np.int8
    assert boards.min() >= 1 and boards.max() <= 4
    assert metrics["max_iter"] == 40
    # More sweeps at evaluation: the same model, a different (longer) solve.
    assert evaluate_cli.main([str(tmp_path / "r" / "checkpoint.pt"), str(data), "--max-iter", "3", "--json"]) == 0
    short = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert short["max_iter"] == 3 and short["loss"] != metrics["loss"]
    assert evaluate_cli.main([str(tmp_path / "r" / "checkpoint.pt"), str(data), "--max-iter", "0"]) == 1
    assert "--max-iter must be >= 1" in _error_line(capsys)
    threads = torch.get_num_threads()
    try:
        assert evaluate_cli.main([str(tmp_path / "r" / "checkpoint.pt"), str(data), "--threads", "1", "--json"]) == 0
        assert torch.get_num_threads() == 1
        # Same model and solve; only the rounding of threaded reductions may differ.
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["loss"] == pytest.approx(metrics["loss"], rel=1e-5)
    finally:
        torch.set_num_threads(threads)
    assert evaluate_cli.main([str(tmp_path / "r" / "checkpoint.pt"), str(data), "--threads", "0"]) == 1
    assert "--threads must be >= 1" in _error_line(capsys)
    assert evaluate_cli.main([str(tmp_path / "nothing.pt"), str(data)]) == 1
    assert "no such checkpoint" in _error_line(capsys)
    assert evaluate_cli.main([str(data), str(data)]) == 1
    assert "checkpoint" in _error_line(capsys)


def test_evaluate_cli_breaks_cube_completions_down(tmp_path, capsys):
    out = tmp_path / "cube"
    argv = ["cube", "--model", "symsatnet", "--count", "40", "--batch", "10", "--epochs", "1"]
    assert train_cli.main([*argv, "--threads", "1", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    checkpoint, data = str(out / "checkpoint.pt"), str(out / "data.npz")
    assert evaluate_cli.main([checkpoint, data, "--split", "test"]) == 0
    text = capsys.readouterr().out
    assert "corner_paired" in text and "handedness-blind completer: board" in text
    assert evaluate_cli.main([checkpoint, data, "--split", "test", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["count"] == metrics["blind_ceiling"]["count"] == 4
    ceiling = metrics["blind_ceiling"]
    assert 0 < ceiling["board"] <= 1 and (ceiling["corner_paired"] is None or ceiling["corner_paired"] <= 0.5)
    counts = sum(metrics["breakdown"][kind]["count"] for kind in ("corner_alone", "corner_paired"))
    assert counts == 3 * metrics["count"]


@pytest.mark.parametrize("model", ["symsatnet", "symsatnet-auto"])
def test_evaluate_split_reproduces_the_logged_accuracies(tmp_path, capsys, model):
    extra = ["--auto-epochs", "1"] if model == "symsatnet-auto" else []
    assert run(tmp_path / "r", *extra, model=model, epochs=2) == 0
    last = rows(tmp_path / "r")[-1]
    checkpoint, data = str(tmp_path / "r" / "checkpoint.pt"), str(tmp_path / "r" / "data.npz")
    splits = ["train", "test"] + (["val"] if model == "symsatnet-auto" else [])
    counts = {}
    for split in splits:
        capsys.readouterr()
        assert evaluate_cli.main([checkpoint, data, "--split", split, "--json"]) == 0
        metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        counts[split] = metrics["count"]
        assert metrics["split"] == split
        if split != "train":  # training accuracy is logged during the epoch, not after it
            assert metrics["board_accuracy"] == last[f"{split}_board_acc"]
            assert metrics["cell_accuracy"] == pytest.approx(last[f"{split}_cell_acc"], abs=1e-12)
    assert sum(counts.values()) == 60
    if model == "symsatnet":
        assert evaluate_cli.main([checkpoint, data, "--split", "val"]) == 1
        assert "the run has no 'val' split" in _error_line(capsys)
        other = str(tmp_path / "other.npz")
        assert sudoku_cli.main(["generate", "--count", "30", "--box", "2", "--out", other, "--quiet"]) == 0
        capsys.readouterr()
        assert evaluate_cli.main([checkpoint, other, "--split", "test"]) == 1
        assert "--split needs the run's own data set" in _error_line(capsys)


def test_plot_cli(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert run(tmp_path / "a", epochs=2) == 0
    assert run(tmp_path / "b", model="satnet-plain", epochs=2) == 0
    out = tmp_path / "curves.png"
    assert plot_cli.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert plot_cli.main([str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "no such log" in _error_line(capsys)


def test_symsatnet_learns_4x4_sudoku(tmp_path):
    # Measured 2026-12-02 (1,000 puzzles, 20 epochs, seeds 0/1/2, default data and tied
    # truth): test board accuracy first reaches 1.00 at epochs 5/3/5 and stays there to
    # epoch 20; 0.8-0.9 s per epoch on one thread of a shared machine. 10 epochs leave
    # five epochs of margin over the slowest seed and a bar well below 1.
    code = train_cli.main(["sudoku", "--box", "2", "--count", "1000", "--epochs", "10", "--threads", "1",
                           "--no-progress", "--model", "symsatnet", "--out", str(tmp_path / "learn")])
    assert code == 0
    assert rows(tmp_path / "learn")[-1]["test_board_acc"] >= 0.9


@pytest.mark.parametrize("model", ["symsatnet", "symsatnet-auto"])
def test_data_and_test_files_train_on_the_one_and_report_the_other(tmp_path, capsys, model):
    data, test = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    for path, count, seed in ((data, 60, 0), (test, 30, 5)):  # two data sets to train and test on
        assert sudoku_cli.main(["generate", "--count", str(count), "--box", "2", "--seed", str(seed),
                                "--out", path, "--quiet"]) == 0
    extra = ["--auto-epochs", "1"] if model == "symsatnet-auto" else []
    assert run(tmp_path / "r", "--data", data, "--test", test, *extra, model=model, epochs=2) == 0
    log_text = (tmp_path / "r" / "run.log").read_text()
    # Without --test the 60 examples would be split 54:6 (or 48:6:6); with it all train
    # (Auto holds a ninth back for choosing among discovered groups) and the file tests.
    expected = "53 train, 7 validation, 30 test" if model == "symsatnet-auto" else "60 train, 30 test"
    assert expected in log_text and data in log_text
    last = rows(tmp_path / "r")[-1]
    capsys.readouterr()
    assert evaluate_cli.main([str(tmp_path / "r" / "checkpoint.pt"), test, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["count"] == 30
    assert metrics["board_accuracy"] == last["test_board_acc"]
    assert metrics["cell_accuracy"] == pytest.approx(last["test_cell_acc"], abs=1e-12)
