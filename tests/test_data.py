"""The tutorial's data, exactly: song, dictionary, windows, both feature encodings."""

import numpy as np
import pytest

import tutorial_reference as tutorial
from nabiya.data import count_classes, make_windows
from nabiya.encoding import Vocabulary
from nabiya.errors import NabiyaError
from nabiya.music.songs import nabiya


def test_the_built_in_song_is_the_tutorials_seq():
    song = nabiya()
    assert len(song) == 54
    assert song.codes == tutorial.seq


def test_tutorial_dictionary_is_code2idx():
    vocabulary = Vocabulary.for_notes(nabiya().notes)
    assert vocabulary.name == "tutorial"
    assert vocabulary.codes == list(tutorial.code2idx)
    assert vocabulary.encode(nabiya().notes).tolist() == [tutorial.code2idx[c] for c in tutorial.seq]


def test_windows_equal_seq2dataset():
    expected = tutorial.seq2dataset(tutorial.seq, 4)
    song = nabiya()
    windows = make_windows(Vocabulary.for_notes(song.notes).encode(song.notes), 4)
    assert expected.shape == (50, 5)
    assert windows.inputs.tolist() == expected[:, :4].tolist()
    assert windows.targets.tolist() == expected[:, 4].tolist()
    assert windows.inputs[0].tolist() == [11, 9, 2, 10] and windows.targets[0] == 8  # g8 e8 e4 f8 -> d8


def test_output_size_is_the_tutorials_one_hot_vec_size():
    song = nabiya()
    windows = make_windows(Vocabulary.for_notes(song.notes).encode(song.notes), 4)
    assert count_classes(windows) == 12


def test_index_features_are_index_over_13():
    song = nabiya()
    vocabulary = Vocabulary.for_notes(song.notes)
    windows = make_windows(vocabulary.encode(song.notes), 4)
    features = windows.features(vocabulary.feature_table("index"))
    expected = (tutorial.seq2dataset(tutorial.seq, 4)[:, :4] / float(tutorial.max_idx_value)).reshape(50, 4, 1)
    assert features.shape == (50, 4, 1)
    np.testing.assert_array_equal(features, expected.astype(np.float32))


def test_two_features_are_pitch_over_6_and_length_code():
    song = nabiya()
    vocabulary = Vocabulary.for_notes(song.notes)
    windows = make_windows(vocabulary.encode(song.notes), 4)
    features = windows.features(vocabulary.feature_table("pitch_length"))
    x, y = tutorial.seq2dataset_features(tutorial.seq, 4)
    np.testing.assert_array_equal(features, np.reshape(x, (50, 4, 2)).astype(np.float32))
    assert windows.targets.tolist() == y[:, 0].tolist()


def test_a_song_shorter_than_window_plus_one_is_refused():
    with pytest.raises(NabiyaError, match="has 4 notes: a window of 4 needs at least 5"):
        make_windows(np.arange(4), 4)


def test_a_note_outside_the_vocabulary_names_its_position():
    from nabiya.music.note import parse_codes

    vocabulary = Vocabulary.tutorial()
    with pytest.raises(NabiyaError, match=r"note 3 of the song \(c#4\)"):
        vocabulary.encode(parse_codes("c4 d4 c#4"))


def test_other_songs_get_their_own_vocabulary_and_features():
    from nabiya.music.note import parse_codes

    notes = parse_codes("c4 e4 g4 c'2 r4 bb8 c4.")
    vocabulary = Vocabulary.for_notes(notes)
    assert vocabulary.name == "song"
    assert len(vocabulary) == len({n.token for n in notes})
    assert vocabulary.decode(vocabulary.encode(notes)) == notes
    table = vocabulary.feature_table("pitch_length")
    assert table.shape == (len(vocabulary), 2)
    assert table[:, 0].max() == 1.0 and -1.0 in table[:, 0]  # highest pitch 1, rest -1
    assert vocabulary.feature_table("onehot").shape == (len(vocabulary), len(vocabulary))
