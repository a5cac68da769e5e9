"""Continuing melodies: greedy as the tutorial, sampling, beam search, and saved models."""

from __future__ import annotations

import dataclasses
import functools
import itertools

import equinox as eqx
import jax
import numpy as np
import pytest

from nabiya.checkpoint import load_model, save_model
from nabiya.config import preset
from nabiya.data import count_classes, make_windows
from nabiya.encoding import Vocabulary
from nabiya.errors import NabiyaError
from nabiya.generation import (
    Beam,
    Greedy,
    Temperature,
    TopK,
    TopP,
    beam_search,
    continue_greedy,
    continue_song,
    generate,
    log_prob,
    make_strategy,
    predict_windows,
)
from nabiya.models import make_model
from nabiya.music.note import parse_codes
from nabiya.music.songs import nabiya

SONG = nabiya()
VOCABULARY = Vocabulary.for_notes(SONG.notes)
INDICES = VOCABULARY.encode(SONG.notes)
WINDOWS = make_windows(INDICES, 4)
N_CLASSES = count_classes(WINDOWS)
PRIMER = INDICES[:4]


STEPS = 50  # one length throughout, so that each kind of continuation compiles once


@functools.lru_cache(maxsize=None)
def fresh(preset_name: str = "stateful2", seed: int = 0, stateful: bool | None = None):
    """An untrained model of a preset, made stateless or stateful if asked: its distributions are spread out."""
    config = preset(preset_name).model
    if stateful is not None:
        config = dataclasses.replace(config, stateful=stateful)
    table = VOCABULARY.feature_table(config.features)
    model = make_model(config, feature_table=table, window=4, n_classes=N_CLASSES, key=jax.random.key(seed))
    return model


@pytest.fixture(scope="module")
def trained(trained, tmp_path_factory):
    """The tutorial's stateful2 model after its 2000 epochs (the session's run), saved and loaded again."""
    path = trained("stateful2").save(tmp_path_factory.mktemp("trained") / "stateful2.safetensors")
    return load_model(path)


@pytest.fixture(scope="module")
def saved_untrained(tmp_path_factory):
    """An untrained stateful2 model saved with 나비야 and loaded again: a SavedModel in no time."""
    model = fresh()
    path = save_model(
        tmp_path_factory.mktemp("untrained") / "stateful2.safetensors", model, config=preset("stateful2"),
        vocabulary=VOCABULARY, song=SONG,
    )  # fmt: skip
    return load_model(path)


# --- the tutorial's result (trains the tutorial's model: marked slow) -------------------


@pytest.mark.slow
def test_a_reloaded_stateful2_model_continues_nabiya_with_the_rest_of_it_by_default(trained):
    notes = continue_song(trained)
    assert [note.code for note in notes] == SONG.codes[4:]
    assert np.array_equal(generate(trained.model, PRIMER, 50), INDICES[4:])


@pytest.mark.slow
def test_a_longer_primer_warms_up_the_state_on_its_windows_first(trained):
    # Reading only the last window from a reset state loses the song (about 1 note in 5 right).
    for length in (10, 30):
        notes = continue_song(trained, SONG.notes[:length])  # by default as many notes as the song has left
        assert [note.code for note in notes] == SONG.codes[length:], length


@pytest.mark.slow
def test_a_stateless_model_reads_only_the_primers_last_window():
    stateless = fresh(stateful=False)
    long = generate(stateless, INDICES[:10], STEPS)
    assert np.array_equal(long, generate(stateless, INDICES[6:10], STEPS))
    stateful = fresh()  # the same weights, carrying its state through the primer's windows
    assert not np.array_equal(long, generate(stateful, INDICES[:10], STEPS))


def test_the_default_length_fills_the_training_songs_length(saved_untrained):
    assert len(continue_song(saved_untrained)) == len(SONG) - 4
    assert len(continue_song(saved_untrained, SONG.notes[:10])) == len(SONG) - 10
    # A primer as long as the song gets as many notes as training predicted.
    assert len(continue_song(saved_untrained, SONG.notes + SONG.notes[:6])) == len(SONG) - 4


# --- greedy and narrow sampling -----------------------------------------------------------


@pytest.mark.parametrize("preset_name, stateful", [("mlp", False), ("stateful2", False), ("stateful2", True)])
def test_greedy_equals_the_tutorials_continue_greedy(preset_name, stateful):
    model = fresh(preset_name, seed=1, stateful=stateful)
    assert model.stateful == stateful
    expected = continue_greedy(model, PRIMER, STEPS)
    assert np.array_equal(generate(model, PRIMER, STEPS), expected)
    assert np.array_equal(generate(model, PRIMER, STEPS, strategy=Greedy()), expected)


