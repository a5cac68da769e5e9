"""Property-based fuzzing of the music readers: nothing but NabiyaError, every case in bounded time, round trips hold.

Each case runs under a hard time limit (a hang fails the case, it does not stop the suite).
"""

import os
import re
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from midi_bytes import midi_file, off, on
from time_limits import time_limit

from nabiya.errors import NabiyaError
from nabiya.music.limits import MAX_DURATION_DENOMINATOR, MAX_NOTE_QUARTERS
from nabiya.music.midi import song_from_midi, song_to_midi
from nabiya.music.notation import fits
from nabiya.music.note import Note, format_code, parse_code, parse_codes
from nabiya.music.scores import song_from_musicxml, song_to_musicxml
from nabiya.music.song import Song

CASE_SECONDS = 10
SCALE = int(os.environ.get("NABIYA_FUZZ_SCALE", "1"))  # NABIYA_FUZZ_SCALE=20: a longer hunt, by hand
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- note codes ----------------------------------------------------------------------------------

CODE_TEXT = st.text(alphabet=st.sampled_from(list("abcdefgr#',.:/%0123456789 \n\t") + ["٤", "²", "Ａ", "\x00"]),
                    max_size=200)  # fmt: skip


@settings(FUZZ, max_examples=300 * SCALE)
@given(st.one_of(CODE_TEXT, st.text(max_size=100), st.lists(st.text(max_size=8), max_size=5)))
def test_parse_codes_gives_notes_that_round_trip_or_a_nabiya_error(codes):
    with time_limit(CASE_SECONDS):
        try:
            notes = parse_codes(codes, source="fuzz.txt")
        except NabiyaError as error:
            assert "\n" not in str(error)
            return
    if isinstance(codes, str):  # only ASCII is read as codes: "c٤" is not c4
        assert all("".join(line.split("%")[0].split()).isascii() for line in codes.splitlines())
    for note in notes:
        assert parse_code(note.code) == note
        assert parse_code(note.code).code == note.code


@settings(FUZZ, max_examples=50 * SCALE)
@given(st.one_of(st.integers(), st.floats(), st.binary(max_size=10), st.none(), st.lists(st.integers(), min_size=1)))
def test_parse_codes_of_anything_but_text_is_a_nabiya_error(thing):
    with pytest.raises(NabiyaError):
        parse_codes(thing)


durations = st.fractions(min_value=Fraction(1, MAX_DURATION_DENOMINATOR), max_value=MAX_NOTE_QUARTERS,
                         max_denominator=MAX_DURATION_DENOMINATOR)  # fmt: skip
SPELLINGS = ["c", "c#", "db", "d", "d#", "eb", "e", "fb", "e#", "f", "f#", "gb", "g", "g#", "ab", "a", "a#", "bb",
             "b", "cb", "b#", "c##", "ebb", "fbb", "g##"]  # fmt: skip


@settings(FUZZ, max_examples=400 * SCALE)
@given(st.one_of(st.none(), st.integers(0, 127)), durations, st.one_of(st.none(), st.sampled_from(SPELLINGS)))
def test_every_note_has_a_code_that_reads_back_as_the_same_note(pitch, duration, spelling):
    note = Note(pitch, duration, spelling)
    back = parse_code(format_code(note))
    assert back == note and back.duration == note.duration
    if pitch is not None and fits(pitch, spelling):
        assert back.spelling == spelling


@settings(FUZZ, max_examples=200 * SCALE)
@given(st.fractions(min_value=-1, max_value=2 * MAX_NOTE_QUARTERS, max_denominator=10**7))
def test_a_note_of_any_duration_is_valid_and_round_trips_or_is_refused(duration):
    try:
        note = Note(60, duration)
    except NabiyaError:
        assert duration <= 0 or duration > MAX_NOTE_QUARTERS or duration.denominator > MAX_DURATION_DENOMINATOR
        return
    assert parse_code(note.code) == note


# --- MIDI ----------------------------------------------------------------------------------------

