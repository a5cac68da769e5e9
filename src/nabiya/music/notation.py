"""How a melody is written down: pitch names, spellings, keys, meters and bars.

A MIDI pitch says which key of a piano sounds, not how to write it (61 is C# or Db).
Files that carry no spelling (MIDI, the folk corpus) get one from their key signature:
sharps in sharp keys, flats in flat keys, and the usual piano names otherwise.

Keys are written as ``"<tonic> <mode>"``, e.g. ``"G major"``, ``"E minor"``, ``"Bb major"``,
``"D dorian"``; a key signature is its number of *fifths*: sharps positive, flats negative.
Meters are written ``"3/4"``. A song keeps its key, meter and pickup (the length of an
incomplete first bar, in quarter notes) as ``Song.meter``, ``Song.key`` and ``Song.pickup``; the
writers of ABC, MusicXML and MIDI use them to draw bars.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable

from nabiya.music.note import DEFAULT_SPELLINGS, LETTER_SEMITONES, Note

# Position of each letter on the circle of fifths, relative to C.
_LETTER_FIFTHS = {"f": -1, "c": 0, "g": 1, "d": 2, "a": 3, "e": 4, "b": 5}
# How many fifths each mode's signature lies from its tonic's major key.
MODE_FIFTHS = {
    "major": 0,
    "ionian": 0,
    "lydian": 1,
    "mixolydian": -1,
    "dorian": -2,
    "minor": -3,
    "aeolian": -3,
    "phrygian": -4,
    "locrian": -5,
}
_SHARP_ORDER = "fcgdaeb"
_SHARP_SPELLINGS = ("c", "c#", "d", "d#", "e", "f", "f#", "g", "g#", "a", "a#", "b")
_FLAT_SPELLINGS = ("c", "db", "d", "eb", "e", "f", "gb", "g", "ab", "a", "bb", "b")


def alteration(spelling: str) -> int:
    """Semitones a spelling's accidentals add: ``'f#'`` → 1, ``'bb'`` → -1, ``'c'`` → 0.

    Example:
        >>> alteration("ebb")
        -2
    """
    return spelling[1:].count("#") - spelling[1:].count("b")


def written_octave(pitch: int, spelling: str) -> int:
    """The octave number a spelled pitch is written in (scientific: middle C is C4).

    ``B#3`` sounds as MIDI 60 and ``Cb4`` as MIDI 59: the octave follows the letter.

    Example:
        >>> written_octave(60, "b#"), written_octave(59, "cb")
        (3, 4)
    """
    return (pitch - alteration(spelling) - LETTER_SEMITONES[spelling[0]]) // 12 - 1


def fits(pitch: int, spelling: str | None) -> bool:
    """Whether ``spelling`` (``'c#'``) names ``pitch``'s pitch class."""
    if not spelling or spelling[0] not in LETTER_SEMITONES or set(spelling[1:]) - {"#", "b"}:
        return False
    return (LETTER_SEMITONES[spelling[0]] + alteration(spelling) - pitch) % 12 == 0


def pitch_name(pitch: int | None, spelling: str | None = None) -> str:
    """A pitch as people write it: ``'C4'`` for MIDI 60, ``'F#4'``, ``'Bb3'``; ``'rest'`` for None.

    Example:
        >>> pitch_name(61), pitch_name(61, "c#"), pitch_name(None)
        ('C#4', 'C#4', 'rest')
    """
    if pitch is None:
        return "rest"
    if not fits(pitch, spelling):
        spelling = DEFAULT_SPELLINGS[pitch % 12]
    return f"{spelling[0].upper()}{spelling[1:]}{written_octave(pitch, spelling)}"


def spell(pitch: int, fifths: int | None = None) -> str:
    """A spelling for ``pitch`` in a key of ``fifths`` sharps (negative: flats).

    Black keys are sharps in sharp keys, flats in flat keys, and the usual piano names
    (C#, Eb, F#, Ab, Bb) when the key is C or unknown.

    Example:
        >>> spell(70, 2), spell(70, -1), spell(70)
        ('a#', 'bb', 'bb')
    """
    if fifths is None or fifths == 0:
        return DEFAULT_SPELLINGS[pitch % 12]
    return (_SHARP_SPELLINGS if fifths > 0 else _FLAT_SPELLINGS)[pitch % 12]


