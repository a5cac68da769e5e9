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
        + (f", memorised: stopped after epoch {result.epochs_trained}" if result.stopped_early else "")
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
    choice = result.training_choice
    if quiet:
        console.print(one_line(result) + (f" → {out}" if out else ""), soft_wrap=True)
        if choice is not None and choice.reason:
            console.print(choice.reason, soft_wrap=True, markup=False)
        return
    config = result.config
    windows = config.train.backprop_windows
    console.print(
        f"[bold]{result.song.title or 'song'}[/] · {config.preset} · "
        + (f"{result.epochs_trained} epochs (memorised: stopped; at most {config.train.epochs})" if result.stopped_early
           else f"{config.train.epochs} epochs")
        + f" · seed {config.seed} "
        f"· {len(result.song)} notes" + (f" · {windows} windows per step" if windows > 1 else "")
    )
    console.print(accuracy_line(result) + f" · trained in {result.train_seconds:.2f} s (compilation included)")
    limit = window_limit(result)
    if limit:
        console.print(f"[yellow]{limit}[/]", soft_wrap=True)
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
    limits: dict[str, list[str]] = {}
    for result in comparison.results:
        limit = window_limit(result)
        if limit:
            limits.setdefault(limit, []).append(result.preset)
    for limit, presets in limits.items():
        console.print(f"[yellow]{', '.join(presets)}: {limit}[/]", soft_wrap=True)
    for result in comparison.results:
        if result.lost_perfect:
            console.print(f"[bold]{result.preset}[/] reached 100% at epoch {result.epochs_to_perfect} but ended at "
                          f"{result.accuracy:.1%}")  # fmt: skip
    for result in comparison.results:
        console.print(f"[bold]{result.preset}[/] full song: first mismatch {result.full_song.describe_first_mismatch()}")
    if out is not None:
        console.print(f"wrote [bold]{out}[/]: comparison.json, loss.png (loss and accuracy curves), one folder per preset")


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


def _codes_text(tokens, limit: int = 12) -> str:
    """Tokens as note codes (or as themselves), the first ``limit`` then '…'."""
    texts = [str(getattr(token, "code", token)) for token in tokens]
    return " ".join(texts[:limit]) + (" …" if len(texts) > limit else "")


def _notes_list(numbers) -> str:
    numbers = list(numbers)
    return f"note{'s' if len(numbers) > 1 else ''} {', '.join(str(n) for n in numbers)}"


def describe_memory(analysis, window: int) -> str:
    """A sentence on how far back a stateful model must remember, and why (for the terminal and README)."""
    report = analysis.at(window)
    memory = report.memory
    if memory is None or report.carried_notes == 0:
        return f"a {window}-note window tells every place apart: no memory beyond the window is needed."
    first, second = sorted((memory.place, memory.other))
    shared = analysis.tokens[first - memory.shared : first]
    why = (
        f"notes {first + 1} and {second + 1} follow the same {memory.shared} notes ({_codes_text(shared)})"
        + ("; only the song's start tells them apart" if memory.reaches_start else
           f" and differ {memory.notes} notes back")
    )
    return (
        f"a stateful model must remember {memory.notes} notes back to tell every place apart: {why}. "
        f"With a {window}-note window, {report.carried_notes} of them lie before the window: only the carried "
        "state can hold them."
    )


