"""The tutorial's networks as Equinox modules, initialised as Keras initialises them.

Every model of nabiya has one contract, whatever its kind, used alike by training,
evaluation, generation and the saved file::

    logits, state = model(tokens, state)    # tokens: (window,) int32 token indices
                                            # logits: (n_classes,), the next token's, before softmax
    state = model.initial_state()           # the state a reset gives
    model.window                            # how many tokens it reads at a time
    model.stateful                          # whether state carries from one window to the next
    logits, state = model.run_windows(windows, state)   # windows (K, window) -> logits (K, n_classes):
                                            # K windows read as the model reads them one by one

A model owns its input encoding: the tutorial's models hold a fixed table of features per
token (``features``, shape ``(vocab_size, n_features)``: the tutorial's ``code2idx / 13``, or
its pitch and length code) and look their input up in it, so whoever runs a model passes
token indices and nothing else. The table is part of the model but not trained
(:func:`trainable` says what is). A model also owns whether it is *stateful*: a stateful
model is run over windows in order, carrying its state from each to the next (the
tutorial's ``stateful=True``); a stateless one starts every window from the reset state.
Nobody can pass that flag wrong, because nobody passes it.

An MLP's state is ``()`` and passes through untouched; an LSTM's is ``(h, c)``, each
``(hidden_size,)``, and the state it returns is the one at the end of the window.
Models know nothing of songs, files or training.
"""

from __future__ import annotations

from typing import Protocol

import equinox as eqx
import jax
import jax.numpy as jnp

from nabiya.config import ModelConfig
from nabiya.errors import NabiyaError
from nabiya.recurrence import lstm_recurrence

LSTMState = tuple[jax.Array, jax.Array]


class Model(Protocol):
    """What every model of nabiya is (see the module docstring)."""

    window: int
    stateful: bool

    def __call__(self, tokens: jax.Array, state): ...

    def initial_state(self): ...

    def run_windows(self, windows: jax.Array, state): ...


class MLP(eqx.Module):
    """Dense layers over the flattened window's features: the tutorial's first model. Never stateful."""

    mlp: eqx.nn.MLP
    features: jax.Array  # (vocab_size, n_features), fixed
    window: int = eqx.field(static=True)
    stateful: bool = eqx.field(static=True, default=False)

    def __call__(self, tokens: jax.Array, state: tuple = ()) -> tuple[jax.Array, tuple]:
        """``tokens (W,)`` -> ``logits (C,)``; the state passes through."""
        return self.mlp(self.features[tokens].reshape(-1)), state

    def initial_state(self) -> tuple:
        return ()

    def run_windows(self, windows: jax.Array, state: tuple = ()) -> tuple[jax.Array, tuple]:
        """``windows (K, W)`` -> ``logits (K, C)``, each window on its own; the state passes through."""
        return jax.vmap(lambda tokens: self(tokens, state)[0])(windows), state


class LSTM(eqx.Module):
    """One LSTM layer over the window's notes, then a Dense layer on its last output."""

    cell: eqx.nn.LSTMCell
    head: eqx.nn.Linear
    features: jax.Array  # (vocab_size, n_features), fixed
    window: int = eqx.field(static=True)
    stateful: bool = eqx.field(static=True, default=False)

    def __call__(self, tokens: jax.Array, state: LSTMState) -> tuple[jax.Array, LSTMState]:
        """``tokens (W,)``, ``state ((H,), (H,))`` -> ``logits (C,)``, the state after the window."""

        def step(state: LSTMState, note: jax.Array) -> tuple[LSTMState, None]:
            return self.cell(note, state), None

        # Unrolled: the window is a handful of notes, and an unrolled loop lets XLA fuse
        # across steps (measured ~1.8x faster per training step than a rolled loop).
        state, _ = jax.lax.scan(step, state, self.features[tokens], unroll=True)
        hidden, _ = state
        return self.head(hidden), state

    def initial_state(self) -> LSTMState:
        zeros = jnp.zeros(self.cell.hidden_size, dtype=self.cell.weight_hh.dtype)
        return (zeros, zeros)

    def run_windows(self, windows: jax.Array, state: LSTMState) -> tuple[jax.Array, LSTMState]:
        """``windows (K, W)`` read one after another, the state carried from each to the next, as a
        stateful model reads them -> ``logits (K, C)`` after each window, the state after the last.

        The same as calling the model window by window, in mathematics; it runs the ``K·W`` notes
        as one sequence through :func:`nabiya.recurrence.lstm_recurrence`, whose gradient costs
        a fraction of the window-by-window one's (training through several windows per step).
        """
        n_windows, window = windows.shape
        inputs = self.features[windows.reshape(-1)]  # (K·W, F)
        projected = inputs @ self.cell.weight_ih.T + self.cell.bias  # (K·W, 4H)
        h, c = state
        resets = jnp.zeros((n_windows * window, 1), bool)
        outputs, (h, c) = lstm_recurrence(projected[:, None, :], self.cell.weight_hh, h[None], c[None], resets)
        ends = outputs[window - 1 :: window, 0, :]  # (K, H): the hidden state at each window's end
        return ends @ self.head.weight.T + self.head.bias, (h[0], c[0])


