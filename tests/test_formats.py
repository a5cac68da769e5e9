"""Songs in and out of files: round trips through every format, ABC tunes, MIDI top lines, bad input."""

import json
import wave
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from midi_bytes import midi_file, off, on

from nabiya.errors import NabiyaError
from nabiya.music.abc import song_from_abc, song_to_abc
from nabiya.music.corpus import iter_corpus, read_corpus_tune
from nabiya.music.formats import convert, read_song, write_song
from nabiya.music.midi import song_from_midi, song_to_midi
from nabiya.music.notation import fits
from nabiya.music.note import Note, parse_codes
from nabiya.music.scores import song_from_musicxml, song_to_musicxml
from nabiya.music.song import Song

# A tune in 3/4 and G major with a pickup, rests (first, across a bar line, last), dotted
# notes, a natural after a sharp in one bar, flats, double sharps and flats, B# and Cb,
# triplets, notes tied across bar lines, and more than three octaves.
RICH_CODES = (
    "r8 d8  g4. f#8 f8 e8  d12 e12 f#12 g4 r4  bb4 a:5/2  c'8 c#'8 c'4 r8 e##8  fbb4 g,2 "
    "b#4 cb'4 r2  c''4 g2 r4"
)
RICH = Song(
    parse_codes(RICH_CODES),
    title="Test tune: Ünïcode & 나비",
    tempo_bpm=92.5,
    meter="3/4", key="G major", pickup=Fraction(1),
)
ROUND_TRIP_EXTENSIONS = [".abc", ".mid", ".midi", ".musicxml", ".xml", ".txt", ".notes"]


def spellings(song):
    return [note.spelling for note in song.notes if note.pitch is not None]


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", ROUND_TRIP_EXTENSIONS)
def test_a_song_survives_each_format(tmp_path, extension):
    path = write_song(RICH, tmp_path / f"tune{extension}")
    back = read_song(path)
    assert back.notes == RICH.notes
    assert back.title == RICH.title
    assert back.tempo_bpm == RICH.tempo_bpm
    assert back == RICH


@pytest.mark.parametrize("extension", [".abc", ".musicxml", ".txt"])
def test_notation_formats_keep_spellings_meter_key_and_pickup(tmp_path, extension):
    back = read_song(write_song(RICH, tmp_path / f"tune{extension}"))
    assert spellings(back) == spellings(RICH)
    assert back.meter == "3/4"
    assert back.key == "G major"
    assert back.pickup == 1


def test_midi_keeps_meter_key_and_pickup_and_spells_black_keys_from_the_key(tmp_path):
    back = read_song(write_song(RICH, tmp_path / "tune.mid"))
    assert (back.meter, back.key, back.pickup) == ("3/4", "G major", 1)
    assert back.notes[3].spelling == "f#"  # a sharp key spells F sharp, not G flat


def test_the_abc_writer_marks_naturals_flats_triplets_and_ties():
    text = song_to_abc(RICH)
    assert "M:3/4" in text and "K:G" in text and "Q:1/4=92.5" in text and "L:1/8" in text
    assert "F =F" in text  # F# comes from the key; the F after it needs a natural
    assert "(3DE^F" in text or "(3DEF" in text
    assert "_B2" in text and "A4-" in text  # the 5/2 A crosses a bar line: a tie
    assert text.splitlines()[6].startswith("z D |")  # the pickup bar


def test_the_abc_writer_marks_accidentals_for_readers_of_either_rule():
    # C# in one octave, then C natural in another octave, in one bar: whether a reader
    # carries the sharp to other octaves (music21) or not, the natural must be written.
    song = Song(parse_codes("c#4 c'4 c#4 c#'4"), meter="4/4")
    body = song_to_abc(song).splitlines()[-1]
    assert body == "^C2 =c2 ^C2 ^c2 |]"
    assert song_from_abc(song_to_abc(song)).notes == song.notes


@pytest.mark.parametrize("codes", ["c20 d20 e20 f20 g20 a4 b2", "c24 d24 e24 f8 g4 a2", "c:1/7 d:6/7 e:3"])
def test_tuplets_other_than_triplets_survive_abc_musicxml_and_midi(tmp_path, codes):
    song = Song.from_codes(codes)
    for extension in (".abc", ".musicxml", ".mid"):
        assert read_song(write_song(song, tmp_path / f"t{extension}")).notes == song.notes, extension


