"""The song analysis for the page: why a window of notes is not always enough (over ``nabiya.analyze``).

For a song and a window size, the page shows the ceiling a window-only model can reach,
the ambiguous windows marked on the sheet music, the smallest window that makes every
continuation unique, the memory a stateful model needs, and the ceiling against the
window size. Next to a training run it says what the run's preset could reach.

**How the score is marked.** Each ambiguous window has a colour (:data:`PALETTE`, which
colour-blind readers tell apart, repeating after six). The window's notes, at every place
it occurs, take a pale tint of it; the note that follows each occurrence takes the full
colour. So a reader sees the same pale notes again and again, followed by different
strong ones. A note that is the continuation of one window is never also coloured as
another's window (continuations are drawn last); where windows overlap, the first takes
the note.

Everything here is numpy and music21/verovio, no JAX: the server runs it (in a thread).
"""

from __future__ import annotations

from nabiya.analysis import SongAnalysis, WindowReport
from nabiya.errors import NabiyaError
from nabiya.music.song import Song

# Okabe and Ito's colours without yellow and black (too faint, and the notes' own colour);
# vermilion last, so that the first windows never look like the red of a wrong note.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")
PALE = 0.45  # how far a window's tint goes from its colour towards white
MARKED_SCALE = 70  # larger notes than the plain score's (50), so that colours are easy to tell apart
# The analysis takes time as the square of the song's length (about 1 s for 5,000 notes).
MAX_ANALYSIS_NOTES = 5_000
LEGEND_ROWS = 12  # ambiguous windows listed by name; the rest are counted


def analysis_facts(song: Song, window: int, *, score_url: str = "") -> dict:
    """What the page shows of a song's analysis at one window size, as JSON data.

    Args:
        song: the song (at least 2 notes, at most :data:`MAX_ANALYSIS_NOTES`).
        window: the notes a model sees; the table goes up to it if it is beyond the
            default (the smallest unique window, at least 8).
        score_url: where the page finds the marked score (echoed as ``score``).

    Returns:
        ``title``, ``notes``, ``window``, ``unique_window``, ``memory_notes`` (the song's),
        ``at`` (the window's report: :meth:`~nabiya.analysis.WindowReport.to_json`, each
        ambiguous window with its ``color`` and ``pale`` tint, ``counts`` of each continuation and ``best``),
        ``memory`` (a sentence), ``curve`` (per window size: ``window``, ``ceiling``,
        ``best_matches``, ``samples``, ``ambiguous_windows``, ``ambiguous_places``,
        ``carried_notes``), ``presets`` (each preset's assessment), ``legend_rows`` and
        ``score``.

    Raises:
        NabiyaError: the CLI's message for a song too short or a window too long, or a
            song too long to analyse here.

    Example:
        >>> from nabiya.music.songs import get_song
        >>> facts = analysis_facts(get_song("nabiya"), 4)
        >>> facts["at"]["best_matches"], facts["at"]["samples"], len(facts["at"]["ambiguous"]), facts["unique_window"]
        (46, 50, 4, 8)
    """
    from nabiya.display import describe_memory

    analysis = analyze_song(song, window)
    report = analysis.at(window)
    at = report.to_json()
    for index, (entry, data) in enumerate(zip(report.ambiguous, at["ambiguous"])):
        data["color"] = window_color(index)
        data["pale"] = _tint(data["color"])
        data["counts"] = {code: data["continuations"].count(code) for code in dict.fromkeys(data["continuations"])}
        data["best"] = entry.best
    return {
        "title": analysis.title,
        "notes": len(analysis.tokens),
        "window": window,
        "unique_window": analysis.unique_window,
        "memory_notes": analysis.memory_notes,
        "at": at,
        "memory": describe_memory(analysis, window),
        "curve": [
            {"window": row.window, "ceiling": row.ceiling, "best_matches": row.best_matches, "samples": row.samples,
             "ambiguous_windows": len(row.ambiguous), "ambiguous_places": row.ambiguous_places,
             "carried_notes": row.carried_notes}
            for row in analysis.windows
        ],
        "presets": {name: assessment.to_json() for name, assessment in analysis.assess_presets().items()},
        "legend_rows": LEGEND_ROWS,
        "score": score_url,
    }


def analyze_song(song: Song, window: int) -> SongAnalysis:
    """``nabiya.analyze(song)``, reaching at least ``window``; refuses songs too long to analyse here."""
    import nabiya

    if len(song) > MAX_ANALYSIS_NOTES:
        raise NabiyaError(
            f"{song.title or 'the song'} has {len(song):,} notes: the playground analyses songs of at most "
            f"{MAX_ANALYSIS_NOTES:,}"
        )
    analysis = nabiya.analyze(song)
    if analysis.max_window < window < len(song):
        analysis = nabiya.analyze(song, max_window=window)  # the curve reaches the window asked for
    analysis.at(window)  # a window the song cannot have fails here, in the CLI's words
    return analysis


