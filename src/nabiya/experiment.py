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

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from nabiya.config import PRESETS, RunConfig, preset as get_preset
from nabiya.data import Windows, count_classes, make_windows
from nabiya.encoding import Vocabulary
from nabiya.errors import NabiyaError
from nabiya.music.note import Note
from nabiya.music.song import Song

if TYPE_CHECKING:
    from nabiya.memory import TrainingChoice
    from nabiya.report import Table


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


# How each prediction is made, in words: the titles of its sheet music and files.
PREDICTION_TITLES = {"one_step": "one step at a time", "full_song": "the whole song from its first notes"}


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
        train_seconds: wall time of training, compilation included (printed, and kept
            here, but not written to the run folder, which the same run always writes
            byte for byte the same).
        training_choice: for :func:`run`, the :class:`~nabiya.memory.TrainingChoice`: whether the
            song's analysis changed the preset's training setting, and why.
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
    training_choice: "TrainingChoice | None" = None

    @property
    def preset(self) -> str:
        return self.config.preset

    @property
    def epochs_to_perfect(self) -> int | None:
        """The first epoch (1-based) whose training accuracy reached 100%, or ``None``."""
        reached = np.flatnonzero(self.accuracy_history >= 1.0)
        return int(reached[0]) + 1 if reached.size else None

    @property
    def epochs_trained(self) -> int:
        """The epochs trained: the config's, or fewer where a chosen setting stopped once memorised."""
        return len(self.loss_history)

    @property
    def stopped_early(self) -> bool:
        """Whether training ended before the config's epochs (a chosen setting's song memorised)."""
        return self.epochs_trained < self.config.train.epochs

    @property
    def lost_perfect(self) -> bool:
        """Whether training reached 100% at some epoch but the trained model is below it.

        Adam can step away from a perfect fit (see the README's note on loss spikes), so
        the last epoch's model is not always the best one seen.
        """
        return self.epochs_to_perfect is not None and self.accuracy < 1.0

    def summary(self) -> dict:
        """The run as plain JSON-able data (what ``summary.json`` holds).

        Only what the run computed: the same run gives the same summary, byte for byte
        (timings and dates are printed, never written into the folder).
        """
        return {
            "preset": self.config.preset,
            "song": {"title": self.song.title, "notes": self.song.codes, "tempo_bpm": self.song.tempo_bpm},
            "seed": self.config.seed,
            "epochs": self.config.train.epochs,
            **({"epochs_trained": self.epochs_trained} if self.stopped_early else {}),
            "accuracy": self.accuracy,
            "epochs_to_100_percent": self.epochs_to_perfect,
            "final_accuracy_below_earlier_100_percent": self.lost_perfect,
            "one_step": self.one_step.to_json(),
            "full_song": self.full_song.to_json(),
            "loss_history": [float(x) for x in self.loss_history],
            "accuracy_history": [float(x) for x in self.accuracy_history],
            "vocabulary": self.vocabulary.to_json(),
            "config": self.config.to_json(),
            **({"training_choice": self.training_choice.to_json()} if self.training_choice else {}),
        }

    def prediction_song(self, which: str) -> Song:
        """A prediction as a whole song (primer + predicted notes), or the original (``'song'``).

        Its title says whose prediction, of what, and how, as its sheet music shows it:
        ``'나비야 (Butterfly): stateful2, one step at a time'``.
        """
        if which == "song":
            return self.song
        prediction = self._prediction(which)
        title = f"{self.song.title or 'the melody'}: {self.config.preset}, {PREDICTION_TITLES[which]}"
        return self.song.with_notes(prediction.primer + prediction.notes, title=title)

    def plot_loss(self, ax=None):
        """The loss curve: a matplotlib Figure, which Jupyter shows once (as the cell's value)."""
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

    def write(self, out: str | Path, *, force: bool = False, audio: bool = True, song_files: Path | None = None,
              helpers=None) -> Path:
        """Write the run folder: summary.json, loss.png, and each song as MIDI, WAV and more.

        The folder appears whole or not at all. ``force`` replaces an earlier run folder
        (never a folder holding other files); ``audio=False`` leaves out the WAV files.
        See :func:`nabiya.report.write_run` for the full list (and ``song_files``, ``helpers``).
        """
        from nabiya.report import write_run

        return write_run(self, out, force=force, audio=audio, song_files=song_files, helpers=helpers)

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