def test_wav_and_svg_are_written(tmp_path):
    song = Song.from_codes("c4 d4 e2 r4 f#8 g8 a2", title="Up the Hill", tempo_bpm=120)
    with wave.open(str(write_song(song, tmp_path / "up.wav"))) as audio:
        assert audio.getnchannels() == 1
        assert audio.getnframes() / audio.getframerate() == pytest.approx(4.0, abs=0.01)  # 8 quarters at 120
    svg = write_song(song, tmp_path / "up.svg").read_text()
    assert svg.startswith("<svg")
    assert svg.count('class="note"') == 6 and svg.count('class="rest"') == 1
    assert "Up the Hill" in svg


SPELLINGS = ("c", "c#", "db", "d", "d#", "eb", "e", "fb", "e#", "f", "f#", "gb", "g", "g#", "ab", "a", "a#", "bb", "b",
             "cb", "b#", "c##", "ebb")  # fmt: skip
pitched = st.integers(43, 96).flatmap(
    lambda pitch: st.tuples(st.just(pitch), st.sampled_from([s for s in SPELLINGS if fits(pitch, s)]))
)
durations = st.sampled_from([Fraction(d) for d in ("1/4", "1/3", "1/2", "2/3", "3/4", "1", "3/2", "2", "5/2", "3", "4")])


@st.composite
def songs(draw):
    """Random melodies: no two rests in a row (files merge them), at least one pitched note."""
    notes = []
    for _ in range(draw(st.integers(1, 24))):
        if draw(st.booleans()) and draw(st.booleans()) and (not notes or notes[-1].pitch is not None):
            notes.append(Note(None, draw(durations)))
        else:
            pitch, spelling = draw(pitched)
            notes.append(Note(pitch, draw(durations), spelling))
    if all(note.pitch is None for note in notes):
        notes.append(Note(60, Fraction(1), "c"))
    meter = draw(st.sampled_from(["4/4", "3/4", "6/8", "2/4", "2/2"]))
    key = draw(st.sampled_from(["C major", "G major", "D major", "F major", "Bb major", "A minor", "E minor", "Eb major"]))
    pickup = draw(st.sampled_from([0, Fraction(1, 2), Fraction(1)]))
    return Song(tuple(notes), title=draw(st.sampled_from(["", "A tune"])), meter=meter, key=key, pickup=pickup)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(songs())
def test_any_melody_survives_abc(song):
    back = song_from_abc(song_to_abc(song))
    assert back.notes == song.notes
    assert spellings(back) == spellings(song)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(songs())
def test_any_melody_survives_musicxml(song):
    back = song_from_musicxml(song_to_musicxml(song))
    assert back.notes == song.notes
    assert spellings(back) == spellings(song)


@settings(max_examples=100, deadline=None)
@given(songs())
def test_any_melody_survives_midi(song):
    assert song_from_midi(song_to_midi(song)).notes == song.notes


# --- ABC ------------------------------------------------------------------------------------------

MULTI_TUNE_ABC = """\
%abc-2.0
% A file header: its fields apply to every tune.
L:1/8

X:1
T:First Tune
M:2/4
K:C
CDEF | G2G2 |]

X:2
T:Second Tune
T:Also Known As
M:3/4
Q:1/4=90
K:G
GAB | d6 |]

X:3
T:Broken Tune
L:1/0
K:C
abc |]

X:10
T:Tenth
M:3/4
K:D
d6 | "D"d2 {e}f2 [df]2 | d6 |]
"""


@pytest.fixture
def tunes_file(tmp_path):
    path = tmp_path / "tunes.abc"
    path.write_text(MULTI_TUNE_ABC)
    return path


def test_the_first_tune_is_read_by_default_with_the_file_headers_unit_length(tunes_file):
    song = read_song(tunes_file)
    assert song.title == "First Tune"
    assert song.codes == ["c8", "d8", "e8", "f8", "g4", "g4"]
    assert song.meter == "2/4"