def trainable(model) -> object:
    """A filter spec of ``model``: True for the arrays training changes.

    Every floating-point array is trained except a fixed feature table (``features``).
    Use it as ``params, static = eqx.partition(model, trainable(model))``.

    Example:
        >>> import equinox as eqx
        >>> from nabiya.config import ModelConfig
        >>> model = make_model(ModelConfig("mlp"), feature_table=jnp.eye(3), window=4, n_classes=3,
        ...                    key=jax.random.key(0))
        >>> params, _ = eqx.partition(model, trainable(model))
        >>> params.features is None, params.mlp.layers[0].weight.shape
        (True, (128, 12))
    """
    spec = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    if isinstance(model, (MLP, LSTM)):
        spec = eqx.tree_at(lambda m: m.features, spec, replace=False)
    return spec


def make_model(
    config: ModelConfig, *, feature_table: jax.Array, window: int, n_classes: int, key: jax.Array
) -> MLP | LSTM:
    """Build a model with Keras's default initialisation.

    Keras initialises Dense and LSTM input kernels glorot-uniform, LSTM recurrent
    kernels orthogonal, and biases zero except the LSTM forget gate's, which is 1
    (``unit_forget_bias``). Equinox's own defaults differ, so the arrays are replaced.

    Args:
        config: what to build (its ``stateful`` flag becomes the model's).
        feature_table: the features of every token, shape ``(vocab_size, n_features)``;
            the model reads its input through it (see :meth:`nabiya.encoding.Vocabulary.feature_table`).
        window: tokens per input (the MLP's input is ``window * n_features`` wide).
        n_classes: output size.
        key: a PRNG key; the same key gives the same weights.

    Example:
        >>> from nabiya.config import preset
        >>> from nabiya.encoding import Vocabulary
        >>> table = Vocabulary.tutorial().feature_table("pitch_length")          # (14, 2)
        >>> model = make_model(preset("stateful2").model, feature_table=table, window=4, n_classes=12,
        ...                    key=jax.random.key(5))
        >>> logits, state = model(jnp.array([11, 9, 2, 10]), model.initial_state())   # g8 e8 e4 f8
        >>> logits.shape, model.stateful
        ((12,), True)
    """
    config.validate()
    feature_table = jnp.asarray(feature_table, dtype=jnp.float32)
    if feature_table.ndim != 2:
        raise NabiyaError(f"the feature table must have shape (vocab_size, n_features), not {feature_table.shape}")
    return _initialise(config, feature_table, int(window), int(n_classes), key)


# One compiled function for the whole initialisation: run eagerly, each initialiser op
# (the orthogonal one's QR above all) compiles on its own, ~1 s on first use on a CPU.
@eqx.filter_jit
def _initialise(config: ModelConfig, feature_table: jax.Array, window: int, n_classes: int, key: jax.Array):
    hidden = config.hidden_size
    n_features = feature_table.shape[1]
    glorot = jax.nn.initializers.glorot_uniform()
    if config.kind == "mlp":
        keys = jax.random.split(key, 3)
        mlp = eqx.nn.MLP(window * n_features, n_classes, hidden, depth=2, activation=jax.nn.relu, key=keys[0])
        for index, layer_key in enumerate(keys):
            layer = mlp.layers[index]
            # Keras's kernel is (in, out); Equinox's weight is (out, in).
            weight = glorot(layer_key, (layer.in_features, layer.out_features)).T
            mlp = eqx.tree_at(lambda m: (m.layers[index].weight, m.layers[index].bias), mlp,
                              (weight, jnp.zeros_like(layer.bias)))
        return MLP(mlp, feature_table, window=window)

    kernel_key, recurrent_key, head_key = jax.random.split(key, 3)
    cell = eqx.nn.LSTMCell(n_features, hidden, key=kernel_key)
    weight_ih = glorot(kernel_key, (n_features, 4 * hidden)).T
    weight_hh = jax.nn.initializers.orthogonal()(recurrent_key, (hidden, 4 * hidden)).T
    # Gate order i, f, g, o in both Keras and Equinox: the forget gate is the second quarter.
    bias = jnp.zeros(4 * hidden).at[hidden : 2 * hidden].set(1.0)
    cell = eqx.tree_at(lambda c: (c.weight_ih, c.weight_hh, c.bias), cell, (weight_ih, weight_hh, bias))
    head = eqx.nn.Linear(hidden, n_classes, key=head_key)
    head = eqx.tree_at(lambda h: (h.weight, h.bias), head,
                       (glorot(head_key, (hidden, n_classes)).T, jnp.zeros(n_classes)))
    return LSTM(cell, head, feature_table, window=window, stateful=config.stateful)
