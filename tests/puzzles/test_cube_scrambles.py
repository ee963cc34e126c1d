"""Cube data version 2: scrambles from the published 27 moves, odd and even facelet
permutations alike, and old (version 1) files recognised instead of mixed in."""

from __future__ import annotations

import numpy as np
import pytest

from puzzles.cube import CUBE_DATA_VERSION, SCRAMBLE_MOVE_SETS, DatasetError, generate_dataset, load_dataset, save_dataset
from puzzles.cube.cli import main as cube_main
from puzzles.cube.dataset import DEFAULT_SCRAMBLE_MOVES, data_version, scramble
from puzzles.cube.pieces import CORNERS, facelet_origins, facelet_parity, kociemba_facelets, legality_problems, recolour_by_centres
from puzzles.datafile import save_npz
from symsatnet.cube_moves import MOVES, SOLVED, apply, sequence_permutation

try:
    import kociemba
except ImportError:  # optional dependency (extra "cube"); our own legality check runs regardless
    kociemba = None


def permutation_parity(permutation: np.ndarray) -> int:
    """Parity by counting inversions (independent of the cycle count in pieces._parity)."""
    values = np.asarray(permutation)
    return int(sum(int((values[i + 1 :] < values[i]).sum()) for i in range(len(values))) % 2)


@pytest.fixture(scope="module")
def published() -> np.ndarray:
    """2,000 solutions from the default generator."""
    return generate_dataset(2000, seed=11).solutions


def test_default_move_set_is_the_published_27():
    assert DEFAULT_SCRAMBLE_MOVES == SCRAMBLE_MOVE_SETS["published27"]
    assert len(set(DEFAULT_SCRAMBLE_MOVES)) == 27
    assert {name[0] for name in DEFAULT_SCRAMBLE_MOVES} == set("UDFBLRMES")
    assert len(SCRAMBLE_MOVE_SETS["quarter18"]) == 18 and all("2" not in m for m in SCRAMBLE_MOVE_SETS["quarter18"])


@pytest.mark.parametrize("name", list(MOVES))
def test_quarter_turns_are_odd_half_turns_even(name):
    assert permutation_parity(MOVES[name]) == (0 if name.endswith("2") else 1)


def test_facelet_parity_of_a_state_is_that_of_its_scramble():
    rng = np.random.default_rng(5)
    for length in (1, 2, 7, 60):
        for _ in range(20):
            state, names = scramble(rng, length)
            origins = facelet_origins(state)
            assert np.array_equal(SOLVED[origins], state)
            assert facelet_parity(state) == permutation_parity(sequence_permutation(names))


def test_facelet_origins_refuse_an_illegal_state():
    state = apply(SOLVED, "R U")
    corner = CORNERS[0]
    state[corner] = state[np.roll(corner, 1)]  # one corner twisted in place
    assert legality_problems(state)
    with pytest.raises(ValueError, match="not a legal cube state"):
        facelet_origins(state)


def test_published_scrambles_are_odd_about_half_the_time_and_all_legal(published):
    assert all(not legality_problems(state) for state in published)
    odd = np.mean([facelet_parity(state) for state in published])
    assert 0.45 <= odd <= 0.55, odd


def test_quarter_turn_scrambles_are_all_even():
    solutions = generate_dataset(300, seed=11, moves=SCRAMBLE_MOVE_SETS["quarter18"]).solutions
    assert sum(facelet_parity(state) for state in solutions) == 0


@pytest.mark.skipif(kociemba is None, reason="needs the kociemba package (our own legality check runs above)")
def test_kociemba_solves_odd_and_even_published_states(published):
    # The pure-Python kociemba takes seconds a cube: two odd and two even states.
    parities = np.array([facelet_parity(state) for state in published[:40]])
    chosen = np.concatenate([np.flatnonzero(parities == 1)[:2], np.flatnonzero(parities == 0)[:2]])
    assert len(chosen) == 4
    for state in published[chosen]:
        solution = kociemba.solve(kociemba_facelets(state))
        assert np.array_equal(apply(recolour_by_centres(state), solution), SOLVED)


def test_files_record_version_and_move_set(tmp_path):
    path = tmp_path / "new.npz"
    stored = save_dataset(path, generate_dataset(5, seed=1))
    assert stored["cube_version"] == CUBE_DATA_VERSION == 2
    assert stored["settings"]["move_set"] == "published27"
    assert data_version(load_dataset(path).metadata) == 2


