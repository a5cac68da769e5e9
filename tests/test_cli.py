"""The CLI: help everywhere, one-line errors with exit status 2, run folders, and a fast --help."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nabiya.cli import build_parser, main

COMMANDS = ["run", "compare", "songs", "convert", "generate", "serve", "analyze", "corpus", "sweep", "train",
            "evaluate"]


def _run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"nabiya {command}" in out


def test_every_command_is_listed_in_the_top_level_help():
    help_text = build_parser().format_help()
    for command in COMMANDS:
        assert command in help_text


def test_help_does_not_import_jax_and_answers_quickly():
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from nabiya.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('JAX' if 'jax' in sys.modules else 'NOJAX', 'MUSIC21' if 'music21' in sys.modules else 'NOMUSIC21')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "NOJAX" in out and "NOMUSIC21" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nosuch"], "unknown preset 'nosuch'"),
        (["run", "--epochs", "0"], "epochs must be at least 1"),
        (["run", "--epochs", "many"], "expected a whole number"),
        (["run", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["run", "--song", "g8 e8 e4 x9 d8 d4"], "unknown note code 'x9' (line 1, note 4)"),
        (["run", "--song", "g8 e8 e4 f8"], "has 4 notes: a window of 4 needs at least 5"),
        (["frobnicate"], "invalid choice"),
        (["serve", "--port", "70000"], "a port is from 0 to 65535, not 70000"),
        (["serve", "--port", "http"], "expected a whole number, not 'http'"),
        (["serve", "--workers", "0"], "must be at least 1, not 0"),
        (["serve", "--host", "192.0.2.1", "--port", "0"], "cannot listen on 192.0.2.1:0: Cannot assign requested address"),
        (["serve", "--token", " "], "--token must not be empty"),
        (["analyze", "--window", "0"], "must be at least 1, not 0"),
        (["analyze", "--window", "54"], "a window of 54 leaves no note to predict: 나비야 (Butterfly) has 54 notes"),
        (["analyze", "--max-window", "60"], "a window of 60 leaves no note to predict"),
        (["analyze", "g8"], "has 1 note: analysing it needs at least 2"),
        (["analyze", "g8 e8 x9"], "unknown note code 'x9' (line 1, note 3)"),
        (["analyze", "--tune", "3"], "--tune picks a tune of an ABC file given as SONG"),
        (["analyze", "nosuch.abc"], "nosuch.abc"),
        (["analyze", "--out", "ceiling.pdf"], "the plot is written as PNG: give a .png file or a folder"),
        (["sweep", "--seeds", "5-2"], "--seeds: the range 5-2 runs backwards (write 2-5)"),
        (["sweep", "--seeds", "a-b"], "--seeds: 'a-b' is not a number or a range like 0-31"),
        (["sweep", "--seeds", "1,1"], "seed 1 is given twice"),
        (["sweep", "--windows", "0-2"], "a window is a whole number of notes, at least 1, not 0"),
        (["sweep", "mlp", "--windows", "60"], "a window of 60 needs at least 61"),
        (["sweep", "nosuch"], "unknown preset 'nosuch'"),
        (["sweep", "--backprop-windows", "0"], "backprop windows"),
        (["sweep", "--backprop-windows", "x"], "--backprop-windows"),
        (["sweep", "mlp", "--backprop-windows", "8"], "backprop windows 8: only a stateful model"),
        (["run", "--repeats", "twice"], "invalid choice: 'twice'"),
        (["compare", "--repeats", "twice"], "invalid choice: 'twice'"),
        (["convert", "tune.abc", "tune.mid", "--repeats", "twice"], "invalid choice: 'twice'"),
        (["generate", "nabiya.model", "--repeats", "all"], "invalid choice: 'all'"),
        (["convert", "corpus.jsonl", "tune.mid", "--repeats", "played"], "keeps each tune's notes as written"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, message, capsys, tmp_path):
    writes = args[0] in ("run", "analyze") and "--out" not in args
    code, out, err = _run_cli(args + ["--out", str(tmp_path / "run")] if writes else args, capsys)
    assert code == 2
    assert err.startswith("nabiya: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_an_unwritable_output_folder_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, out, err = _run_cli(["run", "--epochs", "1", "--quiet", "--out", str(blocker / "run")], capsys)
    assert code == 2 and "cannot write to folder" in err and str(blocker) in err
    assert err.count("\n") == 1
    assert blocker.read_text() == "not a folder"


def test_run_writes_a_run_folder(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = _run_cli(["run", "stateful2", "--epochs", "20", "--seed", "3", "--quiet", "--out", str(out_dir)],
                              capsys)
    assert code == 0, err
    assert "stateful2: accuracy" in out
    summary = json.loads((out_dir / "summary.json").read_text())
    for key in ("preset", "seed", "epochs", "accuracy", "one_step", "full_song", "loss_history", "config"):
        assert key in summary
    assert "train_seconds" not in summary and "created" not in summary  # a reproducible folder: timings are printed
    assert summary["preset"] == "stateful2" and summary["seed"] == 3 and summary["epochs"] == 20
    assert len(summary["loss_history"]) == 20
    truth = summary["song"]["notes"][4:]
    for prediction in ("one_step", "full_song"):
        notes = summary[prediction]["notes"]
        assert len(notes) == 50 and summary[prediction]["matches"] == sum(p == t for p, t in zip(notes, truth))
    assert summary["config"]["model"]["stateful"] is True
    assert (out_dir / "loss.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("song", "one_step", "full_song"):
        assert (out_dir / f"{name}.wav").read_bytes()[:4] == b"RIFF"
        assert (out_dir / f"{name}.mid").read_bytes()[:4] == b"MThd"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


@pytest.mark.slow
def test_the_cli_keeps_compiled_programs_between_runs(tmp_path):
    """A second `nabiya run` skips compilation: the CLI fills a persistent XLA cache (a subprocess, so the
    test's own JAX config is not the one under test)."""
    import os

    cache = tmp_path / "xla"
    env = dict(os.environ, NABIYA_CACHE_DIR=str(cache))
    subprocess.run([sys.executable, "-m", "nabiya", "run", "mlp", "--epochs", "2", "--quiet", "--out",
                    str(tmp_path / "run")], env=env, check=True, capture_output=True)
    assert cache.is_dir() and any(cache.iterdir())


@pytest.mark.slow
def test_compare_prints_one_table_and_draws_four_curves(tmp_path, capsys):
    code, out, err = _run_cli(["compare", "--epochs", "5", "--out", str(tmp_path / "cmp")], capsys)
    assert code == 0, err
    for name in ("mlp", "lstm", "stateful", "stateful2"):
        assert name in out
        assert (tmp_path / "cmp" / name / "summary.json").exists()
    assert "100% at epoch" in out and "seconds" in out
    assert "mlp, lstm: a 4-note window cannot tell 9 places apart" in out and "at most 92% (46/50)" in out
    table = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["presets"]
    assert [row["preset"] for row in table] == ["mlp", "lstm", "stateful", "stateful2"]
    assert (tmp_path / "cmp" / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "nabiya", "run", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "stateful2" in result.stdout


def test_generate_with_defaults_replays_the_rest_of_the_song(trained, tmp_path, capsys):
    """A model saved from `nabiya run stateful2` prints exactly the rest of 나비야."""
    from nabiya.music.songs import nabiya

    model_file = trained("stateful2").save(tmp_path / "nabiya.safetensors")
    code, out, err = _run_cli(["generate", str(model_file)], capsys)
    assert code == 0, err
    assert out.strip() == " ".join(nabiya().codes[4:])
    code, out, err = _run_cli(["generate", str(model_file), "--top-p", "0.9", "--length", "12", "--seed", "4",
                               "--out", str(tmp_path / "gen")], capsys)
    assert code == 0, err
    assert len(out.split()) == 12
    assert (tmp_path / "gen" / "generated.mid").read_bytes()[:4] == b"MThd"
    assert (tmp_path / "gen" / "generated.wav").read_bytes()[:4] == b"RIFF"


def test_run_save_writes_a_model_that_generate_reads(tmp_path, capsys):
    model_file = tmp_path / "m.safetensors"
    code, out, err = _run_cli(["run", "stateful", "--epochs", "3", "--quiet", "--out", str(tmp_path / "run"),
                               "--save", str(model_file)], capsys)
    assert code == 0, err
    code, out, err = _run_cli(["generate", str(model_file), "--length", "7"], capsys)
    assert code == 0, err
    assert len(out.split()) == 7


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--top-p", "1.5"], "top-p must be in (0, 1]"),
        (["--temperature", "0"], "temperature must be a number above 0"),
        (["--primer", "g8 e8"], "the primer has 2 notes"),
        (["--primer", "g8 e8 e4 a#4"], "note 4 of the primer (a#4) is not in the model's vocabulary"),
    ],
)
def test_generate_bad_options_are_one_line_errors(model_file, tmp_path, capsys, extra, message):
    code, out, err = _run_cli(["generate", str(model_file), *extra, "--out", str(tmp_path / "gen")], capsys)
    assert code == 2 and err.startswith("nabiya: error: ") and message in err
    assert err.count("\n") == 1 and not (tmp_path / "gen").exists()


