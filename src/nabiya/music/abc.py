"""ABC notation in and out: pick one tune of a file, read it, write a song as ABC.

An ABC file holds tunes, each starting with an ``X:`` line (its reference number) and a
header ending with ``K:`` (the key)::

    X:1
    T:나비야
    M:2/4
    L:1/8
    K:C
    G E E2 | F D D2 | C D E F | G G G2 |

Reading splits the text at ``X:`` lines (:func:`split_tunes`, in linear time) and reads the
chosen tune with nabiya's own ABC 2.1 reader (:mod:`nabiya.music.abc_tune`, which says what
it reads and why it is not music21), as written or as played (``repeats=``).

Writing needs no music21: nabiya writes the header (X, T, M, L, Q, K), cuts the melody
into bars (tying notes across bar lines), writes tuplets as ``(3`` or ``(p:q:r`` groups so
that every written length is a power-of-two fraction of the unit (as abc2midi requires), and
marks accidentals where the key signature and the bar's earlier accidentals would not give
the right pitch, whether a reader carries accidentals to other octaves or not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from nabiya.errors import NabiyaError
from nabiya.music.notation import (
    DEFAULT_METER,
    alteration,
    bar_quarters,
    fits,
    key_alterations,
    parse_key,
    parse_meter,
    split_into_bars,
    written_octave,
)
from nabiya.music.abc_tune import DEFAULT_REPEATS, REPEATS, read_tune  # noqa: F401  (REPEATS: public)
from nabiya.music.note import DEFAULT_SPELLINGS
from nabiya.music.song import Song

DEFAULT_TEMPO_BPM = 120.0
UNIT_QUARTERS = Fraction(1, 2)  # the writer's L:1/8, in quarter notes
BARS_PER_LINE = 4
MAX_TUPLET = 999  # the largest p and r of a (p:q:r tuplet the writer writes (and the reader reads)

_FIELD_LINE = re.compile(r"^([A-Za-z]):(.*)$")
_INLINE_FIELD = re.compile(r"\[([A-Za-z]):[^\]\n]*\]")
_NOTE = re.compile(r"[\^_=]*([A-Ga-g])([,']*)")
# What may appear in a line of music once quoted text, !decorations! and [K:...] fields are
# blanked out: notes, rests, lengths, accidentals, octave marks, bars, repeats, ties, slurs,
# tuplets, grace braces, chords, broken rhythm, decoration letters and symbols.
_MUSIC_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    " \t/<>^_=,'|:[](){}-.~!+\\&$*`"
)
# What free text looks like once read as music (a line of prose after a blank line ends a tune).
_MISREAD = (
    (re.compile(r"[\^_=]+(?![\^_=A-Ga-g])"), "an accidental {!r} must stand right before a note letter"),
    (re.compile(r"[~.H-Wh-wYy][\d/]+"), "{!r} is a length after a decoration or spacer; only notes and rests have lengths"),
    (re.compile(r"(?<=[H-Wh-wYy])[,']+"), "an octave mark {!r} must follow a note letter"),
    (re.compile(r"[~H-Wh-w]{2,}(?=[\s|]|$)"), "decorations {!r} must stand right before a note"),
)
_MODE_SUFFIX = {"major": "", "ionian": "", "minor": "m", "aeolian": "m"}


@dataclass(frozen=True)
class AbcTune:
    """One tune of an ABC file.

    Attributes:
        reference: its ``X:`` field, e.g. ``'3'``.
        titles: its ``T:`` fields, the main title first (may be empty).
        lines: its lines, from ``X:`` up to the next tune, with the file header's fields
            copied in after ``X:``.
        line_numbers: where each of ``lines`` is in the file (1-based).
    """

    reference: str
    titles: tuple[str, ...]
    lines: tuple[str, ...]
    line_numbers: tuple[int, ...]

    @property
    def first_line(self) -> int:
        """The line of the file its ``X:`` is on (1-based)."""
        return self.line_numbers[0]

    @property
    def title(self) -> str:
        return self.titles[0] if self.titles else ""

    @property
    def label(self) -> str:
        """``"X:3 'The Butterfly'"``, for messages."""
        return f"X:{self.reference}" + (f" {self.title!r}" if self.title else "")


def split_tunes(text: str) -> list[AbcTune]:
    """The tunes of an ABC file, in order.

    Lines before the first ``X:`` are the file header; fields there (``L:``, ``M:`` …)
    apply to every tune and are copied into each. Text with no ``X:`` line but a ``K:``
    line is one tune, numbered 1. Free text after a blank line that is not ABC music ends
    a tune (ABC 2.1 ends a tune at a blank line; some files put more music after one).

    Example:
        >>> [tune.label for tune in split_tunes("X:1\\nT:One\\nK:C\\nCDE|\\n\\nX:2\\nK:G\\nGAB|\\n")]
        ["X:1 'One'", 'X:2']
    """
    numbered = list(enumerate(text.splitlines(), start=1))
    starts = [index for index, (_, line) in enumerate(numbered) if line.startswith("X:")]
    if not starts:
        if not any(line.startswith("K:") for _, line in numbered):
            return []
        numbered, starts = [(1, "X:1"), *numbered], [0]  # the X:1 is ours: it borrows line 1
    header_fields = [
        (number, line) for number, line in numbered[: starts[0]] if _FIELD_LINE.match(line) and line[0] not in "XTK"
    ]
    tunes = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(numbered)
        own = _drop_free_text(numbered[start:end])
        numbers, lines = zip(own[0], *header_fields, *own[1:])
        titles = tuple(_field_text(line[2:]) for _, line in own if line.startswith("T:"))
        tunes.append(AbcTune(own[0][1][2:].strip(), titles, lines, numbers))
    return tunes


def select_tune(tunes: list[AbcTune], tune: str | int | None, *, source: str) -> AbcTune:
    """The tune asked for: by ``X:`` number (``3`` or ``"3"``) or by title (any case).

    Raises:
        NabiyaError: when there is no such tune, listing the file's tunes.

    Example:
        >>> tunes = split_tunes("X:7\\nT:Seven\\nK:C\\nC|\\nX:8\\nT:Eight\\nK:C\\nD|\\n")
        >>> select_tune(tunes, 8, source="t.abc").title, select_tune(tunes, "seven", source="t.abc").reference
        ('Eight', '7')
    """
    if not tunes:
        raise NabiyaError(f"{source}: no ABC tune found: a tune starts with an X: line and has a K: line")
    if tune is None:
        return tunes[0]
    if isinstance(tune, int) or (isinstance(tune, str) and tune.strip().isdigit()):
        for candidate in tunes:
            if candidate.reference.isdigit() and int(candidate.reference) == int(tune):
                return candidate
    if isinstance(tune, str):
        wanted = tune.strip().casefold()
        for candidate in tunes:
            if any(title.casefold() == wanted for title in candidate.titles):
                return candidate
    shown = ", ".join(candidate.label for candidate in tunes[:5])
    more = f", … ({len(tunes)} tunes)" if len(tunes) > 5 else ""
    raise NabiyaError(f"{source} has no tune {tune!r} (by X: number or title): its tunes are {shown}{more}")


def song_from_abc(
    text: str, *, tune: str | int | None = None, source: str = "ABC text", repeats: str = DEFAULT_REPEATS
) -> Song:
    """Read one tune of ABC text as a song.

    Args:
        text: ABC with one or more tunes.
        tune: which tune: its ``X:`` number (int or digits) or its title (any case);
            the first when None.
        source: the file name, for error messages.
        repeats: ``"written"`` (the default): each section once, first and second endings
            both, in written order, as the tune is printed; ``"played"``: ``|: :|`` sections
            twice, each pass with its own ending, and the header's ``P:`` parts in order,
            as a musician (and abc2midi) plays them.

    Returns:
        The first voice's melody with its title (``T:``), tempo (``Q:``, else 120 bpm), meter,
        key and pickup where known; ``meta`` holds ``tune`` (the X: number).
        Chord symbols, decorations and grace notes are left out; tied notes of one pitch
        become one note. See :mod:`nabiya.music.abc_tune` for what is read and how.

    Raises:
        NabiyaError: naming the file, the tune, the line and column (and for a note, the
            measure and note), and what is wrong.

    Example:
        >>> song_from_abc("X:1\\nT:Start\\nL:1/8\\nK:C\\nG E E2 | F D D2 |").codes
        ['g8', 'e8', 'e4', 'f8', 'd8', 'd4']
        >>> song_from_abc("X:1\\nL:1/4\\nK:C\\n|: C D :|", repeats="played").codes
        ['c4', 'd4', 'c4', 'd4']
    """
    chosen = select_tune(split_tunes(text), tune, source=source)
    where = f"{source}, tune {chosen.label}"
    reading = read_tune(chosen.lines, chosen.line_numbers, where=where, repeats=repeats)
    try:
        return Song(
            reading.notes,
            title=chosen.title,
            tempo_bpm=reading.tempo_bpm or DEFAULT_TEMPO_BPM,
            meter=reading.meter,
            key=reading.key,
            pickup=reading.pickup,
            meta={"tune": chosen.reference},
        )
    except NabiyaError as error:  # a song beyond nabiya's limits (its length in hours)
        raise NabiyaError(f"{where}: {error}") from None


def song_to_abc(song: Song, *, reference: int = 1) -> str:
    """Write a song as one ABC tune (L:1/8), which :func:`song_from_abc` reads back to the same notes.

    The song's meter, key and pickup are written (4/4, C major and none when it has none).
    Notes keep their spelling (``'bb'`` is written ``_B``); a note whose spelling does not
    fit its pitch, or needs more than a double sharp or flat, gets the usual piano name.

    Example:
        >>> print(song_to_abc(Song.from_codes("g8 e8 e4 f#8 d8 d4", title="Start"), reference=1))
        X:1
        T:Start
        M:4/4
        L:1/8
        Q:1/4=120
        K:C
        G E E2 ^F D D2 |]
        <BLANKLINE>
    """
    meter = parse_meter(song.meter) or DEFAULT_METER
    key = parse_key(song.key)
    tonic, mode, fifths = key if key else ("c", "major", 0)
    bar_length = bar_quarters(meter)
    pickup = song.pickup
    header = [f"X:{reference}"]
    if song.title:
        header.append("T:" + " ".join(song.title.split()).replace("%", "\\%"))
    header += [
        f"M:{meter[0]}/{meter[1]}",
        "L:1/8",
        f"Q:1/4={_format_number(song.tempo_bpm)}",
        f"K:{tonic[0].upper()}{tonic[1:]}{_MODE_SUFFIX.get(mode, mode[:3])}",
    ]
    key_alters = key_alterations(fifths)
    bars = [_bar_text(bar, key_alters) for bar in split_into_bars(song.notes, bar_length, pickup)]
    lines = []
    for start in range(0, len(bars), BARS_PER_LINE):
        chunk = " | ".join(bars[start : start + BARS_PER_LINE])
        last = start + BARS_PER_LINE >= len(bars)
        lines.append(chunk + (" |]" if last else " |"))
    return "\n".join(header + lines) + "\n"


# --- writing ---------------------------------------------------------------------------------


def _bar_text(bar, key_alters: dict[str, int]) -> str:
    """One bar's notes as ABC, accidentals marked for both ways readers carry them.

    A length that is not a power-of-two fraction of the unit (a triplet eighth is 2/3 of
    ``L:1/8``) is written inside a tuplet: consecutive such notes whose lengths share the
    odd factor ``p`` of their denominators make one ``(p:q:r`` group (``q`` the power of two
    below ``p``; ``(3`` for three notes of a triplet), in which each note's written length
    times ``q/p`` is its duration.
    """
    by_letter = dict(key_alters)  # the reading of readers that carry an accidental to every octave
    by_octave: dict[tuple[str, int], int] = {}  # … and of readers that carry it in its octave only
    tokens = []
    index = 0
    while index < len(bar):
        odd = _odd_part((bar[index].duration / UNIT_QUARTERS).denominator)
        end = index + 1
        while odd > 1 and end < len(bar) and end - index < MAX_TUPLET:
            if _odd_part((bar[end].duration / UNIT_QUARTERS).denominator) != odd:
                break
            end += 1
        if odd > MAX_TUPLET:
            raise NabiyaError(
                f"a note of {bar[index].duration} quarter notes cannot be written in ABC: its tuplet would "
                f"be {odd} notes in the time of {1 << (odd.bit_length() - 1)}"
            )
        time = 1 << (odd.bit_length() - 1)  # the power of two below p: 3 → 2, 5 → 4, 7 → 4, 9 → 8
        scale = Fraction(odd, time)
        written = "".join(
            _note_text(piece, piece.duration * scale, key_alters, by_letter, by_octave) for piece in bar[index:end]
        )
        count = end - index
        sign = "" if odd == 1 else "(3" if (odd, count) == (3, 3) else f"({odd}:{time}:{count}"
        tokens.append(sign + written)
        index = end
    return " ".join(tokens)


def _odd_part(number: int) -> int:
    """``number`` without its factors of two: 12 → 3, 40 → 5, 8 → 1."""
    return number >> ((number & -number).bit_length() - 1)


def _note_text(piece, duration: Fraction, key_alters, by_letter, by_octave) -> str:
    length = _length_text(duration / UNIT_QUARTERS)
    note = piece.note
    if note.pitch is None:
        return "z" + length
    spelling = note.spelling if fits(note.pitch, note.spelling) and abs(alteration(note.spelling)) <= 2 else None
    spelling = spelling or DEFAULT_SPELLINGS[note.pitch % 12]
    letter, alter, octave = spelling[0], alteration(spelling), written_octave(note.pitch, spelling)
    accidental = ""
    carried = alter == by_letter[letter] == by_octave.get((letter, octave), key_alters[letter])
    if not carried or abs(alter) == 2:  # some readers carry a double sharp on as a single one
        accidental = {2: "^^", 1: "^", 0: "=", -1: "_", -2: "__"}[alter]
        by_letter[letter] = alter
        by_octave[(letter, octave)] = alter
    if octave >= 5:
        name = letter + "'" * (octave - 5)
    else:
        name = letter.upper() + "," * (4 - octave)
    return accidental + name + length + ("-" if piece.tied else "")


def _length_text(units: Fraction) -> str:
    """A length in units of L: ``1`` → ``''``, ``3`` → ``'3'``, ``1/2`` → ``'/2'``, ``3/2`` → ``'3/2'``."""
    if units == 1:
        return ""
    if units.denominator == 1:
        return str(units.numerator)
    return f"{units.numerator if units.numerator != 1 else ''}/{units.denominator}"


def _field_text(value: str) -> str:
    """A text field's value: a trailing ``% comment`` cut off, ``\\%`` read as ``%``."""
    return re.split(r"(?<!\\)%", value, maxsplit=1)[0].strip().replace("\\%", "%")


def _format_number(value: float) -> str:
    """``120`` for 120.0, else the shortest text that reads back as the same float (``92.5``)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --- telling music from free text ---------------------------------------------------------


def _music_problem(line: str) -> str | None:
    """What makes a line free text rather than ABC music, as ``'column 7: …'``, or None."""
    if line.count('"') % 2:
        return f'column {line.index(chr(34)) + 1}: a quoted chord symbol or annotation is not closed with "'
    blanked = _blank_out(line)
    for column, character in enumerate(blanked, start=1):
        if character not in _MUSIC_CHARACTERS:
            return f"column {column}: {character!r} is not ABC music (sharps are ^, flats _, naturals =)"
    for pattern, problem in _MISREAD:
        match = pattern.search(blanked)
        if match:
            return f"column {match.start() + 1}: {problem.format(match[0])}"
    for match in _NOTE.finditer(blanked):
        letter, marks = match[1], match[2]
        pitch = (60 if letter.isupper() else 72) + 12 * (marks.count("'") - marks.count(","))
        if not 0 <= pitch <= 127:
            return f"column {match.start() + 1}: the note {match[0]!r} is outside MIDI's pitch range"
    return None


def _blank_out(line: str) -> str:
    """The line with comments, quoted text, !decorations! and [X:fields] turned to spaces."""
    line = re.sub(r"(?<!\\)%.*", lambda m: " " * len(m[0]), line)
    for pattern in (r'"[^"]*"', r"![^!\s]*!", r"\+[^+\s]*\+", _INLINE_FIELD.pattern):
        line = re.sub(pattern, lambda m: " " * len(m[0]), line)
    return line


def _drop_free_text(numbered: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """A tune's ``(line number, line)`` pairs up to a blank line followed by text that is not ABC.

    One pass from the end (each line is looked at once): the cut is the first blank line
    with free text somewhere after it.
    """
    first_blank = next((index for index, (_, line) in enumerate(numbered) if not line.strip()), None)
    if first_blank is None:
        return numbered
    cut, free_text_after = len(numbered), False
    for index in range(len(numbered) - 1, first_blank - 1, -1):
        line = numbered[index][1]
        if not line.strip():
            if free_text_after:
                cut = index
        elif not free_text_after and not _FIELD_LINE.match(line) and not line.startswith("%"):
            free_text_after = _music_problem(line) is not None
    return numbered[:cut]
