"""A progress bar for training, drawn by rich between compiled blocks of epochs."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator


@contextlib.contextmanager
def training_progress(description: str, epochs: int) -> Iterator[Callable[[int, int, float, float], None]]:
    """A rich progress bar; yields the ``on_progress`` callback the trainer calls per block.

    Draws on standard error, so standard output stays clean for results.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs · loss {task.fields[loss]} · acc {task.fields[accuracy]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=epochs, loss="…", accuracy="…")

        def report(done: int, total: int, loss: float, accuracy: float) -> None:
            progress.update(task, completed=done, loss=f"{loss:.4f}", accuracy=f"{accuracy:.0%}")

        yield report
