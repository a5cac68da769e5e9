"""Corpora: thousands of tunes read once, the unreadable ones skipped and counted, split by tune.

A *corpus spec* names where the tunes are; it is one or more of:

- the name of an ABC book that ships inside music21 (``oneills1850``, ``ryansMammoth``,
  ``airdsAirs``, ``miscFolk``, ``essenFolksong``, ``josquin``, ``nottingham-dataset``: see
  :func:`corpus_names`), or ``default`` for :data:`DEFAULT_CORPUS`, the British-Isles
  dance-tune books (O'Neill's, Ryan's, Aird's and miscFolk);
- a folder: every ``.abc``, ``.musicxml``/``.xml``/``.mxl``, ``.mid``/``.midi``,
  ``.txt``/``.notes`` and ``.jsonl`` file under it (hidden ones left out; others ignored
  and counted);
- one file of those kinds: an ABC file of many tunes, a ``.jsonl`` of notes (below), …

A name wins over a folder of the same name in the current folder: write ``./oneills1850``
for the folder. In a string, names and paths are separated by commas or spaces unless the
whole string is an existing path.

Tunes are read with nabiya's own readers, in parallel on every core, and cached on disk by
content (see :mod:`nabiya.music.corpus_reading`): the second load of a corpus reads no tune.
A tune that cannot be read, has chords or several voices, is shorter than ``min_notes`` or
repeats the notes of an earlier tune is *skipped*, counted with its reason
(:data:`SKIP_REASONS`), and never stops the corpus.

**Tune ids** are stable names: ``oneills1850/0001-0050.abc#12`` (a book or folder's name, the
file's path inside it, ``#`` and the ABC tune's ``X:`` number), ``tunes.abc#3`` (one file),
``mytunes/reel.mid`` (a file of one tune), or a ``.jsonl`` record's ``id``. A second tune with
the same id (two ``X:1`` in one file) gets ``~2`` after it.

**The split** into training, validation and test tunes is decided by each tune's id:
SHA-256 of ``"<seed>:<id>"``, its first 8 bytes read as a number ``u`` in [0, 1), is the
tune's place; ``u < train`` is training, ``u < train + valid`` validation, the rest test.
A tune keeps its part when other tunes are added or removed, and on every machine. One
exception keeps the test honest: *versions* of one tune (the same melody in two books, a
few notes changed: see :mod:`nabiya.music.versions`) go where the smallest id among them
goes, so that no version of a test tune is trained on.

**The .jsonl of notes** (``shared/data/folk_corpus.jsonl`` is one) holds one JSON object a line::

    {"id": "oneills1850/0001-0050.abc#1", "title": "The Enchanted Valley", "key": "G minor",
     "meter": "2/4", "notes": [[67, 0.75], [69, 0.25], [null, 0.5], ...], "collection": "..."}

where each note is ``[MIDI pitch or null for a rest, duration in quarter notes]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence

from nabiya.errors import NabiyaError
from nabiya.music.notation import key_name, parse_key, parse_meter, spell
from nabiya.music.note import Note
from nabiya.music.song import Song

if TYPE_CHECKING:
    from nabiya.tokens import TokenConfig

DEFAULT_CORPUS = ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
DEFAULT_SPLIT = (0.9, 0.05, 0.05)
DEFAULT_MIN_NOTES = 8
SPLIT_PARTS = ("train", "valid", "test")
SKIP_REASONS = {
    "chords": "several notes at once (a chord), or MIDI notes that overlap",
    "voices": "several voices, parts or tracks with notes",
    "no notes": "no notes to read (nothing, or only rests)",
    "unreadable": "notation the reader cannot read (the message names the place)",
    "reader error": "the reader failed unexpectedly (a bug worth reporting)",
    "too short": "fewer notes than the corpus's minimum (min_notes)",
    "duplicate": "the same notes as an earlier tune of the corpus",
}
CORPUS_FILE_EXTENSIONS = (".abc", ".musicxml", ".xml", ".mxl", ".mid", ".midi", ".txt", ".notes", ".jsonl")
# Durations in a .jsonl are floats (0.75, 0.3333…): read them as the nearest fraction with a
# denominator of at most this, which is exact for every note value the folk corpus holds.
DURATION_DENOMINATOR = 64


@dataclass(frozen=True)
class Skip:
    """A tune left out of a corpus.

    Attributes:
        id: the tune's id (a whole file's path when the file has no tune at all).
        reason: one of :data:`SKIP_REASONS`.
        message: one line for a person, naming the file and the place.
        collection: the book, folder or file it came from.
    """

    id: str
    reason: str
    message: str
    collection: str = ""


@dataclass(frozen=True)
class Split:
    """Which tunes are for training, validation and test (see the module docstring for how).

    Attributes:
        train, valid, test: tune ids, in corpus order.
        fractions: the shares asked for ``(train, valid, test)``.
        seed: mixed into each id's hash; another seed is another split.
        groups: ``{tune id: id it was placed by}`` for tunes placed with their versions.

    Example:
        >>> split = split_ids([f"book/t.abc#{n}" for n in range(1000)])
        >>> len(split.train), len(split.valid), len(split.test)
        (896, 46, 58)
    """

    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]
    fractions: tuple[float, float, float] = DEFAULT_SPLIT
    seed: int = 0
    groups: dict = field(default_factory=dict, compare=False)

    def part(self, name: str) -> tuple[str, ...]:
        """The ids of ``"train"``, ``"valid"`` or ``"test"``."""
        if name not in SPLIT_PARTS:
            raise NabiyaError(f"unknown part of a split {name!r}: choose one of {', '.join(SPLIT_PARTS)}")
        return getattr(self, name)

    def to_json(self) -> dict:
        return {
            "format": "nabiya-split",
            "version": 1,
            "method": "sha256('<seed>:<tune id>'), first 8 bytes / 2**64, against the cumulative fractions; "
            "versions of one tune by the smallest id among them (see 'groups')",
            "fractions": list(self.fractions),
            "seed": self.seed,
            "counts": {name: len(self.part(name)) for name in SPLIT_PARTS},
            **{name: list(self.part(name)) for name in SPLIT_PARTS},
            "groups": dict(self.groups),
        }

    @classmethod
    def from_json(cls, data: Mapping, *, source: str = "split") -> "Split":
        try:
            if data.get("format") != "nabiya-split":
                raise ValueError("not a nabiya split")
            parts = {name: tuple(str(item) for item in data[name]) for name in SPLIT_PARTS}
            fractions = tuple(float(value) for value in data["fractions"])
            groups = {str(key): str(value) for key, value in dict(data.get("groups", {})).items()}
            return cls(**parts, fractions=fractions, seed=int(data["seed"]), groups=groups)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise NabiyaError(f"{source}: not a nabiya split.json: {error}") from None

    def write(self, folder: str | os.PathLike) -> Path:
        """Write ``split.json`` into ``folder`` (atomically); returns its path."""
        from nabiya.fileio import write_text

        return write_text(Path(folder) / "split.json", json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n")


def read_split(path: str | os.PathLike) -> Split:
    """The split written by :meth:`Split.write` (a ``split.json``, or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "split.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise NabiyaError(f"{path}: cannot read the split: {error.strerror or error}") from None
    except ValueError as error:
        raise NabiyaError(f"{path}: not JSON: {error}") from None
    return Split.from_json(data, source=str(path))


def split_part(tune_id: str, fractions: Sequence[float] = DEFAULT_SPLIT, *, seed: int = 0) -> str:
    """``"train"``, ``"valid"`` or ``"test"``: where a tune goes, from its id alone.

    Example:
        >>> split_part("oneills1850/0001-0050.abc#1")
        'train'
    """
    digest = hashlib.sha256(f"{seed}:{tune_id}".encode("utf-8")).digest()
    place = int.from_bytes(digest[:8], "big") / 2.0**64
    train, valid, _ = fractions
    if place < train:
        return "train"
    return "valid" if place < train + valid else "test"


def split_ids(ids: Sequence[str], fractions: Sequence[float] = DEFAULT_SPLIT, *, seed: int = 0,
              groups: Mapping[str, str] | None = None) -> Split:  # fmt: skip
    """Split tune ids into training, validation and test, each by its own hash (see :func:`split_part`).

    Args:
        ids: the tune ids.
        fractions: shares for training, validation and test.
        seed: another seed, another split.
        groups: ``{tune id: id to place it by}`` for versions of one tune (see
            :func:`~nabiya.music.versions.version_groups`); other tunes are placed by their own id.

    Raises:
        NabiyaError: unless ``fractions`` are three shares of at least 0 that add up to 1,
            with some for training.
    """
    fractions = _check_fractions(fractions)
    groups = dict(groups or {})
    parts: dict[str, list[str]] = {name: [] for name in SPLIT_PARTS}
    for tune_id in ids:
        parts[split_part(groups.get(tune_id, tune_id), fractions, seed=seed)].append(tune_id)
    placed = {tune_id: group for tune_id, group in groups.items() if tune_id != group}
    return Split(**{name: tuple(items) for name, items in parts.items()}, fractions=fractions, seed=seed,
                 groups=placed)  # fmt: skip


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(value) for value in fractions)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or any(value < 0 for value in values) or abs(sum(values) - 1) > 1e-6 or values[0] <= 0:
        raise NabiyaError(
            f"a split is three shares (train, validation, test) of at least 0 that add up to 1, "
            f"e.g. 0.9, 0.05, 0.05; not {fractions!r}"
        )
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class Corpus:
    """Tunes to learn from, with what was left out and why.

    Attributes:
        songs: the tunes, in the order of the spec, its files and their tunes. Each song's
            ``meta`` holds ``id``, ``collection`` (the book, folder or file it came from),
            ``source`` (the file) and, for ABC, ``tune`` (the X: number).
        skips: the tunes left out, with reasons.
        sources: the spec, resolved: book names and paths.
        reading: ``files``, ``ignored_files`` (of other extensions), ``tunes_read`` (by a
            reader, this time), ``tunes_cached`` (from the cache), ``seconds``, ``jobs``.
        min_notes: the shortest tune kept, in notes (rests included).

    Example:
        >>> corpus = load_corpus("miscFolk")                             # doctest: +SKIP
        >>> len(corpus), corpus.skipped()                                # doctest: +SKIP
        (164, {'duplicate': 12, 'chords': 5, 'voices': 4})
        >>> corpus.info()                                                # doctest: +SKIP
    """

    songs: tuple[Song, ...]
    skips: tuple[Skip, ...] = ()
    sources: tuple[str, ...] = ()
    reading: dict = field(default_factory=dict, compare=False)
    min_notes: int = DEFAULT_MIN_NOTES

    def __len__(self) -> int:
        return len(self.songs)

    def __iter__(self) -> Iterator[Song]:
        return iter(self.songs)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(song.meta["id"] for song in self.songs)

    def song(self, tune_id: str) -> Song:
        """The tune with this id.

        Raises:
            NabiyaError: when there is none, naming it.
        """
        for song in self.songs:
            if song.meta["id"] == tune_id:
                return song
        raise NabiyaError(f"the corpus has no tune {tune_id!r}")

    def skipped(self) -> dict[str, int]:
        """How many tunes were left out, by reason, most first."""
        return dict(Counter(skip.reason for skip in self.skips).most_common())

    def split(self, fractions: Sequence[float] = DEFAULT_SPLIT, *, seed: int = 0) -> Split:
        """The tunes' split into training, validation and test (see :func:`split_ids`), versions
        of one tune together (see :mod:`nabiya.music.versions`)."""
        return split_ids(self.ids, fractions, seed=seed, groups=self.versions)

    @cached_property
    def versions(self) -> dict[str, str]:
        """``{tune id: group id}`` of the tunes that are versions of others (see :mod:`nabiya.music.versions`)."""
        from nabiya.music.versions import version_groups

        return version_groups(self.songs)

    def songs_of(self, split: Split, part: str) -> tuple[Song, ...]:
        """The songs of one part of a split (``"train"``, ``"valid"`` or ``"test"``), in corpus order."""
        wanted = set(split.part(part))
        return tuple(song for song in self.songs if song.meta["id"] in wanted)

    def info(self, tokens: "TokenConfig | None" = None, split: Split | None = None) -> "CorpusInfo":
        """What the corpus holds: tunes, notes, skips, meters, keys, lengths, split and vocabulary.

        Args:
            tokens: how tunes become tokens, for the vocabulary (default: ``TokenConfig()``).
            split: the split the vocabulary is counted on (default: :meth:`split`).
        """
        return corpus_info(self, tokens=tokens, split=split)


