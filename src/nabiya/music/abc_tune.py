"""One ABC tune read into a melody, as the ABC 2.1 standard says: nabiya's own reader.

:func:`read_tune` reads the lines of one tune (header and body, see
:func:`nabiya.music.abc.split_tunes`) and gives its first voice as notes with exact
durations, plus the meter, key, pickup and tempo. It reads what a melody needs and skips
what does not change the notes:

- notes with accidentals (``^ ^^ _ __ =``), octave marks and lengths (``A3/2``, ``A//``);
  rests ``z`` and invisible rests ``x``; multi-bar rests ``Z4`` and ``X``;
- an accidental carries to the end of its bar in every octave (``%%propagate-accidentals
  pitch``, ABC 2.1's default; ``octave`` and ``not`` are honoured when a tune asks), a
  double sharp or flat too, and a tied note keeps its accidental across the bar line;
- key signatures with modes (``K:Ador``, ``K:E Phrygian``), explicit accidentals
  (``K:D =c ^g``, ``K:D exp ^f ^c``), ``none`` and the bagpipe keys ``HP``/``Hp``;
- clefs and transposition (ABC 2.1 section 4.6), for the pitch that *sounds*: a clef alone
  (``bass``, ``clef=alto``) moves no note, since ABC's default ``middle=`` keeps every
  letter's pitch; ``middle=`` only places notes on the staff and is ignored; ``octave=N``
  moves the letters ``N`` octaves; a clef's ``+8``/``-8`` and ``transpose=N`` (semitones)
  are playback transpositions, applied to the pitch (the song's key moves with ``transpose=``);
- broken rhythm ``>``/``<`` (``>>``, ``>>>``) between two notes, whatever stands between
  them (slurs, grace notes, decorations, chord symbols, annotations, a tie); between notes of
  unequal length, which ABC 2.1 leaves undefined, both are left as written (as abc2midi does);
- tuplets ``(3``, ``(5``, ``(p:q:r`` (q from ABC's table; 2 or 3 by the meter for 5, 7, 9);
- ties (merged into one note), rests in a row (one silence);
- fields in the body, on a line of their own or inline: ``K: L: M: Q: V: P:``;
- voices: the first voice (``V:`` or ``[V:]``) is read, and a warning names the others;
  a voice overlay ``&`` is skipped to its bar line, with a warning;
- repeats: ``repeats="written"`` reads each section once, every ending in written order;
  ``repeats="played"`` plays ``|: :|``, ``::`` and endings (``[1``, ``:|2``, ``[1,3``) pass
  by pass, and a header ``P:ABA`` plays the tune's parts in that order, as abc2midi does.

Chord symbols, annotations, decorations, grace notes, slurs and lyrics are skipped. A chord
of different pitches is an error (a song is one line of melody); a chord of one pitch is
that note.

Why not music21 (which read ABC for nabiya before): music21 misreads valid ABC silently
(the note after ``H`` or after a ``">"`` annotation vanishes; broken rhythm after a slur, grace
note or decoration is lost; ``K:`` accidentals, ``octave=`` and inline voices are ignored), its
notation of a note far longer than its bar is slow (``makeNotation`` cuts it at every bar line:
0.4 s for ``C999`` under ``M:2/4``, 1.8 s for ``C2999``), and it takes 50-80 ms a tune. Each
slip would need a rewrite of the text before music21 sees it, and the rewrites need a tokenizer
anyway. Measured with abc2midi (abcMIDI) as the oracle on the 12,978 tunes of music21's ABC
books (``python benchmarks/abc_agreement.py``), the notes of 99.0% of the tunes agree as written
(music21: 95.3%), 99.9% of those both read; and O'Neill's book of 2,009 tunes is split and
read at about 500 tunes a second, 2 ms a tune against music21's 80.

Every problem is a :class:`~nabiya.errors.NabiyaError` naming the line, column and, for
notes, the measure and the note's number in it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

from nabiya.errors import NabiyaError
from nabiya.music.limits import MAX_NOTE_QUARTERS, MAX_SONG_NOTES, MAX_TEMPO_BPM, MIN_TEMPO_BPM
from nabiya.music.notation import MODE_FIFTHS, key_alterations, key_name, parse_meter, pitch_name, spell
from nabiya.music.note import LETTER_SEMITONES, Note

REPEATS = ("written", "played")
DEFAULT_REPEATS = "written"
MAX_ENDING = 16  # the highest ending number read ([1,16]): more passes than any tune takes
MAX_PART_PLAYS = 64  # parts played in all for a header P: (P:A8B8 …)

_FIELD_LINE = re.compile(r"^([A-Za-z+]):(.*)$")
_MUSIC_FIELD_LINE = re.compile(r"^[A-Ga-g]:[|:]")  # "A:|" is music, not a field
_COMMENT = re.compile(r"(?<!\\)%.*")
_LENGTH = r"(\d*)((?:/\d*)*)"
_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)" + _LENGTH + r"(\.?-)?")
# an accidental, then what some tunes put between it and its letter ("=e"4"d" : a fingering)
_ACCIDENTAL_BEFORE_ANNOTATION = re.compile(r"(\^\^|\^|__|_|=)((?:\"[^\"]*\"|![^!\s]*!)+)(?=[A-Ga-g])")
_REST = re.compile(r"([zx])" + _LENGTH)
_MULTI_REST = re.compile(r"[ZX](\d*)")
_BAR = re.compile(r"\[\|\]|\.\||\[\|:*|:*\|[|\]]*:*|::+|:")
_ENDING_NUMBERS = re.compile(r"[1-9][0-9]*(?:[,\-][1-9][0-9]*)*")
_INLINE_FIELD = re.compile(r"\[([A-Za-z]):([^\]]*)\]")
_TUPLET = re.compile(r"\((\d+)(?::(\d*))?(?::(\d*))?")
_DECORATION = re.compile(r"![^!\s]*!|\+[^+\s]*\+")
_SHORT_DECORATION = re.compile(r"[.~H-Wh-wYy]([\d/]*)([,']*)")
_SPACE = re.compile(r"[ \t`$*\\]+")
_BROKEN_SIGNS = re.compile(r">+|<+")
_ACCIDENTALS = re.compile(r"[\^_=]+")
_STRAY_LENGTH = re.compile(r"[\d/]+")
_OPEN_FIELD = re.compile(r"\[[A-Za-z]:")
_AFTER_CHORD = re.compile(_LENGTH + r"(\.?-)?")
_KEY_TONIC = re.compile(r"([A-Ga-g])([#b]?)([A-Za-z]*)(.*)$")
_KEY_ACCIDENTAL = re.compile(r"(\^\^|\^|__|_|=)([A-Ga-g])")
_CLEF = re.compile(r"(?:clef=)?(treble|alto|tenor|bass|baritone|perc|none)\d?([+-]8)?$", re.IGNORECASE)
_KEY_OPTION = re.compile(
    r"(?:clef|middle|m|transpose|t|octave|stafflines|staffscale|cue|instrument|shift|name|nm|subname|sname|snm"
    r"|stem|gstem|dyn|lyrics|space)=",
    re.IGNORECASE,
)
_ACCIDENTAL_ALTER = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
_MODES = {mode[:3]: mode for mode in MODE_FIFTHS} | {"m": "minor"}
# (p → q) for (p tuplets: p notes in the time of q; None: 3 in compound meters, else 2.
_TUPLET_TIME = {2: 3, 3: 2, 4: 3, 5: None, 6: 2, 7: None, 8: 3, 9: None}
_BROKEN = {1: Fraction(1, 2), 2: Fraction(1, 4), 3: Fraction(1, 8)}  # what the shorter note keeps


@dataclass(frozen=True)
class TuneReading:
    """What :func:`read_tune` read: the melody, and how it is written down.

    Attributes:
        notes: the first voice's notes (rests included), ties and rests in a row merged.
        meter: the meter at the first note (``"6/8"``), or None (none, or not a power-of-two one).
        key: the key at the first note (``"G major"``), or None (``K:none``, or unusual).
        pickup: the written first bar's length in quarter notes when it is shorter than a bar.
        tempo_bpm: the first ``Q:`` in quarter notes a minute, or None.
    """

    notes: tuple[Note, ...]
    meter: str | None
    key: str | None
    pickup: Fraction
    tempo_bpm: float | None


def read_tune(
    lines: Sequence[str], line_numbers: Sequence[int], *, where: str, repeats: str = DEFAULT_REPEATS
) -> TuneReading:
    """Read one ABC tune's lines (``X:`` first, header, ``K:``, body) into its first voice's melody.

    Args:
        lines: the tune's lines.
        line_numbers: each line's number in its file, for messages.
        where: the file and tune, for messages (``"tunes.abc, tune X:3"``).
        repeats: ``"written"`` (each section once, endings in written order) or ``"played"``.

    Raises:
        NabiyaError: naming ``where``, the line, the column and what is wrong.

    Example:
        >>> reading = read_tune(["X:1", "M:3/4", "L:1/8", "K:G", "d2 | g>a (3bag f2 |]"], range(1, 6), where="t")
        >>> [note.code for note in reading.notes], reading.meter, reading.key, reading.pickup
        (["d'4", "g'8.", "a'16", "b'12", "a'12", "g'12", "f#'4"], '3/4', 'G major', Fraction(1, 1))
    """
    if repeats not in REPEATS:
        raise NabiyaError(f"repeats must be 'written' or 'played', not {repeats!r}")
    reader = _TuneReader(where)
    reader.read(lines, line_numbers)
    return reader.result(repeats)


# --- what a tune is read into -----------------------------------------------------------------


@dataclass
class _Event:
    """A note, rest or chord of the first voice, as written (its duration may still change: ``A>B``)."""

    pitch: int | None
    spelling: str | None
    duration: Fraction
    place: str  # "line 5, column 3 (measure 2, note 1)"
    measure: int
    tied: bool = False


@dataclass(frozen=True)
class _Bar:
    end_repeat: bool  # :|
    start_repeat: bool  # |:
    section_end: bool  # || |] [|


@dataclass(frozen=True)
class _Ending:
    numbers: frozenset


@dataclass(frozen=True)
class _PartMark:
    label: str


@dataclass
class _Key:
    """The key signature and the voice's pitch set-up."""

    name: str | None = "C major"
    fifths: int = 0
    alterations: dict = field(default_factory=lambda: dict.fromkeys("cdefgab", 0))
    octave: int = 0  # octave=
    transpose: int = 0  # transpose=, in semitones (sounding pitch)
    clef_shift: int = 0  # a clef's +8 or -8, in semitones (sounding pitch)

    def copy(self) -> "_Key":
        return _Key(self.name, self.fifths, dict(self.alterations), self.octave, self.transpose, self.clef_shift)

    @property
    def sounding_shift(self) -> int:
        return 12 * self.octave + self.transpose + self.clef_shift


