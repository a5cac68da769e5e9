"""The tutorial in one call: train a preset on a song, predict, and show what it learned.

This is the notebook API; the CLI is a thin layer over it::

    import nabiya
    result = nabiya.run("stateful2")        # ~seconds: 2000 epochs on 나비야
    result.accuracy, result.full_song.matches
    result.plot_loss()
    result.play("full_song")                # plays inline in Jupyter
    result.write("runs/mine")               # summary.json, loss.png, MIDI, WAV, ...

Data flows one way: song -> vocabulary -> token windows -> model (which reads its tokens
through its feature encoding) -> predicted token indices -> notes -> song.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nabiya.config import PRESETS, RunConfig, preset as get_preset
from nabiya.data import Windows, count_classes, make_windows
from nabiya.encoding import Vocabulary
from nabiya.errors import NabiyaError
from nabiya.music.note import Note
from nabiya.music.song import Song


@dataclass(frozen=True)
class Prediction:
    """A predicted continuation compared with the true song.

    Attributes:
        notes: the predicted notes (for 나비야, 50: one per window).
        truth: the true notes at the same places.
        primer: the notes given before the first prediction (the song's first window).
    """

    notes: tuple[Note, ...]
    truth: tuple[Note, ...]
    primer: tuple[Note, ...]

    @property
    def matches(self) -> int:
        """How many predicted notes equal the true note at the same place."""
        return sum(p.token == t.token for p, t in zip(self.notes, self.truth))

    @property
    def first_mismatch(self) -> int | None:
        """The 0-based index (into ``notes``) of the first wrong note, or ``None``."""
        for index, (p, t) in enumerate(zip(self.notes, self.truth)):
            if p.token != t.token:
                return index
        return None

    @property
    def codes(self) -> list[str]:
        return [note.code for note in self.notes]

    @property
    def wrong(self) -> list[int]:
        """0-based indices of every wrong note."""
        return [i for i, (p, t) in enumerate(zip(self.notes, self.truth)) if p.token != t.token]

    def describe_first_mismatch(self) -> str:
        index = self.first_mismatch
        if index is None:
            return "none"
        note_number = len(self.primer) + index + 1
        return f"note {note_number}: {self.notes[index].code} instead of {self.truth[index].code}"

    def to_json(self) -> dict:
        index = self.first_mismatch
        return {
            "notes": self.codes,
            "matches": self.matches,
            "total": len(self.notes),
            # 1-based note number in the song (primer included), null when all match.
            "first_mismatch_note": None if index is None else len(self.primer) + index + 1,
        }


@dataclass(frozen=True)
class RunResult:
    """Everything a run produced. Attributes hold arrays and notes; methods show them.

    Attributes:
        config: the full run config.
        song: the training song.
        vocabulary: the token numbering the model uses.
        model: the trained Equinox model.
        loss_history, accuracy_history: per epoch, shape ``(epochs,)``.
        accuracy: training accuracy of the trained model (the tutorial's ``evaluate``).
        one_step: the true windows in, the next note out, along the song.
        full_song: only the first window given, the model continuing from its own output.
        train_seconds: wall time of training, compilation included.
    """

    config: RunConfig
    song: Song
    vocabulary: Vocabulary
    model: object
    loss_history: np.ndarray
    accuracy_history: np.ndarray
    accuracy: float
    one_step: Prediction
    full_song: Prediction
    train_seconds: float
    created: str = field(default_factory=lambda: _dt.datetime.now().isoformat(timespec="seconds"))

    @property
    def preset(self) -> str:
        return self.config.preset

    @property
    def epochs_to_perfect(self) -> int | None:
        """The first epoch (1-based) whose training accuracy reached 100%, or ``None``."""
        reached = np.flatnonzero(self.accuracy_history >= 1.0)
        return int(reached[0]) + 1 if reached.size else None

    def summary(self) -> dict:
        """The run as plain JSON-able data (what ``summary.json`` holds)."""
        return {
            "preset": self.config.preset,
            "song": {"title": self.song.title, "notes": self.song.codes, "tempo_bpm": self.song.tempo_bpm},
            "seed": self.config.seed,
            "epochs": self.config.train.epochs,
            "accuracy": self.accuracy,
            "epochs_to_100_percent": self.epochs_to_perfect,
            "one_step": self.one_step.to_json(),
            "full_song": self.full_song.to_json(),
            "loss_history": [float(x) for x in self.loss_history],
            "accuracy_history": [float(x) for x in self.accuracy_history],
            "train_seconds": round(self.train_seconds, 3),
            "vocabulary": self.vocabulary.to_json(),
            "config": self.config.to_json(),
            "created": self.created,
        }

    def prediction_song(self, which: str) -> Song:
        """A prediction as a whole song (primer + predicted notes), or the original (``'song'``)."""
        if which == "song":
            return self.song
        prediction = self._prediction(which)
        return self.song.with_notes(prediction.primer + prediction.notes, title=f"{self.song.title} ({which})")

    def plot_loss(self, ax=None):
        """The loss curve (and returns the matplotlib Figure, which Jupyter shows)."""
        from nabiya.plots import plot_loss

        return plot_loss({self.config.preset: self.loss_history}, title=f"{self.song.title}: training loss", ax=ax)

    def play(self, which: str = "full_song"):
        """An audio player for ``'song'``, ``'one_step'`` or ``'full_song'`` (IPython's Audio).

        Outside IPython, returns the WAV bytes instead.
        """
        from nabiya.music.audio import wav_bytes

        data = wav_bytes(self.prediction_song(which))
        try:
            from IPython.display import Audio
        except ImportError:
            return data
        return Audio(data=data)

    def write(self, out: str | Path, *, song_files: Path | None = None) -> Path:
        """Write the run folder: summary.json, loss.png, and each song as MIDI and WAV.

        See :func:`nabiya.report.write_run` for the full list (and ``song_files``).
        """
        from nabiya.report import write_run

        return write_run(self, out, song_files=song_files)

    def save(self, path: str | Path) -> Path:
        """Save the trained model, its config, vocabulary and summary in one safe file."""
        from nabiya.checkpoint import save_model

        save_model(
            path,
            self.model,
            config=self.config,
            vocabulary=self.vocabulary,
            song=self.song,
            summary={k: v for k, v in self.summary().items() if k not in ("config", "vocabulary", "song")},
        )
        return Path(path)

    def _prediction(self, which: str) -> Prediction:
        if which == "one_step":
            return self.one_step
        if which == "full_song":
            return self.full_song
        raise NabiyaError(f"unknown prediction {which!r}: choose 'song', 'one_step' or 'full_song'")

    def __repr__(self) -> str:
        return (
            f"RunResult(preset={self.config.preset!r}, song={self.song.title!r}, accuracy={self.accuracy:.0%}, "
            f"one_step={self.one_step.matches}/{len(self.one_step.notes)}, "
            f"full_song={self.full_song.matches}/{len(self.full_song.notes)}, train_seconds={self.train_seconds:.2f})"
        )

    def _repr_html_(self) -> str:
        from nabiya.report import html_summary

        return html_summary([self])


SONG_FILE_SUFFIXES = (".abc", ".mid", ".midi", ".musicxml", ".xml", ".mxl", ".txt", ".notes", ".jsonl")


def resolve_song(song: Song | str | Sequence[str] | None) -> Song:
    """A Song from a Song, a built-in song's name, a file path, or note codes.

    ``None`` is 나비야. A string is a built-in song's name if it is one, else a file
    path if such a file exists, else note codes (``"g8 e8 e4 f8 d8"``).
    """
    from nabiya.music import songs

    if song is None:
        return songs.nabiya()
    if isinstance(song, Song):
        return song
    if isinstance(song, (str, Path)):
        text = str(song)
        try:
            return songs.get_song(text)  # a built-in song's short name or title
        except NabiyaError:
            pass
        if Path(text).exists() or Path(text).suffix.lower() in SONG_FILE_SUFFIXES:
            from nabiya.music.formats import read_song

            return read_song(text)
        return Song.from_codes(text)
    return Song.from_codes(list(song))


def run(
    preset: str | RunConfig = "stateful2",
    *,
    song: Song | str | Sequence[str] | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    progress: bool | Callable[[int, int, float, float], None] = True,
) -> RunResult:
    """Train a model on a song, then predict one step at a time and the full song.

    Args:
        preset: ``'mlp'``, ``'lstm'``, ``'stateful'``, ``'stateful2'`` (default), or a RunConfig.
        song: the melody to learn (default 나비야): a Song, a built-in song's name, a file, or note codes.
        epochs: overrides the preset's 2000.
        seed: overrides the preset's seed 5.
        out: when given, the run folder is written there (see :meth:`RunResult.write`).
        progress: show a progress bar (``True``), nothing (``False``), or call a function
            ``f(epochs_done, epochs_total, loss, accuracy)`` after each block of epochs.

    Returns:
        The :class:`RunResult`.

    Example:
        >>> result = run("stateful2", progress=False)          # doctest: +SKIP
        >>> result.full_song.matches                            # doctest: +SKIP
        50
    """
    config = get_preset(preset) if isinstance(preset, str) else preset
    config = config.replace(epochs=epochs, seed=seed)
    song = resolve_song(song)
    data = prepare(config, song)  # bad songs fail here, before any training or output
    if out is not None:
        from nabiya.fileio import ensure_directory

        ensure_directory(out)  # fail before training, not after
    # While training runs (JAX releases the GIL), a thread writes what does not depend on it.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="nabiya-meanwhile") as meanwhile:
        song_files = None
        if out is not None:
            from nabiya.report import render_song_files

            song_files = meanwhile.submit(render_song_files, song)
        if progress is True:
            from nabiya.progress import training_progress

            with training_progress(f"{config.preset} · {song.title or 'song'}", config.train.epochs) as report:
                result = _train_and_predict(config, song, data, report, meanwhile)
        else:
            result = _train_and_predict(config, song, data, progress or None, meanwhile)
        if out is not None:
            with song_files.result() as rendered:
                result.write(out, song_files=rendered)
    return result


@dataclass(frozen=True)
class PreparedSong:
    """A song as a model sees it: vocabulary, token indices, windows, and the model's feature table."""

    vocabulary: Vocabulary
    indices: np.ndarray  # (n_notes,) int32
    windows: Windows  # inputs (n_samples, window) and targets (n_samples,), token indices
    feature_table: np.ndarray  # (vocab_size, n_features) float32: the config's encoding
    n_classes: int


def prepare(config: RunConfig, song: Song) -> PreparedSong:
    """Encode a song for a run config. Raises NabiyaError for songs that cannot be trained on."""
    source = song.title or "the song"
    vocabulary = Vocabulary.for_notes(song.notes)
    indices = vocabulary.encode(song.notes, source=source)
    windows = make_windows(indices, config.window, source=source)
    feature_table = vocabulary.feature_table(config.model.features)
    return PreparedSong(vocabulary, indices, windows, feature_table, count_classes(windows))


def _train_and_predict(config: RunConfig, song: Song, data: PreparedSong, on_progress, meanwhile=None) -> RunResult:
    from nabiya.train import train

    model, train_key = build_model(config, data)
    windows = data.windows
    # The prediction programs compile (or load from the cache) while training runs: the
    # untrained model has the trained one's shapes, and a program depends only on those.
    compiled = meanwhile.submit(evaluate_training, config, song, data, _Untrained(model)) if meanwhile else None
    trained = train(model, windows.inputs, windows.targets, config.train, key=train_key, on_progress=on_progress)
    if compiled is not None:
        compiled.result()
    return evaluate_training(config, song, data, trained)


@dataclass(frozen=True)
class _Untrained:
    """A model dressed as a finished training, to compile the prediction programs ahead."""

    model: object
    loss_history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    accuracy_history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0


def build_model(config: RunConfig, data: PreparedSong):
    """The run's untrained model and its training key, both split from ``config.seed``."""
    import jax

    from nabiya.models import make_model

    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    model = make_model(config.model, feature_table=data.feature_table, window=config.window,
                       n_classes=data.n_classes, key=init_key)  # fmt: skip
    return model, train_key


def evaluate_training(config: RunConfig, song: Song, data: PreparedSong, trained) -> RunResult:
    """The :class:`RunResult` of a finished training (a :class:`nabiya.train.TrainResult`): both predictions."""
    from nabiya.generate import continue_greedy, predict_windows

    windows = data.windows
    one_step_indices = predict_windows(trained.model, windows.inputs).argmax(axis=-1)
    full_song_indices = continue_greedy(trained.model, windows.inputs[0], len(windows))
    truth = song.notes[config.window :]
    primer = song.notes[: config.window]
    return RunResult(
        config=config,
        song=song,
        vocabulary=data.vocabulary,
        model=trained.model,
        loss_history=trained.loss_history,
        accuracy_history=trained.accuracy_history,
        accuracy=float(np.mean(one_step_indices == windows.targets)),
        one_step=Prediction(data.vocabulary.decode(one_step_indices), truth, primer),
        full_song=Prediction(data.vocabulary.decode(full_song_indices), truth, primer),
        train_seconds=trained.seconds,
    )


@dataclass(frozen=True)
class Comparison:
    """The four presets side by side: the tutorial's whole story."""

    results: tuple[RunResult, ...]

    def table(self) -> list[dict]:
        """One row per preset: accuracy, one-step and full-song matches, epochs to 100%, seconds."""
        return [
            {
                "preset": r.preset,
                "accuracy": r.accuracy,
                "one_step": f"{r.one_step.matches}/{len(r.one_step.notes)}",
                "full_song": f"{r.full_song.matches}/{len(r.full_song.notes)}",
                "epochs_to_100_percent": r.epochs_to_perfect,
                "train_seconds": round(r.train_seconds, 2),
            }
            for r in self.results
        ]

    def plot_loss(self, ax=None):
        from nabiya.plots import plot_loss

        title = f"{self.results[0].song.title}: training loss" if self.results else "training loss"
        return plot_loss({r.preset: r.loss_history for r in self.results}, title=title, ax=ax)

    def write(self, out: str | Path) -> Path:
        """Write ``comparison.json``, ``loss.png`` (four curves) and each preset's run folder."""
        from nabiya.report import write_comparison

        return write_comparison(self, out)

    def __getitem__(self, preset: str) -> RunResult:
        for result in self.results:
            if result.preset == preset:
                return result
        raise KeyError(preset)

    def _repr_html_(self) -> str:
        from nabiya.report import html_summary

        return html_summary(list(self.results))


def compare(
    presets: Sequence[str] = tuple(PRESETS),
    *,
    song: Song | str | Sequence[str] | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> Comparison:
    """Train each preset on the same song and put the results side by side.

    Example:
        >>> comparison = compare(progress=False)               # doctest: +SKIP
        >>> [row["accuracy"] for row in comparison.table()]     # doctest: +SKIP
        [0.92, 0.88, 1.0, 1.0]
    """
    configs = [get_preset(name) for name in presets]
    song = resolve_song(song)
    if out is not None:
        from nabiya.fileio import ensure_directory

        ensure_directory(out)
    results = tuple(run(config, song=song, epochs=epochs, seed=seed, progress=progress) for config in configs)
    comparison = Comparison(results)
    if out is not None:
        comparison.write(out)
    return comparison


def default_run_folder(name: str, root: str | Path = "runs") -> Path:
    """A new folder under ``root`` named by time and preset, e.g. ``runs/2026-11-22_173012_stateful2``."""
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    folder = Path(root) / f"{stamp}_{name}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = Path(root) / f"{stamp}_{name}-{suffix}"
    return folder
