"""Sudoku files in other formats (puzzles.sudoku.formats): text lines, Kaggle CSV, SATNet
tensors. Round trips, detection, problems named by line, one-line CLI errors, no overwrite,
and evaluate / solve reading the files directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from puzzles import evaluate as evaluate_cli
from puzzles import train as train_cli
from puzzles.sudoku import cli as sudoku_cli
from puzzles.sudoku.dataset import load_dataset
from puzzles.sudoku.formats import (PuzzleFormatError, detect_format, export_dataset, format_board,
                                    import_dataset, read_puzzle_file)
from puzzles.sudoku.generate import generate_dataset

# (format, export options, where the export goes)
EXPORTS = [("text", [], "d.txt"), ("text", ["--no-solutions"], "d.txt"), ("csv", [], "d.csv"),
           ("satnet", [], "d")]


@pytest.fixture(scope="module", params=[2, 3], ids=["4x4", "9x9"])
def data_file(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp(f"formats{request.param}") / "data.npz"
    code = sudoku_cli.main(["generate", "--count", "25", "--box", str(request.param), "--seed", "3",
                            "--out", str(path), "--quiet"])
    assert code == 0
    return path


def _one_line_error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error and "Traceback" not in error, error
    return error


@pytest.mark.parametrize("format, options, name", EXPORTS)
def test_import_export_round_trip(data_file, tmp_path, capsys, format, options, name):
    out = tmp_path / name
    assert sudoku_cli.main(["export", str(data_file), "--out", str(out), "--format", format, *options]) == 0
    assert detect_format(out) == format
    back = tmp_path / "back.npz"
    assert sudoku_cli.main(["import", str(out), "--out", str(back), "--quiet"]) == 0
    original, imported = load_dataset(data_file), load_dataset(back)
    np.testing.assert_array_equal(imported.puzzles, original.puzzles)
    np.testing.assert_array_equal(imported.solutions, original.solutions)
    solved = imported.metadata["solved_on_import"]
    assert solved == (len(original) if options == ["--no-solutions"] else 0)
    assert imported.metadata["source_format"] == format
    # and once more: the export of the import is the same file (text, csv) or tensors (satnet)
    again = tmp_path / ("again" + Path(name).suffix)
    assert sudoku_cli.main(["export", str(back), "--out", str(again), "--format", format, *options]) == 0
    if format == "satnet":
        for part in ("features.pt", "labels.pt"):
            assert torch.equal(torch.load(out / part, weights_only=True), torch.load(again / part, weights_only=True))
    else:
        assert again.read_bytes() == out.read_bytes()


def test_satnet_layout_is_satnets(data_file, tmp_path):
    """(count, side, side, side) float one-hot, all zeros for a blank, as SATNet's data."""
    export_dataset(load_dataset(data_file), tmp_path / "s", "satnet")
    features = torch.load(tmp_path / "s" / "features.pt", weights_only=True)
    labels = torch.load(tmp_path / "s" / "labels.pt", weights_only=True)
    dataset = load_dataset(data_file)
    side = dataset.side
    assert features.shape == labels.shape == (len(dataset), side, side, side)
    assert features.dtype == torch.float32
    np.testing.assert_array_equal(features.sum(dim=3).numpy(), (dataset.puzzles != 0).astype(np.float32))
    np.testing.assert_array_equal(features.argmax(dim=3).numpy() + 1, np.where(dataset.puzzles, dataset.puzzles, 1))
    np.testing.assert_array_equal(labels.argmax(dim=3).numpy() + 1, dataset.solutions)
    # other SATNet layouts read the same: (count, side**2, side), (count, side**3); a features file alone
    for shape in ((len(dataset), side * side, side), (len(dataset), side**3)):
        folder = tmp_path / f"flat{len(shape)}"
        folder.mkdir()
        torch.save(features.reshape(shape), folder / "features.pt")
        torch.save(labels.reshape(shape), folder / "labels.pt")
        read = read_puzzle_file(folder / "features.pt")
        np.testing.assert_array_equal(read.puzzles, dataset.puzzles)
        np.testing.assert_array_equal(read.solutions, dataset.solutions)


