"""Corpus models: the one model contract, sequence logits equal to step-by-step reading, resets, masks, dropout."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nabiya.corpus_config import CorpusModelConfig, CorpusTrainConfig, corpus_preset
from nabiya.corpus_models import FolkLSTM, make_corpus_model
from nabiya.corpus_train import batch_loss, initial_carry
from nabiya.errors import NabiyaError

V = 23
# The LSTM factored (pitch and duration vectors shared across tokens), the transformer tied (head = embedding).
LSTM = CorpusModelConfig("lstm", size=16, layers=2, embedding_size=6, dropout=0.3, factored=True)
TRANSFORMER = CorpusModelConfig("transformer", size=16, layers=2, heads=2, context=12, dropout=0.3, tied=True)
PARTS = np.stack([np.arange(V) % 5, np.arange(V) % 3], axis=1)  # each token's pitch and duration ids


@pytest.fixture(scope="module")
def lstm():
    return make_corpus_model(LSTM, vocab_size=V, key=jax.random.key(1), token_parts=PARTS)


@pytest.fixture(scope="module")
def transformer():
    return make_corpus_model(TRANSFORMER, vocab_size=V, key=jax.random.key(2))


def _stepwise(model, tokens, resets):
    """The reference: one token at a time through the contract, the state reset by hand at each tune start."""
    step = jax.jit(lambda token, state: model(token[None], state))
    state, rows = model.initial_state(), []
    for token, reset in zip(tokens, resets):
        if reset:
            state = model.initial_state()
        logits, state = step(jnp.int32(token), state)
        rows.append(np.asarray(logits))
    return np.stack(rows), state


def test_both_models_keep_the_contract(lstm, transformer):
    """Shapes only (``eval_shape``: nothing to compile)."""
    logits, state = jax.eval_shape(lstm, jnp.array([1]), lstm.initial_state())
    assert logits.shape == (V,) and lstm.window == 1 and lstm.stateful
    assert state[0].shape == (2, 16) and state[1].shape == (2, 16)
    logits, state = jax.eval_shape(lambda tokens: transformer(tokens, ()), jnp.arange(12) % V)
    assert logits.shape == (V,) and transformer.window == 12 and not transformer.stateful and state == ()
    for model in (lstm, transformer):
        sequence, _ = jax.eval_shape(lambda: model.sequence_logits(jnp.array([1, 5, 6, 7]), model.initial_state(),
                                                                   jnp.array([1, 0, 0, 0], bool)))  # fmt: skip
        assert sequence.shape == (4, V)


def test_lstm_sequence_logits_with_resets_equal_reading_token_by_token_across_chunks(lstm):
    """TBPTT's reference: two chunks of one stream (a tune starts mid-chunk), the state carried between
    them, equal one token at a time with the state reset by hand where each tune starts."""
    tokens = np.array([1, 4, 9, 9, 12, 2, 1, 5, 6, 7, 8, 2, 1, 4, 4, 3], np.int32)
    resets = tokens == 1
    reference, final = _stepwise(lstm, tokens, resets)
    run = jax.jit(lambda t, s, r: lstm.sequence_logits(t, s, r))
    first, carried = run(tokens[:7], lstm.initial_state(), resets[:7])
    second, state = run(tokens[7:], carried, resets[7:])
    np.testing.assert_allclose(np.concatenate([first, second]), reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state[0], final[0], rtol=1e-5, atol=1e-6)
    # Without the resets the second tune would remember the first: the resets matter.
    unreset, _ = run(tokens[:7], lstm.initial_state(), np.zeros(7, bool))
    assert not np.allclose(unreset[6:], reference[6:7], atol=1e-4)


def test_transformer_attends_only_within_each_tune_of_a_packed_row(transformer):
    first, second = np.array([1, 4, 9, 12, 2], np.int32), np.array([1, 5, 6, 2], np.int32)
    row = np.concatenate([first, second, [0, 0, 0]])
    resets = np.zeros(12, bool)
    resets[[0, 5]] = True
    run = jax.jit(lambda t, r: transformer.sequence_logits(t, (), r)[0])
    packed = np.asarray(run(row, resets))
    np.testing.assert_allclose(packed[:5], run(first, np.eye(5, dtype=bool)[0]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(packed[5:9], run(second, np.eye(4, dtype=bool)[0]), rtol=1e-5, atol=1e-5)


def test_a_short_prompt_is_read_left_padded_as_the_start_of_a_tune(transformer):
    prompt = np.array([1, 4, 9], np.int32)
    padded = np.concatenate([np.zeros(9, np.int32), prompt])
    last, _ = jax.jit(lambda t: transformer(t, ()))(padded)
    alone, _ = jax.jit(lambda t: transformer.sequence_logits(t, ()))(prompt)
    np.testing.assert_allclose(last, alone[-1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_dropout_only_with_a_key(kind, lstm, transformer):
    model = lstm if kind == "lstm" else transformer
    tokens = jnp.array([1, 4, 9, 12, 2, 5])
    run = jax.jit(lambda key: model.sequence_logits(tokens, model.initial_state(), key=key)[0])
    plain = np.asarray(jax.jit(lambda: model.sequence_logits(tokens, model.initial_state())[0])())
    first, again, other = run(jax.random.key(0)), run(jax.random.key(0)), run(jax.random.key(1))
    assert not np.allclose(first, plain) and np.array_equal(first, again) and not np.allclose(first, other)


def test_padding_and_unscored_positions_stay_out_of_the_loss(lstm):
    params, static = eqx.partition(lstm, eqx.is_inexact_array)
    inputs = np.array([[1, 4, 9, 12, 0, 0], [1, 5, 6, 7, 8, 2]], np.int32)
    targets = np.array([[4, 9, 12, 2, 0, 0], [5, 6, 7, 8, 2, 0]], np.int32)
    mask = inputs > 0
    mask[1, 5] = False
    batch = {"inputs": inputs, "targets": targets, "mask": mask, "score_mask": mask, "resets": inputs == 1}
    loss = jax.jit(lambda p, b: jax.value_and_grad(batch_loss, has_aux=True)(p, static, b, initial_carry(lstm, 2), None))
    (value, (_, _, scored)), grads = loss(params, batch)
    changed = dict(batch, inputs=np.where(mask, inputs, 7), targets=np.where(mask, targets, 11))
    (value2, _), grads2 = loss(params, changed)
    assert float(value) == pytest.approx(float(value2), abs=1e-6) and int(scored) == 9
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads2)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_configs_validate_themselves_with_clear_errors():
    with pytest.raises(NabiyaError, match="must divide by its heads"):
        CorpusModelConfig("transformer", size=30, heads=4).validate()
    with pytest.raises(NabiyaError, match="unknown corpus model kind 'gru'"):
        CorpusModelConfig("gru").validate()
    with pytest.raises(NabiyaError, match="a multiple of the steps per block"):
        CorpusTrainConfig(validate_every=15, steps_per_block=10).validate()
    with pytest.raises(NabiyaError, match="cannot be longer than its context"):
        corpus_preset("folk-transformer").replace(length=512)
    with pytest.raises(NabiyaError, match="unknown corpus preset 'folk-gru': choose one of folk-lstm, folk-transformer"):
        corpus_preset("folk-gru")
    with pytest.raises(NabiyaError, match="a factored model needs each token's pitch and duration"):
        make_corpus_model(LSTM, vocab_size=5, key=jax.random.key(0))
    with pytest.raises(NabiyaError, match=r"a tied LSTM's embedding size \(6\) must be its size \(16\)"):
        CorpusModelConfig("lstm", size=16, embedding_size=6, tied=True).validate()
    plain = CorpusModelConfig("lstm", size=8)
    assert isinstance(jax.eval_shape(lambda: make_corpus_model(plain, vocab_size=5, key=jax.random.key(0))), FolkLSTM)


def test_a_factored_model_shares_what_it_learns_of_a_pitch_and_of_a_duration(lstm):
    """Tokens 0 and 15 share their pitch (0) and duration (0): their head rows differ only by their own rows."""
    from nabiya.corpus_models import _head_matrix

    head = np.asarray(_head_matrix(lstm))
    own = np.asarray(lstm.head_weight)
    shared = head - own
    np.testing.assert_allclose(shared[0], shared[15], rtol=1e-6)
    assert not np.allclose(shared[0], shared[1])
