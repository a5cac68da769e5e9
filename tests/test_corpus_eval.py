"""Corpus models evaluated and heard: the baselines' positions, whole tunes that stop at <eos>, batches equal singles."""

import json
from fractions import Fraction

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nabiya.corpus_config import CorpusModelConfig
from nabiya.corpus_eval import evaluate, generate_tunes, lasts_whole_bars
from nabiya.corpus_models import make_corpus_model
from nabiya.corpus_train import prepare_data
from nabiya.errors import NabiyaError
from nabiya.generation import Beam, Temperature, TopK, beam_search, generate, generate_batch
from nabiya.music.song import Song
from nabiya.tokens import EOS, UNK


@pytest.fixture(scope="module")
def report(tiny_corpus_run):
    return evaluate(tiny_corpus_run.folder)


def test_the_model_and_the_baselines_are_scored_on_exactly_the_test_tunes_scored_positions(tiny_corpus_run, report):
    data = prepare_data(tiny_corpus_run.config).tokens
    positions = data.scored_positions("test")
    assert report.positions == report.model.positions == report.ngram.positions == report.unigram.positions == positions
    assert report.tunes == 3 and report.ngram_order >= 1
    # The model's NLL, token by token through the model contract, tune by tune from a reset state.
    model, vocab = tiny_corpus_run.model, data.vocab
    step = jax.jit(lambda token, state: model(token[None], state))
    total = 0.0
    for sequence in data.test:
        state = model.initial_state()
        for token, target in zip(sequence[:-1], sequence[1:]):
            logits, state = step(jnp.int32(token), state)
            if vocab.is_scored[target]:
                total -= float(jax.nn.log_softmax(logits)[target])
    assert report.model.nll_nats == pytest.approx(total / positions, rel=1e-5)
    saved = json.loads((tiny_corpus_run.folder / "evaluation.json").read_text())
    assert saved["model"]["nll_nats"] == pytest.approx(report.model.nll_nats) and saved["positions"] == positions


def test_a_batch_of_tunes_stops_at_eos_and_equals_each_tune_made_alone(tiny_corpus_run):
    model, vocab = tiny_corpus_run.model, tiny_corpus_run.vocabulary
    prompts = np.stack([vocab.prompt(meter="6/8", key="D major"), vocab.prompt(meter="4/4", key="A minor")] * 3)
    allowed = vocab.is_scored.copy()
    allowed[UNK] = False
    key = jax.random.key(7)
    tokens, lengths = generate_batch(model, prompts, 60, strategy=Temperature(1.5), key=key, stop_token=EOS,
                                     allowed=allowed)  # fmt: skip
    assert tokens.shape == (6, 60) and (lengths >= 1).all() and (lengths <= 60).all()
    for row, length in zip(tokens, lengths):
        assert EOS not in row[: length - 1] and (row[length:] == EOS).all()
        assert allowed[row].all()  # never <unk>, a condition or <bos>
    assert (tokens[np.arange(6), lengths - 1] == EOS).any()
    for index in (0, 3, 5):
        alone, alone_length = generate_batch(model, prompts[index : index + 1], 60, strategy=Temperature(1.5),
                                             key=jax.random.fold_in(key, index)[None], stop_token=EOS,
                                             allowed=allowed)  # fmt: skip
        assert alone_length[0] == lengths[index] and np.array_equal(alone[0], tokens[index])


def test_a_transformer_reads_a_prompt_shorter_than_its_window_left_padded():
    model = make_corpus_model(CorpusModelConfig("transformer", size=16, layers=1, heads=2, context=32),
                              vocab_size=12, key=jax.random.key(0))  # fmt: skip
    prompt = np.array([1, 4, 5], np.int32)
    tokens, lengths = generate_batch(model, prompt[None], 40, strategy=TopK(3), key=jax.random.key(1), stop_token=2)
    assert tokens.shape == (1, 40) and 1 <= lengths[0] <= 40
    # generate() pads the same way; greedy is the same step by step
    greedy, _ = generate_batch(model, prompt[None], 5)
    assert np.array_equal(generate(model, prompt, 5), greedy[0])


