"""Visual Sudoku (puzzles.visual): digit pools, rendered boards, a CNN + SymSATNet step, bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from puzzles import train as train_cli
from puzzles.datafile import DatasetError
from puzzles.visual import build_model, make_data, render_boards, split_pools
from puzzles.visual.digits import DigitImages, load_digit_file, load_sklearn_digits
from puzzles.visual.grounding import blank_peer_digits
from puzzles.visual.run import board_losses, board_tensors

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def data():
    return make_data(12, 4, seed=3)


def numbered_images(per_digit: int) -> DigitImages:
    """Images whose pixels all hold their own index, so identity survives any split."""
    count = 9 * per_digit
    images = np.broadcast_to(np.arange(count, dtype=np.float32)[:, None, None], (count, 8, 8)).copy()
    return DigitImages(images, np.repeat(np.arange(1, 10), per_digit), "numbered")


def test_pools_are_disjoint_and_cover_every_digit():
    train, test = split_pools(numbered_images(20), 0.3, seed=0)
    train_ids, test_ids = set(train.images[:, 0, 0].tolist()), set(test.images[:, 0, 0].tolist())
    assert not train_ids & test_ids and len(train_ids | test_ids) == 180
    assert all(size == 6 for size in test.pool_sizes().values())
    bundled = load_sklearn_digits()
    assert len(bundled) == 1619 and bundled.images.shape[1:] == (8, 8) and set(bundled.digits.tolist()) == set(range(1, 10))


def test_boards_show_their_digits_from_the_right_pool(data):
    for boards, pool in ((data.train, data.train_pool), (data.test, data.test_pool)):
        given = boards.given
        assert 25 < given.sum(axis=1).mean() < 50  # the generator's ~36 givens
        assert (boards.image_index[~given] == -1).all() and (boards.images[~given] == 0).all()
        shown = boards.image_index[given]
        assert (pool.digits[shown] == boards.solutions[given]).all()
        assert np.array_equal(boards.images[given], pool.images[shown])
        for board in range(len(boards)):  # no image twice on one board
            row = boards.image_index[board][given[board]]
            assert len(np.unique(row)) == len(row)
    assert ((data.train.solutions >= 1) & (data.train.solutions <= 9)).all()


def test_blank_peers_never_hold_a_given_digit(data):
    excluded = blank_peer_digits(data.train)
    digits = data.train.solutions - 1
    at_given = np.take_along_axis(excluded, digits[..., None], axis=-1)[..., 0]
    assert not at_given[data.train.given].any()


@pytest.mark.parametrize("leakage", [False, True])
@pytest.mark.parametrize("layer", ["symsatnet", "satnet-plain"])
def test_gradients_reach_the_cnn(data, layer, leakage):
    torch.manual_seed(0)
    model = build_model(layer, max_iter=5)
    images, given, targets = board_tensors(data.train, np.arange(2))
    outputs, log_probs = model(images, given)
    assert outputs.shape == (2, 729) and log_probs.shape == (2, 81, 9)
    board_losses(outputs, targets, given, leakage).sum().backward()
    cnn_gradient = sum(float(p.grad.abs().sum()) for p in model.cnn.parameters() if p.grad is not None)
    layer_gradient = sum(float(p.grad.abs().sum()) for p in model.layer.parameters() if p.grad is not None)
    assert cnn_gradient > 0 and layer_gradient > 0


def test_train_resume_and_report(tmp_path):
    options = ["visual-sudoku", "--count", "8", "--test-count", "4", "--batch", "4", "--max-iter", "5",
               "--threads", "1", "--no-progress", "--no-decode", "--out", str(tmp_path)]
    assert train_cli.main([*options, "--epochs", "1"]) == 0
    assert train_cli.main([*options, "--epochs", "2", "--resume"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    report = json.loads((tmp_path / "results.json").read_text())
    assert 0 <= report["ceiling"] <= 1 and report["test_boards"] == 4
    assert train_cli.main([*options, "--epochs", "2"]) == 1  # a run is there: --resume or --force


def _one_line_error(capsys, argv) -> str:
    assert train_cli.main(argv) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "error" in message
    return message


@pytest.mark.parametrize("arrays, expected", [
    ({"x": np.zeros((5, 8)), "y": np.ones(5, dtype=np.int64)}, "square images"),
    ({"x": np.zeros((5, 8, 8)), "y": np.full(5, 12)}, "digits 0..9"),
    ({"x": np.zeros((5, 8, 8)), "y": np.ones(4, dtype=np.int64)}, "one label per image"),
    ({"images": np.zeros((5, 8, 8))}, "needs arrays 'x'"),
])
def test_bad_digit_files(tmp_path, capsys, arrays, expected):
    path = tmp_path / "digits.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=expected):
        load_digit_file(path)
    message = _one_line_error(capsys, ["visual-sudoku", "--digits", str(path), "--out", str(tmp_path / "run")])
    assert expected in message


def test_pool_too_small(tmp_path, capsys):
    path = tmp_path / "few.npz"
    np.savez(path, x=np.random.default_rng(0).random((27, 8, 8)), y=np.repeat(np.arange(1, 10), 3))
    message = _one_line_error(capsys, ["visual-sudoku", "--digits", str(path), "--count", "5", "--out", str(tmp_path / "r")])
    assert "image pool holds" in message
    puzzles = np.zeros((1, 9, 9), dtype=np.int8)
    puzzles[0, 0, :] = 1  # nine 1s on one board (not a puzzle, but shows the check)
    with pytest.raises(DatasetError, match="digit 1"):
        render_boards(puzzles, puzzles, numbered_images(5), seed=0)


def test_no_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DatasetError, match="pip install scikit-learn"):
        load_sklearn_digits()
