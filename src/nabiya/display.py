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
    lost = " (lost by the end)" if result.lost_perfect else ""
    return (
        f"{result.preset}: accuracy {result.accuracy:.0%}, one-step {result.one_step.matches}/{len(result.one_step.notes)}, "
        f"full song {result.full_song.matches}/{len(result.full_song.notes)}, "
        f"100% at epoch {perfect if perfect else '—'}{lost}, {result.train_seconds:.1f} s"
    )


def accuracy_line(result: "RunResult") -> str:
    """``training accuracy 92.3%`` and how it relates to 100%, plainly (rich markup)."""
    perfect = result.epochs_to_perfect
    text = f"training accuracy [bold]{result.accuracy:.1%}[/]"
    if perfect is None:
        return text + " (never 100% during training)"
    if result.lost_perfect:
        return (
            text + f": [bold]below the 100% first reached at epoch {perfect}[/] (Adam stepped away from the "
            "perfect fit later; more or fewer epochs may end at 100%)"
        )
    return text + f" (first 100% at epoch {perfect})"


def print_run(result: "RunResult", *, out: Path | None = None, saved: str | None = None, quiet: bool = False) -> None:
    console = _console()
    if quiet:
        console.print(one_line(result) + (f" → {out}" if out else ""), soft_wrap=True)
        return
    config = result.config
    console.print(
        f"[bold]{result.song.title or 'song'}[/] · {config.preset} · {config.train.epochs} epochs · seed {config.seed} "
        f"· {len(result.song)} notes"
    )
    console.print(accuracy_line(result) + f" · trained in {result.train_seconds:.2f} s (compilation included)")
    primer = " ".join(note.code for note in result.full_song.primer)
    for label, prediction in (("one-step", result.one_step), ("full song", result.full_song)):
        console.print(
            f"\n[bold]{label}[/] {prediction.matches}/{len(prediction.notes)} right · first mismatch: "
            f"{prediction.describe_first_mismatch()}"
        )
        console.print(f"  [dim]{primer}[/] {_notes_markup(prediction)}", soft_wrap=False)
    if out is not None:
        console.print(f"\nwrote [bold]{out}[/]: {_listing(out)}")
    if saved:
        console.print(f"saved the model to [bold]{saved}[/]")


def _listing(folder: Path) -> str:
    """``summary.json, loss.png, song / one_step / full_song as .abc .mid …``: what a run folder holds."""
    names = sorted(path.name for path in Path(folder).iterdir() if not path.name.startswith("."))
    songs = {"song", "one_step", "full_song"}
    suffixes = sorted({Path(name).suffix for name in names if Path(name).stem in songs})
    others = [name for name in names if Path(name).stem not in songs]
    return ", ".join(others + ([f"song / one_step / full_song as {' '.join(suffixes)}"] if suffixes else []))


def print_comparison(comparison: "Comparison", *, out: Path | None = None, quiet: bool = False) -> None:
    from rich.table import Table

    console = _console()
    if quiet:
        parts = [
            f"{r.preset} {r.accuracy:.0%} ({r.full_song.matches}/{len(r.full_song.notes)})" for r in comparison.results
        ]
        console.print("compare: accuracy (full song): " + " · ".join(parts) + (f" → {out}" if out else ""),
                      soft_wrap=True)  # fmt: skip
        return
    table = Table(title=f"{comparison.results[0].song.title}: the four models" if comparison.results else None)
    for column in ("preset", "accuracy", "one-step", "full song", "100% at epoch", "seconds"):
        table.add_column(column, justify="left" if column == "preset" else "right")
    for row in comparison.table().rows:
        table.add_row(
            row["preset"],
            f"{row['accuracy']:.0%}",
            row["one_step"],
            row["full_song"],
            str(row["epochs_to_100_percent"] or "—"),
            f"{row['train_seconds']:.2f}",
        )
    console.print(table)
    for result in comparison.results:
        if result.lost_perfect:
            console.print(f"[bold]{result.preset}[/] reached 100% at epoch {result.epochs_to_perfect} but ended at "
                          f"{result.accuracy:.1%}")  # fmt: skip
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
