"""A song: a melody (a sequence of notes) with a title and a tempo."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable

from nabiya.errors import NabiyaError
from nabiya.music.note import Note, parse_codes


@dataclass(frozen=True)
class Song:
    """A monophonic melody.

    Attributes:
        notes: the notes in order (rests included).
        title: a name for people (``'나비야'``).
        tempo_bpm: quarter notes per minute, used for audio and MIDI.

    Example:
        >>> song = Song.from_codes("g8 e8 e4 f8 d8 d4", title="start of 나비야")
        >>> len(song), song.codes[:2]
        (6, ['g8', 'e8'])
    """

    notes: tuple[Note, ...]
    title: str = ""
    tempo_bpm: float = 120.0
    meta: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", tuple(self.notes))
        if self.tempo_bpm <= 0:
            raise NabiyaError(f"tempo must be positive, not {self.tempo_bpm} bpm")

    @classmethod
    def from_codes(
        cls, codes: str | Iterable[str], *, title: str = "", tempo_bpm: float = 120.0, source: str = ""
    ) -> "Song":
        """A song from note codes (``"g8 e8 e4"`` or a list of codes)."""
        return cls(parse_codes(codes, source=source), title=title, tempo_bpm=tempo_bpm)

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

    def with_notes(self, notes: Iterable[Note], *, title: str | None = None) -> "Song":
        """The same song (tempo, title) with other notes: for predictions of it."""
        return Song(tuple(notes), title=self.title if title is None else title, tempo_bpm=self.tempo_bpm)

    def __len__(self) -> int:
        return len(self.notes)

    def __iter__(self):
        return iter(self.notes)

    def __str__(self) -> str:
        return " ".join(self.codes)
