"""What the CLI prints: run results, the comparison table, song lists (drawn with rich)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nabiya.experiment import Comparison, Prediction, RunResult


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _notes_markup(prediction: "Prediction") -> str:
    """The predicted notes, wrong ones in red with the true note after them."""
    wrong = set(prediction.wrong)
    parts = []
    for index, note in enumerate(prediction.notes):
        if index in wrong:
            parts.append(f"[bold red]{note.code}[/](≠{prediction.truth[index].code})")
        else:
            parts.append(note.code)
    return " ".join(parts)


def one_line(result: "RunResult") -> str:
    perfect = result.epochs_to_perfect
    return (
        f"{result.preset}: accuracy {result.accuracy:.0%}, one-step {result.one_step.matches}/{len(result.one_step.notes)}, "
        f"full song {result.full_song.matches}/{len(result.full_song.notes)}, "
        f"100% at epoch {perfect if perfect else '—'}, {result.train_seconds:.1f} s"
    )


def print_run(result: "RunResult", *, out: Path | None = None, saved: str | None = None, quiet: bool = False) -> None:
    console = _console()
    if quiet:
        console.print(one_line(result) + (f" → {out}" if out else ""), soft_wrap=True)
        return
    config = result.config
    perfect = result.epochs_to_perfect
    console.print(
        f"[bold]{result.song.title or 'song'}[/] · {config.preset} · {config.train.epochs} epochs · seed {config.seed} "
        f"· {len(result.song)} notes"
    )
    console.print(
        f"training accuracy [bold]{result.accuracy:.1%}[/]"
        + (f" (first 100% at epoch {perfect})" if perfect else " (never 100% during training)")
        + f" · trained in {result.train_seconds:.2f} s (compilation included)"
    )
    primer = " ".join(note.code for note in result.full_song.primer)
    for label, prediction in (("one-step", result.one_step), ("full song", result.full_song)):
        console.print(
            f"\n[bold]{label}[/] {prediction.matches}/{len(prediction.notes)} right · first mismatch: "
            f"{prediction.describe_first_mismatch()}"
        )
        console.print(f"  [dim]{primer}[/] {_notes_markup(prediction)}", soft_wrap=False)
    if out is not None:
        console.print(f"\nwrote [bold]{out}[/]: summary.json, loss.png, song / one_step / full_song as .mid .wav and more")
    if saved:
        console.print(f"saved the model to [bold]{saved}[/]")


def print_comparison(comparison: "Comparison", *, out: Path | None = None, quiet: bool = False) -> None:
    from rich.table import Table

    console = _console()
    table = Table(title=f"{comparison.results[0].song.title}: the four models" if comparison.results else None)
    for column in ("preset", "accuracy", "one-step", "full song", "100% at epoch", "seconds"):
        table.add_column(column, justify="left" if column == "preset" else "right")
    for row in comparison.table():
        table.add_row(
            row["preset"],
            f"{row['accuracy']:.0%}",
            row["one_step"],
            row["full_song"],
            str(row["epochs_to_100_percent"] or "—"),
            f"{row['train_seconds']:.2f}",
        )
    console.print(table)
    if not quiet:
        for result in comparison.results:
            console.print(f"[bold]{result.preset}[/] full song: first mismatch {result.full_song.describe_first_mismatch()}")
    if out is not None:
        console.print(f"wrote [bold]{out}[/]: comparison.json, loss.png (four curves), one folder per preset")


def print_songs() -> None:
    from rich.table import Table

    from nabiya.music import songs

    table = Table(title="built-in songs")
    rows = songs.describe_songs()
    for column in rows[0]:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*(str(value) for value in row.values()))
    _console().print(table)


def print_sweep(sweep, *, out: Path | None = None) -> None:
    """The distribution of a sweep's results, one block per window size."""
    from nabiya.sweeps import _ranges

    console = _console()
    config = sweep.config
    console.print(
        f"[bold]{sweep.song.title or 'song'}[/] · {config.preset} · {len(sweep.seeds)} seeds ({_ranges(sweep.seeds)}) · "
        f"{config.train.epochs} epochs · trained in {sweep.train_seconds:.1f} s ({sweep.workers} "
        f"thread{'s' if sweep.workers != 1 else ''}, compilation included)"
    )
    for window in sweep.windows:
        d = sweep.distribution(window)
        if len(sweep.windows) > 1:
            console.print(f"\n[bold]window {window}[/]")
        accuracy, epochs, matches = d["accuracy"], d["epochs_to_100_percent"], d["full_song_matches"]
        total = matches["total"]

        def number(value):
            return "—" if value is None else f"{value:g}"

        console.print(f"  {'':<22}{'median':>8}{'min':>8}{'max':>8}")
        console.print(f"  {'accuracy':<22}{accuracy['median']:>8.0%}{accuracy['min']:>8.0%}{accuracy['max']:>8.0%}")
        console.print(f"  {'first epoch at 100%':<22}{number(epochs['median']):>8}{number(epochs['min']):>8}"
                      f"{number(epochs['max']):>8}   ({epochs['reached']} of {d['seeds']} seeds reach 100%)")
        console.print(f"  {f'full-song matches /{total}':<22}{number(matches['median']):>8}{matches['min']:>8}"
                      f"{matches['max']:>8}")
        console.print(f"  the whole song replayed by {d['replayed']} of {d['seeds']} seeds")
    if out is not None:
        console.print(f"wrote {out}: sweep.json, sweep.png")
