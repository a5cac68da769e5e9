"""abc2midi (abcMIDI) as an independent oracle for nabiya's ABC reader.

Both read the same tune; abc2midi writes MIDI, which is read back here with music21's
low-level MIDI module, and the pitched notes are compared as ``(onset, duration, pitch)``
in MIDI ticks (480 a quarter note, abc2midi's resolution). What the two readers are
*meant* to differ on is taken out of abc2midi's input first, with plain text rewrites
that know nothing of nabiya's reader:

- decorations (``!trill!``, ``~``, ``T``, ``.`` …): abc2midi plays rolls and trills as
  several notes and shortens staccato notes; nabiya reads the written note;
- ``%%MIDI`` directives (``transpose``, ``ratio`` …) and ``R:`` (abc2midi plays the broken
  rhythm of an ``R:hornpipe`` 2:1): nabiya reads notation, not playback set-up;
- with ``repeats="written"``, repeat signs, ending numbers and a header's ``P:`` order of
  parts (abc2midi 4.84 always plays repeats): each section once, every ending in written order;

and abc2midi runs with ``-NGRA -NFER -NGUI`` (no grace notes, fermatas or chord-symbol
accompaniment). abc2midi starts each note one tick late and ends it on time; onsets and
durations agree within :data:`TOLERANCE_TICKS`.

Used by ``tests/test_abc_oracle.py`` (a fixed sample) and ``benchmarks/abc_agreement.py``
(thousands of tunes, by hand).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

TICKS_PER_QUARTER = 480
TOLERANCE_TICKS = 2
ABC2MIDI = shutil.which("abc2midi")
ABC2MIDI_OPTIONS = ("-NGRA", "-NFER", "-NGUI", "-quiet", "-silent")

_FIELD_LINE = re.compile(r"^[A-Za-z\+]:")
_PROTECTED = re.compile(r'"[^"]*"|\[[A-Za-z]:[^\]]*\]')  # quoted text and inline fields: left alone
_DECORATION = re.compile(r"![^!\s]*!|\+[^+\s]*\+|[~.H-Wh-w]")
# repeat signs and endings; "(3::2" is a tuplet, not a repeat
_REPEAT_BAR = re.compile(r":*\|+\]?:*(?:\[?[1-9][0-9,\-]*)?|(?<!\(\d)(?<!:):{2,}|\[[1-9][0-9,\-]*")


def music21_abc_books() -> Path:
    """The folder of ABC books that ships inside music21 (``…/music21/corpus``)."""
    import music21

    return Path(music21.__file__).parent / "corpus"


@dataclass(frozen=True)
class Comparison:
    """How nabiya's reading of one tune compares with abc2midi's.

    Attributes:
        verdict: ``"agree"``, ``"differ"``, ``"nabiya error"`` or ``"abc2midi error"``.
        detail: for a difference, the first note that differs (index, nabiya's, abc2midi's);
            for an error, its message.
        notes: how many pitched notes nabiya read.
    """

    verdict: str
    detail: str = ""
    notes: int = 0


def abc2midi_input(tune_text: str, *, repeats: str) -> str:
    """The tune as given to abc2midi: decorations and ``%%MIDI`` lines out, and with
    ``repeats="written"`` repeat signs and ending numbers turned into plain bar lines."""
    lines, in_body = [], False
    for line in tune_text.splitlines():
        if line.startswith(("%%MIDI", "R:")):  # abc2midi swings the broken rhythm of an R:hornpipe
            continue
        if _FIELD_LINE.match(line) or line.startswith("%"):
            if repeats == "written" and line.startswith("P:") and not in_body:
                continue  # abc2midi plays the parts in the order a header P:ABA gives
            in_body = in_body or line.startswith("K:")
            lines.append(line)
            continue
        if not in_body:
            lines.append(line)
            continue
        lines.append(_rewrite_music(line, repeats))
    return "\n".join(lines) + "\n"


def _rewrite_music(line: str, repeats: str) -> str:
    code, _, comment = line.partition("%")
    pieces, last = [], 0
    for match in _PROTECTED.finditer(code):
        pieces += [_rewrite_plain(code[last : match.start()], repeats), match[0]]
        last = match.end()
    pieces.append(_rewrite_plain(code[last:], repeats))
    return "".join(pieces)


def _rewrite_plain(text: str, repeats: str) -> str:
    text = _DECORATION.sub("", text)
    if repeats == "written":
        text = _REPEAT_BAR.sub(lambda match: "|" if "|" in match[0] or ":" in match[0] else " ", text)
    return text


def abc2midi_notes(tune_text: str, *, repeats: str = "written", timeout: float = 20.0) -> list[tuple[int, int, int]]:
    """abc2midi's notes of one tune as ``(onset, duration, pitch)`` in ticks (480 a quarter).

    The first MIDI track with notes is read (the first voice). Raises RuntimeError when
    abc2midi writes no MIDI file.
    """
    from music21 import midi

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "tune.abc"), Path(folder, "tune.mid")
        source.write_text(abc2midi_input(tune_text, repeats=repeats), encoding="latin-1", errors="replace")
        run = subprocess.run(
            [ABC2MIDI, str(source), "-o", str(target), *ABC2MIDI_OPTIONS],
            capture_output=True, text=True, timeout=timeout, errors="replace",
        )  # fmt: skip
        if not target.exists():
            raise RuntimeError(" ".join((run.stdout + run.stderr).split())[:200] or "no MIDI written")
        midi_file = midi.MidiFile()
        midi_file.open(str(target))
        midi_file.read()
        midi_file.close()
    resolution = midi_file.ticksPerQuarterNote
    for track in midi_file.tracks:
        notes, sounding, tick = [], {}, 0
        for event in track.events:
            if isinstance(event, midi.DeltaTime):
                tick += event.time
                continue
            kind = event.type
            if kind == midi.ChannelVoiceMessages.NOTE_ON and event.velocity > 0:
                sounding[(event.channel, event.pitch)] = tick
            elif kind in (midi.ChannelVoiceMessages.NOTE_ON, midi.ChannelVoiceMessages.NOTE_OFF):
                start = sounding.pop((event.channel, event.pitch), None)
                if start is not None:
                    notes.append((start, tick, event.pitch))
        if notes:
            scale = Fraction(TICKS_PER_QUARTER, resolution)
            # abc2midi starts a note one tick after its time and ends it on time.
            return sorted((round((start - 1) * scale), round((end - start + 1) * scale), pitch)
                          for start, end, pitch in notes)  # fmt: skip
    return []


def nabiya_notes(song) -> list[tuple[int, int, int]]:
    """A song's pitched notes as ``(onset, duration, pitch)`` in ticks (480 a quarter)."""
    notes, onset = [], Fraction(0)
    for note in song.notes:
        if note.pitch is not None:
            notes.append((round(onset * TICKS_PER_QUARTER), round(note.duration * TICKS_PER_QUARTER), note.pitch))
        onset += note.duration
    return notes