def test_detection(tmp_path, data_file):
    board = format_board(load_dataset(data_file).puzzles[0])
    files = {
        "plain.txt": f"{board}\n",
        "commas": f"{board},{board}\n",  # a separator, not a header: text
        "kaggle": f"quizzes,solutions\n{board},\n",  # no suffix, but a CSV header
        "k.csv": f"puzzle\n{board}\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    assert {name: detect_format(tmp_path / name) for name in files} == {
        "plain.txt": "text", "commas": "text", "kaggle": "csv", "k.csv": "csv"}
    (tmp_path / "windows.txt").write_bytes(b"\xef\xbb\xbf" + f"{board}\r\n{board}\r\n".encode())
    assert detect_format(tmp_path / "windows.txt") == "text"
    assert len(read_puzzle_file(tmp_path / "windows.txt").puzzles) == 2  # byte-order mark and CRLF
    export_dataset(load_dataset(data_file), tmp_path / "satnet", "satnet")
    assert detect_format(tmp_path / "satnet") == "satnet"
    assert detect_format(tmp_path / "satnet" / "features.pt") == "satnet"
    assert detect_format(data_file) == "npz"


BOARD = "1234341221434321"  # a 4x4 solution
PUZZLE = "12..3...2..3..21"
# (file name, content, message): each problem named with its line (or example)
MALFORMED = [
    ("a.txt", f"{PUZZLE}\n\n{PUZZLE[:-1]}\n", "a.txt, line 3: 15 characters"),
    ("b.txt", f"# comment\n1X3.3.1.2.4.4.2.\n", "b.txt, line 2: character 'X' at position 2"),
    ("c.txt", f"{PUZZLE} {BOARD} extra\n", "c.txt, line 1: 3 fields"),
    ("d.txt", f"{PUZZLE}\n{'.' * 81}\n", "d.txt, line 2: a 9x9 board among 4x4 ones"),
    ("e.txt", f"{PUZZLE}|{BOARD.replace('1', '2')}\n", "e.txt, line 1: the solution breaks the Sudoku rules"),
    ("f.txt", f"{PUZZLE} {'2143432112343412'}\n", "f.txt, line 1: the solution changes a given digit"),
    ("g.txt", f"{PUZZLE}\n11..............\n", "g.txt, line 2: the puzzle has no solution"),
    ("h.txt", f"{PUZZLE}\n{PUZZLE}\n{'.' * 16}\n", "h.txt, line 3: the puzzle has more than one solution"),
    ("m.txt", f"{'.' * 16}\n{PUZZLE}\n{'.' * 16}\n", "m.txt, lines 1, 3: the puzzle has more than one solution"),
    ("i.txt", "\n# nothing\n", "i.txt: no puzzles in the file"),
    ("j.csv", f"id,clues\n1,{PUZZLE}\n", "j.csv, line 1: a CSV header needs a puzzle column"),
    ("k.csv", f"quizzes,solutions\n{PUZZLE},{BOARD}\n{PUZZLE}\n", "k.csv, line 3: 1 fields, the header has 2"),
    ("l.csv", f"quizzes,solutions\n{PUZZLE},{BOARD}\n{PUZZLE},{BOARD[:-1]}5\n", "l.csv, line 3: character '5'"),
]