# --- corpus specs -------------------------------------------------------------------------------


def music21_corpus_folder() -> Path | None:
    """The folder of music21's corpus, found without importing music21; None when music21 lacks one."""
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "corpus"
    return folder if folder.is_dir() else None


def corpus_names() -> dict[str, Path]:
    """The ABC books music21 ships, by name: every folder of its corpus that holds ``.abc`` files.

    Example:
        >>> sorted(corpus_names())[:3]                                   # doctest: +SKIP
        ['airdsAirs', 'essenFolksong', 'josquin']
    """
    global _NAMES
    if _NAMES is None:
        root = music21_corpus_folder()
        _NAMES = {}
        if root is not None:
            for folder in sorted(root.iterdir(), key=lambda p: p.name.casefold()):
                if folder.is_dir() and not folder.name.startswith(("_", ".")) and next(folder.rglob("*.abc"), None):
                    _NAMES[folder.name] = folder
    return dict(_NAMES)


_NAMES: dict[str, Path] | None = None


@dataclass(frozen=True)
class _Source:
    label: str  # what ids start with: a book or folder's name, or a file's name
    path: Path
    files: tuple[Path, ...]
    ignored: int = 0

    book: bool = False

    def message_name(self, path: Path) -> str:
        """How messages name a file: a book's file by the book (``oneills1850/0001-0050.abc``), others by path."""
        return self.relative(path) if self.book else str(path)

    def relative(self, path: Path) -> str:
        if path == self.path:
            return self.label
        return f"{self.label}/{path.relative_to(self.path).as_posix()}"


