"""Melodies between a web page and nabiya: what the page sends becomes a Song; a Song becomes what it shows.

The page sends a built-in song's name, note codes, ABC text or a file's bytes and name.
Nothing it sends becomes a path on the server: an upload's name only chooses the format
(its extension, from :data:`UPLOAD_EXTENSIONS`) and names the melody in messages, which
are therefore the CLI's own (``tune.abc: line 3: …``).

Between page and server a song travels as note-code text (:func:`song_text`): title,
tempo, meter, key and pickup in ``%`` comments, then the codes, so the page can show it,
let a person edit it, and send it back to train on.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import PurePosixPath, PureWindowsPath

from nabiya.errors import NabiyaError
from nabiya.music.song import Song

UPLOAD_EXTENSIONS = (".abc", ".mid", ".midi", ".musicxml", ".xml", ".mxl", ".txt")
MAX_UPLOAD_BYTES = 1_000_000
MAX_TEXT_CHARS = 200_000
# Formats a song can be downloaded in, by the extension the page asks for.
DOWNLOAD_SUFFIXES = (".svg", ".wav", ".mid", ".abc", ".musicxml", ".txt")


def builtin_song(name: str) -> Song:
    """A built-in song by its short name (``'nabiya'``); NabiyaError listing them otherwise."""
    from nabiya.music.songs import get_song

    return get_song(name)


def song_from_codes(text: str) -> Song:
    """Note codes a person typed (``g8 e8 e4``), with optional ``% title: …`` comments.

    Example:
        >>> song_from_codes("% title: Up\\nc4 d4 e2").title
        'Up'
    """
    from nabiya.music.formats import song_from_codes_text

    _check_text(text, "note codes")
    return song_from_codes_text(text, source="note codes")


def song_from_abc_text(text: str, *, tune: str | None = None) -> Song:
    """ABC notation a person pasted; ``tune`` picks one of several (``X:`` number or title)."""
    from nabiya.music.abc import song_from_abc

    _check_text(text, "ABC")
    return song_from_abc(text, tune=tune or None, source="the ABC text")


def song_from_upload(data: bytes, filename: str, *, tune: str | None = None) -> Song:
    """A melody from an uploaded file's bytes; ``filename`` only picks the format and names it.

    Raises:
        NabiyaError: for a file too large, of a kind nabiya does not read, or not a melody,
            in the words the CLI uses for the same file.

    Example:
        >>> song_from_upload(b"X:1\\nK:C\\nC D E|", "../../etc/up.abc").title
        ''
    """
    from nabiya.music.formats import song_from_bytes

    name = display_name(filename)
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in UPLOAD_EXTENSIONS:
        kind = f"{suffix} files" if suffix else "files without an extension"
        raise NabiyaError(f"{name}: the playground does not read {kind}: upload one of {', '.join(UPLOAD_EXTENSIONS)}")
    if len(data) > MAX_UPLOAD_BYTES:
        raise NabiyaError(too_large_message(name))
    return song_from_bytes(data, name, tune=tune or None)


def too_large_message(name: str) -> str:
    """What the page says of a file over :data:`MAX_UPLOAD_BYTES`."""
    return f"{name}: the file is larger than {_size(MAX_UPLOAD_BYTES)}, the most the playground reads"


def abc_tunes(text: str) -> list[dict]:
    """The tunes of ABC text, for a person to choose one: ``[{"reference": "1", "title": "…"}, …]``.

    Example:
        >>> abc_tunes("X:1\\nT:One\\nK:C\\nCDE|\\nX:2\\nK:G\\nGAB|\\n")
        [{'reference': '1', 'title': 'One'}, {'reference': '2', 'title': ''}]
    """
    from nabiya.music.abc import split_tunes

    return [{"reference": tune.reference, "title": tune.title} for tune in split_tunes(text)]


def display_name(filename: str) -> str:
    """The last part of a file name a browser sent, without control characters, at most 100 characters.

    Example:
        >>> display_name("C:\\\\music\\\\tune.abc"), display_name("../../etc/passwd")
        ('tune.abc', 'passwd')
    """
    name = PureWindowsPath(PurePosixPath(str(filename)).name).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if len(name) > 100:
        stem, dot, suffix = name.rpartition(".")
        name = f"{stem[: 90]}….{suffix[:8]}" if dot else name[:100]
    return name or "upload"


def song_text(song: Song) -> str:
    """The song as note-code text with its title, tempo, meter, key and pickup (round-trips)."""
    from nabiya.music.formats import song_to_codes_text

    return song_to_codes_text(song)


def song_id(text: str) -> str:
    """A short name for a song's text, the same for the same text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def describe(song: Song) -> dict:
    """What the page shows of a song, as plain JSON data.

    Returns:
        ``id``, ``title``, ``text`` (note-code text, see :func:`song_text`), ``codes``,
        ``notes`` (count), ``meter``, ``key``, ``tempo_bpm``, ``tokens`` (distinct
        pitch-duration pairs) and ``roll`` (see :func:`piano_roll`).

    Example:
        >>> from nabiya.music.songs import get_song
        >>> facts = describe(get_song("nabiya"))
        >>> facts["notes"], facts["meter"], facts["tokens"]
        (54, '2/4', 9)
    """
    text = song_text(song)
    return {
        "id": song_id(text),
        "title": song.title,
        "text": text,
        "codes": song.codes,
        "notes": len(song),
        "meter": notation(song, "meter"),
        "key": notation(song, "key"),
        "tempo_bpm": song.tempo_bpm,
        "tokens": len({note.token for note in song.notes}),
        "roll": piano_roll(None, song),
    }