def marked_score(song: Song, window: int, *, only: int | None = None) -> str:
    """The song's sheet music (SVG) with its ambiguous windows of ``window`` notes marked.

    Args:
        song: the song.
        window: the window size whose ambiguous windows are marked.
        only: mark just this one (0-based, in the order of :func:`analysis_facts`'s list);
            all of them when None.

    Raises:
        NabiyaError: as :func:`analysis_facts`, and for ``only`` beyond the list.
    """
    from nabiya.music.scores import song_to_svg

    report = analyze_song(song, window).at(window)
    if only is not None and not 0 <= only < len(report.ambiguous):
        count = len(report.ambiguous)
        raise NabiyaError(f"mark must be from 1 to {count}, the ambiguous windows of {window} notes, not {only + 1}"
                          if count else f"no window of {window} notes is continued in more than one way: nothing to mark")
    return song_to_svg(song, colors=window_colors(report, only=only), scale=MARKED_SCALE)


def window_colors(report: WindowReport, *, only: int | None = None) -> dict[int, str]:
    """The colour of each marked note, by 0-based index into the song (see the module docstring).

    Example:
        >>> from nabiya.analysis import window_report
        >>> window_colors(window_report("abcabd", 2))        # 'ab' twice: pale, then 'c' and 'd' strong
        {0: '#73b1d5', 1: '#73b1d5', 3: '#73b1d5', 4: '#73b1d5', 2: '#0072b2', 5: '#0072b2'}
    """
    pale: dict[int, str] = {}
    strong: dict[int, str] = {}
    for index, entry in enumerate(report.ambiguous):
        if only is not None and index != only:
            continue
        color = window_color(index)
        for place in entry.places:
            strong[place] = color
            for note in range(place - report.window, place):
                pale.setdefault(note, _tint(color))
    return {**{note: color for note, color in pale.items() if note not in strong}, **strong}


def window_color(index: int) -> str:
    """The colour of the ``index``-th ambiguous window (0-based); the palette repeats."""
    return PALETTE[index % len(PALETTE)]


def training_expectation(song: Song, config) -> dict:
    """What a preset can reach on a song by construction, for the page to show beside its training.

    Returns:
        The assessment (:meth:`~nabiya.analysis.Assessment.to_json`) with ``best_matches``
        and ``samples`` of the preset's window, ``ambiguous_notes`` (1-based numbers of the
        notes that follow an ambiguous window), ``memory`` (a sentence)
        and ``summary``: one plain sentence to put beside the run's accuracy.

    Example:
        >>> from nabiya.config import preset
        >>> from nabiya.music.songs import get_song
        >>> training_expectation(get_song("nabiya"), preset("mlp"))["summary"]
        '92% is the most a 4-note window can reach on this song (46 of 50 notes)'
    """
    from nabiya.analysis import analyze_tokens
    from nabiya.display import describe_memory

    window = config.window
    analysis = analyze_tokens(song.notes, max_window=min(window, len(song) - 1), title=song.title)
    report = analysis.at(window)
    assessment = analysis.assess_preset(config)
    data = {**assessment.to_json(), "best_matches": report.best_matches, "samples": report.samples,
            "ambiguous_notes": sorted(place + 1 for entry in report.ambiguous for place in entry.places),
            "memory": describe_memory(analysis, window)}
    if assessment.verdict == "ceiling":
        summary = (f"{report.ceiling:.0%} is the most a {window}-note window can reach on this song "
                   f"({report.best_matches} of {report.samples} notes)")
    elif assessment.verdict == "window":
        summary = f"a {window}-note window tells every place in this song apart: 100% is possible"
    else:
        carried = assessment.carried_notes
        summary = (f"a model that sees only its {window}-note window could reach at most {report.ceiling:.0%} on this "
                   f"song; this one also carries what it read before the window, and "
                   f"{carried} note{'s' if carried != 1 else ''} from before it tell every place apart")
        summary += (": 100% is possible" if assessment.expected_to_suffice else
                    ", more than its one-window training was measured to learn: 100% is not expected")
    data["summary"] = summary
    return data


def _tint(color: str) -> str:
    """``color`` (``#rrggbb``) moved :data:`PALE` of the way towards white."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c + (255 - c) * PALE):02x}" for c in (red, green, blue))
