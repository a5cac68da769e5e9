"""ABC notation in and out: pick one tune of a file, read it with music21, write a song as ABC.

An ABC file holds tunes, each starting with an ``X:`` line (its reference number) and a
header ending with ``K:`` (the key)::

    X:1
    T:나비야
    M:2/4
    L:1/8
    K:C
    G E E2 | F D D2 | C D E F | G G G2 |

Reading splits the text at ``X:`` lines and gives music21 only the chosen tune, headed
by ``%abc-2.1`` so that an accidental carries to later notes of its bar as ABC 2.1 says
(without it music21 forgets it; with it, music21 carries it to every octave). Before
music21 sees a tune, nabiya checks what music21 would fail on obscurely or skip silently
(a length ``L:1/0``, a meter ``M:x/y``, characters that are not ABC, an accidental without
a note, notes beyond MIDI's range), so that an error names the line and column, and
rewrites what music21 misreads although ABC allows it (``H`` fermatas, ``x``, ``Z`` and
``X`` rests: see :func:`_prepare_tune`).

Writing needs no music21: nabiya writes the header (X, T, M, L, Q, K), cuts the melody
into bars (tying notes across bar lines), writes triplets as ``(3`` groups and marks
accidentals where the key signature and the bar's earlier accidentals would not give the
right pitch, whether a reader carries accidentals to other octaves or not.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
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
from nabiya.music.note import DEFAULT_SPELLINGS
from nabiya.music.song import Song

VERSION_LINE = "%abc-2.1"
UNIT_QUARTERS = Fraction(1, 2)  # the writer's L:1/8, in quarter notes
BARS_PER_LINE = 4

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
# What music21 would turn into notes that are not there (it reads "T3" or "_/2" as a C),
# with what to tell the user.
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


def song_from_abc(text: str, *, tune: str | int | None = None, source: str = "ABC text") -> Song:
    """Read one tune of ABC text as a song.

    Args:
        text: ABC with one or more tunes.
        tune: which tune: its ``X:`` number (int or digits) or its title (any case);
            the first when None.
        source: the file name, for error messages.

    Returns:
        The melody with its title (``T:``), tempo (``Q:``, else 120 bpm), meter, key and
        pickup where known; ``meta`` holds ``tune`` (the X: number).
        Chord symbols (``"Am"``) and grace notes are left out; tied notes of one pitch
        become one note; repeats are not expanded (notes are read as written).

    Raises:
        NabiyaError: naming the file, the tune, the line or measure, and what is wrong.

    Example:
        >>> song_from_abc("X:1\\nT:Start\\nL:1/8\\nK:C\\nG E E2 | F D D2 |").codes
        ['g8', 'e8', 'e4', 'f8', 'd8', 'd4']
    """
    from nabiya.music.scores import song_from_score

    chosen = select_tune(split_tunes(text), tune, source=source)
    where = f"{source}, tune {chosen.label}"
    abc = _prepare_tune(chosen, where)
    try:
        from music21 import converter

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parseData(abc, format="abc")
    except Exception as error:  # music21 raises many kinds for bad ABC: report them all as one
        raise NabiyaError(f"{where} (lines {_line_span(chosen)}): cannot read the tune: {_reason(error)}") from None
    if hasattr(score, "scores") and len(score.scores):  # an Opus: take its one score
        score = score.scores[0]
    song = song_from_score(score, source=where)
    return dataclasses.replace(song, title=chosen.title, meta={**song.meta, "tune": chosen.reference})


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
    """One bar's notes as ABC, accidentals marked for both ways readers carry them."""
    by_letter = dict(key_alters)  # the reading of readers that carry an accidental to every octave
    by_octave: dict[tuple[str, int], int] = {}  # … and of readers that carry it in its octave only
    tokens = []
    index = 0
    while index < len(bar):
        group = bar[index : index + 3]
        triplet = len(group) == 3 and all(_is_plain(piece.duration * 3 / 2) for piece in group)
        scale = Fraction(3, 2) if triplet else Fraction(1)
        written = []
        for piece in group if triplet else group[:1]:
            written.append(_note_text(piece, piece.duration * scale, key_alters, by_letter, by_octave))
        tokens.append(("(3" if triplet else "") + "".join(written))
        index += len(written)
    return " ".join(tokens)


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
    if not carried or abs(alter) == 2:  # music21 carries a double sharp on as a single one
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


def _is_plain(duration: Fraction) -> bool:
    """Whether a length is a power of two of quarter notes (a note value without dots or tuplets)."""
    return all(part & (part - 1) == 0 for part in (duration.numerator, duration.denominator))


def _field_text(value: str) -> str:
    """A text field's value: a trailing ``% comment`` cut off, ``\\%`` read as ``%``."""
    return re.split(r"(?<!\\)%", value, maxsplit=1)[0].strip().replace("\\%", "%")


