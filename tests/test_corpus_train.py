"""Corpus training: the run folder, checkpoints that survive a kill (bit for bit), refusals, a full disk."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from conftest import TINY_CORPUS, TINY_CORPUS_RUN

from nabiya.corpus_checkpoint import TrainingState, load_corpus_model, read_checkpoint, write_checkpoint
from nabiya.corpus_config import corpus_preset
from nabiya.corpus_train import train
from nabiya.errors import NabiyaError
from nabiya.music.corpus import read_split


def _tensors(path: Path) -> dict:
    return safetensors.numpy.load_file(str(path))


def _same_tensors(first: Path, second: Path) -> bool:
    a, b = _tensors(first), _tensors(second)
    return a.keys() == b.keys() and all(np.array_equal(a[name], b[name]) for name in a)


def test_a_run_leaves_its_folder_the_best_model_and_its_curves(tiny_corpus_run):
    run = tiny_corpus_run
    folder = run.folder
    for name in ("config.json", "split.json", "vocabulary.json", "checkpoint.safetensors", "model.safetensors",
                 "curves.json", "curves.png", "summary.json"):  # fmt: skip
        assert (folder / name).is_file(), name
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"
    curves = json.loads((folder / "curves.json").read_text())
    assert curves["train_steps"] == list(range(5, 41, 5)) and curves["valid_steps"] == [10, 20, 30, 40]
    assert curves["ngram_valid_nll"] == pytest.approx(run.ngram_valid_nll) and curves["ngram_order"] >= 1
    assert run.best_valid_nll == min(curves["valid_nll"]) and run.steps == 40 and run.stopped == "finished"
    split = read_split(folder)
    assert (len(split.train), len(split.valid), len(split.test)) == (12, 4, 3)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["corpus"]["tunes"] == 19 and summary["best_step"] == run.best_step
    assert summary["corpus"]["skipped"] == {"unreadable": 3, "chords": 1, "voices": 1, "duplicate": 1, "too short": 1}
    saved = load_corpus_model(run.model_path)
    assert saved.config == run.config and saved.summary["step"] == run.best_step
    assert saved.vocabulary.tokens == run.vocabulary.tokens and 0 < sum(saved.keys.values()) <= 12


def test_a_result_shows_its_curves_in_a_notebook(tiny_corpus_run):
    html = tiny_corpus_run._repr_html_()
    assert '<img src="data:image/png;base64,' in html and "best validation NLL" in html and "-gram" in html
    figure = tiny_corpus_run.plot()
    assert [line.get_label() for line in figure.axes[0].get_lines()][:2] == ["train (dropout on)", "validation"]


def test_a_stopped_run_resumes_to_the_same_weights_bit_for_bit(tiny_corpus_run, tmp_path):
    """Stopped by its time limit after the first block, then resumed: the same weights, optimizer state and best model."""
    stopped = train(TINY_CORPUS, preset="folk-lstm", out=tmp_path / "run", minutes=1e-9, progress=False,
                    **TINY_CORPUS_RUN)  # fmt: skip
    assert stopped.stopped == "time limit" and stopped.steps == 5
    resumed = train(resume=tmp_path / "run", progress=False)
    assert resumed.steps == 40 and resumed.stopped == "finished"
    assert _same_tensors(resumed.folder / "checkpoint.safetensors", tiny_corpus_run.folder / "checkpoint.safetensors")
    assert _same_tensors(resumed.model_path, tiny_corpus_run.model_path)
    assert resumed.history == tiny_corpus_run.history


def test_resuming_with_another_config_is_refused_naming_the_difference(tiny_corpus_run):
    before = {path.name: path.read_bytes() for path in tiny_corpus_run.folder.iterdir()}
    with pytest.raises(NabiyaError, match=r"with another config: train\.steps is 40 in the run, 99 asked"):
        train(resume=tiny_corpus_run.folder, steps=99, progress=False)
    with pytest.raises(NabiyaError, match=r"preset is 'folk-lstm' in the run, 'folk-transformer' asked and \d+ more"):
        train(resume=tiny_corpus_run.folder, preset="folk-transformer", progress=False)
    assert {path.name: path.read_bytes() for path in tiny_corpus_run.folder.iterdir()} == before


def test_a_full_disk_during_a_checkpoint_keeps_the_last_good_one(tiny_corpus_run, tmp_path, monkeypatch):
    config = tiny_corpus_run.config
    path = tmp_path / "checkpoint.safetensors"
    skeleton = _fresh_state(tiny_corpus_run)
    write_checkpoint(path, TrainingState(10, skeleton.params, skeleton.opt_state, skeleton.carry), config)

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(NabiyaError, match=r"cannot write the checkpoint of step 20 .*: the disk is full; "
                                          r"the last good checkpoint \(step 10\) is intact"):  # fmt: skip
        write_checkpoint(path, TrainingState(20, skeleton.params, skeleton.opt_state, skeleton.carry), config)
    monkeypatch.undo()
    assert read_checkpoint(path, skeleton, config).step == 10
    assert [item.name for item in tmp_path.iterdir()] == ["checkpoint.safetensors"]  # no temporary file left


def _fresh_state(run) -> TrainingState:
    import equinox as eqx

    from nabiya.corpus_train import initial_carry, make_optimizer

    params, _ = eqx.partition(run.model, eqx.is_inexact_array)
    return TrainingState(0, params, make_optimizer(run.config.train).init(params),
                         initial_carry(run.model, run.config.train.batch_size))  # fmt: skip


def test_a_checkpoint_of_another_config_is_refused(tiny_corpus_run):
    other = tiny_corpus_run.config.replace(steps=41)
    with pytest.raises(NabiyaError, match=r"written for another config \(train\.steps is 40 there, 41 here\)"):
        read_checkpoint(tiny_corpus_run.folder / "checkpoint.safetensors", _fresh_state(tiny_corpus_run), other)


def test_presets_are_values_with_named_variants():
    lstm = corpus_preset("folk-lstm")
    assert lstm.model.kind == "lstm" and lstm.model.window == 1
    assert corpus_preset("folk-transformer").model.window == corpus_preset("folk-transformer").model.context
    variant = lstm.replace(size=64, seed=3, transpose=False, split=(0.8, 0.1, 0.1))
    assert (variant.model.size, variant.train.seed, variant.tokens.transpose, variant.corpus.split) == (
        64, 3, False, (0.8, 0.1, 0.1))
    assert type(lstm).from_json(json.loads(json.dumps(variant.to_json()))) == variant


# --- killed and interrupted runs, as a user has them: separate processes ----------------------------------

_CLI_OPTIONS = ["--corpus", *TINY_CORPUS, "--split", "60/20/20", "--split-seed", "4", "--min-count", "1",
                "--size", "24", "--layers", "1", "--embedding-size", "8", "--batch-size", "4", "--length", "16",
                "--steps-per-block", "5", "--validate-every", "10", "--checkpoint-every", "10", "--quiet"]  # fmt: skip


def _nabiya(*args, **options):
    return subprocess.Popen([sys.executable, "-m", "nabiya", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_environment(), **options)  # fmt: skip


def _environment() -> dict:
    source = str(Path(__file__).resolve().parents[1] / "src")
    return dict(os.environ, PYTHONPATH=source + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _wait_for_checkpoint(process, path: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)


@pytest.mark.slow
def test_a_run_killed_at_any_moment_resumes_to_the_weights_of_one_never_interrupted(tmp_path):
    steps = ["--steps", "300"]
    whole = _nabiya("train", *_CLI_OPTIONS, *steps, "--out", str(tmp_path / "whole"))
    assert whole.wait(timeout=300) == 0, whole.communicate()
    killed = _nabiya("train", *_CLI_OPTIONS, *steps, "--out", str(tmp_path / "killed"))
    _wait_for_checkpoint(killed, tmp_path / "killed" / "checkpoint.safetensors")
    time.sleep(0.3)  # mid-run: between checkpoints, or while one is written
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    interrupted_at = json.loads(_tensors_metadata(tmp_path / "killed" / "checkpoint.safetensors"))["step"]
    assert interrupted_at < 300
    resumed = _nabiya("train", "--resume", str(tmp_path / "killed"), "--quiet")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "300 steps, finished" in out
    for name in ("checkpoint.safetensors", "model.safetensors"):
        assert _same_tensors(tmp_path / "killed" / name, tmp_path / "whole" / name), name
    assert not [path for path in (tmp_path / "killed").iterdir() if path.name.startswith(".")]


def _tensors_metadata(path: Path) -> str:
    with open(path, "rb") as file:
        size = int.from_bytes(file.read(8), "little")
        return json.loads(file.read(size))["__metadata__"]["nabiya"]


@pytest.mark.slow
def test_ctrl_c_stops_after_a_checkpoint_with_one_line_saying_how_to_resume(tmp_path):
    run = _nabiya("train", *_CLI_OPTIONS, "--steps", "100000", "--out", str(tmp_path / "run"))
    _wait_for_checkpoint(run, tmp_path / "run" / "checkpoint.safetensors")
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    lines = [line for line in err.splitlines() if "resume" in line]
    assert lines == [f"nabiya: interrupted at step {_step(tmp_path / 'run')} of 100000 (checkpoint written); "
                     f"resume with: nabiya train --resume {tmp_path / 'run'}"]  # fmt: skip
    assert "Traceback" not in err


def _step(folder: Path) -> int:
    return json.loads(_tensors_metadata(folder / "checkpoint.safetensors"))["step"]
