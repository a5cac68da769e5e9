"""Built-in songs: 나비야 first and unchanged, a handful of public-domain tunes, a listing."""

from fractions import Fraction

import pytest

from nabiya.encoding import Vocabulary
from nabiya.errors import NabiyaError
from nabiya.music.abc import song_from_abc, song_to_abc
from nabiya.music.midi import song_from_midi, song_to_midi
from nabiya.music.notation import bar_quarters, parse_meter, split_into_bars
from nabiya.music.song import Song
from nabiya.music.songs import NABIYA_CODES, describe_songs, get_song, nabiya, song_names

# The tutorial's `seq`, copied here so that a change to the built-in song shows.
TUTORIAL_SEQ = [
    "g8", "e8", "e4", "f8", "d8", "d4", "c8", "d8", "e8", "f8", "g8", "g8", "g4",
    "g8", "e8", "e8", "e8", "f8", "d8", "d4", "c8", "e8", "g8", "g8", "e8", "e8", "e4",
    "d8", "d8", "d8", "d8", "d8", "e8", "f4", "e8", "e8", "e8", "e8", "e8", "f8", "g4",
    "g8", "e8", "e4", "f8", "d8", "d4", "c8", "e8", "g8", "g8", "e8", "e8", "e4",
]  # fmt: skip


def test_nabiya_comes_first_and_is_the_tutorials_song():
    assert song_names()[0] == "nabiya"
    song = nabiya()
    assert song.codes == TUTORIAL_SEQ == NABIYA_CODES.split()
    assert len(song) == 54
    assert song.tempo_bpm == 120.0
    assert song == get_song("나비야") == get_song("NABIYA")


def test_a_handful_of_other_tunes():
    assert 6 <= len(song_names()) <= 8
    assert len(set(song_names())) == len(song_names())


@pytest.mark.parametrize("name", song_names())
def test_every_built_in_song_fills_its_bars(name):
    song = get_song(name)
    meter = parse_meter(song.meter)
    bars = split_into_bars(song.notes, bar_quarters(meter))
    assert all(sum(piece.duration for piece in bar) == bar_quarters(meter) for bar in bars)
    assert not any(piece.tied for bar in bars for piece in bar)  # no note crosses a bar line


@pytest.mark.parametrize("name", song_names())
def test_every_built_in_song_survives_abc_and_midi(name):
    song = get_song(name)
    assert song_from_abc(song_to_abc(song)) == song
    assert song_from_midi(song_to_midi(song)) == song


def test_some_songs_need_more_than_the_tutorials_vocabulary():
    tutorial = set(Vocabulary.tutorial().tokens)
    beyond = [name for name in song_names() if {note.token for note in get_song(name).notes} - tutorial]
    assert len(beyond) >= 2
    every_note = [note for name in song_names() for note in get_song(name).notes]
    assert any(note.spelling and "#" in note.spelling for note in every_note)  # sharps
    assert any(note.spelling and note.spelling.endswith("b") for note in every_note)  # flats
    assert any(note.duration in (Fraction(3, 2), Fraction(3, 4)) for note in every_note)  # dotted
    assert any(note.pitch is not None and note.pitch < 60 for note in every_note)  # below middle C
    ranges = [max(n.pitch for n in get_song(name).notes) - min(n.pitch for n in get_song(name).notes) for name in song_names()]
    assert max(ranges) > 12  # more than an octave


def test_well_known_openings():
    assert get_song("twinkle").codes[:7] == ["c4", "c4", "g4", "g4", "a4", "a4", "g2"]
    assert get_song("ode_to_joy").codes[:4] == ["f#4", "f#4", "g4", "a4"]
    assert get_song("Frère Jacques").codes[8:11] == ["a4", "bb4", "c'2"]


def test_an_unknown_song_lists_the_known_ones():
    with pytest.raises(NabiyaError, match="nabiya, twinkle"):
        get_song("no such song")


def test_describe_songs_gives_one_row_per_song():
    rows = describe_songs()
    assert [row["name"] for row in rows] == song_names()
    assert list(rows[0]) == ["name", "title", "notes", "distinct tokens", "range"]
    assert rows[0] == {"name": "nabiya", "title": "나비야 (Butterfly)", "notes": 54, "distinct tokens": 9, "range": "C4–G4"}
    by_name = {row["name"]: row for row in rows}
    assert by_name["ode_to_joy"]["range"] == "A3–A4"
    assert by_name["frere_jacques"]["range"] == "C4–D5"


def test_a_piano_roll_marks_the_wrong_notes_of_a_prediction_in_red():
    from matplotlib.colors import to_hex

    from nabiya.music.note import parse_code
    from nabiya.plots import plot_piano_roll

    truth = nabiya()
    notes = list(truth.notes)
    notes[3] = parse_code("a8")  # a wrong pitch
    notes[10] = parse_code("r8")  # a rest where a note belongs
    prediction = truth.with_notes(notes + [parse_code("c4")])  # and one note too many
    figure = plot_piano_roll(truth, prediction, title="nabiya")
    axes = figure.axes[0]
    red = [bar for bar in axes.patches if to_hex(bar.get_facecolor()) == "#d62728"]
    assert len(red) == 3
    assert sorted(bar.get_x() for bar in red) == [2.0, 6.0, 32.0]  # where those notes start, in quarters
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["song (truth)", "prediction: right", "prediction: wrong (3 of 55)"]
    assert "rest" in [label.get_text() for label in axes.get_yticklabels()]
    import matplotlib.pyplot as plt

    plt.close(figure)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Song.from_codes("c:999999999"), "longer than nabiya's limit of 256"),
        (lambda: Song.from_codes("c4", tempo_bpm=0.00001), "outside nabiya's range of 1 to 1000"),
        (lambda: Song.from_codes("c4", tempo_bpm=float("nan")), "outside nabiya's range"),
        (lambda: Song.from_codes(["c1"] * 100_001), "longer than nabiya's limit of 100000"),
        (lambda: Song.from_codes(["c:256"] * 400, tempo_bpm=1.0), "hours is longer than nabiya's limit of 6 hours"),
        (lambda: Song.from_codes("c4", meter="3/5"), "is not a meter"),
        (lambda: Song.from_codes("c4", key="H major"), "is not a key"),
        (lambda: Song.from_codes("c4", pickup=-1), "at least 0"),
    ],
)
def test_songs_beyond_the_documented_limits_are_refused_as_they_are_built(build, message):
    with pytest.raises(NabiyaError, match=message):
        build()