def resolve_corpus(corpus: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> list[str]:
    """A corpus spec as a list of book names and paths, checked (see the module docstring).

    Raises:
        NabiyaError: for a name that is neither a book nor an existing file or folder
            (listing the books), or a file nabiya cannot read.

    Example:
        >>> resolve_corpus("default")                                    # doctest: +SKIP
        ['oneills1850', 'ryansMammoth', 'airdsAirs', 'miscFolk']
    """
    if corpus is None:
        items: list[str] = list(DEFAULT_CORPUS)
    elif isinstance(corpus, (str, os.PathLike)):
        text = os.fspath(corpus)
        items = [text] if Path(text).exists() else text.replace(",", " ").split()
    else:
        items = [os.fspath(item) for item in corpus]
    if not items:
        raise NabiyaError("an empty corpus spec: name a book (e.g. oneills1850), a folder or a file")
    names = corpus_names()
    resolved: list[str] = []
    for item in items:
        expanded = list(DEFAULT_CORPUS) if item == "default" else [item]
        for entry in expanded:
            if entry in names or Path(entry).exists():
                if entry not in names:
                    _check_file(Path(entry))
                if entry not in resolved:
                    resolved.append(entry)
                continue
            known = ", ".join(["default", *names]) or "none (music21 ships no corpus here)"
            raise NabiyaError(
                f"unknown corpus {entry!r}: not a file or folder, nor a book music21 ships; the books are {known}"
            )
    return resolved


def _check_file(path: Path) -> None:
    if path.is_file() and path.suffix.lower() not in CORPUS_FILE_EXTENSIONS:
        raise NabiyaError(
            f"{path}: cannot read {path.suffix or 'a file without an extension'} as a corpus: "
            f"nabiya reads {', '.join(CORPUS_FILE_EXTENSIONS)} files and folders of them"
        )


def _sources(resolved: Sequence[str]) -> list[_Source]:
    names = corpus_names()
    sources = []
    for entry in resolved:
        if entry in names:
            folder = names[entry]
            sources.append(_Source(entry, folder, tuple(sorted(folder.rglob("*.abc"))), book=True))
            continue
        path = Path(entry)
        if path.is_dir():
            files, ignored = [], 0
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path).parts
                if any(part.startswith(".") for part in relative) or not candidate.is_file():
                    continue
                if candidate.suffix.lower() in CORPUS_FILE_EXTENSIONS:
                    files.append(candidate)
                else:
                    ignored += 1
            label = path.resolve().name or "corpus"
            sources.append(_Source(label, path, tuple(files), ignored))
        else:
            sources.append(_Source(path.name, path, (path,)))
    return sources


