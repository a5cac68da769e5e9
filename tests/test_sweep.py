"""nabiya sweep: many seeds in one program, each seed's numbers exactly those of nabiya.run."""

import json

import numpy as np
import pytest

import nabiya
from nabiya.cli import main
from nabiya.sweeps import parse_numbers


@pytest.mark.slow
def test_each_seed_of_a_sweep_is_its_own_run_bit_for_bit():
    """The seeds share one compiled program (and two threads), yet each trains as it would alone."""
    sweep = nabiya.sweep("stateful2", seeds=[0, 3, 7], epochs=4, workers=2, progress=False)
    assert [run.config.seed for run in sweep.runs] == [0, 3, 7]
    for seed in (3, 7):  # 7 is alone in the second thread's group, beside a padding copy
        alone = nabiya.run("stateful2", seed=seed, epochs=4, progress=False)
        in_sweep = sweep.runs[[0, 3, 7].index(seed)]
        np.testing.assert_array_equal(in_sweep.loss_history, alone.loss_history)
        np.testing.assert_array_equal(in_sweep.accuracy_history, alone.accuracy_history)
        assert in_sweep.one_step.notes == alone.one_step.notes and in_sweep.full_song.notes == alone.full_song.notes
    assert not np.array_equal(sweep.runs[0].loss_history, sweep.runs[1].loss_history)


@pytest.mark.slow
def test_a_window_sweep_trains_each_window_as_a_run_with_that_window():
    sweep = nabiya.sweep("mlp", seeds=[1], windows=[5, 3], epochs=3, progress=False)
    assert sweep.windows == [3, 5] and len(sweep.runs) == 2
    alone = nabiya.run(nabiya.preset("mlp").replace(window=5, seed=1, epochs=3), progress=False)
    np.testing.assert_array_equal(sweep.for_window(5)[0].loss_history, alone.loss_history)
    assert len(sweep.for_window(3)[0].full_song.notes) == 51  # 54 notes, window 3


def test_the_cli_prints_the_distribution_and_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "stateful2", "--seeds", "2-3", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "2 seeds (2-3)" in printed and "first epoch at 100%" in printed and "replayed by" in printed
    summary = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert summary["seeds"] == [2, 3] and [row["seed"] for row in summary["runs"]] == [2, 3]
    runs, d = summary["runs"], summary["distribution"][0]
    assert d["seeds"] == 2 and d["window"] == 4 and d["full_song_matches"]["total"] == 50
    assert d["accuracy"]["min"] == min(r["accuracy"] for r in runs) and d["accuracy"]["max"] == max(r["accuracy"] for r in runs)
    assert d["full_song_matches"]["median"] == np.median([r["full_song_matches"] for r in runs])
    assert d["replayed"] == sum(r["full_song_matches"] == 50 for r in runs)
    assert d["epochs_to_100_percent"]["reached"] == sum(r["epochs_to_100_percent"] is not None for r in runs)
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("text, numbers", [("0-3", [0, 1, 2, 3]), ("7", [7]), ("0-1, 5", [0, 1, 5])])
def test_seed_lists_and_ranges(text, numbers):
    assert parse_numbers(text, what="--seeds") == numbers


def test_bad_seeds_in_the_api_are_refused_with_a_message():
    with pytest.raises(nabiya.NabiyaError, match="a seed is a whole number"):
        nabiya.sweep("stateful2", seeds=[-1], epochs=1, progress=False)
    with pytest.raises(nabiya.NabiyaError, match="at least one seed"):
        nabiya.sweep("stateful2", seeds=[], epochs=1, progress=False)
