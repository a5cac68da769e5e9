"""Models: Keras's initialisation, the one call contract, and the scanned LSTM against a step-by-step one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nabiya.config import ModelConfig
from nabiya.encoding import Vocabulary
from nabiya.generation import predict_windows
from nabiya.models import LSTM, MLP, make_model


TABLE = Vocabulary.tutorial().feature_table("pitch_length")  # (14, 2)


def _lstm(hidden=128, classes=12, seed=5, stateful=True):
    return make_model(ModelConfig("lstm", hidden, "pitch_length", stateful=stateful), feature_table=TABLE, window=4,
                      n_classes=classes, key=jax.random.key(seed))


def test_lstm_is_initialised_as_keras_does():
    model = _lstm()
    hidden = 128
    bias = np.asarray(model.cell.bias)
    assert np.all(bias[hidden:2 * hidden] == 1.0)  # unit_forget_bias
    assert np.all(np.delete(bias, np.s_[hidden:2 * hidden]) == 0.0)
    # Orthogonal recurrent kernel: Keras's (H, 4H) kernel has orthonormal rows.
    recurrent = np.asarray(model.cell.weight_hh)  # (4H, H) = Keras kernel transposed
    np.testing.assert_allclose(recurrent.T @ recurrent, np.eye(hidden), atol=1e-5)
    # Glorot uniform: within sqrt(6 / (fan_in + fan_out)), and spread across it.
    limit = np.sqrt(6 / (2 + 4 * hidden))
    kernel = np.asarray(model.cell.weight_ih)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    head_limit = np.sqrt(6 / (hidden + 12))
    assert np.abs(np.asarray(model.head.weight)).max() <= head_limit
    assert np.all(np.asarray(model.head.bias) == 0.0)


def test_mlp_is_dense_128_128_with_zero_biases():
    table = Vocabulary.tutorial().feature_table("index")  # (14, 1)
    model = make_model(ModelConfig("mlp", 128, "index"), feature_table=table, window=4, n_classes=12,
                       key=jax.random.key(5))
    assert isinstance(model, MLP) and not model.stateful
    shapes = [layer.weight.shape for layer in model.mlp.layers]
    assert shapes == [(128, 4), (128, 128), (12, 128)]
    assert all(np.all(np.asarray(layer.bias) == 0.0) for layer in model.mlp.layers)
    logits, state = model(jnp.array([0, 1, 2, 3]), ())
    assert logits.shape == (12,) and state == ()


def test_same_key_same_weights_other_key_other_weights():
    a, b, c = _lstm(seed=1), _lstm(seed=1), _lstm(seed=2)
    assert np.array_equal(a.cell.weight_hh, b.cell.weight_hh)
    assert not np.array_equal(a.cell.weight_hh, c.cell.weight_hh)


@pytest.mark.slow
def test_scanned_lstm_equals_step_by_step():
    model = _lstm()
    assert isinstance(model, LSTM)
    windows = jax.random.randint(jax.random.key(0), (6, 4), 0, len(TABLE))
    # One window: the model's scan against the cell called note by note on the notes' features.
    state = model.initial_state()
    logits, final = model(windows[0], state)
    h, c = state
    for note in TABLE[windows[0]]:
        h, c = model.cell(note, (h, c))
    np.testing.assert_allclose(final[0], h, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(final[1], c, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits, model.head(h), rtol=1e-6, atol=1e-6)
    # A stateful pass over windows (one scan) against a Python loop carrying the state.
    scanned = predict_windows(model, np.asarray(windows))
    state = model.initial_state()
    stepped = []
    for window in windows:
        for note in TABLE[window]:
            state = model.cell(note, state)
        stepped.append(model.head(state[0]))
    np.testing.assert_allclose(scanned, np.stack(stepped), rtol=1e-5, atol=1e-6)
    # Stateless: every window from a reset state, so it differs from the stateful pass after the first.
    stateless = predict_windows(_lstm(stateful=False), np.asarray(windows))
    np.testing.assert_allclose(stateless[0], scanned[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(stateless[1:], scanned[1:])


def test_a_model_owns_its_encoding_and_statefulness_and_trains_only_its_weights():
    """The feature table is the model's input encoding: part of it, fixed, never trained (issue 9.2)."""
    import equinox as eqx

    from nabiya.models import trainable

    model = _lstm()
    assert model.stateful and model.window == 4
    np.testing.assert_array_equal(model.features, TABLE)
    params, static = eqx.partition(model, trainable(model))
    assert params.features is None and static.features is not None
    assert params.cell.weight_hh is not None and params.head.weight is not None
