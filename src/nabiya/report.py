"""Run folders: what a run leaves on disk for a person to read, hear and look at.

A run folder holds:

- ``summary.json``: preset, seed, epochs, accuracy, the one-step and full-song
  predictions (notes, matches, first mismatch), the loss and accuracy histories, the
  vocabulary and the full config;
- ``loss.png``: the loss curve;
- ``song.*``, ``one_step.*``, ``full_song.*``: the original and both predictions (the
  primer followed by the predicted notes) as MIDI, WAV, ABC, MusicXML and SVG sheet music
  (no WAV with ``audio=False``, nor for a song longer than ``MAX_AUDIO_SECONDS``);
- ``one_step_roll.png``, ``full_song_roll.png``: piano rolls of each prediction against
  the song, wrong notes marked;
- ``.nabiya-output.json``: the list of these files (see :mod:`nabiya.fileio`).

The same run writes the same folder, byte for byte: timings and dates are printed, not
written. The folder is assembled under a temporary name beside it and swapped into place,
so a failure never leaves a half-written or mixed run (see :class:`nabiya.fileio.staged_folder`).
"""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from nabiya.music.limits import MAX_AUDIO_SECONDS
from nabiya.errors import NabiyaError
from nabiya.fileio import staged_folder

if TYPE_CHECKING:
    from nabiya.experiment import Comparison, RunResult
    from nabiya.music.song import Song

SONGS = ("song", "one_step", "full_song")
# Formats written for each song; the first two are what a person needs to listen.
SONG_FORMATS = (".mid", ".wav", ".abc", ".musicxml", ".svg")
WAV_BYTES_PER_SECOND = 22_050 * 2  # nabiya.music.audio: 16-bit mono at 22.05 kHz
# A run folder larger than this says so, and how to make it smaller, before training.
LARGE_OUTPUT_BYTES = 50 * 1024 * 1024


def write_run(
    result: "RunResult", out: str | Path, *, force: bool = False, audio: bool = True, song_files: Path | None = None,
    helpers=None,
) -> Path:
    """Write ``result``'s run folder at ``out``, whole or not at all. Returns the folder.

    Args:
        force: replace an earlier run folder (never a folder holding other files).
        audio: write WAV files; songs longer than ``MAX_AUDIO_SECONDS`` get none anyway.
        song_files: a folder where :func:`song_jobs` already wrote the song's own files
            (``song.*``), which are then moved in rather than written again.
        helpers: a :class:`nabiya.rendering.Helpers` of two processes that write the
            predictions' files and plots, half each (the same bytes as without).
    """
    with staged_folder(out, force=force, what="run folder") as staging:
        _write_run_files(result, staging, audio=audio, song_files=song_files, helpers=helpers)
    return Path(out)


def song_jobs(song: "Song", folder: Path, *, name: str = "song", audio: bool = True) -> list[dict]:
    """The jobs (see :mod:`nabiya.rendering`) that write ``song`` as ``folder/NAME.mid``, ``.wav``, ...

    A run writes its song's own files with these while training runs (see :func:`nabiya.experiment.run`).
    """
    from nabiya.music.corpus_reading import song_to_json

    data = song_to_json(song)
    return [{"song": data, "path": str(Path(folder) / f"{name}{suffix}")} for suffix in song_formats(song, audio=audio)]


def write_comparison(comparison: "Comparison", out: str | Path, *, force: bool = False, audio: bool = True,
                     helpers: bool = True) -> Path:  # fmt: skip
    """Write ``comparison.json``, ``loss.png`` (every preset's loss and accuracy), and one run folder per preset.

    ``helpers=False``: every file in this process (the same bytes; see :class:`ComparisonWriter`).
    """
    with ComparisonWriter(out, force=force, audio=audio, helpers=helpers) as writer:
        for result in comparison.results:
            writer.add(result)
        writer.finish(comparison)
    return Path(out)