# --- loading ------------------------------------------------------------------------------------


def load_corpus(
    corpus: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    min_notes: int = DEFAULT_MIN_NOTES,
    dedupe: bool = True,
    cache: bool | str | os.PathLike = True,
    jobs: int | None = None,
    progress: bool | Callable[[int, int], None] = False,
) -> Corpus:
    """Read a corpus: every tune of the spec, once (cached), skipping what cannot be learned from.

    Args:
        corpus: a spec (see the module docstring): book names, folders, files; a list of
            them, or one string. Default: :data:`DEFAULT_CORPUS`.
        min_notes: tunes with fewer notes (rests included) are skipped as ``too short``.
        dedupe: skip a tune whose notes (pitches and durations) are those of an earlier one,
            so that no melody is both trained on and tested on.
        cache: True for the default cache folder (see :mod:`nabiya.music.corpus_reading`),
            False for none, or a folder.
        jobs: processes to read with (default: every core).
        progress: True for a progress bar on standard error while tunes are read, or a
            callback ``progress(done, total)``.

    Returns:
        The :class:`Corpus`.

    Raises:
        NabiyaError: for an unknown name or unreadable spec, or when no tune is left
            (saying how many were skipped, and why).

    Example:
        >>> corpus = load_corpus(["miscFolk", "tunes/"], min_notes=16)   # doctest: +SKIP
    """
    from nabiya.music.corpus_reading import default_cache_dir, fingerprint, read_files, song_from_json

    resolved = resolve_corpus(corpus)
    sources = _sources(resolved)
    cache_dir = default_cache_dir() if cache is True else (Path(cache) if cache else None)
    abc_like = [(source, path) for source in sources for path in source.files if path.suffix.lower() != ".jsonl"]
    with _progress_callback(progress) as on_progress:
        readings, reading = read_files(
            [path for _, path in abc_like],
            sources=[source.message_name(path) for source, path in abc_like],
            cache_dir=cache_dir,
            jobs=jobs,
            progress=on_progress,
        )
    reading["ignored_files"] = sum(source.ignored for source in sources)
    by_path = {reading_.path: reading_ for reading_ in readings}
    songs: list[Song] = []
    fingerprints: list[tuple] = []
    skips: list[Skip] = []
    taken_ids: Counter = Counter()

    def unique(tune_id: str) -> str:
        taken_ids[tune_id] += 1
        return tune_id if taken_ids[tune_id] == 1 else f"{tune_id}~{taken_ids[tune_id]}"

    for source in sources:
        for path in source.files:
            base = source.relative(path)
            if path.suffix.lower() == ".jsonl":
                _add_jsonl(path, base, source.label, songs, skips, unique)
                fingerprints += [_fingerprint(song) for song in songs[len(fingerprints):]]
                continue
            outcomes = by_path[path].outcomes
            for index, outcome in enumerate(outcomes, start=1):
                in_abc = path.suffix.lower() == ".abc" and not outcome.get("whole_file")
                tune_id = unique(f"{base}#{outcome['ref'] or index}" if in_abc else base)
                if "skip" in outcome:
                    skips.append(Skip(tune_id, outcome["skip"], outcome["message"], source.label))
                    continue
                meta = {"id": tune_id, "collection": source.label, "source": str(path)}
                if outcome["ref"]:
                    meta["tune"] = outcome["ref"]
                songs.append(song_from_json(outcome["song"], meta=meta))
                fingerprints.append(fingerprint(outcome["song"]))
    kept = _filter(songs, fingerprints, skips, min_notes=min_notes, dedupe=dedupe)
    if not kept:
        counts = Counter(skip.reason for skip in skips).most_common()
        why = ", ".join(f"{count} {reason}" for reason, count in counts) or "no tune found"
        raise NabiyaError(f"corpus {' '.join(resolved)}: no tunes to learn from ({why})")
    return Corpus(tuple(kept), tuple(skips), tuple(resolved), reading, min_notes)


