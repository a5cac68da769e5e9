"""The corpus commands: train, evaluate and generate's corpus branch (their bad input: tests/test_bad_input.py,
and here what needs a trained run)."""

import json

import pytest
from conftest import TINY_CORPUS, TINY_CORPUS_RUN

from nabiya.cli import main

_OPTIONS = {"steps": "--steps", "size": "--size", "layers": "--layers", "embedding_size": "--embedding-size",
            "batch_size": "--batch-size", "length": "--length", "steps_per_block": "--steps-per-block",
            "validate_every": "--validate-every", "checkpoint_every": "--checkpoint-every",
            "split_seed": "--split-seed", "min_count": "--min-count"}  # fmt: skip
TINY_OPTIONS = ["--corpus", *TINY_CORPUS, "--split", "60/20/20", "--quiet"] + [
    text for name, option in _OPTIONS.items() for text in (option, str(TINY_CORPUS_RUN[name]))]


def _run_cli(args, capsys):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _snapshot(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_train_reports_the_tunes_it_skipped_and_evaluate_and_generate_use_its_run(tiny_corpus_run, tmp_path, capsys):
    code, out, err = _run_cli(["train", *TINY_OPTIONS, "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    assert "corpus: 19 tunes (train/valid/test 12/4/3); skipped 7 (3 unreadable, 1 chords, 1 voices" in err
    assert "folk-lstm: 40 steps, finished; best validation NLL" in out
    code, out, err = _run_cli(["evaluate", tmp_path / "run", "--json", "--samples", "3"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["positions"] == report["model"]["positions"] == report["ngram"]["positions"]
    assert report["samples"]["count"] == 3 and 0 <= report["samples"]["ended_share"] <= 1
    assert json.loads((tmp_path / "run" / "evaluation.json").read_text())["positions"] == report["positions"]
    code, out, err = _run_cli(["evaluate", tmp_path / "run", "--quiet"], capsys)
    assert code == 0 and "-gram" in out and ("% below" in out or "% above" in out), err
    code, out, err = _run_cli(["generate", tmp_path / "run" / "model.safetensors", "--count", "2", "--meter", "6/8",
                               "--key", "D", "--length", "30", "--seed", "3", "--out", tmp_path / "tunes"], capsys)
    assert code == 0, err
    assert out.count("M:6/8") == 2 and out.count("K:D") == 2
    assert {path.name for path in (tmp_path / "tunes").iterdir()} >= {"tune_02.mid", "tune_02.abc", "tune_02.svg"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--resume", "RUN", "--steps", "99"], "with another config: train.steps is 40 in the run, 99 asked"),
        (["train", *TINY_OPTIONS, "--out", "RUN"], "is already a run: resume it with 'nabiya train --resume"),
        (["generate", "RUN", "--meter", "7/9"], "'7/9' is not a meter"),
        (["generate", "RUN", "--key", "H"], "'H' is not a key"),
        (["generate", "RUN", "--meter", "5/4"], "no training tune has meter 5/4"),
        (["generate", "RUN", "--strategy", "beam"], "beam search continues a primer"),
    ],
)
def test_bad_input_about_a_run_leaves_the_run_as_it_was(args, message, tiny_corpus_run, capsys):
    before = _snapshot(tiny_corpus_run.folder)
    code, out, err = _run_cli([str(tiny_corpus_run.folder) if arg == "RUN" else arg for arg in args], capsys)
    assert code == 2, err
    assert err.startswith("nabiya: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _snapshot(tiny_corpus_run.folder) == before
