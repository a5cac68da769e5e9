"""The song analysis: ambiguous windows, the window-only ceiling, the smallest unique window, the memory needed.

Small made-up songs whose answers are worked out by hand (in the comments), 나비야's published numbers,
and random songs checked against a brute-force reading of the definitions.
"""

from collections import Counter

import numpy as np
import pytest

import nabiya
from nabiya.analysis import analyze_tokens, assess, window_report
from nabiya.errors import NabiyaError

# --- made-up songs, answers by hand ---------------------------------------------------------


def test_one_window_with_two_continuations_reaching_the_start():
    # a b c a b d: 'a b' is followed by c (place 2) and by d (place 5). The 2 notes before
    # place 2 are the whole song so far and recur before place 5: only the start (3 back)
    # tells them apart.
    analysis = analyze_tokens("abcabd")
    report = analysis.at(2)
    assert [(entry.notes, entry.places, entry.continuations) for entry in report.ambiguous] == [
        (("a", "b"), (2, 5), ("c", "d"))
    ]
    assert (report.samples, report.best_matches, report.ceiling) == (4, 3, 0.75)
    assert report.memory.notes == 3 and report.memory.reaches_start
    assert {report.memory.place, report.memory.other} == {2, 5}
    assert report.carried_notes == 1 and report.ambiguous[0].memory == (3, 3)
    # window 1: 'b' is followed by c and d; a->b twice, c->a once: 4 of 5 at best.
    assert analysis.at(1).best_matches == 4 and analysis.at(1).ambiguous[0].notes == ("b",)
    assert analysis.unique_window == 3 and analysis.memory_notes == 3


def test_a_note_further_back_tells_two_places_apart():
    # x a b c y a b d: 'a b' is followed by c (place 3) and d (place 7); the notes before them,
    # x and y, differ: 3 notes back, not the start.
    analysis = analyze_tokens("xabcyabd")
    report = analysis.at(2)
    assert [entry.places for entry in report.ambiguous] == [(3, 7)]
    assert (report.best_matches, report.samples) == (5, 6)
    assert report.memory.notes == 3 and not report.memory.reaches_start
    assert analysis.unique_window == 3
    assert analysis.at(3).ambiguous == () and analysis.at(3).ceiling == 1.0


def test_counting_a_run_of_one_note_needs_the_whole_run():
    # a a a a a b: after four a's comes a (place 4) and b (place 5); the 4 notes before place 4
    # are the song's start, so 5 notes back (the start) tells them apart.
    analysis = analyze_tokens("aaaaab")
    report = analysis.at(4)
    assert [(entry.places, entry.continuations) for entry in report.ambiguous] == [((4, 5), ("a", "b"))]
    assert report.ceiling == 0.5
    assert report.memory.notes == 5 and report.memory.reaches_start and report.carried_notes == 1
    assert analysis.at(1).best_matches == 4  # a -> a four times, a -> b once
    assert analysis.unique_window == 5 and analysis.memory_notes == 5


def test_phrases_two_and_three_the_same_and_phrase_four_like_phrase_one():
    # A B B A': c d e f | g a g f | g a g f | c d e c. Phrase 2 is followed by g, phrase 3 by c:
    # the 5 notes before them (f | g a g f) agree, the 6th back (e against g) differs.
    # At window 4 that is the only ambiguous window ('g a g f', places 8 and 12): 11/12.
    # At window 3, 'c d e' is followed by f (place 3) and c (place 15), the start telling them apart.
    song = "cdef" "gagf" "gagf" "cdec"
    report = analyze_tokens(song).at(4)
    assert [(entry.notes, entry.places, entry.continuations) for entry in report.ambiguous] == [
        (tuple("gagf"), (8, 12), ("g", "c"))
    ]
    assert (report.best_matches, report.samples) == (11, 12)
    assert (report.memory.place, report.memory.other, report.memory.notes) == (8, 12, 6)
    assert not report.memory.reaches_start and report.carried_notes == 2
    three = analyze_tokens(song).at(3)
    assert {entry.notes: entry.places for entry in three.ambiguous}[tuple("cde")] == (3, 15)
    assert analyze_tokens(song).unique_window == 6