def _with_meta(song: Song, meta: dict) -> Song:
    import dataclasses

    return dataclasses.replace(song, meta=meta)


def _fingerprint(song: Song) -> tuple:
    """What makes two songs the same melody, as :func:`~nabiya.music.corpus_reading.fingerprint` writes it."""
    return tuple((note.pitch, str(note.duration)) for note in song.notes)


def _filter(songs: list[Song], fingerprints: list[tuple], skips: list[Skip], *, min_notes: int,
            dedupe: bool) -> list[Song]:  # fmt: skip
    kept = []
    first_with: dict[tuple, str] = {}
    for song, melody in zip(songs, fingerprints):
        tune_id = song.meta["id"]
        if len(song.notes) < min_notes:
            skips.append(Skip(tune_id, "too short", f"{tune_id}: {len(song.notes)} notes, fewer than {min_notes}",
                              song.meta["collection"]))  # fmt: skip
            continue
        if dedupe:
            if melody in first_with:
                skips.append(Skip(tune_id, "duplicate", f"{tune_id}: the same notes as {first_with[melody]}",
                                  song.meta["collection"]))  # fmt: skip
                continue
            first_with[melody] = tune_id
        kept.append(song)
    return kept


def _add_jsonl(path: Path, base: str, collection: str, songs: list, skips: list, unique) -> None:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        skips.append(Skip(base, "unreadable", f"{path}: cannot read the file: {error.strerror or error}", collection))
        return
    with handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {line_number}"
            try:
                record = json.loads(line)
            except ValueError as error:
                skips.append(Skip(unique(f"{base}:{line_number}"), "unreadable", f"{where}: not JSON: {error}", collection))
                continue
            own_id = record.get("id") if isinstance(record, dict) else None
            tune_id = unique(own_id if isinstance(own_id, str) and own_id else f"{base}:{line_number}")
            try:
                song = read_corpus_tune(record, source=where)
            except NabiyaError as error:
                message = str(error)
                reason = "no notes" if "has no notes" in message else "unreadable"
                skips.append(Skip(tune_id, reason, message, collection))
                continue
            meta = {"id": tune_id, "collection": collection, "source": str(path)}
            songs.append(_with_meta(song, meta))