def resolve_song(song: Song | str | Path | Sequence[str] | None, *, tune: str | int | None = None) -> Song:
    """A Song from a Song, a built-in song's name, a file path, or note codes (``None``: 나비야).

    The same as :func:`nabiya.music.sources.song_from_source`, which tells them apart.
    """
    from nabiya.music.sources import song_from_source

    return song_from_source(song, tune=tune)


def run(
    preset: str | RunConfig = "stateful2",
    *,
    song: Song | str | Sequence[str] | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    force: bool = False,
    audio: bool = True,
    progress: bool | Callable[[int, int, float, float], None] = True,
    backprop_windows: int | None = None,
) -> RunResult:
    """Train a model on a song, then predict one step at a time and the full song.

    A stateful preset on a song that needs more memory than one window per step trains
    (verdict ``'beyond'``, see :func:`analyze`) backpropagates through several windows per
    step instead, chosen before training (see :mod:`nabiya.memory`); the choice and its
    reason are printed with the progress bar and kept in ``result.training_choice``.
    ``backprop_windows`` overrides it. The tutorial's songs train as the tutorial did.

    Args:
        preset: ``'mlp'``, ``'lstm'``, ``'stateful'``, ``'stateful2'`` (default), or a RunConfig.
        song: the melody to learn (default 나비야): a Song, a built-in song's name, a file, or note codes.
        epochs: overrides the preset's 2000 (and keeps them when the song's analysis chooses
            another setting, which otherwise trains for twice the config's epochs).
        seed: overrides the preset's seed 5.
        out: when given, the run folder is written there (see :meth:`RunResult.write`);
            it is checked before training and appears only when the run succeeded.
        force: replace an earlier run folder at ``out``.
        audio: write WAV files (``False``: leave them out).
        progress: show a progress bar (``True``), nothing (``False``), or call a function
            ``f(epochs_done, epochs_total, loss, accuracy)`` after each block of epochs.
        backprop_windows: train a stateful preset through this many windows per Adam step
            (``1``: the tutorial's one window, whatever the song); default: chosen from the song.

    Returns:
        The :class:`RunResult`.

    Example:
        >>> result = run("stateful2", progress=False)          # doctest: +SKIP
        >>> result.full_song.matches                            # doctest: +SKIP
        50
    """
    config = get_preset(preset) if isinstance(preset, str) else preset
    if not isinstance(config, RunConfig):
        raise NabiyaError(f"a preset is a preset's name or a RunConfig, not {type(config).__name__}")
    config = config.replace(epochs=epochs, seed=seed)
    song = resolve_song(song)
    data = prepare(config, song)  # bad songs fail here, before any training or output
    from nabiya.memory import choose_training

    choice = choose_training(config, song.notes, backprop_windows=backprop_windows, epochs_given=epochs is not None,
                             title=song.title)  # fmt: skip
    config = choice.config
    if out is not None:
        from nabiya.fileio import check_output_folder

        check_output_folder(out, force=force, what="run folder")  # fail before training; create nothing
    if choice.reason and progress is True:
        print(choice.reason, flush=True)
    import contextlib

    with contextlib.ExitStack() as stack:
        song_files = Path(stack.enter_context(_temporary_folder())) if out is not None else None
        helpers = []

        def while_training() -> None:
            # What does not depend on training starts once it runs, on the other core: helper
            # processes write the song's own files (see nabiya.rendering). Not before: they would
            # compete for the CPU with importing JAX, building the model and tracing its programs.
            if out is not None:
                from nabiya.rendering import Helpers
                from nabiya.report import song_jobs

                helpers.append(stack.enter_context(Helpers(2)))  # stopped before song_files is removed
                helpers[0].send(0, song_jobs(song, song_files, audio=audio) + [{"warm": True}])
                helpers[0].send(1, [{"warm": True}])

        if progress is True:
            from nabiya.progress import training_progress

            reporting = training_progress(f"{config.preset} · {song.title or 'song'}", config.train.epochs)
        else:
            reporting = contextlib.nullcontext(progress or None)
        with reporting as report:
            result = _train_and_predict(config, song, data, report, while_training,
                                        stop_when_memorised=choice.stops_when_memorised)  # fmt: skip
        result = dataclasses.replace(result, training_choice=choice)
        if out is not None:
            result.write(out, force=force, audio=audio, song_files=song_files, helpers=helpers[0])
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


