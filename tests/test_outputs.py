"""Outputs: checked before work, whole or absent, never mixed, never someone else's, reproducible, sized."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from nabiya.cli import main
from nabiya.errors import NabiyaError
from nabiya.fileio import (
    OUTPUT_MANIFEST,
    check_output_file,
    check_output_folder,
    clean_leftovers,
    read_regular_file,
    staged_folder,
)
from nabiya.music.note import Note
from nabiya.music.song import Song
from nabiya.report import estimate_audio_bytes, write_songs

TUNE = Song.from_codes("g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4", title="start", meter="2/4")


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _earlier_output(folder: Path, files: dict[str, str]) -> None:
    with staged_folder(folder) as staging:
        for name, text in files.items():
            (staging / name).write_text(text)


# --- whole or absent, never mixed -----------------------------------------------------------------


def test_a_replacement_is_whole_old_files_do_not_survive_it(tmp_path):
    out = tmp_path / "out"
    _earlier_output(out, {"summary.json": "old", "only_in_the_old_run.mid": "old"})
    with staged_folder(out, force=True) as staging:
        (staging / "summary.json").write_text("new")
    assert {name: data for name, data in _files(out).items() if name != OUTPUT_MANIFEST} == {"summary.json": b"new"}
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_a_write_that_fails_halfway_leaves_the_earlier_output_exactly_as_it_was(tmp_path):
    out = tmp_path / "out"
    _earlier_output(out, {"summary.json": "seed 1", "song.musicxml": "seed 1"})
    before = _files(out)
    with pytest.raises(NabiyaError) as caught:
        with staged_folder(out, force=True) as staging:
            (staging / "summary.json").write_text("seed 2")
            raise NabiyaError(f"{staging / 'song.mid'}: cannot write the file")
    assert _files(out) == before
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging folder left
    # The message names what the user gave, not the hidden staging folder.
    assert str(caught.value) == f"{out / 'song.mid'}: cannot write the file"


def test_a_failed_write_creates_no_folder_not_even_the_parents(tmp_path, monkeypatch):
    import nabiya.report

    def broken(song, path):
        raise NabiyaError(f"{path}: the disk is full")

    monkeypatch.setattr(nabiya.report, "_write_song", broken)
    with pytest.raises(NabiyaError, match="deep/er/out/generated"):
        write_songs({"generated": TUNE}, tmp_path / "deep" / "er" / "out")
    assert os.listdir(tmp_path) == []


def test_a_run_that_fails_before_training_creates_nothing(tmp_path):
    import nabiya

    with pytest.raises(NabiyaError, match="a window of 4 needs at least 5"):
        nabiya.run("mlp", song="g8 e8 e4 f8", epochs=1, progress=False, out=tmp_path / "new" / "run")
    with pytest.raises(NabiyaError, match="epochs must be at least 1"):
        nabiya.compare(epochs=0, progress=False, out=tmp_path / "cmp")
    assert os.listdir(tmp_path) == []


# --- never someone else's --------------------------------------------------------------------------


def test_an_earlier_output_is_replaced_only_with_force(tmp_path):
    out = tmp_path / "out"
    _earlier_output(out, {"summary.json": "{}"})
    with pytest.raises(NabiyaError, match="already holds an earlier output of nabiya: add --force"):
        check_output_folder(out)
    check_output_folder(out, force=True)
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty")  # an empty folder is fine without force


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_with_anything_nabiya_did_not_write_is_never_replaced(tmp_path, force):
    out = tmp_path / "out"
    _earlier_output(out, {"summary.json": "{}"})
    (out / "my notes.txt").write_text("mine")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.csv").write_text("mine")
    for folder, name in ((out, "my notes.txt"), (tmp_path / "plain", "data.csv")):
        with pytest.raises(NabiyaError, match=f"holds files nabiya did not write \\('{name}'\\)"):
            with staged_folder(folder, force=force):
                pass
    assert (out / "my notes.txt").read_text() == "mine" and (tmp_path / "plain" / "data.csv").read_text() == "mine"


def test_output_locations_are_checked_without_creating_anything(tmp_path):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    cases = [
        (lambda: check_output_folder(tmp_path / ("x" * 300)), "this file system allows at most"),
        (lambda: check_output_folder(tmp_path / "a-file"), "a file of that name exists"),
        (lambda: check_output_folder(tmp_path / "a-file" / "run"), "is a file, not a folder"),
        (lambda: check_output_file(tmp_path / "a-folder"), "it is a folder"),
        (lambda: check_output_file(tmp_path / ("m" * 300 + ".safetensors")), "this file system allows at most"),
        (lambda: check_output_file("/proc/nabiya.safetensors"), "cannot write to folder '/proc'"),
    ]
    for check, message in cases:
        with pytest.raises(NabiyaError, match=message):
            check()
    check_output_folder(tmp_path / "new" / "deeper")
    check_output_file(tmp_path / "new" / "model.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["a-file", "a-folder"]


def test_save_and_out_are_checked_before_training(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    for args, names in (
        (["--save", str(tmp_path / "models")], "models"),
        (["--save", str(tmp_path / ("m" * 250 + ".safetensors"))], "mmmm"),
        (["--out", str(tmp_path / ("o" * 256))], "oooo"),
    ):
        code = main(["run", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run"), *args])
        err = capsys.readouterr().err
        assert code == 2 and names in err, err
    assert os.listdir(tmp_path) == ["models"]


@pytest.mark.slow
def test_a_250_character_name_works_for_the_run_folder_and_the_model(tmp_path, capsys):
    """Temporary names do not grow with the name given: any name the file system allows can be written."""
    out, model = tmp_path / ("o" * 250), tmp_path / ("m" * 240 + ".safetensors")
    code = main(["run", "mlp", "--epochs", "1", "--quiet", "--out", str(out), "--save", str(model)])
    assert code == 0, capsys.readouterr().err
    assert (out / "summary.json").exists() and model.exists()
    assert sorted(os.listdir(tmp_path)) == sorted([out.name, model.name])


# --- leftovers of killed writes --------------------------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_a_killed_write_are_cleaned_only_when_provably_ours_and_stale(tmp_path):
    from nabiya.fileio import _HOST

    dead, alive = _dead_pid(), os.getpid()

    def leftover(pid, host=_HOST, marker=None, files=("song.mid",), suffix="abc123"):
        folder = tmp_path / f".nabiya-{host}-{pid}-{suffix}.tmp"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("half")
        if marker is not None:
            (folder / ".nabiya-staging.json").write_text(json.dumps(marker))
        return folder

    ours = {"written_by": "nabiya", "target": "out", "role": "new", "pid": dead}
    stale = leftover(dead, marker=ours, suffix="stale")
    stale_file = tmp_path / f".nabiya-{_HOST}-{dead}-f1le.tmp"
    stale_file.write_text("half a file")
    running = leftover(alive, marker=ours, suffix="running")
    elsewhere = leftover(dead, host="0" * 8 if _HOST != "0" * 8 else "1" * 8, marker=ours, suffix="other")
    unmarked = leftover(dead, suffix="unmarked")
    users = tmp_path / ".nabiya-notes.tmp"
    users.mkdir()
    aside = leftover(dead, marker={**ours, "target": "earlier", "role": "old"}, files=("summary.json",), suffix="old")

    check_output_folder(tmp_path / "out")
    assert not stale.exists() and not stale_file.exists()
    assert running.exists() and elsewhere.exists() and unmarked.exists() and users.exists()
    # An earlier output renamed aside whose replacement never arrived is put back.
    assert not aside.exists() and (tmp_path / "earlier" / "summary.json").read_text() == "half"
    assert not (tmp_path / "earlier" / ".nabiya-staging.json").exists()
    assert clean_leftovers(tmp_path) == []


# --- reading: special files and size bounds ----------------------------------------------------------


def test_special_files_are_refused_without_blocking_and_reads_are_bounded(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NabiyaError, match="named pipe"):
        read_regular_file(fifo, limit=100)
    with pytest.raises(NabiyaError, match="a device"):
        read_regular_file("/dev/zero", limit=100)
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(NabiyaError, match="more than the limit of 100"):
        read_regular_file(tmp_path / "big", limit=100)
    assert read_regular_file(tmp_path / "big", limit=101) == b"x" * 101


# --- audio: optional, capped, announced --------------------------------------------------------------


def test_no_audio_leaves_out_the_wav_files_and_a_long_song_gets_none(tmp_path):
    written = write_songs({"generated": TUNE}, tmp_path / "quiet", audio=False)
    assert written and not [path for path in written if path.suffix == ".wav"]
    long_song = Song([Note(60, Fraction(4))] * 60, title="long", tempo_bpm=10)  # 24 minutes
    assert estimate_audio_bytes([long_song]) == 0 and estimate_audio_bytes([TUNE], audio=False) == 0
    with pytest.warns(UserWarning, match="no WAV for 'long': 24 minutes of audio is over the 20-minute limit"):
        written = write_songs({"long": long_song}, tmp_path / "long")
    assert not [path for path in written if path.suffix == ".wav"]


def test_a_large_output_is_announced_before_training(tmp_path, capsys, monkeypatch):
    import nabiya.experiment

    def stop(*args, **kwargs):
        raise NabiyaError("stopped before training")

    monkeypatch.setattr(nabiya.experiment, "run", stop)
    song = tmp_path / "long.txt"
    song.write_text("% tempo: 40\n" + "c1 d1 e1 f1 " * 40)  # 16 minutes: under the cap, three WAVs
    code = main(["run", "--song", str(song), "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 2
    assert "run will hold about 127 MB of WAV files (3 of them); --no-audio leaves them out" in err[0]
    code = main(["run", "--song", str(song), "--quiet", "--no-audio", "--out", str(tmp_path / "run")])
    assert len(capsys.readouterr().err.splitlines()) == 1


# --- reproducible ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_same_run_writes_the_same_folder_byte_for_byte(tmp_path):
    import nabiya

    for name in ("first", "second"):
        nabiya.run("stateful2", epochs=3, progress=False, out=tmp_path / name)
    first, second = _files(tmp_path / "first"), _files(tmp_path / "second")
    assert sorted(first) == sorted(second)
    summary = json.loads(first["summary.json"])
    assert "created" not in summary and "train_seconds" not in summary
    differ = sorted(name for name in first if first[name] != second[name])
    assert [name for name in differ if not name.endswith(".musicxml")] == []
    if differ:
        pytest.xfail(f"MusicXML part IDs are random until the music layer's fix (issue 8.11): {differ}")


def test_generate_out_force_and_no_audio_from_the_command_line(model_file, tmp_path, capsys):
    out = tmp_path / "gen"
    args = ["generate", str(model_file), "--length", "6", "--out", str(out), "--no-audio"]
    assert main(args) == 0
    assert "generated.mid" in capsys.readouterr().err
    assert not list(out.glob("*.wav")) and (out / "generated.mid").exists()
    assert main(args) == 2 and "add --force to replace it" in capsys.readouterr().err
    assert main([*args[:-1], "--force"]) == 0
    assert (out / "generated.wav").exists()
