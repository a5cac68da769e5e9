"""Why a window is not enough: where a song continues the same notes in different ways.

A model that sees only the last ``w`` notes (the tutorial's MLP and plain LSTM, ``w = 4``)
gives one answer per window. Where the same ``w`` notes occur twice with different notes
after them, it must get at least one of those places wrong: its best is to answer, for each
window, the continuation the song uses most often after it. That bound is the *ceiling*:
for 나비야 at window 4, four windows occur with two continuations (9 places) and the best
any window-only model can do is 46 of 50 notes, 92%.

A stateful model carries what it has read since the song's start, so it can tell those
places apart, if it remembers far enough back. The *memory needed* says how far:

    A *place* is a note a model predicts: with window ``w``, note ``w`` onwards (0-based;
    the first ``w`` notes are given). For a place ``p`` and each place ``q`` that the song
    continues with another note, count the notes right before ``p`` that equal the notes
    right before ``q`` (their common context), and add one: the nearest note back that
    tells them apart. Positions before the song's first note read as "the start": a
    stateful model begins every pass from its reset state, so it can know where the song
    begins. A place's memory is the largest such count over those ``q``; the song's memory
    needed (at window ``w``) is the largest over its places.

Two different places always differ somewhere, at the latest at the start: the contexts
before ``p < q`` can agree on at most all ``p`` notes before ``p``, and then the start (at
distance ``p + 1``) tells them apart. A place can be told apart by no note of the song
only when the whole song before it recurs right before a place continued differently
(:attr:`Distinction.reaches_start`); for 나비야, the 7 notes before note 8 recur before
note 49. So the memory needed is always finite, at most the place's position plus one.

Where the window is ambiguous, the memory needed equals the smallest window that makes
every continuation unique: both are one more than the longest context that two places
with different continuations share. It is at most ``w`` exactly when the window alone tells
every place apart (ceiling 100%); when larger, only the carried state can, and it must
carry ``memory - w`` notes from before the window.

Everything here works on a sequence of hashable tokens (notes, token indices, strings):
no files, no JAX. ``nabiya.analyze(song)`` is the API over songs.

Example:
    >>> analysis = analyze_tokens("abcabd")          # 'ab' is followed by 'c', then by 'd'
    >>> window = analysis.at(2)
    >>> window.ambiguous[0].notes, window.ceiling, window.memory_notes
    (('a', 'b'), 0.75, 3)
    >>> analysis.unique_window
    3
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np

from nabiya.errors import NabiyaError


@dataclass(frozen=True)
class AmbiguousWindow:
    """``w`` consecutive notes that the song continues in more than one way.

    Attributes:
        notes: the window's ``w`` tokens.
        places: 0-based indices of the notes that follow each occurrence, in song order.
        continuations: the token at each place, in the same order.
        memory: for each place, how many notes back a model must see to tell it apart from
            every place continued otherwise (see the module docstring); each is above ``w``.
    """

    notes: tuple
    places: tuple[int, ...]
    continuations: tuple
    memory: tuple[int, ...]

    @property
    def counts(self) -> dict:
        """How often each continuation follows the window, in order of first appearance."""
        return dict(Counter(self.continuations))

    @property
    def best(self) -> int:
        """How many of its places a window-only model can get right: the commonest continuation's count."""
        return max(Counter(self.continuations).values())


@dataclass(frozen=True)
class Distinction:
    """The place that needs the longest memory, and a place it must be told apart from.

    Attributes:
        place: 0-based index of the note to predict (the first such place in song order).
        other: 0-based index of a place the song continues differently, with the longest
            context in common with ``place``.
        notes: how many notes back a model must see to tell them apart: the common
            context plus one.
        reaches_start: the common context is the earlier place's whole prefix, so only
            the song's start tells them apart.
    """

    place: int
    other: int
    notes: int
    reaches_start: bool

    @property
    def shared(self) -> int:
        """How many notes right before the two places are the same."""
        return self.notes - 1