def _temporary_folder():
    import tempfile

    return tempfile.TemporaryDirectory(prefix="nabiya-song-")


def _train_and_predict(config: RunConfig, song: Song, data: PreparedSong, on_progress,
                       while_training: Callable[[], None] | None = None, *,
                       stop_when_memorised: bool = False) -> RunResult:  # fmt: skip
    """Build, train and predict; ``while_training()`` is called once, as soon as training runs.

    That is when the first block of epochs has run (its progress report), or after training
    when it had only one block: from then on Python's lock and the second core are free.
    ``stop_when_memorised``: end the training after the first block whose model predicts
    every window right (see :func:`memorised_stop`).
    """
    from concurrent.futures import ThreadPoolExecutor

    from nabiya.training import train

    model, train_key = build_model(config, data)
    windows = data.windows
    started = []

    def start(meanwhile: ThreadPoolExecutor) -> None:
        # The prediction programs compile (or load from the cache) while training runs: the
        # untrained model has the trained one's shapes, and a program depends only on those.
        started.append(meanwhile.submit(evaluate_training, config, song, data, _Untrained(model)))
        if while_training is not None:
            while_training()

    with ThreadPoolExecutor(1, thread_name_prefix="nabiya-meanwhile") as meanwhile:

        def progress(done: int, total: int, loss: float, accuracy: float) -> None:
            if not started and done < total:
                start(meanwhile)
            if on_progress is not None:
                on_progress(done, total, loss, accuracy)

        trained = train(model, windows.inputs, windows.targets, config.train, key=train_key, on_progress=progress,
                        stop=memorised_stop(data) if stop_when_memorised else None)  # fmt: skip
        if not started and while_training is not None:
            while_training()
        for compiled in started:
            compiled.result()
    return evaluate_training(config, song, data, trained)