def parse_key(name: str | None) -> tuple[str, str, int] | None:
    """Read a key name into ``(tonic, mode, fifths)``, or None when it is not one.

    Accepts ``"G major"``, ``"e minor"``, ``"B- major"`` (music21's flat), ``"Bb"``,
    ``"F# dorian"``. Keys beyond 7 sharps or flats are not keys.

    Example:
        >>> parse_key("E minor"), parse_key("B- major"), parse_key("H major")
        (('e', 'minor', 1), ('bb', 'major', -2), None)
    """
    if not name or not isinstance(name, str):
        return None
    words = name.strip().lower().replace("-", "b").split()
    if not words or len(words) > 2:
        return None
    tonic, mode = words[0], (words[1] if len(words) == 2 else "major")
    if tonic[0] not in _LETTER_FIFTHS or set(tonic[1:]) - {"#", "b"} or mode not in MODE_FIFTHS:
        return None
    fifths = _LETTER_FIFTHS[tonic[0]] + 7 * alteration(tonic) + MODE_FIFTHS[mode]
    if not -7 <= fifths <= 7:
        return None
    return tonic, mode, fifths


def key_name(tonic: str, mode: str = "major") -> str:
    """The canonical name of a key: ``key_name("bb")`` → ``'Bb major'``."""
    return f"{tonic[0].upper()}{tonic[1:]} {mode}"


def key_alterations(fifths: int) -> dict[str, int]:
    """The key signature as letter → alteration: 2 fifths → ``{'f': 1, 'c': 1, 'g': 0, ...}``.

    Example:
        >>> {letter: alter for letter, alter in key_alterations(-2).items() if alter}
        {'e': -1, 'b': -1}
    """
    alterations = dict.fromkeys("cdefgab", 0)
    letters = _SHARP_ORDER[:fifths] if fifths > 0 else _SHARP_ORDER[::-1][: -fifths]
    for letter in letters:
        alterations[letter] = 1 if fifths > 0 else -1
    return alterations


_METER = re.compile(r"^\s*(\d{1,3})\s*/\s*(\d{1,3})\s*$")
DEFAULT_METER = (4, 4)


def parse_meter(text: str | None) -> tuple[int, int] | None:
    """Read a meter: ``"3/4"`` → ``(3, 4)``; ``"C"`` is 4/4 and ``"C|"`` 2/2; None when it is not one.

    The denominator must be a power of two up to 64 (what MIDI and notation can write).

    Example:
        >>> parse_meter("6/8"), parse_meter("C|"), parse_meter("3/0")
        ((6, 8), (2, 2), None)
    """
    if not isinstance(text, str):
        return None
    text = text.strip()
    if text in ("C", "c"):
        return (4, 4)
    if text in ("C|", "c|"):
        return (2, 2)
    match = _METER.match(text)
    if match is None:
        return None
    beats, unit = int(match[1]), int(match[2])
    if beats == 0 or unit not in (1, 2, 4, 8, 16, 32, 64):
        return None
    return beats, unit


def bar_quarters(meter: tuple[int, int]) -> Fraction:
    """The length of one bar in quarter notes: ``(6, 8)`` → 3.

    Example:
        >>> bar_quarters((6, 8))
        Fraction(3, 1)
    """
    beats, unit = meter
    return Fraction(4 * beats, unit)


@dataclass(frozen=True)
class BarNote:
    """A note, or the part of one, that lies in one bar.

    Attributes:
        note: the note it belongs to (pitch, spelling, full duration).
        duration: how much of the note lies in this bar, in quarter notes.
        tied: whether the note goes on into the next bar (write a tie after it).
    """

    note: Note
    duration: Fraction
    tied: bool = False


def split_into_bars(
    notes: Iterable[Note], bar_length: Fraction, pickup: Fraction = Fraction(0)
) -> list[list[BarNote]]:
    """Cut a melody into bars; a note that crosses a bar line becomes tied pieces.

    Args:
        notes: the melody.
        bar_length: quarter notes per bar (see :func:`bar_quarters`).
        pickup: the length of an incomplete first bar (an anacrusis), 0 for none.

    Returns:
        One list of pieces per bar; the last bar may be incomplete. Rests that cross a
        bar line are cut too, without ties.

    Example:
        >>> from nabiya.music.note import parse_codes
        >>> bars = split_into_bars(parse_codes("c2 d2. e4"), Fraction(3))
        >>> [[f"{piece.note.code}:{piece.duration}{'-' if piece.tied else ''}" for piece in bar] for bar in bars]
        [['c2:2', 'd2.:1-'], ['d2.:2', 'e4:1']]
    """
    bar_length = Fraction(bar_length)
    room = Fraction(pickup) if 0 < pickup < bar_length else bar_length
    bars: list[list[BarNote]] = [[]]
    for note in notes:
        left = note.duration
        while left > 0:
            if room == 0:
                bars.append([])
                room = bar_length
            piece = min(left, room)
            left -= piece
            room -= piece
            bars[-1].append(BarNote(note, piece, tied=left > 0 and note.pitch is not None))
    return bars if bars[0] else []
