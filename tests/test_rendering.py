"""Helper processes write a run folder's songs and plots: the same bytes as the caller would, and nothing lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nabiya import rendering
from nabiya.errors import NabiyaError
from nabiya.music.corpus_reading import song_to_json
from nabiya.music.song import Song
from nabiya.rendering import Helpers, write_jobs

TUNE = Song.from_codes("g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4", title="start", meter="2/4", key="C major")
GUESS = Song.from_codes("g8 e8 e4 f8 d8 d4 c8 e8 e8 f8 g8 g8 g4", title="start (one_step)", meter="2/4", key="C major")


def _jobs(folder: Path) -> list[dict]:
    songs = [{"song": song_to_json(GUESS), "path": str(folder / f"guess{suffix}")}
             for suffix in (".mid", ".wav", ".abc", ".musicxml", ".svg")]  # fmt: skip
    return songs + [
        {"roll": [song_to_json(TUNE), song_to_json(GUESS)], "given": 4, "title": "roll", "path": str(folder / "roll.png")},
        {"loss": {"stateful2": [2.5, 1.0, 0.25]}, "title": "start: loss", "path": str(folder / "loss.png")},
    ]


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.slow
def test_a_helper_writes_the_same_bytes_as_this_process_and_its_errors_come_back(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    write_jobs(_jobs(here))
    with Helpers(2) as helpers:
        assert all(process is not None for process in helpers._processes)
        helpers.send(0, [{"warm": True}])
        helpers.send(1, _jobs(there))
        helpers.wait()
        assert len(_files(there)) == 7 and _files(there) == _files(here)
        helpers.send(0, [{"song": song_to_json(TUNE), "path": str(tmp_path / "tune.xyz")}])
        with pytest.raises(NabiyaError, match=r"tune\.xyz: cannot write \.xyz"):
            helpers.wait()
        helpers.send(0, [{"song": song_to_json(TUNE), "path": str(tmp_path / "tune.abc")}])  # still answering
        helpers.wait()
    assert (tmp_path / "tune.abc").exists()
    assert all(process is None for process in helpers._processes)


def test_where_no_helper_starts_or_one_dies_its_jobs_are_done_here(tmp_path, monkeypatch):
    with Helpers(1) as helpers:
        helpers._processes[0].kill()  # dies before its first request
        helpers._processes[0].wait()
        helpers.send(0, [{"song": song_to_json(TUNE), "path": str(tmp_path / "died.abc")}])
        helpers.wait()
    monkeypatch.setattr(rendering, "_start", lambda: None)
    with Helpers(1) as helpers:
        helpers.send(0, [{"song": song_to_json(TUNE), "path": str(tmp_path / "none.abc")}])
        helpers.wait()
    assert (tmp_path / "died.abc").read_bytes() == (tmp_path / "none.abc").read_bytes()


def test_an_interrupted_caller_stops_its_helpers_at_once(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with Helpers(2) as helpers:
            processes = list(helpers._processes)
            raise KeyboardInterrupt
    assert all(process.poll() is not None for process in processes)


@pytest.mark.slow
def test_a_run_writes_with_its_helpers_what_its_result_writes_alone(tmp_path):
    import nabiya

    result = nabiya.run("stateful2", epochs=3, progress=False, out=tmp_path / "run")
    result.write(tmp_path / "alone")
    assert _files(tmp_path / "run") == _files(tmp_path / "alone")
    assert {"song.svg", "one_step_roll.png", "full_song.wav", "loss.png"} <= set(_files(tmp_path / "run"))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.slow
def test_compare_writes_each_preset_while_the_next_trains_what_it_writes_alone(tmp_path):
    import nabiya
    from nabiya.report import write_comparison

    comparison = nabiya.compare(("mlp", "stateful2"), epochs=3, progress=False, out=tmp_path / "cmp")
    write_comparison(comparison, tmp_path / "alone", helpers=False)
    written = _tree(tmp_path / "cmp")
    assert written == _tree(tmp_path / "alone")
    assert {"comparison.json", "loss.png", "mlp/summary.json", "stateful2/full_song_roll.png", "mlp/song.svg"} <= set(written)


@pytest.mark.slow
def test_compare_stopped_during_a_later_training_leaves_nothing_and_no_helper(tmp_path, monkeypatch):
    import nabiya
    from nabiya import experiment

    started = []
    original_helpers = rendering.Helpers

    class Recorded(original_helpers):
        def __init__(self, count):
            super().__init__(count)
            started.extend(self._processes)

    monkeypatch.setattr(rendering, "Helpers", Recorded)
    original_run = experiment.run

    def run(config, **options):
        if config.preset == "lstm":  # the second preset: the first one's folder is being written
            raise KeyboardInterrupt
        return original_run(config, **options)

    monkeypatch.setattr(experiment, "run", run)
    with pytest.raises(KeyboardInterrupt):
        nabiya.compare(("mlp", "lstm"), epochs=2, progress=False, out=tmp_path / "cmp")
    assert os.listdir(tmp_path) == []  # no folder, no staging folder
    assert started and all(process is not None and process.poll() is not None for process in started)