class ComparisonWriter:
    """A comparison folder written while its presets train: each preset's run folder once it is trained.

    A context manager around the trainings. :meth:`add` hands a trained preset's run folder
    to two helper processes (:mod:`nabiya.rendering`), which write it on the other core
    while the next preset trains, so that after the last training only its own files are
    left to write (``nabiya compare`` spent 5 s writing after its last training when the
    four folders were written one after another). :meth:`finish` writes ``comparison.json``
    and ``loss.png`` and waits for the helpers. The folder is staged (see
    :class:`nabiya.fileio.staged_folder`): on success it is swapped in whole; on any error
    or Ctrl-C the helpers are stopped first and the staging folder removed.

    Example:
        >>> with ComparisonWriter("runs/compare") as writer:          # doctest: +SKIP
        ...     for config in configs:
        ...         writer.add(run(config))
        ...     writer.finish(comparison)
    """

    def __init__(self, out: str | Path, *, force: bool = False, audio: bool = True, helpers: bool = True):
        self.out, self.force, self.audio, self.use_helpers = Path(out), force, audio, helpers
        self._helpers = None
        self._finished = False

    def __enter__(self) -> "ComparisonWriter":
        import contextlib

        self._stack = contextlib.ExitStack()
        self.staging = self._stack.enter_context(staged_folder(self.out, force=self.force, what="comparison folder"))
        return self

    def add(self, result: "RunResult") -> None:
        """Start writing ``result``'s run folder (``PRESET/``); returns at once when helpers write it."""
        folder = self.staging / result.preset
        folder.mkdir()
        shares = _run_folder_jobs(result, folder, audio=self.audio)
        if self._helpers is None and self.use_helpers:
            from nabiya.rendering import Helpers

            self._helpers = self._stack.enter_context(Helpers(2))  # stopped before the staging folder goes
        _hand_out(shares, self._helpers)

    def finish(self, comparison: "Comparison") -> None:
        """Write ``comparison.json`` and ``loss.png``, and wait until every run folder is written."""
        from nabiya.plots import save_figure

        rows = [{k: v for k, v in row.items() if k != "train_seconds"} for row in comparison.table().rows]
        _write_json(self.staging / "comparison.json", {"presets": rows})
        save_figure(comparison.plot(), self.staging / "loss.png")  # loss and accuracy, with the ceiling
        if self._helpers is not None:
            self._helpers.wait()
        self._finished = True

    def __exit__(self, kind, error, traceback) -> bool:
        if kind is None and not self._finished:  # a caller's bug: never swap in a folder not finished
            kind, error = NabiyaError, NabiyaError("the comparison folder was not finished")
            self._stack.__exit__(kind, error, None)
            raise error
        return self._stack.__exit__(kind, error, traceback)


def write_songs(songs: dict, out: str | Path, *, force: bool = False, audio: bool = True) -> list[Path]:
    """Write each named song in every format (``NAME.mid``, ``NAME.wav``, ...) into ``out``."""
    with staged_folder(out, force=force, what="output folder") as staging:
        for name, song in songs.items():
            for suffix in song_formats(song, audio=audio):
                _write_song(song, staging / f"{name}{suffix}")
        written = sorted(path.name for path in staging.iterdir() if not path.name.startswith("."))
    return [Path(out) / name for name in written]


def song_formats(song: "Song", *, audio: bool = True) -> tuple[str, ...]:
    """The extensions a song is written in: every format, less WAV when asked or too long (with a warning)."""
    if audio and _seconds(song) > MAX_AUDIO_SECONDS:
        warnings.warn(
            f"no WAV for {song.title or 'a song'!r}: {_seconds(song) / 60:.0f} minutes of audio is over the "
            f"{MAX_AUDIO_SECONDS // 60}-minute limit of a run folder's WAV files",
            UserWarning,
            stacklevel=3,
        )
        audio = False
    return tuple(suffix for suffix in SONG_FORMATS if audio or suffix != ".wav")


def estimate_audio_bytes(songs: Iterable["Song"], *, audio: bool = True) -> int:
    """About how many bytes of WAV writing these songs takes (0 with ``audio=False``)."""
    if not audio:
        return 0
    return sum(int(_seconds(song) * WAV_BYTES_PER_SECOND) for song in songs if _seconds(song) <= MAX_AUDIO_SECONDS)


def _seconds(song: "Song") -> float:
    return song.duration_seconds


