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
import stat
import zipfile
from fractions import Fraction
from pathlib import Path

from nabiya.errors import NabiyaError
from nabiya.music.limits import MAX_FILE_BYTES, MAX_TEMPO_BPM, MIN_TEMPO_BPM
from nabiya.music.note import parse_codes
from nabiya.music.song import Song

READ_EXTENSIONS = (".abc", ".musicxml", ".xml", ".mxl", ".mid", ".midi", ".txt", ".notes", ".jsonl")
WRITE_EXTENSIONS = (".abc", ".musicxml", ".xml", ".mid", ".midi", ".txt", ".notes", ".wav", ".svg")
CODES_PER_LINE = 16
# The value is stripped afterwards: a lazy "(.*?)\s*$" takes time quadratic in a run of spaces.
_HEADER_COMMENT = re.compile(r"%\s*(title|tempo|meter|key|pickup)\s*:(.*)", re.IGNORECASE)


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
    source = str(path)
    if repeats not in ("written", "played"):
        raise NabiyaError(f"repeats must be 'written' or 'played', not {repeats!r}")
    if repeats == "played" and suffix == ".jsonl":
        raise NabiyaError(f"{path}: the folk corpus keeps each tune's notes as written, without its repeat signs: "
                          "read it with repeats='written'")  # fmt: skip
    if suffix == ".jsonl":
        from nabiya.music.corpus import read_corpus_song

        os.close(_open_regular_file(path, source))  # the corpus is read line by line: only check what it is
        return read_corpus_song(path, tune=tune)
    return song_from_bytes(read_file_bytes(path, source), source, tune=tune, repeats=repeats)


def song_from_bytes(data: bytes, name: str, *, tune: str | int | None = None, repeats: str = "written") -> Song:
    """Read a melody from a file's contents, in the format the file name's extension names.

    What :func:`read_song` does once it has read the file, for melodies that never were a
    file on this machine (an upload to ``nabiya serve``): ``name`` only chooses the format
    and names the melody in messages; nothing is opened.

    Args:
        data: the file's bytes.
        name: the file's name (``'tune.abc'``), as it should appear in messages.
        tune: for ABC files of many tunes: the ``X:`` number or title (the first when None).
        repeats: ``"written"`` or ``"played"``, as for :func:`read_song`.

    Raises:
        NabiyaError: as :func:`read_song`; ``.jsonl`` corpora are read only from paths.

    Example:
        >>> song_from_bytes(b"X:1\\nL:1/4\\nK:C\\nC D E2|", "up.abc").codes
        ['c4', 'd4', 'e2']
    """
    suffix = Path(name).suffix.lower()
    if suffix not in READ_EXTENSIONS or suffix == ".jsonl":
        readable = [extension for extension in READ_EXTENSIONS if extension != ".jsonl"]
        raise NabiyaError(
            f"{name}: cannot read {suffix or 'a file without an extension'}: nabiya reads {', '.join(readable)}"
        )
    if tune is not None and suffix != ".abc":
        raise NabiyaError(f"{name}: a tune can be chosen only in .abc files")
    if repeats not in ("written", "played"):
        raise NabiyaError(f"repeats must be 'written' or 'played', not {repeats!r}")
    if suffix in (".mid", ".midi"):
        from nabiya.music.midi import song_from_midi

        return song_from_midi(data, source=name)
    if suffix in (".musicxml", ".xml", ".mxl"):
        from nabiya.music.scores import song_from_musicxml

        score = _unzip_musicxml(data, name) if suffix == ".mxl" else data
        if repeats == "played":
            return _song_from_musicxml_played(score, name)
        return song_from_musicxml(score, source=name)
    text = _decode(data)
    if not text.strip():
        raise NabiyaError(f"{name}: the file is empty")
    if suffix == ".abc":
        from nabiya.music.abc import song_from_abc

        return song_from_abc(text, tune=tune, source=name, repeats=repeats)
    return song_from_codes_text(text, source=name)


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
    from nabiya.fileio import write_bytes

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
        write_bytes(path, song_to_bytes(song, suffix))
    except NabiyaError as error:
        message = str(error)
        raise NabiyaError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    except OSError as error:
        raise NabiyaError(f"{path}: cannot write the file: {error.strerror or error}") from None
    return path


def song_to_bytes(song: Song, suffix: str) -> bytes:
    """The bytes :func:`write_song` writes for a file with extension ``suffix`` (``'.mid'``, ...).

    For a song that is sent rather than saved (a download from ``nabiya serve``).

    Raises:
        NabiyaError: for an extension nabiya does not write, or a duration the format
            cannot hold.

    Example:
        >>> song_to_bytes(Song.from_codes("c4 d4"), ".mid")[:4]
        b'MThd'
    """
    suffix = suffix.lower()
    if suffix not in WRITE_EXTENSIONS:
        raise NabiyaError(
            f"cannot write {suffix or 'a file without an extension'}: nabiya writes {', '.join(WRITE_EXTENSIONS)}"
        )
    if suffix == ".wav":
        from nabiya.music.audio import wav_bytes

        return wav_bytes(song)
    if suffix in (".mid", ".midi"):
        from nabiya.music.midi import song_to_midi

        return song_to_midi(song)
    if suffix in (".musicxml", ".xml"):
        from nabiya.music.scores import song_to_musicxml

        return song_to_musicxml(song)
    if suffix == ".svg":
        from nabiya.music.scores import song_to_svg

        return song_to_svg(song).encode("utf-8")
    if suffix == ".abc":
        from nabiya.music.abc import song_to_abc

        return song_to_abc(song).encode("utf-8")
    return song_to_codes_text(song).encode("utf-8")


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
        name, value = match[1].lower(), match[2].strip()
        if name == "title":
            title = value
        elif name == "tempo":
            number = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*(?:bpm)?", value, re.IGNORECASE)
            if not number or float(number[1]) <= 0:
                raise NabiyaError(f"{source}: line {line_number}: tempo {value!r} is not a number of bpm, e.g. 120")
            tempo_bpm = float(number[1])
            if not MIN_TEMPO_BPM <= tempo_bpm <= MAX_TEMPO_BPM:
                raise NabiyaError(
                    f"{source}: line {line_number}: a tempo of {value} is outside nabiya's range of "
                    f"{MIN_TEMPO_BPM:g} to {MAX_TEMPO_BPM:g} bpm"
                )
        elif name == "pickup":
            try:
                if not re.fullmatch(r"[0-9]{1,9}(?:/[0-9]{1,9})?", value):
                    raise ValueError(value)
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


