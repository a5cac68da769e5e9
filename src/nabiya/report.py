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
    result: "RunResult", out: str | Path, *, force: bool = False, audio: bool = True, song_files: Path | None = None
) -> Path:
    """Write ``result``'s run folder at ``out``, whole or not at all. Returns the folder.

    Args:
        force: replace an earlier run folder (never a folder holding other files).
        audio: write WAV files; songs longer than ``MAX_AUDIO_SECONDS`` get none anyway.
        song_files: a folder where :func:`render_song_files` already wrote the song's own
            files (``song.*``), which are then moved in rather than written again.
    """
    with staged_folder(out, force=force, what="run folder") as staging:
        _write_run_files(result, staging, audio=audio, song_files=song_files)
    return Path(out)


class render_song_files:
    """Write a song's own files (``song.mid``, ``.wav``, ...) into a temporary folder, and warm up plotting.

    What a run folder holds that does not depend on training, so a run writes it while
    training runs (see :func:`nabiya.experiment.run`). A context manager over the folder:
    it is removed on exit, with whatever :func:`write_run` did not move out of it.

    Example:
        >>> with render_song_files(song) as folder:              # doctest: +SKIP
        ...     write_run(result, "runs/mine", song_files=folder)
    """

    def __init__(self, song, *, audio: bool = True):
        import io
        import tempfile

        from nabiya.plots import _pyplot

        self._folder = tempfile.TemporaryDirectory(prefix="nabiya-song-")
        for suffix in song_formats(song, audio=audio):
            _write_song(song, Path(self._folder.name) / f"song{suffix}")
        plt = _pyplot()  # the first figure loads matplotlib's fonts: ~0.5 s
        figure = plt.figure(figsize=(1, 1))
        figure.savefig(io.BytesIO(), format="png")
        plt.close(figure)

    def __enter__(self) -> Path:
        return Path(self._folder.name)

    def __exit__(self, *exception) -> None:
        self._folder.cleanup()


def write_comparison(comparison: "Comparison", out: str | Path, *, force: bool = False, audio: bool = True) -> Path:
    """Write ``comparison.json``, ``loss.png`` (every preset's loss and accuracy), and one run folder per preset."""
    from nabiya.plots import save_figure

    with staged_folder(out, force=force, what="comparison folder") as staging:
        rows = [{k: v for k, v in row.items() if k != "train_seconds"} for row in comparison.table().rows]
        _write_json(staging / "comparison.json", {"presets": rows})
        save_figure(comparison.plot(), staging / "loss.png")  # loss and accuracy, with the ceiling
        for result in comparison.results:
            folder = staging / result.preset
            folder.mkdir()
            _write_run_files(result, folder, audio=audio)
    return Path(out)


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
    result: "RunResult", folder: Path, *, audio: bool = True, song_files: Path | None = None
) -> None:
    import shutil

    from nabiya.plots import save_figure

    _write_json(folder / "summary.json", result.summary())
    save_figure(result.plot_loss(), folder / "loss.png")
    for name in SONGS:
        song = result.prediction_song(name)
        for suffix in song_formats(song, audio=audio):
            if name == "song" and song_files is not None:
                shutil.move(song_files / f"song{suffix}", folder / f"song{suffix}")
            else:
                _write_song(song, folder / f"{name}{suffix}")
    _write_piano_rolls(result, folder)


def _write_song(song, path: Path) -> None:
    from nabiya.music.formats import write_song

    write_song(song, path)


def _write_piano_rolls(result: "RunResult", folder: Path) -> None:
    from nabiya.plots import plot_piano_roll, save_figure

    for name in ("one_step", "full_song"):
        prediction = result.prediction_song(name)
        figure = plot_piano_roll(result.song, prediction, title=f"{result.preset}: {name.replace('_', '-')} prediction",
                                 given=len(result.full_song.primer))  # fmt: skip
        save_figure(figure, folder / f"{name}_roll.png")


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