@pytest.mark.parametrize("tune", [2, "2", " 2 ", "second tune", "SECOND TUNE", "also known as"])
def test_a_tune_is_chosen_by_x_number_or_title(tunes_file, tune):
    song = read_song(tunes_file, tune=tune)
    assert song.title == "Second Tune"
    assert song.tempo_bpm == 90
    assert song.codes == ["g8", "a8", "b8", "d'2."]
    assert song.meta["tune"] == "2"


def test_a_broken_tune_does_not_spoil_the_others_but_reading_it_names_its_line(tunes_file):
    with pytest.raises(NabiyaError) as error:
        read_song(tunes_file, tune=3)
    message = str(error.value)
    assert str(tunes_file) in message and "X:3" in message and "line 21" in message and "L:1/0" in message


def test_a_missing_tune_lists_the_files_tunes(tunes_file):
    for tune in (99, "No Such Tune"):
        with pytest.raises(NabiyaError, match=r"X:1 'First Tune', X:2 'Second Tune'") as error:
            read_song(tunes_file, tune=tune)
        assert str(tunes_file) in str(error.value)


def test_a_chord_in_a_melody_names_the_file_tune_and_measure(tunes_file):
    with pytest.raises(NabiyaError) as error:
        read_song(tunes_file, tune="tenth")
    message = str(error.value)
    assert str(tunes_file) in message and "X:10" in message and "measure 2, note 3" in message
    assert "chord (D5 F#5)" in message


def test_accidentals_carry_through_their_bar_as_abc_2_1_says():
    song = song_from_abc("X:1\nL:1/8\nK:C\n^c c _B B | c B |]\n")
    assert [note.pitch for note in song.notes] == [73, 73, 70, 70, 72, 71]


def test_chord_symbols_grace_notes_and_ties_are_handled():
    song = song_from_abc('X:1\nL:1/8\nK:G\n"G"G2- G2 {a}B "Em"e | (3efg f2 z2 |]\n')
    assert song.codes == ["g2", "b8", "e'8", "e'12", "f#'12", "g'12", "f#'4", "r4"]


def test_a_tune_of_several_voices_gives_the_first_and_a_warning():
    with pytest.warns(UserWarning, match="2 parts .* reading only the first"):
        song = song_from_abc("X:1\nL:1/8\nK:C\nV:1\nc d e |\nV:2\nC, D, E, |\n")
    assert song.codes == ["c'8", "d'8", "e'8"]


def test_tempo_in_other_beat_units_is_read_in_quarter_notes():
    assert song_from_abc("X:1\nL:1/8\nM:6/8\nQ:3/8=60\nK:C\nc3 d3 |]\n").tempo_bpm == 90


def test_fermata_shorthand_keeps_its_note():
    # music21 drops the note after "H"; nabiya rewrites H as !fermata!.
    assert song_from_abc("X:1\nL:1/8\nK:C\nc Hd e |]\n").codes == ["c'8", "d'8", "e'8"]


def test_invisible_and_multi_bar_rests_keep_their_time():
    song = song_from_abc("X:1\nL:1/8\nM:3/4\nK:C\nc x2 d2 e | Z2 | c6 |]\n")
    assert song.codes == ["c'8", "r4", "d'4", "e'8", "r1.", "c'2."]


def test_a_tune_without_unit_length_or_meter_uses_an_eighth():
    assert song_from_abc("X:1\nK:C\nc d e2\n").codes == ["c'8", "d'8", "e'4"]


