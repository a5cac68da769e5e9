"""What nabiya refuses to read or render, quickly and in one line: special files, huge values, long songs."""

import io
import os
import re
import wave
import zipfile
from fractions import Fraction

import pytest
from time_limits import time_limit

from nabiya.errors import NabiyaError
from nabiya.music import limits
from nabiya.music.audio import can_render_audio
from nabiya.music.formats import read_file_bytes, read_song, write_song
from nabiya.music.note import Note, parse_codes
from nabiya.music.scores import song_to_musicxml
from nabiya.music.song import Song

# --- files that are not song files --------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a Unix thing")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "song.mid"
    os.mkfifo(fifo)
    with time_limit(10), pytest.raises(NabiyaError, match=r"song\.mid: is a named pipe \(FIFO\), not a regular file"):
        read_song(fifo)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_is_refused_without_reading_it():
    with time_limit(10), pytest.raises(NabiyaError, match=r"^/dev/zero: is a device, not a regular file"):
        read_file_bytes("/dev/zero")


def test_a_file_larger_than_the_limit_is_refused(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"c4 " * 1000)
    assert read_file_bytes(path, max_bytes=3000) == b"c4 " * 1000
    with pytest.raises(NabiyaError, match=r"^.*big\.txt: the file is larger than nabiya's limit"):
        read_file_bytes(path, max_bytes=2999)


def test_a_folder_and_a_missing_file_are_named(tmp_path):
    with pytest.raises(NabiyaError, match="is a folder"):
        read_file_bytes(tmp_path)
    with pytest.raises(NabiyaError, match="no such file"):
        read_file_bytes(tmp_path / "nothing.mid")


# --- huge values: refused as notes are read, naming where ---------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("c4 d4\nc:999999999", r"note code 'c:999999999' \(PATH: line 2, note 3\): .*longer than nabiya's limit of 256"),
        ("c4 c:1/999999999", r"note code 'c:1/999999999' \(PATH: line 1, note 2\): .*a denominator of at most 65535"),
        ("% tempo: 0.0000001\nc4", r"^PATH: line 1: a tempo of 0\.0000001 is outside nabiya's range of 1 to 1000 bpm"),
        ("% tempo: 99999999999\nc4", r"^PATH: line 1: a tempo of 99999999999 is outside"),
        ("% pickup: 1e400\nc4", r"^PATH: line 1: pickup '1e400' is not a number of quarter notes"),
        ("c\u0664 d4", r"unknown note code 'c\u0664' \(PATH: line 1, note 1\)"),  # an Arabic-Indic four
    ],
)
def test_huge_or_foreign_values_in_a_codes_file_are_refused_naming_file_and_place(tmp_path, text, message):
    path = tmp_path / "tune.txt"
    path.write_text(text, encoding="utf-8")
    with time_limit(10), pytest.raises(NabiyaError) as error:
        read_song(path)
    assert re.search(message.replace("PATH", re.escape(str(path))), str(error.value)), str(error.value)
    assert "\n" not in str(error.value)


def test_a_huge_duration_never_reaches_the_engraver(tmp_path):
    path = tmp_path / "huge.txt"
    path.write_text("c:999999999\n")
    with time_limit(10), pytest.raises(NabiyaError, match="longer than nabiya's limit"):
        read_song(path)
    assert list(tmp_path.iterdir()) == [path]


# --- linear time --------------------------------------------------------------------------------


def test_note_codes_are_read_in_linear_time():
    # A lookahead from every comma took 25 s for 60,000 commas (quadratic); linear takes milliseconds.
    with time_limit(10):
        assert len(parse_codes("c4" + "," * 200_000 + "d4")) == 2
        with pytest.raises(NabiyaError, match="unknown note code"):
            parse_codes("c,4 " + ",'," * 100_000)
    with time_limit(10):
        from nabiya.music.formats import song_from_codes_text

        assert song_from_codes_text("% title: a" + " " * 200_000 + "b\nc4").title.startswith("a")


# --- long songs: audio and engraving are capped, the rest is fast --------------------------------


def test_audio_is_refused_for_a_song_longer_than_the_limit(tmp_path):
    long_song = Song.from_codes(["c1"] * 700, tempo_bpm=100)  # 28 minutes
    assert not can_render_audio(long_song)
    with pytest.raises(NabiyaError, match=r"long\.wav: .*lasts 28 minutes: nabiya renders audio of up to 20 minutes"):
        write_song(long_song, tmp_path / "long.wav")
    assert list(tmp_path.iterdir()) == []
    short = Song.from_codes(["c1"] * 500, tempo_bpm=100)  # 20 minutes exactly
    assert can_render_audio(short)


