"""Sheet music as a musician expects it (clef, title), the same bytes for the same song, and notation that survives."""

from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nabiya.music.formats import read_song, write_song
from nabiya.music.note import Note
from nabiya.music.scores import clef_for, song_to_musicxml, song_to_svg
from nabiya.music.song import Song

HIGH = Song.from_codes("g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4", title="나비야 (Butterfly)", meter="2/4")
LOW = Song.from_codes("c,4 e,4 g,4 c4 g,,2 b,,4 d,4 c,1", title="Low Tune", meter="4/4", key="C major")


def test_the_clef_follows_the_melodys_median_pitch():
    assert clef_for(HIGH) == "treble" and clef_for(LOW) == "bass"
    assert clef_for(Song.from_codes("c4 r4")) == "treble"  # middle C itself is written in the treble clef
    assert clef_for(Song.from_codes("b,4 r4")) == "bass"
    assert clef_for(Song.from_codes("r4")) == "treble"


@pytest.mark.parametrize("song, sign, line", [(HIGH, "G", 2), (LOW, "F", 4)])
def test_musicxml_and_svg_show_the_clef_and_the_title(song, sign, line):
    xml = song_to_musicxml(song).decode()
    assert f"<clef>\n          <sign>{sign}</sign>\n          <line>{line}</line>" in xml
    assert f"<work-title>{song.title}</work-title>" in xml and f"<movement-title>{song.title}</movement-title>" in xml
    svg = song_to_svg(song)
    assert svg.count('class="clef"') == 1
    assert song.title in svg


def test_every_format_is_the_same_bytes_for_the_same_song(tmp_path):
    song = Song.from_codes("g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4", title="Same", meter="2/4", key="G major")
    for extension in (".mid", ".musicxml", ".svg", ".wav", ".txt"):
        first = write_song(song, tmp_path / f"first{extension}").read_bytes()
        second = write_song(song, tmp_path / f"second{extension}").read_bytes()
        assert first == second, extension
    xml = (tmp_path / "first.musicxml").read_text()
    assert '<score-part id="P1">' in xml and '<part id="P1">' in xml
    assert "encoding-date" not in xml and "Music21" not in xml  # no date, no invented composer


def test_a_musicxml_of_thousands_of_bars_is_written_in_linear_time():
    from time_limits import time_limit

    # music21's own notation looked up each bar's meter from the top: ~140 s for 20,000 notes.
    song = Song(tuple(Note(60 + index % 12, Fraction(1)) for index in range(3000)), meter="3/4")
    with time_limit(60):
        assert song_to_musicxml(song).count(b"<measure ") == 1000


TITLES = st.sampled_from(["", "A tune", "Ünïcode & 나비", "  spaced  out  "])
METERS = st.sampled_from(["2/4", "3/4", "4/4", "6/8", "9/8", "5/4", "2/2", "3/8", "12/8"])
KEYS = st.sampled_from([None, "C major", "G major", "F# major", "Eb major", "A minor", "C# minor", "Bb minor"])
NOTES = st.lists(
    st.builds(
        Note,
        st.one_of(st.none(), st.integers(36, 96)),
        st.sampled_from([Fraction(d) for d in ("1/4", "1/3", "1/2", "3/4", "1", "3/2", "2", "3", "4")]),
    ),
    min_size=1,
    max_size=16,
).filter(  # a pitched note, and no two rests in a row (files join them)
    lambda notes: any(n.pitch is not None for n in notes)
    and all(a.pitch is not None or b.pitch is not None for a, b in pairwise(notes))
)


@st.composite
def notated_songs(draw):
    meter = draw(METERS)
    beats, unit = (int(part) for part in meter.split("/"))
    bar = Fraction(4 * beats, unit)
    pickup = draw(st.sampled_from([Fraction(0), Fraction(1, 2), Fraction(1), Fraction(3, 2)]).filter(lambda p: p < bar))
    notes = draw(NOTES.filter(lambda notes: sum(note.duration for note in notes) > pickup))  # a bar after the pickup
    return Song(tuple(notes), title=" ".join(draw(TITLES).split()), tempo_bpm=draw(st.integers(30, 300)),
                meter=meter, key=draw(KEYS), pickup=pickup)  # fmt: skip


@pytest.mark.parametrize("extension", [".txt", ".mid", ".musicxml"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(song=notated_songs())
def test_title_tempo_meter_key_and_pickup_survive_every_notation_format(tmp_path, extension, song):
    back = read_song(write_song(song, tmp_path / f"song{extension}"))
    assert back.notes == song.notes
    assert (back.title, back.tempo_bpm, back.meter, back.key, back.pickup) == (
        song.title, song.tempo_bpm, song.meter, song.key, song.pickup
    )


@pytest.mark.parametrize("extension", [".mid", ".musicxml"])
def test_a_pickup_without_a_meter_is_kept_in_bars_of_4_4(tmp_path, extension):
    song = Song.from_codes("g4 c2 e2 g1", pickup=1)
    back = read_song(write_song(song, tmp_path / f"song{extension}"))
    assert (back.meter, back.pickup, back.notes) == ("4/4", 1, song.notes)


def test_a_duration_musicxml_cannot_hold_is_an_error_not_a_rounding(tmp_path):
    from nabiya.errors import NabiyaError

    song = Song((Note(60, Fraction(1, 11)), Note(62, Fraction(10, 11))))
    with pytest.raises(NabiyaError, match=r"odd\.musicxml: note 1 \(c44\) lasts 1/11 quarter notes"):
        write_song(song, tmp_path / "odd.musicxml")
    assert list(tmp_path.iterdir()) == []


def test_sheet_music_shows_the_meter_the_key_and_the_pickup():
    svg = song_to_svg(Song.from_codes("d4 g2 a4 b2.", title="Waltz", meter="3/4", key="G major", pickup=1))
    assert svg.count('class="meterSig"') == 1 and svg.count('class="keyAccid"') == 1  # 3/4, one sharp
    assert svg.count('class="measure"') == 3  # the pickup bar, then two bars of 3/4


def test_a_larger_scale_engraves_bigger_notes_on_more_lines_in_the_same_width():
    import re

    from nabiya.music.songs import get_song

    def width_and_lines(svg: str) -> tuple[str, int]:
        return re.search(r'<svg width="(\d+)px"', svg).group(1), svg.count('class="system"')

    nabiya = get_song("nabiya")
    assert width_and_lines(song_to_svg(nabiya)) == ("1050", 2)
    assert width_and_lines(song_to_svg(nabiya, scale=70)) == ("1050", 3)