@pytest.mark.parametrize(
    "text, place, what",
    [
        ("X:1\nL:1/0\nK:C\nabc\n", "line 2", "L:1/0"),
        ("X:1\nM:x/y\nK:C\nabc\n", "line 2", "M:x/y"),
        ("X:1\nL:1/8\nM:6/0\nK:C\nabc\n", "line 3", "M:6/0"),
        ("X:1\nL:1/8\nM:0/4\nK:C\nabc\n", "line 3", "M:0/4"),
        ("X:1\nQ:1/4=abc\nL:1/8\nK:C\nabc\n", "line 2", "Q:1/4=abc"),
        ("X:1\nL:1/8\nK:C\nabc [L:1/0] d\n", "line 4, column 5", "L:1/0"),
        ("X:1\nL:1/8\nK:C\nc d\na#b c\n", "line 5, column 2", "'#'"),
        ("X:1\nL:1/8\nK:C\nc @ d\n", "line 4, column 3", "'@'"),
        ("X:1\nL:1/8\nK:C\n\"Am c d\n", "line 4, column 1", "not closed"),
        ("X:1\nL:1/8\nK:C\nA,,,,,,,, c\n", "line 4, column 1", "outside MIDI's pitch range"),
        ("X:1\nL:1/8\nK:C\nc _/2 d\n", "line 4, column 3", "accidental"),
        ("X:1\nL:1/8\nK:C\nc T3 d\n", "line 4, column 3", "length"),
        ("X:1\nL:1/8\nT:no key\nabc\n", "X:1", "no K: line"),
        ("X:1\nL:1/8\nM:2/4\nK:C\nc4 | [CEG]2 c2 | d4 |]\n", "measure 2, note 1", "chord (C4 E4 G4)"),
        ("X:1\nL:1/8\nK:C\n[CEG]2 c\n", "note 1", "chord (C4 E4 G4)"),
        ("X:1\nL:1/8\nM:2/4\nK:C\nc4 | d0 e | f4 |]\n", "measure 2, note 1", "no length"),
        ("X:1\nL:1/8\nK:C\nz4 | z4 |]\n", "X:1", "only rests"),
        ("just some words\nand no tune at all\n", "no ABC tune", "X:"),
        ("X:1\nL:1/8\nK:C\nc'''''''''''' d\n", "line 4", "outside MIDI's pitch range"),
    ],
)
def test_malformed_abc_is_one_line_naming_file_place_and_problem(tmp_path, text, place, what):
    path = tmp_path / "bad.abc"
    path.write_text(text)
    with pytest.raises(NabiyaError) as error:
        read_song(path)
    message = str(error.value)
    assert message.startswith(str(path)), message
    assert place in message and what in message, message
    assert "\n" not in message


VALID_ABC = '''X:1
T:Fuzz
M:6/8
L:1/8
Q:3/8=100
K:Dm
"Dm"A>B c/d/e | (3fga ^g2 z | [K:G] =f2- f/2 {g}e d | HTd3 z3 |]
'''
ABC_ALPHABET = "ABCDEFGabcdefgzxZ^_=,'/|:[]()-<>{}\"!.~0123456789 \nXTMLQKH%+y&$#@"


@st.composite
def mutated_abc(draw):
    text = list(VALID_ABC)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text) - 1))
        operation = draw(st.sampled_from(["insert", "delete", "replace"]))
        character = draw(st.sampled_from(ABC_ALPHABET))
        if operation == "insert":
            text.insert(position, character)
        elif operation == "delete":
            del text[position]
        else:
            text[position] = character
    return "".join(text)


@pytest.mark.filterwarnings("ignore::UserWarning")  # several voices: a warning, and a song
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        mutated_abc(),
        st.text(alphabet=ABC_ALPHABET, max_size=120).map(lambda body: "X:1\nL:1/8\nK:C\n" + body),
        st.text(max_size=120),
    )
)
def test_the_abc_reader_raises_only_nabiya_errors(text):
    try:
        song = song_from_abc(text, source="fuzz.abc")
    except NabiyaError as error:
        assert str(error).startswith("fuzz.abc") and "\n" not in str(error)
        return
    assert song.notes and any(note.pitch is not None for note in song.notes)


# --- MIDI -------------------------------------------------------------------------------------


CONDUCTOR = [(0, b"\xff\x03\x04Poly"), (0, b"\xff\x51\x03" + (600_000).to_bytes(3, "big"))]  # 100 bpm