def write_version_1(path, dataset) -> None:
    """A file as this package wrote it before version 2: no cube_version in the metadata."""
    metadata = {key: value for key, value in dataset.metadata.items() if key != "cube_version"}
    save_npz(path, {"puzzles": dataset.puzzles, "solutions": dataset.solutions}, metadata)


def test_a_version_1_file_is_reported_not_mixed(tmp_path, capsys):
    old = generate_dataset(5, seed=2, moves=SCRAMBLE_MOVE_SETS["quarter18"])
    path = tmp_path / "old.npz"
    write_version_1(path, old)
    with pytest.raises(DatasetError, match=r"cube data version 1 \(scrambles drawn from the 18 quarter turns"):
        load_dataset(path)
    assert cube_main(["check", str(path)]) == 1
    error = capsys.readouterr().err
    assert "version 1" in error and "reads version 2" in error and "Regenerate" in error
    # Still readable on request, e.g. to evaluate a model trained on it.
    loaded = load_dataset(path, old_version=True)
    assert data_version(loaded.metadata) == 1 and np.array_equal(loaded.solutions, old.solutions)


def test_an_unknown_version_is_refused(tmp_path):
    dataset = generate_dataset(3, seed=2)
    path = tmp_path / "future.npz"
    save_npz(path, {"puzzles": dataset.puzzles, "solutions": dataset.solutions}, dict(dataset.metadata, cube_version=3))
    with pytest.raises(DatasetError, match="version 3"):
        load_dataset(path, old_version=True)


def test_cli_scramble_moves(tmp_path, capsys):
    new, old = tmp_path / "new.npz", tmp_path / "old.npz"
    assert cube_main(["generate", "--count", "40", "--seed", "4", "--quiet", "--out", str(new)]) == 0
    assert "published27" in capsys.readouterr().out
    arguments = ["generate", "--count", "40", "--seed", "4", "--quiet", "--scramble-moves", "quarter18", "--out", str(old)]
    assert cube_main(arguments) == 0
    assert load_dataset(new).metadata["settings"]["move_set"] == "published27"
    old_set = load_dataset(old)
    assert old_set.metadata["settings"]["move_set"] == "quarter18"
    assert old_set.metadata["cube_version"] == 2
    assert sum(facelet_parity(state) for state in old_set.solutions) == 0
    with pytest.raises(SystemExit):
        cube_main(["generate", "--count", "3", "--scramble-moves", "quarter18", "--moves", "U", "--out", str(tmp_path / "x.npz")])
    with pytest.raises(SystemExit):
        cube_main(["generate", "--count", "3", "--scramble-moves", "all", "--out", str(tmp_path / "y.npz")])


# ---------------------------------------------------------------- mean and spread over seeds


def write_log(path, values):
    path.write_text("epoch,test_board_acc\n" + "".join(f"{e},{v}\n" for e, v in enumerate(values, 1)))
    return path


def test_seed_summary_uses_common_epochs_and_the_best_mean(tmp_path, capsys):
    from puzzles.cube.seeds import main as seeds_main
    from puzzles.cube.seeds import summarise

    a = write_log(tmp_path / "a.csv", [0.1, 0.5, 0.4, 0.9])
    b = write_log(tmp_path / "b.csv", [0.3, 0.3, 0.6])
    summary = summarise("m", [a, b])
    assert summary.epochs == [1, 2, 3]
    last = summary.last()
    assert last["epoch"] == 3 and last["mean"] == pytest.approx(0.5) and last["std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert (last["min"], last["max"]) == (0.4, 0.6)
    best = summary.best()  # means 0.2, 0.4, 0.5
    assert best["epoch"] == 3
    assert summary.best(up_to=2)["epoch"] == 2
    c = write_log(tmp_path / "c.csv", [0.2, 0.2])
    assert seeds_main([f"one={a} {b}", f"two={c}", "--plot", str(tmp_path / "p.png"), "--reference", "pub=0.66"]) == 0
    out = capsys.readouterr().out
    assert "one: 2 seeds" in out and "common   2" in out and (tmp_path / "p.png").stat().st_size > 1000
    assert seeds_main([f"bad={tmp_path / 'missing.csv'}"]) == 1
    assert "no such log" in capsys.readouterr().err