def test_generate_refuses_a_file_that_is_not_a_model(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    code, out, err = _run_cli(["generate", str(bad)], capsys)
    assert code == 2 and "cannot load model" in err and str(bad) in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.abc", "X:1\nT:Broken\nM:4/4\nL:1/0\nK:C\nCDEF|\n", "bad.abc"),
        ("bad.musicxml", "<score-partwise><part id='P1'><measure>", "bad.musicxml"),
        ("bad.mid", "MThd garbage", "bad.mid"),
        ("empty.txt", "% nothing here\n", "empty.txt"),
        ("chords.abc", "X:1\nT:Chords\nM:4/4\nL:1/4\nK:C\n[CEG] D E F|\n", "chords.abc"),
    ],
)
def test_broken_song_files_are_one_line_errors_and_nothing_is_written(tmp_path, capsys, name, content, message):
    song_file = tmp_path / name
    song_file.write_text(content)
    for args in (["convert", str(song_file), str(tmp_path / "out.mid")],
                 ["run", "--song", str(song_file), "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")]):
        code, out, err = _run_cli(args, capsys)
        assert code == 2, err
        assert err.startswith("nabiya: error: ") and message in err and err.count("\n") == 1
        assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_convert_round_trips_through_the_command_line(tmp_path, capsys):
    from nabiya.music.formats import read_song
    from nabiya.music.songs import get_song

    for suffix in (".abc", ".mid", ".musicxml", ".txt"):
        out_file = tmp_path / f"ode{suffix}"
        code, out, err = _run_cli(["convert", "ode_to_joy", str(out_file)], capsys)
        assert code == 0, err
        assert [n.token for n in read_song(out_file).notes] == [n.token for n in get_song("ode_to_joy").notes]
    code, out, err = _run_cli(["convert", "ode_to_joy", str(tmp_path / "ode.svg")], capsys)
    assert code == 0 and (tmp_path / "ode.svg").read_text().lstrip().startswith("<svg")


