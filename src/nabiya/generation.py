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

Every function takes a model and token indices only: the model owns its input encoding,
its window and whether it is stateful (see :mod:`nabiya.models`). A stateful model starts
from a reset state and carries its state from each window to the next; a stateless one
starts every window from the reset state. When a generated
note is appended, the next window is the last ``window`` notes and the model reads all
of it again, carrying (if stateful) the state it had after the previous window, as the
tutorial's full-song prediction does.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nabiya.config import MAX_BEAM_WIDTH, MAX_GENERATE_NOTES, MAX_SEED, MAX_TOP_K, check_whole_number
from nabiya.errors import NabiyaError
from nabiya.models import Model
from nabiya.music.note import Note

if TYPE_CHECKING:
    from nabiya.checkpoint import SavedModel


@eqx.filter_jit
def _predict_windows(model: Model, windows: jax.Array) -> jax.Array:
    initial_state = model.initial_state()
    if not model.stateful:
        return jax.vmap(lambda window: model(window, initial_state)[0])(windows)

    def step(state, window):
        logits, state = model(window, state)
        return state, logits

    _, logits = jax.lax.scan(step, initial_state, windows)
    return logits


def predict_windows(model: Model, windows: np.ndarray) -> np.ndarray:
    """Logits for each window, shape ``(n_samples, n_classes)``: the tutorial's one-step prediction.

    A stateful model reads the windows in order from a reset state, carrying its state from
    each to the next; a stateless one reads each from the reset state.

    Args:
        model: a trained model.
        windows: token indices of each window, shape ``(n_samples, window)``, in song order.
    """
    return np.asarray(_predict_windows(model, jnp.asarray(windows, jnp.int32)))


def continue_greedy(model: Model, primer: np.ndarray, steps: int) -> np.ndarray:
    """Continue a melody by always taking the likeliest next token (the tutorial's argmax).

    Args:
        model: a trained model.
        primer: the first window's token indices, shape ``(window,)`` (or longer: see :func:`generate`).
        steps: how many tokens to add.

    Returns:
        The new token indices, shape ``(steps,)``, int32.
    """
    return generate(model, primer, steps, strategy=Greedy())


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
        check_whole_number(self.k, "top-k", minimum=1, maximum=MAX_TOP_K)
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
        check_whole_number(self.width, "the beam width", minimum=1, maximum=MAX_BEAM_WIDTH)


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
    primer: np.ndarray,
    steps: int,
    *,
    strategy: Strategy = Greedy(),
    key: jax.Array | None = None,
) -> np.ndarray:
    """Continue a melody from a primer, one compiled loop for the whole continuation.

    The model reads the last ``model.window`` tokens, a strategy picks the next token, the
    window slides on, ``steps`` times. A stateful model starts from a reset state; when
    the primer is longer than the window it first reads the primer's windows in order
    (``primer[0:W]``, ``primer[1:W+1]``, …, the ones whose next token the primer gives),
    carrying its state as the tutorial's one-step prediction does, then continues from
    the primer's last window with that state. A stateless model only reads the last window.

    Args:
        model: a trained model.
        primer: token indices to continue, shape ``(P,)`` with ``P >= model.window``.
        steps: how many tokens to add, at least 1.
        strategy: :class:`Greedy` (the default), :class:`Temperature`, :class:`TopK`,
            :class:`TopP` or :class:`Beam`.
        key: a PRNG key, needed by the sampling strategies; the same key gives the same
            melody. Greedy and beam search ignore it.

    Returns:
        The new token indices, shape ``(steps,)``, int32 (each below the model's ``n_classes``).

    Raises:
        NabiyaError: for fewer than 1 step, a primer shorter than the window or with a
            token outside the model's vocabulary, or a sampling strategy without a key.

    Example:
        >>> from nabiya.config import preset
        >>> from nabiya.encoding import Vocabulary
        >>> from nabiya.models import make_model
        >>> table = Vocabulary.tutorial().feature_table("pitch_length")     # (14, 2)
        >>> model = make_model(preset("stateful2").model, feature_table=table, window=4, n_classes=12,
        ...                    key=jax.random.key(0))                          # untrained, stateful
        >>> tokens = generate(model, [11, 9, 2, 10], 50, strategy=TopP(0.9),  # g8 e8 e4 f8
        ...                   key=jax.random.key(1))
        >>> tokens.shape, tokens.dtype.name
        ((50,), 'int32')
    """
    primer = _check_inputs(model, primer, steps)
    if isinstance(strategy, Greedy):
        tokens = _generate(model, primer, None, None, None, None, steps)
    elif isinstance(strategy, (Temperature, TopK, TopP)):
        if key is None:
            raise NabiyaError(f"the {strategy.name} strategy samples: pass a PRNG key, e.g. key=jax.random.key(0)")
        vocab_size = vocabulary_size(model)
        top_k = strategy.k if isinstance(strategy, TopK) else vocab_size
        top_p = strategy.p if isinstance(strategy, TopP) else 1.0
        # Traced, not static: changing the temperature, k or p does not recompile.
        tokens = _generate(
            model, primer, key,
            jnp.float32(strategy.temperature), jnp.int32(min(top_k, vocab_size)), jnp.float32(top_p), steps,
        )  # fmt: skip
    elif isinstance(strategy, Beam):
        tokens = _beam_search(model, primer, steps, int(strategy.width))[0][0]
    else:
        raise NabiyaError(f"unknown strategy {strategy!r}: use Greedy, Temperature, TopK, TopP or Beam")
    return np.asarray(tokens)