def notation(song: Song, name: str):
    """The song's ``meter``, ``key`` or ``pickup``: a field of the song where it has one, else in ``meta``."""
    value = getattr(song, name, None)
    if value is None:
        value = getattr(song, "meta", {}).get(name)
    return value


def piano_roll(truth: Song | None, melody: Song, *, wrong=(), given: int = 0) -> dict:
    """A piano roll as data for the page to draw: time in quarter notes, pitch as MIDI numbers.

    Args:
        truth: the song a prediction is compared with, drawn under it; None for none.
        melody: the notes to draw.
        wrong: 0-based indices of ``melody``'s wrong notes (drawn red).
        given: how many of ``melody``'s first notes were given rather than made (drawn grey).

    Returns:
        ``notes`` and ``truth``: lists of ``[onset, duration, pitch]`` (pitch None for a
        rest) with, for ``notes``, a fourth item ``'wrong'``, ``'given'`` or ``''``;
        ``bar``: the bar length in quarter notes (None when the meter is unknown) and
        ``pickup``.

    Example:
        >>> roll = piano_roll(None, Song.from_codes("c4 r8 e8"))
        >>> roll["notes"]
        [[0.0, 1.0, 60, ''], [1.0, 0.5, None, ''], [1.5, 0.5, 64, '']]
    """
    from nabiya.music.notation import bar_quarters, parse_meter

    wrong = set(wrong)

    def spans(song: Song) -> list[list]:
        rows, time = [], Fraction(0)
        for note in song.notes:
            rows.append([float(time), float(note.duration), note.pitch])
            time += note.duration
        return rows

    notes = spans(melody)
    for index, row in enumerate(notes):
        row.append("wrong" if index in wrong else "given" if index < given else "")
    meter = parse_meter(notation(truth or melody, "meter"))
    return {
        "notes": notes,
        "truth": spans(truth) if truth is not None else [],
        "bar": float(bar_quarters(meter)) if meter else None,
        "pickup": float(notation(truth or melody, "pickup") or 0),
    }


def _check_text(text: str, what: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise NabiyaError(f"no {what} given: type or paste some first")
    if len(text) > MAX_TEXT_CHARS:
        raise NabiyaError(f"{what}: {len(text):,} characters: the playground reads at most {MAX_TEXT_CHARS:,}")


def _size(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB" if count >= 100_000 else f"{count / 1000:.0f} kB"