@contextlib.contextmanager
def _progress_callback(progress):
    if not progress or callable(progress):
        yield progress if callable(progress) else None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:  # no bar in a log or a pipe
        yield None
        return
    bar = Progress(TextColumn("[bold]reading tunes"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), console=console, transient=True)  # fmt: skip
    state: dict = {}

    def report(done: int, total: int) -> None:
        if "task" not in state:
            bar.start()
            state["task"] = bar.add_task("reading", total=total)
        bar.update(state["task"], completed=done)

    try:
        yield report
    finally:
        if "task" in state:
            bar.stop()


# --- what a corpus holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusInfo:
    """What a corpus holds, for people (``nabiya corpus info``) and programs (:meth:`to_json`).

    Attributes:
        sources: the spec, resolved.
        tunes, notes: how many tunes were kept, and their notes (rests included).
        skipped: tunes left out, by reason; ``skip_examples``: one message per reason.
        collections: per book, folder or file: ``{"tunes": kept, "skipped": left out}``.
        meters, keys, modes: tunes per meter (``"6/8"``), key (``"D major"``) and mode
            (``"major"``), most first; ``"none"`` where a tune has none.
        lengths: notes per tune: ``min``, ``p5``, ``p25``, ``median``, ``p75``, ``p95``,
            ``max``, ``mean``; ``length_histogram``: ``[from, to, tunes]`` rows.
        pitches: ``lowest``, ``highest`` (MIDI) and ``distinct``; ``durations``: notes per
            duration in quarter notes (``"1/2"``), most first; ``rests``: the share of rests.
        split: tunes per part, the fractions, the seed, and how many tunes are ``versions``
            of others (placed together; see :mod:`nabiya.music.versions`).
        vocabulary: the tokens a model gets (see :func:`nabiya.tokens.vocabulary_report`).
        reading: files, ignored files, tunes read and cached, seconds.
    """

    sources: tuple[str, ...]
    tunes: int
    notes: int
    skipped: dict
    skip_examples: dict
    collections: dict
    meters: dict
    keys: dict
    modes: dict
    lengths: dict
    length_histogram: list
    pitches: dict
    durations: dict
    rests: float
    split: dict
    vocabulary: dict
    reading: dict

    def to_json(self) -> dict:
        import dataclasses

        data = dataclasses.asdict(self)
        data["sources"] = list(self.sources)
        return data


