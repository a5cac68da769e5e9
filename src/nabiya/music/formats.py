"""Any melody in, music out: read and write songs as files, chosen by the file's extension.

======================  =======  =======  =====================================================
extension               read     write    what
======================  =======  =======  =====================================================
``.abc``                yes      yes      ABC notation; a file may hold many tunes (``tune=``)
``.musicxml`` ``.xml``  yes      yes      MusicXML (``.mxl``: compressed, read only)
``.mxl``                yes      no
``.mid`` ``.midi``      yes      yes      Standard MIDI File; a polyphonic one gives its top line
``.txt`` ``.notes``     yes      yes      nabiya's note codes (``g8 e8 e4 ...``), ``% key: value``
                                          comments for title, tempo, meter, key and pickup
``.jsonl``              yes      no       the folk corpus (``tune=`` its id, title or line number)
``.wav``                no       yes      audio (a plain synthesized tone per note)
``.svg``                no       yes      sheet music, engraved by verovio
======================  =======  =======  =====================================================

Every problem with a file is a :class:`~nabiya.errors.NabiyaError` with one line naming the
file, the place (line, measure, note, byte) and what is wrong. Writing is atomic, and
:func:`convert` writes nothing when reading fails.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from fractions import Fraction
from pathlib import Path

from nabiya.errors import NabiyaError
from nabiya.music.note import parse_codes
from nabiya.music.song import Song

READ_EXTENSIONS = (".abc", ".musicxml", ".xml", ".mxl", ".mid", ".midi", ".txt", ".notes", ".jsonl")
WRITE_EXTENSIONS = (".abc", ".musicxml", ".xml", ".mid", ".midi", ".txt", ".notes", ".wav", ".svg")
CODES_PER_LINE = 16
_HEADER_COMMENT = re.compile(r"^%\s*(title|tempo|meter|key|pickup)\s*:\s*(.*?)\s*$", re.IGNORECASE)


def read_song(path: str | os.PathLike, *, tune: str | int | None = None, repeats: str = "written") -> Song:
    """Read a melody from a file, in the format its extension names.

    Args:
        path: an ``.abc``, ``.musicxml``/``.xml``/``.mxl``, ``.mid``/``.midi``,
            ``.txt``/``.notes`` or ``.jsonl`` (folk corpus) file.
        tune: for files of many tunes: an ABC tune's ``X:`` number (int or digits) or
            title (any case); a corpus tune's id, title or line number. The first when None.
        repeats: ``"written"`` (the default: each section once, first and second endings
            both, in written order, as printed) or ``"played"`` (repeats and endings played
            pass by pass): for ABC and MusicXML. MIDI is always as played and note codes
            have no repeats; the folk corpus keeps its notes as written only.

    Returns:
        The song: notes with exact durations (rests have ``pitch=None``), the title and
        tempo where the file has them (else ``''`` and 120 bpm), and the meter, key and
        pickup where known.

    Raises:
        NabiyaError: for a missing, unreadable, empty or malformed file, or one that is not
            a melody, in one line naming the file, the place and what is wrong.

    Example:
        >>> song = read_song("examples/nabiya.abc")                      # doctest: +SKIP
        >>> song.codes[:3]                                               # doctest: +SKIP
        ['g8', 'e8', 'e4']
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READ_EXTENSIONS:
        raise NabiyaError(
            f"{path}: cannot read {suffix or 'a file without an extension'}: "
            f"nabiya reads {', '.join(READ_EXTENSIONS)}"
        )
    if tune is not None and suffix not in (".abc", ".jsonl"):
        raise NabiyaError(f"{path}: a tune can be chosen only in .abc files and the folk corpus (.jsonl)")
    # --- repeats (see nabiya.music.abc_tune): written, or played as a musician plays them ---
    if repeats not in ("written", "played"):
        raise NabiyaError(f"repeats must be 'written' or 'played', not {repeats!r}")
    if repeats == "played" and suffix == ".jsonl":
        raise NabiyaError(f"{path}: the folk corpus keeps each tune's notes as written, without its repeat signs: "
                          "read it with repeats='written'")  # fmt: skip
    if repeats == "played" and suffix in (".musicxml", ".xml", ".mxl"):
        data = _read_bytes(path)
        return _song_from_musicxml_played(_unzip_musicxml(data, str(path)) if suffix == ".mxl" else data, str(path))
    # ---
    if suffix == ".jsonl":
        from nabiya.music.corpus import read_corpus_song

        return read_corpus_song(path, tune=tune)
    data = _read_bytes(path)
    source = str(path)
    if suffix in (".mid", ".midi"):
        from nabiya.music.midi import song_from_midi

        return song_from_midi(data, source=source)
    if suffix in (".musicxml", ".xml", ".mxl"):
        from nabiya.music.scores import song_from_musicxml

        return song_from_musicxml(_unzip_musicxml(data, source) if suffix == ".mxl" else data, source=source)
    text = _decode(data)
    if not text.strip():
        raise NabiyaError(f"{source}: the file is empty")
    if suffix == ".abc":
        from nabiya.music.abc import song_from_abc

        return song_from_abc(text, tune=tune, source=source, repeats=repeats)
    return song_from_codes_text(text, source=source)