def test_audio_of_many_notes_is_the_song_to_the_sample(tmp_path):
    song = Song(tuple(Note(60 + index % 7, Fraction(1, 4)) for index in range(4000)), tempo_bpm=240)  # 4 minutes
    with time_limit(30):
        path = write_song(song, tmp_path / "many.wav")
    with wave.open(str(path)) as audio:
        assert audio.getnframes() == 4000 * round(0.0625 * 22050)


def test_sheet_music_engraves_up_to_the_limit_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr("nabiya.music.scores.MAX_ENGRAVED_BARS", 3)
    song = Song.from_codes(["c2", "d2"] * 5, title="Long", meter="4/4")
    svg = write_song(song, tmp_path / "long.svg").read_text()
    assert "Long (the first 3 of 5 bars)" in svg
    assert svg.count('class="note"') == 6
    short = write_song(Song.from_codes("c2 d2 e2 f2", title="Short"), tmp_path / "short.svg").read_text()
    assert "Short" in short and "first" not in short
    monkeypatch.setattr("nabiya.music.scores.MAX_ENGRAVED_NOTES", 10)
    quick = write_song(Song.from_codes(["c8", "d8"] * 12, title="Quick", meter="2/4"), tmp_path / "quick.svg")
    assert "Quick (the first 2 of 6 bars)" in quick.read_text()  # bar 3 holds the 11th note
    tiny = write_song(Song.from_codes(["c32"] * 40, title="Tiny"), tmp_path / "tiny.svg").read_text()
    assert "Tiny (the first 10 of 40 notes)" in tiny and tiny.count('class="note"') == 10


def test_the_limits_are_documented():
    for name in ("MAX_NOTE_QUARTERS", "MAX_DURATION_DENOMINATOR", "MAX_SONG_NOTES", "MAX_SONG_SECONDS",
                 "MIN_TEMPO_BPM", "MAX_TEMPO_BPM", "MAX_FILE_BYTES", "MAX_AUDIO_SECONDS", "MAX_ENGRAVED_BARS",
                 "MAX_ENGRAVED_NOTES"):  # fmt: skip
        assert f"``{name}``" in limits.__doc__, name


# --- compressed MusicXML that cannot be read ----------------------------------------------------


def mxl(members: dict[str, bytes], *, flag_bits=0, method=None) -> bytes:
    """A zip of ``members``; ``flag_bits`` set and the compression ``method`` changed in every header."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    data = bytearray(buffer.getvalue())
    # (signature, offset of the flag bits, offset of the method) in local and central headers
    for signature, flags_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            flags = int.from_bytes(data[start + flags_at : start + flags_at + 2], "little") | flag_bits
            data[start + flags_at : start + flags_at + 2] = flags.to_bytes(2, "little")
            if method is not None:
                data[start + method_at : start + method_at + 2] = method.to_bytes(2, "little")
            start += 4
    return bytes(data)


SCORE = song_to_musicxml(Song.from_codes("c4 d4"))


@pytest.mark.parametrize(
    "data, message",
    [
        (mxl({"score.xml": SCORE}, flag_bits=0x1), "it is encrypted"),
        (mxl({"score.xml": SCORE}, method=97), "compressed by a method nabiya cannot unpack"),
        (mxl({"META-INF/container.xml": b'<container><rootfile full-path="\xff\xfe.xml"/></container>'}),
         "compressed MusicXML"),
        (mxl({"scxyre.xml": SCORE}, flag_bits=0x800).replace(b"scxyre", b"sc\xff\xfere"), "not valid UTF-8"),
    ],
)
def test_damaged_encrypted_or_oddly_compressed_mxl_is_one_line(tmp_path, data, message):
    path = tmp_path / "bad.mxl"
    path.write_bytes(data)
    with pytest.raises(NabiyaError, match=message) as error:
        read_song(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_an_mxl_that_unpacks_to_more_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("nabiya.music.formats.MAX_FILE_BYTES", 1000)
    path = tmp_path / "bomb.mxl"
    path.write_bytes(mxl({"score.xml": b" " * 100_000}))  # 100 kB of spaces pack into ~100 bytes
    with pytest.raises(NabiyaError, match="the score inside is larger than nabiya's limit"):
        read_song(path)
