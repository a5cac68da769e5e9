"""Predictions, compiled whole: one-step prediction along a song, and continuing a melody.

- :func:`predict_windows` is the tutorial's one-step prediction (and its evaluation):
  the true windows go in, one next-note distribution comes out per window.
- :func:`continue_greedy` is its full-song prediction: only a primer window is given,
  and the model continues from its own output, one ``lax.scan`` for the whole melody.
- :func:`generate` continues a melody with a choice of strategy: :class:`Greedy` (the
  tutorial's argmax), :class:`Temperature`, :class:`TopK` and :class:`TopP` sampling, and
  :class:`Beam` search. Each continuation, beam search included, is one ``lax.scan``
  inside one ``jit``; Python sees the finished melody.
- :func:`continue_song` does the same for notes and a model loaded from a file.

A stateful model starts from a reset state and carries its state from each window to
the next; a stateless one starts every window from the reset state. When a generated
note is appended, the next window is the last ``window`` notes and the model reads all
of it again, carrying (if stateful) the state it had after the previous window, as the
tutorial's full-song prediction does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nabiya.errors import NabiyaError
from nabiya.models import Model
from nabiya.music.note import Note

if TYPE_CHECKING:
    from nabiya.checkpoint import SavedModel


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
    return generate(model, feature_table, primer, steps, stateful=stateful, strategy=Greedy())


# --- strategies -----------------------------------------------------------------------


@dataclass(frozen=True)
class Greedy:
    """Always take the likeliest next token: the tutorial's ``np.argmax``.

    Example:
        >>> Greedy()
        Greedy()
    """

    name = "greedy"


@dataclass(frozen=True)
class Temperature:
    """Sample the next token from ``softmax(logits / temperature)``.

    Below 1 the model's favourites grow likelier, above 1 its distribution flattens.

    Example:
        >>> Temperature(0.8).temperature
        0.8
    """

    temperature: float = 1.0
    name = "temperature"

    def __post_init__(self) -> None:
        _check_temperature(self.temperature)


@dataclass(frozen=True)
class TopK:
    """Sample among the ``k`` likeliest tokens only (ties broken towards the lower index).

    A ``k`` above the number of classes keeps them all.

    Example:
        >>> TopK(3, temperature=1.2)
        TopK(k=3, temperature=1.2)
    """

    k: int = 5
    temperature: float = 1.0
    name = "top-k"

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise NabiyaError(f"top-k must be a whole number of at least 1, not {self.k!r}")
        _check_temperature(self.temperature)


@dataclass(frozen=True)
class TopP:
    """Nucleus sampling: sample among the fewest likeliest tokens whose probability reaches ``p``.

    The likeliest token is always kept, so a tiny ``p`` is greedy; ``p = 1`` keeps every token.

    Example:
        >>> TopP(0.9).p
        0.9
    """

    p: float = 0.9
    temperature: float = 1.0
    name = "top-p"

    def __post_init__(self) -> None:
        if not _is_number(self.p) or not 0 < self.p <= 1:
            raise NabiyaError(f"top-p must be in (0, 1]: above 0 and at most 1, not {self.p!r}")
        _check_temperature(self.temperature)


@dataclass(frozen=True)
class Beam:
    """Beam search: keep the ``width`` continuations of highest total log-probability.

    Each step extends every beam by every token, scores each candidate by the sum of its
    tokens' log-probabilities, and keeps the best ``width`` (each with its own LSTM
    state). The result is the best beam at the end. Width 1 is greedy.

    Example:
        >>> Beam(4).width
        4
    """

    width: int = 4
    name = "beam"

    def __post_init__(self) -> None:
        if isinstance(self.width, bool) or not isinstance(self.width, (int, np.integer)) or self.width < 1:
            raise NabiyaError(f"beam width must be a whole number of at least 1, not {self.width!r}")


Strategy = Greedy | Temperature | TopK | TopP | Beam

STRATEGIES: dict[str, type] = {
    "greedy": Greedy,
    "temperature": Temperature,
    "top-k": TopK,
    "top-p": TopP,
    "beam": Beam,
}


def make_strategy(
    name: str | None = None,
    *,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    beam_width: int | None = None,
) -> Strategy:
    """A strategy from a name and options, as a command line gives them.

    With no ``name`` the strategy follows from the one option given (``top_p`` → top-p,
    ``beam_width`` → beam, …), and is greedy when none is. Options the strategy does not
    use are an error rather than silently ignored; ``temperature`` also applies to top-k
    and top-p. Unset options take the dataclasses' defaults (k 5, p 0.9, width 4,
    temperature 1).

    Raises:
        NabiyaError: for an unknown name, an option the strategy does not use, or an
            invalid value.

    Example:
        >>> make_strategy("top-p", top_p=0.8, temperature=1.5)
        TopP(p=0.8, temperature=1.5)
        >>> make_strategy(beam_width=3)
        Beam(width=3)
    """
    options = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "beam_width": beam_width}
    given = {option: value for option, value in options.items() if value is not None}
    if name is None:
        implying = {"beam_width": "beam", "top_k": "top-k", "top_p": "top-p"}
        implied = [strategy for option, strategy in implying.items() if option in given]
        if len(implied) > 1:
            raise NabiyaError(f"choose one strategy: {' and '.join(implied)} were asked for at once")
        name = implied[0] if implied else ("temperature" if "temperature" in given else "greedy")
    key = name.strip().lower().replace("_", "-")
    if key not in STRATEGIES:
        raise NabiyaError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    uses = {
        "greedy": (),
        "temperature": ("temperature",),
        "top-k": ("top_k", "temperature"),
        "top-p": ("top_p", "temperature"),
        "beam": ("beam_width",),
    }[key]
    unused = [option for option in given if option not in uses]
    if unused:
        options = " and ".join(f"{option}={given[option]!r}" for option in unused)
        raise NabiyaError(f"{options} {'has' if len(unused) == 1 else 'have'} no effect with the {key} strategy")
    renamed = {"top_k": "k", "top_p": "p", "beam_width": "width"}
    return STRATEGIES[key](**{renamed.get(option, option): value for option, value in given.items()})


def _is_number(value) -> bool:
    is_real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    return is_real and math.isfinite(value)


def _check_temperature(temperature) -> None:
    if not _is_number(temperature) or temperature <= 0:
        raise NabiyaError(f"temperature must be a number above 0, not {temperature!r}")


# --- continuing a melody ----------------------------------------------------------------


def generate(
    model: Model,
    feature_table: np.ndarray,
    primer: np.ndarray,
    steps: int,
    *,
    stateful: bool,
    strategy: Strategy = Greedy(),
    key: jax.Array | None = None,
    window: int | None = None,
) -> np.ndarray:
    """Continue a melody from a primer, one compiled loop for the whole continuation.

    The model reads the last ``window`` tokens, a strategy picks the next token, the
    window slides on, ``steps`` times. A stateful model starts from a reset state; when
    the primer is longer than the window it first reads the primer's windows in order
    (``primer[0:W]``, ``primer[1:W+1]``, …, the ones whose next token the primer gives),
    carrying its state as the tutorial's one-step prediction does, then continues from
    the primer's last window with that state. A stateless model only reads the last window.

    Args:
        model: a trained model.
        feature_table: features of every token, shape ``(vocab_size, n_features)``.
        primer: token indices to continue, shape ``(P,)`` with ``P >= window``.
        steps: how many tokens to add, at least 1.
        stateful: carry the state from step to step (a stateful run's model).
        strategy: :class:`Greedy` (the default), :class:`Temperature`, :class:`TopK`,
            :class:`TopP` or :class:`Beam`.
        key: a PRNG key, needed by the sampling strategies; the same key gives the same
            melody. Greedy and beam search ignore it.
        window: notes the model reads at a time (the run config's ``window``); ``len(primer)``
            when not given, so pass it with a longer primer.

    Returns:
        The new token indices, shape ``(steps,)``, int32 (each below the model's ``n_classes``).

    Raises:
        NabiyaError: for fewer than 1 step, a primer shorter than the window or with a
            token outside ``feature_table``, or a sampling strategy without a key.

    Example:
        >>> from nabiya.config import preset
        >>> from nabiya.encoding import Vocabulary
        >>> from nabiya.models import make_model
        >>> table = Vocabulary.tutorial().feature_table("pitch_length")     # (14, 2)
        >>> model = make_model(preset("stateful2").model, n_features=2, window=4, n_classes=12,
        ...                    key=jax.random.key(0))                          # untrained
        >>> tokens = generate(model, table, [11, 9, 2, 10], 50, stateful=True,  # g8 e8 e4 f8
        ...                   strategy=TopP(0.9), key=jax.random.key(1))
        >>> tokens.shape, tokens.dtype.name
        ((50,), 'int32')
    """
    table, primer, window = _check_inputs(feature_table, primer, steps, window)
    if isinstance(strategy, Greedy):
        tokens = _generate(model, table, primer, None, None, None, None, steps, window, stateful)
    elif isinstance(strategy, (Temperature, TopK, TopP)):
        if key is None:
            raise NabiyaError(f"the {strategy.name} strategy samples: pass a PRNG key, e.g. key=jax.random.key(0)")
        top_k = strategy.k if isinstance(strategy, TopK) else table.shape[0]
        top_p = strategy.p if isinstance(strategy, TopP) else 1.0
        # Traced, not static: changing the temperature, k or p does not recompile.
        tokens = _generate(
            model, table, primer, key,
            jnp.float32(strategy.temperature), jnp.int32(min(top_k, table.shape[0])), jnp.float32(top_p),
            steps, window, stateful,
        )  # fmt: skip
    elif isinstance(strategy, Beam):
        tokens = _beam_search(model, table, primer, steps, int(strategy.width), window, stateful)[0][0]
    else:
        raise NabiyaError(f"unknown strategy {strategy!r}: use Greedy, Temperature, TopK, TopP or Beam")
    return np.asarray(tokens)


def beam_search(
    model: Model,
    feature_table: np.ndarray,
    primer: np.ndarray,
    steps: int,
    *,
    width: int,
    stateful: bool,
    window: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every final beam of a beam search, best first, with its score.

    :func:`generate` with :class:`Beam` returns the first of these. Arguments as there.

    Returns:
        ``tokens`` of shape ``(width, steps)``, int32, and ``scores`` of shape ``(width,)``:
        each beam's summed log-probability (natural log), in descending order. A beam that
        could not be filled (``width`` above the number of possible continuations) scores ``-inf``.

    Example:
        >>> tokens, scores = beam_search(model, table, idx[:4], 50, width=4, stateful=True)  # doctest: +SKIP
        >>> tokens.shape, scores.shape                                                   # doctest: +SKIP
        ((4, 50), (4,))
    """
    Beam(width)  # validates
    table, primer, window = _check_inputs(feature_table, primer, steps, window)
    tokens, scores = _beam_search(model, table, primer, steps, int(width), window, stateful)
    return np.asarray(tokens), np.asarray(scores)


def log_prob(
    model: Model,
    feature_table: np.ndarray,
    primer: np.ndarray,
    tokens: np.ndarray,
    *,
    stateful: bool,
    window: int | None = None,
) -> float | np.ndarray:
    """How likely the model finds a continuation: the sum of its tokens' log-probabilities.

    The model runs exactly as :func:`generate` runs it (the same warm-up, windows and
    state), reading ``tokens`` instead of choosing them, so this is the score beam search
    maximises.

    Args:
        tokens: a continuation, shape ``(steps,)``, or several, shape ``(n, steps)``.
        Others as in :func:`generate`.

    Returns:
        The natural-log probability: a float, or shape ``(n,)`` for several continuations.

    Example:
        >>> round(log_prob(model, table, idx[:4], idx[4:], stateful=True), 2)  # doctest: +SKIP
        -0.14
    """
    tokens = np.asarray(tokens)
    if tokens.ndim not in (1, 2) or tokens.shape[-1] < 1:
        raise NabiyaError(f"tokens must have shape (steps,) or (n, steps), not {tokens.shape}")
    table, primer, window = _check_inputs(feature_table, primer, tokens.shape[-1], window)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= table.shape[0]):
        raise NabiyaError(f"tokens must be indices below {table.shape[0]}, the vocabulary's size")
    scores = _log_prob(model, table, primer, jnp.asarray(tokens, jnp.int32), window, stateful)
    return float(scores) if tokens.ndim == 1 else np.asarray(scores)


def continue_song(
    saved: SavedModel,
    primer: Sequence[Note] | None = None,
    *,
    steps: int | None = None,
    strategy: Strategy = Greedy(),
    seed: int = 0,
) -> tuple[Note, ...]:
    """Continue a melody with a model loaded by :func:`nabiya.checkpoint.load_model`.

    Args:
        saved: the loaded model.
        primer: the notes to continue, at least the model's window long. By default the
            first window of the song the model was trained on. A stateful model reads a
            longer primer window by window to warm up its state (see :func:`generate`).
        steps: how many notes to add. By default as many as make the melody as long as
            the training song (for the default primer: the rest of the training song);
            when the primer is already that long, as many as training predicted
            (the training song's length minus the window).
        strategy: how to pick each note (see :func:`generate`); greedy by default.
        seed: the seed of the PRNG key for sampling; the same seed gives the same notes.

    Returns:
        The new notes only (not the primer).

    Raises:
        NabiyaError: for a primer note outside the model's vocabulary (naming the note
            and its number), a primer shorter than the window, or a missing default (a
            file saved without its training song needs a primer and ``steps``).

    Example:
        >>> saved = load_model("nabiya.safetensors")                       # doctest: +SKIP
        >>> " ".join(note.code for note in continue_song(saved))[:23]      # doctest: +SKIP
        'd8 d4 c8 d8 e8 f8 g8 g8'
    """
    where = f"model {str(saved.path)!r}" if saved.path is not None else "the model"
    window, song = saved.window, saved.song
    if primer is None:
        if song is None:
            raise NabiyaError(f"{where} was saved without its training song: give a primer of at least {window} notes")
        primer = song.notes[:window]
    primer = tuple(primer)
    if len(primer) < window:
        raise NabiyaError(
            f"the primer has {len(primer)} note{'s' if len(primer) != 1 else ''}: "
            f"the model reads {window} at a time, so give at least {window}"
        )
    if steps is None:
        if song is None:
            raise NabiyaError(f"{where} was saved without its training song: give the number of notes to add")
        steps = len(song) - len(primer) if len(song) > len(primer) else len(song) - window
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        # JAX keeps 32 bits of a seed: larger ones would silently repeat smaller ones' music.
        raise NabiyaError(f"the seed must be a whole number from 0 to {2**32 - 1}, not {seed!r}")
    indices = saved.vocabulary.encode(primer, source="the primer")
    tokens = generate(
        saved.model, saved.feature_table, indices, steps,
        stateful=saved.stateful, strategy=strategy, key=jax.random.key(seed), window=window,
    )  # fmt: skip
    return saved.vocabulary.decode(tokens)


def _check_inputs(feature_table, primer, steps, window) -> tuple[jax.Array, jax.Array, int]:
    """The table and primer as JAX arrays and the window, or a NabiyaError saying what is wrong."""
    table = np.asarray(feature_table, dtype=np.float32)
    if table.ndim != 2 or table.shape[0] < 1:
        raise NabiyaError(f"the feature table must have shape (vocab_size, n_features), not {table.shape}")
    primer = np.asarray(primer)
    if primer.ndim != 1:
        raise NabiyaError(f"the primer must be a sequence of token indices, shape (P,), not {primer.shape}")
    if primer.size and not np.issubdtype(primer.dtype, np.integer):
        raise NabiyaError(f"the primer must hold token indices (integers), not {primer.dtype} values")
    window = len(primer) if window is None else window
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise NabiyaError(f"the window must be a whole number of at least 1 note, not {window!r}")
    if len(primer) < window:
        raise NabiyaError(
            f"the primer has {len(primer)} note{'s' if len(primer) != 1 else ''}: "
            f"the model reads {window} at a time, so give at least {window}"
        )
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise NabiyaError(f"the number of notes to add must be a whole number of at least 1, not {steps!r}")
    outside = np.flatnonzero((primer < 0) | (primer >= table.shape[0]))
    if outside.size:
        position = int(outside[0])
        raise NabiyaError(
            f"primer token {position + 1} ({int(primer[position])}) is not an index of the "
            f"{table.shape[0]}-token vocabulary"
        )
    return jnp.asarray(table), jnp.asarray(primer, jnp.int32), int(window)


def _warm_up(model: Model, feature_table: jax.Array, primer: jax.Array, window: int, stateful: bool):
    """The primer's last window ``(W,)`` and the state to read it with.

    A stateful model first reads the primer's earlier windows in order from a reset state;
    a stateless one reads every window from the reset state, so needs no warm-up.
    """
    state = model.initial_state()
    n_warm = primer.shape[0] - window
    if stateful and n_warm > 0:
        windows = primer[jnp.arange(n_warm)[:, None] + jnp.arange(window)]  # (n_warm, W)

        def read(state, tokens):
            _, state = model(feature_table[tokens], state)
            return state, None

        state, _ = jax.lax.scan(read, state, windows)
    return primer[n_warm:], state


def _choose(logits: jax.Array, key: jax.Array, temperature, top_k, top_p) -> jax.Array:
    """Sample a token from ``logits (C,)`` after temperature, top-k and top-p filtering."""
    logits = logits / temperature
    order = jnp.argsort(-logits, stable=True)  # (C,) likeliest first; ties: lower index first
    rank = jnp.argsort(order)  # (C,) each token's place in that order
    logits = jnp.where(rank < top_k, logits, -jnp.inf)
    sorted_probs = jax.nn.softmax(logits)[order]
    mass_before = jnp.concatenate([jnp.zeros(1, sorted_probs.dtype), jnp.cumsum(sorted_probs)[:-1]])
    # The likeliest token has nothing before it, so it always survives; p = 1 keeps all
    # (a float cumsum can reach 1 before the last tokens).
    keep_sorted = (mass_before < top_p) | (top_p >= 1)
    logits = jnp.where(keep_sorted[rank], logits, -jnp.inf)
    return jax.random.categorical(key, logits)


@eqx.filter_jit
def _generate(model, feature_table, primer, key, temperature, top_k, top_p, steps: int, window: int, stateful: bool):
    """Greedy when ``key`` is None, else sampled. Returns ``(steps,)`` int32."""
    tokens, state = _warm_up(model, feature_table, primer, window, stateful)
    initial_state = model.initial_state()
    keys = None if key is None else jax.random.split(key, steps)

    def step(carry, step_key):
        tokens, state = carry  # (W,), the state to read them with
        logits, next_state = model(feature_table[tokens], state)
        if step_key is None:
            token = jnp.argmax(logits)
        else:
            token = _choose(logits, step_key, temperature, top_k, top_p)
        token = token.astype(tokens.dtype)
        tokens = jnp.concatenate([tokens[1:], token[None]])
        return (tokens, next_state if stateful else initial_state), token

    _, new_tokens = jax.lax.scan(step, (tokens, state), keys, length=steps)
    return new_tokens


@eqx.filter_jit
def _beam_search(model, feature_table, primer, steps: int, width: int, window: int, stateful: bool):
    """Returns ``tokens (width, steps)`` and ``scores (width,)``, best first."""
    tokens, state = _warm_up(model, feature_table, primer, window, stateful)
    n_classes = jax.eval_shape(lambda: model(feature_table[tokens], state)[0]).shape[0]

    def per_beam(x):
        return jnp.broadcast_to(x, (width, *x.shape))

    windows = per_beam(tokens)  # (B, W)
    states = jax.tree_util.tree_map(per_beam, state)  # each (B, H)
    resets = jax.tree_util.tree_map(per_beam, model.initial_state())
    # One live beam to start with; the others score -inf so the first step fills the
    # beam with distinct continuations of it.
    scores = jnp.full((width,), -jnp.inf, jnp.float32).at[0].set(0.0)  # (B,)
    history = jnp.zeros((width, steps), tokens.dtype)  # (B, steps)

    def step(carry, t):
        windows, states, scores, history = carry
        logits, next_states = jax.vmap(model)(feature_table[windows], states)  # (B, C)
        candidates = (scores[:, None] + jax.nn.log_softmax(logits, axis=-1)).reshape(-1)  # (B * C,)
        scores, best = jax.lax.top_k(candidates, width)  # (B,), sorted, ties: lower index first
        parents = best // n_classes
        new = (best % n_classes).astype(windows.dtype)
        windows = jnp.concatenate([windows[parents, 1:], new[:, None]], axis=1)
        states = jax.tree_util.tree_map(lambda s: s[parents], next_states) if stateful else resets
        history = history[parents].at[:, t].set(new)
        return (windows, states, scores, history), None

    (_, _, scores, history), _ = jax.lax.scan(step, (windows, states, scores, history), jnp.arange(steps))
    return history, scores


@eqx.filter_jit
def _log_prob(model, feature_table, primer, tokens, window: int, stateful: bool):
    """``tokens (steps,)`` -> a scalar; ``(n, steps)`` -> ``(n,)``."""
    start, state = _warm_up(model, feature_table, primer, window, stateful)
    initial_state = model.initial_state()

    def score(sequence):
        def step(carry, token):
            tokens, state = carry
            logits, next_state = model(feature_table[tokens], state)
            tokens = jnp.concatenate([tokens[1:], token[None]])
            return (tokens, next_state if stateful else initial_state), jax.nn.log_softmax(logits)[token]

        _, log_probs = jax.lax.scan(step, (start, state), sequence)
        return log_probs.sum()

    return score(tokens) if tokens.ndim == 1 else jax.vmap(score)(tokens)
