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


def _new_figure(figsize: tuple[float, float]):
    """A figure and its axes, not registered with pyplot.

    Jupyter's inline backend shows every open pyplot figure at the end of a cell, and then
    the returned figure again: a figure pyplot does not know is shown once, as the value.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.add_subplot()


# A loss that climbs more than this factor above the lowest loss so far, once that was below
# SPIKE_FLOOR, is one of Adam's spikes (see plot_loss).
SPIKE_FACTOR = 100.0
SPIKE_FLOOR = 1e-3
ADAM_SPIKES_NOTE = (
    "Spikes after the loss gets tiny are Adam's (ε = 1e-7, as in Keras): its steps grow as the\n"
    "gradients vanish, training recovers within a few epochs. Not a fault."
)


def count_spikes(history: Sequence[float]) -> int:
    """How many times a loss curve jumps from tiny back up by over ``SPIKE_FACTOR`` (Adam's spikes).

    Example:
        >>> count_spikes([1.0, 1e-4, 1e-5, 0.5, 1e-5, 1e-5])
        1
    """
    import numpy as np

    loss = np.asarray(history, dtype=np.float64)
    if loss.size < 2:
        return 0
    lowest = np.minimum.accumulate(loss)
    above = (loss[1:] > SPIKE_FACTOR * lowest[:-1]) & (lowest[:-1] < SPIKE_FLOOR)
    return int(np.count_nonzero(above[1:] & ~above[:-1]) + int(above[0]))


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

    Curves with Adam's spikes (see :func:`count_spikes`) get a caption saying what they are,
    so nobody takes them for a fault.

    Returns:
        The matplotlib Figure (not registered with pyplot, so Jupyter shows it once).
    """
    _pyplot()
    spiky = any(count_spikes(history) for history in histories.values())
    if ax is None:
        figure, ax = _new_figure((7, 4.6) if spiky else (7, 4))
    else:
        figure = ax.figure
    for name, history in histories.items():
        ax.plot(range(1, len(history) + 1), history, label=name, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (cross-entropy)")
    ax.set_title(displayable(title))
    ax.grid(True, which="major", alpha=0.3)
    _legend_outside(ax)
    figure.tight_layout()
    if spiky:
        figure.subplots_adjust(bottom=0.24)
        figure.text(0.01, 0.01, ADAM_SPIKES_NOTE, fontsize="small", color="#555555", va="bottom")
    return figure


def _legend_outside(ax, **options) -> None:
    """The legend beside the plotting area, on the right, where it hides no data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize="small", **options)


def save_figure(figure, path) -> None:
    """Save a figure as PNG, atomically, and close it."""
    from nabiya.fileio import atomic_path

    plt = _pyplot()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def plot_piano_roll(truth, prediction, *, given: int = 0, title: str = "", ax=None):
    """Draw a song and a prediction of it as a piano roll: pitch against time in quarter notes.

    The true song is drawn as wide pale bars, the prediction as narrow bars over them:
    dark where the prediction's note equals the true note at the same position (same
    pitch and duration), red where it does not (and for notes past the song's end). The
    first ``given`` notes of the prediction (the primer a model starts from) are drawn grey
    and are not counted. Rests lie on a row of their own below the lowest pitch.

    A model predicts a song note by note, so note ``i`` of the prediction is compared with,
    and drawn at the onset of, note ``i`` of the song: a note of the wrong length does not
    push the notes after it out of line. Each predicted bar keeps its own length, so a wrong
    length shows as a bar longer or shorter than the pale one under it. Predicted notes
    past the song's end follow one another from its end. The legend sits beside the plot.

    Args:
        truth: the song (a :class:`~nabiya.music.song.Song`).
        prediction: the predicted song, compared with ``truth`` note by note, primer first.
        given: how many notes at the start of ``prediction`` were given, not predicted.
        title: the plot's title; the song's title when empty.
        ax: a matplotlib Axes to draw on; a new figure when omitted.

    Returns:
        The matplotlib Figure.

    Example:
        >>> from nabiya.music.song import Song
        >>> truth = Song.from_codes("g8 e8 e4 f8 d8 d4")
        >>> figure = plot_piano_roll(truth, Song.from_codes("g8 e8 e4 f8 e8 d4"), given=4)
        >>> [text.get_text() for text in figure.axes[0].get_legend().get_texts()][-1]
        'prediction: wrong (1 of 2)'
    """
    from matplotlib.patches import Patch

    from nabiya.music.notation import bar_quarters, parse_meter, pitch_name

    plt = _pyplot()
    notes = list(truth.notes) + list(prediction.notes)
    pitched = [note for note in notes if note.pitch is not None]
    lowest = min((note.pitch for note in pitched), default=60)
    highest = max((note.pitch for note in pitched), default=60)
    rest_row = lowest - 2  # rests get a row of their own, below the music

    def row(note) -> int:
        return rest_row if note.pitch is None else note.pitch

    truth_onsets, time = [], 0.0
    for note in truth.notes:
        truth_onsets.append(time)
        time += float(note.duration)
    predicted_onsets = []  # note i at the onset of true note i; past the end, one after another
    for index, note in enumerate(prediction.notes):
        predicted_onsets.append(truth_onsets[index] if index < len(truth_onsets) else time)
        if index >= len(truth_onsets):
            time += float(note.duration)
    given = max(0, min(given, len(prediction.notes)))
    wrong = [
        index >= len(truth.notes) or note.token != truth.notes[index].token
        for index, note in enumerate(prediction.notes)
    ]
    length = max(
        [float(truth.duration_quarters), 1.0]
        + [onset + float(note.duration) for onset, note in zip(predicted_onsets, prediction.notes)]
    )
    if ax is None:
        figure, ax = _new_figure((min(max(8.0, length / 4), 20.0) + 2.0, 4.5))
    else:
        figure = ax.figure
    truth_color, given_color, right_color, wrong_color = "#b9cde5", "#8c8c8c", "#1f4e79", "#d62728"
    ax.barh([row(note) for note in truth.notes], [float(note.duration) for note in truth.notes], left=truth_onsets,
            height=0.8, color=truth_color, edgecolor="white", linewidth=0.5)  # fmt: skip
    colors = [
        given_color if index < given else (wrong_color if is_wrong else right_color)
        for index, is_wrong in enumerate(wrong)
    ]
    ax.barh([row(note) for note in prediction.notes], [float(note.duration) for note in prediction.notes],
            left=predicted_onsets, height=0.35, color=colors, edgecolor="none")  # fmt: skip

    meter = parse_meter(truth.meter)
    if meter:
        bar_length = float(bar_quarters(meter))
        first_bar = float(truth.pickup) if truth.pickup else bar_length
        bar_line = first_bar
        while bar_line <= length:
            ax.axvline(bar_line, color="#999999", linewidth=0.5, alpha=0.5, zorder=0)
            bar_line += bar_length
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
    ax.set_title(displayable(title or truth.title or "piano roll"))
    ax.grid(True, axis="y", alpha=0.2)
    predicted = len(prediction.notes) - given
    handles = [Patch(color=truth_color, label="song (truth)")]
    if given:
        handles.append(Patch(color=given_color, label=f"given ({given} notes)"))
    handles += [
        Patch(color=right_color, label="prediction: right"),
        Patch(color=wrong_color, label=f"prediction: wrong ({sum(wrong[given:])} of {predicted})"),
    ]
    _legend_outside(ax, handles=handles)
    figure.tight_layout()
    return figure


def plot_ceiling(analysis, *, window: int = 4, ax=None):
    """Draw the highest accuracy a window-only model can reach against the window size.

    One point per window size ``1 … analysis.max_window``; the window ``window`` (the
    tutorial's 4) is marked with its ambiguous windows and ceiling, and the smallest
    window that makes every continuation unique with the memory a stateful model needs.

    Args:
        analysis: a :class:`~nabiya.analysis.SongAnalysis` (``nabiya.analyze(song)``).
        window: the window to mark; nothing is marked when it is beyond ``max_window``.
        ax: a matplotlib Axes to draw on; a new figure when omitted.

    Returns:
        The matplotlib Figure.

    Example:
        >>> from nabiya.analysis import analyze_tokens
        >>> figure = plot_ceiling(analyze_tokens("abcabdabc"), window=2)
        >>> [round(y) for y in figure.axes[0].lines[0].get_ydata()[:3]]
        [88, 86, 100]
    """
    plt = _pyplot()
    if ax is None:
        figure, ax = plt.subplots(figsize=(7, 4))
    else:
        figure = ax.figure
    sizes = [report.window for report in analysis.windows]
    ceilings = [100 * report.ceiling for report in analysis.windows]
    ax.plot(sizes, ceilings, marker="o", linewidth=1.5, color="#1f4e79", label="window-only ceiling")
    ax.axhline(100, color="#999999", linewidth=0.8, linestyle=":")
    if 1 <= window <= analysis.max_window:
        report = analysis.at(window)
        ax.axvline(window, color="#d62728", linewidth=1, linestyle="--")
        ax.annotate(
            f"window {window}: {report.best_matches}/{report.samples} = {report.ceiling:.0%}\n"
            f"{len(report.ambiguous)} ambiguous windows, {report.ambiguous_places} places",
            (window, 100 * report.ceiling), xytext=(8, -28), textcoords="offset points", fontsize="small",
            color="#d62728",
        )
    unique = analysis.unique_window
    if unique <= analysis.max_window:
        ax.annotate(
            f"every continuation unique\nfrom a window of {unique}", (unique, 100), xytext=(0, -34),
            textcoords="offset points", ha="center" if unique < analysis.max_window else "right", fontsize="small",
            arrowprops={"arrowstyle": "-", "color": "#999999"},
        )
    ax.set_xlabel("window (notes a model sees)")
    ax.set_ylabel("best possible accuracy (%)")
    ax.set_xticks(sizes if len(sizes) <= 20 else sizes[:: max(1, len(sizes) // 10)])
    ax.set_ylim(min(ceilings) - 5, 104)
    memory = f"\na stateful model must remember {unique} notes back to tell every place apart" if unique > 1 else ""
    ax.set_title(displayable(f"{analysis.title or 'song'}: the best a window-only model can do") + memory,
                 fontsize="medium")
    ax.grid(True, alpha=0.3)
    figure.tight_layout()
    return figure


def plot_accuracy(histories: Mapping[str, Sequence[float]], *, ceilings: Mapping[str, float] | None = None,
                  title: str = "Training accuracy", ax=None):
    """Draw one training-accuracy curve per name (percent against epoch), and dashed ceilings.

    Args:
        histories: ``{"mlp": accuracy_history, ...}``, fractions in [0, 1] per epoch.
        ceilings: ``{label: fraction}``: the most a model can reach by construction, each
            drawn as a dashed line with its label (e.g. a window-only model's 92%).
        ax: a matplotlib Axes to draw on; a new figure when omitted.

    Returns:
        The matplotlib Figure.

    Example:
        >>> figure = plot_accuracy({"mlp": [0.5, 0.9, 0.92]}, ceilings={"window of 4: at most 92%": 0.92})
        >>> [line.get_linestyle() for line in figure.axes[0].lines]
        ['-', '--']
    """
    plt = _pyplot()
    if ax is None:
        figure, ax = plt.subplots(figsize=(7, 4))
    else:
        figure = ax.figure
    for name, history in histories.items():
        ax.plot(range(1, len(history) + 1), [100 * value for value in history], label=name, linewidth=1.2)
    for label, ceiling in (ceilings or {}).items():
        ax.axhline(100 * ceiling, color="#444444", linestyle="--", linewidth=1.2, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training accuracy (%)")
    ax.set_ylim(None, 102)
    ax.set_title(displayable(title))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    return figure


def plot_training(loss_histories: Mapping[str, Sequence[float]], accuracy_histories: Mapping[str, Sequence[float]],
                  *, ceilings: Mapping[str, float] | None = None, title: str = ""):
    """Loss (left) and training accuracy (right) per epoch, one curve per name, ceilings dashed.

    See :func:`plot_loss` and :func:`plot_accuracy`; ``nabiya compare`` writes this as ``loss.png``.

    Returns:
        The matplotlib Figure, with two Axes.
    """
    plt = _pyplot()
    figure, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=(12, 4))
    prefix = f"{title}: " if title else ""
    plot_loss(loss_histories, title=f"{prefix}training loss", ax=loss_ax)
    plot_accuracy(accuracy_histories, ceilings=ceilings, title=f"{prefix}training accuracy", ax=accuracy_ax)
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