@dataclass(frozen=True)
class WindowReport:
    """What a window of ``window`` notes can and cannot tell apart in one song.

    Attributes:
        window: notes a model sees.
        samples: places predicted, ``len(song) - window`` (the tutorial's 50 for 나비야).
        ambiguous: the windows that occur with more than one continuation, in order of
            their first place.
        best_matches: the most places any window-only model can get right.
        memory: the place needing the longest memory (see the module docstring), or
            ``None`` when every place has the same continuation.
    """

    window: int
    samples: int
    ambiguous: tuple[AmbiguousWindow, ...]
    best_matches: int
    memory: Distinction | None

    @property
    def ceiling(self) -> float:
        """The highest accuracy a model that sees only the window can reach, in [0, 1]."""
        return self.best_matches / self.samples

    @property
    def ambiguous_places(self) -> int:
        """How many places have an ambiguous window."""
        return sum(len(entry.places) for entry in self.ambiguous)

    @property
    def memory_notes(self) -> int:
        """Notes back a model must remember to tell every place apart (0: every continuation is the same)."""
        return self.memory.notes if self.memory else 0

    @property
    def carried_notes(self) -> int:
        """Of ``memory_notes``, how many lie before the window: what only a carried state can hold."""
        return max(0, self.memory_notes - self.window)

    @property
    def memory_by_place(self) -> dict[int, int]:
        """For each ambiguous place (0-based, in song order), the notes back that tell it apart.

        The places needing the most are where a stateful model that does not remember
        far enough goes wrong.
        """
        return dict(sorted((place, notes) for entry in self.ambiguous for place, notes in zip(entry.places, entry.memory)))

    def to_json(self) -> dict:
        """The report as plain JSON data; places are 1-based note numbers, notes as note codes."""
        return _report_json(self)


# The tutorial's stateful presets train one window at a time: no gradient flows into the state a
# window receives, so what lies further back than the gradient reaches is carried by a state that is
# never trained to keep it. How far such untrained memory reaches was measured on real tunes
# (benchmarks/memory_survey.py; see benchmarks/README.md): stateful2 with the tutorial's defaults
# memorised 18 of the 19 tunes needing at most 16 notes before its window, and 6 of the 20 needing
# more (3 of 5 needing 17-20, none of 5 needing 29 or more).
UNTRAINED_CARRY_NOTES = 16

# The table goes up to the smallest unique window by default, but not beyond this many rows.
DEFAULT_MAX_WINDOW = 64


@dataclass(frozen=True)
class Assessment:
    """Whether a model setting can learn to predict every note of a song, and why.

    Attributes:
        window: notes the model sees at once.
        stateful: whether it carries state from window to window.
        gradient_notes: how many notes before a prediction the training's gradient reaches
            (the window, for the tutorial's presets: one window per step).
        ceiling: the highest accuracy it can reach by construction (1.0 unless stateless
            on an ambiguous window).
        memory_notes: notes back the song needs a model to remember.
        carried_notes: of those, how many lie before the window and must come through the
            carried state (0 when the window suffices).
        untrained_notes: of those, how many lie beyond the gradient's reach: the state must
            keep them without being trained to.
        verdict: ``'window'`` (the window alone tells every place apart), ``'ceiling'`` (a
            stateless model cannot: at most ``ceiling``), ``'state'`` (the carried state can,
            within what training was measured to reach) or ``'beyond'`` (the state must
            keep more than ``UNTRAINED_CARRY_NOTES`` notes it is not trained to keep: not
            expected to be learnt reliably).
        reason: one sentence for a person.
    """

    window: int
    stateful: bool
    gradient_notes: int
    ceiling: float
    memory_notes: int
    carried_notes: int
    untrained_notes: int
    verdict: str
    reason: str

    @property
    def can_reach_100(self) -> bool:
        """False when the setting cannot reach 100% by construction (a stateless model on an ambiguous window)."""
        return self.verdict != "ceiling"

    @property
    def expected_to_suffice(self) -> bool:
        """Whether training with this setting is expected to reach 100%: ``'window'`` or ``'state'``."""
        return self.verdict in ("window", "state")

    def to_json(self) -> dict:
        """The assessment as plain JSON data (what ``nabiya analyze --json`` lists per preset)."""
        return {"window": self.window, "stateful": self.stateful, "verdict": self.verdict,
                "expected_to_suffice": self.expected_to_suffice, "ceiling": self.ceiling,
                "carried_notes": self.carried_notes, "untrained_notes": self.untrained_notes, "reason": self.reason}


