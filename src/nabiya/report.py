"""Run folders: what a run leaves on disk for a person to read, hear and look at.

A run folder holds:

- ``summary.json``: preset, seed, epochs, accuracy, the one-step and full-song
  predictions (notes, matches, first mismatch), the loss and accuracy histories,
  training seconds, the vocabulary and the full config;
- ``loss.png``: the loss curve;
- ``song.*``, ``one_step.*``, ``full_song.*``: the original and both predictions (the
  primer followed by the predicted notes) as MIDI, WAV, ABC, MusicXML and SVG sheet music;
- ``one_step_roll.png``, ``full_song_roll.png``: piano rolls of each prediction against
  the song, wrong notes marked.

The folder is assembled under a temporary name beside it and renamed into place, so a
failure never leaves a half-written run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from nabiya.fileio import staged_folder

if TYPE_CHECKING:
    from nabiya.experiment import Comparison, RunResult

SONGS = ("song", "one_step", "full_song")
# Formats written for each song; the first two are what a person needs to listen.
SONG_FORMATS = (".mid", ".wav", ".abc", ".musicxml", ".svg")


def write_run(result: "RunResult", out: str | Path, *, song_files: Path | None = None) -> Path:
    """Write ``result``'s run folder at ``out`` (created if missing). Returns the folder.

    ``song_files``: a folder where :func:`render_song_files` already wrote the song's own
    files (``song.*``), which are then moved in rather than written again.
    """
    with staged_folder(out) as staging:
        _write_run_files(result, staging, song_files)
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

    def __init__(self, song):
        import io
        import tempfile

        from nabiya.plots import _pyplot

        self._folder = tempfile.TemporaryDirectory(prefix="nabiya-song-")
        for suffix in SONG_FORMATS:
            _write_song(song, Path(self._folder.name) / f"song{suffix}")
        plt = _pyplot()  # the first figure loads matplotlib's fonts: ~0.5 s
        figure = plt.figure(figsize=(1, 1))
        figure.savefig(io.BytesIO(), format="png")
        plt.close(figure)

    def __enter__(self) -> Path:
        return Path(self._folder.name)

    def __exit__(self, *exception) -> None:
        self._folder.cleanup()


def write_comparison(comparison: "Comparison", out: str | Path) -> Path:
    """Write ``comparison.json``, ``loss.png`` with every preset's curve, and one run folder per preset."""
    from nabiya.plots import save_figure

    with staged_folder(out) as staging:
        _write_json(staging / "comparison.json", {"presets": comparison.table()})
        save_figure(comparison.plot_loss(), staging / "loss.png")
        for result in comparison.results:
            folder = staging / result.preset
            folder.mkdir()
            _write_run_files(result, folder)
    return Path(out)


def write_songs(songs: dict, out: str | Path) -> list[Path]:
    """Write each named song in every format (``NAME.mid``, ``NAME.wav``, ...) into ``out``."""
    with staged_folder(out) as staging:
        for name, song in songs.items():
            for suffix in SONG_FORMATS:
                _write_song(song, staging / f"{name}{suffix}")
        written = sorted(path.name for path in staging.iterdir())
    return [Path(out) / name for name in written]


def _write_run_files(result: "RunResult", folder: Path, song_files: Path | None = None) -> None:
    import shutil

    from nabiya.plots import save_figure

    _write_json(folder / "summary.json", result.summary())
    save_figure(result.plot_loss(), folder / "loss.png")
    for name in SONGS:
        song = result.prediction_song(name)
        for suffix in SONG_FORMATS:
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
        figure = plot_piano_roll(result.song, prediction, title=f"{result.preset}: {name.replace('_', '-')} prediction")
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