@pytest.mark.parametrize("strategy", [TopK(1, temperature=5.0), TopP(1e-6, temperature=5.0), Beam(1)], ids=repr)
def test_the_narrowest_strategies_are_greedy(strategy):
    # An untrained model's distributions are nearly flat: the hardest case for "only the likeliest".
    model = fresh(seed=2)
    greedy = generate(model, PRIMER, STEPS)
    for seed in range(3):
        chosen = generate(model, PRIMER, STEPS, strategy=strategy, key=jax.random.key(seed))
        assert np.array_equal(chosen, greedy)


def test_a_very_low_temperature_is_greedy():
    model = fresh(seed=2)
    greedy = generate(model, PRIMER, STEPS)
    chosen = generate(model, PRIMER, STEPS, strategy=Temperature(1e-5), key=jax.random.key(0))
    assert np.array_equal(chosen, greedy)


# --- sampling -----------------------------------------------------------------------------


def test_the_same_key_gives_the_same_music_and_another_key_other_music(saved_untrained):
    saved = saved_untrained

    def sample(seed):
        return generate(
            saved.model, PRIMER, STEPS, strategy=Temperature(3.0),
            key=jax.random.key(seed),
        )  # fmt: skip

    assert np.array_equal(sample(1), sample(1))
    assert not np.array_equal(sample(1), sample(2))
    strategy = TopP(0.95, temperature=3.0)
    assert continue_song(saved, strategy=strategy, seed=7) == continue_song(saved, strategy=strategy, seed=7)
    assert continue_song(saved, strategy=strategy, seed=7) != continue_song(saved, strategy=strategy, seed=8)


def _first_note_samples(model, strategy, count):
    """The first sampled note under ``count`` keys, and the model's probabilities for it."""
    logits = predict_windows(model, PRIMER[None])[0]
    samples = np.array([
        generate(model, PRIMER, 1, strategy=strategy, key=jax.random.key(seed))[0]
        for seed in range(count)
    ])  # fmt: skip
    return samples, logits


@pytest.mark.slow
def test_temperature_sampling_draws_from_the_softened_softmax():
    model = fresh(seed=3)
    temperature = 0.05  # sharpens an untrained model's flat distribution into an uneven one
    samples, logits = _first_note_samples(model, Temperature(temperature), 600)
    expected = np.asarray(jax.nn.softmax(logits / temperature))
    frequencies = np.bincount(samples, minlength=N_CLASSES) / len(samples)
    assert expected.max() < 0.9 and np.sort(expected)[-2] > 0.05  # more than one likely note
    assert np.abs(frequencies - expected).max() < 0.06


def test_top_k_samples_only_among_the_k_likeliest():
    model = fresh(seed=3)
    samples, logits = _first_note_samples(model, TopK(3, temperature=2.0), 150)
    assert set(samples.tolist()) == set(np.argsort(-logits)[:3].tolist())


def test_top_p_samples_only_among_the_nucleus():
    model = fresh(seed=3)
    logits = predict_windows(model, PRIMER[None])[0]
    probabilities = np.sort(np.asarray(jax.nn.softmax(logits)))[::-1]
    # Just under the mass of the three likeliest notes: exactly those three make the nucleus.
    p = float(probabilities[:2].sum() + 0.5 * probabilities[2])
    samples, _ = _first_note_samples(model, TopP(p), 150)
    assert set(samples.tolist()) == set(np.argsort(-logits)[:3].tolist())


# --- beam search --------------------------------------------------------------------------


def test_beam_search_finds_the_best_continuations_when_wide_enough():
    model = fresh(seed=4)
    every = np.array(list(itertools.product(range(N_CLASSES), repeat=3)))  # all 1728 three-note continuations
    scores = log_prob(model, PRIMER, every)
    # Width 12 * 12 keeps every two-note prefix, so the search is exhaustive.
    tokens, beam_scores = beam_search(model, PRIMER, 3, width=N_CLASSES**2)
    best = np.argsort(-scores, kind="stable")[: N_CLASSES**2]
    np.testing.assert_allclose(beam_scores, scores[best], rtol=1e-5)
    assert np.array_equal(tokens[0], every[best[0]])
    assert np.array_equal(generate(model, PRIMER, 3, strategy=Beam(N_CLASSES**2)), tokens[0])


def test_each_beams_score_is_its_log_probability_and_the_best_comes_first():
    model = fresh(seed=5)
    tokens, scores = beam_search(model, PRIMER, STEPS, width=4)
    assert tokens.shape == (4, STEPS) and scores.shape == (4,)
    assert np.all(np.diff(scores) <= 0)
    np.testing.assert_allclose(log_prob(model, PRIMER, tokens), scores, rtol=1e-5)
    assert len({tuple(beam) for beam in tokens}) == 4


