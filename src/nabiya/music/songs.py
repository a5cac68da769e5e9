"""Built-in songs: the tutorial's 나비야 first.

Each is a public-domain melody written in nabiya's note codes. ``get_song(name)``
finds one by its short name or its title.
"""

from __future__ import annotations

from nabiya.errors import NabiyaError
from nabiya.music.song import Song

# The tutorial's `seq`, note for note: 54 notes.
NABIYA_CODES = (
    "g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4 "
    "g8 e8 e8 e8 f8 d8 d4 c8 e8 g8 g8 e8 e8 e4 "
    "d8 d8 d8 d8 d8 e8 f4 e8 e8 e8 e8 e8 f8 g4 "
    "g8 e8 e4 f8 d8 d4 c8 e8 g8 g8 e8 e8 e4"
)

# name -> (title, tempo in bpm, note codes)
_BUILT_IN: dict[str, tuple[str, float, str]] = {
    "nabiya": ("나비야 (Butterfly)", 120.0, NABIYA_CODES),
}


def song_names() -> list[str]:
    """The short names of the built-in songs, 나비야 first."""
    return list(_BUILT_IN)


def get_song(name: str = "nabiya") -> Song:
    """A built-in song by short name (``'nabiya'``) or title (``'나비야'``).

    Raises:
        NabiyaError: for an unknown name, listing the known ones.
    """
    key = name.strip().lower()
    for short, (title, tempo_bpm, codes) in _BUILT_IN.items():
        if key in (short, title.lower()) or key == title.split(" (")[0].lower():
            return Song.from_codes(codes, title=title, tempo_bpm=tempo_bpm, source=f"built-in song {short}")
    raise NabiyaError(f"unknown song {name!r}: the built-in songs are {', '.join(song_names())}")


def nabiya() -> Song:
    """The tutorial's song 나비야: 54 notes, all quarter or eighth notes in one octave."""
    return get_song("nabiya")