def test_a_polyphonic_midi_file_gives_its_top_line_and_a_warning(tmp_path):
    chords = [
        (0, on(60)), (0, on(64)), (0, on(67)),  # C major chord, a quarter
        (480, off(60)), (0, off(64)), (0, off(67)),
        (0, on(74)), (480, off(74)),  # D5 alone
        (0, on(65)), (0, on(69)), (0, on(36, channel=9)),  # F4 + A4, and a drum above nothing
        (480, off(69)), (480, off(65)), (0, off(36, channel=9)),  # A4 stops first, F4 goes on
    ]  # fmt: skip
    path = tmp_path / "poly.mid"
    path.write_bytes(midi_file(CONDUCTOR, chords))
    with pytest.warns(UserWarning, match="top line") as caught:
        song = read_song(path)
    assert len(caught) == 1 and "\n" not in str(caught[0].message) and str(path) in str(caught[0].message)
    assert [(note.pitch, note.duration) for note in song.notes] == [
        (67, 1), (74, 1), (69, 1), (None, 1)
    ]
    assert song.title == "Poly" and song.tempo_bpm == 100


def test_a_midi_file_with_several_melodic_tracks_reads_the_first_and_says_so(tmp_path):
    path = tmp_path / "two.mid"
    path.write_bytes(midi_file(CONDUCTOR, [(0, on(60)), (480, off(60))], [(0, on(72)), (480, off(72))]))
    with pytest.warns(UserWarning, match="2 tracks have notes; reading only track 2"):
        assert read_song(path).codes == ["c4"]


def test_a_performed_midi_file_is_rounded_to_a_grid():
    # 100 ticks per quarter, notes a tick or two off the beat, as a person plays.
    data = midi_file([(1, on(60)), (98, off(60)), (2, on(62)), (51, off(62)), (0, on(64)), (47, off(64))], division=100)
    assert song_from_midi(data).codes == ["c4", "d8", "e8"]


def test_a_midi_file_written_by_music21_reads_back():
    from music21 import midi

    from nabiya.music.scores import song_to_score

    song = Song.from_codes("c4 d4 e2 r4 f#8 g8 a2", tempo_bpm=90)
    data = midi.translate.streamToMidiFile(song_to_score(song)).writestr()
    back = song_from_midi(data)
    assert back.notes == song.notes  # music21's end delay (a quarter note of silence) is not a rest
    assert back.tempo_bpm == 90


def test_a_duration_midi_cannot_hold_is_an_error_and_nothing_is_written(tmp_path):
    song = Song((Note(60, Fraction(1)), Note(62, Fraction(1, 11))))
    with pytest.raises(NabiyaError, match=r"note 2 \(d44\) lasts 1/11 quarter notes") as error:
        write_song(song, tmp_path / "odd.mid")
    assert str(error.value).startswith(str(tmp_path / "odd.mid"))
    assert list(tmp_path.iterdir()) == []


VALID_MIDI = song_to_midi(Song.from_codes("c4 d4 e4"))