def read_file_bytes(path: str | os.PathLike, source: str | None = None, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a file, read safely: only a regular file, and at most ``max_bytes`` of it.

    A FIFO would block a reader forever and ``/dev/zero`` would fill memory; neither is
    opened for reading long enough to do so (the file is opened without blocking, then
    checked). Every reader of song files reads through this.

    Args:
        path: the file.
        source: how to name it in messages (the path when None).
        max_bytes: the largest file read (``MAX_FILE_BYTES``, 64 MiB, by default).

    Raises:
        NabiyaError: for a missing file, a folder, a FIFO, device or socket, a file larger
            than ``max_bytes``, or one that cannot be read, naming it.

    Example:
        >>> read_file_bytes("/dev/zero")                                 # doctest: +SKIP
        Traceback (most recent call last):
        nabiya.errors.NabiyaError: /dev/zero: is a device, not a regular file
    """
    source = str(path) if source is None else source
    handle = _open_regular_file(path, source)
    try:
        with os.fdopen(handle, "rb", closefd=False) as file:
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise NabiyaError(f"{source}: cannot read the file: {error.strerror or error}") from None
    finally:
        os.close(handle)
    if len(data) > max_bytes:
        raise NabiyaError(f"{source}: the file is larger than nabiya's limit of {max_bytes // 2**20} MiB for a song file")
    return data


def _open_regular_file(path: str | os.PathLike, source: str) -> int:
    """A descriptor of ``path`` opened for reading, without blocking, once it is known to be a regular file."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise NabiyaError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise NabiyaError(f"{source}: is a folder, not a file") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        reason = getattr(error, "strerror", None) or str(error)
        raise NabiyaError(f"{source}: cannot read the file: {reason}") from None
    try:
        mode = os.fstat(handle).st_mode
    except OSError as error:
        os.close(handle)
        raise NabiyaError(f"{source}: cannot read the file: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        os.close(handle)
        if stat.S_ISDIR(mode):
            raise NabiyaError(f"{source}: is a folder, not a file")
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise NabiyaError(f"{source}: is {kind}, not a regular file")
    return handle


def _decode(data: bytes) -> str:
    """Text of a file: UTF-8 (with or without a byte-order mark), else Latin-1 as old ABC files are."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unzip_musicxml(data: bytes, source: str) -> bytes:
    """The score inside a compressed MusicXML (``.mxl``) file: the root file its container names.

    The score is read up to ``MAX_FILE_BYTES`` however small the container (a zip bomb is
    refused, not unpacked); damaged, encrypted or oddly compressed containers are refused
    with a reason.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            root = None
            if "META-INF/container.xml" in names:
                container = _read_member(archive, "META-INF/container.xml", source)
                found = re.search(rb'full-path="([^"]+)"', container)
                root = found[1].decode("utf-8") if found else None
            if root is None:
                root = next((n for n in names if n.endswith((".xml", ".musicxml")) and "META-INF" not in n), None)
            if root is None or root not in names:
                raise NabiyaError(f"{source}: the compressed MusicXML file holds no score")
            return _read_member(archive, root, source)
    except NabiyaError:
        raise
    except NotImplementedError:  # before RuntimeError, of which it is a kind
        raise NabiyaError(
            f"{source}: cannot read the compressed MusicXML (.mxl) file: it is compressed by a method "
            "nabiya cannot unpack (MusicXML uses deflate)"
        ) from None
    except RuntimeError as error:  # zipfile's word for an encrypted member
        reason = "it is encrypted" if "encrypt" in str(error).lower() else str(error)
        raise NabiyaError(f"{source}: cannot read the compressed MusicXML (.mxl) file: {reason}") from None
    except UnicodeDecodeError:
        raise NabiyaError(f"{source}: not a compressed MusicXML (.mxl) file: a file name is not valid UTF-8") from None
    except Exception as error:  # BadZipFile, zlib.error, EOFError, OSError, ValueError...: damaged bytes
        reason = " ".join(str(error).split()) or type(error).__name__
        raise NabiyaError(f"{source}: not a compressed MusicXML (.mxl) file: {reason}") from None


def _read_member(archive: zipfile.ZipFile, name: str, source: str) -> bytes:
    with archive.open(name) as member:
        data = member.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise NabiyaError(
            f"{source}: the score inside is larger than nabiya's limit of {MAX_FILE_BYTES // 2**20} MiB"
        )
    return data