@dataclass
class _Voice:
    """A voice's own octave=, transpose= and clef (None: not given in its V: field)."""

    octave: int | None = None
    transpose: int | None = None
    clef_shift: int | None = None


# --- the reader -----------------------------------------------------------------------------------


class _TuneReader:
    """Reads a tune line by line; its state is the state of the music at the current point."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.items: list = []  # _Event, _Bar, _Ending, _PartMark in written order
        self.key = _Key()
        self.unit: Fraction | None = None  # L:, as a fraction of a whole note
        self.bar_length: Fraction | None = None  # M:, as a fraction of a whole note
        self.meter: str | None = None
        self.header_meter: Fraction | None = None
        self.tempo_bpm: float | None = None
        self.propagate = "pitch"
        self.bar_accidentals: dict = {}
        self.parts_order: str | None = None
        # voices: None is the default voice, which is the first voice
        self.voice: str | None = None
        self.first_voice: str | None = None
        self.voice_setup: dict[str, _Voice] = {}
        self.other_voices: list[str] = []
        self.overlay = False
        self.overlay_measure: int | None = None
        # where we are
        self.line_number = 0
        self.measure = 1
        self.measure_events = 0
        self.events = 0
        self.tuplets: list[list] = []  # [notes left, factor, notes]
        self.lengths: dict = {}  # (digits, slashes, unit) -> quarter notes
        self.broken: tuple | None = None  # (the note before > or <, its length then, its factor, the next's, the signs)
        self.warned_broken = False
        self.last_event: _Event | None = None
        self.last_written: tuple | None = None  # (letter, written octave, alteration) of the last note
        self.first_meter: str | None = None
        self.first_key: str | None = None
        self.after_bar = False  # the last token was a bar line (an ending number may follow)
        self.warned_stray = False
        self.started = False  # a note has been read

    # --- errors ---

    def fail(self, problem: str, column: int | None = None) -> None:
        place = f", line {self.line_number}" + (f", column {column + 1}" if column is not None else "")
        raise NabiyaError(f"{self.where}{place}: {problem}")

    @property
    def reading(self) -> bool:
        """Whether the music here is the first voice's (not another voice's, nor an overlay)."""
        return (self.voice is None or self.voice == self.first_voice) and not self.overlay

    # --- lines ---

    def read(self, lines: Sequence[str], line_numbers: Sequence[int]) -> None:
        in_header = True
        for number, line in zip(line_numbers, lines):
            self.line_number = number
            if line.startswith("%"):
                self.directive(line)
                continue
            field = _FIELD_LINE.match(line)
            if field and (in_header or not _MUSIC_FIELD_LINE.match(line)):
                name, value = field[1], _COMMENT.sub("", field[2]).strip()
                if in_header and name == "K":
                    if self.unit is None:  # ABC's default unit: 1/16 under meters shorter than 3/4, else 1/8
                        meter = self.header_meter
                        self.unit = Fraction(1, 16) if meter is not None and meter < Fraction(3, 4) else Fraction(1, 8)
                    in_header = False
                    self.set_key(value, None)
                    continue
                self.field(name, value, header=in_header)
                continue
            if not in_header:  # stray text in a header is not music
                self.music(line)
        if in_header:
            raise NabiyaError(f"{self.where} (line {line_numbers[0]}): the tune has no K: line (its key, e.g. K:C)")

    def directive(self, line: str) -> None:
        match = re.match(r"%%\s*propagate-accidentals\s+(\w+)", line)
        if match and match[1] in ("not", "octave", "pitch"):
            self.propagate = match[1]

    # --- fields ---

    def field(self, name: str, value: str, *, header: bool, column: int | None = None) -> None:
        """A field in the header, on a line of its own in the body, or inline (``[K:G]``)."""
        if not header and name in "KLQ" and not self.reading:
            return  # another voice's key, unit or tempo
        if name == "L":
            match = re.fullmatch(r"(\d{1,6})\s*(?:/\s*(\d{1,6}))?", value)
            if not match or int(match[1]) == 0 or (match[2] is not None and int(match[2]) == 0):
                self.fail(f"L:{value} is not a note length: write one such as L:1/8", column)
            self.unit = Fraction(int(match[1]), int(match[2] or 1))
        elif name == "M":
            self.set_meter(value, column, header=header)
        elif name == "Q":
            self.set_tempo(value, column)
        elif name == "K":
            self.set_key(value, column)
        elif name == "V":
            self.set_voice(value, header=header)
        elif name == "P":
            if header:
                self.parts_order = value
            elif value:
                self.items.append(_PartMark(value[0]))
        elif name == "I":
            self.directive("%%" + value)

    def set_meter(self, value: str, column: int | None, *, header: bool) -> None:
        text = value.strip()
        if text.lower() in ("", "none"):
            bar, meter = None, None
        elif text in ("C", "c"):
            bar, meter = Fraction(1), "4/4"
        elif text in ("C|", "c|"):
            bar, meter = Fraction(1), "2/2"
        else:
            # "3/4", "FREI4/4" (the Essen songs' free meter), "(2+3)/8", "2+3+2/8"
            match = re.search(r"\(?(\d{1,3}(?:\s*\+\s*\d{1,3})*)\)?\s*/\s*(\d{1,3})", text)
            beats = sum(int(part) for part in match[1].split("+")) if match else 0
            if not match or beats == 0 or int(match[2]) == 0:
                self.fail(f"M:{value} is not a meter: write one such as M:3/4, M:6/8, M:C or M:none", column)
            bar = Fraction(beats, int(match[2]))
            meter = f"{beats}/{match[2]}" if parse_meter(f"{beats}/{match[2]}") else None
        self.bar_length, self.meter = bar, meter
        if header:
            self.header_meter = bar

    def set_tempo(self, value: str, column: int | None) -> None:
        text = re.sub(r'"[^"]*"', " ", value).strip()
        if not text:
            return
        match = re.fullmatch(r"(?:((?:\d{1,4}\s*/\s*\d{1,4}\s*)+|[Cc]\d{0,3})\s*=\s*)?(\d{1,9}(?:\.\d{0,9})?)", text)
        beats = [(int(a), int(b)) for a, b in re.findall(r"(\d+)\s*/\s*(\d+)", match[1] or "")] if match else []
        if not match or any(b == 0 for _, b in beats) or float(match[2]) == 0:
            self.fail(f"Q:{value} is not a tempo: write one such as Q:1/4=120", column)
        if beats:
            beat = sum((Fraction(a, b) for a, b in beats), Fraction(0))
        else:  # Q:120 or Q:C2=120: counted in unit lengths (ABC 2.1 keeps it for old tunes)
            beat = (self.unit or Fraction(1, 8)) * int((match[1] or "C1")[1:] or 1)
        bpm = float(match[2]) * float(beat * 4)
        if not MIN_TEMPO_BPM <= bpm <= MAX_TEMPO_BPM:
            self.fail(
                f"Q:{value} is {bpm:.6g} quarter notes a minute, outside nabiya's tempo range of "
                f"{MIN_TEMPO_BPM:g} to {MAX_TEMPO_BPM:g}",
                column,
            )
        if self.tempo_bpm is None:
            self.tempo_bpm = round(bpm, 6)

    def set_key(self, value: str, column: int | None) -> None:
        key = self.key.copy()
        words = value.split()
        rest = words
        if words and words[0].lower() == "none":
            key.name, key.fifths, key.alterations, rest = None, 0, dict.fromkeys("cdefgab", 0), words[1:]
        elif words and words[0] in ("HP", "Hp"):  # Highland pipes: A mixolydian, played with F# and C#
            key.name, key.fifths, key.alterations, rest = "A mixolydian", 2, key_alterations(2), words[1:]
        elif words and _KEY_TONIC.match(words[0]) and not _is_key_option(words[0]):
            tonic = _KEY_TONIC.match(words[0])
            mode_text, rest = tonic[3], ([tonic[4]] if tonic[4] else []) + words[1:]
            if not mode_text and rest and rest[0].isalpha() and _mode(rest[0]):
                mode_text, rest = rest[0], rest[1:]
            mode = _mode(mode_text) if mode_text else "major"
            if mode is None:
                where = f"{self.where}, line {self.line_number}"
                warnings.warn(f"{where}: K:{value}: unknown mode {mode_text!r}, read as major", stacklevel=2)
                mode = "major"
            letter, accidental = tonic[1].lower(), tonic[2]
            fifths = _LETTER_FIFTHS[letter] + 7 * (1 if accidental == "#" else -1 if accidental == "b" else 0) + MODE_FIFTHS[mode]
            if not -7 <= fifths <= 7:
                self.fail(f"K:{value} has more than 7 sharps or flats", column)
            key.fifths, key.alterations = fifths, key_alterations(fifths)
            key.name = key_name(letter + accidental, mode)
        elif words and not _is_key_option(words[0]):
            self.fail(f"K:{value} is not a key: write one such as K:G, K:Ador, K:Bb, K:none or K:clef=bass", column)
        for word in rest:
            if word.lower() == "exp":  # the signature is only the accidentals that follow
                key.alterations = dict.fromkeys("cdefgab", 0)
            elif _KEY_ACCIDENTAL.fullmatch(word) or re.fullmatch(r"(?:(?:\^\^|\^|__|_|=)[A-Ga-g])+", word):
                for sign, letter in _KEY_ACCIDENTAL.findall(word):
                    key.alterations[letter.lower()] = _ACCIDENTAL_ALTER[sign]
            else:
                self.clef_option(word, key)
        self.key = key
        self.bar_accidentals = {}

    def clef_option(self, word: str, setup) -> None:
        """A clef, ``octave=``, ``transpose=`` or other option of a K: or V: field."""
        name, _, value = word.partition("=")
        name = name.lower()
        if name == "octave" and re.fullmatch(r"[+-]?\d{1,2}", value):
            setup.octave = int(value)
        elif name in ("transpose", "t") and re.fullmatch(r"[+-]?\d{1,3}", value):
            setup.transpose = int(value)
        elif _CLEF.match(word):
            setup.clef_shift = {"+8": 12, "-8": -12}.get(_CLEF.match(word)[2], 0)
        # middle=, stafflines=, name= and unknown words ("-8va") change no pitch

    def set_voice(self, value: str, *, header: bool) -> None:
        words = value.split()
        if not words:
            return
        voice_id = words[0]
        setup = self.voice_setup.setdefault(voice_id, _Voice())
        for word in words[1:]:
            self.clef_option(word, setup)
        if self.first_voice is None:
            self.first_voice = voice_id
        if header:
            return
        self.voice = voice_id
        if voice_id == self.first_voice:
            for name in ("octave", "transpose", "clef_shift"):
                if getattr(setup, name) is not None:
                    setattr(self.key, name, getattr(setup, name))
        elif voice_id not in self.other_voices:
            self.other_voices.append(voice_id)

    # --- music ---

    def music(self, line: str) -> None:
        code = _COMMENT.sub("", line)
        if code.count('"') % 2:
            self.fail('a quoted chord symbol or annotation is not closed with "', code.index('"'))
        position, end = 0, len(code)
        while position < end:
            position = self.token(code, position)

    def token(self, code: str, position: int) -> int:
        """Read the token at ``position``; returns the position after it."""
        character = code[position]
        after_bar, self.after_bar = self.after_bar, False
        if character in " \t`$*\\":
            end = _SPACE.match(code, position).end()
            self.after_bar = after_bar and end == len(code)  # "|\" ends the line; the next may start "2 abc"
            return end
        if character in "123456789" and after_bar:
            numbers = _ENDING_NUMBERS.match(code, position)  # "…:|\" and the next line starts "2 abc"
            self.ending(numbers[0], position)
            return numbers.end()
        if character in _NOTE_START:
            return self.note(code, position)
        if character == '"':
            close = code.find('"', position + 1)
            if close < 0:
                self.fail('a quoted chord symbol or annotation is not closed with "', position)
            return close + 1
        if character in "|:" or code.startswith((".|", "[|"), position):
            return self.bar(code, position)
        if character == "[":
            return self.bracket(code, position)
        if character in "zx":
            match = _REST.match(code, position)
            if self.reading:
                self.emit(None, None, self.length(match[2], match[3], position), position, match[0])
            return match.end()
        if character in "ZX":
            return self.multi_bar_rest(code, position)
        if character == "(":
            return self.tuplet(code, position)
        if character in "<>":
            return self.broken_rhythm(code, position)
        if character == "-" or code.startswith(".-", position):
            if self.last_event is not None and self.reading:
                self.last_event.tied = True
            return position + (1 if character == "-" else 2)
        if character in "!+":
            match = _DECORATION.match(code, position)
            return match.end() if match else position + 1  # a lone ! (an old line break) or +
        if character == "{":
            close = code.find("}", position)
            if close < 0:
                self.fail("grace notes opened with { are not closed with } on the same line", position)
            return close + 1  # grace notes take no time of their own here
        if character in ")}]" or code.startswith(".(", position):
            return position + (2 if character == "." else 1)
        if character == "&":
            if self.reading:
                self.overlay, self.overlay_measure = True, self.overlay_measure or self.measure
            return position + 1
        if character in "~.HIJKLMNOPQRSTUVWYhijklmnopqrstuvwy":
            match = _SHORT_DECORATION.match(code, position)
            if match[1]:
                self.fail(f"{match[0]!r} is a length after a decoration or spacer; only notes and rests have lengths", position)
            if match[2]:
                self.fail(f"an octave mark {match[2]!r} must follow a note letter", position)
            return match.end()
        if character in "0123456789/":  # a slip that abc2midi and music21 pass over: so do we, with a warning
            match = _STRAY_LENGTH.match(code, position)
            if not self.warned_stray:
                warnings.warn(
                    f"{self.where}, line {self.line_number}, column {position + 1}: {match[0]!r} is a length with no "
                    "note or rest before it; skipped",
                    stacklevel=5,
                )
                self.warned_stray = True
            return match.end()
        if character in ",'":
            return position + 1  # a stray octave mark (a slip some tunes have, which players ignore)
        self.fail(f"{character!r} is not ABC music (sharps are ^, flats _, naturals =)", position)
        return position + 1  # not reached

    def note(self, code: str, position: int) -> int:
        match = _NOTE.match(code, position)
        if match is None:
            annotated = _ACCIDENTAL_BEFORE_ANNOTATION.match(code, position)
            if annotated is None:
                accidentals = _ACCIDENTALS.match(code, position)[0]
                self.fail(f"an accidental {accidentals!r} must stand right before a note letter", position)
            sign, match = annotated[1], _NOTE.match(code, annotated.end())
        else:
            sign = match[1]
        if self.reading:
            pitch, spelling = self.pitch(sign, match[2], match[3], code[position : match.end()], position)
            self.emit(pitch, spelling, self.length(match[4], match[5], position), position, code[position : match.end()])
            if match[6]:
                self.last_event.tied = True
        return match.end()

    def pitch(self, sign: str | None, letter: str, marks: str, text: str, position: int) -> tuple[int, str | None]:
        """The sounding pitch and spelling of a note, by the key, the bar's accidentals and ties."""
        step = letter.lower()
        written_octave = (4 if letter.isupper() else 5) + marks.count("'") - marks.count(",")
        if sign is not None:
            alter = _ACCIDENTAL_ALTER[sign]
            if self.propagate == "pitch":
                self.bar_accidentals[step] = alter
            elif self.propagate == "octave":
                self.bar_accidentals[(step, written_octave)] = alter
        elif (
            self.last_event is not None and self.last_event.tied and self.last_written
            and self.last_written[:2] == (step, written_octave)
        ):
            alter = self.last_written[2]  # a tied note keeps its accidental, also across the bar line
        else:
            found = self.bar_accidentals.get(step if self.propagate == "pitch" else (step, written_octave))
            alter = self.key.alterations[step] if found is None else found
        self.last_written = (step, written_octave, alter)
        written = 12 * (written_octave + 1) + LETTER_SEMITONES[step] + alter
        pitch = written + self.key.sounding_shift
        if not 0 <= pitch <= 127:
            self.fail(f"the note {text!r} is outside MIDI's pitch range", position)
        spelling = step + ("#" * alter if alter > 0 else "b" * -alter)
        if self.key.transpose % 12:
            spelling = spell(pitch, _transposed_fifths(self.key.fifths, self.key.transpose))
        return pitch, spelling

    def length(self, digits: str, slashes: str, position: int) -> Fraction:
        """A note's length in quarter notes before tuplets and broken rhythm (``3/2`` of the unit)."""
        key = (digits, slashes, self.unit)
        length = self.lengths.get(key)
        if length is None:  # a tune has a few lengths, read thousands of times: compute each once
            length = self.lengths[key] = self.multiple(digits, slashes, position) * self.unit * 4
        return length

    def multiple(self, digits: str, slashes: str, position: int) -> Fraction:
        """How many units a length says: ``''`` → 1, ``3/2`` → 3/2, ``//`` → 1/4."""
        if len(digits.lstrip("0")) > 12 or len(slashes) > 60:
            self.fail(f"the length {digits + slashes!r} is far longer or shorter than any note nabiya reads", position)
        multiple = Fraction(int(digits) if digits else 1)
        for divisor in slashes.split("/")[1:]:
            if divisor and int(divisor) == 0:
                self.fail(f"the length {digits + slashes!r} divides by zero", position)
            multiple /= int(divisor) if divisor else 2
        return multiple

    def emit(self, pitch: int | None, spelling: str | None, duration: Fraction, position: int, text: str) -> None:
        """Add a note, rest or chord (of the first voice) to the tune."""
        for tuplet in self.tuplets:
            duration *= tuplet[1]
            tuplet[0] -= 1
        if self.tuplets:
            self.tuplets = [tuplet for tuplet in self.tuplets if tuplet[0] > 0]
        self.measure_events += 1
        place = f"line {self.line_number}, column {position + 1} (measure {self.measure}, note {self.measure_events})"
        if self.broken is not None:
            duration = self.apply_broken_rhythm(duration, place)
        if duration == 0:
            raise NabiyaError(f"{self.where}, {place}: a note of no length: {text!r}")
        self.check_length(duration, place, text)
        if not self.started:
            self.started, self.first_meter, self.first_key = True, self.meter, _sounding_key(self.key)
        self.events += 1
        if self.events > MAX_SONG_NOTES:
            raise NabiyaError(f"{self.where}, {place}: more than nabiya's limit of {MAX_SONG_NOTES} notes")
        self.last_event = _Event(pitch, spelling, duration, place, self.measure)
        self.items.append(self.last_event)

    def check_length(self, duration: Fraction, place: str, text: str) -> None:
        if duration > MAX_NOTE_QUARTERS:
            raise NabiyaError(
                f"{self.where}, {place}: {text!r} lasts {_short(duration)} quarter notes, longer than "
                f"nabiya's limit of {MAX_NOTE_QUARTERS} (64 bars of 4/4)"
            )

    def bar(self, code: str, position: int) -> int:
        match = _BAR.match(code, position)
        text = match[0]
        end = match.end()
        if text == ":":
            return end  # a lone colon means nothing
        self.overlay = False
        if self.reading:
            stripped = text.lstrip(".[")
            self.items.append(
                _Bar(
                    end_repeat=stripped.startswith(":"),
                    start_repeat=stripped.endswith(":"),
                    section_end=text != "[|]" and (text.startswith("[|") or "||" in text or "|]" in text),
                )
            )
            if self.measure_events:
                self.measure += 1
                self.measure_events = 0
            self.bar_accidentals = {}
        numbers = _ENDING_NUMBERS.match(code, end)
        if numbers:
            self.ending(numbers[0], end)
            end = numbers.end()
        else:
            self.after_bar = True
        return end

    def ending(self, text: str, position: int) -> None:
        numbers = set()
        for piece in text.split(","):
            low, _, high = piece.partition("-")
            low, high = int(low[:3]), int((high or low)[:3])
            if max(low, high) > MAX_ENDING:
                self.fail(f"an ending numbered {piece!r}: nabiya reads endings up to {MAX_ENDING}", position)
            numbers.update(range(low, high + 1))
        if self.reading:
            self.items.append(_Ending(frozenset(numbers)))

    def bracket(self, code: str, position: int) -> int:
        """``[K:G]`` an inline field, ``[2`` an ending, or ``[CEG]`` a chord."""
        field = _INLINE_FIELD.match(code, position)
        if field:
            self.field(field[1], field[2].strip(), header=False, column=position)
            return field.end()
        if _OPEN_FIELD.match(code, position):
            self.fail("an inline field opened with [ is not closed with ]", position)
        numbers = _ENDING_NUMBERS.match(code, position + 1)
        if numbers:
            self.ending(numbers[0], position)
            return numbers.end()
        return self.chord(code, position)

    def chord(self, code: str, position: int) -> int:
        close = code.find("]", position)
        if close < 0:
            self.fail("a chord opened with [ is not closed with ]", position)
        inner, index = code[position + 1 : close], 0
        pitches, lengths, tied = [], [], False
        while index < len(inner):
            character = inner[index]
            if character in _NOTE_START:
                match = _NOTE.match(inner, index)
                if match is None:
                    self.fail("an accidental must stand right before a note letter", position + 1 + index)
                if self.reading:
                    pitches.append(self.pitch(match[1], match[2], match[3], match[0], position + 1 + index))
                lengths.append((match[4], match[5]))
                tied = tied or bool(match[6])
                index = match.end()
            elif character in " \t.~-()zx" or character in "HIJKLMNOPQRSTUVWhijklmnopqrstuvw":
                index += 1  # decorations, slurs, and rests (a chord's notes are what sounds)
            elif character in "0123456789/":
                index = _STRAY_LENGTH.match(inner, index).end()
            elif character in '"!+':
                end = inner.find(character, index + 1)
                index = len(inner) if end < 0 else end + 1
            else:
                self.fail(f"{character!r} in a chord: a chord holds notes, as in [CEG]", position + 1 + index)
        after = _AFTER_CHORD.match(code, close + 1)
        if not pitches or not self.reading:
            return after.end()  # [] holds nothing
        duration = self.length(*lengths[0], position) * self.multiple(after[1], after[2], position)
        if len({pitch for pitch, _ in pitches}) > 1:
            names = " ".join(pitch_name(pitch, spelling) for pitch, spelling in pitches)
            measure_note = f"measure {self.measure}, note {self.measure_events + 1}"
            raise NabiyaError(
                f"{self.where}, line {self.line_number}, column {position + 1} ({measure_note}): a chord ({names}) "
                "where a melody note was expected; nabiya reads one melody"
            )
        self.emit(pitches[0][0], pitches[0][1], duration, position, code[position : after.end()])
        if tied or after[3]:
            self.last_event.tied = True
        return after.end()

    def multi_bar_rest(self, code: str, position: int) -> int:
        match = _MULTI_REST.match(code, position)
        if self.bar_length is None:
            self.fail(f"a multi-bar rest {match[0]!r} needs a meter (M:)", position)
        count = match[1] or "1"
        if len(count.lstrip("0")) > 6:
            self.fail(f"a rest of {count} bars is far longer than nabiya's limit of {MAX_NOTE_QUARTERS} quarter notes", position)
        if self.reading:
            self.emit(None, None, int(count) * self.bar_length * 4, position, match[0])
        return match.end()

    def tuplet(self, code: str, position: int) -> int:
        match = _TUPLET.match(code, position)
        if match is None:
            return position + 1  # a slur
        if len(match[1]) > 3 or int(match[1]) < 2 or (match[2] and len(match[2]) > 3):
            self.fail(f"the tuplet {match[0]!r} is not one ABC knows: write (3 or (p:q:r with p from 2 to 999", position)
        notes = int(match[1])
        time = int(match[2]) if match[2] else _TUPLET_TIME.get(notes)
        if time is None:
            compound = self.bar_length is not None and (self.bar_length * 8).denominator == 1 and int(self.bar_length * 8) % 3 == 0
            compound = compound and self.meter is not None and int(self.meter.split("/")[0]) % 3 == 0 and int(self.meter.split("/")[0]) > 3
            time = 3 if compound else 2
        count = int(match[3]) if match[3] and len(match[3]) <= 3 else notes if not match[3] else 0
        if time == 0 or count == 0:
            self.fail(f"the tuplet {match[0]!r} is not one ABC knows: write (3 or (p:q:r with p from 2 to 999", position)
        if self.reading:
            if self.tuplets and self.tuplets[-1][0] == self.tuplets[-1][2]:
                self.tuplets.pop()  # "(3(3abc": a tuplet sign twice, as abc2midi reads it, counts once
            self.tuplets.append([count, Fraction(time, notes), count])
        return match.end()

    def broken_rhythm(self, code: str, position: int) -> int:
        """``A>B``: the note before is dotted and the next halved, once the next is read."""
        signs = _BROKEN_SIGNS.match(code, position)[0]
        if len(signs) > 3:
            self.fail(f"{signs!r} is not a broken rhythm: write >, >> or >>>", position)
        shorter = _BROKEN[len(signs)]
        longer = 2 - shorter
        first, second = (longer, shorter) if signs[0] == ">" else (shorter, longer)
        if self.reading and self.last_event is not None:
            self.broken = (self.last_event, self.last_event.duration, first, second, signs)
        return position + len(signs)

    def apply_broken_rhythm(self, duration: Fraction, place: str) -> Fraction:
        """The next note's length after a broken rhythm, which changes the note before it too.

        ABC 2.1 leaves a broken rhythm between notes of unequal length undefined (``d>B/``,
        ``G<B3``, the second ``>`` of ``c>d>e``); like abc2midi, nabiya leaves both notes as
        written, with a warning.
        """
        before, length_before, first, second, signs = self.broken
        self.broken = None
        if length_before != duration or before.duration != length_before:
            if not self.warned_broken:
                warnings.warn(
                    f"{self.where}, {place}: a broken rhythm {signs!r} between notes of unequal length, which "
                    "ABC 2.1 leaves undefined: both notes are read as written (as abc2midi does)",
                    stacklevel=6,
                )
                self.warned_broken = True
            return duration
        before.duration *= first
        self.check_length(before.duration, before.place, signs)
        return duration * second

    # --- the result ---

    def result(self, repeats: str) -> TuneReading:
        if self.other_voices:
            voices = ", ".join(f"V:{voice}" for voice in [self.first_voice, *self.other_voices])
            warnings.warn(
                f"{self.where}: {len(self.other_voices) + 1} parts (voices {voices}) have notes; reading only "
                f"the first (V:{self.first_voice})",
                stacklevel=3,
            )
        if self.overlay_measure is not None:
            warnings.warn(
                f"{self.where}, measure {self.overlay_measure}: a voice overlay (&); reading only the first voice",
                stacklevel=3,
            )
        events = [item for item in self.items if isinstance(item, _Event)]
        if not events:
            raise NabiyaError(f"{self.where}: no notes to read")
        if all(event.pitch is None for event in events):
            raise NabiyaError(f"{self.where}: no notes to read (only rests)")
        first_bar = sum((event.duration for event in events if event.measure == 1), Fraction(0))
        if repeats == "played":
            events = _played(self.items, self.parts_order, self.where)
            if all(event.pitch is None for event in events):  # e.g. the only notes lie in a 2nd ending never reached
                raise NabiyaError(f"{self.where}: no notes to play as played: every note lies in an ending no pass "
                                  "reaches (read it with --repeats written)")  # fmt: skip
        notes = _merge(events, self.where)
        pickup = Fraction(0)
        bar = self.first_bar_length
        if bar is not None and self.measure > 1 and 0 < first_bar < bar * 4:
            pickup = first_bar
        return TuneReading(tuple(notes), self.first_meter, self.first_key, pickup, self.tempo_bpm)

    @property
    def first_bar_length(self) -> Fraction | None:
        if self.first_meter is None:
            return None
        beats, unit = self.first_meter.split("/")
        return Fraction(int(beats), int(unit))