def beam_search(model: Model, primer: np.ndarray, steps: int, *, width: int,
                stop_token: int | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Every final beam of a beam search, best first, with its score.

    :func:`generate` with :class:`Beam` returns the first of these. Arguments as there, and
    ``stop_token``: a token that ends a melody (a tune's ``<eos>``): a beam that has chosen it
    is finished, its score stays, and every later token of it is ``stop_token``.

    Returns:
        ``tokens`` of shape ``(width, steps)``, int32, and ``scores`` of shape ``(width,)``:
        each beam's summed log-probability (natural log), in descending order. A beam that
        could not be filled (``width`` above the number of possible continuations) scores ``-inf``.

    Example:
        >>> tokens, scores = beam_search(model, idx[:4], 50, width=4)           # doctest: +SKIP
        >>> tokens.shape, scores.shape                                                   # doctest: +SKIP
        ((4, 50), (4,))
    """
    Beam(width)  # validates
    primer = _check_inputs(model, primer, steps)
    tokens, scores = _beam_search(model, primer, steps, int(width), None if stop_token is None else int(stop_token))
    return np.asarray(tokens), np.asarray(scores)


def log_prob(model: Model, primer: np.ndarray, tokens: np.ndarray) -> float | np.ndarray:
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
        >>> round(log_prob(model, idx[:4], idx[4:]), 2)                        # doctest: +SKIP
        -0.14
    """
    tokens = np.asarray(tokens)
    if tokens.ndim not in (1, 2) or tokens.shape[-1] < 1:
        raise NabiyaError(f"tokens must have shape (steps,) or (n, steps), not {tokens.shape}")
    primer = _check_inputs(model, primer, tokens.shape[-1])
    vocab_size = vocabulary_size(model)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise NabiyaError(f"tokens must be indices below {vocab_size}, the vocabulary's size")
    scores = _log_prob(model, primer, jnp.asarray(tokens, jnp.int32))
    return float(scores) if tokens.ndim == 1 else np.asarray(scores)


def continue_song(
    saved: SavedModel,
    primer: "Sequence[Note] | Song | str | Sequence[str] | None" = None,
    *,
    steps: int | None = None,
    strategy: Strategy = Greedy(),
    seed: int = 0,
) -> tuple[Note, ...]:
    """Continue a melody with a model loaded by :func:`nabiya.checkpoint.load_model`.

    Args:
        saved: the loaded model.
        primer: the notes to continue, at least the model's window long, in any form
            :func:`nabiya.run` takes a song: notes, a Song, a built-in song's name, a file,
            note codes (``"g8 e8 e4 f8"``) or a list of them. By default the first window
            of the song the model was trained on. A stateful model reads a
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
    window, song = saved.model.window, saved.song
    if primer is None:
        if song is None:
            raise NabiyaError(f"{where} was saved without its training song: give a primer of at least {window} notes")
        primer = song.notes[:window]
    primer = _primer_notes(primer)
    if len(primer) < window:
        raise NabiyaError(
            f"the primer has {len(primer)} note{'s' if len(primer) != 1 else ''}: "
            f"the model reads {window} at a time, so give at least {window}"
        )
    if steps is None:
        if song is None:
            raise NabiyaError(f"{where} was saved without its training song: give the number of notes to add")
        steps = len(song) - len(primer) if len(song) > len(primer) else len(song) - window
    # JAX keeps 32 bits of a seed: larger ones would silently repeat smaller ones' music.
    check_whole_number(seed, "the seed", minimum=0, maximum=MAX_SEED)
    indices = saved.vocabulary.encode(primer, source="the primer")
    tokens = generate(saved.model, indices, steps, strategy=strategy, key=jax.random.key(seed))
    return saved.vocabulary.decode(tokens)


def _primer_notes(primer) -> tuple[Note, ...]:
    """Notes from any song form (see :func:`continue_song`)."""
    if isinstance(primer, (list, tuple)) and all(isinstance(note, Note) for note in primer):
        return tuple(primer)
    from nabiya.experiment import resolve_song  # the one resolver of song forms

    if not isinstance(primer, (str, os.PathLike, list, tuple)) and not hasattr(primer, "notes"):
        raise NabiyaError(
            f"a primer is notes, a Song, a song's name, a file or note codes, not {type(primer).__name__}"
        )
    return tuple(resolve_song(primer).notes)


def vocabulary_size(model: Model) -> int:
    """How many tokens a model reads: the rows of its feature table (or of its embedding)."""
    features = getattr(model, "features", None)
    if features is not None:
        return int(features.shape[0])
    return int(model.vocab_size)


def _check_inputs(model: Model, primer, steps) -> jax.Array:
    """The primer as a JAX array, or a NabiyaError saying what is wrong with the arguments."""
    primer = np.asarray(primer)
    if primer.ndim != 1:
        raise NabiyaError(f"the primer must be a sequence of token indices, shape (P,), not {primer.shape}")
    if primer.size and not np.issubdtype(primer.dtype, np.integer):
        raise NabiyaError(f"the primer must hold token indices (integers), not {primer.dtype} values")
    window = model.window
    if len(primer) < window and getattr(model, "pad_token", None) is not None and len(primer) >= 1:
        # A model that reads <pad> as "nothing yet" (the corpus transformer) takes a short primer
        # left-padded to its window; the padding is masked out inside the model.
        primer = np.concatenate([np.full(window - len(primer), model.pad_token, primer.dtype), primer])
    if len(primer) < window:
        raise NabiyaError(
            f"the primer has {len(primer)} note{'s' if len(primer) != 1 else ''}: "
            f"the model reads {window} at a time, so give at least {window}"
        )
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise NabiyaError(f"the number of notes to add must be a whole number of at least 1, not {steps!r}")
    check_whole_number(steps, "the number of notes to add", minimum=1, maximum=MAX_GENERATE_NOTES)
    vocab_size = vocabulary_size(model)
    outside = np.flatnonzero((primer < 0) | (primer >= vocab_size))
    if outside.size:
        position = int(outside[0])
        raise NabiyaError(
            f"primer token {position + 1} ({int(primer[position])}) is not an index of the "
            f"{vocab_size}-token vocabulary"
        )
    return jnp.asarray(primer, jnp.int32)


def _warm_up(model: Model, primer: jax.Array):
    """The primer's last window ``(W,)`` and the state to read it with.

    A stateful model first reads the primer's earlier windows in order from a reset state;
    a stateless one reads every window from the reset state, so needs no warm-up.
    """
    window = model.window
    state = model.initial_state()
    n_warm = primer.shape[0] - window
    if model.stateful and n_warm > 0:
        windows = primer[jnp.arange(n_warm)[:, None] + jnp.arange(window)]  # (n_warm, W)

        def read(state, tokens):
            _, state = model(tokens, state)
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
def _generate(model, primer, key, temperature, top_k, top_p, steps: int):
    """Greedy when ``key`` is None, else sampled. Returns ``(steps,)`` int32."""
    tokens, state = _warm_up(model, primer)
    initial_state = model.initial_state()
    keys = None if key is None else jax.random.split(key, steps)

    def step(carry, step_key):
        tokens, state = carry  # (W,), the state to read them with
        logits, next_state = model(tokens, state)
        if step_key is None:
            token = jnp.argmax(logits)
        else:
            token = _choose(logits, step_key, temperature, top_k, top_p)
        token = token.astype(tokens.dtype)
        tokens = jnp.concatenate([tokens[1:], token[None]])
        return (tokens, next_state if model.stateful else initial_state), token

    _, new_tokens = jax.lax.scan(step, (tokens, state), keys, length=steps)
    return new_tokens


@eqx.filter_jit
def _beam_search(model, primer, steps: int, width: int, stop_token: int | None = None):
    """Returns ``tokens (width, steps)`` and ``scores (width,)``, best first."""
    tokens, state = _warm_up(model, primer)
    n_classes = jax.eval_shape(lambda: model(tokens, state)[0]).shape[0]

    def per_beam(x):
        return jnp.broadcast_to(x, (width, *x.shape))

    windows = per_beam(tokens)  # (B, W)
    states = jax.tree_util.tree_map(per_beam, state)  # each (B, H)
    resets = jax.tree_util.tree_map(per_beam, model.initial_state())
    # One live beam to start with; the others score -inf so the first step fills the
    # beam with distinct continuations of it.
    scores = jnp.full((width,), -jnp.inf, jnp.float32).at[0].set(0.0)  # (B,)
    history = jnp.zeros((width, steps), tokens.dtype)  # (B, steps)
    finished = jnp.zeros((width,), bool)  # (B,) the beam chose stop_token
    stop = -1 if stop_token is None else stop_token
    # A finished beam's only continuation is stop_token again, at no cost.
    after_stop = jnp.where(jnp.arange(n_classes) == stop, 0.0, -jnp.inf)  # (C,)

    def step(carry, t):
        windows, states, scores, history, finished = carry
        logits, next_states = jax.vmap(model)(windows, states)  # (B, C)
        log_probs = jnp.where(finished[:, None], after_stop, jax.nn.log_softmax(logits, axis=-1))
        candidates = (scores[:, None] + log_probs).reshape(-1)  # (B * C,)
        scores, best = jax.lax.top_k(candidates, width)  # (B,), sorted, ties: lower index first
        parents = best // n_classes
        new = (best % n_classes).astype(windows.dtype)
        windows = jnp.concatenate([windows[parents, 1:], new[:, None]], axis=1)
        states = jax.tree_util.tree_map(lambda s: s[parents], next_states) if model.stateful else resets
        history = history[parents].at[:, t].set(new)
        finished = finished[parents] | (new == stop)
        return (windows, states, scores, history, finished), None

    carry = (windows, states, scores, history, finished)
    (_, _, scores, history, _), _ = jax.lax.scan(step, carry, jnp.arange(steps))
    return history, scores


@eqx.filter_jit
def _log_prob(model, primer, tokens):
    """``tokens (steps,)`` -> a scalar; ``(n, steps)`` -> ``(n,)``."""
    start, state = _warm_up(model, primer)
    initial_state = model.initial_state()

    def score(sequence):
        def step(carry, token):
            tokens, state = carry
            logits, next_state = model(tokens, state)
            tokens = jnp.concatenate([tokens[1:], token[None]])
            return (tokens, next_state if model.stateful else initial_state), jax.nn.log_softmax(logits)[token]

        _, log_probs = jax.lax.scan(step, (start, state), sequence)
        return log_probs.sum()

    return score(tokens) if tokens.ndim == 1 else jax.vmap(score)(tokens)


# --- whole tunes, many at once -----------------------------------------------------------


def generate_batch(
    model: Model,
    prompts: np.ndarray,
    max_steps: int,
    *,
    strategy: Strategy = Greedy(),
    key: jax.Array | None = None,
    stop_token: int | None = None,
    allowed: np.ndarray | None = None,
    min_length: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Continue ``N`` prompts at once, each until it chooses ``stop_token`` or has ``max_steps`` tokens.

    One compiled call for the whole batch: a ``lax.while_loop`` (vectorised over the prompts)
    that ends when every tune has ended, so tunes that end early cost nothing more. Each
    prompt is read as :func:`generate` reads a primer (a model with a ``pad_token`` takes a
    prompt shorter than its window left-padded).

    Args:
        model: a trained model.
        prompts: token indices, shape ``(N, P)`` (one prompt per tune, all of one length).
        max_steps: the most tokens to add to a tune, ``stop_token`` included.
        strategy: :class:`Greedy`, :class:`Temperature`, :class:`TopK` or :class:`TopP`
            (beam search keeps one primer's best continuations: see :func:`beam_search`).
        key: a PRNG key for sampling: tune ``i`` uses ``fold_in(key, i)``; or an array of
            ``N`` keys, one per tune. The same key gives the same tunes, and a tune is the
            same whether made alone (with its own key) or in a batch.
        stop_token: the token that ends a tune (a corpus vocabulary's ``<eos>``).
        allowed: ``(V,)`` bool, the tokens that may be chosen (default: all), e.g. notes
            and ``<eos>`` but not ``<unk>``, which has no pitch to write.
        min_length: ``stop_token`` cannot be chosen before a tune has this many new tokens
            (1: no tune is empty).

    Returns:
        ``tokens`` ``(N, max_steps)`` int32, the new tokens of each tune (after its end:
        ``stop_token``, or 0 without one), and ``lengths`` ``(N,)`` int32, how many each
        tune added (its ``stop_token`` included). A tune ended by itself when
        ``tokens[i, lengths[i] - 1] == stop_token``.

    Example:
        >>> tokens, lengths = generate_batch(model, np.array([[1, 4, 7, 9]] * 8), 300,      # doctest: +SKIP
        ...                                  strategy=Temperature(1.0), key=jax.random.key(0), stop_token=2)
    """
    prompts = np.asarray(prompts)
    if prompts.ndim != 2 or prompts.shape[0] < 1:
        raise NabiyaError(f"prompts must have shape (N, P) with N >= 1, not {prompts.shape}")
    if isinstance(strategy, Beam):
        raise NabiyaError("beam search continues one primer: use beam_search (or generate) for it")
    rows = np.stack([np.asarray(_check_inputs(model, prompt, max_steps)) for prompt in prompts])
    vocab_size = vocabulary_size(model)
    mask = np.ones(vocab_size, bool) if allowed is None else np.asarray(allowed, bool)
    if mask.shape != (vocab_size,) or not mask.any():
        raise NabiyaError(f"allowed must be {vocab_size} booleans with at least one True")
    count = rows.shape[0]
    if isinstance(strategy, Greedy):
        keys, options = jax.random.split(jax.random.key(0), count), None
    else:
        if key is None:
            raise NabiyaError(f"the {strategy.name} strategy samples: pass a PRNG key, e.g. key=jax.random.key(0)")
        keys = _tune_keys(key, count)
        top_k = strategy.k if isinstance(strategy, TopK) else vocab_size
        top_p = strategy.p if isinstance(strategy, TopP) else 1.0
        options = (jnp.float32(strategy.temperature), jnp.int32(min(top_k, vocab_size)), jnp.float32(top_p))
    stop = None if stop_token is None else int(stop_token)
    tokens, lengths = _generate_batch(model, jnp.asarray(rows, jnp.int32), keys, options, jnp.asarray(mask),
                                      jnp.int32(min_length), int(max_steps), stop)  # fmt: skip
    return np.asarray(tokens), np.asarray(lengths)


def _tune_keys(key: jax.Array, count: int) -> jax.Array:
    """``count`` keys: ``fold_in(key, i)`` for a single key, or the given array of ``count`` keys."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if key.ndim == 0:
        return jax.vmap(lambda index: jax.random.fold_in(key, index))(jnp.arange(count))
    if key.shape != (count,):
        raise NabiyaError(f"give one key, or one key per tune ({count}), not {key.shape[0]}")
    return key


@eqx.filter_jit
def _generate_batch(model, prompts, keys, options, allowed, min_length, steps: int, stop_token: int | None):
    """``prompts (N, W')`` -> ``tokens (N, steps)``, ``lengths (N,)``; greedy when ``options`` is None."""
    initial_state = model.initial_state()
    fill = 0 if stop_token is None else stop_token

    def one(prompt, key):
        window, state = _warm_up(model, prompt)
        tokens = jnp.full((steps,), fill, jnp.int32)

        def running(carry):
            t, _, _, _, done = carry
            return (t < steps) & ~done

        def step(carry):
            t, window, state, tokens, _ = carry
            logits, next_state = model(window, state)
            may = allowed
            if stop_token is not None:
                may = may.at[stop_token].set(allowed[stop_token] & (t >= min_length))
            logits = jnp.where(may, logits, -jnp.inf)
            if options is None:
                token = jnp.argmax(logits)
            else:
                token = _choose(logits, jax.random.fold_in(key, t), *options)
            token = token.astype(jnp.int32)
            done = (token == stop_token) if stop_token is not None else jnp.bool_(False)
            window = jnp.concatenate([window[1:], token[None].astype(window.dtype)])
            state = next_state if model.stateful else initial_state
            return t + 1, window, state, tokens.at[t].set(token), done

        carry = (jnp.int32(0), window, state, tokens, jnp.bool_(False))
        length, _, _, tokens, _ = jax.lax.while_loop(running, step, carry)
        return tokens, length

    return jax.vmap(one)(prompts, keys)
