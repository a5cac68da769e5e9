"""A progress line for training, drawn between compiled blocks of epochs.

In a terminal it is a rich progress bar on standard error that fits 80 columns:

    stateful2 · 나비야 (… ━━━━━╸━━━━ 1200/2000 loss 0.0012 acc 100% 0:03 eta 0:02

Until the first block of epochs returns it says ``compiling…`` (on a cold first run XLA
compiles the training loop for a second or more before any epoch is done). The time left is
estimated from the blocks after the first, whose time includes compilation.

In Jupyter the same line is one text output updated in place through IPython's display
handles, so no ipywidgets is needed.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

Report = Callable[[int, int, float, float], None]

# Cells given to the description and the bar: with the rest, a line fits 80 columns.
DESCRIPTION_CELLS = 18
BAR_CELLS = 10


@contextlib.contextmanager
def training_progress(description: str, epochs: int, *, console=None) -> Iterator[Report]:
    """Show training progress; yields the ``on_progress(done, total, loss, accuracy)`` callback.

    Args:
        description: what is training (``"stateful2 · 나비야"``).
        epochs: the total.
        console: a rich Console to draw on (default: standard error, so standard output
            stays clean for results).

    Example:
        >>> with training_progress("mlp", 10) as report:                # doctest: +SKIP
        ...     report(10, 10, 0.5, 0.9)
    """
    if console is None and _in_notebook():
        with notebook_progress(description, epochs) as report:
            yield report
        return
    with _rich_progress(description, epochs, console) as report:
        yield report


class _Timing:
    """When training started and when its first block (compilation included) returned."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first_block: tuple[float, int] | None = None  # (time, epochs done)
        self.last_block: tuple[float, int] | None = None

    def seen(self, done: int) -> None:
        now = time.perf_counter()
        if self.first_block is None:
            self.first_block = (now, done)
        self.last_block = (now, done)

    def times(self, done: int, total: int) -> str:
        """``"0:03 eta 0:02"``: elapsed, and the time left once it can be estimated."""
        now = time.perf_counter()
        text = _clock(now - self.start)
        if done >= total or self.first_block is None or self.last_block is None:
            return text
        (first_time, first_done), (last_time, last_done) = self.first_block, self.last_block
        if last_done <= first_done:
            return text
        seconds_per_epoch = (last_time - first_time) / (last_done - first_done)
        left = seconds_per_epoch * (total - last_done) - (now - last_time)
        return f"{text} eta {_clock(left)}"


def status(done: int, total: int, loss: float | None, accuracy: float | None) -> str:
    """``"1200/2000 loss 0.0012 acc 100%"``, or ``"0/2000 compiling…"`` before the first block."""
    if loss is None:
        return f"{done}/{total} compiling…"
    return f"{done}/{total} loss {loss:.4f} acc {accuracy:.0%}"


@contextlib.contextmanager
def _rich_progress(description: str, epochs: int, console) -> Iterator[Report]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
    from rich.text import Text

    timing = _Timing()

    class TimesColumn(ProgressColumn):
        max_refresh = 0.5

        def render(self, task) -> Text:
            return Text(timing.times(int(task.completed), int(task.total or 0)), style="progress.elapsed")

    progress = Progress(
        TextColumn("[bold]{task.description}", table_column=_fixed_column(DESCRIPTION_CELLS)),
        BarColumn(bar_width=BAR_CELLS),
        TextColumn("{task.fields[status]}"),
        TimesColumn(table_column=_fixed_column(None)),
        console=console or Console(stderr=True),
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=epochs, status=status(0, epochs, None, None))
        progress.refresh()  # "compiling…" from the start

        def report(done: int, total: int, loss: float, accuracy: float) -> None:
            timing.seen(done)
            progress.update(task, completed=done, total=total, status=status(done, total, loss, accuracy))
            progress.refresh()  # draw each block's numbers now, not at the next timer tick

        yield report


def _fixed_column(cells: int | None):
    from rich.table import Column

    return Column(width=cells, no_wrap=True, overflow="ellipsis")


@contextlib.contextmanager
def notebook_progress(description: str, epochs: int, *, display=None) -> Iterator[Report]:
    """The progress line as one text output updated in place (IPython's display handles).

    Args:
        display: ``IPython.display.display`` (injectable for tests).
    """
    if display is None:
        from IPython.display import display
    timing = _Timing()
    line = f"{description}: {status(0, epochs, None, None)}"
    handle = display(_Text(line), display_id=True)

    def report(done: int, total: int, loss: float, accuracy: float) -> None:
        timing.seen(done)
        text = f"{description}: {status(done, total, loss, accuracy)} · {timing.times(done, total)}"
        if handle is not None:
            handle.update(_Text(text))

    yield report


class _Text:
    """Plain text for IPython's display: shown as is, without quotes."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(self.text)


def _in_notebook() -> bool:
    """Whether we run in a Jupyter kernel (not a terminal IPython)."""
    import sys

    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:  # an IPython too broken to ask is not a notebook we can draw in
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
