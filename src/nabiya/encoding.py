"""Vocabulary and feature encodings: song <-> arrays of token indices and features.

A *token* is what a model predicts: a pitch (or a rest) with a duration. The
vocabulary numbers the tokens; a *feature encoding* turns each token into the
vector a model reads. Every encoding here is a function of the token alone, so it is
stored as a table of shape ``(vocab_size, n_features)`` and a window of token
indices becomes features by indexing that table.

For 나비야, and any song written only in the tutorial's 14 codes (``c4``…``b4``,
``c8``…``b8``), the tutorial's own dictionary is used, in its order, so its
results do not move. Other songs get a vocabulary of their own tokens, sorted by
pitch (rests first) and then by duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np

from nabiya.errors import NabiyaError
from nabiya.music.note import Note, format_code, parse_code

Token = tuple[int | None, Fraction]

# The tutorial's code2idx, in its order.
TUTORIAL_CODES = ("c4", "d4", "e4", "f4", "g4", "a4", "b4", "c8", "d8", "e8", "f8", "g8", "a8", "b8")

FEATURE_ENCODINGS = {
    "index": "the token's index / (vocabulary size - 1): the tutorial's `code2idx[code] / 13`",
    "pitch_length": "two features: the pitch's rank / (distinct pitches - 1) and the duration's rank "
    "(longest first) / (distinct durations - 1): the tutorial's `pitch / 6` and length code 0/1",
    "onehot": "one feature per token, 1 for the token and 0 elsewhere (an embedding's input)",
}


@dataclass(frozen=True)
class Vocabulary:
    """The tokens a model reads and predicts, numbered.

    Attributes:
        tokens: ``(pitch or None, duration in quarters)`` pairs; a token's index is its
            position here.
        name: ``'tutorial'`` for the tutorial's dictionary, else ``'song'``.
    """

    tokens: tuple[Token, ...]
    name: str = "song"

    @classmethod
    def tutorial(cls) -> "Vocabulary":
        """The tutorial's code2idx: c4…b4 are 0…6, c8…b8 are 7…13."""
        return cls(tuple(parse_code(code).token for code in TUTORIAL_CODES), name="tutorial")

    @classmethod
    def for_notes(cls, notes: Iterable[Note]) -> "Vocabulary":
        """The tutorial's dictionary if it covers every note, else one built from the notes."""
        notes = tuple(notes)
        tutorial = cls.tutorial()
        if all(note.token in tutorial.index_of for note in notes):
            return tutorial
        tokens = sorted({note.token for note in notes}, key=lambda t: (-1 if t[0] is None else t[0], t[1]))
        return cls(tuple(tokens))

    @cached_property  # looked up once per note; a frozen dataclass keeps it in __dict__
    def index_of(self) -> dict[Token, int]:
        return {token: index for index, token in enumerate(self.tokens)}

    @property
    def codes(self) -> list[str]:
        return [format_code(Note(pitch, duration)) for pitch, duration in self.tokens]

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, notes: Sequence[Note], *, source: str = "the song") -> np.ndarray:
        """Token indices of the notes, shape ``(len(notes),)``, int32.

        Raises:
            NabiyaError: for a note the vocabulary lacks, naming it and its position.
        """
        index_of = self.index_of
        indices = np.empty(len(notes), dtype=np.int32)
        for position, note in enumerate(notes):
            try:
                indices[position] = index_of[note.token]
            except KeyError:
                raise NabiyaError(
                    f"note {position + 1} of {source} ({note.code}) is not in the model's vocabulary "
                    f"of {len(self)} notes ({' '.join(self.codes[:20])}{' …' if len(self) > 20 else ''})"
                ) from None
        return indices

    def decode(self, indices: Iterable[int]) -> tuple[Note, ...]:
        """Notes of token indices: the inverse of :meth:`encode` (spellings are the defaults)."""
        return tuple(Note(*self.tokens[int(index)]) for index in indices)

    def feature_table(self, encoding: str) -> np.ndarray:
        """The features of every token, shape ``(len(self), n_features)``, float32.

        Args:
            encoding: one of ``FEATURE_ENCODINGS`` (``'index'``, ``'pitch_length'``, ``'onehot'``).

        Example:
            >>> table = Vocabulary.tutorial().feature_table("pitch_length")
            >>> table[Vocabulary.tutorial().index_of[parse_code("g8").token]].tolist()
            [0.6666666865348816, 1.0]
        """
        size = len(self)
        if encoding == "index":
            return (np.arange(size, dtype=np.float64) / max(size - 1, 1)).astype(np.float32)[:, None]
        if encoding == "pitch_length":
            # For the tutorial's dictionary these are c d e f g a b: its code2scale, / 6.
            pitches = sorted({pitch for pitch, _ in self.tokens if pitch is not None})
            durations = sorted({duration for _, duration in self.tokens}, reverse=True)
            pitch_rank = {pitch: rank for rank, pitch in enumerate(pitches)}
            duration_rank = {duration: rank for rank, duration in enumerate(durations)}
            table = np.empty((size, 2), dtype=np.float64)
            for index, (pitch, duration) in enumerate(self.tokens):
                # A rest sits below every pitch, at -1.
                table[index, 0] = -1.0 if pitch is None else pitch_rank[pitch] / max(len(pitches) - 1, 1)
                table[index, 1] = duration_rank[duration] / max(len(durations) - 1, 1)
            return table.astype(np.float32)
        if encoding == "onehot":
            return np.eye(size, dtype=np.float32)
        raise NabiyaError(f"unknown feature encoding {encoding!r}: choose one of {', '.join(FEATURE_ENCODINGS)}")

    def to_json(self) -> dict:
        return {"name": self.name, "codes": self.codes}

    @classmethod
    def from_json(cls, data: dict) -> "Vocabulary":
        tokens = tuple(parse_code(code).token for code in data["codes"])
        return cls(tokens, name=data.get("name", "song"))
