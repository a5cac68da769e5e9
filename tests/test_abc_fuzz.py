"""Property-based fuzzing of the ABC reader and writer (hypothesis).

Whatever text comes in, reading it ends within a time bound with a song or a one-line
NabiyaError that names the source, in both readings of repeats; whatever melody goes out,
it reads back as the same notes, meter and key; and a tune read, written and read again
stays the same.
"""

import time
import warnings
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nabiya.errors import NabiyaError
from nabiya.music.abc import song_from_abc, song_to_abc
from nabiya.music.note import Note
from nabiya.music.song import Song

SECONDS_PER_CASE = 2.0  # a case that takes longer hangs (or is quadratic); typical cases take 1 ms

VALID = """X:1
T:Fuzz
M:6/8
L:1/8
Q:3/8=100
P:AB
K:Dm
P:A
|:"Dm"A>B c/d/e | (3fga ^g2 z | [K:G] =f2- f/2 {g}e d | HTd3 z3 :|
P:B
[V:1] (5abcde [L:1/16] f4 g4 |1 a12 :|2 [M:3/4] b12 || (d>.c) !trill!B2 ">"A Z |]
"""
ALPHABET = "ABCDEFGabcdefgzxZ^_=,'/|:[]()-<>{}\"!.~0123456789 \nXTMLQKHVP%+y&$#@"
FIELDS = ["K:G", "K:C clef=bass octave=-1", "K:D exp ^f", "L:1/16", "M:3/4", "M:none", "Q:1/4=90", "V:2", "P:A",
          "[K:Bb]", "[L:1/4]", "[M:2/2]", "[V:1]", "%%propagate-accidentals octave", "w: la la", "T:Second"]  # fmt: skip
TRICKY = ["(3", "(5:4:5", "|:", ":|", "::", "[1", ":|2", "[1,3", "|]", "||", "A>", "<", "{ga}", "!trill!", '">"',
          "[CEG]", "[CC]", "^^", "__", "C999", "z8", "Z4", "&", "\\\n", "-", ".", "~", "u", "H", "\n\n", "x"]  # fmt: skip


@st.composite
def mutated(draw):
    """The valid tune with a few characters, fields or ABC constructs inserted, deleted or replaced."""
    text = list(VALID)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(text)))
        piece = draw(st.one_of(st.sampled_from(ALPHABET), st.sampled_from(TRICKY),
                               st.sampled_from(FIELDS).map(lambda field: f"\n{field}\n")))  # fmt: skip
        operation = draw(st.sampled_from(["insert", "delete", "replace"]))
        if operation == "insert" or not text:
            text.insert(position, piece)
        elif operation == "delete":
            del text[min(position, len(text) - 1)]
        else:
            text[min(position, len(text) - 1)] = piece
    return "".join(text)


@st.composite
def repeated(draw):
    """A construct repeated many times: what makes a careless reader slow (or loop)."""
    piece = draw(st.sampled_from(TRICKY + ["C", "C2 ", "|", "\n", "[K:G]", "(", "\"a\"", "[V:1]", "[V:2]"]))
    count = draw(st.integers(100, 3000))
    return "X:1\nM:4/4\nL:1/8\nK:C\n" + "C " + piece * count + " D |]\n"


ABC_TEXT = st.one_of(
    mutated(),
    repeated(),
    st.text(alphabet=ALPHABET, max_size=200).map(lambda body: "X:1\nL:1/8\nK:C\n" + body),
    st.text(max_size=200),
)


