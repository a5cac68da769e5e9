"""Where a song comes from: a built-in song's name, a file, or note codes typed inline.

People name a song in one string (``--song``, ``nabiya.run(song=...)``): ``ode_to_joy``,
``tunes.abc``, ``"g8 e8 e4 f8"``. :func:`song_from_source` tells which it is from the text
alone, without touching the file system with it (a melody typed inline is often longer
than a file name may be), in this order:

1. a built-in song's short name or title (``nabiya``, ``"Frère Jacques"``);
2. note codes, when the whole text reads as codes (``"g8 e8 e4"``; ``% title:`` style
   comment lines are read as in a ``.txt`` file);
3. a file, when the text ends in a song file's extension (``.abc``, ``.mid``, ...) or
   names a folder (``songs/tune``);
4. a file with a mistyped extension, when the text is one word ending in ``.`` and a few
   letters (``tune.ab``): an error that lists the extensions nabiya reads;
5. otherwise an error: a single word is neither a built-in song (the message lists them
   and suggests the nearest, ``ode_to_joy`` for ``ode-to-joy``) nor note codes; longer
   text says which code is wrong and where.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Iterable

from nabiya.errors import NabiyaError
from nabiya.music.song import Song

# One word ending in a dot and a few letters or digits: how a file name looks.
_FILE_NAME = re.compile(r"\S*[^\s.]\.[A-Za-z][A-Za-z0-9]{0,5}")


def song_from_source(
    source: Song | str | os.PathLike | Iterable[str] | None,
    *,
    tune: str | int | None = None,
    repeats: str | None = None,
) -> Song:
    """A song from a Song, a built-in song's name, a file, or note codes (see the module docstring).

    Args:
        source: ``None`` (the tutorial's 나비야), a :class:`~nabiya.music.song.Song`, a
            built-in song's name or title, a path (``str`` or ``Path``), note codes as text
            (``"g8 e8 e4"``) or as a list of codes.
        tune: for a file of many tunes (ABC, the folk corpus): which one (see
            :func:`~nabiya.music.formats.read_song`); only for files.
        repeats: how an ABC file's repeats are read, passed on to
            :func:`~nabiya.music.formats.read_song` (None: its default).

    Raises:
        NabiyaError: for a name that is none of these (naming the built-in songs), a file
            that cannot be read, bad note codes, or a ``tune`` given for something not a file.

    Example:
        >>> song_from_source("twinkle").title
        'Twinkle, Twinkle, Little Star'
        >>> song_from_source("g8 e8 e4").codes
        ['g8', 'e8', 'e4']
    """
    if isinstance(source, os.PathLike):
        return _read_file(source, tune, repeats)
    if isinstance(source, str):
        return _song_from_text(source, tune, repeats)
    if tune is not None:
        raise NabiyaError(f"a tune ({tune!r}) can be chosen only in a file of many tunes (.abc or .jsonl)")
    if source is None:
        from nabiya.music.songs import nabiya

        return nabiya()
    if isinstance(source, Song):
        return source
    if isinstance(source, Iterable) and not isinstance(source, (bytes, bytearray)):
        return Song.from_codes(list(source))
    raise NabiyaError(
        f"a song is a Song, a built-in song's name, a file or note codes, not {type(source).__name__}"
    )


def _song_from_text(text: str, tune: str | int | None, repeats: str | None) -> Song:
    from nabiya.music.formats import READ_EXTENSIONS, song_from_codes_text
    from nabiya.music.note import parse_codes
    from nabiya.music.songs import get_song, song_names

    if not text.strip():
        raise NabiyaError("no song given: name a built-in song, a file, or note codes such as 'g8 e8 e4'")
    word = text.strip()
    single_word = len(word.split()) == 1
    if "\n" not in word:
        try:
            song = get_song(word)  # a built-in song's short name or title
        except NabiyaError:
            pass
        else:
            if tune is not None:
                raise NabiyaError(f"a tune ({tune!r}) can be chosen only in a file; {word!r} is a built-in song")
            return song
    suffix = Path(word).suffix.lower() if single_word else ""
    try:
        parse_codes(text)
    except NabiyaError as error:
        codes_error = error
    else:
        if tune is not None:
            raise NabiyaError(f"a tune ({tune!r}) can be chosen only in a file; {_short(word)} is note codes")
        return song_from_codes_text(text, source="note codes")
    if single_word and (suffix in READ_EXTENSIONS or "/" in word or os.sep in word):
        return _read_file(word, tune, repeats)
    if single_word and _FILE_NAME.fullmatch(word):
        nearest = difflib.get_close_matches(suffix, READ_EXTENSIONS, n=1, cutoff=0.5)
        hint = f" (did you mean {Path(word).stem}{nearest[0]}?)" if nearest else ""
        raise NabiyaError(
            f"{word}: cannot read {suffix} files{hint}: nabiya reads {', '.join(READ_EXTENSIONS)}"
        )
    if single_word:
        names = song_names()
        wanted = re.sub(r"[\s-]+", "_", word.lower())
        nearest = [wanted] if wanted in names else difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
        hint = f"did you mean {nearest[0]!r}? " if nearest else ""
        raise NabiyaError(
            f"{_short(word)} is neither a built-in song nor note codes: {hint}The built-in songs are "
            f"{', '.join(names)}; note codes look like 'g8 e8 e4'"
        )
    raise codes_error


def _read_file(path: str | os.PathLike, tune: str | int | None, repeats: str | None) -> Song:
    from nabiya.music.formats import read_song

    options = {} if repeats is None else {"repeats": repeats}
    return read_song(path, tune=tune, **options)


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "…")