def test_the_commonest_continuation_sets_the_ceiling():
    # 'a' is followed by b three times and by c once: a window-only model gets 3 of those 4.
    report = analyze_tokens("abxabyabzacw").at(1)
    counts = {entry.notes: entry.counts for entry in report.ambiguous}
    assert counts[("a",)] == {"b": 3, "c": 1}
    assert next(entry for entry in report.ambiguous if entry.notes == ("a",)).best == 3


def test_songs_without_ambiguity():
    distinct = analyze_tokens("abcdefg")
    assert distinct.unique_window == 1 and all(report.ceiling == 1.0 for report in distinct.windows)
    assert distinct.memory_notes == 1  # the last note tells every place apart
    same = analyze_tokens("aaaa")
    assert same.unique_window == 1 and same.memory_notes == 0 and same.at(1).memory is None
    assert same.assess(1, stateful=False).verdict == "window"


def test_tokens_may_be_notes_numbers_or_strings():
    codes = "g8 e8 e4 g8 e8 d4"
    from_notes = analyze_tokens(nabiya.Song.from_codes(codes).notes)
    from_numbers = analyze_tokens([0, 1, 2, 0, 1, 3])
    assert [(r.best_matches, r.memory_notes) for r in from_notes.windows] == \
        [(r.best_matches, r.memory_notes) for r in from_numbers.windows]
    assert from_notes.to_json()["windows"][1]["ambiguous"][0]["continuations"] == ["e4", "d4"]


def test_notes_of_one_pitch_and_length_are_one_token_whatever_their_spelling():
    # f#8 and gb8 are the same key: the window 'f#8' / 'gb8' is one window with two continuations.
    report = analyze_tokens(nabiya.Song.from_codes("f#8 c4 gb8 d4").notes).at(1)
    assert report.ambiguous_places == 2


# --- random songs against the definitions ----------------------------------------------------


def _brute_force(tokens, window):
    """(best matches, memory needed, smallest unique window) straight from the definitions."""
    places = range(window, len(tokens))
    followers = {}
    for place in places:
        followers.setdefault(tuple(tokens[place - window : place]), []).append(tokens[place])
    best = sum(max(Counter(found).values()) for found in followers.values())

    def context(place, length):  # the `length` notes before `place`; None before the song's start
        return tuple(tokens[i] if i >= 0 else None for i in range(place - length, place))

    memory = 0
    for p in places:
        others = [q for q in places if tokens[q] != tokens[p]]
        if others:
            need = next(k for k in range(1, len(tokens) + 2) if all(context(p, k) != context(q, k) for q in others))
            memory = max(memory, need)
    unique = next(w for w in range(1, len(tokens)) if all(
        len(set(found)) == 1 for found in _followers(tokens, w).values()))
    return best, memory, unique


def _followers(tokens, window):
    found = {}
    for place in range(window, len(tokens)):
        found.setdefault(tuple(tokens[place - window : place]), []).append(tokens[place])
    return found


def test_random_songs_agree_with_the_definitions():
    rng = np.random.default_rng(0)
    for trial in range(60):
        length = int(rng.integers(2, 30))
        tokens = [int(t) for t in rng.integers(0, int(rng.integers(1, 4)), size=length)]
        analysis = analyze_tokens(tokens, max_window=length - 1)
        for report in analysis.windows:
            best, memory, unique = _brute_force(tokens, report.window)
            assert (report.best_matches, report.memory_notes, analysis.unique_window) == (best, memory, unique), \
                (tokens, report.window)
            # the memory needed at an ambiguous window is the smallest unique window
            if report.ambiguous:
                assert report.memory_notes == analysis.unique_window > report.window
            else:
                assert report.memory_notes <= report.window and report.ceiling == 1.0


# --- 나비야 ----------------------------------------------------------------------------------


