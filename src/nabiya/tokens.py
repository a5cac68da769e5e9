"""Tokens for corpus models: a tune as ``<bos>``, its conditions, its notes and ``<eos>``, and back.

A tune becomes one sequence of token ids::

    <bos> <meter:6/8> <mode:major> <pickup:1/2> d8 f#8 a8 ... d4. <eos>       (transpose=True)
    <bos> <meter:6/8> <mode:major> <tonic:D> <pickup:1/2> d8 f#8 ... <eos>    (transpose=False)

- **Note tokens** are a pitch (or a rest) with a duration, as the tutorial's codes are
  (``g8``, ``r4``, ``c:5/2``); a note token's name is its note code.
- **Conditioning tokens** open the tune: its meter, its mode (``major``, ``minor``,
  ``dorian``, ``mixolydian`` …; ionian is major and aeolian minor) and the length of its
  pickup in quarter notes (``0`` for none), so that a model can be asked for a jig in D
  (``6/8``, ``major``), and a tune written out again has its bar lines where they were.
  A value the training tunes never had (or a tune without a meter or key) is ``?``.
- **The tonic.** With ``transpose=True`` (the default) every tune is moved to the tonic C
  (the nearer way: G goes up 5, D down 2) before it becomes tokens, so a model learns one
  set of intervals instead of twelve; the tonic is then *not* a token: :meth:`TuneVocabulary.decode`
  moves the notes back to the tonic it is given (``tonic="D"``). With ``transpose=False``
  the tonic is a conditioning token (``<tonic:D>``) and notes keep their pitches. A tune
  without a key is not moved.
- **Augmentation** (``augment=(-2, -1, 1, 2)``, only with ``transpose=False``) adds each
  training tune again in other keys; validation and test tunes are never augmented.
- **Rare notes.** A note token seen fewer than ``min_count`` times in the training tunes
  (augmented copies counted) is *rare*; with ``rare="unk"`` (the default) it, and any note
  the training tunes never had, becomes ``<unk>``, which is scored like a note, so every
  tune keeps every position; with ``rare="drop"`` the tunes holding one are left out of every
  part. Either way a corpus model and the n-gram baseline (:mod:`nabiya.ngram`) see the same
  vocabulary and are scored at the same positions.
- **Scored positions**: a model is scored where its target is a note, ``<unk>`` or ``<eos>``
  (:meth:`TuneVocabulary.score_mask`), never on ``<bos>`` or the conditions.

Ids are fixed for the specials (``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3), then
the conditioning tokens, then the notes (rests first, then by pitch and duration). This
module is numpy only (no JAX), and a vocabulary is JSON (:meth:`TuneVocabulary.to_json`) for
model files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from nabiya.errors import NabiyaError
from nabiya.music.notation import key_name, parse_key, parse_meter, spell
from nabiya.music.note import Note, format_code, parse_code
from nabiya.music.song import Song
from nabiya.music.transpose import shift_to_c, tonic_pitch_class, transpose, transpose_key

if TYPE_CHECKING:
    from nabiya.music.corpus import Corpus, Split

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
UNKNOWN = "?"
RARE_POLICIES = ("unk", "drop")
CONDITION_KINDS = ("meter", "mode", "tonic", "pickup")
_MODE_NAMES = {"ionian": "major", "aeolian": "minor"}

Token = tuple  # (pitch or None, duration in quarters)


@dataclass(frozen=True)
class TokenConfig:
    """How tunes become tokens (see the module docstring).

    Attributes:
        transpose: move every tune to the tonic C (and back on output); the tonic is then
            no token.
        augment: semitone shifts (e.g. ``(-2, -1, 1, 2)``) at which each training tune is
            added again; only with ``transpose=False``.
        min_count: note tokens seen fewer times in the training tunes are rare.
        rare: ``"unk"`` (rare notes become ``<unk>``) or ``"drop"`` (their tunes are left out).

    Example:
        >>> TokenConfig(transpose=False, augment=(1, -1)).augment
        (-1, 1)
    """

    transpose: bool = True
    augment: tuple[int, ...] = ()
    min_count: int = 3
    rare: str = "unk"

    def __post_init__(self) -> None:
        try:
            augment = tuple(sorted({int(shift) for shift in self.augment} - {0}))
        except (TypeError, ValueError):
            raise NabiyaError(f"augment takes whole numbers of semitones, e.g. -2,-1,1,2; not {self.augment!r}") from None
        if any(abs(shift) > 11 for shift in augment):
            raise NabiyaError(f"augment shifts are -11..11 semitones, not {self.augment!r}")
        if augment and self.transpose:
            raise NabiyaError(
                "augmenting by transposition needs the tonic as a token: use transpose=False (--no-transpose); "
                "with transpose=True every tune is moved to C, and copies in other keys would not be"
            )
        if not isinstance(self.min_count, int) or isinstance(self.min_count, bool) or self.min_count < 1:
            raise NabiyaError(f"min_count is a whole number of at least 1, not {self.min_count!r}")
        if self.rare not in RARE_POLICIES:
            raise NabiyaError(f"unknown rare-token policy {self.rare!r}: choose 'unk' or 'drop'")
        object.__setattr__(self, "augment", augment)

    def to_json(self) -> dict:
        return {"transpose": self.transpose, "augment": list(self.augment), "min_count": self.min_count,
                "rare": self.rare}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> "TokenConfig":
        return cls(bool(data["transpose"]), tuple(data.get("augment", ())), int(data["min_count"]), data["rare"])


@dataclass(frozen=True)
class TuneVocabulary:
    """The tokens of a corpus model, numbered, and how a song becomes them and comes back.

    Attributes:
        tokens: token names; a token's id is its position (``"<bos>"``, ``"<meter:6/8>"``,
            ``"<mode:dorian>"``, ``"<pickup:1/2>"``, ``"g8"``, ``"r4"`` …).
        config: the :class:`TokenConfig` it was built with.
        conditions: how many training tunes had each combination of conditions, as
            ``((meter, mode, tonic, pickup), tunes)`` pairs (tonic ``""`` when transposed),
            for drawing conditions "from the corpus" (:meth:`draw_prompt`).

    Example:
        >>> vocab = build_vocabulary([Song.from_codes("d4 e4 f#4 d2", meter="3/4", key="D major")],
        ...                          TokenConfig(min_count=1))
        >>> ids = vocab.encode(Song.from_codes("d4 e4 f#4 d2", meter="3/4", key="D major"))
        >>> [vocab.tokens[i] for i in ids]
        ['<bos>', '<meter:3/4>', '<mode:major>', '<pickup:0>', 'c4', 'd4', 'e4', 'c2', '<eos>']
        >>> vocab.decode(ids, tonic="D").codes
        ['d4', 'e4', 'f#4', 'd2']
    """

    tokens: tuple[str, ...]
    config: TokenConfig = TokenConfig()
    conditions: tuple = field(default=(), compare=False)

    def __len__(self) -> int:
        return len(self.tokens)

    # --- lookups -----------------------------------------------------------------------------

    @cached_property
    def index_of(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.tokens)}

    @cached_property
    def _note_ids(self) -> dict[Token, int]:
        return {self.note_of(index): index for index in range(len(self)) if self.is_note[index]}

    @cached_property
    def is_note(self) -> np.ndarray:
        """``(V,)`` bool: the token is a note (a pitch or a rest, with a duration)."""
        return np.array([not name.startswith("<") for name in self.tokens], dtype=bool)

    @cached_property
    def is_scored(self) -> np.ndarray:
        """``(V,)`` bool: a model is scored when this token is its target (notes, ``<unk>``, ``<eos>``)."""
        scored = self.is_note.copy()
        scored[[EOS, UNK]] = True
        return scored

    @cached_property
    def _notes(self) -> dict[int, Token]:
        return {index: parse_code(name).token for index, name in enumerate(self.tokens) if not name.startswith("<")}

    def note_of(self, index: int) -> Token:
        """``(pitch or None, duration)`` of a note token's id."""
        return self._notes[int(index)]

    @property
    def condition_kinds(self) -> tuple[str, ...]:
        """The conditions, in their order after ``<bos>``: meter, mode, (tonic,) pickup."""
        return ("meter", "mode", "pickup") if self.config.transpose else ("meter", "mode", "tonic", "pickup")

    @property
    def prefix_length(self) -> int:
        """Tokens before the first note: ``<bos>`` and the conditions."""
        return 1 + len(self.condition_kinds)

    def score_mask(self, targets: np.ndarray) -> np.ndarray:
        """Which targets a model is scored on: a bool array of the shape of ``targets`` (token ids).

        Example:
            >>> vocab = TuneVocabulary(SPECIAL_TOKENS + ("<meter:?>", "<mode:?>", "<pickup:?>", "c4"))
            >>> vocab.score_mask(np.array([1, 4, 7, 3, 2])).tolist()
            [False, False, True, True, True]
        """
        return self.is_scored[np.asarray(targets)]

    @cached_property
    def pitch_groups(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """``(group of each token (V,) int32, group names)``: scored tokens grouped by pitch.

        A note's group is its pitch (``"C4"``, ``"rest"``); ``<eos>`` is ``"end"`` and
        ``<unk>`` ``"unknown"``; unscored tokens are -1. Per-pitch accuracy compares groups.
        """
        return self._groups(lambda token: "rest" if token[0] is None else f"{token[0]}")

    @cached_property
    def duration_groups(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """As :attr:`pitch_groups`, by duration (``"1/2"`` quarter notes)."""
        return self._groups(lambda token: str(token[1]))

    def _groups(self, name_of) -> tuple[np.ndarray, tuple[str, ...]]:
        names: dict[str, int] = {"end": 0, "unknown": 1}
        groups = np.full(len(self), -1, dtype=np.int32)
        groups[EOS], groups[UNK] = 0, 1
        for index in np.flatnonzero(self.is_note):
            groups[index] = names.setdefault(name_of(self.note_of(index)), len(names))
        return groups, tuple(names)

    # --- songs to ids and back ---------------------------------------------------------------

    def encode(self, song: Song) -> np.ndarray:
        """The song's token ids, shape ``(prefix_length + len(song) + 1,)``, int32.

        With ``transpose=True`` the song is first moved to the tonic C. Notes the vocabulary
        lacks become ``<unk>``; conditions it lacks become ``?``.

        Raises:
            NabiyaError: when moving to C would take a note beyond MIDI's range.
        """
        if self.config.transpose:
            song = transpose(song, shift_to_c(song.key))
        ids = [BOS] + self._condition_ids(conditions_of(song))
        note_ids = self._note_ids
        ids += [note_ids.get(note.token, UNK) for note in song.notes]
        ids.append(EOS)
        return np.asarray(ids, dtype=np.int32)

    def _condition_id(self, kind: str, value: str) -> int:
        return self.index_of.get(f"<{kind}:{value}>", self.index_of[f"<{kind}:{UNKNOWN}>"])

    def _condition_ids(self, values: Sequence[str]) -> list[int]:
        """Ids of ``(meter, mode, tonic, pickup)`` values, for the conditions this vocabulary has."""
        named = dict(zip(CONDITION_KINDS, values))
        return [self._condition_id(kind, named[kind]) for kind in self.condition_kinds]

    def prompt(self, *, meter: str | None = None, key: str | None = None, pickup: Fraction | str = 0) -> np.ndarray:
        """The ids a tune with these conditions opens with (``<bos>`` and the conditions), ``(prefix_length,)``.

        With ``transpose=True`` only the key's mode is a token: pass its tonic to :meth:`decode`.

        Example:
            >>> vocab = TuneVocabulary(SPECIAL_TOKENS + ("<meter:6/8>", "<meter:?>", "<mode:major>", "<mode:?>",
            ...                                          "<pickup:0>", "<pickup:?>"))
            >>> [vocab.tokens[i] for i in vocab.prompt(meter="6/8", key="D major")]
            ['<bos>', '<meter:6/8>', '<mode:major>', '<pickup:0>']
        """
        song = Song((), meter=meter, key=key, pickup=Fraction(pickup))
        return np.asarray([BOS] + self._condition_ids(conditions_of(song)), np.int32)

    def draw_prompt(self, rng: np.random.Generator, *, meter: str | None = None, mode: str | None = None) -> np.ndarray:
        """A prompt whose missing conditions are drawn as often as the training tunes had them.

        Args:
            rng: where the draw comes from (``np.random.default_rng(seed)``).
            meter, mode: conditions to keep (``"6/8"``, ``"dorian"``); the rest are drawn
                from the training tunes that had these.

        Raises:
            NabiyaError: when no training tune had the conditions asked for.
        """
        mode = _MODE_NAMES.get(mode, mode) if mode else None
        matching = [(values, count) for values, count in self.conditions
                    if (meter is None or values[0] == meter) and (mode is None or values[1] == mode)]  # fmt: skip
        if not matching:
            raise NabiyaError(f"no training tune has meter {meter or 'any'} and mode {mode or 'any'}")
        counts = np.array([count for _, count in matching], dtype=np.float64)
        values = matching[int(rng.choice(len(matching), p=counts / counts.sum()))][0]
        return np.asarray([BOS] + self._condition_ids(values), np.int32)

    def decode(self, ids: Iterable[int], *, tonic: str | None = None, title: str = "", unknown: str = "error") -> Song:
        """The song of token ids: its notes, meter, key and pickup; the inverse of :meth:`encode`.

        Reading stops at ``<eos>``; ``<pad>`` and ``<bos>`` are passed over; the first token of
        each condition counts.

        Args:
            ids: token ids (a whole tune, or a prompt and what a model continued it with).
            tonic: the tonic to move the tune to (``"D"``, ``"Bb"``): with ``transpose=True``
                the notes are in C until moved (the key is then ``"C <mode>"``); with
                ``transpose=False`` the tune moves from its tonic token to this one, the nearer way.
            title: the song's title.
            unknown: what to do with ``<unk>``: ``"error"`` or ``"skip"``.

        Raises:
            NabiyaError: for an id outside the vocabulary, a ``<unk>`` (with
                ``unknown="error"``), or a tonic that is not one.
        """
        values: dict[str, str] = {}
        notes: list[Note] = []
        for position, index in enumerate(ids):
            index = int(index)
            if not 0 <= index < len(self):
                raise NabiyaError(f"token {position + 1}: id {index} is outside the vocabulary of {len(self)} tokens")
            if index == EOS:
                break
            if index in (PAD, BOS):
                continue
            if index == UNK:
                if unknown == "skip":
                    continue
                raise NabiyaError(f"token {position + 1} is <unk> (a rare note): it has no pitch to write")
            name = self.tokens[index]
            if name.startswith("<"):
                kind, _, value = name[1:-1].partition(":")
                values.setdefault(kind, value)
                continue
            notes.append(Note(*self.note_of(index)))
        known = {kind: value for kind, value in values.items() if value != UNKNOWN}
        meter = known.get("meter")
        pickup = Fraction(known.get("pickup", "0"))
        mode = known.get("mode")
        own_tonic = "c" if self.config.transpose else known.get("tonic")
        if tonic is not None:
            target = parse_key(f"{tonic} {mode or 'major'}")
            if target is None:
                raise NabiyaError(f"{tonic!r} is not a tonic: write a note name such as 'D', 'Bb' or 'F#'")
            if own_tonic is None:
                raise NabiyaError("the tune has no tonic token to move from")
            if self.config.transpose:  # exactly undo encode's move to C
                shift = -shift_to_c(f"{tonic} major")
            else:  # the nearer way from the tune's tonic
                shift = (tonic_pitch_class(f"{tonic} major") - tonic_pitch_class(f"{own_tonic} major") + 5) % 12 - 5
            notes = [note if note.pitch is None else Note(note.pitch + shift, note.duration) for note in notes]
            own_tonic = target[0]
        key = key_name(own_tonic, mode) if mode and own_tonic else None
        parsed = parse_key(key)
        if key is not None and parsed is None:
            key = None
        fifths = parsed[2] if parsed else None
        notes = [note if note.pitch is None else Note(note.pitch, note.duration, spell(note.pitch, fifths))
                 for note in notes]  # fmt: skip
        return Song(tuple(notes), title=title, meter=meter, key=key, pickup=pickup)

    # --- files ---------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """The vocabulary as JSON, for a model file: :meth:`from_json` reads it back."""
        return {
            "format": "nabiya-tune-vocabulary",
            "version": 1,
            "config": self.config.to_json(),
            "tokens": list(self.tokens),
            "conditions": [[list(values), count] for values, count in self.conditions],
        }

    @classmethod
    def from_json(cls, data: dict) -> "TuneVocabulary":
        """Raises:
        NabiyaError: for JSON that is not such a vocabulary."""
        try:
            if data.get("format") != "nabiya-tune-vocabulary":
                raise ValueError("not a nabiya tune vocabulary")
            tokens = tuple(str(name) for name in data["tokens"])
            if tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
                raise ValueError("the special tokens are not first")
            for name in tokens:
                if not name.startswith("<"):
                    parse_code(name)
            conditions = tuple((tuple(values), int(count)) for values, count in data.get("conditions", ()))
            return cls(tokens, TokenConfig.from_json(data["config"]), conditions)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise NabiyaError(f"not a nabiya tune vocabulary: {error}") from None


def conditions_of(song: Song) -> tuple[str, str, str, str]:
    """``(meter, mode, tonic, pickup)`` of a song as token values (``"?"`` where unknown).

    Example:
        >>> conditions_of(Song.from_codes("d4 e2", meter="6/8", key="D ionian", pickup=Fraction(1, 2)))
        ('6/8', 'major', 'D', '1/2')
    """
    return _conditions(song.meter, song.key, song.pickup)


def _conditions(meter: str | None, key: str | None, pickup: Fraction) -> tuple[str, str, str, str]:
    parsed = parse_key(key)
    meter = meter if meter and parse_meter(meter) else UNKNOWN
    if parsed is None:
        return meter, UNKNOWN, UNKNOWN, str(pickup)
    tonic, mode, _ = parsed
    return meter, _MODE_NAMES.get(mode, mode), tonic[0].upper() + tonic[1:], str(pickup)


@dataclass(frozen=True)
class _Tune:
    """A tune as arrays, moved to where it is encoded from: ``pitches`` (L,) int16 (-1 a rest)
    and ``durations`` (L,) int16, indices into its :class:`_Melodies` table."""

    id: str
    pitches: np.ndarray
    durations: np.ndarray
    conditions: tuple[str, str, str, str]


class _Melodies:
    """Songs to :class:`_Tune` arrays, sharing one table of durations.

    A corpus's songs share their notes (see ``corpus_reading.song_from_json``), so each
    distinct note is looked at once (by identity) and exact fractions are hashed a few
    thousand times, not once per note.
    """

    def __init__(self) -> None:
        self.durations: list[Fraction] = []
        self._duration_index: dict[Fraction, int] = {}
        self._seen: dict[int, tuple[Note, int, int]] = {}

    def tune(self, song: Song, shift: int, tune_id: str) -> _Tune | None:
        """The song moved by ``shift`` semitones, or None when a note would leave MIDI's range."""
        pitches = np.empty(len(song.notes), dtype=np.int16)
        durations = np.empty(len(song.notes), dtype=np.int16)
        seen = self._seen
        for position, note in enumerate(song.notes):
            known = seen.get(id(note))
            if known is None:
                index = self._duration_index.get(note.duration)
                if index is None:
                    if len(self.durations) >= _KEY_DURATIONS:
                        raise NabiyaError(
                            f"the tunes have more than {_KEY_DURATIONS} distinct note durations: "
                            "too many for note tokens (quantize the performances first)"
                        )
                    index = self._duration_index[note.duration] = len(self.durations)
                    self.durations.append(note.duration)
                known = seen[id(note)] = (note, -1 if note.pitch is None else note.pitch, index)
            pitches[position], durations[position] = known[1], known[2]
        if shift:
            sounding = pitches >= 0
            pitches[sounding] += shift
            if sounding.any() and not (0 <= pitches[sounding].min() and pitches[sounding].max() <= 127):
                return None
        key = transpose_key(song.key, shift) if song.key and shift else song.key
        return _Tune(tune_id, pitches, durations, _conditions(song.meter, key, song.pickup))

    def keys(self, tune: _Tune) -> np.ndarray:
        """One int per note: ``(pitch + 1) * len(durations) + duration index``."""
        return (tune.pitches.astype(np.int64) + 1) * _KEY_DURATIONS + tune.durations


# Room for this many distinct durations in a note key (a corpus has a few dozen).
_KEY_DURATIONS = 4096


def build_vocabulary(train: Sequence[Song], config: TokenConfig = TokenConfig()) -> TuneVocabulary:
    """The vocabulary of training songs: every condition they have, and every note token seen
    at least ``config.min_count`` times (after moving the songs to C when ``config.transpose``).

    Args:
        train: the training songs (augmented copies included, if any).
        config: how tunes become tokens.

    Raises:
        NabiyaError: when no note is left (no training songs, or every note rare).
    """
    melodies = _Melodies()
    tunes = []
    for number, song in enumerate(train):
        tune = melodies.tune(song, shift_to_c(song.key) if config.transpose else 0, str(number))
        if tune is not None:
            tunes.append(tune)
    return _vocabulary(tunes, melodies, config)


def _vocabulary(train: Sequence[_Tune], melodies: _Melodies, config: TokenConfig) -> TuneVocabulary:
    keys = np.concatenate([melodies.keys(tune) for tune in train]) if train else np.zeros(0, np.int64)
    found, counts = np.unique(keys, return_counts=True)
    kept = [_token_of_key(int(key), melodies) for key in found[counts >= config.min_count]]
    if not kept:
        raise NabiyaError(
            f"no note token is seen at least {config.min_count} times in the {len(train)} training tunes"
        )
    kinds = ("meter", "mode", "pickup") if config.transpose else CONDITION_KINDS
    combinations: Counter = Counter()
    for tune in train:
        values = tune.conditions
        combinations[(values[0], values[1], "", values[3]) if config.transpose else values] += 1
    names = list(SPECIAL_TOKENS)
    for kind in kinds:
        index = CONDITION_KINDS.index(kind)
        values = {combination[index] for combination in combinations} - {UNKNOWN}
        names += [f"<{kind}:{value}>" for value in sorted(values, key=_condition_order)] + [f"<{kind}:{UNKNOWN}>"]
    names += [format_code(Note(pitch, duration)) for pitch, duration in sorted(kept, key=_note_order)]
    conditions = tuple(sorted(combinations.items(), key=lambda item: (-item[1], item[0])))
    return TuneVocabulary(tuple(names), config, conditions)


def _token_of_key(key: int, melodies: _Melodies) -> Token:
    pitch, duration = divmod(key, _KEY_DURATIONS)
    return (None if pitch == 0 else pitch - 1, melodies.durations[duration])


def _note_order(token: Token):
    pitch, duration = token
    return (-1 if pitch is None else pitch, duration)


def _condition_order(value: str):
    try:
        return (0, Fraction(value), value)  # pickups and meters by size
    except (ValueError, ZeroDivisionError):
        return (1, Fraction(0), value)


# --- a corpus as token sequences ----------------------------------------------------------------


@dataclass(frozen=True)
class TokenizedCorpus:
    """A corpus's tunes as token sequences, by part of its split.

    Attributes:
        vocab: the vocabulary, built from the training tunes.
        train, valid, test: one ``(L_i,)`` int32 array per tune (``<bos>`` … ``<eos>``);
            ``train`` holds the augmented copies too.
        train_ids, valid_ids, test_ids: the tune id of each sequence (an augmented copy's
            id ends ``@+2``: the tune moved up 2 semitones).
        split: the split used.
        dropped: ids of tunes left out by ``rare="drop"`` (or that could not be moved to C),
            by part.
        rare: counts of rare and unseen note tokens (see :func:`vocabulary_report`).
    """

    vocab: TuneVocabulary
    train: tuple[np.ndarray, ...]
    valid: tuple[np.ndarray, ...]
    test: tuple[np.ndarray, ...]
    train_ids: tuple[str, ...]
    valid_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    split: "Split"
    dropped: dict = field(default_factory=dict)
    rare: dict = field(default_factory=dict)

    def part(self, name: str) -> tuple[np.ndarray, ...]:
        """The sequences of ``"train"``, ``"valid"`` or ``"test"``."""
        if name not in ("train", "valid", "test"):
            raise NabiyaError(f"unknown part {name!r}: choose train, valid or test")
        return getattr(self, name)

    def scored_positions(self, name: str) -> int:
        """How many positions of a part a model is scored on (notes, ``<unk>`` and ``<eos>``)."""
        return int(sum(self.vocab.score_mask(sequence[1:]).sum() for sequence in self.part(name)))


def tokenize_corpus(corpus: "Corpus", config: TokenConfig = TokenConfig(), *, split: "Split | None" = None,
                    vocab: TuneVocabulary | None = None) -> TokenizedCorpus:  # fmt: skip
    """Split a corpus, build the vocabulary on its training tunes, and encode every part.

    Each sequence is what :meth:`TuneVocabulary.encode` gives for the tune (computed on
    arrays, so a corpus of thousands of tunes takes a second or two).

    Args:
        corpus: the tunes (see :func:`nabiya.load_corpus`).
        config: transposition, augmentation and the rare-token policy.
        split: which tunes are for what (default: ``corpus.split()``).
        vocab: a vocabulary to encode with (a saved model's), instead of building one; its
            config is used and ``config`` ignored.

    Raises:
        NabiyaError: when the training part is empty, or no note is frequent enough.

    Example:
        >>> data = tokenize_corpus(nabiya.load_corpus("miscFolk"))       # doctest: +SKIP
        >>> len(data.vocab), len(data.train), data.train[0][:4]          # doctest: +SKIP
        (143, 145, array([ 1,  4, 15, 19], dtype=int32))
    """
    split = split or corpus.split()
    config = vocab.config if vocab is not None else config
    parts = {name: corpus.songs_of(split, name) for name in ("train", "valid", "test")}
    if not parts["train"] and vocab is None:
        raise NabiyaError(f"the split leaves no training tunes (of {len(corpus)}): give training a larger share")
    melodies = _Melodies()
    dropped: dict[str, list[str]] = {name: [] for name in parts}
    tunes: dict[str, list[_Tune]] = {name: [] for name in parts}
    for name, part_songs in parts.items():
        for song in part_songs:
            shifts = [shift_to_c(song.key) if config.transpose else 0]
            if name == "train":
                shifts += list(config.augment)
            for number, shift in enumerate(shifts):
                tune_id = song.meta["id"] if number == 0 else f"{song.meta['id']}@{shift:+d}"
                tune = melodies.tune(song, shifts[0] + shift if number else shift, tune_id)
                if tune is not None:
                    tunes[name].append(tune)
                elif number == 0:  # a note beyond MIDI's range once moved: too odd a tune to keep
                    dropped[name].append(tune_id)
    vocab = vocab or _vocabulary(tunes["train"], melodies, config)
    lookup = _note_lookup(vocab, melodies)
    encoded: dict[str, list] = {}
    ids: dict[str, list] = {}
    unknown: dict[str, int] = {}
    for name, part_tunes in tunes.items():
        encoded[name], ids[name], unknown[name] = [], [], 0
        for tune in part_tunes:
            notes = lookup(melodies.keys(tune))
            unknowns = int((notes == UNK).sum())
            if unknowns and config.rare == "drop":
                dropped[name].append(tune.id)
                continue
            unknown[name] += unknowns
            prefix = [BOS] + vocab._condition_ids(tune.conditions)
            encoded[name].append(np.concatenate([np.asarray(prefix, np.int32), notes, np.asarray([EOS], np.int32)]))
            ids[name].append(tune.id)
    if not encoded["train"] and parts["train"]:
        raise NabiyaError("every training tune holds a rare note: lower min_count or use rare='unk'")
    rare = _rare_counts(tunes, melodies, config)
    rare["unknown_positions"] = unknown
    return TokenizedCorpus(
        vocab=vocab,
        **{name: tuple(encoded[name]) for name in parts},
        **{f"{name}_ids": tuple(ids[name]) for name in parts},
        split=split,
        dropped={name: tuple(items) for name, items in dropped.items()},
        rare=rare,
    )


def _note_lookup(vocab: TuneVocabulary, melodies: _Melodies):
    """A function from note keys (see :meth:`_Melodies.keys`) to token ids, ``<unk>`` for the rest."""
    known_keys, known_ids = [], []
    duration_index = {duration: index for index, duration in enumerate(melodies.durations)}
    for index in np.flatnonzero(vocab.is_note):
        pitch, duration = vocab.note_of(index)
        if duration in duration_index:
            known_keys.append((-1 if pitch is None else pitch) * _KEY_DURATIONS + _KEY_DURATIONS + duration_index[duration])
            known_ids.append(index)
    order = np.argsort(known_keys)
    sorted_keys = np.asarray(known_keys, dtype=np.int64)[order]
    sorted_ids = np.asarray(known_ids, dtype=np.int32)[order]

    def lookup(keys: np.ndarray) -> np.ndarray:
        places = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
        return np.where(sorted_keys[places] == keys, sorted_ids[places], UNK).astype(np.int32)

    return lookup


def _rare_counts(tunes: dict[str, list[_Tune]], melodies: _Melodies, config: TokenConfig) -> dict:
    counts = {}
    for name, part in tunes.items():
        keys = np.concatenate([melodies.keys(tune) for tune in part]) if part else np.zeros(0, np.int64)
        found, number = np.unique(keys, return_counts=True)
        counts[name] = dict(zip(found.tolist(), number.tolist()))
    train = counts["train"]
    rare = {key: count for key, count in train.items() if count < config.min_count}
    unseen: Counter = Counter()
    for name in ("valid", "test"):
        for key, count in counts[name].items():
            if key not in train:
                unseen[key] += count
    examples = sorted(rare.items(), key=lambda item: (-item[1], item[0]))[:12]
    return {
        "rare_tokens": len(rare),
        "rare_occurrences": sum(rare.values()),
        "rare_examples": [format_code(Note(*_token_of_key(key, melodies))) for key, _ in examples],
        "unseen_tokens": len(unseen),
        "unseen_occurrences": sum(unseen.values()),
    }


def vocabulary_report(data: TokenizedCorpus) -> dict:
    """The vocabulary's facts for ``nabiya corpus info``: sizes, rare tokens and where ``<unk>`` falls.

    Returns:
        ``size``, ``notes`` (note tokens), ``conditions`` (conditioning tokens, ``?`` included),
        ``transpose``, ``augment``, ``min_count``, ``rare_policy``; ``rare_tokens`` and
        ``rare_occurrences`` (note tokens seen 1 to ``min_count - 1`` times in training, and
        how often), ``rare_examples``, ``unseen_tokens`` and ``unseen_occurrences`` (in
        validation or test but never in training); ``unknown_positions`` (``<unk>`` per
        part), ``dropped`` (tunes per part), ``sequences`` and ``scored_positions`` per part.
    """
    vocab = data.vocab
    notes = int(vocab.is_note.sum())
    parts = ("train", "valid", "test")
    return {
        "size": len(vocab),
        "notes": notes,
        "conditions": len(vocab) - notes - len(SPECIAL_TOKENS),
        "transpose": vocab.config.transpose,
        "augment": list(vocab.config.augment),
        "min_count": vocab.config.min_count,
        "rare_policy": vocab.config.rare,
        **data.rare,
        "dropped": {name: len(data.dropped.get(name, ())) for name in parts},
        "sequences": {name: len(data.part(name)) for name in parts},
        "scored_positions": {name: data.scored_positions(name) for name in parts},
    }