def corpus_info(corpus: Corpus, *, tokens: "TokenConfig | None" = None, split: Split | None = None) -> CorpusInfo:
    """The facts of :class:`CorpusInfo` (see :meth:`Corpus.info`)."""
    # The vocabulary is what a model of this corpus reads: tokens.py (numpy only, no JAX) knows it.
    from nabiya.tokens import TokenConfig, tokenize_corpus, vocabulary_report

    split = split or corpus.split()
    lengths = sorted(len(song.notes) for song in corpus.songs)
    notes = [note for song in corpus.songs for note in song.notes]
    pitches = [note.pitch for note in notes if note.pitch is not None]
    collections: dict[str, dict] = {}
    for song in corpus.songs:
        collections.setdefault(song.meta["collection"], {"tunes": 0, "skipped": 0})["tunes"] += 1
    for skip in corpus.skips:
        collections.setdefault(skip.collection, {"tunes": 0, "skipped": 0})["skipped"] += 1
    examples: dict[str, str] = {}
    for skip in corpus.skips:
        examples.setdefault(skip.reason, skip.message)
    tokenized = tokenize_corpus(corpus, tokens or TokenConfig(), split=split)
    return CorpusInfo(
        sources=corpus.sources,
        tunes=len(corpus.songs),
        notes=len(notes),
        skipped=corpus.skipped(),
        skip_examples=examples,
        collections=collections,
        meters=_counts(song.meter for song in corpus.songs),
        keys=_counts(song.key for song in corpus.songs),
        modes=_counts(parse_key(song.key)[1] if song.key else None for song in corpus.songs),
        lengths=_percentiles(lengths),
        length_histogram=_histogram(lengths),
        pitches={"lowest": min(pitches), "highest": max(pitches), "distinct": len(set(pitches))},
        durations=_counts(str(note.duration) for note in notes),
        rests=round(sum(note.pitch is None for note in notes) / len(notes), 4),
        split={
            **{name: len(split.part(name)) for name in SPLIT_PARTS},
            "fractions": list(split.fractions),
            "seed": split.seed,
            "versions": sum(1 for tune_id in corpus.ids if tune_id in corpus.versions) if split.groups else 0,
        },
        vocabulary=vocabulary_report(tokenized),
        reading=dict(corpus.reading),
    )