def _format_number(value: float) -> str:
    """``120`` for 120.0, else the shortest text that reads back as the same float (``92.5``)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --- preparing a tune for music21 -----------------------------------------------------------


def _prepare_tune(tune: AbcTune, where: str) -> str:
    """The tune as text for music21, or an error naming the line of what it would get wrong.

    Checks the fields music21 fails on obscurely (``L:1/0``, ``M:x/y``, ``Q:1/4=abc``) and
    the music it skips or misreads silently (characters that are not ABC, an accidental
    without a note, notes beyond MIDI's range). Rewrites what music21 misreads but ABC
    allows: ``H`` (a fermata; music21 drops the note after it) becomes ``!fermata!``;
    invisible rests ``x`` (which music21 drops) and multi-bar rests ``Z`` and ``X`` become
    ``z`` rests of the same length; decorations music21 would read as notes (``J W Y j p q``,
    which only a ``U:`` field defines) are dropped. A header with neither ``L:`` nor
    ``M:`` gets ABC's default ``L:1/8``.
    """
    lines = [VERSION_LINE]
    in_header, has_key, continued = True, False, False
    unit, bar = None, None  # the current L: and M: as fractions of a whole note
    for number, line in zip(tune.line_numbers, tune.lines):
        line_continues, continued = continued, line.rstrip().endswith("\\")
        field = _FIELD_LINE.match(line)
        if line.startswith("%"):
            lines.append(line)
            continue
        if in_header and (line_continues or not field):
            continue  # stray text in a header is not music (music21 would read notes in it)
        if field:
            name, value = field[1], re.split(r"(?<!\\)%", field[2], maxsplit=1)[0]
            problem = _field_problem(name, value)
            if problem:
                raise NabiyaError(f"{where}, line {number}: {problem}")
            unit, bar = _follow_field(name, value, unit, bar)
            if name == "K":
                if in_header and unit is None:  # music21 fails without a unit length; ABC has a default
                    unit = Fraction(1, 8) if bar is None else _default_unit(bar)
                    lines.append(f"L:{unit}")
                has_key, in_header = True, False
            lines.append(line)
            continue
        for match in _INLINE_FIELD.finditer(line):
            value = match[0][3:-1]
            problem = _field_problem(match[1], value)
            if problem:
                raise NabiyaError(f"{where}, line {number}, column {match.start() + 1}: {problem}")
            unit, bar = _follow_field(match[1], value, unit, bar)
        problem = _music_problem(line)
        if problem:
            raise NabiyaError(f"{where}, line {number}, {problem}")
        lines.append(_rewrite_music(line, unit, bar, f"{where}, line {number}"))
    if not has_key:
        raise NabiyaError(f"{where} (line {tune.first_line}): the tune has no K: line (its key, e.g. K:C)")
    return "\n".join(lines) + "\n"


def _follow_field(name: str, value: str, unit, bar):
    """The unit length and bar length after a (valid) L: or M: field."""
    value = value.strip()
    if name == "L":
        numerator, _, denominator = value.partition("/")
        return Fraction(int(numerator), int(denominator or 1)), bar
    if name == "M":
        meter = parse_meter(value)
        bar = Fraction(meter[0], meter[1]) if meter else None
        return unit, bar
    return unit, bar


def _default_unit(bar: Fraction) -> Fraction:
    """ABC's unit length when a tune gives none: 1/16 for meters under 3/4, else 1/8."""
    return Fraction(1, 16) if bar < Fraction(3, 4) else Fraction(1, 8)


def _rewrite_music(line: str, unit, bar, where: str) -> str:
    """A line of music with what music21 misreads rewritten (see :func:`_prepare_tune`)."""
    blanked = _blank_out(line)
    pieces, last = [], 0
    for match in re.finditer(r"H|[JWYjpq]|x|[ZX](\d*)", blanked):
        text = match[0]
        if text == "H":
            replacement = "!fermata!"
        elif text == "x":
            replacement = "z"
        elif text[0] in "ZX":
            if bar is None or unit is None:
                raise NabiyaError(f"{where}, column {match.start() + 1}: a multi-bar rest {text!r} needs a meter (M:)")
            length = int(match[1] or 1) * bar / unit
            replacement = "z" + _length_text(length)
        else:
            replacement = ""
        pieces += [line[last : match.start()], replacement]
        last = match.end()
    return "".join(pieces) + line[last:]


def _field_problem(name: str, value: str) -> str | None:
    value = value.strip()
    if name == "L":
        match = re.fullmatch(r"(\d+)\s*(?:/\s*(\d+))?", value)
        if not match or int(match[1]) == 0 or (match[2] is not None and int(match[2]) == 0):
            return f"L:{value} is not a note length: write one such as L:1/8"
    elif name == "M":
        if value.lower() in ("", "none", "c", "c|"):
            return None
        match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", value)
        if not match or int(match[1]) == 0 or int(match[2]) == 0:
            return f"M:{value} is not a meter: write one such as M:3/4, M:6/8, M:C or M:none"
    elif name == "Q":
        unquoted = re.sub(r'"[^"]*"', " ", value).strip()
        if not unquoted:
            return None
        match = re.fullmatch(r"(?:((?:\d+\s*/\s*\d+\s*)+|C\d*)\s*=\s*)?(\d+(?:\.\d+)?)", unquoted)
        bad_unit = match and match[1] and any(int(d) == 0 for d in re.findall(r"/\s*(\d+)", match[1]))
        if not match or bad_unit or float(match[2]) == 0:
            return f"Q:{value} is not a tempo: write one such as Q:1/4=120"
    return None


def _music_problem(line: str) -> str | None:
    """What is not ABC in a line of music, as ``'column 7: …'``, or None."""
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
    """A tune's ``(line number, line)`` pairs up to a blank line followed by text that is not ABC."""
    for index, (_, line) in enumerate(numbered):
        if line.strip():
            continue
        rest = [later for _, later in numbered[index + 1 :] if later.strip()]
        if any(not _FIELD_LINE.match(later) and not later.startswith("%") and _music_problem(later) for later in rest):
            return numbered[:index]
    return numbered


def _line_span(tune: AbcTune) -> str:
    return f"{tune.first_line}-{tune.line_numbers[-1]}"


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    text = re.split(r"\.? tPrev:|\.? token:", text)[0]
    if len(text) > 120:
        text = text[:117] + "…"
    return text or type(error).__name__