@dataclass(frozen=True)
class SongAnalysis:
    """A song's ambiguous windows, ceilings and memory needed, for windows ``1 … max_window``.

    Attributes:
        tokens: the song's tokens, in order.
        windows: one :class:`WindowReport` per window size, ``windows[w - 1]`` for window ``w``.
        unique_window: the smallest window that makes every continuation unique.
        title: the song's title, for display.
    """

    tokens: tuple
    windows: tuple[WindowReport, ...]
    unique_window: int
    title: str = ""

    @property
    def max_window(self) -> int:
        return len(self.windows)

    @property
    def memory_notes(self) -> int:
        """How far back a stateful model must remember to tell every place apart, in notes.

        The largest memory over all window sizes (it is the same at every ambiguous
        window, and equals ``unique_window`` unless every continuation is the same).
        """
        return max(report.memory_notes for report in self.windows)

    def at(self, window: int) -> WindowReport:
        """The report for one window size (computed when beyond ``max_window``).

        Raises:
            NabiyaError: when the window is below 1 or leaves no note to predict.
        """
        if 1 <= window <= len(self.windows):
            return self.windows[window - 1]
        return window_report(self.tokens, window, title=self.title)

    def assess(self, window: int, *, stateful: bool, gradient_notes: int | None = None) -> Assessment:
        """Whether a model of this window, stateful or not, can learn every note, and why.

        See :func:`assess`.

        Example:
            >>> analyze_tokens("abcabd").assess(2, stateful=False).ceiling
            0.75
        """
        return _assessment(self.at(window), stateful, gradient_notes)

    def assess_preset(self, preset) -> Assessment:
        """:meth:`assess` for a preset's setting: its window, whether it is stateful.

        Args:
            preset: a preset's name (``'stateful2'``) or a :class:`~nabiya.config.RunConfig`.

        Example:
            >>> analyze_tokens("abcabd").assess_preset("mlp").verdict
            'window'
        """
        config = _config(preset)
        return self.assess(config.window, stateful=_is_stateful(config))

    def assess_presets(self) -> dict[str, Assessment]:
        """:meth:`assess_preset` for each of the tutorial's presets, by name.

        Example:
            >>> {name: a.verdict for name, a in analyze_tokens("abcdxabcdy").assess_presets().items()}
            {'mlp': 'ceiling', 'lstm': 'ceiling', 'stateful': 'state', 'stateful2': 'state'}
        """
        from nabiya.config import PRESETS

        return {name: self.assess_preset(config) for name, config in PRESETS.items()}

    def plot(self, *, window: int = 4, ax=None):
        """The ceiling against the window size, ``window`` marked (a matplotlib Figure).

        See :func:`nabiya.plots.plot_ceiling`.
        """
        from nabiya.plots import plot_ceiling

        return plot_ceiling(self, window=window, ax=ax)

    def to_json(self) -> dict:
        """The analysis as plain JSON data; places are 1-based note numbers, notes as note codes."""
        return {
            "title": self.title,
            "notes": len(self.tokens),
            "unique_window": self.unique_window,
            "memory_notes": self.memory_notes,
            "windows": [_report_json(report) for report in self.windows],
        }