def compare_notes(ours: list, theirs: list) -> str | None:
    """None when the notes agree (within the tolerance), else where they first differ."""
    for index, (mine, other) in enumerate(zip(ours, theirs)):
        if mine[2] != other[2] or abs(mine[0] - other[0]) > TOLERANCE_TICKS or abs(mine[1] - other[1]) > TOLERANCE_TICKS:
            return f"note {index + 1}: nabiya {_show(mine)}, abc2midi {_show(other)}"
    if len(ours) != len(theirs):
        return f"nabiya has {len(ours)} notes, abc2midi {len(theirs)}"
    return None


def _show(note: tuple[int, int, int]) -> str:
    onset, duration, pitch = note
    return f"{pitch}@{Fraction(onset, TICKS_PER_QUARTER)}+{Fraction(duration, TICKS_PER_QUARTER)}"


def compare_tune(tune_text: str, read, *, repeats: str = "written") -> Comparison:
    """Read one tune's text with ``read(text) -> Song`` and with abc2midi, and compare."""
    import warnings

    from nabiya.errors import NabiyaError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            song = read(tune_text)
    except NabiyaError as error:
        return Comparison("nabiya error", str(error))
    ours = nabiya_notes(song)
    try:
        theirs = abc2midi_notes(tune_text, repeats=repeats)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return Comparison("abc2midi error", str(error), len(ours))
    if not theirs:
        return Comparison("abc2midi error", "no notes", len(ours))
    difference = compare_notes(ours, theirs)
    return Comparison("agree" if difference is None else "differ", difference or "", len(ours))


def tune_texts(path: Path) -> list[tuple[str, str]]:
    """``(label, text)`` of every tune of an ABC file, each with the file header's fields."""
    from nabiya.music.abc import split_tunes
    from nabiya.music.formats import _decode

    text = _decode(path.read_bytes())
    return [(f"{path.name}#{tune.reference}", "\n".join(tune.lines) + "\n") for tune in split_tunes(text)]