@pytest.mark.slow
def test_beam_search_scores_at_least_greedy_on_the_trained_model_and_beats_it_on_an_untrained_one(trained):
    greedy = generate(trained.model, PRIMER, STEPS)
    beam = generate(trained.model, PRIMER, STEPS, strategy=Beam(4))
    assert log_prob(trained.model, PRIMER, beam) >= log_prob(trained.model, PRIMER, greedy)
    model = fresh(seed=0)
    greedy = generate(model, PRIMER, STEPS)
    beam = generate(model, PRIMER, STEPS, strategy=Beam(4))
    beam_score = log_prob(model, PRIMER, beam)
    assert beam_score > log_prob(model, PRIMER, greedy) + 0.1


# --- one compiled loop ----------------------------------------------------------------------


class _CountingModel(eqx.Module):
    """A model that counts its Python-level calls: they happen only while JAX traces."""

    inner: eqx.Module
    calls: list = eqx.field(static=True)
    window: int = 4
    stateful: bool = True
    vocab_size: int = len(VOCABULARY)

    def __call__(self, window, state):
        self.calls.append(1)
        return self.inner(window, state)

    def initial_state(self):
        return self.inner.initial_state()


@pytest.mark.parametrize("strategy", [Greedy(), TopP(0.9), Beam(3)], ids=repr)
def test_a_continuation_is_one_compiled_loop_not_a_call_per_note(strategy):
    model = fresh()
    calls = []
    tokens = generate(_CountingModel(model, calls), INDICES[:6], STEPS, strategy=strategy, key=jax.random.key(0))
    assert tokens.shape == (STEPS,)
    # Traced once each: the warm-up's body, the step's body (and beam search's shape probe),
    # however many notes are made. A call per note would count 50.
    assert 1 <= len(calls) <= 4


# --- errors are for people ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Temperature(0.0), "temperature must be a number above 0, not 0.0"),
        (lambda: Temperature(-1), "temperature must be a number above 0"),
        (lambda: TopK(3, temperature=0), "temperature must be a number above 0"),
        (lambda: TopP(0.0), r"top-p must be in \(0, 1\]"),
        (lambda: TopP(1.5), r"top-p must be in \(0, 1\]"),
        (lambda: TopK(0), "top-k must be a whole number of at least 1, not 0"),
        (lambda: TopK(2.5), "top-k must be a whole number"),
        (lambda: Beam(0), "beam width must be a whole number of at least 1, not 0"),
        (lambda: make_strategy("nucleus"), "unknown strategy 'nucleus': choose one of greedy, temperature"),
        (lambda: make_strategy("greedy", top_p=0.9), "top_p=0.9 has no effect with the greedy strategy"),
        (lambda: make_strategy(top_k=3, beam_width=2), "choose one strategy: beam and top-k were asked for at once"),
    ],
)
def test_bad_strategies_are_one_line_errors(make, message):
    with pytest.raises(NabiyaError, match=message) as caught:
        make()
    assert "\n" not in str(caught.value)


def test_bad_generation_arguments_are_one_line_errors():
    model = fresh()
    cases = [
        (dict(primer=INDICES[:2]), "the primer has 2 notes: the model reads 4 at a time, so give at least 4"),
        (dict(steps=0), "the number of notes to add must be a whole number of at least 1, not 0"),
        (dict(primer=np.array([0, 1, 2, 40])), r"primer token 4 \(40\) is not an index of the 14-token vocabulary"),
        (dict(strategy=TopK(3)), "the top-k strategy samples: pass a PRNG key"),
    ]
    for changes, message in cases:
        arguments = dict(primer=PRIMER, steps=5, strategy=Greedy(), key=None)
        arguments.update(changes)
        with pytest.raises(NabiyaError, match=message):
            generate(model, arguments.pop("primer"), arguments.pop("steps"), **arguments)


def test_a_primer_note_outside_the_vocabulary_is_named_with_its_number(saved_untrained):
    with pytest.raises(NabiyaError, match=r"note 3 of the primer \(c#4\) is not in the model's vocabulary"):
        continue_song(saved_untrained, parse_codes("g8 e8 c#4 f8"))
    with pytest.raises(NabiyaError, match="the primer has 3 notes: the model reads 4 at a time"):
        continue_song(saved_untrained, SONG.notes[:3])
    with pytest.raises(NabiyaError, match="the seed must be a whole number from 0 to 4294967295"):
        continue_song(saved_untrained, seed=-1)


def test_make_strategy_builds_what_the_options_ask_for():
    assert make_strategy() == Greedy()
    assert make_strategy("greedy") == Greedy()
    assert make_strategy(temperature=0.7) == Temperature(0.7)
    assert make_strategy("top-k", top_k=3, temperature=2.0) == TopK(3, temperature=2.0)
    assert make_strategy(top_p=0.8) == TopP(0.8)
    assert make_strategy("top_p") == TopP()
    assert make_strategy("BEAM", beam_width=6) == Beam(6)