def read_within_bound(text: str, repeats: str) -> Song | None:
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            song = song_from_abc(text, source="fuzz.abc", repeats=repeats)
    except NabiyaError as error:
        message = str(error)
        assert message.startswith("fuzz.abc") and "\n" not in message, message
        song = None
    assert time.perf_counter() - started < SECONDS_PER_CASE, f"{time.perf_counter() - started:.1f} s"
    return song


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ABC_TEXT, st.sampled_from(["written", "played"]))
@example("X:1\nL:1/8\nK:C\n[2A", "played")  # its only note in an ending no pass reaches
def test_any_text_gives_a_song_or_a_one_line_error_quickly(text, repeats):
    song = read_within_bound(text, repeats)
    if song is None:
        return
    assert any(note.pitch is not None for note in song.notes)
    again = song_from_abc(song_to_abc(song))  # what was read, written and read again, is the same
    assert again.notes == song.notes
    assert (again.meter, again.key) == (song.meter or "4/4", song.key or "C major")  # the writer's defaults


# --- songs out and back -------------------------------------------------------------------------

DURATIONS = sorted({Fraction(k, d) for d in (1, 2, 3, 4, 5, 6, 7, 8, 12, 16) for k in range(1, 13)})
SPELLINGS = {0: ["c", "b#", "dbb"], 1: ["c#", "db"], 2: ["d", "c##", "ebb"], 3: ["eb", "d#"], 4: ["e", "fb", "d##"],
             5: ["f", "e#"], 6: ["f#", "gb"], 7: ["g", "f##", "abb"], 8: ["ab", "g#"], 9: ["a", "g##", "bbb"],
             10: ["bb", "a#"], 11: ["b", "cb", "a##"]}  # fmt: skip


@st.composite
def notes(draw):
    duration = draw(st.sampled_from(DURATIONS))
    if draw(st.integers(0, 9)) == 0:
        return Note(None, duration)
    pitch = draw(st.integers(0, 127))
    return Note(pitch, duration, draw(st.sampled_from(SPELLINGS[pitch % 12])))


@st.composite
def songs(draw):
    melody = draw(st.lists(notes(), min_size=1, max_size=40))
    if all(note.pitch is None for note in melody):
        melody.append(Note(60, Fraction(1), "c"))
    meter = draw(st.sampled_from([None, "2/4", "3/4", "4/4", "6/8", "9/8", "2/2", "5/4", "3/8", "7/8"]))
    key = draw(st.sampled_from([None, "C major", "G major", "F major", "D dorian", "Bb major", "E minor", "C# minor",
                                "Cb major", "A mixolydian"]))  # fmt: skip
    pickup = draw(st.sampled_from([Fraction(0), Fraction(1, 2), Fraction(1), Fraction(3, 2)]))
    return Song(tuple(melody), title=draw(st.text(max_size=20)), meter=meter, key=key, pickup=pickup,
                tempo_bpm=draw(st.sampled_from([60.0, 92.5, 120.0, 1.0, 1000.0])))  # fmt: skip


def merged(melody) -> list[tuple]:
    """Rests in a row are one silence once read (as ABC readers merge them)."""
    out: list[tuple] = []
    for note in melody:
        if out and note.pitch is None and out[-1][0] is None:
            out[-1] = (None, out[-1][1] + note.duration)
        else:
            out.append((note.pitch, note.duration))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(songs())
def test_any_song_survives_abc(song):
    text = song_to_abc(song)
    back = song_from_abc(text)
    assert merged(back.notes) == merged(song.notes), text
    assert (back.meter, back.key, back.tempo_bpm) == (song.meter or "4/4", song.key or "C major", song.tempo_bpm)
    assert [note.spelling for note in back.notes if note.pitch is not None] == [
        note.spelling for note in song.notes if note.pitch is not None
    ], text
    if song.meter and song.duration_quarters > song.pickup + 8:
        assert back.pickup == song.pickup


@pytest.mark.parametrize("repeats", ["written", "played"])
def test_deeply_repeated_endings_and_parts_are_bounded(repeats):
    text = "X:1\nL:1/8\nP:" + "(AB)9" * 40 + "\nK:C\nP:A\n" + "|: C [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 D :|" * 200
    text += "\nP:B\n" + "C::" * 2000 + "\n"
    song = read_within_bound(text, repeats)
    assert song is None or len(song) <= 100_000