@pytest.mark.parametrize(
    "data, what",
    [
        (b"hello, world", "not a MIDI file"),
        (b"MThd\x00\x00\x00\x06\x00", "cut short"),
        (VALID_MIDI[:-6], "cut short"),
        (VALID_MIDI[:12] + b"\xe7\x28" + VALID_MIDI[14:], "SMPTE"),
        (VALID_MIDI[:12] + b"\x00\x00" + VALID_MIDI[14:], "0 ticks"),
        (midi_file([(0, b"\x40\x40")]), "data byte"),
        (midi_file([(0, b"\xf4\x00")]), "0xF4"),
        (midi_file(CONDUCTOR), "no notes"),
        (b"MThd\x00\x00\x00\x06\x00\x00\x00\x00\x01\xe0", "no tracks"),
    ],
)
def test_corrupt_midi_is_one_line_naming_the_file(tmp_path, data, what):
    path = tmp_path / "bad.mid"
    path.write_bytes(data)
    with pytest.raises(NabiyaError, match=what) as error:
        read_song(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


@pytest.mark.filterwarnings("ignore::UserWarning")  # damage can make notes overlap: a warning, and a song
@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_midi_reader_raises_only_nabiya_errors_on_damaged_files(data):
    damaged = bytearray(song_to_midi(RICH))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    try:
        song = song_from_midi(bytes(damaged), source="fuzz.mid")
    except NabiyaError as error:
        assert str(error).startswith("fuzz.mid") and "\n" not in str(error)
        return
    assert song.notes


def test_midi_keeps_the_lowest_and_highest_pitches_and_trailing_rests():
    song = Song(parse_codes("c,,,,,4 b,,,,,8 c#,,,,,8 g'''''4 r8 r4"))  # MIDI 0, 11, 1, 127
    assert song_from_midi(song_to_midi(song)).codes == ["c,,,,,4", "b,,,,,8", "c#,,,,,8", "g'''''4", "r4."]


def test_a_tempo_slower_than_midi_can_hold_is_written_as_the_slowest():
    assert song_from_midi(song_to_midi(Song.from_codes("c4", tempo_bpm=1))).tempo_bpm == 3.58


@pytest.mark.parametrize("key, spelled", [("E minor", "f#"), ("Bb major", "eb"), ("F minor", "ab"), ("A aeolian", "f")])
def test_midi_keeps_major_and_minor_keys_and_spells_from_them(key, spelled):
    pitch = {"f#": 66, "eb": 63, "ab": 68, "f": 65}[spelled]
    back = song_from_midi(song_to_midi(Song((Note(pitch, Fraction(1)),), key=key)))
    assert back.key == key.replace("aeolian", "minor")
    assert back.notes[0].spelling == spelled


def test_damage_in_a_later_midi_track_names_the_track_and_byte():
    data = midi_file(CONDUCTOR, [(0, on(60)), (480, off(60)), (0, b"\xf4\x00")])
    with pytest.raises(NabiyaError, match=r"^bad\.mid, track 2, byte \d+: 0xF4 is not an event"):
        song_from_midi(data, source="bad.mid")


def test_a_meter_nabiya_cannot_write_is_left_out():
    meter = (0, b"\xff\x58\x04\x03\x09\x18\x08")  # 3/512
    song = song_from_midi(midi_file([meter, (0, on(60)), (480, off(60))]))
    assert song.codes == ["c4"] and song.meter is None


# --- MusicXML ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, what",
    [
        (b"hello", "not readable MusicXML"),
        (b"<score-partwise><part-list/>", "not readable MusicXML"),
        (b"<?xml version='1.0'?><foo/>", "not readable MusicXML"),
    ],
)
def test_bad_musicxml_is_one_line_naming_the_file(tmp_path, data, what):
    path = tmp_path / "bad.musicxml"
    path.write_bytes(data)
    with pytest.raises(NabiyaError, match=what) as error:
        read_song(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_a_chord_in_musicxml_names_the_measure(tmp_path):
    from music21 import chord, note, stream
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    part = stream.Part()
    part.append([note.Note("C4", quarterLength=4), note.Note("D4"), chord.Chord(["E4", "G4"]), note.Rest(quarterLength=2)])
    path = tmp_path / "chord.musicxml"
    path.write_bytes(GeneralObjectExporter(stream.Score([part.makeMeasures()])).parse())
    with pytest.raises(NabiyaError, match=r"measure 2, note 2: a chord \(E4 G4\)"):
        read_song(path)


def test_compressed_musicxml_is_read(tmp_path):
    import zipfile

    path = tmp_path / "tune.mxl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "META-INF/container.xml",
            '<container><rootfiles><rootfile full-path="score.xml"/></rootfiles></container>',
        )
        archive.writestr("score.xml", song_to_musicxml(RICH))
    assert read_song(path) == RICH
    (tmp_path / "bad.mxl").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(NabiyaError, match="not a compressed MusicXML"):
        read_song(tmp_path / "bad.mxl")


