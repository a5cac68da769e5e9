"""Note codes: the tutorial's 14 codes keep their meaning; the extended grammar round-trips."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nabiya.errors import NabiyaError
from nabiya.music.note import Note, format_code, parse_code, parse_codes

TUTORIAL_PITCHES = {"c": 60, "d": 62, "e": 64, "f": 65, "g": 67, "a": 69, "b": 71}


@pytest.mark.parametrize("letter", sorted(TUTORIAL_PITCHES))
@pytest.mark.parametrize("length, duration", [("4", Fraction(1)), ("8", Fraction(1, 2))])
def test_the_tutorials_codes_are_c4_to_b4_quarters_and_eighths(letter, length, duration):
    note = parse_code(letter + length)
    assert note.pitch == TUTORIAL_PITCHES[letter]
    assert note.duration == duration
    assert format_code(note) == letter + length


def test_c4_is_middle_c_for_one_quarter_and_g8_is_g_above_for_an_eighth():
    assert parse_code("c4") == Note(60, Fraction(1))
    assert parse_code("g8") == Note(67, Fraction(1, 2))


@pytest.mark.parametrize(
    "code, pitch, duration",
    [
        ("f#4", 66, Fraction(1)),
        ("bb8", 70, Fraction(1, 2)),  # B flat, not a second b
        ("eb4", 63, Fraction(1)),
        ("b#4", 72, Fraction(1)),  # B sharp of middle C's octave sounds as the C above
        ("cb4", 59, Fraction(1)),
        ("e##8", 66, Fraction(1, 2)),
        ("fbb8", 63, Fraction(1, 2)),
        ("c'4", 72, Fraction(1)),
        ("c''2", 84, Fraction(2)),
        ("g,4", 55, Fraction(1)),
        ("a,,8", 45, Fraction(1, 2)),
        ("f#'4.", 78, Fraction(3, 2)),
        ("a8..", 69, Fraction(7, 8)),
        ("c1", 60, Fraction(4)),
        ("c16", 60, Fraction(1, 4)),
        ("c12", 60, Fraction(1, 3)),  # triplet eighth
        ("c6", 60, Fraction(2, 3)),  # triplet quarter
        ("c:5/2", 60, Fraction(5, 2)),  # a half tied to an eighth
        ("c2.", 60, Fraction(3)),
        ("c20", 60, Fraction(1, 5)),  # quintuplet sixteenth
        ("c:5/3", 60, Fraction(5, 3)),
        ("r4", None, Fraction(1)),
        ("r8.", None, Fraction(3, 4)),
        ("r12", None, Fraction(1, 3)),
    ],
)
def test_extended_codes_mean_what_the_grammar_says_and_round_trip(code, pitch, duration):
    note = parse_code(code)
    assert (note.pitch, note.duration) == (pitch, duration)
    assert format_code(note) == code
    assert parse_code(format_code(note)) == note


def test_spelling_is_kept_but_does_not_change_equality():
    assert parse_code("c#4").spelling == "c#"
    assert parse_code("db4").spelling == "db"
    assert parse_code("c#4") == parse_code("db4")
    assert format_code(Note(61, Fraction(1))) == "c#4"  # the usual piano name without a spelling
    assert format_code(Note(70, Fraction(1))) == "bb4"


notes_strategy = st.builds(
    Note,
    st.one_of(st.none(), st.integers(0, 127)),
    st.builds(Fraction, st.integers(1, 96), st.integers(1, 96)),
)


@settings(max_examples=300, deadline=None)
@given(notes_strategy)
def test_any_note_survives_format_then_parse(note):
    assert parse_code(format_code(note)) == note


def test_codes_in_text_may_be_separated_by_spaces_commas_and_lines_with_comments():
    notes = parse_codes("g8 e8, e4\nf8,d8 % the rest is a comment: x y z\n  d4")
    assert [note.code for note in notes] == ["g8", "e8", "e4", "f8", "d8", "d4"]


def test_a_comma_before_a_length_is_an_octave_mark_not_a_separator():
    notes = parse_codes("g,4 c,,8, e8,f8")
    assert [(note.pitch, note.duration) for note in notes] == [
        (55, Fraction(1)),
        (36, Fraction(1, 2)),
        (64, Fraction(1, 2)),
        (65, Fraction(1, 2)),
    ]


def test_an_error_names_the_source_line_and_note_number():
    with pytest.raises(NabiyaError) as error:
        parse_codes("g8 e8\ne4 x4 f8", source="tune.txt")
    message = str(error.value)
    assert "tune.txt" in message and "line 2" in message and "note 4" in message and "'x4'" in message
    assert "\n" not in message


@pytest.mark.parametrize("code", ["c0", "c:0", "c:1/0", "h4", "c", "4", "c''''''4", "r", "c#x4", "c4.x"])
def test_bad_codes_raise_nabiya_error(code):
    with pytest.raises(NabiyaError):
        parse_code(code)


def test_a_huge_length_is_a_nabiya_error_not_a_python_limit():
    with pytest.raises(NabiyaError):
        parse_codes("c" + "1" * 5000)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(alphabet="abcdefgr#b',.:/0123456789 \n%xq", max_size=80)))
def test_parse_codes_on_any_text_raises_only_nabiya_error(text):
    try:
        notes = parse_codes(text, source="fuzz.txt")
    except NabiyaError as error:
        assert "\n" not in str(error)
        return
    assert parse_codes([note.code for note in notes]) == notes
