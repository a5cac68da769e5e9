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