_NOTE_START = frozenset("^_=ABCDEFGabcdefg")
_LETTER_FIFTHS = {"f": -1, "c": 0, "g": 1, "d": 2, "a": 3, "e": 4, "b": 5}


def _is_key_option(word: str) -> bool:
    """Whether a word of a K: field is an option rather than a key: a clef, ``octave=1``, ``exp``, ``^f``."""
    return bool(_CLEF.match(word) or _KEY_OPTION.match(word) or word.lower() == "exp" or _KEY_ACCIDENTAL.match(word))


def _mode(text: str) -> str | None:
    """The mode a K: field names (``m``, ``min``, ``Mix``, ``Dorian``: ABC reads 3 letters); None for none."""
    lowered = text.lower()
    if lowered == "m":
        return "minor"
    return _MODES.get(lowered[:3]) if len(lowered) >= 3 and lowered.isalpha() else None


def _sounding_key(key: _Key) -> str | None:
    """The key's name as it sounds: ``K:C transpose=2`` is D major."""
    if key.name is None or key.transpose % 12 == 0:
        return key.name
    mode = key.name.split()[1]
    tonic = _transposed_fifths(key.fifths, key.transpose) - MODE_FIFTHS[mode] + 1  # F is 0 on the circle
    name = "fcgdaeb"[tonic % 7] + ("#" * (tonic // 7) if tonic >= 0 else "b" * -(tonic // 7))
    return key_name(name, mode)


def _transposed_fifths(fifths: int, semitones: int) -> int:
    """The key signature ``semitones`` above a key of ``fifths``: a fifth is 7 semitones, so 7 fifths per semitone."""
    moved = (fifths + 7 * semitones) % 12
    return moved - 12 if moved > 6 else moved


def _short(number: Fraction) -> str:
    text = str(number)
    return text if len(text) <= 24 else f"{float(number):.3g}"


# --- repeats and merging ----------------------------------------------------------------------


def _played(items: list, parts_order: str | None, where: str) -> list[_Event]:
    """The events in the order they are played: parts in the header's ``P:`` order, repeats expanded."""
    order = _parts_sequence(parts_order) if parts_order else []
    labels = [item.label for item in items if isinstance(item, _PartMark)]
    if not order or not labels:
        return _expand_repeats(items, where)
    parts: dict = {}
    label = None
    for item in items:
        if isinstance(item, _PartMark):
            label = item.label
            continue
        parts.setdefault(label, []).append(item)
    played = _expand_repeats(parts.get(None, []), where)
    for label in order:
        played += _expand_repeats(parts.get(label, []), where)
        if len(played) > MAX_SONG_NOTES:
            raise NabiyaError(f"{where}: played with its repeats, the tune has more than nabiya's limit of {MAX_SONG_NOTES} notes")
    return played


def _parts_sequence(order: str) -> list[str]:
    """A header ``P:`` field's parts in playing order: ``A2B`` → A A B, ``(AB)2C`` → A B A B C."""
    stack: list[list[str]] = [[]]
    index = 0
    text = re.sub(r"[\s.]", "", order)
    while index < len(text):
        character = text[index]
        index += 1
        if character == "(":
            stack.append([])
            continue
        if character == ")" and len(stack) > 1:
            group = stack.pop()
        elif character.isalpha():
            group = [character]
        else:
            continue
        count = re.match(r"\d*", text[index:])[0]
        index += len(count)
        stack[-1] += group * min(int(count or 1), MAX_PART_PLAYS)
        if len(stack[-1]) > MAX_PART_PLAYS:
            del stack[-1][MAX_PART_PLAYS:]
    return [part for group in stack for part in group][:MAX_PART_PLAYS]


def _expand_repeats(items: list, where: str) -> list[_Event]:
    """Play ``|: … :|`` twice (or as often as its endings ask), each pass taking its own ending.

    A ``:|`` goes back to the last ``|:``, or the end of the last repeat, or a double bar
    (``||``, ``|]``) after the last repeat (and no ``|:``), or the start: as abc2midi does. An ending ``[n`` plays on the
    passes it names; one that is not this pass's is skipped up to the ``:|`` that closes it, the
    next ending, or a double bar. The last ending ends at a double bar, or, when a ``:|`` comes
    later with no ``|:`` before it, at its first bar line: that ``:|`` repeats what follows it.
    """
    played: list[_Event] = []
    start, passes, index, skipping = 0, 1, 0, False
    in_last_ending = repeated = False
    last_ending_bar = None  # where the first bar line of the last ending (being played) is
    while index < len(items):
        item = items[index]
        index += 1
        if isinstance(item, _Event):
            if not skipping:
                played.append(item)
                if len(played) > MAX_SONG_NOTES:
                    raise NabiyaError(
                        f"{where}: played with its repeats, the tune has more than nabiya's limit of {MAX_SONG_NOTES} notes"
                    )
            continue
        if isinstance(item, _Ending):
            skipping = passes not in item.numbers
            in_last_ending, last_ending_bar = not skipping and passes > 1, None
            continue
        if not isinstance(item, _Bar):
            continue
        if item.end_repeat:
            if skipping:
                skipping = False  # the end of an ending this pass does not take
                continue
            if in_last_ending and last_ending_bar is not None:  # "[2 A4 | B4 C4 :|": B4 C4 is a new repeat
                start, passes, in_last_ending = last_ending_bar, 1, False
            if passes < _passes_wanted(items, start, index):
                passes, index = passes + 1, start
                continue
            start, passes, in_last_ending, repeated = index, 1, False, True
        if item.start_repeat:
            start, passes, skipping, in_last_ending, repeated = index, 1, False, False, False
        elif item.section_end and (skipping or in_last_ending or repeated):
            repeated = repeated or in_last_ending
            start, passes, skipping, in_last_ending = index, 1, False, False
        elif in_last_ending and last_ending_bar is None:
            last_ending_bar = index
    return played


def _passes_wanted(items: list, start: int, end: int) -> int:
    """How many times the repeat from ``start`` to its ``:|`` (just before ``end``) is played: 2, or
    the highest number of its endings, which follow up to the next repeat sign or double bar."""
    wanted = 2
    for index in range(start, len(items)):
        item = items[index]
        if isinstance(item, _Ending):
            wanted = max(wanted, max(item.numbers))
        elif index >= end and isinstance(item, _Bar) and (item.end_repeat or item.start_repeat or item.section_end):
            break
    return wanted


def _merge(events: list[_Event], where: str) -> list[Note]:
    """Notes from events: a tie joins two notes of one pitch, and rests in a row are one silence."""
    notes: list[Note] = []
    tied, first_place = False, ""
    for event in events:
        join = notes and (
            (event.pitch is not None and tied and notes[-1].pitch == event.pitch)
            or (event.pitch is None and notes[-1].pitch is None)
        )
        if join:
            total = notes[-1].duration + event.duration
            if total > MAX_NOTE_QUARTERS:
                raise NabiyaError(
                    f"{where}, {first_place}: tied, the note lasts {_short(total)} quarter notes, longer than "
                    f"nabiya's limit of {MAX_NOTE_QUARTERS} (64 bars of 4/4)"
                )
            notes[-1] = Note(notes[-1].pitch, total, notes[-1].spelling)
        else:
            notes.append(Note(event.pitch, event.duration, event.spelling))
            first_place = event.place
        tied = event.tied
    return notes