def test_nabiya_four_ambiguous_windows_and_the_92_percent_ceiling():
    analysis = nabiya.analyze("nabiya")
    report = analysis.at(4)
    assert [([note.code for note in entry.notes], [place + 1 for place in entry.places],
             [note.code for note in entry.continuations]) for entry in report.ambiguous] == [
        (["f8", "d8", "d4", "c8"], [8, 22, 49], ["d8", "e8", "e8"]),
        (["e8", "e8", "e8", "f8"], [19, 41], ["d8", "g4"]),
        (["d8", "d8", "d8", "d8"], [32, 33], ["d8", "e8"]),
        (["e8", "e8", "e8", "e8"], [39, 40], ["e8", "f8"]),
    ]
    assert (report.best_matches, report.samples, report.ceiling) == (46, 50, 0.92)
    assert analysis.unique_window == 8 and [r.ceiling == 1.0 for r in analysis.windows].index(True) == 7


def test_nabiya_needs_eight_notes_of_memory_back_to_its_start():
    # Notes 8 and 49 follow the same 7 notes (the song's opening, g8 e8 e4 f8 d8 d4 c8, which closes
    # it again); only the start tells them apart.
    analysis = nabiya.analyze()
    memory = analysis.at(4).memory
    assert (memory.place + 1, memory.other + 1, memory.notes, memory.reaches_start) == (8, 49, 8, True)
    assert analysis.memory_notes == 8 and analysis.at(4).carried_notes == 4
    assert analysis.at(4).memory_by_place == {7: 8, 18: 5, 21: 5, 31: 5, 32: 5, 38: 5, 39: 5, 40: 5, 48: 8}


def test_assessments_of_the_tutorial_presets_on_nabiya():
    analysis = nabiya.analyze()
    stateless = analysis.assess(4, stateful=False)
    assert (stateless.verdict, stateless.ceiling, stateless.can_reach_100) == ("ceiling", 0.92, False)
    assert "at most 92% (46/50)" in stateless.reason and "9 places" in stateless.reason
    stateful = assess(nabiya.get_song("nabiya").notes, 4, stateful=True)
    assert (stateful.verdict, stateful.ceiling, stateful.carried_notes) == ("state", 1.0, 4)
    assert analysis.assess(8, stateful=False).verdict == "window"


def test_the_json_is_plain_data_with_note_numbers():
    import json

    data = json.loads(json.dumps(nabiya.analyze().to_json()))
    four = data["windows"][3]
    assert (four["window"], four["best_matches"], four["samples"], len(four["ambiguous"])) == (4, 46, 50, 4)
    assert four["ambiguous"][0] == {"window": ["f8", "d8", "d4", "c8"], "notes": [8, 22, 49],
                                    "continuations": ["d8", "e8", "e8"], "memory_notes": [8, 5, 8]}
    assert data["unique_window"] == 8 and data["memory_notes"] == 8
    assert four["hardest"] == {"note": 8, "other_note": 49, "shared_notes": 7, "reaches_start": True}


def test_the_plot_draws_the_ceiling_against_the_window():
    figure = nabiya.analyze().plot(window=4)
    ceilings = figure.axes[0].lines[0].get_ydata()
    assert len(ceilings) == 8 and round(ceilings[3]) == 92 and ceilings[-1] == 100


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: nabiya.analyze("g8"), "has 1 note: analysing it needs at least 2"),
        (lambda: nabiya.analyze("nabiya", max_window=54), "a window of 54 leaves no note to predict"),
        (lambda: nabiya.analyze("nabiya", max_window=0), "a window must be at least 1 note"),
        (lambda: nabiya.analyze().at(60), "나비야 (Butterfly) has 54 notes, so windows go up to 53"),
        (lambda: window_report("ab", 2), "a window of 2 leaves no note to predict"),
    ],
)
def test_bad_input_is_a_nabiya_error(call, message):
    with pytest.raises(NabiyaError, match=None) as error:
        call()
    assert message in str(error.value)