def write_song(song: Song, path: str | os.PathLike) -> Path:
    """Write a song to a file, in the format its extension names, atomically.

    Args:
        song: a song with at least one note.
        path: an ``.abc``, ``.musicxml``/``.xml``, ``.mid``/``.midi``, ``.txt``/``.notes``,
            ``.wav`` or ``.svg`` file; its folder is created if need be.

    Returns:
        The path written.

    Raises:
        NabiyaError: for an unknown extension, an empty song, a duration the format cannot
            hold, or a folder that cannot be written; the file is then left as it was.

    Example:
        >>> from nabiya.music.songs import nabiya
        >>> write_song(nabiya(), "out/nabiya.abc")                       # doctest: +SKIP
        PosixPath('out/nabiya.abc')
    """
    from nabiya.fileio import write_bytes, write_text

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_EXTENSIONS:
        raise NabiyaError(
            f"{path}: cannot write {suffix or 'a file without an extension'}: "
            f"nabiya writes {', '.join(WRITE_EXTENSIONS)}"
        )
    if not song.notes:
        raise NabiyaError(f"{path}: nothing to write: the song has no notes")
    try:
        if suffix == ".wav":
            from nabiya.music.audio import write_wav

            write_wav(song, path)
        elif suffix in (".mid", ".midi"):
            from nabiya.music.midi import song_to_midi

            write_bytes(path, song_to_midi(song))
        elif suffix in (".musicxml", ".xml"):
            from nabiya.music.scores import song_to_musicxml

            write_bytes(path, song_to_musicxml(song))
        elif suffix == ".svg":
            from nabiya.music.scores import song_to_svg

            write_text(path, song_to_svg(song))
        elif suffix == ".abc":
            from nabiya.music.abc import song_to_abc

            write_text(path, song_to_abc(song))
        else:
            write_text(path, song_to_codes_text(song))
    except NabiyaError as error:
        message = str(error)
        raise NabiyaError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    except OSError as error:
        raise NabiyaError(f"{path}: cannot write the file: {error.strerror or error}") from None
    return path


def convert(
    in_path: str | os.PathLike, out_path: str | os.PathLike, *, tune: str | int | None = None, repeats: str = "written"
) -> Song:
    """Read a song from one file and write it to another; nothing is written if reading fails.

    Returns:
        The song that was written.

    Example:
        >>> convert("tunes.abc", "tune3.mid", tune=3)                    # doctest: +SKIP
        Song(...)
    """
    song = read_song(in_path, tune=tune, repeats=repeats)
    write_song(song, out_path)
    return song


