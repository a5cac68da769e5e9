"""Reading the tunes of many files once: in parallel on every core, cached on disk by content.

:func:`read_files` turns files (ABC with many tunes, MIDI, MusicXML, note codes) into
*outcomes*, one per tune: a song, or a skip with its reason. The tunes are read with
nabiya's own readers (:func:`~nabiya.music.abc.song_from_abc`, :func:`~nabiya.music.formats.read_song`)
in a pool of processes started with ``forkserver`` (``spawn`` where there is none), never
``fork``, so that a parent that has imported JAX (which runs threads) can use it safely.

**The cache.** A file's outcomes are written to one JSON-lines file (no pickle) named by a
SHA-256 of the file's bytes, its extension and the *reader version*. The reader version is a
hash of the sources of every module of ``nabiya.music`` and music21's version, so a change to
a reader (a fixed bug, a new skip rule) replaces every reading made before it, and a changed
file is read again. Cache files are written atomically as each file's tunes are done, so an
interrupted read keeps what it finished. The cache lives in ``$NABIYA_CORPUS_CACHE`` (empty:
no cache), else ``$XDG_CACHE_HOME/nabiya/corpus`` or ``~/.cache/nabiya/corpus``; folders of
reader versions unused for 30 days are removed.

**Skips.** A tune is skipped, never stopping the rest, when its reader raises (``chords``:
several notes at once; ``no notes``; ``unreadable``: anything else the reader names), when
it warns that it read only one of several voices, parts or tracks (``voices``) or only the
top line of chords (``chords``), or when the reader fails unexpectedly (``reader error``,
with the exception's type: a bug worth reporting). Other warnings do not skip a tune.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

from nabiya.errors import NabiyaError
from nabiya.music.note import Note
from nabiya.music.song import Song

CACHE_FORMAT = "nabiya-corpus-cache"
CACHE_FORMAT_VERSION = 1
CACHE_ENVIRONMENT = "NABIYA_CORPUS_CACHE"
STALE_CACHE_DAYS = 30
# Below this many tunes to read, starting a pool (about a second) costs more than it saves.
POOL_MIN_TUNES = 32
TUNES_PER_TASK = 8

# (path, text of the file's tunes) -> outcome: {"ref", "title", "song" | "skip" + "message"}
Outcome = dict


@dataclass(frozen=True)
class FileReading:
    """What one file gave.

    Attributes:
        path: the file.
        outcomes: one per tune, in file order: ``{"ref": X number or "", "title": str,
            "song": the song as JSON (see :func:`song_from_json`)}`` or ``{"ref", "title",
            "skip": reason, "message": one line}``, with ``"whole_file": True`` when the
            file gave no tune at all.
        cached: whether they came from the cache (no tune of the file was read).
    """

    path: Path
    outcomes: tuple[Outcome, ...]
    cached: bool


def default_cache_dir() -> Path | None:
    """Where readings are cached: ``$NABIYA_CORPUS_CACHE`` (empty: nowhere), else the user's cache folder.

    Example:
        >>> default_cache_dir().name                                     # doctest: +SKIP
        'corpus'
    """
    root = os.environ.get(CACHE_ENVIRONMENT)
    if root is not None:
        return Path(root) if root else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "nabiya" / "corpus"


def reader_version() -> str:
    """A hash of the readers: every module of ``nabiya.music``, music21's version and the cache format.

    Any change to the code that reads tunes gives a new version, so cached readings are
    never older than the reader.
    """
    global _READER_VERSION
    if _READER_VERSION is None:
        import music21

        digest = hashlib.sha256(f"{CACHE_FORMAT} {CACHE_FORMAT_VERSION} music21 {music21.__version__}".encode())
        for module in sorted(Path(__file__).parent.glob("*.py")):
            digest.update(module.name.encode() + b"\0" + module.read_bytes() + b"\0")
        _READER_VERSION = digest.hexdigest()[:20]
    return _READER_VERSION


_READER_VERSION: str | None = None


def read_files(
    paths: Sequence[Path],
    *,
    sources: Sequence[str] | None = None,
    cache_dir: Path | None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    reader: Callable[[str, str, str], Outcome] | None = None,
) -> tuple[list[FileReading], dict]:
    """Every tune of every file, read once: from the cache, else by the readers (in parallel).

    Args:
        paths: files to read (``.abc`` files may hold many tunes; others hold one).
        sources: how messages name each file (``oneills1850/0001-0050.abc``; default: its path).
        cache_dir: the cache folder, or None for no cache.
        jobs: processes to read with (default: every core); 1 reads in this process.
        progress: called as ``progress(tunes_done, tunes_to_read)`` while reading.
        reader: ``reader(kind, text, path, source) -> outcome`` for one tune, for tests (default:
            nabiya's readers); given one, reading happens in this process.

    Returns:
        One :class:`FileReading` per path, in order, and statistics: ``files``,
        ``tunes_read``, ``tunes_cached``, ``seconds``, ``jobs``.
    """
    started = time.perf_counter()
    version = reader_version()
    cache = _version_folder(cache_dir, version) if cache_dir is not None else None
    readings: list[FileReading | None] = [None] * len(paths)
    keys: list[str | None] = [None] * len(paths)
    tasks: list[tuple] = []  # (file index, tune index, kind, text, path, source)
    sources = list(sources) if sources is not None else [str(path) for path in paths]
    pending: dict[int, list] = {}
    for file_index, path in enumerate(paths):
        try:
            data = path.read_bytes()
        except OSError as error:
            outcome = _skip("", "", "unreadable", f"{sources[file_index]}: cannot read the file: {error.strerror or error}")
            outcome["whole_file"] = True
            readings[file_index] = FileReading(path, (outcome,), cached=False)
            continue
        key = hashlib.sha256(version.encode() + path.suffix.lower().encode() + b"\0" + data).hexdigest()
        keys[file_index] = key
        cached = _read_cache(cache / f"{key}.jsonl") if cache is not None else None
        if cached is not None:
            readings[file_index] = FileReading(path, tuple(cached), cached=True)
            continue
        texts = _tune_texts(path, data, sources[file_index])
        if isinstance(texts, dict):  # the file has no tune: one skip, cached like any reading
            texts["whole_file"] = True
            readings[file_index] = FileReading(path, (texts,), cached=False)
            _write_cache(cache, key, path, [texts])
            continue
        pending[file_index] = [None] * len(texts)
        for tune_index, (kind, text) in enumerate(texts):
            tasks.append((file_index, tune_index, kind, text, str(path), sources[file_index]))

    jobs = max(1, jobs or _cores())
    total = len(tasks)
    done = 0

    def finish(results) -> None:
        nonlocal done
        for (file_index, tune_index), outcome in results:
            outcomes = pending[file_index]
            outcomes[tune_index] = outcome
            done += 1
            if all(item is not None for item in outcomes):
                path = paths[file_index]
                readings[file_index] = FileReading(path, tuple(outcomes), cached=False)
                _write_cache(cache, keys[file_index], path, outcomes)
        if progress is not None:
            progress(done, total)

    if progress is not None and total:
        progress(0, total)
    batches = [tasks[start : start + TUNES_PER_TASK] for start in range(0, total, TUNES_PER_TASK)]
    if reader is not None or jobs == 1 or total < POOL_MIN_TUNES:
        for batch in batches:
            finish(_read_batch(batch, reader))
    else:
        _read_in_pool(batches, min(jobs, len(batches)), finish)
    statistics = {
        "files": len(paths),
        "tunes_read": total,
        "tunes_cached": sum(len(r.outcomes) for r in readings if r is not None and r.cached),
        "seconds": round(time.perf_counter() - started, 3),
        "jobs": jobs if total >= POOL_MIN_TUNES and reader is None else 1,
    }
    return [reading for reading in readings if reading is not None], statistics


# --- one tune ---------------------------------------------------------------------------------


def read_tune(kind: str, text: str, path: str, source: str | None = None) -> Outcome:
    """Read one tune with nabiya's readers: an outcome (a song as JSON, or a skip), never an exception.

    Args:
        kind: ``"abc"`` (``text`` is an ABC tune, with the file's header) or ``"file"``
            (``path`` is read by :func:`~nabiya.music.formats.read_song`).
        text: the ABC text, or ``""``.
        path: the file.
        source: how messages name the file (default: ``path``).
    """
    from nabiya.music.abc import song_from_abc
    from nabiya.music.formats import read_song

    source = source or path
    ref, title = "", ""
    with warnings.catch_warnings(record=True) as caught, _without_beams():
        warnings.simplefilter("always")
        try:
            song = song_from_abc(text, source=source) if kind == "abc" else read_song(path)
        except NabiyaError as error:
            message = str(error).replace(path, source, 1)
            if kind == "abc":
                ref, title = _abc_label(text)
            return _skip(ref, title, _error_reason(message), message)
        except Exception as error:  # a reader's bug must not stop a corpus: report it as a skip
            if kind == "abc":
                ref, title = _abc_label(text)
            detail = " ".join(str(error).split())[:160]
            return _skip(ref, title, "reader error", f"{source}: the reader failed: {type(error).__name__}: {detail}")
    ref, title = str(song.meta.get("tune", "")), song.title
    for warning in caught:
        reason = _warning_reason(str(warning.message))
        if reason is not None:
            return _skip(ref, title, reason, " ".join(str(warning.message).replace(path, source, 1).split()))
    return {"ref": ref, "title": title, "song": song_to_json(song)}


@contextlib.contextmanager
def _without_beams() -> Iterator[None]:
    """music21 without beaming: its ABC import beams every tune, which is 60% of reading one and
    changes no note (the same songs come out; beams are drawing, not music)."""
    from music21 import stream

    original = stream.Stream.makeBeams
    stream.Stream.makeBeams = _no_beams
    try:
        yield
    finally:
        stream.Stream.makeBeams = original


def _no_beams(self, *arguments, **options):
    return None if options.get("inPlace") else self


def _error_reason(message: str) -> str:
    if "a chord (" in message:
        return "chords"
    if "no notes" in message or "has no notes" in message:
        return "no notes"
    return "unreadable"


def _warning_reason(message: str) -> str | None:
    """The skip reason a reader's warning gives, or None for a warning that does not disqualify a tune."""
    lowered = message.lower()
    if "chord" in lowered or "overlapping notes" in lowered:
        return "chords"
    if "voices" in lowered or "parts" in lowered or "tracks have notes" in lowered:
        return "voices"
    return None


def _skip(ref: str, title: str, reason: str, message: str) -> Outcome:
    return {"ref": ref, "title": title, "skip": reason, "message": message}


def _abc_label(text: str) -> tuple[str, str]:
    from nabiya.music.abc import split_tunes

    try:
        tunes = split_tunes(text)
    except Exception:  # a label is a courtesy; the skip is reported either way
        return "", ""
    return (tunes[0].reference, tunes[0].title) if tunes else ("", "")


def _tune_texts(path: Path, data: bytes, source: str) -> list[tuple[str, str]] | Outcome:
    """``(kind, text)`` for each tune of a file, or one skip outcome when the file has none."""
    if path.suffix.lower() != ".abc":
        return [("file", "")]
    from nabiya.music.abc import split_tunes
    from nabiya.music.formats import _decode

    text = _decode(data)
    try:
        tunes = split_tunes(text)
    except Exception as error:  # a reader's bug must not stop a corpus
        return _skip("", "", "reader error", f"{source}: the ABC splitter failed: {type(error).__name__}: {error}")
    if not tunes:
        return _skip("", "", "no notes", f"{source}: no ABC tune found: a tune starts with an X: line and has a K: line")
    lines = text.splitlines()
    first_x = next((index for index, line in enumerate(lines) if line.startswith("X:")), None)
    if first_x is None or len(tunes) == 1:
        return [("abc", text)]
    texts = []
    for tune in tunes:
        # The file's header, blank lines where other tunes were, then this tune: the reader
        # sees what it would see in the whole file, and its messages name the file's lines.
        start, end = tune.first_line - 1, tune.line_numbers[-1]
        texts.append(("abc", "\n".join(lines[:first_x] + [""] * (start - first_x) + lines[start:end]) + "\n"))
    return texts


# --- songs as JSON ----------------------------------------------------------------------------


def song_to_json(song: Song) -> dict:
    """A song as a JSON object: exact durations as ``"3/4"``, spellings kept.

    Example:
        >>> song_to_json(Song.from_codes("g8. r16", meter="2/4"))["notes"]
        [[67, '3/4', 'g'], [None, '1/4', None]]
    """
    return {
        "title": song.title,
        "tempo": song.tempo_bpm,
        "meter": song.meter,
        "key": song.key,
        "pickup": str(song.pickup),
        "tune": str(song.meta.get("tune", "")),
        "notes": [[note.pitch, str(note.duration), note.spelling] for note in song.notes],
    }


def song_from_json(data: dict, *, meta: dict | None = None) -> Song:
    """The song of :func:`song_to_json`, with ``meta`` (default: the ABC tune's number).

    Notes are shared between songs (a note is immutable): a corpus of 400,000 notes holds a
    few thousand distinct ones, and building each once makes a warm load quick.

    Raises:
        NabiyaError: for an object that is not such a song.
    """
    try:
        notes = []
        for pitch, duration, spelling in data["notes"]:
            key = (pitch, duration, spelling)
            note = _NOTES.get(key)
            if note is None:
                if len(_NOTES) > 100_000:
                    _NOTES.clear()
                note = _NOTES[key] = Note(pitch, Fraction(duration), spelling)
            notes.append(note)
        if meta is None:
            meta = {"tune": data["tune"]} if data.get("tune") else {}
        return Song(tuple(notes), title=data["title"], tempo_bpm=data["tempo"], meter=data["meter"],
                    key=data["key"], pickup=Fraction(data["pickup"]), meta=meta)  # fmt: skip
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        raise NabiyaError(f"not a song: {error}") from None


_NOTES: dict[tuple, Note] = {}


def fingerprint(data: dict) -> tuple:
    """What makes two songs of :func:`song_to_json` the same melody: pitches and durations."""
    return tuple((pitch, duration) for pitch, duration, _ in data["notes"])


# --- the pool ---------------------------------------------------------------------------------


def _read_batch(batch, reader=None) -> list[tuple[tuple[int, int], Outcome]]:
    reader = reader or read_tune
    return [((file_index, tune_index), reader(kind, text, path, source))
            for file_index, tune_index, kind, text, path, source in batch]


def _read_in_pool(batches, jobs: int, finish) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        # Workers fork from a server that has imported the readers once.
        context.set_forkserver_preload(["nabiya.music.corpus_reading", "nabiya.music.abc", "nabiya.music.scores"])
    left = list(batches)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker)
    try:
        futures = {pool.submit(_read_batch, batch): batch for batch in left}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                batch = futures.pop(future)
                finish(future.result())
                left.remove(batch)
    except BrokenProcessPool:
        # A worker died (out of memory, a crash in a library): read what is left here, one by one.
        pool.shutdown(wait=False, cancel_futures=True)
        for batch in left:
            finish(_read_batch(batch))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)


