"""Plots: loss curves (and piano rolls). matplotlib is imported only when a plot is drawn."""

from __future__ import annotations

import re
from typing import Mapping, Sequence


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "nbagg"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def displayable(text: str) -> str:
    """``text`` with the characters matplotlib's fonts cannot draw removed.

    Titles like '나비야 (Butterfly)' need a Hangul font, which many machines lack; rather
    than draw empty boxes (and warn), keep what can be drawn: 'Butterfly'.
    """
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(font_manager.findfont(font_manager.FontProperties()))
        charmap = font.get_charmap()
    except Exception:  # no usable font information: draw as is
        return text
    kept = "".join(ch for ch in text if ord(ch) in charmap or ch.isspace())
    if kept == text:
        return text
    # '나비야 (Butterfly): loss' -> ' (Butterfly): loss' -> 'Butterfly: loss'
    kept = re.sub(r"^\s*\((.*?)\)", r"\1", kept.replace("()", ""))
    return " ".join(kept.split())


def plot_loss(histories: Mapping[str, Sequence[float]], *, title: str = "Training loss", ax=None):
    """Draw one loss curve per name (loss against epoch, log scale), as the tutorial plots it.

    Args:
        histories: ``{"stateful2": loss_history, ...}``.
        ax: a matplotlib Axes to draw on; a new figure when omitted.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    if ax is None:
        figure, ax = plt.subplots(figsize=(7, 4))
    else:
        figure = ax.figure
    for name, history in histories.items():
        ax.plot(range(1, len(history) + 1), history, label=name, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (cross-entropy)")
    ax.set_title(displayable(title))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper right")
    figure.tight_layout()
    return figure


def save_figure(figure, path) -> None:
    """Save a figure as PNG, atomically, and close it."""
    from nabiya.fileio import atomic_path

    plt = _pyplot()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def plot_piano_roll(truth, prediction, *, title: str = "", ax=None):
    """Draw a song and a prediction of it as a piano roll: pitch against time in quarter notes.

    The true song is drawn as wide pale bars, the prediction as narrow bars over them:
    dark where the prediction's note equals the true note at the same position (same
    pitch and duration), red where it does not (and for notes past the song's end).
    Rests lie on a row of their own below the lowest pitch.

    Args:
        truth: the song (a :class:`~nabiya.music.song.Song`).
        prediction: the predicted song, compared with ``truth`` note by note.
        title: the plot's title; the song's title when empty.
        ax: a matplotlib Axes to draw on; a new figure when omitted.

    Returns:
        The matplotlib Figure.

    Example:
        >>> from nabiya.music.song import Song
        >>> truth = Song.from_codes("g8 e8 e4 f8 d8 d4")
        >>> figure = plot_piano_roll(truth, Song.from_codes("g8 e8 e4 f8 e8 d4"))
        >>> len(figure.axes[0].get_legend().get_texts())
        3
    """
    from matplotlib.patches import Patch

    from nabiya.music.notation import bar_quarters, parse_meter, pitch_name

    plt = _pyplot()
    notes = list(truth.notes) + list(prediction.notes)
    pitched = [note for note in notes if note.pitch is not None]
    lowest = min((note.pitch for note in pitched), default=60)
    highest = max((note.pitch for note in pitched), default=60)
    rest_row = lowest - 2  # rests get a row of their own, below the music

    def bars(song):
        """(onsets, durations, rows) of the song's notes, in quarter notes."""
        onsets, durations, rows, time = [], [], [], 0.0
        for note in song.notes:
            onsets.append(time)
            durations.append(float(note.duration))
            rows.append(rest_row if note.pitch is None else note.pitch)
            time += float(note.duration)
        return onsets, durations, rows

    wrong = [
        index >= len(truth.notes) or note.token != truth.notes[index].token for index, note in enumerate(prediction.notes)
    ]
    length = max(float(truth.duration_quarters), float(prediction.duration_quarters), 1.0)
    if ax is None:
        figure, ax = plt.subplots(figsize=(min(max(8.0, length / 4), 20.0), 4.5))
    else:
        figure = ax.figure
    truth_color, right_color, wrong_color = "#b9cde5", "#1f4e79", "#d62728"
    onsets, durations, rows = bars(truth)
    ax.barh(rows, durations, left=onsets, height=0.8, color=truth_color, edgecolor="white", linewidth=0.5)
    onsets, durations, rows = bars(prediction)
    colors = [wrong_color if is_wrong else right_color for is_wrong in wrong]
    ax.barh(rows, durations, left=onsets, height=0.35, color=colors, edgecolor="none")

    meter = parse_meter(truth.meter)
    if meter:
        bar_length = float(bar_quarters(meter))
        for bar_line in range(1, int(length / bar_length) + 1):
            ax.axvline(bar_line * bar_length, color="#999999", linewidth=0.5, alpha=0.5, zorder=0)
    spellings = {note.pitch: note.spelling for note in reversed(notes) if note.pitch is not None}
    ticks = sorted(spellings)
    labels = [pitch_name(pitch, spellings[pitch]) for pitch in ticks]
    if any(note.pitch is None for note in notes):
        ticks, labels = [rest_row, *ticks], ["rest", *labels]
    ax.set_yticks(ticks, labels)
    ax.set_ylim(min(ticks) - 1, highest + 1)
    ax.set_xlim(0, length)
    ax.set_xlabel("time (quarter notes)")
    ax.set_ylabel("pitch")
    ax.set_title(title or truth.title or "piano roll")
    ax.grid(True, axis="y", alpha=0.2)
    handles = [
        Patch(color=truth_color, label="song (truth)"),
        Patch(color=right_color, label="prediction: right"),
        Patch(color=wrong_color, label=f"prediction: wrong ({sum(wrong)} of {len(wrong)})"),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.9)
    figure.tight_layout()
    return figure


def plot_sweep(sweep, *, ax=None):
    """A sweep's results, one dot per seed: accuracy, first epoch at 100%, full-song matches.

    Three panels side by side, the window sizes along each x axis and a bar at each
    window's median; seeds that never reached 100% are drawn as crosses above the epochs.

    Args:
        sweep: a :class:`nabiya.sweeps.SweepResult`.
        ax: three matplotlib Axes to draw on; a new figure when omitted.

    Returns:
        The matplotlib Figure.
    """
    import numpy as np

    plt = _pyplot()
    if ax is None:
        figure, ax = plt.subplots(1, 3, figsize=(11, 3.8))
    else:
        figure = ax[0].figure
    windows = sweep.windows
    jitter = np.random.default_rng(0)  # fixed: the same sweep draws the same picture
    panels = (
        ("training accuracy", lambda run: run.accuracy * 100, "%"),
        ("first epoch at 100%", lambda run: run.epochs_to_perfect, ""),
        ("full-song matches", lambda run: run.full_song.matches, ""),
    )
    never_height = max((run.epochs_to_perfect or 0 for run in sweep.runs), default=0) * 1.08 or sweep.config.train.epochs
    for axis, (label, value, unit) in zip(ax, panels):
        for position, window in enumerate(windows):
            runs = sweep.for_window(window)
            values = [value(run) for run in runs]
            shown = np.array([v for v in values if v is not None], dtype=float)
            offsets = jitter.uniform(-0.18, 0.18, len(values))
            xs = [position + o for o, v in zip(offsets, values) if v is not None]
            axis.scatter(xs, shown, s=14, alpha=0.7, color="tab:blue")
            missing = [position + o for o, v in zip(offsets, values) if v is None]
            if missing:
                axis.scatter(missing, [never_height] * len(missing), marker="x", s=18, color="tab:red",
                             label="never 100%" if position == 0 else None)  # fmt: skip
            if shown.size:
                axis.hlines(np.median(shown), position - 0.3, position + 0.3, color="black", linewidth=2)
        axis.set_xticks(range(len(windows)), [str(w) for w in windows])
        axis.set_xlabel("window" if len(windows) > 1 else f"window {windows[0]}")
        axis.set_title(label + (f" ({unit})" if unit else ""), fontsize=10)
        axis.grid(True, axis="y", alpha=0.3)
    if any(run.epochs_to_perfect is None for run in sweep.runs):
        ax[1].legend(loc="lower right", fontsize=8)
    total = len(sweep.runs[0].full_song.notes)
    ax[0].set_ylim(-2, 102)
    ax[2].set_ylim(-1, total + 1)
    title = f"{sweep.song.title}: {sweep.config.preset}, {len(sweep.seeds)} seeds, {sweep.config.train.epochs} epochs"
    figure.suptitle(displayable(title), fontsize=11)
    figure.tight_layout()
    return figure