def print_analysis(analysis, *, window: int = 4) -> None:
    """The analysis as a table of window sizes, then one window's ambiguous windows, the memory, the presets."""
    from rich.table import Table

    from nabiya.analysis import UNTRAINED_CARRY_NOTES
    from nabiya.config import PRESETS

    console = _console()
    distinct = len(set(analysis.tokens))
    console.print(f"[bold]{analysis.title or 'song'}[/] · {len(analysis.tokens)} notes · {distinct} distinct notes")
    table = Table(title="what a window of notes can tell apart", title_justify="left")
    for column in ("window", "ambiguous windows", "places", "best possible", "state must carry"):
        table.add_column(column, justify="right")
    for report in analysis.windows:
        marked = report.window == window
        table.add_row(
            f"{report.window}{' ←' if marked else ''}",
            str(len(report.ambiguous)),
            str(report.ambiguous_places),
            f"{report.best_matches}/{report.samples} {report.ceiling:4.0%}",
            _plural(report.carried_notes, "note") if report.carried_notes else "—",
            style="bold" if marked else None,
        )
    console.print(table)
    console.print(f"every continuation is unique from a window of [bold]{analysis.unique_window}[/] notes.")
    report = analysis.at(window)
    if report.ambiguous:
        count = len(report.ambiguous)
        console.print(f"\n[bold]window {window}[/]: {count} window{'s' if count != 1 else ''} continued in more "
                      f"than one way ({report.ambiguous_places} places):")
        for entry in report.ambiguous:
            by_continuation: dict = {}
            for place, continuation in zip(entry.places, entry.continuations):
                by_continuation.setdefault(continuation, []).append(place + 1)
            followers = " · ".join(
                f"{getattr(token, 'code', token)} ({_notes_list(numbers)})" for token, numbers in by_continuation.items()
            )
            console.print(f"  {_codes_text(entry.notes)}  → {followers}", soft_wrap=True)
    console.print("\n" + describe_memory(analysis, window), soft_wrap=True)
    from nabiya.memory import CHOSEN_BACKPROP_WINDOWS

    lines: dict[str, list[str]] = {}
    for name, config in PRESETS.items():
        verdict = analysis.assess_preset(config)
        if verdict.verdict == "ceiling":
            text = f"at most {verdict.ceiling:.0%} by construction"
        elif verdict.verdict == "window":
            text = "100% possible: the window tells every place apart"
        else:
            text = (f"the carried state must hold {_plural(verdict.carried_notes, 'note')} from before the window: "
                    + ("expected to reach 100%" if verdict.expected_to_suffice else
                       f"more than the {UNTRAINED_CARRY_NOTES} its one-window training was measured to learn; "
                       f"not expected to reach 100%, so nabiya run trains it through {CHOSEN_BACKPROP_WINDOWS} "
                       "windows per step"))
        lines.setdefault(text, []).append(f"{name} (window {config.window})")
    console.print("the presets:")
    for text, names in lines.items():
        console.print(f"  [bold]{', '.join(names)}[/]: {text}", soft_wrap=True)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def window_limit(result: "RunResult") -> str | None:
    """One line when the run's preset cannot reach 100% on its song by construction, else None.

    That is a stateless preset on a song whose windows of its size occur with more than
    one continuation, e.g. the MLP on 나비야: at most 92%.
    """
    from nabiya.analysis import assess_preset

    verdict = assess_preset(result.song.notes, result.config, title=result.song.title)
    return None if verdict.can_reach_100 else f"{verdict.reason} · see nabiya analyze"