def _start_worker() -> None:
    import music21  # noqa: F401  (import once per worker, before the first tune)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- the cache --------------------------------------------------------------------------------


def _version_folder(cache_dir: Path, version: str) -> Path | None:
    folder = Path(cache_dir) / version
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.utime(folder)  # marks the version as in use
    except OSError:
        return None  # a cache that cannot be written is no cache: reading still works
    _remove_stale_versions(Path(cache_dir), keep=folder)
    return folder


def _remove_stale_versions(cache_dir: Path, *, keep: Path) -> None:
    cutoff = time.time() - STALE_CACHE_DAYS * 86400
    try:
        for folder in cache_dir.iterdir():
            if folder != keep and folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
    except OSError:
        pass


def _read_cache(path: Path) -> list[Outcome] | None:
    """The outcomes cached in ``path``, or None when it is missing or not a whole cache file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        if header.get("format") != CACHE_FORMAT or header.get("version") != CACHE_FORMAT_VERSION:
            return None
        outcomes = [json.loads(line) for line in lines[1:]]
        if len(outcomes) != header.get("tunes"):
            return None
        if not all(isinstance(outcome, dict) and ("song" in outcome or "skip" in outcome) for outcome in outcomes):
            return None
        return outcomes
    except (OSError, IndexError, ValueError, AttributeError):
        return None


def _write_cache(cache: Path | None, key: str | None, path: Path, outcomes: list[Outcome]) -> None:
    if cache is None or key is None:
        return
    from nabiya.fileio import write_text

    header = {"format": CACHE_FORMAT, "version": CACHE_FORMAT_VERSION, "file": str(path), "tunes": len(outcomes)}
    lines = [json.dumps(header, ensure_ascii=False)]
    lines += [json.dumps(outcome, ensure_ascii=False, separators=(",", ":")) for outcome in outcomes]
    try:
        write_text(cache / f"{key}.jsonl", "\n".join(lines) + "\n")
    except (OSError, NabiyaError):
        pass  # a full disk loses the cache, not the corpus
