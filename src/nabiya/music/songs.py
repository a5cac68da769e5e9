"""Built-in songs: the tutorial's 나비야 first, then a handful of well-known public-domain tunes.

Each is a public-domain melody written in nabiya's note codes, with its tempo, meter and
key (``Song.meter`` and ``Song.key``, which the ABC, MusicXML and MIDI writers use). ``get_song(name)``
finds one by its short name or its title.

Beyond 나비야's vocabulary (seven pitches of one octave, quarters and eighths), the
others bring halves and wholes (all), dotted notes (ode_to_joy, jingle_bells), sharps
(ode_to_joy, in D major), flats (frere_jacques, in F major), notes below middle C
(ode_to_joy, yankee_doodle) and a range of more than an octave (frere_jacques).
"""

from __future__ import annotations

from dataclasses import dataclass

from nabiya.errors import NabiyaError
from nabiya.music.notation import pitch_name
from nabiya.music.note import parse_codes
from nabiya.music.song import Song

# The tutorial's `seq`, note for note: 54 notes.
NABIYA_CODES = (
    "g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4 "
    "g8 e8 e8 e8 f8 d8 d4 c8 e8 g8 g8 e8 e8 e4 "
    "d8 d8 d8 d8 d8 e8 f4 e8 e8 e8 e8 e8 f8 g4 "
    "g8 e8 e4 f8 d8 d4 c8 e8 g8 g8 e8 e8 e4"
)


@dataclass(frozen=True)
class BuiltInSong:
    """A built-in song as written here: title, tempo, note codes (one bar a group), meter, key."""

    title: str
    tempo_bpm: float
    codes: str
    meter: str = "4/4"
    key: str = "C major"


_BUILT_IN: dict[str, BuiltInSong] = {
    "nabiya": BuiltInSong("나비야 (Butterfly)", 120.0, NABIYA_CODES, meter="2/4"),
    "twinkle": BuiltInSong(
        "Twinkle, Twinkle, Little Star",
        100.0,
        "c4 c4 g4 g4  a4 a4 g2  f4 f4 e4 e4  d4 d4 c2 "
        "g4 g4 f4 f4  e4 e4 d2  g4 g4 f4 f4  e4 e4 d2 "
        "c4 c4 g4 g4  a4 a4 g2  f4 f4 e4 e4  d4 d4 c2",
    ),
    "mary": BuiltInSong(
        "Mary Had a Little Lamb",
        110.0,
        "e4 d4 c4 d4  e4 e4 e2  d4 d4 d2  e4 g4 g2 "
        "e4 d4 c4 d4  e4 e4 e4 e4  d4 d4 e4 d4  c1",
    ),
    "frere_jacques": BuiltInSong(
        "Frère Jacques",
        100.0,
        "f4 g4 a4 f4  f4 g4 a4 f4  a4 bb4 c'2  a4 bb4 c'2 "
        "c'8 d'8 c'8 bb8 a4 f4  c'8 d'8 c'8 bb8 a4 f4  f4 c4 f2  f4 c4 f2",
        key="F major",
    ),
    "ode_to_joy": BuiltInSong(
        "Ode to Joy (Beethoven)",
        120.0,
        "f#4 f#4 g4 a4  a4 g4 f#4 e4  d4 d4 e4 f#4  f#4. e8 e2 "
        "f#4 f#4 g4 a4  a4 g4 f#4 e4  d4 d4 e4 f#4  e4. d8 d2 "
        "e4 e4 f#4 d4  e4 f#8 g8 f#4 d4  e4 f#8 g8 f#4 e4  d4 e4 a,2 "
        "f#4 f#4 g4 a4  a4 g4 f#4 e4  d4 d4 e4 f#4  e4. d8 d2",
        key="D major",
    ),
    "jingle_bells": BuiltInSong(
        "Jingle Bells (chorus)",
        120.0,
        "e4 e4 e2  e4 e4 e2  e4 g4 c4. d8  e1 "
        "f4 f4 f4. f8  f4 e4 e4 e8 e8  e4 d4 d4 e4  d2 g2 "
        "e4 e4 e2  e4 e4 e2  e4 g4 c4. d8  e1 "
        "f4 f4 f4 f4  f4 e4 e4 e8 e8  g4 g4 f4 d4  c1",
    ),
    "yankee_doodle": BuiltInSong(
        "Yankee Doodle",
        120.0,
        "c4 c4 d4 e4  c4 e4 d4 g,4  c4 c4 d4 e4  c2 b,2 "
        "c4 c4 d4 e4  f4 e4 d4 c4  b,4 g,4 a,4 b,4  c2 c2",
    ),
}


def song_names() -> list[str]:
    """The short names of the built-in songs, 나비야 first.

    Example:
        >>> song_names()[:2]
        ['nabiya', 'twinkle']
    """
    return list(_BUILT_IN)


def get_song(name: str = "nabiya") -> Song:
    """A built-in song by short name (``'nabiya'``) or title (``'나비야'``, ``'Frère Jacques'``).

    The song has its ``meter`` and ``key``.

    Raises:
        NabiyaError: for an unknown name, listing the known ones.

    Example:
        >>> get_song("twinkle").codes[:4]
        ['c4', 'c4', 'g4', 'g4']
    """
    key = name.strip().lower()
    for short, song in _BUILT_IN.items():
        title = song.title.lower()
        if key in (short, title) or key == title.split(" (")[0]:
            notes = parse_codes(song.codes, source=f"built-in song {short}")
            return Song(notes, title=song.title, tempo_bpm=song.tempo_bpm, meter=song.meter, key=song.key)
    raise NabiyaError(f"unknown song {name!r}: the built-in songs are {', '.join(song_names())}")


def nabiya() -> Song:
    """The tutorial's song 나비야: 54 notes, all quarter or eighth notes in one octave."""
    return get_song("nabiya")


def describe_songs() -> list[dict[str, str | int]]:
    """One row per built-in song, for a listing: name, title, notes, distinct tokens, range.

    *Distinct tokens* counts the different (pitch, duration) pairs: the size of the
    vocabulary a model of the song needs (the tutorial's 나비야 needs 9 of its 14 codes).

    Example:
        >>> describe_songs()[0]
        {'name': 'nabiya', 'title': '나비야 (Butterfly)', 'notes': 54, 'distinct tokens': 9, 'range': 'C4–G4'}
    """
    rows = []
    for name in song_names():
        song = get_song(name)
        pitched = [note for note in song.notes if note.pitch is not None]
        lowest = min(pitched, key=lambda note: note.pitch)
        highest = max(pitched, key=lambda note: note.pitch)
        rows.append(
            {
                "name": name,
                "title": song.title,
                "notes": len(song),
                "distinct tokens": len({note.token for note in song.notes}),
                "range": f"{pitch_name(lowest.pitch, lowest.spelling)}–{pitch_name(highest.pitch, highest.spelling)}",
            }
        )
    return rows