def analyze_tokens(tokens: Sequence[Hashable], *, max_window: int | None = None, title: str = "") -> SongAnalysis:
    """Analyse a sequence of tokens for windows ``1 … max_window``.

    Args:
        tokens: the song, one hashable token per note (``Note`` objects, token indices,
            strings); equal tokens are the same note. At least 2.
        max_window: the largest window to report; by default the smallest unique window
            (so that the ceiling reaches 100%), at least 8, at most ``DEFAULT_MAX_WINDOW``
            (64) and ``len(tokens) - 1``. Time grows as ``len(tokens)²`` (0.3 s for 1,000
            notes, 3 s for 10,000 on one core), memory as ``len(tokens) * max_window``.
        title: the song's title, for messages and display.

    Returns:
        The :class:`SongAnalysis`.

    Raises:
        NabiyaError: for fewer than 2 tokens, or a ``max_window`` that leaves no note to predict.

    Example:
        >>> analysis = analyze_tokens([1, 2, 3, 1, 2, 4, 1, 2, 3])
        >>> [(w.window, w.best_matches, w.samples) for w in analysis.windows[:3]]
        [(1, 7, 8), (2, 6, 7), (3, 6, 6)]
        >>> analysis.unique_window
        3
    """
    tokens = tuple(tokens)
    _check_length(tokens, title)
    if max_window is not None:
        _check_window(max_window, len(tokens), title)
    contexts = _Contexts.of(tokens, max_windows=max_window or DEFAULT_MAX_WINDOW)
    # Window w is ambiguous exactly when two places continued differently share w notes.
    unique = max(contexts.longest + 1, 1)
    if max_window is None:
        max_window = min(max(unique, 8), DEFAULT_MAX_WINDOW, len(tokens) - 1)
    windows = tuple(contexts.report(window) for window in range(1, max_window + 1))
    return SongAnalysis(tokens, windows, unique, title)


def window_report(tokens: Sequence[Hashable], window: int, *, title: str = "") -> WindowReport:
    """The :class:`WindowReport` of one window size, without the other sizes.

    Example:
        >>> window_report("abcabd", 2).best_matches
        3
    """
    tokens = tuple(tokens)
    _check_length(tokens, title)
    _check_window(window, len(tokens), title)
    return _Contexts.of(tokens, max_windows=window).report(window)


def assess(tokens: Sequence[Hashable], window: int, *, stateful: bool, gradient_notes: int | None = None,
           title: str = "") -> Assessment:
    """Whether a model of ``window`` notes can learn every note of a song, and why.

    A stateless model reaches 100% only if the window alone tells every place apart; else
    it is bounded by the window's ceiling. A stateful model can in principle reach 100% on
    any song, since different places differ at the latest at the song's start, but what
    lies before its window must come through the state it carries. Where that lies within
    ``gradient_notes`` of the prediction, training shapes the state to keep it; beyond, the
    state must keep it untrained, which was measured to work up to ``UNTRAINED_CARRY_NOTES``
    notes (verdict ``'state'``) and not reliably further (``'beyond'``).

    Args:
        tokens: the song (see :func:`analyze_tokens`).
        window: notes the model sees at once.
        stateful: whether the model carries state from window to window.
        gradient_notes: notes before a prediction that training backpropagates through;
            the window by default (the tutorial's presets: one window per step).

    Example:
        >>> assess("abcabd", 2, stateful=False).reason
        'a 2-note window cannot tell 2 places apart (1 window continued in more than one way): at most 75% (3/4)'
        >>> assess("abcabd", 2, stateful=True).verdict
        'state'
    """
    return _assessment(window_report(tokens, window, title=title), stateful, gradient_notes)


def assess_preset(tokens: Sequence[Hashable], preset, *, title: str = "") -> Assessment:
    """:func:`assess` for a preset's setting: its window, whether it is stateful.

    Args:
        tokens: the song (see :func:`analyze_tokens`).
        preset: a preset's name (``'mlp'``) or a :class:`~nabiya.config.RunConfig`.

    Example:
        >>> assess_preset("abcdxabcdy", "mlp").ceiling
        0.8333333333333334
    """
    config = _config(preset)
    return assess(tokens, config.window, stateful=_is_stateful(config), title=title)


def _config(preset):
    from nabiya.config import preset as get_preset

    return get_preset(preset) if isinstance(preset, str) else preset


def _is_stateful(config) -> bool:
    return config.model.stateful


