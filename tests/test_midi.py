"""MIDI read as it sounds: legato lines, pitches struck again, music21's end delay, tempo, limits, the writer."""

import warnings
from fractions import Fraction

import pytest
from midi_bytes import midi_file, off, on, tempo
from time_limits import time_limit

from nabiya.errors import NabiyaError
from nabiya.music.formats import read_song, write_song
from nabiya.music.midi import song_from_midi, song_to_midi
from nabiya.music.note import Note, parse_codes
from nabiya.music.song import Song


def timed_notes(*notes, division=480):
    """A track from (pitch, start quarter, end quarter) notes, events in time order."""
    events = sorted(
        [(Fraction(start), 1, on(pitch)) for pitch, start, _ in notes]
        + [(Fraction(end), 0, off(pitch)) for pitch, _, end in notes],
        key=lambda event: (event[0], event[1]),
    )
    track, now = [], Fraction(0)
    for when, _, event in events:
        track.append((int((when - now) * division), event))
        now = when
    return track


def read_quietly(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a monophonic line gives no warning
        return song_from_midi(data, source="line.mid")


def test_a_falling_legato_line_keeps_every_note_and_invents_no_rests():
    # C5 0-1.1, B4 1-2.1, A4 2-3: each note starts just before the last one ends.
    data = midi_file(timed_notes((72, 0, "1.1"), (71, 1, "2.1"), (69, 2, 3)))
    assert read_quietly(data).codes == ["c'4", "b4", "a4"]


def test_a_rising_legato_line_and_a_lower_voice_under_a_held_note():
    rising = midi_file(timed_notes((60, 0, "1.25"), (62, 1, "2.25"), (64, 2, 3)))
    assert read_quietly(rising).codes == ["c4", "d4", "e4"]
    # G5 held for four beats over C3 D3 E3: the lower notes are another voice, not the melody.
    held = midi_file(timed_notes((79, 0, 4), (48, 1, 2), (50, 2, 3), (52, 3, 4)))
    with pytest.warns(UserWarning, match="top line"):
        assert song_from_midi(held).codes == ["g'1"]


def test_a_pitch_struck_again_while_it_sounds_is_two_notes():
    # C 0-1.5, C 1-2, D 2-3: note-offs pair first in, first out.
    data = midi_file(timed_notes((60, 0, "1.5"), (60, 1, 2), (62, 2, 3)))
    assert read_quietly(data).codes == ["c4", "c4", "d4"]


def test_a_note_never_released_sounds_to_the_end_of_its_track():
    data = midi_file([(0, on(60)), (480, on(62)), (480, off(62))], end_delays=[480])
    assert read_quietly(data).codes == ["c4", "d4", "r4"]


def test_a_file_written_by_music21_has_no_trailing_rest_but_keeps_its_own():
    from music21 import midi

    from nabiya.music.scores import song_to_score

    song = Song.from_codes("c4 d4 e2 r4 f#8 g8 a2", tempo_bpm=90)
    data = midi.translate.streamToMidiFile(song_to_score(song)).writestr()  # ends every track a quarter late
    back = song_from_midi(data)
    assert back.notes == song.notes
    assert back.tempo_bpm == 90
    # nabiya's own files keep a trailing rest of exactly a quarter note.
    assert song_from_midi(song_to_midi(Song.from_codes("c4 d4 r4"))).codes == ["c4", "d4", "r4"]


def test_of_two_tempo_events_at_the_same_tick_the_later_plays():
    conductor = [(0, tempo(100)), (0, tempo(75))]
    data = midi_file(conductor, [(0, on(60)), (480, off(60))])
    assert song_from_midi(data).tempo_bpm == 75
    # A tempo change later in the song does not replace the one the melody starts at.
    data = midi_file([(0, tempo(100)), (960, tempo(50))], [(0, on(60)), (480, off(60)), (0, on(62)), (480, off(62))])
    assert song_from_midi(data).tempo_bpm == 100


@pytest.mark.parametrize(
    "tracks, message",
    [
        ([[(0, on(60)), (0x0FFFFFFF, off(60))]], r"^huge\.mid, track 1: the note C4 at quarter note 0: a note of .* longer"),
        ([[(0, on(60)), (480, off(60))]], None),  # the same file, but sane
        ([[(0, on(60)), (480, off(60)), (0x0FFFFFFF, b"\xff\x01\x01x")]], r"^huge\.mid, track 1: the rest at quarter note 1"),
        ([[(0, b"\xff\x51\x03\x00\x00\x01"), (0, on(60)), (480, off(60))]], r"^huge\.mid: a tempo of 6e\+07 bpm"),
    ],
)
def test_huge_times_and_tempos_in_midi_are_errors_naming_the_file_and_place(tracks, message):
    data = midi_file(*tracks)
    with time_limit(10):  # no hang: the file is refused before any work
        if message is None:
            assert song_from_midi(data, source="huge.mid").codes == ["c4"]
        else:
            with pytest.raises(NabiyaError, match=message):
                song_from_midi(data, source="huge.mid")


def test_the_writer_keeps_title_tempo_meter_key_pickup_and_trailing_rest():
    song = Song(parse_codes("d8 g4 a8 b4 r4"), title="Up", tempo_bpm=93, meter="3/4", key="D dorian", pickup=Fraction(1, 2))
    back = song_from_midi(song_to_midi(song))
    assert back.notes == song.notes
    assert (back.title, back.tempo_bpm, back.meter, back.pickup) == ("Up", 93, "3/4", Fraction(1, 2))
    assert back.key == "C major"  # MIDI knows major and minor: a dorian key keeps its signature


@pytest.mark.parametrize("meter, pickup", [("300/4", 0), ("3/4", Fraction(1, 3)), ("5/64", Fraction(1, 16))])
def test_meters_and_pickups_midi_cannot_hold_are_left_out_not_a_crash_or_hang(meter, pickup):
    song = Song.from_codes("c4 d4 e4", meter=meter, pickup=pickup)
    with time_limit(10):  # a pickup of 1/3 quarter once looked for its meter forever
        back = song_from_midi(song_to_midi(song))
    assert back.notes == song.notes


def test_writing_and_reading_midi_takes_time_linear_in_the_notes():
    # music21's writer took ~13 s for 10,000 notes (quadratic); nabiya's takes well under a second.
    song = Song(tuple(Note(60 + index % 12, Fraction(1, 2)) for index in range(10_000)))
    with time_limit(10):
        back = song_from_midi(song_to_midi(song))
    assert back.notes == song.notes


def test_the_same_song_gives_the_same_midi_bytes(tmp_path):
    song = Song.from_codes("g8 e8 e4 f8 d8 d4", title="나비야", meter="2/4", key="C major")
    first = write_song(song, tmp_path / "a.mid").read_bytes()
    assert write_song(song, tmp_path / "b.mid").read_bytes() == first
    assert read_song(tmp_path / "a.mid") == song
