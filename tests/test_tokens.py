"""Tune tokens: songs to ids and back (meter, key, pickup kept), transposition, augmentation, rare tokens."""

import dataclasses
import json
from fractions import Fraction

import numpy as np
import pytest

from nabiya.errors import NabiyaError
from nabiya.music.corpus import Corpus, Split
from nabiya.music.song import Song
from nabiya.music.transpose import shift_to_c, transpose, transpose_key
from nabiya.tokens import (
    BOS,
    EOS,
    UNK,
    TokenConfig,
    TuneVocabulary,
    build_vocabulary,
    tokenize_corpus,
)

JIG = Song.from_codes("a8 d'4 f#'8 a'8 f#'8 d'8 e'4 g'8 g'8 f#'8 e'8 d'4. d'4", title="jig",
                      meter="6/8", key="D major", pickup=Fraction(1, 2))  # fmt: skip
AIR = Song.from_codes("e4 f#4 g4 a2 b4 c'4 b4 a4 b2. e4 r4 e2", meter="3/4", key="E dorian")
NO_KEY = Song.from_codes("c4 e4 g4 c'2 r8 g8 e4 c2")
LAMENT = Song.from_codes("f#4 a4 c#'4 b8 a8 g#4 f#2", meter="4/4", key="F# minor")  # moved up 6 to C, so back down 6


def _tune(song: Song, tune_id: str) -> Song:
    return dataclasses.replace(song, meta={"id": tune_id})


def _tonic(song: Song) -> str | None:
    return song.key.split()[0] if song.key else None


@pytest.mark.parametrize("transpose_to_c", [True, False])
@pytest.mark.parametrize("song", [JIG, AIR, NO_KEY, LAMENT], ids=["jig", "air", "no key", "f# minor"])
def test_a_song_comes_back_from_its_tokens(song, transpose_to_c):
    vocab = build_vocabulary([JIG, AIR, NO_KEY, LAMENT], TokenConfig(transpose=transpose_to_c, min_count=1))
    ids = vocab.encode(song)
    assert ids.dtype == np.int32 and ids[0] == BOS and ids[-1] == EOS
    assert len(ids) == vocab.prefix_length + len(song) + 1
    back = vocab.decode(ids, tonic=_tonic(song) if transpose_to_c else None)
    assert back.notes == song.notes
    assert (back.meter, back.key, back.pickup) == (song.meter, song.key, song.pickup)
    assert [note.spelling for note in back.notes if note.pitch is not None][:3] == [
        note.spelling for note in song.notes if note.pitch is not None
    ][:3]


def test_transposed_to_c_a_tune_has_the_same_tokens_in_every_key_and_comes_back_in_any():
    vocab = build_vocabulary([JIG], TokenConfig(min_count=1))
    in_e = transpose(JIG, 2)
    assert in_e.key == "E major"
    assert np.array_equal(vocab.encode(in_e), vocab.encode(JIG))
    assert vocab.decode(vocab.encode(JIG)).key == "C major"  # no tonic given: the tune stays in C
    assert vocab.decode(vocab.encode(JIG)).notes == transpose(JIG, shift_to_c("D major")).notes
    back = vocab.decode(vocab.encode(JIG), tonic="E")
    assert back.notes == in_e.notes and back.key == "E major"
    assert [vocab.tokens[i] for i in vocab.encode(JIG)[:4]] == ["<bos>", "<meter:6/8>", "<mode:major>", "<pickup:1/2>"]


def test_without_transposition_the_tonic_is_a_token():
    vocab = build_vocabulary([JIG, AIR], TokenConfig(transpose=False, min_count=1))
    assert [vocab.tokens[i] for i in vocab.encode(AIR)[:5]] == [
        "<bos>", "<meter:3/4>", "<mode:dorian>", "<tonic:E>", "<pickup:0>"]  # fmt: skip
    moved = vocab.decode(vocab.encode(AIR), tonic="G")
    assert moved.key == "G dorian" and moved.notes == transpose(AIR, 3).notes


def test_keys_move_with_the_fewest_accidentals():
    assert transpose_key("D major", 1) == "Eb major" and transpose_key("A minor", 1) == "Bb minor"
    assert [shift_to_c(key) for key in ("C major", "G major", "F major", "F# minor", "Bb dorian")] == [0, 5, -5, 6, 2]
    with pytest.raises(NabiyaError, match="MIDI's pitch range"):
        transpose(Song.from_codes("c4", key="C major"), 100)


def _corpus(*songs: Song) -> Corpus:
    return Corpus(tuple(songs))


def _split(train, valid=(), test=()) -> Split:
    return Split(tuple(train), tuple(valid), tuple(test))


def test_augmentation_adds_moved_copies_of_training_tunes_only():
    corpus = _corpus(_tune(JIG, "a#1"), _tune(AIR, "a#2"), _tune(NO_KEY, "a#3"))
    data = tokenize_corpus(corpus, TokenConfig(transpose=False, augment=(-1, 2), min_count=1),
                           split=_split(["a#1", "a#2"], ["a#3"]))  # fmt: skip
    assert data.train_ids == ("a#1", "a#1@-1", "a#1@+2", "a#2", "a#2@-1", "a#2@+2")
    assert data.valid_ids == ("a#3",) and data.test == ()
    vocab = data.vocab
    assert vocab.decode(data.train[2], tonic=None).key == "E major"
    assert vocab.decode(data.train[2]).notes == transpose(JIG, 2).notes
    with pytest.raises(NabiyaError, match="transpose=False"):
        TokenConfig(augment=(1,))


