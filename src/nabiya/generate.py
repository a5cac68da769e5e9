"""Predictions, compiled whole: one-step prediction along a song, and continuing a melody.

- :func:`predict_windows` is the tutorial's one-step prediction (and its evaluation):
  the true windows go in, one next-note distribution comes out per window.
- :func:`continue_greedy` is its full-song prediction: only a primer window is given,
  and the model continues from its own output, one ``lax.scan`` for the whole melody.

A stateful model starts from a reset state and carries its state from each window to
the next; a stateless one starts every window from the reset state.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nabiya.models import Model


@eqx.filter_jit
def _predict_windows(model: Model, inputs: jax.Array, stateful: bool) -> jax.Array:
    initial_state = model.initial_state()
    if not stateful:
        return jax.vmap(lambda window: model(window, initial_state)[0])(inputs)

    def step(state, window):
        logits, state = model(window, state)
        return state, logits

    _, logits = jax.lax.scan(step, initial_state, inputs)
    return logits


def predict_windows(model: Model, inputs: np.ndarray, *, stateful: bool) -> np.ndarray:
    """Logits for each window, shape ``(n_samples, n_classes)``.

    Args:
        model: a trained model.
        inputs: windows as features, shape ``(n_samples, window, n_features)``, in song order.
        stateful: carry the state from each window to the next (after a reset).
    """
    return np.asarray(_predict_windows(model, jnp.asarray(inputs, jnp.float32), stateful))


@eqx.filter_jit
def _continue_greedy(model: Model, feature_table: jax.Array, primer: jax.Array, steps: int, stateful: bool):
    initial_state = model.initial_state()

    def step(carry, _):
        window, state = carry
        logits, next_state = model(feature_table[window], state)
        token = jnp.argmax(logits).astype(window.dtype)
        window = jnp.concatenate([window[1:], token[None]])
        return (window, next_state if stateful else initial_state), token

    _, tokens = jax.lax.scan(step, (primer, initial_state), None, length=steps)
    return tokens


def continue_greedy(
    model: Model, feature_table: np.ndarray, primer: np.ndarray, steps: int, *, stateful: bool
) -> np.ndarray:
    """Continue a melody by always taking the likeliest next token (the tutorial's argmax).

    Args:
        model: a trained model.
        feature_table: features of every token, shape ``(vocab_size, n_features)``.
        primer: the first window's token indices, shape ``(window,)``.
        steps: how many tokens to add.
        stateful: carry the state between steps (each step reads the whole current window).

    Returns:
        The new token indices, shape ``(steps,)``, int32.
    """
    tokens = _continue_greedy(
        model, jnp.asarray(feature_table, jnp.float32), jnp.asarray(primer, jnp.int32), steps, stateful
    )
    return np.asarray(tokens)
