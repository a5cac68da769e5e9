"""Real folk tunes, not only 나비야: the stateful presets memorise and replay them, every note right.

The tunes span more than an octave and have rests and dotted notes. The tutorial's defaults
(LSTM 128, 2000 epochs, seed 5) are enough for each, so they are the defaults for every song.
"""

from pathlib import Path

import pytest

import nabiya
from nabiya.music.corpus import read_corpus_song

# Records of shared/data/folk_corpus.jsonl, copied into the repository (see tests/data/README.md).
CORPUS = Path(__file__).parent / "data" / "folk_corpus_sample.jsonl"

# Tunes of O'Neill's Music of Ireland (1850), chosen for their range, rests and dotted notes.
FOLK_TUNES = ["oneills1850/0001-0050.abc#9", "oneills1850/0001-0050.abc#21"]


def _check_real_tune(song):
    pitches = [note.pitch for note in song.notes if note.pitch is not None]
    assert max(pitches) - min(pitches) > 12, "spans more than an octave"
    assert any(note.is_rest for note in song.notes), "has rests"
    assert any(note.duration.denominator > 2 or note.duration in (0.75, 1.5, 3) for note in song.notes), "dotted"


def _assert_memorised(result):
    assert result.accuracy == 1.0
    assert result.full_song.matches == len(result.song) - 4, result.full_song.describe_first_mismatch()
    assert result.full_song.notes == result.song.notes[4:]


@pytest.mark.slow
@pytest.mark.parametrize("tune_id", FOLK_TUNES)
def test_stateful2_replays_a_folk_tune_from_the_corpus(tune_id):
    song = read_corpus_song(CORPUS, tune=tune_id)
    _check_real_tune(song)
    result = nabiya.run("stateful2", song=song, progress=False)
    assert result.vocabulary.name == "song" and len(result.vocabulary) > 14
    _assert_memorised(result)


def _music21_abc(relative: str) -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus" / relative


@pytest.mark.slow
def test_stateful_replays_a_tune_read_from_an_abc_file_inside_music21():
    path = _music21_abc("oneills1850/0001-0050.abc")
    song = nabiya.read_song(path, tune=9)
    _check_real_tune(song)
    result = nabiya.run("stateful", song=song, progress=False)
    _assert_memorised(result)


def test_the_abc_reader_agrees_with_the_corpus():
    # Tune 21, not 9: the corpus, extracted with music21, lost tune 9's broken rhythm after a tie
    # ("G-<E"); nabiya's reader and abc2midi read it as ABC 2.1 says (see shared/data/README.md).
    from_abc = nabiya.read_song(_music21_abc("oneills1850/0001-0050.abc"), tune=21)
    from_corpus = read_corpus_song(CORPUS, tune=FOLK_TUNES[1])
    assert [n.token for n in from_abc.notes] == [n.token for n in from_corpus.notes]