def test_tokenizing_a_corpus_is_encoding_each_tune():
    corpus = _corpus(_tune(JIG, "a#1"), _tune(AIR, "a#2"), _tune(NO_KEY, "a#3"), _tune(transpose(AIR, -3), "a#4"))
    for config in (TokenConfig(min_count=1), TokenConfig(min_count=2), TokenConfig(transpose=False, min_count=1)):
        data = tokenize_corpus(corpus, config, split=_split(["a#1", "a#2", "a#4"], ["a#3"]))
        for sequence, tune_id in zip(data.train + data.valid, data.train_ids + data.valid_ids):
            assert np.array_equal(sequence, data.vocab.encode(corpus.song(tune_id)))
        again = tokenize_corpus(corpus, split=_split([], [], ["a#1", "a#3"]), vocab=data.vocab)  # a saved model's
        assert again.vocab is data.vocab and again.train == ()
        assert np.array_equal(again.test[1], data.valid[0])


def test_rare_notes_become_unknown_or_drop_their_tunes():
    common = Song.from_codes("c4 d4 e4 c4 d4 e4 c4 d4", key="C major", meter="4/4")
    rare = Song.from_codes("c4 d4 e4 f#16 c4 d4 e4 c4", key="C major", meter="4/4")  # f#16: once
    unseen = Song.from_codes("c4 d4 e4 b,8 c4 d4 e4 c4", key="C major", meter="4/4")  # b,8: not in training
    corpus = _corpus(_tune(common, "t#1"), _tune(rare, "t#2"), _tune(unseen, "t#3"))
    split = _split(["t#1", "t#2"], [], ["t#3"])
    data = tokenize_corpus(corpus, TokenConfig(min_count=2), split=split)
    assert "f#16" not in data.vocab.tokens and "c4" in data.vocab.tokens
    assert (data.train[1] == UNK).sum() == 1 and (data.test[0] == UNK).sum() == 1
    assert data.rare["rare_tokens"] == 1 and data.rare["rare_occurrences"] == 1
    assert data.rare["unseen_tokens"] == 1 and data.rare["unknown_positions"] == {"train": 1, "valid": 0, "test": 1}
    assert data.vocab.score_mask(np.array([UNK]))[0]  # an <unk> target is scored, like a note
    dropped = tokenize_corpus(corpus, TokenConfig(min_count=2, rare="drop"), split=split)
    assert dropped.train_ids == ("t#1",) and dropped.test_ids == ()
    assert dropped.dropped == {"train": ("t#2",), "valid": (), "test": ("t#3",)}
    assert not any((sequence == UNK).any() for sequence in dropped.train)
    with pytest.raises(NabiyaError, match="<unk>"):
        data.vocab.decode(data.train[1])
    assert len(data.vocab.decode(data.train[1], unknown="skip")) == len(rare) - 1


def test_only_notes_the_unknown_and_the_end_are_scored():
    vocab = build_vocabulary([JIG], TokenConfig(min_count=1))
    ids = vocab.encode(JIG)
    scored = vocab.score_mask(ids)
    assert not scored[: vocab.prefix_length].any() and scored[vocab.prefix_length :].all()
    pitches, names = vocab.pitch_groups
    assert names[pitches[EOS]] == "end" and names[pitches[ids[4]]] == str(JIG.notes[0].pitch + shift_to_c("D major"))


def test_a_vocabulary_survives_json_and_prompts_ask_for_a_jig_in_d():
    vocab = build_vocabulary([JIG, AIR, JIG], TokenConfig(min_count=1))
    again = TuneVocabulary.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again == vocab and again.conditions == vocab.conditions
    assert np.array_equal(again.encode(AIR), vocab.encode(AIR))
    prompt = vocab.prompt(meter="6/8", key="D major", pickup=Fraction(1, 2))
    assert np.array_equal(prompt, vocab.encode(JIG)[: vocab.prefix_length])
    assert vocab.decode(np.concatenate([prompt, vocab.encode(JIG)[vocab.prefix_length :]]), tonic="D").notes == JIG.notes
    unknown = vocab.prompt(meter="5/4", key="F lydian")
    assert [vocab.tokens[i] for i in unknown[1:3]] == ["<meter:?>", "<mode:?>"]
    drawn = [vocab.tokens[i] for i in vocab.draw_prompt(np.random.default_rng(0), mode="major")]
    assert drawn == ["<bos>", "<meter:6/8>", "<mode:major>", "<pickup:1/2>"]  # the only major tune's
    with pytest.raises(NabiyaError, match="no training tune"):
        vocab.draw_prompt(np.random.default_rng(0), meter="2/4")
    with pytest.raises(NabiyaError, match="not a nabiya tune vocabulary"):
        TuneVocabulary.from_json({"format": "other"})
