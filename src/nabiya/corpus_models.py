"""Corpus models: a stacked LSTM and a small decoder-only transformer over tune tokens.

Both keep nabiya's one model contract (see :mod:`nabiya.models`)::

    logits, state = model(tokens, state)   # tokens (window,) int32 -> logits (V,) of the next token
    model.initial_state(), model.window, model.stateful

so :mod:`nabiya.generation` runs them as it runs the tutorial's models, and add one method for
training and evaluation, which reads a whole row of tokens at once::

    logits, state = model.sequence_logits(tokens, state, resets, key=None)
        # tokens (T,) int32, resets (T,) bool -> logits (T, V), the state after the row

``resets[t]`` says a tune starts at ``t``: the model forgets what came before it (the
LSTM resets its state before reading ``tokens[t]``; the transformer attends only within
the tune). ``key`` turns dropout on (training); without it the model is deterministic.

- :class:`FolkLSTM` — embedding ``E`` → ``L`` LSTM layers of ``H`` units → a linear head.
  Stateful, window 1: its state ``(h, c)``, each ``(L, H)``, carries a tune from token to
  token (and, in training, from chunk to chunk). Dropout on the embedding, between layers
  and before the head (the non-recurrent connections, as in Zaremba et al. 2014). The
  gates are PyTorch's and Equinox's (``i, f, g, o``; one bias per gate, the forget gate's
  starting at 1), so ``torch.nn.LSTM`` with ``bias_hh = 0`` is the same network.
- :class:`FolkTransformer` — token and learned position embeddings of width ``D`` →
  ``N`` pre-LN blocks (causal multi-head self-attention, then a 4·D GELU MLP, each with a
  residual connection and dropout) → a final LayerNorm → a linear head. Stateless; its
  window is its context. Initialised as nanoGPT initialises GPT-2 (normal 0.02, residual
  projections 0.02/√(2N), zero biases). Positions count from 0 at each tune's start (or
  at a window's first token, for a window that starts inside a long tune). A window
  shorter than the context is **left-padded** with ``<pad>`` (``pad_token``), which is
  masked out: nothing attends to it and positions start at the first real token, so a
  4-token prompt is read exactly as the first 4 tokens of a tune are in training.

Models know nothing of files, tunes or training.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from nabiya.corpus_config import CorpusModelConfig
from nabiya.errors import NabiyaError

PAD = 0  # the <pad> token of nabiya.tokens


def _dropout(x: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Inverted dropout: identity without a key (evaluation) or at rate 0."""
    if key is None or rate == 0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def _keys(key: jax.Array | None, count: int) -> list:
    return [None] * count if key is None else list(jax.random.split(key, count))


def _input_vectors(model, tokens: jax.Array) -> jax.Array:
    """``(T, E)``: each token's embedding, plus its pitch's and its duration's when the model is factored."""
    x = model.embedding[tokens]
    if model.parts is not None:
        x = x + model.part_embedding[model.parts[tokens]].sum(axis=-2)
    return x


def _head_matrix(model) -> jax.Array:
    """``(V, H)``: the head's row of each token (the embedding when tied), plus its pitch's and duration's."""
    head = model.embedding if model.head_weight is None else model.head_weight
    if model.parts is not None:
        head = head + model.part_head[model.parts].sum(axis=-2)
    return head