def test_the_comparison_plot_draws_the_window_only_ceiling(trained):
    comparison = nabiya.Comparison((trained("mlp"), trained("stateful2")))
    assert comparison.ceilings() == {"mlp: a 4-note window, at most 92%": 0.92}
    figure = comparison.plot()
    loss, accuracy = figure.axes[:2]
    assert loss.get_yscale() == "log"
    dashed = [line for line in accuracy.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [92.0, 92.0]
    assert "at most 92%" in [text.get_text() for text in accuracy.get_legend().get_texts()][-1]


def test_a_long_repeated_phrase_is_beyond_what_one_window_training_reaches():
    # A phrase of 25 different notes, then x; the same phrase, then y. Telling x's place from y's
    # needs all 25 notes and the start: 26 notes back, 22 before a 4-note window.
    from nabiya.analysis import UNTRAINED_CARRY_NOTES

    phrase = list(range(25))
    song = phrase + ["x"] + phrase + ["y"]
    verdict = assess(song, 4, stateful=True)
    assert (verdict.memory_notes, verdict.carried_notes, verdict.untrained_notes) == (26, 22, 22)
    assert verdict.verdict == "beyond" and not verdict.expected_to_suffice and verdict.can_reach_100
    assert "not expected to reach 100%" in verdict.reason
    # Training that backpropagates further leaves less for the untrained state to keep.
    assert UNTRAINED_CARRY_NOTES == 16
    assert assess(song, 4, stateful=True, gradient_notes=10).verdict == "state"  # 16 beyond the gradient
    assert assess(song, 4, stateful=True, gradient_notes=9).verdict == "beyond"  # 17 beyond it
    assert assess(song, 4, stateful=True, gradient_notes=26).untrained_notes == 0
    stateless = assess(song, 4, stateful=False)
    assert stateless.verdict == "ceiling" and stateless.ceiling == (len(song) - 4 - 1) / (len(song) - 4)


def test_the_tutorial_presets_are_assessed_by_name():
    analysis = nabiya.analyze()
    assert [analysis.assess_preset(name).verdict for name in nabiya.PRESETS] == ["ceiling", "ceiling", "state", "state"]
    assert analysis.assess_preset(nabiya.preset("stateful2")).expected_to_suffice


def _music21_tune(book: str, number: int):
    from pathlib import Path

    import music21

    return nabiya.read_song(Path(music21.__file__).parent / "corpus" / book, tune=number)


def test_a_reel_whose_first_ending_needs_more_memory_than_one_window_training_reaches():
    """Ryan's Mammoth Collection, 'The Roving Bachelor': its first strain is written out twice, ending
    differently, so note 27 (after the first statement) needs all 26 notes before it and the start. stateful2 and stateful, with the tutorial's
    defaults, get exactly that note wrong (benchmarks/README.md); the analysis says so in advance."""
    analysis = nabiya.analyze(_music21_tune("ryansMammoth/RovingBachelorReel.abc", 1), max_window=4)
    hardest = analysis.at(4).memory
    assert (hardest.place + 1, hardest.notes, hardest.reaches_start) == (27, 27, True)
    verdict = analysis.assess_preset("stateful2")
    assert verdict.verdict == "beyond" and verdict.untrained_notes == 23 and not verdict.expected_to_suffice
    # O'Neill's 'The Groves of Blackpool' needs 15 notes: within reach, and memorised.
    assert nabiya.analyze(_music21_tune("oneills1850/0001-0050.abc", 21)).assess_preset("stateful2").verdict == "state"


def test_the_default_table_stops_at_64_windows_but_the_unique_window_and_memory_are_exact():
    phrase = list(range(100))
    analysis = analyze_tokens(phrase + ["x"] + phrase + ["y"])
    assert analysis.max_window == 64 and analysis.unique_window == 101 and analysis.memory_notes == 101
    assert analysis.at(64).carried_notes == 37 and analysis.at(101).ambiguous == ()