# --- files in general -------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".abc", ".mid", ".musicxml", ".xml", ".txt", ".mxl"])
def test_an_empty_file_is_an_error_naming_it(tmp_path, extension):
    path = tmp_path / f"empty{extension}"
    path.write_bytes(b"")
    with pytest.raises(NabiyaError) as error:
        read_song(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_unknown_extension_missing_file_and_folder_are_errors(tmp_path):
    with pytest.raises(NabiyaError, match=r"cannot read \.foo: nabiya reads \.abc"):
        read_song(tmp_path / "song.foo")
    with pytest.raises(NabiyaError, match="no such file"):
        read_song(tmp_path / "missing.abc")
    (tmp_path / "folder.abc").mkdir()
    with pytest.raises(NabiyaError, match="is a folder"):
        read_song(tmp_path / "folder.abc")
    with pytest.raises(NabiyaError, match=r"cannot write \.png"):
        write_song(RICH, tmp_path / "song.png")
    with pytest.raises(NabiyaError, match="only in .abc files"):
        read_song(write_song(RICH, tmp_path / "song.mid"), tune=2)


def test_a_bad_code_in_a_text_file_names_file_line_and_note(tmp_path):
    path = tmp_path / "codes.txt"
    path.write_text("% title: Codes\ng8 e8 e4\nf8 x8 d4\n")
    with pytest.raises(NabiyaError) as error:
        read_song(path)
    assert str(path) in str(error.value) and "line 3, note 5" in str(error.value)


def test_convert_writes_nothing_when_reading_fails(tmp_path):
    bad = tmp_path / "bad.abc"
    bad.write_text("X:1\nL:1/0\nK:C\nabc\n")
    with pytest.raises(NabiyaError):
        convert(bad, tmp_path / "new.mid")
    kept = tmp_path / "kept.mid"
    kept.write_bytes(b"the old file")
    with pytest.raises(NabiyaError):
        convert(bad, kept)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.abc", "kept.mid"]
    assert kept.read_bytes() == b"the old file"


def test_convert_reads_one_tune_and_writes_another_format(tunes_file, tmp_path):
    song = convert(tunes_file, tmp_path / "out" / "second.mid", tune="Second Tune")
    assert read_song(tmp_path / "out" / "second.mid").notes == song.notes
    assert song.title == "Second Tune"


def test_an_empty_song_is_not_written(tmp_path):
    with pytest.raises(NabiyaError, match="no notes"):
        write_song(Song(()), tmp_path / "empty.abc")
    assert list(tmp_path.iterdir()) == []


# --- real tunes: music21's ABC files and the folk corpus ----------------------------------------


def music21_corpus_file(relative: str) -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus" / relative


def test_a_reel_from_music21s_corpus():
    song = read_song(music21_corpus_file("ryansMammoth/PaddyMilesFricasseeReel.abc"))
    assert song.title == "PADDY MILES' FRICASSEE -- REEL."
    assert song.meter == "2/2" and song.key == "G major"
    third = Fraction(1, 3)
    # "vgf|:eA ((3.A.A.A) edBc|": bowing marks and staccato dots, F sharp from the key, a triplet.
    assert [(note.pitch, note.duration) for note in song.notes[:10]] == [
        (79, Fraction(1, 2)), (78, Fraction(1, 2)), (76, Fraction(1, 2)), (69, Fraction(1, 2)),
        (69, third), (69, third), (69, third),
        (76, Fraction(1, 2)), (74, Fraction(1, 2)), (71, Fraction(1, 2)),
    ]  # fmt: skip
    assert len(song) == 66


def test_a_tune_from_a_many_tune_music21_book_by_number_and_title():
    path = music21_corpus_file("oneills1850/0001-0050.abc")
    by_number = read_song(path, tune=1)
    assert by_number.title == "The Enchanted Valley"
    assert read_song(path, tune="the enchanted valley").notes == by_number.notes
    assert read_song(path, tune=2).title != by_number.title


# Records of shared/data/folk_corpus.jsonl, copied into the repository (see tests/data/README.md).
FOLK_SAMPLE = Path(__file__).parent / "data" / "folk_corpus_sample.jsonl"

# Tunes of the folk corpus whose notes nabiya's ABC reader must reproduce from music21's ABC
# files: they have rests, ties, grace notes, chord symbols, accidentals, repeats and endings.
CORPUS_TUNES = [
    "oneills1850/0001-0050.abc#1",  # accidentals in G minor
    "ryansMammoth/HarlequinHornpipe.abc#1",  # rests
    "ryansMammoth/BridalJig.abc#1",  # ties
    "ryansMammoth/DeerFootHornpipe.abc#1",  # grace notes
    "nottingham-dataset/reelsa-c.abc#80",  # chord symbols
    "ryansMammoth/CuckooHornpipe.abc#1",  # explicit accidentals, dotted rhythms
    "ryansMammoth/AllTheRageReel.abc#1",  # first and second endings
    "ryansMammoth/ElectricHornpipe.abc#1",  # a change of key
    "ryansMammoth/RumAndOnionsJig.abc#1",  # a change of meter
]


@pytest.mark.parametrize("tune_id", CORPUS_TUNES)
def test_the_abc_reader_agrees_with_the_folk_corpus(tune_id):
    records = {}
    with FOLK_SAMPLE.open(encoding="utf-8") as lines:
        for line in lines:
            if tune_id in line:
                record = json.loads(line)
                records[record["id"]] = record
    record = records[tune_id]
    file, number = tune_id.split("#")
    song = read_song(music21_corpus_file(file), tune=number)
    assert [[note.pitch, float(note.duration)] for note in song.notes] == record["notes"]
    assert song.title == record["title"]


def test_the_folk_corpus_loads_as_songs():
    songs = list(iter_corpus(FOLK_SAMPLE))[:3]
    assert len(songs) == 3
    first = songs[0]
    assert first.title == "The Enchanted Valley" and first.key == "G minor"
    assert first.meta["id"] == "oneills1850/0001-0050.abc#1"
    assert [(note.pitch, note.duration) for note in first.notes[:3]] == [
        (67, Fraction(3, 4)), (69, Fraction(1, 4)), (70, Fraction(1, 4))
    ]
    assert first.notes[2].spelling == "bb"  # a flat key spells B flat
    assert read_song(FOLK_SAMPLE, tune="THE ENCHANTED VALLEY").notes == first.notes
    assert read_song(FOLK_SAMPLE, tune=first.meta["id"]).notes == first.notes
    assert read_song(FOLK_SAMPLE, tune=2).notes == songs[1].notes


def test_a_corpus_record_is_read_and_a_bad_one_named():
    song = read_corpus_tune({"id": "x#1", "title": "T", "key": "D major", "notes": [[66, 0.75], [None, 0.25], [61, 1 / 3]]})
    assert song.codes == ["f#8.", "r16", "c#12"]
    with pytest.raises(NabiyaError, match=r"x#1\), note 2"):
        read_corpus_tune({"id": "x#1", "notes": [[60, 1.0], [60, -1]]})
    with pytest.raises(NabiyaError, match="not JSON"):
        read_corpus_tune("{not json")


def test_sheet_music_can_be_engraved_in_any_thread():
    """verovio sets its fonts' path only in the thread that imported it; a web server engraves in others."""
    import threading

    from nabiya.music.scores import song_to_svg
    from nabiya.music.songs import get_song

    pictures = []
    for name in ("nabiya", "twinkle"):
        thread = threading.Thread(target=lambda name=name: pictures.append(song_to_svg(get_song(name))))
        thread.start()
        thread.join()
    assert len(pictures) == 2 and all(picture.startswith("<svg") for picture in pictures)


def test_sheet_music_colours_the_notes_asked_for_every_piece_of_a_tied_one():
    from nabiya.music.scores import song_to_musicxml, song_to_svg

    song = Song.from_codes("c4 d2. e4 f2 g1", title="ties")  # 4/4: g1 crosses the third bar line
    svg = song_to_svg(song, colors={1: "#d62728", 4: "#d62728"})
    assert svg.count('class="note" color="#D62728"') == 3  # d2. whole, g1 in two tied pieces
    assert svg.count('class="clef"') == 1  # a clef is engraved
    assert song_to_musicxml(song).count(b"color=") == 0
    with pytest.raises(NabiyaError, match="colour 'red' is not a #rrggbb colour"):
        song_to_svg(song, colors={0: "red"})


def test_songs_read_from_bytes_as_from_a_file_and_written_to_bytes_as_to_one(tmp_path):
    from nabiya.music.formats import read_song, song_from_bytes, song_to_bytes, write_song
    from nabiya.music.songs import get_song

    song = get_song("ode_to_joy")
    for suffix in (".abc", ".mid", ".musicxml", ".txt"):
        path = write_song(song, tmp_path / f"ode{suffix}")
        assert song_from_bytes(song_to_bytes(song, suffix), f"x{suffix}").notes == song.notes
        assert song_from_bytes(path.read_bytes(), path.name).notes == read_song(path).notes
    with pytest.raises(NabiyaError, match=r"^tune\.pdf: cannot read \.pdf"):
        song_from_bytes(b"%PDF", "tune.pdf")