def test_songs_lists_the_built_in_songs(capsys):
    code, out, err = _run_cli(["songs"], capsys)
    assert code == 0
    for name in ("nabiya", "twinkle", "ode_to_joy"):
        assert name in out


@pytest.mark.slow
def test_run_can_choose_the_note_encoding(tmp_path, capsys):
    code, out, err = _run_cli(["run", "stateful", "--song", "ode_to_joy", "--features", "onehot", "--epochs", "2",
                               "--quiet", "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["model"]["features"] == "onehot"
    code, out, err = _run_cli(["run", "--features", "embedding"], capsys)
    assert code == 2 and "invalid choice: 'embedding'" in err


def test_analyze_prints_the_table_the_ambiguous_windows_and_the_memory(capsys):
    code, out, err = _run_cli(["analyze"], capsys)
    assert code == 0, err
    assert "46/50  92%" in out and "46/46 100%" in out
    assert "every continuation is unique from a window of 8 notes" in out
    assert "f8 d8 d4 c8  → d8 (note 8) · e8 (notes 22, 49)" in out
    assert "must remember 8 notes back" in out and "only the song's start tells them apart" in out
    assert "mlp (window 4), lstm (window 4): at most 92% by construction" in out


def test_analyze_needs_no_jax():
    code = ("import sys, io, contextlib\nfrom nabiya.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['analyze']) == 0\n"
            "print('JAX' if 'jax' in sys.modules else 'NOJAX')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "NOJAX\n"


def test_analyze_json_and_plot(tmp_path, capsys):
    code, out, err = _run_cli(["analyze", "twinkle", "--window", "3", "--json", "--out", str(tmp_path / "a.png")], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["title"].startswith("Twinkle") and data["windows"][2]["window"] == 3
    assert data["presets"]["mlp"]["verdict"] == "ceiling" and data["presets"]["stateful2"]["verdict"] == "state"
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    code, out, err = _run_cli(["analyze", "c4 d4 e4 c4 c4 d4 e4 g4", "--out", str(tmp_path / "folder")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "folder").iterdir() if not p.name.startswith(".")) == ["analysis.json", "ceiling.png"]
    assert json.loads((tmp_path / "folder" / "analysis.json").read_text())["unique_window"] == 4


def test_analyze_reads_one_tune_of_an_abc_book(capsys):
    """A tune of O'Neill's 1850 collection (shipped with music21) whose repeated phrase needs 15 notes of memory."""
    from pathlib import Path

    import music21

    book = Path(music21.__file__).parent / "corpus" / "oneills1850" / "0001-0050.abc"
    code, out, err = _run_cli(["analyze", str(book), "--tune", "21", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["title"] == "The Groves of Blackpool" and data["memory_notes"] == 15


def test_run_says_when_a_preset_cannot_reach_100_percent(trained, capsys):
    from nabiya.display import print_run

    print_run(trained("mlp"))
    assert "a 4-note window cannot tell 9 places apart (4 windows continued in more than one way): " \
        "at most 92% (46/50) · see nabiya analyze" in capsys.readouterr().out
    print_run(trained("stateful2"))
    assert "at most" not in capsys.readouterr().out
# --- nabiya corpus -------------------------------------------------------------------------------

CORPUS_FIXTURES = Path(__file__).parent / "data" / "corpus"


@pytest.mark.parametrize(
    "args, message",
    [
        (["corpus", "info", "nosuchbook"], "unknown corpus 'nosuchbook': not a file or folder, nor a book"),
        (["corpus", "info", "--split", "90/5"], "expected three shares such as 90/5/5"),
        (["corpus", "info", "--split", "90/5/10"], "add up to 105, not 100"),
        (["corpus", "info", "--augment", "2"], "needs the tonic as a token"),
        (["corpus", "info", "--no-transpose", "--augment", "12"], "N is 1 to 11 semitones"),
        (["corpus", "info", "--min-count", "0"], "must be at least 1"),
        (["corpus", "info", "--rare", "keep"], "invalid choice: 'keep'"),
        (["corpus", "info", "{only_broken}"], "no tunes to learn from (1 unreadable)"),
        (["corpus", "info", "{pdf}"], "cannot read .pdf as a corpus"),
        (["corpus", "frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_corpus_bad_input_is_one_line_and_exit_status_2(args, message, capsys, tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "broken.mid").write_bytes((CORPUS_FIXTURES / "broken.mid").read_bytes())
    (tmp_path / "score.pdf").write_bytes(b"%PDF-1.4")
    paths = {"{only_broken}": str(tmp_path / "broken"), "{pdf}": str(tmp_path / "score.pdf")}
    code, out, err = _run_cli([paths.get(arg, arg) for arg in args], capsys)
    assert code == 2
    assert err.startswith("nabiya: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_corpus_info_reads_a_partly_broken_folder_and_reports_the_skips(capsys):
    code, out, err = _run_cli(["corpus", "info", str(CORPUS_FIXTURES), "--json", "--min-count", "1"], capsys)
    assert code == 0, err
    info = json.loads(out)
    assert info["tunes"] == 6
    assert info["skipped"] == {"unreadable": 3, "chords": 1, "voices": 1, "duplicate": 1, "too short": 1}
    assert info["meters"]["4/4"] == 3 and info["vocabulary"]["min_count"] == 1
    assert info["split"]["train"] + info["split"]["valid"] + info["split"]["test"] == 6
    code, out, err = _run_cli(["corpus", "info", str(CORPUS_FIXTURES / "tunes.abc"), "--quiet"], capsys)
    assert code == 0, err
    for shown in ("3 tunes", "skipped, by reason", "chords", "voices", "meters", "notes per tune", "vocabulary",
                  "rare tokens"):
        assert shown in out