def _counts(values) -> dict:
    return {("none" if value is None else value): count for value, count in Counter(values).most_common()}


def _percentiles(values: list[int]) -> dict:
    def at(share: float) -> int:
        return values[min(len(values) - 1, int(share * (len(values) - 1) + 0.5))]

    return {
        "min": values[0], "p5": at(0.05), "p25": at(0.25), "median": at(0.5), "p75": at(0.75), "p95": at(0.95),
        "max": values[-1], "mean": round(statistics.fmean(values), 1),
    }  # fmt: skip


def _histogram(values: list[int]) -> list:
    edges = [0, 16, 32, 64, 96, 128, 192, 256, 384, 512]
    rows = []
    for low, high in zip(edges, edges[1:] + [None]):
        count = sum(1 for value in values if value >= low and (high is None or value < high))
        if count:
            rows.append([low, high, count])
    return rows


# --- the .jsonl of notes ----------------------------------------------------------------------


def read_corpus_tune(record: Mapping | str, *, source: str = "folk corpus") -> Song:
    """A song from one ``.jsonl`` record (a parsed JSON object, or its line of text).

    Black keys are spelled from the tune's key (sharps in sharp keys, flats in flat ones);
    the tempo is 120 bpm (the records have none); the key and meter are the record's;
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
        valid_length = (
            isinstance(quarters, (int, float)) and not isinstance(quarters, bool) and 0 < quarters < float("inf")
        )
        if not (valid_pitch and valid_length):
            raise NabiyaError(
                f"{name}, note {number}: {item!r} is not a [MIDI pitch 0-127 or null, positive quarter notes] pair"
            )
        duration = Fraction(quarters).limit_denominator(DURATION_DENOMINATOR)
        notes.append(Note(pitch, duration, None if pitch is None else spell(pitch, fifths)))
    if not any(note.pitch is not None for note in notes):
        raise NabiyaError(f"{name}: the tune has no notes")
    meta = {field_: record[field_] for field_ in ("id", "collection") if isinstance(record.get(field_), str)}
    meter = record.get("meter") if parse_meter(record.get("meter")) else None
    try:
        return Song(tuple(notes), title=str(record.get("title") or ""), meter=meter,
                    key=None if key is None else key_name(key[0], key[1]), meta=meta)  # fmt: skip
    except NabiyaError as error:
        raise NabiyaError(f"{name}: {error}") from None


def iter_corpus(path: str | os.PathLike) -> Iterator[Song]:
    """The tunes of a ``.jsonl`` of notes, one song at a time, in file order.

    Raises:
        NabiyaError: when the file is missing, or for a line that is not a tune (naming it).
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise NabiyaError(f"{path}: cannot read the corpus file: {error.strerror or error}") from None
    with handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise NabiyaError(
                    f"{path}, line {line_number}: not UTF-8 text (byte {error.start + 1} of the line); "
                    "a .jsonl corpus is UTF-8"
                ) from None
            if line.strip():
                yield read_corpus_tune(line, source=f"{path}, line {line_number}")


def read_corpus_song(path: str | os.PathLike, *, tune: str | int | None = None) -> Song:
    """One tune of a ``.jsonl`` of notes, by id (``'oneills1850/0001-0050.abc#1'``), title (any
    case) or line number (1-based); the first when ``tune`` is None.

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
        raise NabiyaError(f"{path}: the corpus file has no tunes")
    raise NabiyaError(f"{path}: no tune {tune!r} (by id, title or line number)")
