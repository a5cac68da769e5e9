"""How well a model predicts held-out tunes: NLL per note, perplexity, accuracy, by pitch and by duration.

Every corpus model and every baseline is scored by these functions, on the same positions:
those whose target is a note, ``<unk>`` or ``<eos>`` (:meth:`nabiya.tokens.TuneVocabulary.score_mask`),
never ``<bos>`` or the conditioning tokens, which are given, not predicted. A model's
numbers and the n-gram's are therefore comparable position for position.

Definitions, over the N scored positions, for a model's log-probabilities ``log p(token | before)``:

- ``nll_nats``: the mean of ``-log p(target)``; ``nll_bits`` the same in bits (/ ln 2);
  ``perplexity``: ``exp(nll_nats)``. "Per note" means per scored position: each note and
  each tune's end.
- ``accuracy``: the share of positions whose most probable token is the target.
- ``pitch_accuracy``: the share whose most probable *pitch* is the target's, a pitch's
  probability being the sum over the tokens with that pitch (every duration). A rest is a
  pitch of its own, and so are ``<eos>`` (``end``) and ``<unk>`` (``unknown``).
  ``duration_accuracy``: the same by duration (every pitch and rest summed).
- ``pitch_nll_nats``, ``duration_nll_nats``: ``-log`` of those summed probabilities.

Probability a model puts on unscored tokens (``<bos>``, conditions, ``<pad>``) is lost to it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nabiya.errors import NabiyaError

if TYPE_CHECKING:
    from nabiya.tokens import TuneVocabulary


@dataclass(frozen=True)
class Metrics:
    """Scores over a set of positions (see the module docstring for each).

    Example:
        >>> Metrics.from_sums(positions=2, nll_nats=2.0, correct=1, pitch_correct=2, duration_correct=1,
        ...                   pitch_nll_nats=1.0, duration_nll_nats=1.0).perplexity
        2.718281828459045
    """

    positions: int
    nll_nats: float
    nll_bits: float
    perplexity: float
    accuracy: float
    pitch_accuracy: float
    duration_accuracy: float
    pitch_nll_nats: float
    duration_nll_nats: float

    @classmethod
    def from_sums(cls, *, positions: int, nll_nats: float, correct: float, pitch_correct: float,
                  duration_correct: float, pitch_nll_nats: float, duration_nll_nats: float) -> "Metrics":  # fmt: skip
        """Metrics from sums over ``positions`` (each sum is divided by ``positions``)."""
        if positions <= 0:
            raise NabiyaError("no position to score: the tunes have no notes")
        mean = nll_nats / positions
        return cls(
            positions=int(positions),
            nll_nats=mean,
            nll_bits=mean / math.log(2),
            perplexity=math.exp(mean) if mean < 700 else math.inf,
            accuracy=correct / positions,
            pitch_accuracy=pitch_correct / positions,
            duration_accuracy=duration_correct / positions,
            pitch_nll_nats=pitch_nll_nats / positions,
            duration_nll_nats=duration_nll_nats / positions,
        )

    def to_json(self) -> dict:
        return asdict(self)


class Scorer:
    """Adds up the scores of a model batch by batch; :meth:`result` gives the :class:`Metrics`.

    Example:
        >>> scorer = Scorer(vocab)                                       # doctest: +SKIP
        >>> for batch in batches:                                        # doctest: +SKIP
        ...     scorer.add(log_probs_of(batch), batch.targets, batch.score_mask)
        >>> scorer.result().nll_bits                                     # doctest: +SKIP
    """

    def __init__(self, vocab: "TuneVocabulary") -> None:
        self.vocab = vocab
        self._pitch = _group_matrix(*vocab.pitch_groups)
        self._duration = _group_matrix(*vocab.duration_groups)
        self._pitch_of = vocab.pitch_groups[0]
        self._duration_of = vocab.duration_groups[0]
        self._sums = dict.fromkeys(
            ("positions", "nll_nats", "correct", "pitch_correct", "duration_correct", "pitch_nll_nats",
             "duration_nll_nats"), 0.0)  # fmt: skip

    def add(self, log_probs, targets, mask=None) -> None:
        """Score positions.

        Args:
            log_probs: ``(..., V)`` log-probabilities (natural log) of every token, e.g.
                ``(B, T, V)`` from a batch or ``(N, V)``; numpy or JAX.
            targets: ``(...)`` int token ids, the shape of ``log_probs`` without ``V``.
            mask: ``(...)`` bool, which positions to score; default (and always, in
                addition) only the positions :meth:`~nabiya.tokens.TuneVocabulary.score_mask`
                allows.
        """
        log_probs = np.asarray(log_probs, dtype=np.float64)
        targets = np.asarray(targets)
        if log_probs.shape[:-1] != targets.shape or log_probs.shape[-1] != len(self.vocab):
            raise NabiyaError(
                f"log-probabilities of shape {log_probs.shape} do not fit targets of shape {targets.shape} "
                f"and a vocabulary of {len(self.vocab)} tokens"
            )
        keep = self.vocab.score_mask(targets)
        if mask is not None:
            keep &= np.asarray(mask, dtype=bool)
        log_probs = log_probs.reshape(-1, log_probs.shape[-1])[keep.reshape(-1)]
        targets = targets.reshape(-1)[keep.reshape(-1)]
        if not len(targets):
            return
        rows = np.arange(len(targets))
        probs = np.exp(log_probs)
        pitch = probs @ self._pitch  # (N, pitch groups)
        duration = probs @ self._duration
        pitch_target = self._pitch_of[targets]
        duration_target = self._duration_of[targets]
        sums = self._sums
        sums["positions"] += len(targets)
        sums["nll_nats"] -= log_probs[rows, targets].sum()
        sums["correct"] += (log_probs.argmax(axis=1) == targets).sum()
        sums["pitch_correct"] += (pitch.argmax(axis=1) == pitch_target).sum()
        sums["duration_correct"] += (duration.argmax(axis=1) == duration_target).sum()
        with np.errstate(divide="ignore"):
            sums["pitch_nll_nats"] -= np.log(pitch[rows, pitch_target]).sum()
            sums["duration_nll_nats"] -= np.log(duration[rows, duration_target]).sum()

    def result(self) -> Metrics:
        sums = dict(self._sums)
        return Metrics.from_sums(**{**sums, "positions": int(sums["positions"])})


def score(log_probs, targets, vocab: "TuneVocabulary", mask=None) -> Metrics:
    """The :class:`Metrics` of log-probabilities ``(..., V)`` against targets ``(...)`` (one batch).

    Example:
        >>> from nabiya.tokens import SPECIAL_TOKENS, TuneVocabulary
        >>> vocab = TuneVocabulary(SPECIAL_TOKENS + ("<meter:?>", "<mode:?>", "<pickup:?>", "c4", "d4"))
        >>> uniform = np.log(np.full((2, len(vocab)), 1 / len(vocab)))
        >>> round(score(uniform, np.array([7, 2]), vocab).perplexity, 6)
        9.0
    """
    scorer = Scorer(vocab)
    scorer.add(log_probs, targets, mask)
    return scorer.result()


def scored_targets(sequences: Sequence[np.ndarray], vocab: "TuneVocabulary") -> np.ndarray:
    """The targets of every scored position of token sequences, in order: ``(N,)`` int32.

    Position ``i`` of a sequence (``i >= 1``) is scored when ``sequence[i]`` is a note,
    ``<unk>`` or ``<eos>``; it is predicted from ``sequence[:i]``.
    """
    parts = [sequence[1:][vocab.score_mask(sequence[1:])] for sequence in sequences]
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)


def _group_matrix(groups: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """``(V, G)`` one-hot: token -> its group (rows of unscored tokens are zero)."""
    matrix = np.zeros((len(groups), len(names)), dtype=np.float64)
    scored = groups >= 0
    matrix[np.flatnonzero(scored), groups[scored]] = 1.0
    return matrix