def _assessment(report: WindowReport, stateful: bool, gradient_notes: int | None = None) -> Assessment:
    window, memory, carried = report.window, report.memory_notes, report.carried_notes
    reach = max(window, gradient_notes or window)
    untrained = max(0, memory - reach) if stateful else 0

    def result(verdict: str, ceiling: float, reason: str) -> Assessment:
        return Assessment(window, stateful, reach, ceiling, memory, carried, untrained, verdict, reason)

    if carried == 0:
        return result("window", 1.0, f"a {window}-note window tells every place apart")
    count = len(report.ambiguous)
    cannot = (
        f"a {window}-note window cannot tell {report.ambiguous_places} places apart "
        f"({count} window{'s' if count != 1 else ''} continued in more than one way)"
    )
    if not stateful:
        return result("ceiling", report.ceiling,
                      f"{cannot}: at most {report.ceiling:.0%} ({report.best_matches}/{report.samples})")
    needs = f"{cannot}: the carried state must remember {memory} notes back, {carried} before the window"
    if untrained == 0:
        return result("state", 1.0, f"{needs}, all within the {reach} notes training backpropagates through")
    if untrained <= UNTRAINED_CARRY_NOTES:
        return result("state", 1.0, f"{needs}; {untrained} beyond the {reach} notes training backpropagates "
                      f"through, within the {UNTRAINED_CARRY_NOTES} such notes training was measured to learn")
    return result("beyond", 1.0, f"{needs}; {untrained} beyond the {reach} notes training backpropagates "
                  f"through, more than the {UNTRAINED_CARRY_NOTES} such notes training was measured to learn "
                  "reliably: not expected to reach 100%")


@dataclass(frozen=True)
class _Contexts:
    """What the left contexts of a song's places share, enough to report windows ``1 … max_windows``.

    ``common(p, q)`` is how many notes right before place ``p`` equal those right before
    ``q``: the longest common suffix of ``codes[:p]`` and ``codes[:q]``, at most
    ``min(p, q)``. It follows ``common(p, q) = common(p-1, q-1) + 1`` when ``codes[p-1] ==
    codes[q-1]``, else 0, so it is computed one row ``p`` at a time and never stored whole:
    time ``O(L²)``, memory ``O(L · max_windows)``.

    Attributes:
        tokens: the song's tokens; codes: the same as small integers, shape ``(L,)``.
        longest: the longest common context of two places with different continuations
            (-1 when every place has the same continuation).
        farthest: shape ``(L, max_windows + 1)``; ``[p, w]`` is the longest common context
            of ``p`` with a place ``q >= w`` continued differently, -1 when there is none.
    """

    tokens: tuple
    codes: np.ndarray
    longest: int
    farthest: np.ndarray

    @classmethod
    def of(cls, tokens: tuple, *, max_windows: int) -> "_Contexts":
        numbering: dict = {}
        codes = np.array([numbering.setdefault(token, len(numbering)) for token in tokens], dtype=np.int64)
        length = len(codes)
        last = min(max_windows, length - 1)
        farthest = np.empty((length, last + 1), dtype=np.int32)
        common = np.zeros(length, dtype=np.int32)  # common(p, q) for every q, row p
        for p in range(length):
            if p:
                same = codes[p - 1] == codes[:-1]  # (L-1,): note p-1 against each note q-1
                common = np.concatenate(([0], np.where(same, common[:-1] + 1, 0))).astype(np.int32)
            differing = np.where(codes != codes[p], common, -1)
            # Suffix maxima over q >= w, for w = 0 … last: the head one by one, the tail at once.
            head = np.append(differing[: last + 1], differing[last + 1 :].max(initial=-1))
            farthest[p] = np.maximum.accumulate(head[::-1])[::-1][: last + 1]
        longest = int(farthest[:, 0].max())
        return cls(tokens, codes, longest, farthest)

    def report(self, window: int) -> WindowReport:
        codes, tokens = self.codes, self.tokens
        samples = len(codes) - window
        # Memory of each place: one more than its longest common context with a differing place.
        memory = self.farthest[window:, window] + 1  # (samples,); 0 where no place differs
        views = np.lib.stride_tricks.sliding_window_view(codes, window)[:samples]  # (samples, window)
        _, group = np.unique(views, axis=0, return_inverse=True)
        group = group.reshape(-1)
        # How often each (window, continuation) pair occurs; a window's best is its commonest.
        pairs, counts = np.unique(np.stack([group, codes[window:]]), axis=1, return_counts=True)
        best = np.zeros(group.max() + 1, dtype=np.int64)
        np.maximum.at(best, pairs[0], counts)
        continuations = np.bincount(pairs[0])  # distinct continuations of each window
        ambiguous = []
        for members in _members(group, np.flatnonzero(continuations > 1)):
            places = tuple(int(index) + window for index in members)
            ambiguous.append(AmbiguousWindow(
                tokens[places[0] - window : places[0]], places, tuple(tokens[place] for place in places),
                tuple(int(memory[index]) for index in members),
            ))
        ambiguous.sort(key=lambda entry: entry.places[0])
        return WindowReport(window, samples, tuple(ambiguous), int(best.sum()), self._hardest(window, memory))

    def _hardest(self, window: int, memory: np.ndarray) -> Distinction | None:
        if memory.max() <= 0:
            return None
        place = window + int(np.argmax(memory))  # the first place needing the most
        shared = int(memory.max()) - 1
        codes = self.codes
        # The first place q >= window continued differently whose context shares `shared` notes.
        for other in range(window, len(codes)):
            if codes[other] != codes[place] and _common(codes, place, other) == shared:
                return Distinction(place, other, shared + 1, reaches_start=shared == min(place, other))
        raise AssertionError("unreachable: the longest common context has a partner")