class _Bigram(eqx.Module):
    """A model of the contract whose next token depends on the last one only: ``logits = log_probs[token]``."""

    log_probs: jax.Array  # (V, V)
    window: int = eqx.field(static=True, default=1)
    stateful: bool = eqx.field(static=True, default=False)

    @property
    def vocab_size(self) -> int:
        return self.log_probs.shape[0]

    def __call__(self, tokens, state=()):
        return self.log_probs[tokens[-1]], state

    def initial_state(self):
        return ()


def test_beam_search_ends_a_beam_at_its_stop_token():
    probs = np.full((8, 8), 1e-6)
    probs[1, 4] = 1.0  # <bos> -> 4
    probs[4, 2], probs[4, 5] = 0.6, 0.4  # 4 -> <eos> or 5
    probs[5, 5], probs[5, 6] = 0.5, 0.5
    probs[6, 5] = 1.0
    probs[2, 7] = 1.0  # after <eos> a model may say anything: a finished beam must not listen
    model = _Bigram(jnp.log(probs / probs.sum(axis=1, keepdims=True)))
    tokens, scores = beam_search(model, np.array([1]), 6, width=3, stop_token=EOS)
    assert tokens[0].tolist() == [4, 2, 2, 2, 2, 2] and scores[0] == pytest.approx(np.log(0.6), abs=1e-4)
    assert (np.diff(scores) <= 0).all() and 7 not in tokens
    unstopped, _ = beam_search(model, np.array([1]), 6, width=3)
    assert unstopped[0].tolist() != [4, 2, 2, 2, 2, 2]


def test_new_tunes_keep_the_meter_and_key_asked_for_and_are_written_as_music(tiny_corpus_run, tmp_path):
    tunes = generate_tunes(tiny_corpus_run.folder, count=3, meter="6/8", key="D", seed=4, max_tokens=40)
    assert len(tunes) == 3
    for song in tunes.songs:
        assert (song.meter, song.key) == ("6/8", "D major") and len(song.notes) >= 1
    text = tunes.abc(0)
    assert "M:6/8" in text and "K:D" in text and "L:" in text and "|" in text
    again = generate_tunes(tiny_corpus_run.folder, count=3, meter="6/8", key="D", seed=4, max_tokens=40)
    assert [song.codes for song in again.songs] == [song.codes for song in tunes.songs]
    written = {path.name for path in tunes.write(tmp_path / "tunes")}
    assert {f"tune_01{suffix}" for suffix in (".abc", ".mid", ".wav", ".musicxml", ".svg")} <= written
    assert "<audio" in tunes._repr_html_()
    drawn = generate_tunes(tiny_corpus_run.folder, count=4, seed=1, max_tokens=20)
    assert all(song.meter and song.key for song in drawn.songs)


def test_bad_generation_requests_are_refused_with_a_reason(tiny_corpus_run):
    folder = tiny_corpus_run.folder
    with pytest.raises(NabiyaError, match="'7/9' is not a meter"):
        generate_tunes(folder, meter="7/9")
    with pytest.raises(NabiyaError, match="'H' is not a key"):
        generate_tunes(folder, key="H")
    with pytest.raises(NabiyaError, match="no training tune has meter 5/4"):
        generate_tunes(folder, meter="5/4")
    with pytest.raises(NabiyaError, match="beam search continues a primer"):
        generate_tunes(folder, strategy=Beam(2))


def test_whole_bars_allow_a_pickup():
    jig = "a8 d4 e8 f#4 d8"  # an eighth's pickup, then a bar of 6/8
    assert lasts_whole_bars(Song.from_codes(jig + " d4. a4.", meter="6/8", pickup=Fraction(1, 2)))
    assert lasts_whole_bars(Song.from_codes(jig + " d4 a4.", meter="6/8", pickup=Fraction(1, 2)))  # last bar short
    assert not lasts_whole_bars(Song.from_codes(jig + " d4", meter="6/8", pickup=Fraction(1, 2)))
    assert not lasts_whole_bars(Song.from_codes(jig + " d4. a4."))  # no meter