FUZZ_TUNE = Song.from_codes(
    "r8 d8 g4. f#8 e12 f12 g12 c'2 bb,4 r4 a:5/2 g4", title="Fuzz", tempo_bpm=93, meter="3/4", key="G major",
    pickup=Fraction(1, 2),
)
VALID_MIDI = song_to_midi(FUZZ_TUNE)


def read_midi(data: bytes) -> None:
    with time_limit(CASE_SECONDS):
        try:
            song = song_from_midi(data, source="fuzz.mid")
        except NabiyaError as error:
            assert str(error).startswith("fuzz.mid") and "\n" not in str(error)
            return
    assert song.notes and any(note.pitch is not None for note in song.notes)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(FUZZ, max_examples=150 * SCALE)
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda tail: b"MThd\x00\x00\x00\x06" + tail)))
def test_the_midi_reader_on_random_bytes_raises_only_nabiya_errors(data):
    read_midi(data)


@st.composite
def mutated(draw, valid: bytes, max_edits: int = 4):
    """``valid`` with a few bytes changed, inserted or deleted, or a stretch cut out or repeated."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, max_edits))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["replace", "insert", "delete", "cut", "repeat"]))
        if kind == "replace":
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del data[position]
        else:
            end = min(len(data), position + draw(st.integers(1, 64)))
            stretch = data[position:end]
            if kind == "cut":
                del data[position:end]
            else:
                data[end:end] = stretch
    return bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(FUZZ, max_examples=150 * SCALE)
@given(mutated(VALID_MIDI))
def test_the_midi_reader_on_damaged_files_raises_only_nabiya_errors(data):
    read_midi(data)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(FUZZ, max_examples=60 * SCALE)
@given(st.integers(0, 0x0FFFFFFF), st.sampled_from([1, 96, 480, 10080, 0x7FFF]))
def test_huge_delta_times_are_refused_or_read_quickly(delta, division):
    read_midi(midi_file([(0, on(60)), (delta, off(60))], division=division, end_delays=[delta]))


# --- MusicXML ------------------------------------------------------------------------------------

VALID_MUSICXML = song_to_musicxml(
    Song.from_codes("r8 d8 g4. f#8 e12 f12 g12 c'2 bb,4", title="Fuzz", meter="3/4", key="G major", pickup=Fraction(1, 2))
)


@st.composite
def mutated_musicxml(draw):
    """The valid document with numbers, names or tags changed, or byte-level damage."""
    text = VALID_MUSICXML.decode()
    kind = draw(st.sampled_from(["number", "word", "tag", "bytes"]))
    if kind == "bytes":
        return draw(mutated(VALID_MUSICXML, max_edits=3))
    pattern = {"number": r">(-?\d+)<", "word": r">([A-Za-z#-]+)<", "tag": r"<(/?[a-z-]+)"}[kind]
    matches = list(re.finditer(pattern, text))
    match = matches[draw(st.integers(0, len(matches) - 1))]
    replacement = draw(
        {
            "number": st.sampled_from(["0", "-1", "99999999", "1e400", "NaN", "", "3.5", "10080000000"]),
            "word": st.sampled_from(["", "X", "quarter", "breve", "maxima", "1024th", "G", "H", "flat-flat", "start"]),
            "tag": st.sampled_from(["note", "chord", "rest", "measure", "tie", "time", "/note", "backup", "x"]),
        }[kind]
    )
    return (text[: match.start(1)] + replacement + text[match.end(1):]).encode()


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(FUZZ, max_examples=60 * SCALE)
@given(mutated_musicxml())
def test_the_musicxml_reader_on_damaged_files_raises_only_nabiya_errors(data):
    assume(data != VALID_MUSICXML)
    with time_limit(CASE_SECONDS):
        try:
            song = song_from_musicxml(data, source="fuzz.musicxml")
        except NabiyaError as error:
            assert str(error).startswith("fuzz.musicxml") and "\n" not in str(error)
            return
    assert song.notes