def song_from_codes_text(text: str, *, source: str = "note codes") -> Song:
    """Read note codes (``g8 e8 e4 ...``), with ``% title: …`` style comments for the rest.

    Comment lines ``% title:``, ``% tempo:`` (bpm), ``% meter:``, ``% key:`` and
    ``% pickup:`` (quarter notes) set those; other ``%`` comments are ignored.

    Example:
        >>> song = song_from_codes_text("% title: Start\\n% tempo: 90 bpm\\ng8 e8 e4\\n")
        >>> song.title, song.tempo_bpm, song.codes
        ('Start', 90.0, ['g8', 'e8', 'e4'])
    """
    title, tempo_bpm, notation = "", 120.0, {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        match = _HEADER_COMMENT.match(line.strip())
        if not match:
            continue
        name, value = match[1].lower(), match[2]
        if name == "title":
            title = value
        elif name == "tempo":
            number = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:bpm)?", value, re.IGNORECASE)
            if not number or float(number[1]) <= 0:
                raise NabiyaError(f"{source}: line {line_number}: tempo {value!r} is not a number of bpm, e.g. 120")
            tempo_bpm = float(number[1])
        elif name == "pickup":
            try:
                notation["pickup"] = Fraction(value)
            except (ValueError, ZeroDivisionError):
                raise NabiyaError(
                    f"{source}: line {line_number}: pickup {value!r} is not a number of quarter notes, e.g. 1/2"
                ) from None
        else:
            notation[name] = value
    notes = parse_codes(text, source=source)
    if not notes:
        raise NabiyaError(f"{source}: no note codes in the file (codes look like g8 e8 e4)")
    try:
        return Song(notes, title=title, tempo_bpm=tempo_bpm, **notation)
    except NabiyaError as error:
        raise NabiyaError(f"{source}: {error}") from None


def song_to_codes_text(song: Song) -> str:
    """The song as note codes, :data:`CODES_PER_LINE` a line, under ``% key: value`` comments.

    Example:
        >>> print(song_to_codes_text(Song.from_codes("g8 e8 e4", title="Start")), end="")
        % title: Start
        % tempo: 120 bpm
        g8 e8 e4
    """
    lines = []
    if song.title:
        lines.append(f"% title: {' '.join(song.title.split())}")
    lines.append(f"% tempo: {song.tempo_bpm:g} bpm")
    for name in ("meter", "key", "pickup"):
        if getattr(song, name):
            lines.append(f"% {name}: {getattr(song, name)}")
    codes = song.codes
    for start in range(0, len(codes), CODES_PER_LINE):
        lines.append(" ".join(codes[start : start + CODES_PER_LINE]))
    return "\n".join(lines) + "\n"


def _song_from_musicxml_played(data: bytes, source: str) -> Song:
    """A MusicXML score's melody with its repeats played (music21's ``expandRepeats``)."""
    import warnings

    from nabiya.music.scores import song_from_score

    try:
        from music21 import converter

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parseData(data, format="musicxml")
            parts = list(score.parts) or [score]
            for part in parts:
                expanded = part.expandRepeats()
                score.replace(part, expanded)
    except Exception as error:  # music21 raises many kinds for bad scores or repeats: report them as one
        raise NabiyaError(f"{source}: not readable MusicXML, or its repeats cannot be played: {error}") from None
    return song_from_score(score, source=source)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NabiyaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NabiyaError(f"{path}: is a folder, not a file") from None
    except OSError as error:
        raise NabiyaError(f"{path}: cannot read the file: {error.strerror or error}") from None


def _decode(data: bytes) -> str:
    """Text of a file: UTF-8 (with or without a byte-order mark), else Latin-1 as old ABC files are."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unzip_musicxml(data: bytes, source: str) -> bytes:
    """The score inside a compressed MusicXML (``.mxl``) file: the root file its container names."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            root = None
            if "META-INF/container.xml" in names:
                found = re.search(rb'full-path="([^"]+)"', archive.read("META-INF/container.xml"))
                root = found[1].decode("utf-8") if found else None
            if root is None:
                root = next((n for n in names if n.endswith((".xml", ".musicxml")) and "META-INF" not in n), None)
            if root is None or root not in names:
                raise NabiyaError(f"{source}: the compressed MusicXML file holds no score")
            return archive.read(root)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError) as error:
        raise NabiyaError(f"{source}: not a compressed MusicXML (.mxl) file: {error}") from None
