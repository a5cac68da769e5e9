"""The baselines a corpus model must beat: n-gram models of the same tokens, and a copy detector.

**The n-gram** is interpolated modified Kneser–Ney (Chen & Goodman, 1998) over token ids,
of variable order: the probability of a token after a context of ``n - 1`` tokens mixes the
discounted counts of that context with the model of the context one token shorter, down
to a uniform distribution over the tokens a model is scored on. The longest context uses
raw counts; shorter ones use continuation counts (in how many different contexts a token
followed), with three discounts per order estimated from counts of counts. This is the
strongest of the classic smoothing methods for language, and the family of the PPM models
IDyOM uses for melody (both blend every order up to a bound). Order 1 is the *unigram*
baseline (absolute discounting against uniform).

A model is fitted on the training tunes' token sequences (:func:`fit`); its order is the
one with the lowest NLL on the validation tunes, or fixed. It predicts the positions
:mod:`nabiya.metrics` scores, and only those: events are the scored targets (notes,
``<unk>``, ``<eos>``), contexts are whatever came before in the tune (``<bos>`` and the
conditions included; before ``<bos>``, ``<pad>``). Its probabilities are zero for tokens
never scored, so they add up to 1 over the vocabulary.

Why written here: nltk's ``KneserNeyInterpolated`` is pure Python per query (hours for
full distributions over a test set), and kenlm estimates with a separate C++ tool and
answers one token at a time. Counting here is numpy (sorting int64 keys), so fitting
orders 1..10 on 400,000 tokens and choosing the order takes seconds.

**Copying**: :class:`CopyIndex` finds the longest run of notes a (generated) tune shares
with any training tune, so that a model that copies is seen to.

Example::

    data = nabiya.tokenize_corpus(nabiya.load_corpus())
    baseline = fit(data.train, data.vocab, validation=data.valid)   # order chosen on validation
    baseline.order, baseline.evaluate(data.test).nll_bits
    fit(data.train, data.vocab, order=1).evaluate(data.test)          # the unigram
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nabiya.errors import NabiyaError
from nabiya.metrics import Metrics, Scorer

if TYPE_CHECKING:
    from nabiya.tokens import TuneVocabulary

DEFAULT_MAX_ORDER = 10
PAD = 0
_CHUNK_POSITIONS = 2048  # positions whose full distributions are computed at once


@dataclass(frozen=True)
class _Counts:
    """Counts of (context, token) pairs at one context length, raw or continuation.

    ``keys`` are ``context id * V + token``, sorted; ``counts`` their counts; the pairs of
    context ``c`` are ``starts[c]:starts[c + 1]``; ``totals`` the sum per context and
    ``backoff`` the mass each context leaves to shorter ones (``D1 N1 + D2 N2 + D3 N3+``).
    """

    keys: np.ndarray
    counts: np.ndarray
    starts: np.ndarray
    totals: np.ndarray
    backoff: np.ndarray
    discounts: np.ndarray  # (4,): D(0)=0, D1, D2, D3+

    def discounted(self, counts: np.ndarray) -> np.ndarray:
        return counts - self.discounts[np.minimum(counts, 3)]


@dataclass(frozen=True)
class _Level:
    """Contexts of one length ``k``: their keys (``parent id * V + token``, sorted; id = place)."""

    context_keys: np.ndarray
    raw: _Counts
    continuation: _Counts | None


@dataclass(frozen=True)
class NGramModel:
    """An interpolated modified Kneser–Ney model of token sequences (see the module docstring).

    Attributes:
        order: the n of the n-gram used for predictions (1 = unigram).
        max_order: the highest order its counts allow (:meth:`with_order` up to it).
        vocab_size: V.
        validation_nll: NLL per scored position (nats) on the validation tunes, by order,
            when the order was chosen on them.
    """

    order: int
    max_order: int
    vocab_size: int
    scored: np.ndarray = field(repr=False)
    levels: tuple[_Level, ...] = field(repr=False)
    validation_nll: dict = field(default_factory=dict)

    def with_order(self, order: int) -> "NGramModel":
        """The same counts, predicting with another order (1 .. ``max_order``)."""
        if not 1 <= order <= self.max_order:
            raise NabiyaError(f"an order of 1 to {self.max_order} (the counts' highest), not {order}")
        return replace(self, order=order)

    # --- predictions ---------------------------------------------------------------------------

    def target_log_probs(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """``log p(target)`` at every scored position of the sequences, in order: ``(N,)`` float64.

        The same numbers as :meth:`log_probs` at the targets, without the full distributions.
        """
        history, targets = self._positions(sequences)
        return np.log(self._target_probs(history, targets)[self.order - 1])

    def log_probs(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Log-probabilities of every token at every scored position, in order: ``(N, V)`` float32.

        Rows follow :func:`nabiya.metrics.scored_targets`; tokens never scored get ``-inf``.
        """
        history, _ = self._positions(sequences)
        rows = [self._distributions(history[start : start + _CHUNK_POSITIONS])
                for start in range(0, len(history), _CHUNK_POSITIONS)]  # fmt: skip
        if not rows:
            return np.zeros((0, self.vocab_size), dtype=np.float32)
        with np.errstate(divide="ignore"):
            return np.log(np.concatenate(rows)).astype(np.float32)

    def nll(self, sequences: Sequence[np.ndarray]) -> float:
        """Mean ``-log p(target)`` over the scored positions, in nats."""
        values = self.target_log_probs(sequences)
        if not len(values):
            raise NabiyaError("no position to score: the tunes have no notes")
        return float(-values.mean())

    def evaluate(self, sequences: Sequence[np.ndarray], vocab: "TuneVocabulary") -> Metrics:
        """Every metric of :mod:`nabiya.metrics` on the scored positions of the sequences."""
        if len(vocab) != self.vocab_size:
            raise NabiyaError(f"a vocabulary of {len(vocab)} tokens for a model of {self.vocab_size}")
        history, targets = self._positions(sequences)
        scorer = Scorer(vocab)
        for start in range(0, len(history), _CHUNK_POSITIONS):
            with np.errstate(divide="ignore"):
                log_probs = np.log(self._distributions(history[start : start + _CHUNK_POSITIONS]))
            scorer.add(log_probs, targets[start : start + _CHUNK_POSITIONS])
        return scorer.result()

    # --- the computation -------------------------------------------------------------------------

    def _positions(self, sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return _positions(sequences, self.scored, self.max_order - 1, self.vocab_size)

    def _context_ids(self, history: np.ndarray) -> list[np.ndarray]:
        """Per level k, each position's context id of length k (-1: never seen in training)."""
        ids = [np.zeros(len(history), dtype=np.int64)]
        for k, level in enumerate(self.levels[1:], start=1):
            parent = ids[-1]
            keys = parent * self.vocab_size + history[:, k - 1]
            places = np.minimum(np.searchsorted(level.context_keys, keys), len(level.context_keys) - 1)
            found = (parent >= 0) & (level.context_keys[places] == keys)
            ids.append(np.where(found, places, -1))
        return ids

    def _counts(self, k: int, top: int) -> _Counts:
        level = self.levels[k]
        return level.raw if k == top else level.continuation

    def _target_probs(self, history: np.ndarray, targets: np.ndarray) -> list[np.ndarray]:
        """``p(target)`` for every order 1..``order``: a list of ``(N,)`` arrays (index n-1)."""
        uniform = 1.0 / self.scored.sum()
        context = self._context_ids(history)
        below = np.full(len(targets), uniform)  # the continuation chain so far
        results = []
        for k in range(self.order):
            top = self._level_target_probs(self.levels[k].raw, context[k], targets, below)
            results.append(top)
            if k + 1 < self.order:
                below = self._level_target_probs(self.levels[k].continuation, context[k], targets, below)
        return results

    def _level_target_probs(self, counts: _Counts, context: np.ndarray, targets: np.ndarray,
                            below: np.ndarray) -> np.ndarray:  # fmt: skip
        seen = context >= 0
        result = below.copy()
        ids = context[seen]
        keys = ids * self.vocab_size + targets[seen]
        places = np.minimum(np.searchsorted(counts.keys, keys), len(counts.keys) - 1)
        pair = np.where(counts.keys[places] == keys, counts.counts[places], 0)
        totals = counts.totals[ids]
        result[seen] = (np.maximum(counts.discounted(pair), 0) + counts.backoff[ids] * below[seen]) / totals
        return result

    def _distributions(self, history: np.ndarray) -> np.ndarray:
        """``(n, V)`` float64 probabilities at positions with these histories."""
        size = self.vocab_size
        context = self._context_ids(history)
        top = self.order - 1
        probs = np.zeros((len(history), size))
        probs[:, self.scored] = 1.0 / self.scored.sum()
        for k in range(self.order):
            counts = self._counts(k, top)
            seen = np.flatnonzero(context[k] >= 0)
            ids = context[k][seen]
            lengths = counts.starts[ids + 1] - counts.starts[ids]
            firsts = np.repeat(counts.starts[ids], lengths)
            offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + firsts
            totals = counts.totals[ids]
            probs[seen] *= (counts.backoff[ids] / totals)[:, None]
            rows = np.repeat(seen, lengths)
            values = np.maximum(counts.discounted(counts.counts[offsets]), 0) / np.repeat(totals, lengths)
            probs[rows, counts.keys[offsets] % size] += values
        return probs


def fit(
    train: Sequence[np.ndarray],
    vocab: "TuneVocabulary",
    *,
    order: int | None = None,
    validation: Sequence[np.ndarray] | None = None,
    max_order: int = DEFAULT_MAX_ORDER,
) -> NGramModel:
    """Fit the n-gram on training sequences; choose its order on validation sequences.

    Args:
        train: token sequences (``<bos>`` … ``<eos>``), e.g. ``TokenizedCorpus.train``.
        vocab: their vocabulary (which tokens are scored, and V).
        order: the order to predict with; None chooses it on ``validation`` (lowest NLL).
        validation: sequences to choose the order on (needed when ``order`` is None).
        max_order: the highest order counted (and tried).

    Returns:
        The :class:`NGramModel`, with ``validation_nll`` per order when it was chosen.

    Raises:
        NabiyaError: for no training position, an order out of range, or no validation
            sequences to choose with.

    Example:
        >>> from nabiya.tokens import SPECIAL_TOKENS, TuneVocabulary
        >>> vocab = TuneVocabulary(SPECIAL_TOKENS + ("<meter:?>", "<mode:?>", "<pickup:?>", "c4", "d4"))
        >>> tune = np.array([1, 4, 5, 6, 7, 8, 7, 8, 2])
        >>> model = fit([tune], vocab, order=2)
        >>> float(np.exp(model.log_probs([tune])).sum(axis=1).round(6).max())
        1.0
    """
    if order is None and not validation:
        raise NabiyaError("choosing the n-gram's order needs validation sequences (or give an order)")
    max_order = max(max_order, order or 1)
    if max_order < 1:
        raise NabiyaError(f"an n-gram's order is at least 1, not {max_order}")
    size = len(vocab)
    scored = np.asarray(vocab.is_scored, dtype=bool)
    history, targets = _positions(train, scored, max_order - 1, size)
    if not len(targets):
        raise NabiyaError("no training position to count: the training tunes have no notes")
    levels = _count_levels(history, targets, size, max_order)
    model = NGramModel(order=order or max_order, max_order=max_order, vocab_size=size, scored=scored, levels=levels)
    if order is not None:
        return model
    val_history, val_targets = model._positions(validation)
    if not len(val_targets):
        raise NabiyaError("no validation position to choose the order on: the validation tunes have no notes")
    probs = model._target_probs(val_history, val_targets)
    nll = {n: float(-np.log(p).mean()) for n, p in enumerate(probs, start=1)}
    best = min(nll, key=lambda n: (nll[n], n))
    return replace(model, order=best, validation_nll=nll)


def _positions(sequences: Sequence[np.ndarray], scored: np.ndarray, context: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(history (N, context) int64, targets (N,) int64)`` of every scored position.

    ``history[:, j]`` is the token ``j + 1`` places before the target (``<pad>`` before the start).
    """
    blocks, targets_at = [], []
    offset = 0
    for sequence in sequences:
        sequence = np.asarray(sequence, dtype=np.int64)
        if len(sequence) and (sequence.min() < 0 or sequence.max() >= size):
            raise NabiyaError(f"a token id outside the vocabulary of {size} tokens")
        block = np.concatenate([np.full(context, PAD, dtype=np.int64), sequence])
        places = np.flatnonzero(scored[sequence[1:]]) + 1 + context
        blocks.append(block)
        targets_at.append(places + offset)
        offset += len(block)
    if not blocks:
        return np.zeros((0, context), np.int64), np.zeros(0, np.int64)
    flat = np.concatenate(blocks)
    at = np.concatenate(targets_at)
    history = np.stack([flat[at - 1 - j] for j in range(context)], axis=1) if context else np.zeros((len(at), 0), np.int64)
    return history, flat[at]


def _count_levels(history: np.ndarray, targets: np.ndarray, size: int, max_order: int) -> tuple[_Level, ...]:
    context_ids = [np.zeros(len(targets), dtype=np.int64)]
    context_keys = [np.zeros(1, dtype=np.int64)]
    for k in range(1, max_order):
        keys = context_ids[-1] * size + history[:, k - 1]
        unique, inverse = np.unique(keys, return_inverse=True)
        context_keys.append(unique)
        context_ids.append(inverse.reshape(-1))
    raw = []
    for k in range(max_order):
        keys, counts = np.unique(context_ids[k] * size + targets, return_counts=True)
        raw.append(_make_counts(keys, counts, len(context_keys[k]), size))
    levels = []
    for k in range(max_order):
        continuation = None
        if k + 1 < max_order:
            # N1+(. context token): in how many longer contexts the pair was seen.
            longer = raw[k + 1].keys
            parents = context_keys[k + 1][longer // size] // size
            keys, counts = np.unique(parents * size + longer % size, return_counts=True)
            continuation = _make_counts(keys, counts, len(context_keys[k]), size)
        levels.append(_Level(context_keys[k], raw[k], continuation))
    return tuple(levels)


def _make_counts(keys: np.ndarray, counts: np.ndarray, contexts: int, size: int) -> _Counts:
    counts = counts.astype(np.int64)
    owners = keys // size
    totals = np.bincount(owners, weights=counts, minlength=contexts).astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(np.bincount(owners, minlength=contexts))]).astype(np.int64)
    discounts = _discounts(counts)
    per_pair = discounts[np.minimum(counts, 3)]
    backoff = np.bincount(owners, weights=per_pair, minlength=contexts).astype(np.float64)
    return _Counts(keys, counts, starts, totals, backoff, discounts)


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Modified Kneser–Ney's D1, D2, D3+ from counts of counts (Chen & Goodman), as ``[0, D1, D2, D3]``."""
    n1, n2, n3, n4 = (int((counts == c).sum()) for c in (1, 2, 3, 4))
    if n1 == 0 or n2 == 0:  # too few counts for the estimate: one plain discount
        return np.array([0.0, 0.5, 0.5, 0.5]) if n1 == 0 else np.array([0.0, 0.7, 0.7, 0.7])
    y = n1 / (n1 + 2 * n2)
    d1 = 1 - 2 * y * n2 / n1
    d2 = 2 - 3 * y * n3 / n2 if n3 else 1.0
    d3 = 3 - 4 * y * n4 / n3 if n3 and n4 else d2
    return np.array([0.0, min(max(d1, 0.05), 1.0), min(max(d2, 0.05), 2.0), min(max(d3, 0.05), 3.0)])


# --- copying -------------------------------------------------------------------------------------


class CopyIndex:
    """The notes of training tunes, for finding the longest run a tune copies from any of them.

    Only note tokens count: a run stops at the conditions, ``<unk>`` and the tune's ends, and
    never spans two training tunes.

    Example:
        >>> from nabiya.tokens import SPECIAL_TOKENS, TuneVocabulary
        >>> vocab = TuneVocabulary(SPECIAL_TOKENS + ("<meter:?>", "<mode:?>", "<pickup:?>",
        ...                                          "c4", "d4", "e4", "f4", "g4"))
        >>> index = CopyIndex([np.array([1, 4, 5, 6, 7, 8, 9, 10, 2])], vocab)
        >>> index.longest_copied_run(np.array([1, 4, 5, 11, 8, 9, 10, 7, 2]))
        3
    """

    def __init__(self, sequences: Sequence[np.ndarray], vocab: "TuneVocabulary") -> None:
        self.vocab = vocab
        if len(vocab) >= 1 << 14:
            raise NabiyaError(f"a vocabulary of {len(vocab)} tokens is too large for the copy index")
        # Each token is 2 bytes, the first with its top bit set, so a match found by bytes.find
        # starts on a token; b"\0" between runs is never the first byte of a token.
        self._text = b"\0".join(self._encode(run) for sequence in sequences for run in self._runs(sequence))

    def _runs(self, sequence: np.ndarray) -> list[np.ndarray]:
        sequence = np.asarray(sequence)
        notes = self.vocab.is_note[sequence]
        runs, start = [], None
        for position, is_note in enumerate(notes.tolist() + [False]):
            if is_note and start is None:
                start = position
            elif not is_note and start is not None:
                runs.append(sequence[start:position])
                start = None
        return runs

    @staticmethod
    def _encode(run: np.ndarray) -> bytes:
        run = np.asarray(run, dtype=np.int64)
        pairs = np.stack([0x80 | (run >> 7), run & 0x7F], axis=1).astype(np.uint8)
        return pairs.tobytes()

    def longest_copied_run(self, sequence: np.ndarray) -> int:
        """The most notes in a row ``sequence`` shares with a training tune (0 when none).

        Args:
            sequence: token ids of one tune (a generated one: conditions and ends are passed over).
        """
        best = 0
        for run in self._runs(sequence):
            data = self._encode(run)
            end = 0
            for start in range(len(run)):
                end = max(end, start + best)  # only runs longer than the best so far matter
                while end < len(run) and self._text.find(data[2 * start : 2 * (end + 1)]) >= 0:
                    end += 1
                best = max(best, end - start)
                if end >= len(run):
                    break
        return best


def bits(nats: float) -> float:
    """Nats in bits."""
    return nats / math.log(2)
