"""A note (a pitch or a rest, with a duration) and the tutorial's note codes.

The tutorial writes 나비야 as codes like ``g8`` (G, eighth note) and ``e4`` (E, quarter
note). nabiya keeps exactly that meaning and extends the grammar so that any melody can
be written the same way::

    code     := pitch length | "r" length
    pitch    := letter accidental* octave*
    letter   := "c" | "d" | "e" | "f" | "g" | "a" | "b"
    accidental := "#" (sharp) | "b" (flat)          e.g. "f#4", "bb8" (B flat), "eb4"
    octave   := "'" (one octave up) | "," (one down)  e.g. "c'4" is the C above middle C
    length   := N "."*          N: the note value, 4 = quarter, 8 = eighth, 2 = half,
                                1 = whole, 16 = sixteenth, 12 = triplet eighth, ...
                                each "." dots the note (x 3/2, then x 7/4, ...)
              | ":" P ["/" Q]   any duration, in quarter notes, e.g. "c:5/2" (a half
                                note tied to an eighth)

Unmarked letters lie in the octave of middle C (``c4`` is MIDI 60), as the tutorial's
song does. A code's duration is ``4 / N`` quarter notes, so ``c4`` lasts one quarter
note and ``c8`` half of one: the tutorial's codes keep exactly their meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable

from nabiya.errors import NabiyaError
from nabiya.music.limits import MAX_DURATION_DENOMINATOR, MAX_NOTE_QUARTERS

LETTER_SEMITONES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
MIDDLE_C = 60
# How a pitch class is spelled when nothing says otherwise (MIDI files carry no spelling).
DEFAULT_SPELLINGS = ("c", "c#", "d", "eb", "e", "f", "f#", "g", "ab", "a", "bb", "b")

# ASCII digits only ([0-9], not \d): "c٤" is not c4.
_CODE = re.compile(
    r"""^(?:(?P<rest>r)|(?P<letter>[a-g])(?P<accidentals>[#b]*)(?P<octaves>[',]*))
        (?:(?P<value>[0-9]{1,9})(?P<dots>\.*)|:(?P<num>[0-9]{1,9})(?:/(?P<den>[0-9]{1,9}))?)$""",
    re.VERBOSE,
)
# Runs of octave marks within a word: see _split_codes.
_MARKS = re.compile(r"([,']+)")


@dataclass(frozen=True, order=True)
class Note:
    """One note of a melody.

    Attributes:
        pitch: the MIDI note number (60 is middle C), or ``None`` for a rest.
        duration: the length in quarter notes, as an exact fraction (``Fraction(1, 2)``
            is an eighth note, ``Fraction(1, 3)`` a triplet eighth).
        spelling: how to write the pitch class (``"c#"`` or ``"db"``), for display only;
            two notes of the same pitch and duration are equal whatever their spelling.

    A note code alone makes the note it names, so a note's repr round-trips.

    Example:
        >>> Note(67, Fraction(1, 2)).code
        'g8'
        >>> Note("g8") == Note(67, Fraction(1, 2))
        True
    """

    pitch: int | None | str
    duration: Fraction = None  # type: ignore[assignment]  # only a note code may leave it out
    spelling: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.pitch, str) and self.duration is None and self.spelling is None:
            parsed = parse_code(self.pitch)
            for name in ("pitch", "duration", "spelling"):
                object.__setattr__(self, name, getattr(parsed, name))
        if self.duration is None:
            raise NabiyaError(f"a note needs a duration, or a note code such as 'g8' alone, not {self.pitch!r}")
        try:
            object.__setattr__(self, "duration", Fraction(self.duration))
        except (TypeError, ValueError, OverflowError):
            raise NabiyaError(f"a note's duration is a number of quarter notes, not {self.duration!r}") from None
        if self.duration <= 0:
            raise NabiyaError(f"a note's duration must be positive, not {self.duration}")
        if self.duration > MAX_NOTE_QUARTERS:
            raise NabiyaError(
                f"a note of {_short(self.duration)} quarter notes is longer than nabiya's limit of "
                f"{MAX_NOTE_QUARTERS} (64 bars of 4/4)"
            )
        if self.duration.denominator > MAX_DURATION_DENOMINATOR:
            raise NabiyaError(
                f"a note of {_short(self.duration)} quarter notes is finer than nabiya's limit: a duration is "
                f"a fraction of a quarter note with a denominator of at most {MAX_DURATION_DENOMINATOR}"
            )
        if self.pitch is not None and not 0 <= self.pitch <= 127:
            raise NabiyaError(f"pitch {self.pitch} is outside MIDI's range 0..127")

    @property
    def is_rest(self) -> bool:
        return self.pitch is None

    @property
    def code(self) -> str:
        """The note code, e.g. ``'g8'``, ``"f#'4."``, ``'r2'``."""
        return format_code(self)

    @property
    def token(self) -> tuple[int | None, Fraction]:
        """What a model sees: the pitch and the duration, without the spelling."""
        return (self.pitch, self.duration)

    def __repr__(self) -> str:
        return f"Note({self.code!r})"


def parse_code(code: str, *, where: str = "") -> Note:
    """Read one note code (see the module docstring for the grammar).

    Args:
        code: a note code such as ``'g8'``, ``'f#4.'``, ``"c'2"`` or ``'r8'``.
        where: where the code came from, for the error message (``'note 7'``).

    Raises:
        NabiyaError: naming the code, where it came from, and what a code looks like; also
            for a note beyond nabiya's limits (see :mod:`nabiya.music.limits`).

    Example:
        >>> parse_code("e4")
        Note('e4')
    """
    if not isinstance(code, str):
        raise NabiyaError(f"a note code is text such as 'g8', not {type(code).__name__} {code!r}{_at(where)}")
    match = _CODE.match(code.strip().lower())
    if match is None:
        raise NabiyaError(
            f"unknown note code {_shown(code)}{_at(where)}: expected a letter a-g (or r for a rest), "
            "optional #/b and '/, marks, then a length such as 4 (quarter) or 8 (eighth)"
        )
    if match["value"] is not None:
        value = int(match["value"])
        if value == 0:
            raise NabiyaError(f"note code {code!r} has length 0{_at(where)}: use 1, 2, 4, 8, 16 …")
        duration = Fraction(4, value)
        dots = len(match["dots"])
        duration *= 2 - Fraction(1, 2**dots)
    else:
        den = int(match["den"] or 1)
        if den == 0 or int(match["num"]) == 0:
            raise NabiyaError(f"note code {code!r} has a zero duration{_at(where)}")
        duration = Fraction(int(match["num"]), den)
    try:
        if match["rest"]:
            return Note(None, duration)
        letter, accidentals, octaves = match["letter"], match["accidentals"], match["octaves"]
        pitch = (
            MIDDLE_C
            + LETTER_SEMITONES[letter]
            + accidentals.count("#")
            - accidentals.count("b")
            + 12 * (octaves.count("'") - octaves.count(","))
        )
        if not 0 <= pitch <= 127:
            raise NabiyaError("it is outside MIDI's pitch range 0..127")
        return Note(pitch, duration, spelling=letter + accidentals)
    except NabiyaError as error:
        raise NabiyaError(f"note code {_shown(code)}{_at(where)}: {error}") from None


def parse_codes(codes: str | Iterable[str], *, source: str = "") -> tuple[Note, ...]:
    """Read a melody written as note codes: a list, or text separated by spaces or commas.

    Text may hold comments after ``%`` (as in ABC) on any line. Reading takes time in
    proportion to the text's length, whatever it holds.

    Args:
        codes: ``"g8 e8 e4 f8"`` or ``["g8", "e8", "e4", "f8"]``.
        source: a file name, for error messages (``'tune.txt: line 3, note 5'``).

    Returns:
        The notes, in order.

    Raises:
        NabiyaError: for anything that is not text or a list of codes, and for a bad code,
            naming the source, the line and the note's number.

    Example:
        >>> [note.code for note in parse_codes("g8, e8 c,4  % a comment")]
        ['g8', 'e8', 'c,4']
    """
    where = f"{source}: " if source else ""
    if isinstance(codes, str):
        items = []
        for line_number, line in enumerate(codes.splitlines(), start=1):
            items.extend((item, f"line {line_number}, ") for item in _split_codes(line.split("%", 1)[0]))
    elif isinstance(codes, Iterable) and not isinstance(codes, (bytes, bytearray)):
        items = [(item, "") for item in codes]
    else:
        raise NabiyaError(
            f"{where}note codes are text (\"g8 e8 e4\") or a list of codes, not {type(codes).__name__}"
        )
    return tuple(
        parse_code(item, where=f"{where}{line}note {number}") for number, (item, line) in enumerate(items, start=1)
    )


def _split_codes(line: str) -> list[str]:
    """The codes of one line: words split by white space and commas, in linear time.

    A comma is an octave mark, not a separator, where a run of marks (``,`` and ``'``) is
    followed by a length (``"g,4"``, ``"c,,8"``, ``"c,:3/2"``). (A regular expression that
    looks ahead from every comma takes time quadratic in a run of commas.)
    """
    items = []
    for word in line.split():
        pieces = _MARKS.split(word)  # text, marks, text, marks, ..., text
        current = pieces[0]
        for marks, following in zip(pieces[1::2], pieces[2::2]):
            if following[:1].isascii() and (following[:1].isdigit() or following[:1] == ":"):
                current += marks + following  # octave marks before a length
                continue
            first, *rest = marks.split(",")
            current += first  # "'" marks before the first comma belong to the code before it
            for piece in rest:
                if current:
                    items.append(current)
                current = piece
            current += following
        if current:
            items.append(current)
    return items


def format_code(note: Note) -> str:
    """Write a note as its code: the inverse of :func:`parse_code`.

    The spelling is kept where the note has one; otherwise sharps and flats are chosen
    as on a piano keyboard's usual names (C#, Eb, F#, Ab, Bb).
    """
    length = _format_length(note.duration)
    if note.pitch is None:
        return "r" + length
    spelling = note.spelling or DEFAULT_SPELLINGS[note.pitch % 12]
    letter, accidentals = spelling[0], spelling[1:]
    written = MIDDLE_C + LETTER_SEMITONES[letter] + accidentals.count("#") - accidentals.count("b")
    shift, remainder = divmod(note.pitch - written, 12)
    if remainder:  # a spelling that does not fit the pitch: fall back to the default
        return format_code(Note(note.pitch, note.duration))
    marks = "'" * shift if shift > 0 else "," * -shift
    return f"{spelling}{marks}{length}"


def _format_length(duration: Fraction) -> str:
    for dots in range(3):
        base = duration / (2 - Fraction(1, 2**dots))
        value = Fraction(4) / base
        if value.denominator == 1 and value.numerator <= 128:
            return f"{value.numerator}{'.' * dots}"
    if duration.denominator == 1:
        return f":{duration.numerator}"
    return f":{duration.numerator}/{duration.denominator}"


def _short(number: Fraction) -> str:
    """A number for a message, cut short when it has hundreds of digits."""
    text = str(number)
    return text if len(text) <= 24 else f"{float(number):.3g}"


def _at(where: str) -> str:
    return f" ({where})" if where else ""


def _shown(code: str) -> str:
    """A code for a message, cut short when it is long."""
    return repr(code) if len(code) <= 40 else repr(code[:37] + "…")
