"""Telling a built-in song, a file and note codes apart, from the text alone."""

import os
from pathlib import Path

import pytest

from nabiya.cli import main
from nabiya.errors import NabiyaError
from nabiya.music.formats import read_song, write_song
from nabiya.music.song import Song
from nabiya.music.sources import song_from_source

LONG_CODES = " ".join(["g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4"] * 30)  # 390 notes, 1,169 bytes


def test_note_codes_longer_than_a_file_name_are_read_without_touching_the_file_system(monkeypatch):
    assert len(LONG_CODES.encode()) > 255  # the longest file name most systems allow

    def no_file_system(*args, **kwargs):
        raise AssertionError(f"the text was tried as a path: {args[:1]!r}")

    for name in ("stat", "open", "lstat"):
        monkeypatch.setattr(os, name, no_file_system)
    song = song_from_source(LONG_CODES)
    assert len(song) == 390 and song.codes[:3] == ["g8", "e8", "e4"]


@pytest.mark.parametrize("command", [["convert", LONG_CODES], ["convert", LONG_CODES.replace(" ", ",")]])
def test_convert_takes_long_note_codes_inline(command, tmp_path, capsys):
    out = tmp_path / "long.mid"
    assert main([*command, str(out)]) == 0, capsys.readouterr().err
    assert len(read_song(out)) == 390


@pytest.mark.parametrize(
    "text, title",
    [("twinkle", "Twinkle, Twinkle, Little Star"), ("Frère Jacques", "Frère Jacques"), (None, "나비야 (Butterfly)")],
)
def test_built_in_songs_by_name_or_title(text, title):
    assert song_from_source(text).title == title


def test_files_by_extension_and_codes_with_their_header_comments(tmp_path):
    path = write_song(Song.from_codes("c4 d4 e2", title="Up"), tmp_path / "up.mid")
    assert song_from_source(str(path)).title == "Up"
    assert song_from_source(path).title == "Up"
    song = song_from_source("% title: Inline\n% tempo: 90\ng8 e8 e4\n")
    assert (song.title, song.tempo_bpm, song.codes) == ("Inline", 90, ["g8", "e8", "e4"])
    assert song_from_source(["g8", "e8"]).codes == ["g8", "e8"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("ode-to-joy", (r"^'ode-to-joy' is neither a built-in song nor note codes: did you mean 'ode_to_joy'\? "
                        r"The built-in songs are nabiya, twinkle, .*yankee_doodle")),
        ("twinkel", "did you mean 'twinkle'"),
        ("tune.ab", r"^tune\.ab: cannot read \.ab files \(did you mean tune\.abc\?\): nabiya reads \.abc"),
        ("missing.abc", r"^missing\.abc: no such file"),
        ("songs/tune", "cannot read a file without an extension"),
        ("g8 e8 x8 d4", r"^unknown note code 'x8' \(line 1, note 3\)"),
        ("   ", "no song given"),
        (42, "not int"),
    ],
)
def test_what_is_none_of_these_is_one_clear_error(text, message):
    with pytest.raises(NabiyaError, match=message) as error:
        song_from_source(text)
    assert "\n" not in str(error.value)


def test_a_tune_is_chosen_only_in_files(tmp_path):
    with pytest.raises(NabiyaError, match="only in a file"):
        song_from_source("g8 e8 e4", tune=2)
    with pytest.raises(NabiyaError, match="only in a file"):
        song_from_source("twinkle", tune=1)
    path = tmp_path / "two.abc"
    path.write_text("X:1\nT:One\nK:C\nCDE|\n\nX:2\nT:Two\nK:C\nGAB|\n")
    assert song_from_source(str(path), tune=2).title == "Two"


def test_the_cli_names_the_built_in_songs_for_an_unknown_name(tmp_path, capsys):
    assert main(["convert", "ode-to-joy", str(tmp_path / "x.mid")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nabiya: error: 'ode-to-joy' is neither a built-in song") and "ode_to_joy" in err
    assert err.count("\n") == 1 and not Path(tmp_path / "x.mid").exists()
