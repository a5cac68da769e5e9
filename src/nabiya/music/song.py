"""A song: a melody (a sequence of notes) with how it is written down: title, tempo, meter, key, pickup."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable

from nabiya.errors import NabiyaError
from nabiya.music.limits import MAX_SONG_NOTES, MAX_SONG_SECONDS, MAX_TEMPO_BPM, MIN_TEMPO_BPM
from nabiya.music.notation import bar_quarters, key_name, parse_key, parse_meter
from nabiya.music.note import Note, parse_codes


@dataclass(frozen=True)
class Song:
    """A monophonic melody and how it is written down.

    Attributes:
        notes: the notes in order (rests included).
        title: a name for people (``'나비야'``).
        tempo_bpm: quarter notes per minute, used for audio and MIDI.
        meter: the time signature, ``"6/8"``, or None when unknown (writers then use 4/4).
            ``"C"`` and ``"C|"`` are read as ``"4/4"`` and ``"2/2"``.
        key: the key, ``"G major"``, ``"E dorian"``, or None when unknown (writers then use C).
        pickup: the length of an incomplete first bar (an anacrusis) in quarter notes; 0 for none.
        meta: facts about where the song came from that are not notation (``tune``: an ABC
            tune's X: number, ``id`` and ``collection`` of a corpus tune); not compared.

    Meter, key and pickup survive every transformation of a song (:meth:`with_notes`, the
    predictions of a run, generated continuations) and every file format that can hold them.

    Example:
        >>> song = Song.from_codes("g8 e8 e4 f8 d8 d4", title="start of 나비야", meter="2/4")
        >>> len(song), song.codes[:2], song.meter
        (6, ['g8', 'e8'], '2/4')
    """

    notes: tuple[Note, ...]
    title: str = ""
    tempo_bpm: float = 120.0
    meter: str | None = None
    key: str | None = None
    pickup: Fraction = Fraction(0)
    meta: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", tuple(self.notes))
        if not MIN_TEMPO_BPM <= self.tempo_bpm <= MAX_TEMPO_BPM:
            raise NabiyaError(
                f"a tempo of {self.tempo_bpm:g} bpm is outside nabiya's range of {MIN_TEMPO_BPM:g} to {MAX_TEMPO_BPM:g}"
            )
        if len(self.notes) > MAX_SONG_NOTES:
            raise NabiyaError(f"a song of {len(self.notes)} notes is longer than nabiya's limit of {MAX_SONG_NOTES}")
        # A float sum: exact Fractions would cost 10x more, and a limit of hours needs no exactness.
        seconds = sum(float(note.duration) for note in self.notes) * 60.0 / self.tempo_bpm
        if seconds > MAX_SONG_SECONDS:
            raise NabiyaError(
                f"a song of {seconds / 3600:.1f} hours is longer than nabiya's limit of {MAX_SONG_SECONDS // 3600} hours"
            )
        if self.meter is not None:
            meter = parse_meter(self.meter)
            if meter is None:
                raise NabiyaError(f"{self.meter!r} is not a meter: write one such as '3/4' or '6/8'")
            object.__setattr__(self, "meter", f"{meter[0]}/{meter[1]}")
        if self.key is not None:
            key = parse_key(self.key)
            if key is None:
                raise NabiyaError(f"{self.key!r} is not a key: write one such as 'G major', 'E minor' or 'D dorian'")
            object.__setattr__(self, "key", key_name(key[0], key[1]))
        try:
            pickup = Fraction(self.pickup or 0)
        except (TypeError, ValueError, ZeroDivisionError):
            raise NabiyaError(f"a pickup is a length in quarter notes, not {self.pickup!r}") from None
        bar = bar_quarters(parse_meter(self.meter)) if self.meter else None
        if pickup < 0:
            raise NabiyaError(f"a pickup is a length in quarter notes of at least 0, not {pickup}")
        if bar is not None and pickup >= bar:
            pickup = Fraction(0)  # a first bar that is whole is no pickup
        object.__setattr__(self, "pickup", pickup)

    @classmethod
    def from_codes(
        cls,
        codes: str | Iterable[str],
        *,
        title: str = "",
        tempo_bpm: float = 120.0,
        meter: str | None = None,
        key: str | None = None,
        pickup: Fraction = Fraction(0),
        source: str = "",
    ) -> "Song":
        """A song from note codes (``"g8 e8 e4"`` or a list of codes)."""
        return cls(parse_codes(codes, source=source), title=title, tempo_bpm=tempo_bpm, meter=meter, key=key,
                   pickup=pickup)  # fmt: skip

    @property
    def codes(self) -> list[str]:
        """The notes as note codes."""
        return [note.code for note in self.notes]

    @property
    def duration_quarters(self) -> Fraction:
        return sum((note.duration for note in self.notes), Fraction(0))

    @property
    def seconds_per_quarter(self) -> float:
        return 60.0 / self.tempo_bpm

    @property
    def duration_seconds(self) -> float:
        """How long the song plays at its tempo, in seconds."""
        return float(self.duration_quarters) * self.seconds_per_quarter

    @property
    def notation(self) -> dict:
        """``meter``, ``key`` and ``pickup`` as keyword arguments for another Song."""
        return {"meter": self.meter, "key": self.key, "pickup": self.pickup}

    def with_notes(self, notes: Iterable[Note], *, title: str | None = None) -> "Song":
        """The same song (title, tempo, meter, key, pickup) with other notes: for predictions of it.

        Example:
            >>> waltz = Song.from_codes("d4 g4 a4 b2.", meter="3/4", key="G major", pickup=1)
            >>> other = waltz.with_notes(waltz.notes[:2], title="start")
            >>> other.meter, other.key, other.pickup, other.title
            ('3/4', 'G major', Fraction(1, 1), 'start')
        """
        return dataclasses.replace(self, notes=tuple(notes), title=self.title if title is None else title)

    def __len__(self) -> int:
        return len(self.notes)

    def __iter__(self):
        return iter(self.notes)

    def __str__(self) -> str:
        return " ".join(self.codes)
