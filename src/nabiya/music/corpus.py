"""The folk corpus: 3,141 monophonic folk tunes as JSON lines (see ``shared/data/README.md``).

One JSON object a line::

    {"id": "oneills1850/0001-0050.abc#1", "title": "The Enchanted Valley", "key": "G minor",
     "meter": "2/4", "notes": [[67, 0.75], [69, 0.25], [null, 0.5], ...], "collection": "...", ...}

where each note is ``[MIDI pitch or null for a rest, duration in quarter notes]``. The
corpus lives beside the repository, in ``shared/data/folk_corpus.jsonl``; it is not part
of the package.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Mapping

from nabiya.errors import NabiyaError
from nabiya.music.notation import key_name, parse_key, parse_meter, spell
from nabiya.music.note import Note
from nabiya.music.song import Song

CORPUS_FILE_NAME = "folk_corpus.jsonl"
# Durations are stored as floats (0.75, 0.3333…): read them as the nearest fraction with a
# denominator of at most this, which is exact for every note value the corpus holds.
DURATION_DENOMINATOR = 64


def default_corpus_path() -> Path:
    """Where the corpus lies in a checkout: ``<repository>/../shared/data/folk_corpus.jsonl``.

    The path may not exist (an installed package has no checkout beside it).

    Example:
        >>> default_corpus_path().name
        'folk_corpus.jsonl'
    """
    repository = Path(__file__).resolve().parents[3]  # src/nabiya/music/corpus.py
    return repository.parent / "shared" / "data" / CORPUS_FILE_NAME


def read_corpus_tune(record: Mapping | str, *, source: str = "folk corpus") -> Song:
    """A song from one corpus record (a parsed JSON object, or its line of text).

    Black keys are spelled from the tune's key (sharps in sharp keys, flats in flat ones);
    the tempo is 120 bpm (the corpus has none); the key and meter are the record's;
    ``meta`` holds ``id`` and ``collection``.

    Raises:
        NabiyaError: for a record that is not a tune, naming ``source`` and the note.

    Example:
        >>> song = read_corpus_tune('{"id": "x#1", "title": "T", "key": "G major", "meter": "2/4", '
        ...                         '"notes": [[67, 0.75], [66, 0.25], [null, 1.0]]}')
        >>> song.codes
        ['g8.', 'f#16', 'r4']
    """
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except json.JSONDecodeError as error:
            raise NabiyaError(f"{source}: not JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(record, Mapping) or not isinstance(record.get("notes"), list):
        raise NabiyaError(f"{source}: not a tune: a JSON object with a list of notes was expected")
    name = f"{source} ({record['id']})" if isinstance(record.get("id"), str) else source
    key = parse_key(record.get("key"))
    fifths = key[2] if key else None
    notes = []
    for number, item in enumerate(record["notes"], start=1):
        if not (isinstance(item, list) and len(item) == 2):
            raise NabiyaError(f"{name}, note {number}: {item!r} is not a [pitch or null, quarter notes] pair")
        pitch, quarters = item
        valid_pitch = pitch is None or (isinstance(pitch, int) and not isinstance(pitch, bool) and 0 <= pitch <= 127)
        valid_length = isinstance(quarters, (int, float)) and not isinstance(quarters, bool) and quarters > 0
        if not (valid_pitch and valid_length):
            raise NabiyaError(
                f"{name}, note {number}: {item!r} is not a [MIDI pitch 0-127 or null, positive quarter notes] pair"
            )
        duration = Fraction(quarters).limit_denominator(DURATION_DENOMINATOR)
        notes.append(Note(pitch, duration, None if pitch is None else spell(pitch, fifths)))
    if not any(note.pitch is not None for note in notes):
        raise NabiyaError(f"{name}: the tune has no notes")
    meta = {field: record[field] for field in ("id", "collection") if isinstance(record.get(field), str)}
    meter = record.get("meter") if parse_meter(record.get("meter")) else None
    return Song(tuple(notes), title=str(record.get("title") or ""), meter=meter,
                key=None if key is None else key_name(key[0], key[1]), meta=meta)


def iter_corpus(path: str | os.PathLike | None = None) -> Iterator[Song]:
    """The corpus's tunes, one song at a time, in file order.

    Raises:
        NabiyaError: when the file is missing, or for a line that is not a tune (naming it).
    """
    path = Path(path) if path is not None else default_corpus_path()
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise NabiyaError(f"{path}: cannot read the folk corpus: {error.strerror or error}") from None
    with handle:
        for line_number, line in enumerate(handle, start=1):
            if line.strip():
                yield read_corpus_tune(line, source=f"{path}, line {line_number}")


def load_corpus(path: str | os.PathLike | None = None, *, limit: int | None = None) -> list[Song]:
    """The corpus's tunes as songs (the first ``limit`` of them, or all).

    Example:
        >>> songs = load_corpus(limit=2)                                 # doctest: +SKIP
        >>> songs[0].title                                               # doctest: +SKIP
        'The Enchanted Valley'
    """
    songs = []
    for song in iter_corpus(path):
        if limit is not None and len(songs) >= limit:
            break
        songs.append(song)
    return songs


def read_corpus_song(path: str | os.PathLike, *, tune: str | int | None = None) -> Song:
    """One tune of a corpus file, by id (``'oneills1850/0001-0050.abc#1'``), title (any case)
    or line number (1-based); the first when ``tune`` is None.

    Raises:
        NabiyaError: when no tune matches, naming the file and what was asked for.
    """
    wanted = tune.strip().casefold() if isinstance(tune, str) else None
    line_wanted = int(tune) if isinstance(tune, int) or (isinstance(tune, str) and tune.strip().isdigit()) else None
    for line_number, song in enumerate(iter_corpus(path), start=1):
        if tune is None or line_number == line_wanted:
            return song
        if wanted is not None and wanted in (song.meta.get("id", "").casefold(), song.title.strip().casefold()):
            return song
    if tune is None:
        raise NabiyaError(f"{path}: the folk corpus file has no tunes")
    raise NabiyaError(f"{path}: no tune {tune!r} (by id, title or line number)")