class Table:
    """A small table of rows (dicts with the same keys): HTML in Jupyter, text in a terminal.

    Attributes:
        rows: the data, one dict per row.
        title: a caption.

    Example:
        >>> print(Table([{"preset": "mlp", "accuracy": 0.92}]))
        preset  accuracy
        mlp     0.92
    """

    def __init__(self, rows: Iterable[Mapping], *, title: str = ""):
        self.rows = [dict(row) for row in rows]
        self.title = title

    @property
    def columns(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []

    def _cells(self) -> list[list[str]]:
        return [[_cell(row.get(column)) for column in self.columns] for row in self.rows]

    def __str__(self) -> str:
        cells = [self.columns, *self._cells()]
        widths = [max(len(line[i]) for line in cells) for i in range(len(self.columns))]
        lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in cells]
        return "\n".join(([self.title] if self.title else []) + lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(column)}</th>" for column in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(text)}</td>" for text in row) + "</tr>" for row in self._cells()
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _write_run_files(
    result: "RunResult", folder: Path, *, audio: bool = True, song_files: Path | None = None, helpers=None
) -> None:
    import shutil

    shares = _run_folder_jobs(result, folder, audio=audio, song=song_files is None)
    if helpers is None:
        _hand_out(shares, None)
    else:
        try:
            _hand_out(shares, helpers)
            helpers.wait()
        except BaseException:
            helpers.stop()  # none may write into the folder once it is being removed
            raise
    if song_files is not None:
        for suffix in song_formats(result.song, audio=audio):
            shutil.move(song_files / f"song{suffix}", folder / f"song{suffix}")


def _hand_out(shares: list[list[dict]], helpers) -> None:
    """Write the shares of jobs here (no helpers), or send share ``i`` to helper ``i`` (returns at once)."""
    if helpers is None:
        from nabiya.rendering import write_jobs

        write_jobs([job for share in shares for job in share])
    else:
        for index, share in enumerate(shares):
            helpers.send(index, share)


def _run_folder_jobs(result: "RunResult", folder: Path, *, audio: bool, song: bool = True) -> list[list[dict]]:
    """Write ``summary.json`` into ``folder``; return the jobs of the rest of the run folder in two shares
    (the song's own files too, unless ``song=False``: written elsewhere already)."""
    _write_json(folder / "summary.json", result.summary())
    shares = _prediction_jobs(result, folder, audio=audio)
    if song:
        shares[1] += song_jobs(result.song, folder, audio=audio)
    return shares


def _prediction_jobs(result: "RunResult", folder: Path, *, audio: bool) -> list[list[dict]]:
    """What a run folder holds that depends on training, as jobs in two shares of about equal work.

    Measured CPU time (2026-11-30): the loss curve ~0.2 s, a piano roll ~0.25 s, a
    prediction's five files ~0.1 s (MusicXML and SVG most of it).
    """
    from nabiya.music.corpus_reading import song_to_json

    truth = song_to_json(result.song)
    loss = {"loss": {result.preset: [float(x) for x in result.loss_history]},
            "title": f"{result.song.title}: training loss", "path": str(folder / "loss.png")}  # fmt: skip
    rolls = [
        {"roll": [truth, song_to_json(result.prediction_song(name))], "given": len(result.full_song.primer),
         "title": f"{result.preset}: {name.replace('_', '-')} prediction", "path": str(folder / f"{name}_roll.png")}
        for name in ("one_step", "full_song")
    ]  # fmt: skip
    files = [job for name in ("one_step", "full_song")
             for job in song_jobs(result.prediction_song(name), folder, name=name, audio=audio)]  # fmt: skip
    return [[loss, rolls[0]], [rolls[1], *files]]


def _write_song(song, path: Path) -> None:
    from nabiya.music.formats import write_song

    write_song(song, path)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def html_summary(results: list["RunResult"]) -> str:
    """A small HTML table of runs, for Jupyter."""
    rows = []
    for r in results:
        rows.append(
            "<tr>"
            f"<td>{r.preset}</td><td>{r.accuracy:.0%}</td>"
            f"<td>{r.one_step.matches}/{len(r.one_step.notes)}</td>"
            f"<td>{r.full_song.matches}/{len(r.full_song.notes)}</td>"
            f"<td>{r.full_song.describe_first_mismatch()}</td>"
            f"<td>{r.epochs_to_perfect or '—'}</td><td>{r.train_seconds:.2f} s</td>"
            "</tr>"
        )
    header = (
        "<tr><th>preset</th><th>accuracy</th><th>one-step</th><th>full song</th>"
        "<th>first full-song mismatch</th><th>epoch at 100%</th><th>training</th></tr>"
    )
    return f"<table>{header}{''.join(rows)}</table>"