def _common(codes: np.ndarray, p: int, q: int) -> int:
    """How many notes right before ``p`` equal those right before ``q`` (``p != q``)."""
    count = 0
    while count < min(p, q) and codes[p - 1 - count] == codes[q - 1 - count]:
        count += 1
    return count


def _members(group: np.ndarray, wanted: np.ndarray) -> list[np.ndarray]:
    """The sample indices of each wanted group, in song order."""
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], wanted, side="left")
    ends = np.searchsorted(group[order], wanted, side="right")
    return [order[start:end] for start, end in zip(starts, ends)]


def _check_length(tokens: tuple, title: str) -> None:
    if len(tokens) < 2:
        raise NabiyaError(f"{title or 'the song'} has {len(tokens)} note{'s' if len(tokens) != 1 else ''}: "
                          "analysing it needs at least 2 (a window and a note after it)")


def _check_window(window: int, length: int, title: str) -> None:
    if window < 1:
        raise NabiyaError(f"a window must be at least 1 note, not {window}")
    if window > length - 1:
        raise NabiyaError(f"a window of {window} leaves no note to predict: {title or 'the song'} has {length} notes, "
                          f"so windows go up to {length - 1}")


def _report_json(report: WindowReport) -> dict[str, Any]:
    memory = report.memory
    return {
        "window": report.window,
        "samples": report.samples,
        "best_matches": report.best_matches,
        "ceiling": report.ceiling,
        "ambiguous_places": report.ambiguous_places,
        "memory_notes": report.memory_notes,
        "carried_notes": report.carried_notes,
        "hardest": None if memory is None else {
            "note": memory.place + 1, "other_note": memory.other + 1, "shared_notes": memory.shared,
            "reaches_start": memory.reaches_start,
        },
        "ambiguous": [
            {
                "window": [_token_text(token) for token in entry.notes],
                "notes": [place + 1 for place in entry.places],
                "continuations": [_token_text(token) for token in entry.continuations],
                "memory_notes": list(entry.memory),
            }
            for entry in report.ambiguous
        ],
    }


def _token_text(token: Any) -> Any:
    """A token as JSON: a note as its code, a number or string as itself."""
    code = getattr(token, "code", None)
    if code is not None:
        return code
    if isinstance(token, (np.integer,)):
        return int(token)
    return token if isinstance(token, (int, str)) else str(token)