class FolkLSTM(eqx.Module):
    """Embedding → stacked LSTM → head; stateful, window 1 (see the module docstring).

    Attributes:
        embedding: ``(V, E)``.
        cells: one ``eqx.nn.LSTMCell`` per layer (``weight_ih (4H, in)``, ``weight_hh (4H, H)``, ``bias (4H,)``).
        head_weight: ``(V, H)``, or None when tied to the embedding (then ``E == H``).
        head_bias: ``(V,)``.
        parts: ``(V, 2)`` int, fixed: each token's pitch and duration (as rows of the part
            tables), or None unless ``factored``; ``part_embedding (P, E)`` and ``part_head (P, H)``.

    Example:
        >>> model = make_corpus_model(CorpusModelConfig("lstm", size=32, layers=2, embedding_size=8),
        ...                           vocab_size=20, key=jax.random.key(0))
        >>> logits, state = model(jnp.array([1]), model.initial_state())
        >>> logits.shape, state[0].shape, model.window, model.stateful
        ((20,), (2, 32), 1, True)
    """

    embedding: jax.Array
    cells: tuple[eqx.nn.LSTMCell, ...]
    head_weight: jax.Array | None
    head_bias: jax.Array
    parts: jax.Array | None
    part_embedding: jax.Array | None
    part_head: jax.Array | None
    dropout: float = eqx.field(static=True)
    window: int = eqx.field(static=True, default=1)
    stateful: bool = eqx.field(static=True, default=True)
    pad_token: None = eqx.field(static=True, default=None)

    @property
    def vocab_size(self) -> int:
        return int(self.embedding.shape[0])

    def initial_state(self) -> tuple[jax.Array, jax.Array]:
        """``(h, c)``, each ``(L, H)`` zeros."""
        layers, hidden = len(self.cells), self.cells[0].hidden_size
        zeros = jnp.zeros((layers, hidden), self.embedding.dtype)
        return zeros, zeros

    def __call__(self, tokens: jax.Array, state) -> tuple[jax.Array, tuple]:
        """``tokens (1,)`` and ``state`` -> ``logits (V,)`` of the next token, the state after it."""
        logits, state = self.sequence_logits(tokens, state)
        return logits[-1], state

    def sequence_logits(self, tokens: jax.Array, state, resets: jax.Array | None = None, *,
                        key: jax.Array | None = None) -> tuple[jax.Array, tuple]:  # fmt: skip
        """``tokens (T,)``, ``state``, ``resets (T,)`` bool -> ``logits (T, V)``, the state after ``tokens[-1]``.

        The state is reset to zeros before reading ``tokens[t]`` wherever ``resets[t]``.
        Layer by layer: each layer's input projection is one ``(T, in) @ (in, 4H)`` product,
        and only ``h @ W_hh`` runs step by step (one ``lax.scan`` per layer).
        """
        if resets is None:
            resets = jnp.zeros(tokens.shape, bool)
        keys = _keys(key, len(self.cells) + 1)
        x = _dropout(_input_vectors(self, tokens), self.dropout, keys[0])  # (T, E)
        h0, c0 = state
        last_h, last_c = [], []
        for layer, cell in enumerate(self.cells):
            projected = x @ cell.weight_ih.T + cell.bias  # (T, 4H)

            def step(carry, inputs, cell=cell):
                h, c = carry
                row, reset = inputs
                h = jnp.where(reset, 0.0, h)
                c = jnp.where(reset, 0.0, c)
                i, f, g, o = jnp.split(row + cell.weight_hh @ h, 4)
                c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
                h = jax.nn.sigmoid(o) * jnp.tanh(c)
                return (h, c), h

            (h, c), outputs = jax.lax.scan(step, (h0[layer], c0[layer]), (projected, resets))  # outputs (T, H)
            last_h.append(h)
            last_c.append(c)
            x = _dropout(outputs, self.dropout, keys[layer + 1])
        logits = x @ _head_matrix(self).T + self.head_bias  # (T, V)
        return logits, (jnp.stack(last_h), jnp.stack(last_c))