@pytest.mark.parametrize("name, content, message", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_text_is_named_by_line(tmp_path, capsys, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(PuzzleFormatError, match=message.replace("|", r"\|")):
        import_dataset(tmp_path / name)
    out = tmp_path / "out.npz"
    assert sudoku_cli.main(["import", str(tmp_path / name), "--out", str(out), "--quiet"]) == 1
    assert message in _one_line_error(capsys)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [name]


def _satnet_case(folder: Path, change) -> Path:
    features = torch.zeros(3, 4, 4, 4)
    labels = torch.nn.functional.one_hot(torch.tensor([int(v) - 1 for v in BOARD]).reshape(4, 4), 4)
    labels = labels.float().expand(3, 4, 4, 4).clone()
    features[:, 0, 0] = labels[:, 0, 0]
    saved = change(features, labels)
    folder.mkdir()
    torch.save(saved[0], folder / "features.pt")
    if saved[1] is not None:
        torch.save(saved[1], folder / "labels.pt")
    return folder


def _set(tensor, index, value):
    tensor[index] = value
    return tensor


SATNET_MALFORMED = [
    (lambda f, l: (_set(f, (1, 2, 3), torch.tensor([0.0, 0.5, 0.0, 0.0])), l),
     "features.pt, example 2: cell (row 3, column 4) has digit entries [0.0, 0.5, 0.0, 0.0]"),
    (lambda f, l: (_set(f, (2, 0, 1), torch.tensor([1.0, 1.0, 0.0, 0.0])), l), "features.pt, example 3: cell (row 1"),
    (lambda f, l: (f, _set(l, (0, 3, 3), torch.zeros(4))), "labels.pt, example 1: cell (row 4, column 4)"),
    (lambda f, l: (f.reshape(3, 64)[:, :60], l), "features.pt: shape (3, 60) is not one-hot Sudoku boards"),
    (lambda f, l: ({"features": f}, l), "features.pt: holds a dict, not a tensor"),
    (lambda f, l: (f, l[:2]), "labels.pt: 2 boards of side 4, "),
    (lambda f, l: (f, None), "features.pt, examples 1, 2, 3: the puzzle has more than one solution"),
]


@pytest.mark.parametrize("change, message", SATNET_MALFORMED)
def test_malformed_satnet_tensors(tmp_path, capsys, change, message):
    folder = _satnet_case(tmp_path / "satnet", change)
    with pytest.raises(PuzzleFormatError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        import_dataset(folder)
    assert sudoku_cli.main(["import", str(folder), "--out", str(tmp_path / "o.npz"), "--quiet"]) == 1
    assert message in _one_line_error(capsys)


def test_a_valid_satnet_case_imports(tmp_path):
    """The unchanged case of test_malformed_satnet_tensors is good data (so each case fails for its change)."""
    dataset = import_dataset(_satnet_case(tmp_path / "satnet", lambda f, l: (f, l)))
    assert len(dataset) == 3 and format_board(dataset.solutions[2]) == BOARD


@pytest.mark.parametrize("command", [
    ["import", "missing.txt", "--out", "o.npz"],
    ["import", "binary.bin", "--out", "o.npz"],
    ["import", "data.npz", "--out", "o.npz"],
    ["export", "data.npz", "--out", "o.json"],
    ["export", "board.txt", "--out", "o.txt"],
    ["export", "data.npz", "--out", "board.txt", "--format", "satnet"],
])
def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    assert sudoku_cli.main(["generate", "--count", "3", "--box", "2", "--seed", "1", "--out", "data.npz",
                            "--quiet"]) == 0
    Path("binary.bin").write_bytes(bytes(range(256)))
    Path("board.txt").write_text(PUZZLE + "\n")
    capsys.readouterr()
    assert sudoku_cli.main(command) in (1, 2)
    _one_line_error(capsys)
    assert not Path("o.npz").exists() and not Path("o.txt").exists() and not Path("o.json").exists()


@pytest.mark.parametrize("format, name", [("text", "x.txt"), ("csv", "x.csv"), ("satnet", "x")])
def test_export_and_import_never_overwrite_unasked(data_file, tmp_path, capsys, format, name):
    out = tmp_path / name
    if format == "satnet":
        out.mkdir()
        (out / "labels.pt").write_text("mine")
        kept = out / "labels.pt"
    else:
        out.write_text("mine")
        kept = out
    assert sudoku_cli.main(["export", str(data_file), "--out", str(out), "--format", format]) == 2
    assert "already exists; use --force" in _one_line_error(capsys)
    assert kept.read_text() == "mine"
    assert sudoku_cli.main(["export", str(data_file), "--out", str(out), "--format", format, "--force"]) == 0
    assert kept.read_bytes() != b"mine"
    target = tmp_path / "target.npz"
    target.write_text("mine too")
    assert sudoku_cli.main(["import", str(out), "--out", str(target), "--quiet"]) == 2
    assert "already exists" in _one_line_error(capsys) and target.read_text() == "mine too"
    assert sudoku_cli.main(["import", str(out), "--out", str(target), "--quiet", "--force"]) == 0
    assert len(load_dataset(target)) == len(load_dataset(data_file))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_a_new_satnet_folder_appears_whole_or_not_at_all(data_file, tmp_path, monkeypatch):
    calls = []

    def failing_save(tensor, target, *args, **kwargs):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(target))
        return original(tensor, target, *args, **kwargs)

    original = torch.save
    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        export_dataset(load_dataset(data_file), tmp_path / "new", "satnet")
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def trained_4x4(tmp_path_factory) -> tuple[Path, Path]:
    """A SymSATNet trained on 4x4 Sudoku long enough for its rules (as tests/puzzles/test_sudoku_decode.py)."""
    folder = tmp_path_factory.mktemp("formats_run")
    out = folder / "run"
    assert train_cli.main(["sudoku", "--box", "2", "--count", "1000", "--epochs", "6", "--threads", "1",
                           "--no-progress", "--model", "symsatnet", "--out", str(out)]) == 0
    data = folder / "test.npz"
    assert sudoku_cli.main(["generate", "--count", "40", "--box", "2", "--seed", "11", "--out", str(data),
                            "--quiet"]) == 0
    return out / "checkpoint.pt", data


@pytest.mark.parametrize("format, name, options", [
    ("text", "t.txt", ["--no-solutions"]), ("csv", "t.csv", []), ("satnet", "t", [])])
def test_evaluate_reads_other_formats_directly(trained_4x4, tmp_path, capsys, format, name, options):
    checkpoint, data = trained_4x4
    assert sudoku_cli.main(["export", str(data), "--out", str(tmp_path / name), "--format", format, *options]) == 0
    results = []
    for source in (data, tmp_path / name):
        capsys.readouterr()
        assert evaluate_cli.main([str(checkpoint), str(source), "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert results[0]["count"] == 40 and results[1] == results[0]


def test_evaluate_names_a_bad_line(trained_4x4, tmp_path, capsys):
    checkpoint, _ = trained_4x4
    (tmp_path / "bad.txt").write_text(f"{PUZZLE}\n{PUZZLE}x\n")
    assert evaluate_cli.main([str(checkpoint), str(tmp_path / "bad.txt")]) == 1
    error = capsys.readouterr().err.strip()
    assert "bad.txt, line 2: 17 characters" in error and "\n" not in error
    (tmp_path / "big.txt").write_text("." * 81 + "\n")
    assert evaluate_cli.main([str(checkpoint), str(tmp_path / "big.txt")]) == 1
    assert "big.txt: holds 9x9 Sudoku, not 4x4" in capsys.readouterr().err


def test_solve_reads_csv(trained_4x4, tmp_path, capsys):
    checkpoint, data = trained_4x4
    assert sudoku_cli.main(["export", str(data), "--out", str(tmp_path / "p.csv")]) == 0
    capsys.readouterr()
    assert sudoku_cli.main(["solve", str(checkpoint), str(tmp_path / "p.csv"), "--decode", "decimate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "# 40 of 40 boards satisfy the Sudoku rules and keep their givens"
    dataset = load_dataset(data)
    answers = [line.split()[0] for line in out if not line.startswith("#")]
    assert answers == [format_board(board) for board in dataset.solutions]  # unique solutions
