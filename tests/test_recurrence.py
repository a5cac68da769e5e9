"""The LSTM recurrence with its own backward pass equals Equinox's cell differentiated by JAX."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nabiya.config import ModelConfig
from nabiya.models import make_model
from nabiya.recurrence import lstm_recurrence

HIDDEN, STEPS, BATCH = 6, 9, 2


def _cell_scan(projected, weight_hh, h0, c0, resets):
    """The reference: Equinox's LSTMCell step by step (its input share given), differentiated by JAX."""
    cell = eqx.nn.LSTMCell(1, HIDDEN, use_bias=False, key=jax.random.key(0))
    cell = eqx.tree_at(lambda c: (c.weight_ih, c.weight_hh), cell, (jnp.zeros((4 * HIDDEN, 1)), weight_hh))

    def one_sequence(projected, h, c, resets):
        def step(carry, inputs):
            row, reset = inputs
            h, c = (jnp.where(reset, 0.0, part) for part in carry)
            lin = row + cell.weight_hh @ h  # what the cell computes, its input share given
            i, f, g, o = jnp.split(lin, 4)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        (h, c), outputs = jax.lax.scan(step, (h, c), (projected, resets))
        return outputs, (h, c)

    outputs, (h, c) = jax.vmap(one_sequence, in_axes=(1, 0, 0, 1), out_axes=(1, 0))(projected, h0, c0, resets)
    return outputs, (h, c)


def _arguments(seed: int = 0):
    keys = jax.random.split(jax.random.key(seed), 4)
    projected = jax.random.normal(keys[0], (STEPS, BATCH, 4 * HIDDEN))
    weight_hh = 0.5 * jax.random.normal(keys[1], (4 * HIDDEN, HIDDEN))
    h0, c0 = (jax.random.normal(key, (BATCH, HIDDEN)) for key in keys[2:])
    resets = jnp.zeros((STEPS, BATCH), bool).at[0, 1].set(True).at[4, 0].set(True)
    return projected, weight_hh, h0, c0, resets


def test_its_outputs_and_gradients_equal_the_differentiated_cell_with_resets_anywhere():
    arguments = _arguments()
    weights = jax.random.normal(jax.random.key(7), (STEPS, BATCH, HIDDEN))  # a loss that uses every output

    def loss(function):
        def value(projected, weight_hh, h0, c0):
            outputs, (h, c) = function(projected, weight_hh, h0, c0, arguments[4])
            return jnp.sum(outputs * weights) + jnp.sum(h * h) + 0.5 * jnp.sum(c)

        return jax.jit(jax.value_and_grad(value, argnums=(0, 1, 2, 3)))

    expected_value, expected = loss(_cell_scan)(*arguments[:4])
    value, gradients = loss(lstm_recurrence)(*arguments[:4])
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    for name, got, want in zip(("projected", "weight_hh", "h0", "c0"), gradients, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
    # A reset at the first step cuts the gradient to the state before it, in that sequence only.
    assert np.all(np.asarray(gradients[2][1]) == 0) and np.any(np.asarray(gradients[2][0]) != 0)


def test_a_stateful_model_reads_windows_together_as_it_reads_them_one_by_one():
    config = ModelConfig("lstm", 16, "pitch_length", stateful=True)
    table = jax.random.uniform(jax.random.key(1), (9, 2))
    model = make_model(config, feature_table=table, window=4, n_classes=9, key=jax.random.key(2))
    windows = jax.random.randint(jax.random.key(3), (5, 4), 0, 9)
    state = (jnp.full(16, 0.1), jnp.full(16, -0.2))
    logits, final = eqx.filter_jit(lambda model, windows, state: model.run_windows(windows, state))(model, windows, state)
    one_window = eqx.filter_jit(lambda model, window, state: model(window, state))
    one_by_one = []
    for window in windows:
        window_logits, state = one_window(model, window, state)
        one_by_one.append(window_logits)
    np.testing.assert_allclose(logits, jnp.stack(one_by_one), rtol=1e-5, atol=1e-6)
    for got, want in zip(final, state):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_stateless_model_reads_each_window_on_its_own():
    model = make_model(ModelConfig("mlp", 8, "index"), feature_table=jnp.eye(5), window=4, n_classes=5,
                       key=jax.random.key(4))  # fmt: skip
    windows = jax.random.randint(jax.random.key(5), (3, 4), 0, 5)
    logits, state = model.run_windows(windows, model.initial_state())
    np.testing.assert_allclose(logits, jnp.stack([model(window, ())[0] for window in windows]), rtol=1e-5, atol=1e-6)
    assert state == ()