def print_corpus_info(info) -> None:
    """``nabiya corpus info``: what a corpus holds, as rich tables (see :class:`nabiya.music.corpus.CorpusInfo`)."""
    from rich.columns import Columns
    from rich.table import Table

    from nabiya.music.corpus import SKIP_REASONS
    from nabiya.music.notation import pitch_name

    console = _console()
    reading = info.reading
    console.print(
        f"[bold]corpus {' '.join(info.sources)}[/] · {info.tunes:,} tunes · {info.notes:,} notes · "
        f"{sum(info.skipped.values()):,} skipped"
    )
    console.print(
        f"[dim]{reading.get('files', 0):,} files ({reading.get('ignored_files', 0)} of other kinds ignored); "
        f"{reading.get('tunes_read', 0):,} tunes read, {reading.get('tunes_cached', 0):,} from the cache, "
        f"in {reading.get('seconds', 0):.1f} s[/]"
    )

    def table(title: str, columns: list[str], rows, justify=None) -> Table:
        grid = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        for number, column in enumerate(columns):
            grid.add_column(column, justify=(justify or {}).get(number, "right" if number else "left"),
                            overflow="fold")  # fmt: skip
        for row in rows:
            grid.add_row(*(str(value) for value in row))
        return grid

    collections = sorted(info.collections.items(), key=lambda item: -item[1]["tunes"])
    console.print(table("tunes by collection", ["collection", "tunes", "skipped"],
                        [(name, f"{c['tunes']:,}", f"{c['skipped']:,}") for name, c in collections]))  # fmt: skip
    if info.skipped:
        rows = [(reason, f"{count:,}", _shorten(info.skip_examples.get(reason, SKIP_REASONS.get(reason, "")), 100))
                for reason, count in info.skipped.items()]  # fmt: skip
        console.print(table("skipped, by reason", ["reason", "tunes", "for example"], rows, justify={2: "left"}))

    def top(counts: dict, limit: int = 10) -> list:
        rows = [(name, f"{count:,}", f"{count / info.tunes:.0%}") for name, count in list(counts.items())[:limit]]
        rest = sum(list(counts.values())[limit:])
        return rows + ([(f"{len(counts) - limit} more", f"{rest:,}", f"{rest / info.tunes:.0%}")] if rest else [])

    console.print(Columns([
        table("meters", ["meter", "tunes", ""], top(info.meters)),
        table("modes", ["mode", "tunes", ""], top(info.modes)),
        table("keys", ["key", "tunes", ""], top(info.keys)),
    ], padding=(0, 4)))  # fmt: skip
    lengths = info.lengths
    console.print(table("notes per tune", ["min", "5%", "25%", "median", "75%", "95%", "max", "mean"],
                        [[lengths[k] for k in ("min", "p5", "p25", "median", "p75", "p95", "max", "mean")]],
                        justify=dict.fromkeys(range(8), "right")))  # fmt: skip
    widest = max(count for _, _, count in info.length_histogram)
    histogram = [(f"{low}–{high - 1 if high else '…'}", f"{count:,}", "█" * max(1, round(30 * count / widest)))
                 for low, high, count in info.length_histogram]  # fmt: skip
    console.print(table("", ["notes", "tunes", ""], histogram, justify={2: "left"}))
    durations = ", ".join(f"{name} ({count:,})" for name, count in list(info.durations.items())[:8])
    console.print(
        f"[bold]pitches[/] {pitch_name(info.pitches['lowest'])}–{pitch_name(info.pitches['highest'])}, "
        f"{info.pitches['distinct']} distinct · rests {info.rests:.1%} of notes · [bold]durations[/] "
        f"(quarter notes) {len(info.durations)} distinct: {durations}{' …' if len(info.durations) > 8 else ''}"
    )
    split, vocabulary = info.split, info.vocabulary
    parts = ("train", "valid", "test")
    fractions = "/".join(f"{share:g}" for share in split["fractions"])
    console.print(table(
        f"split {fractions} (seed {split['seed']}; {split['versions']:,} tunes are versions of others, "
        f"kept on their side)",
        ["", *parts],
        [
            ["tunes", *(f"{split[p]:,}" for p in parts)],
            ["sequences" + (" (augmented)" if vocabulary["augment"] else ""),
             *(f"{vocabulary['sequences'][p]:,}" for p in parts)],
            ["scored positions", *(f"{vocabulary['scored_positions'][p]:,}" for p in parts)],
            ["<unk> positions", *(f"{vocabulary['unknown_positions'][p]:,}" for p in parts)],
            ["tunes dropped", *(f"{vocabulary['dropped'][p]:,}" for p in parts)],
        ],
    ))  # fmt: skip
    tonic = "every tune moved to C (tonic restored on output)" if vocabulary["transpose"] else "tonic as a token"
    augment = f", augmented by {vocabulary['augment']} semitones" if vocabulary["augment"] else ""
    console.print(
        f"[bold]vocabulary[/] {vocabulary['size']} tokens: {vocabulary['notes']} notes, {vocabulary['conditions']} "
        f"conditions, 4 specials · {tonic}{augment}"
    )
    policy = "become <unk>" if vocabulary["rare_policy"] == "unk" else "drop their tunes"
    examples = " ".join(vocabulary["rare_examples"][:8])
    console.print(
        f"[bold]rare tokens[/] (seen < {vocabulary['min_count']} times in training; they {policy}): "
        f"{vocabulary['rare_tokens']} tokens, {vocabulary['rare_occurrences']:,} notes{f' (e.g. {examples})' if examples else ''}"
        f" · unseen in training: {vocabulary['unseen_tokens']} tokens, {vocabulary['unseen_occurrences']:,} notes"
    )


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_corpus_evaluation(report) -> None:
    """A corpus model's scores against its baselines (a :class:`nabiya.corpus_eval.CorpusEvaluation`)."""
    from rich.table import Table

    console = _console()
    title = (f"{report.preset} on the {report.part} tunes: {report.tunes} tunes, {report.positions:,} scored positions "
             "(notes, <unk> and ends), the same for every model")  # fmt: skip
    from rich import box

    grid = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=title, title_justify="left", caption="NLL per note; pitch / duration: the token's pitch or "
                 "duration alone (the other summed out)", caption_justify="left")  # fmt: skip
    columns = ("model", "nats", "bits", "ppl", "acc", "pitch acc", "dur acc", "pitch nats", "dur nats")
    for column in columns:
        grid.add_column(column, justify="left" if column == "model" else "right")
    names = [report.preset, f"{report.ngram_order}-gram", "unigram"]
    for name, row in zip(names, report.table()):
        grid.add_row(name, f"{row['nll_nats']:.4f}", f"{row['nll_bits']:.4f}", f"{row['perplexity']:.2f}",
                     f"{row['accuracy']:.1%}", f"{row['pitch_accuracy']:.1%}", f"{row['duration_accuracy']:.1%}",
                     f"{row['pitch_nll_nats']:.3f}", f"{row['duration_nll_nats']:.3f}")  # fmt: skip
    console.print(grid)
    below = 100 * report.improvement
    verdict = "[green]" if below >= 15 else "[yellow]"
    console.print(f"{verdict}the model's NLL is {below:.1f}% {'below' if below >= 0 else 'above'} the "
                  f"{report.ngram_order}-gram's[/] (the goal: 15% below)")  # fmt: skip
    samples = report.samples
    if samples is not None:
        import numpy as np

        runs = samples.copied_runs
        console.print(
            f"[bold]{len(samples.tunes)} new tunes[/]: {samples.ended_share:.0%} end by themselves · "
            f"{samples.whole_bars_share:.0%} last a whole number of bars · longest run of notes copied from a "
            f"training tune: median {np.median(runs):.0f}, max {max(runs, default=0)} (held-out test tunes: "
            f"median {np.median(samples.test_copied_runs):.0f}, max {max(samples.test_copied_runs, default=0)})"
        )  # fmt: skip


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