def memorised_stop(data: PreparedSong) -> Callable[[object, float], bool]:
    """The stop rule of a chosen setting: the model so far predicts every window of the song right.

    Checked after every block with the block's final weights, as the one-step prediction checks
    (a few milliseconds; the accuracy training measured while its weights moved can miss a
    memorised model, or see one that is not). A stateful model that predicts every window right
    from the song's own windows also replays the whole song from its first window: each note it
    feeds back is the song's, so it goes through the same states.
    """
    from nabiya.generation import predict_windows

    inputs, targets = data.windows.inputs, data.windows.targets

    def memorised(model, accuracy: float) -> bool:
        return bool(np.all(predict_windows(model, inputs).argmax(axis=-1) == targets))

    return memorised


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
    """The :class:`RunResult` of a finished training (a :class:`nabiya.training.TrainResult`): both predictions."""
    from nabiya.generation import continue_greedy, predict_windows

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

    def table(self) -> "Table":
        """One row per preset: accuracy, one-step and full-song matches, epochs to 100%, seconds.

        A :class:`~nabiya.report.Table`: Jupyter shows it as an HTML table, ``print`` as
        text, and ``.rows`` holds the data (one dict per preset).

        Example:
            >>> comparison.table().rows[0]["preset"]                    # doctest: +SKIP
            'mlp'
        """
        from nabiya.report import Table

        rows = [
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
        title = f"{self.results[0].song.title}: the models side by side" if self.results else ""
        return Table(rows, title=title)

    def plot_loss(self, ax=None):
        from nabiya.plots import plot_loss

        title = f"{self.results[0].song.title}: training loss" if self.results else "training loss"
        return plot_loss({r.preset: r.loss_history for r in self.results}, title=title, ax=ax)

    def ceilings(self) -> dict[str, float]:
        """``{label: ceiling}`` for the presets that cannot reach 100% by construction (see :func:`analyze`).

        For the tutorial on 나비야: ``{'mlp, lstm: a 4-note window, at most 92%': 0.92}``.
        """
        from nabiya.analysis import assess_preset

        names: dict[tuple[int, float], list[str]] = {}
        for r in self.results:
            verdict = assess_preset(r.song.notes, r.config)
            if not verdict.can_reach_100:
                names.setdefault((verdict.window, verdict.ceiling), []).append(r.preset)
        return {f"{', '.join(presets)}: a {window}-note window, at most {ceiling:.0%}": ceiling
                for (window, ceiling), presets in names.items()}

    def plot(self):
        """Loss and training accuracy side by side; the accuracy panel draws each window-only ceiling dashed."""
        from nabiya.plots import plot_training

        return plot_training({r.preset: r.loss_history for r in self.results},
                             {r.preset: r.accuracy_history for r in self.results}, ceilings=self.ceilings(),
                             title=self.results[0].song.title if self.results else "")

    def write(self, out: str | Path, *, force: bool = False, audio: bool = True) -> Path:
        """Write ``comparison.json``, ``loss.png`` (loss and accuracy curves) and each preset's run folder."""
        from nabiya.report import write_comparison

        return write_comparison(self, out, force=force, audio=audio)

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
    force: bool = False,
    audio: bool = True,
    progress: bool = True,
) -> Comparison:
    """Train each preset on the same song and put the results side by side.

    Every preset, the song and ``out`` are checked before the first training starts.

    Example:
        >>> comparison = compare(progress=False)                    # doctest: +SKIP
        >>> [row["accuracy"] for row in comparison.table().rows]    # doctest: +SKIP
        [0.92, 0.88, 1.0, 1.0]
    """
    if isinstance(presets, str):
        presets = (presets,)
    configs = [get_preset(name).replace(epochs=epochs, seed=seed) for name in presets]
    song = resolve_song(song)
    for config in configs:
        prepare(config, song)
    if out is not None:
        from nabiya.fileio import check_output_folder

        check_output_folder(out, force=force, what="comparison folder")
    if out is None:
        return Comparison(tuple(run(config, song=song, epochs=epochs, progress=progress) for config in configs))
    from nabiya.report import ComparisonWriter

    # Each preset's run folder is written (by helper processes) while the next preset trains.
    with ComparisonWriter(out, force=force, audio=audio) as writer:
        results = []
        for config in configs:
            results.append(run(config, song=song, epochs=epochs, progress=progress))
            writer.add(results[-1])
        comparison = Comparison(tuple(results))
        writer.finish(comparison)
    return comparison


def analyze(song: Song | str | Sequence[str] | None = None, *, max_window: int | None = None):
    """Why a window is not enough: a song's ambiguous windows, ceilings and the memory it needs.

    For each window size ``1 … max_window``: the windows that occur with more than one
    continuation (where, and followed by what), the highest accuracy a model that sees
    only the window can reach, and how far back a stateful model must remember to tell
    every place apart; and the smallest window that makes every continuation unique. See
    :mod:`nabiya.analysis` for the definitions.

    Args:
        song: as for :func:`run`: a Song, a built-in song's name, a file, or note codes
            (default 나비야). For one tune of a multi-tune ABC file, pass
            ``nabiya.read_song(path, tune=...)``.
        max_window: the largest window reported (default: the smallest unique window, at
            least 8).

    Returns:
        A :class:`~nabiya.analysis.SongAnalysis`; ``.at(4)`` is one window's report,
        ``.assess(4, stateful=False)`` says whether such a model can reach 100%, ``.plot()``
        draws the ceiling against the window size.

    Example:
        >>> analysis = analyze("nabiya")
        >>> window = analysis.at(4)
        >>> len(window.ambiguous), window.best_matches, window.samples, analysis.unique_window
        (4, 46, 50, 8)
    """
    from nabiya.analysis import analyze_tokens

    song = resolve_song(song)
    return analyze_tokens(song.notes, max_window=max_window, title=song.title)


def default_run_folder(name: str, root: str | Path = "runs") -> Path:
    """A new folder under ``root`` named by time and preset, e.g. ``runs/2026-11-22_173012_stateful2``."""
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    folder = Path(root) / f"{stamp}_{name}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = Path(root) / f"{stamp}_{name}-{suffix}"
    return folder