class _Block(eqx.Module):
    """One pre-LN transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    norm1: eqx.nn.LayerNorm
    qkv: eqx.nn.Linear  # D -> 3D
    proj: eqx.nn.Linear  # D -> D
    norm2: eqx.nn.LayerNorm
    fc: eqx.nn.Linear  # D -> mlp_ratio * D
    out: eqx.nn.Linear  # mlp_ratio * D -> D
    heads: int = eqx.field(static=True)

    def __call__(self, x: jax.Array, allowed: jax.Array, rate: float, key) -> jax.Array:
        """``x (T, D)``, ``allowed (T, T)`` bool (query, key) -> ``(T, D)``."""
        keys = _keys(key, 2)
        length, width = x.shape
        head_size = width // self.heads
        y = jax.vmap(self.norm1)(x)
        q, k, v = jnp.split(y @ self.qkv.weight.T + self.qkv.bias, 3, axis=-1)  # each (T, D)
        q, k, v = (z.reshape(length, self.heads, head_size) for z in (q, k, v))  # (T, h, d)
        scores = jnp.einsum("qhd,khd->hqk", q, k) / math.sqrt(head_size)  # (h, T, T)
        scores = jnp.where(allowed[None], scores, -jnp.inf)
        # A row with nothing allowed (a padding query) would be all -inf: give it zeros.
        weights = jnp.where(allowed[None], jax.nn.softmax(scores, axis=-1), 0.0)
        attended = jnp.einsum("hqk,khd->qhd", weights, v).reshape(length, width)
        x = x + _dropout(attended @ self.proj.weight.T + self.proj.bias, rate, keys[0])
        y = jax.vmap(self.norm2)(x)
        y = jax.nn.gelu(y @ self.fc.weight.T + self.fc.bias)
        return x + _dropout(y @ self.out.weight.T + self.out.bias, rate, keys[1])


class FolkTransformer(eqx.Module):
    """A decoder-only causal transformer; stateless, its window its context (see the module docstring).

    Example:
        >>> model = make_corpus_model(CorpusModelConfig("transformer", size=16, layers=1, heads=2, context=8),
        ...                           vocab_size=20, key=jax.random.key(0))
        >>> logits, state = model(jnp.array([0, 0, 0, 0, 0, 1, 4, 5]), ())   # a 3-token prompt, left-padded
        >>> logits.shape, state, model.window, model.stateful
        ((20,), (), 8, False)
    """

    embedding: jax.Array  # (V, D)
    positions: jax.Array  # (context, D)
    blocks: tuple[_Block, ...]
    norm: eqx.nn.LayerNorm
    head_weight: jax.Array | None  # (V, D), None when tied to the embedding
    head_bias: jax.Array  # (V,)
    parts: jax.Array | None  # (V, 2) int, fixed; with part_embedding and part_head (P, D): see FolkLSTM
    part_embedding: jax.Array | None
    part_head: jax.Array | None
    dropout: float = eqx.field(static=True)
    window: int = eqx.field(static=True)
    stateful: bool = eqx.field(static=True, default=False)
    pad_token: int = eqx.field(static=True, default=PAD)

    @property
    def vocab_size(self) -> int:
        return int(self.embedding.shape[0])

    def initial_state(self) -> tuple:
        return ()

    def __call__(self, tokens: jax.Array, state=()) -> tuple[jax.Array, tuple]:
        """``tokens (W,)``, left-padded with ``<pad>`` when shorter -> ``logits (V,)`` after the last token."""
        length = tokens.shape[0]
        real = jnp.cumsum(tokens != self.pad_token) > 0  # (W,) past the left padding
        first = jnp.argmax(real)
        resets = jnp.arange(length) == first
        logits, _ = self.sequence_logits(tokens, (), resets, _valid=real)
        return logits[-1], state

    def sequence_logits(self, tokens: jax.Array, state=(), resets: jax.Array | None = None, *,
                        key: jax.Array | None = None, _valid: jax.Array | None = None) -> tuple[jax.Array, tuple]:  # fmt: skip
        """``tokens (T,)`` with ``T <= window``, ``resets (T,)`` bool -> ``logits (T, V)``, ``()``.

        Position ``q`` attends to ``k <= q`` of the same tune (no reset in ``k+1 .. q``);
        positions count from each tune's first token.
        """
        length = tokens.shape[0]
        if length > self.window:
            raise NabiyaError(f"the transformer reads at most {self.window} tokens at a time, not {length}")
        if resets is None:
            resets = jnp.zeros(tokens.shape, bool)
        resets = resets.at[0].set(True)
        index = jnp.arange(length)
        segment = jnp.cumsum(resets)  # (T,)
        start = jax.lax.cummax(jnp.where(resets, index, 0))  # each position's tune start
        allowed = (index[None, :] <= index[:, None]) & (segment[None, :] == segment[:, None])  # (T, T)
        if _valid is not None:
            allowed = allowed & _valid[None, :]
        keys = _keys(key, len(self.blocks) + 1)
        x = _input_vectors(self, tokens) + self.positions[index - start]  # (T, D)
        x = _dropout(x, self.dropout, keys[0])
        for block, block_key in zip(self.blocks, keys[1:]):
            x = block(x, allowed, self.dropout, block_key)
        x = jax.vmap(self.norm)(x)
        return x @ _head_matrix(self).T + self.head_bias, state


CorpusModel = FolkLSTM | FolkTransformer


def make_corpus_model(config: CorpusModelConfig, *, vocab_size: int, key: jax.Array,
                      token_parts: jax.Array | None = None) -> CorpusModel:  # fmt: skip
    """Build an untrained corpus model; the same key gives the same weights.

    Args:
        config: what to build (see :class:`~nabiya.corpus_config.CorpusModelConfig`).
        vocab_size: V, the tokens it reads and predicts (``len(TuneVocabulary)``).
        key: a PRNG key.
        token_parts: ``(V, 2)`` int, each token's pitch and duration as small ids (any numbering
            from 0; tokens without one share an id of their own); needed when ``config.factored``.

    Example:
        >>> model = make_corpus_model(CorpusModelConfig("lstm", size=16, layers=1, embedding_size=4),
        ...                           vocab_size=10, key=jax.random.key(0))
        >>> logits, state = model.sequence_logits(jnp.array([1, 5, 6, 1, 7]), model.initial_state(),
        ...                                       jnp.array([True, False, False, True, False]))
        >>> logits.shape
        (5, 10)
    """
    config.validate()
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise NabiyaError(f"the vocabulary size must be a whole number of at least 1, not {vocab_size!r}")
    parts = part_table(config, vocab_size, token_parts)
    return _initialise(config, vocab_size, key, parts, 0 if parts is None else int(parts.max()) + 1)


def part_table(config: CorpusModelConfig, vocab_size: int, token_parts) -> jax.Array | None:
    """The fixed ``(V, 2)`` table a factored model reads: pitch ids, then duration ids after them."""
    if not config.factored:
        return None
    if token_parts is None:
        raise NabiyaError("a factored model needs each token's pitch and duration (token_parts)")
    parts = jnp.asarray(token_parts, jnp.int32)
    if parts.shape != (vocab_size, 2) or int(parts.min()) < 0:
        raise NabiyaError(f"token_parts must be ({vocab_size}, 2) ids from 0, not {parts.shape}")
    return parts.at[:, 1].add(parts[:, 0].max() + 1)


def initialise(config: CorpusModelConfig, vocab_size: int, key: jax.Array, parts: jax.Array | None = None,
               part_count: int = 0) -> CorpusModel:  # fmt: skip
    """The model's arrays, traced op by op (use under ``jit``, or ``eval_shape`` for shapes only).

    Every trained array is a slice of one normal and one uniform stream drawn from ``key`` (two
    random draws in all: each draw of its own costs the compiler most of a second on a CPU);
    ``parts`` (see :func:`part_table`) is a factored model's fixed table, ``part_count`` its ids.
    """
    skeleton = jax.eval_shape(lambda: _structure(config, vocab_size, part_count))  # shapes only
    rule = _lstm_rule(config) if config.kind == "lstm" else _transformer_rule(config)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(skeleton)
    sizes = [math.prod(leaf.shape) for _, leaf in leaves]
    normal_key, uniform_key = jax.random.split(key)
    total = max(sum(sizes), 1)
    normal = jax.random.normal(normal_key, (total,))
    uniform = jax.random.uniform(uniform_key, (total,), minval=-1.0, maxval=1.0)
    arrays, offset = [], 0
    for (path, leaf), size in zip(leaves, sizes):
        if _path_name(path) == "parts":
            arrays.append(parts)
            continue
        kind, scale = rule(_path_name(path), leaf.shape)
        values = {"normal": normal, "uniform": uniform}.get(kind)
        if values is None:
            array = jnp.full(leaf.shape, scale, leaf.dtype)
        else:
            array = (scale * values[offset : offset + size]).reshape(leaf.shape).astype(leaf.dtype)
        if kind == "uniform" and config.kind == "lstm" and _path_name(path).startswith("cells") and _path_name(path).endswith("bias"):
            array = array.at[config.size : 2 * config.size].add(1.0)  # the forget gate starts open
        arrays.append(array)
        offset += size
    return jax.tree_util.tree_unflatten(treedef, arrays)


# One compiled function for the whole initialisation (op by op, each would compile on its own).
_initialise = eqx.filter_jit(initialise)


def _path_name(path) -> str:
    return ".".join(str(getattr(entry, "name", getattr(entry, "idx", entry))) for entry in path)


def _structure(config: CorpusModelConfig, vocab_size: int, part_count: int) -> CorpusModel:
    """A model of the right structure (its arrays are replaced by :func:`initialise`)."""
    key = jax.random.key(0)
    width = config.embedding_size if config.kind == "lstm" else config.size
    factored = {"parts": None, "part_embedding": None, "part_head": None}
    if config.factored:
        factored = {"parts": jnp.zeros((vocab_size, 2), jnp.int32), "part_embedding": jnp.zeros((part_count, width)),
                    "part_head": jnp.zeros((part_count, config.size))}  # fmt: skip
    if config.kind == "lstm":
        hidden = config.size
        cells = tuple(eqx.nn.LSTMCell(config.embedding_size if layer == 0 else hidden, hidden, key=key)
                      for layer in range(config.layers))  # fmt: skip
        head = None if config.tied else jnp.zeros((vocab_size, hidden))
        return FolkLSTM(jnp.zeros((vocab_size, config.embedding_size)), cells, head, jnp.zeros(vocab_size),
                        **factored, dropout=config.dropout)  # fmt: skip
    width = config.size
    blocks = tuple(_Block(
        norm1=eqx.nn.LayerNorm(width), qkv=eqx.nn.Linear(width, 3 * width, key=key),
        proj=eqx.nn.Linear(width, width, key=key), norm2=eqx.nn.LayerNorm(width),
        fc=eqx.nn.Linear(width, config.mlp_ratio * width, key=key),
        out=eqx.nn.Linear(config.mlp_ratio * width, width, key=key), heads=config.heads,
    ) for _ in range(config.layers))  # fmt: skip
    return FolkTransformer(
        embedding=jnp.zeros((vocab_size, width)), positions=jnp.zeros((config.context, width)), blocks=blocks,
        norm=eqx.nn.LayerNorm(width), head_weight=None if config.tied else jnp.zeros((vocab_size, width)),
        head_bias=jnp.zeros(vocab_size), **factored, dropout=config.dropout, window=config.context,
    )  # fmt: skip


def _lstm_rule(config: CorpusModelConfig):
    """PyTorch's defaults: the embedding N(0, 1); LSTM and head arrays uniform ±1/√H (the forget gate's bias +1).
    A tied embedding, which is also the head, is uniform ±0.1 (as AWD-LSTM's)."""
    bound = 1.0 / math.sqrt(config.size)

    def rule(name: str, shape) -> tuple[str, float]:
        if name in ("embedding", "part_embedding"):
            return ("uniform", 0.1) if config.tied else ("normal", 1.0)
        return ("uniform", bound)

    return rule


def _transformer_rule(config: CorpusModelConfig):
    """nanoGPT's GPT-2 initialisation: weights N(0, 0.02), residual projections N(0, 0.02/√(2N)), biases 0,
    LayerNorm scales 1."""
    residual = 0.02 / math.sqrt(2 * config.layers)

    def rule(name: str, shape) -> tuple[str, float]:
        if ".norm" in f".{name}":
            return ("constant", 1.0 if name.endswith("weight") else 0.0)
        if name.endswith(("bias", "head_bias")):
            return ("constant", 0.0)
        if name.endswith(("proj.weight", "out.weight")):
            return ("normal", residual)
        return ("normal", 0.02)

    return rule


def parameter_count(model: CorpusModel) -> int:
    """How many trained numbers a model has."""
    return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))
