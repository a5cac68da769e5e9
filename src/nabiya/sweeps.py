"""Many seeds at once: how much of a result is the preset, and how much the seed.

One seed's run says what one initialisation learned. A sweep trains the same preset on the
same song for many seeds (and, optionally, several window sizes) and shows the
distribution: accuracy, the first epoch at 100%, the full-song matches, and how many seeds
replay the whole song::

    import nabiya
    sweep = nabiya.sweep("stateful2", seeds=range(32))
    sweep.distribution()        # medians, minima, maxima; how many seeds replay the song
    sweep.plot()                # one dot per seed
    sweep.runs[3]               # seed 3's RunResult, the same as nabiya.run("stateful2", seed=3)

Every seed trains exactly as :func:`nabiya.run` trains it with that seed, bit for bit: the
seeds of one window size share one compiled program (:func:`nabiya.training.train_many`), and
each seed's predictions are made as ``run`` makes them. Each window size compiles its own
program, since a window's size is an array's shape.

A sweep chooses the training setting as ``run`` does: for a song that needs more memory than
one window per step trains (:mod:`nabiya.memory`), a stateful preset trains through 32 windows
per step until the song is memorised, each seed stopping on its own, and says so in one line.
``backprop_windows`` (``--backprop-windows``) sets it instead, as in ``run`` (``1``: the tutorial's
one window, whatever the song).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from nabiya.config import RunConfig, preset as get_preset
from nabiya.errors import NabiyaError
from nabiya.experiment import RunResult, build_model, evaluate_training, prepare, resolve_song
from nabiya.music.song import Song

MAX_SWEEP_RUNS = 1024  # seeds x windows; each keeps its model and histories in memory
_MAX_SEED = 2**32 - 1  # JAX keeps 32 bits of a seed


@dataclass(frozen=True)
class SweepResult:
    """The runs of one preset on one song, one per (window, seed).

    Attributes:
        config: the preset's config (its ``seed`` and ``window`` are each run's own).
        song: the training song.
        runs: one :class:`~nabiya.experiment.RunResult` per window and seed, windows in the
            outer order, seeds in the inner; each equals ``nabiya.run`` with that seed and window.
        train_seconds: wall time of all the training, compilation included.
        workers: threads the seeds of a window were split over.
    """

    config: RunConfig
    song: Song
    runs: tuple[RunResult, ...]
    train_seconds: float
    workers: int

    @property
    def seeds(self) -> list[int]:
        return sorted({run.config.seed for run in self.runs})

    @property
    def windows(self) -> list[int]:
        return sorted({run.config.window for run in self.runs})

    def for_window(self, window: int) -> list[RunResult]:
        """The runs of one window size, in seed order."""
        return [run for run in self.runs if run.config.window == window]

    def distribution(self, window: int | None = None) -> dict:
        """Median, minimum and maximum of each result over the seeds of one window size.

        Args:
            window: the window size (default: the only one, or the preset's).

        Returns:
            ``{"window", "seeds", "accuracy": {median, min, max}, "epochs_to_100_percent":
            {median, min, max, reached}, "full_song_matches": {median, min, max, total},
            "replayed": seeds whose full-song prediction is entirely right}``. The epochs are
            over the seeds that reached 100% (``None`` when none did).

        Example:
            >>> sweep("stateful2", seeds=range(4), progress=False).distribution()["replayed"]   # doctest: +SKIP
            4
        """
        window = self._window(window)
        runs = self.for_window(window)
        reached = [run.epochs_to_perfect for run in runs if run.epochs_to_perfect is not None]
        matches = [run.full_song.matches for run in runs]
        total = len(runs[0].full_song.notes)
        return {
            "window": window,
            "seeds": len(runs),
            "accuracy": _spread([run.accuracy for run in runs]),
            "epochs_to_100_percent": {**_spread(reached), "reached": len(reached)},
            "full_song_matches": {**_spread(matches), "total": total},
            "replayed": sum(match == total for match in matches),
        }

    def table(self) -> list[dict]:
        """One row per run: window, seed, accuracy, first epoch at 100%, one-step and full-song matches."""
        return [
            {
                "window": run.config.window,
                "seed": run.config.seed,
                "accuracy": run.accuracy,
                "epochs_to_100_percent": run.epochs_to_perfect,
                "one_step_matches": run.one_step.matches,
                "full_song_matches": run.full_song.matches,
                "full_song_total": len(run.full_song.notes),
            }
            for run in self.runs
        ]

    def summary(self) -> dict:
        """The sweep as plain JSON-able data (what ``sweep.json`` holds)."""
        return {
            "preset": self.config.preset,
            "song": {"title": self.song.title, "notes": self.song.codes},
            "epochs": self.config.train.epochs,
            "seeds": self.seeds,
            "windows": self.windows,
            "distribution": [self.distribution(window) for window in self.windows],
            "runs": self.table(),
            "train_seconds": round(self.train_seconds, 3),
            "workers": self.workers,
            "config": self.config.to_json(),
        }

    def plot(self, ax=None):
        """One dot per seed for accuracy, first epoch at 100% and full-song matches (a matplotlib Figure)."""
        from nabiya.plots import plot_sweep

        return plot_sweep(self, ax=ax)

    def write(self, out: str | Path) -> Path:
        """Write ``sweep.json`` and ``sweep.png`` into the folder ``out``, whole or not at all."""
        import json

        from nabiya.fileio import staged_folder
        from nabiya.plots import save_figure

        with staged_folder(out) as staging:
            text = json.dumps(self.summary(), indent=2, ensure_ascii=False) + "\n"
            (staging / "sweep.json").write_text(text, encoding="utf-8")
            save_figure(self.plot(), staging / "sweep.png")
        return Path(out)

    def _window(self, window: int | None) -> int:
        windows = self.windows
        if window is None:
            return windows[0] if len(windows) == 1 else self.config.window
        if window not in windows:
            raise NabiyaError(f"the sweep has no window {window}: it trained windows {_ranges(windows)}")
        return window

    def __repr__(self) -> str:
        return (
            f"SweepResult(preset={self.config.preset!r}, song={self.song.title!r}, seeds={_ranges(self.seeds)}, "
            f"windows={_ranges(self.windows)}, train_seconds={self.train_seconds:.1f})"
        )


def sweep(
    preset: str | RunConfig = "stateful2",
    *,
    seeds: Iterable[int] = range(32),
    windows: Iterable[int] | None = None,
    song: Song | str | Sequence[str] | None = None,
    epochs: int | None = None,
    out: str | Path | None = None,
    workers: int | None = None,
    progress: bool | Callable[[int, int, float, float], None] = True,
    backprop_windows: int | None = None,
) -> SweepResult:
    """Train one preset on one song for many seeds (and window sizes) at once.

    Args:
        preset: a preset's name or a RunConfig.
        seeds: the seeds, e.g. ``range(32)``.
        windows: window sizes to train, e.g. ``range(2, 9)`` (default: the preset's).
        song, epochs: as in :func:`nabiya.run`.
        out: when given, ``sweep.json`` and ``sweep.png`` are written there.
        workers: threads to split the seeds over (default: one per CPU core).
        progress: a progress bar per window size (``True``), nothing, or a callback.
        backprop_windows: as in :func:`nabiya.run`: windows per Adam step for a stateful
            preset (default: chosen from the song, as ``run`` chooses).

    Returns:
        The :class:`SweepResult`.

    Raises:
        NabiyaError: for no seeds, a repeated or negative seed, a window the song is too
            short for, or more than ``MAX_SWEEP_RUNS`` runs.

    Example:
        >>> result = sweep("stateful2", seeds=range(8), epochs=300, progress=False)   # doctest: +SKIP
        >>> result.distribution()["accuracy"]["median"]                               # doctest: +SKIP
        1.0
    """
    config = get_preset(preset) if isinstance(preset, str) else preset
    config = config.replace(epochs=epochs)
    seeds = _check_seeds(seeds)
    windows = [config.window] if windows is None else _check_windows(windows)
    if len(seeds) * len(windows) > MAX_SWEEP_RUNS:
        raise NabiyaError(f"{len(seeds)} seeds x {len(windows)} windows is {len(seeds) * len(windows)} runs: "
                          f"a sweep holds at most {MAX_SWEEP_RUNS}")  # fmt: skip
    song = resolve_song(song)
    prepared = {window: prepare(config.replace(window=window), song) for window in windows}  # bad songs fail here
    if out is not None:
        from nabiya.fileio import ensure_directory

        ensure_directory(out)
    from nabiya.training import train_many

    from nabiya.experiment import memorised_stop
    from nabiya.memory import choose_training

    started = time.perf_counter()
    runs, used_workers = [], 1
    for window in windows:
        choice = choose_training(config.replace(window=window), song.notes, backprop_windows=backprop_windows,
                                 epochs_given=epochs is not None, title=song.title)  # fmt: skip
        base = choice.config
        data = prepared[window]
        if choice.reason and progress is True:
            print(choice.reason, flush=True)
        configs = [base.replace(seed=seed) for seed in seeds]
        built = [build_model(one, data) for one in configs]
        label = f"{config.preset} · {len(seeds)} seeds" + (f" · window {window}" if len(windows) > 1 else "")

        def train_all(on_progress):
            return train_many([model for model, _ in built], data.windows.inputs, data.windows.targets,
                              base.train, keys=[key for _, key in built], workers=workers,
                              on_progress=on_progress, stop=memorised_stop(data) if choice.stops_when_memorised else None)  # fmt: skip

        if progress is True:
            from nabiya.progress import training_progress

            with training_progress(label, base.train.epochs) as report:
                trained = train_all(report)
        else:
            trained = train_all(progress or None)
        used_workers = max(used_workers, min(workers or _cpu_count(), len(seeds)))
        runs += [dataclasses.replace(evaluate_training(one, song, data, result), training_choice=choice)
                 for one, result in zip(configs, trained)]  # fmt: skip
    result = SweepResult(config, song, tuple(runs), time.perf_counter() - started, used_workers)
    if out is not None:
        result.write(out)
    return result


def parse_numbers(text: str, *, what: str) -> list[int]:
    """Whole numbers written as ranges and lists: ``"0-31"``, ``"2,4,8"``, ``"0-3,10"``.

    Raises:
        NabiyaError: naming ``what`` and the bad part.

    Example:
        >>> parse_numbers("0-3,10", what="seeds")
        [0, 1, 2, 3, 10]
    """
    numbers = []
    for part in text.replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise NabiyaError(f"{what}: {part!r} is not a number or a range like 0-31")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise NabiyaError(f"{what}: the range {part} runs backwards (write {high}-{low})")
        if high - low >= MAX_SWEEP_RUNS:
            raise NabiyaError(f"{what}: the range {part} has more than {MAX_SWEEP_RUNS} numbers")
        numbers += range(low, high + 1)
    return numbers


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise NabiyaError("a sweep needs at least one seed")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= _MAX_SEED:
            raise NabiyaError(f"a seed is a whole number from 0 to {_MAX_SEED:,}, not {seed!r}")
    if len(set(seeds)) != len(seeds):
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        raise NabiyaError(f"seed {repeated[0]} is given twice: each seed is trained once")
    return [int(seed) for seed in seeds]


def _check_windows(windows: Iterable[int]) -> list[int]:
    windows = list(windows)
    if not windows:
        raise NabiyaError("a sweep needs at least one window size")
    for window in windows:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise NabiyaError(f"a window is a whole number of notes, at least 1, not {window!r}")
    return sorted({int(window) for window in windows})


def _spread(values: Sequence[float]) -> dict:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": float(np.median(values)), "min": min(values), "max": max(values)}


def _ranges(numbers: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``'0-2,5'``."""
    parts, start = [], None
    for index, number in enumerate(numbers):
        if start is None:
            start = number
        if index + 1 == len(numbers) or numbers[index + 1] != number + 1:
            parts.append(str(start) if start == number else f"{start}-{number}")
            start = None
    return ",".join(parts)


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1
