"""The corpus commands: train, evaluate and generate's corpus branch; bad input is one line, exit 2, nothing lost."""

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


NOT_A_RUN = "not-a-run"


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--corpus", "nosuchbook"], "unknown corpus 'nosuchbook': not a file or folder, nor a book music21 "
                                              "ships; the books are default, airdsAirs"),
        (["train", "--corpus", TINY_CORPUS[1], "--min-notes", "100000"], "no tunes to learn from (13 too short)"),
        (["train", "--resume", NOT_A_RUN], "is not a run folder"),
        (["train", "--steps", "0"], "must be at least 1, not 0"),
        (["train", "--dropout", "1.5"], "dropout is a rate from 0 up to (not including) 1, not 1.5"),
        (["train", "--preset", "folk-gru"], "invalid choice: 'folk-gru'"),
        (["train", "--minutes", "0"], "must be above 0, not 0"),
        (["train", "--validate-every", "7"], "validate every (7) must be a multiple of the steps per block (10)"),
        (["train", "--preset", "folk-transformer", "--size", "30"], "a transformer's size (30) must divide by its heads"),
        (["evaluate", "nosuch.safetensors"], "cannot load model 'nosuch.safetensors': no such file"),
        (["evaluate", TINY_CORPUS[1]], "not a model"),
        (["evaluate", NOT_A_RUN, "--samples", "-1"], "--samples must be at least 0, not -1"),
        (["generate", "nabiya", "--count", "3"], "--count is for corpus models"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, message, capsys, tmp_path):
    args = [str(tmp_path / "empty") if arg == NOT_A_RUN else arg for arg in args]
    (tmp_path / "empty").mkdir()
    if args[0] == "train" and "--resume" not in args:
        args += ["--out", str(tmp_path / "run")]
    code, out, err = _run_cli(args, capsys)
    assert code == 2, err
    assert err.startswith("nabiya: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--resume", "RUN", "--steps", "99"], "with another config: train.steps is 40 in the run, 99 asked"),
        (["train", "--resume", "RUN", "--out", "elsewhere"], "--resume continues a run in its own folder"),
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
