"""Songs to and from music21 scores; MusicXML in and out; sheet music (SVG) engraved by verovio.

music21 and verovio are imported inside the functions that use them, so ``import nabiya``
stays fast.

A score becomes a song by reading its first part with notes, measure by measure (music21's
``flatten()`` can give odd meters around a mid-tune pickup): chord symbols and grace
notes are left out, tied notes of one pitch become one note, rests stay rests, and a real
chord is an error naming the measure, since a song is one line of melody. Rests in a
row are one silence, read as one rest (notation cuts rests at bar lines and beats).
"""

from __future__ import annotations

import re
import warnings
from fractions import Fraction
from typing import Mapping

from nabiya.errors import NabiyaError
from nabiya.music.limits import MAX_ENGRAVED_BARS, MAX_ENGRAVED_NOTES
from nabiya.music.notation import (
    DEFAULT_METER,
    alteration,
    bar_quarters,
    fits,
    key_name,
    parse_key,
    parse_meter,
    split_into_bars,
    written_octave,
)
from nabiya.music.note import DEFAULT_SPELLINGS, MIDDLE_C, Note
from nabiya.music.song import Song

DEFAULT_TEMPO_BPM = 120.0
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
MUSICXML_DIVISIONS = 10080  # music21's divisions of a quarter note: 2^5 * 3^2 * 5 * 7, as in MIDI


def song_from_score(score, *, source: str) -> Song:
    """The melody of a music21 score (or part, or stream of measures).

    Args:
        score: a ``music21.stream.Score`` (or any stream).
        source: where it came from (``'tune.abc, tune X:3'``), for messages.

    Returns:
        The song, titled from the score's metadata, with the first tempo mark (120 bpm
        when there is none), and its meter, key and pickup where known.
        When the score has several parts with notes, the first is read and a warning says so.

    Raises:
        NabiyaError: for a chord, an unpitched or zero-length note, a pitch outside MIDI's
            range, or no notes at all, naming ``source``, the measure and the note.

    Example:
        >>> from music21 import converter
        >>> score = converter.parseData("X:1\\nL:1/4\\nK:C\\nC D- | D E |", format="abc")
        >>> song_from_score(score, source="example").codes
        ['c4', 'd2', 'e4']
    """
    from music21 import stream

    parts = list(score.parts) if isinstance(score, stream.Score) else [score]
    melodic = [part for part in parts if any(_is_melody(element) for element in part.recurse().notes)]
    if not melodic:
        only_rests = any(part.recurse().getElementsByClass("Rest").first() is not None for part in parts)
        raise NabiyaError(f"{source}: no notes to read" + (" (only rests)" if only_rests else ""))
    if len(melodic) > 1:
        warnings.warn(
            f"{source}: {len(melodic)} parts (or voices) have notes; reading only the first", stacklevel=2
        )
    part = melodic[0]
    measures = list(part.getElementsByClass(stream.Measure))
    has_bars = bool(measures)  # music21 makes no measures of some short tunes: then count notes only
    measures = measures or [part]
    notes: list[Note] = []
    tie_open = False  # the previous note's tie goes on into this one
    first_measure_quarters = Fraction(0)
    warned_voices = False
    for measure_number, measure in enumerate(measures, start=1):
        voices = list(measure.voices)
        if len(voices) > 1 and not warned_voices:
            warnings.warn(
                f"{source}, measure {measure_number}: {len(voices)} voices; reading only the first", stacklevel=2
            )
            warned_voices = True
        elements = voices[0].notesAndRests if voices else measure.notesAndRests
        note_number = 0
        for element in elements:
            if not _is_melody(element):
                continue
            note_number += 1
            place = f"{source}, measure {measure_number}, note {note_number}" if has_bars else f"{source}, note {note_number}"
            note = _note_of(element, place)
            if measure_number == 1:
                first_measure_quarters += note.duration
            tied = tie_open and note.pitch is not None
            if notes and (tied or note.pitch is None) and notes[-1].pitch == note.pitch:
                previous = notes.pop()
                note = Note(previous.pitch, previous.duration + note.duration, previous.spelling)
            notes.append(note)
            tie = getattr(element, "tie", None)
            tie_open = tie is not None and tie.type in ("start", "continue")
    if all(note.pitch is None for note in notes):
        raise NabiyaError(f"{source}: no notes to read (only rests)")
    notation = _score_notation(score, part)
    meter = parse_meter(notation.get("meter"))
    if meter and len(measures) > 1 and 0 < first_measure_quarters < bar_quarters(meter):
        notation["pickup"] = first_measure_quarters
    try:
        return Song(tuple(notes), title=_title(score), tempo_bpm=_tempo(score), **notation)
    except NabiyaError as error:  # beyond nabiya's limits: a tempo of 10^10 bpm, 6 hours of music
        raise NabiyaError(f"{source}: {error}") from None


def song_to_score(song: Song):
    """A music21 score of the song, notated: one part, in measures, notes tied across bar lines.

    The song's title (as work and movement title), meter, key and pickup are written (4/4,
    C major and none when it has none), with a clef (see :func:`clef_for`). The score is
    notated here, bar by bar, in time linear in the song's length: durations no single note
    value can show are split into tied notes, and accidentals, beams and tuplet brackets
    are made. (music21's own ``makeNotation`` looks up each bar's meter and clef from the
    top of the part, which takes time quadratic in the number of bars.)

    Example:
        >>> score = song_to_score(Song.from_codes("c4 d4 e2", title="Up"))
        >>> [n.nameWithOctave for n in score.recurse().notes]
        ['C4', 'D4', 'E4']
    """
    from music21 import clef, key, metadata, meter, note, stream, tempo, tie

    time_signature = parse_meter(song.meter) or DEFAULT_METER
    parsed_key = parse_key(song.key)
    bar_length = bar_quarters(time_signature)
    pickup = song.pickup
    pickup = pickup if 0 < pickup < bar_length else Fraction(0)
    score = stream.Score()
    score.metadata = metadata.Metadata(title=song.title)
    score.metadata.movementName = song.title
    part = stream.Part(id="P1")  # a fixed id: the same song gives the same file
    music21_meter = meter.TimeSignature(f"{time_signature[0]}/{time_signature[1]}")
    bars = split_into_bars(song.notes, bar_length, pickup)
    measures = []
    previous_tied = False  # the piece before (maybe in the bar before) goes on into this one
    for index, bar in enumerate(bars):
        measure = stream.Measure(number=index if pickup else index + 1)
        if index == 0:
            measure.append(clef.BassClef() if clef_for(song) == "bass" else clef.TrebleClef())
            measure.append(music21_meter)
            if parsed_key:
                tonic, mode, _ = parsed_key
                measure.append(key.Key(tonic[0].upper() + tonic[1:].replace("b", "-"), mode))
            measure.append(tempo.MetronomeMark(number=song.tempo_bpm, referent=1.0))
        filled = Fraction(0)
        for piece in bar:
            if piece.note.pitch is None:
                element = note.Rest(quarterLength=piece.duration)
                units = element.splitAtDurations() if element.duration.type == "complex" else [element]
                for unit in units:  # said outright: music21 would search the part for each rest's meter
                    unit.fullMeasure = len(bar) == 1 and len(units) == 1 and piece.duration == bar_length
                    measure.append(unit)
                previous_tied = False
            else:
                element = note.Note(_music21_pitch_name(piece.note), quarterLength=piece.duration)
                # A duration no single note value shows (5/4: a quarter tied to a sixteenth) is tied notes.
                units = element.splitAtDurations() if element.duration.type == "complex" else [element]
                for number, unit in enumerate(units, start=1):
                    tied = piece.tied or number < len(units)
                    unit.tie = None
                    if tied or previous_tied:
                        unit.tie = tie.Tie("continue" if tied and previous_tied else ("start" if tied else "stop"))
                    previous_tied = tied
                    measure.append(unit)
            filled += piece.duration
        if index == 0 and pickup:
            measure.paddingLeft = float(bar_length - filled)
        elif index == len(bars) - 1 and filled < bar_length:
            measure.paddingRight = float(bar_length - filled)
        _notate_measure(measure, music21_meter)
        measures.append(measure)
    part.append(measures)
    part.makeAccidentals(inPlace=True)  # bar by bar, carrying the key and ties along
    part.streamStatus.beams = True
    part.streamStatus.tuplets = True
    score.append(part)
    return score


def clef_for(song: Song) -> str:
    """``'bass'`` when the melody's median pitch lies below middle C, else ``'treble'``.

    Middle C lies halfway between the middle lines of the two staves (B4 and D3), so the
    clef whose staff is nearer the melody's middle needs the fewest ledger lines.

    Example:
        >>> clef_for(Song.from_codes("c,4 e,4 g,4 c4")), clef_for(Song.from_codes("c4 e4 g4"))
        ('bass', 'treble')
    """
    pitches = sorted(note.pitch for note in song.notes if note.pitch is not None)
    return "bass" if pitches and pitches[(len(pitches) - 1) // 2] < MIDDLE_C else "treble"


def _notate_measure(measure, music21_meter) -> None:
    """Beams and tuplet brackets of one measure, as music21's ``makeNotation`` makes them."""
    from music21.stream import makeNotation

    elements = measure.notesAndRests.stream()
    if len(elements) > 1 and elements.highestTime <= music21_meter.barDuration.quarterLength:
        try:
            beams = music21_meter.getBeams(elements, measureStartOffset=measure.paddingLeft)
        except Exception:  # beams are a courtesy: a bar music21 cannot beam is drawn unbeamed
            beams = [None] * len(elements)
        for element, element_beams in zip(elements, beams):
            if element_beams is not None:
                element.beams = element_beams
    makeNotation.makeTupletBrackets(measure, inPlace=True)


def song_from_musicxml(data: bytes, *, source: str = "MusicXML") -> Song:
    """Read the melody of a MusicXML document (uncompressed: see ``formats`` for ``.mxl``).

    Raises:
        NabiyaError: for XML that is not MusicXML or music that is not a melody, naming ``source``.

    Example:
        >>> song = song_from_musicxml(song_to_musicxml(Song.from_codes("c4 r8 e8", title="Hi")))
        >>> song.codes, song.title
        (['c4', 'r8', 'e8'], 'Hi')
    """
    try:
        from music21 import converter

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parseData(data, format="musicxml")
    except Exception as error:  # music21 and the XML parser raise many kinds: report them as one
        raise NabiyaError(f"{source}: not readable MusicXML: {_reason(error)}") from None
    try:
        return song_from_score(score, source=source)
    except NabiyaError:
        raise
    except Exception as error:  # music21 on a damaged score: what it could not make sense of
        raise NabiyaError(f"{source}: not readable MusicXML: {_reason(error)}") from None


def song_to_musicxml(song: Song, *, colors: Mapping[int, str] | None = None) -> bytes:
    """The song as a MusicXML document (UTF-8 bytes), the same bytes every time for the same song.

    Args:
        song: the song.
        colors: optional colours of some notes, by 0-based index into ``song.notes``
            (``{3: "#d62728"}``): a prediction's wrong notes, say. Every written piece of a
            note (tied across a bar line) takes its colour; verovio engraves it.

    Raises:
        NabiyaError: when a duration cannot be notated (music21 cannot write it), or a
            colour is not ``#rrggbb``.

    Example:
        >>> song_to_musicxml(Song.from_codes("c4 d4"))[:5]
        b'<?xml'
        >>> b'color="#D62728"' in song_to_musicxml(Song.from_codes("c4 d4"), colors={1: "#d62728"})
        True
    """
    from music21.musicxml.m21ToXml import ScoreExporter

    for number, note in enumerate(song.notes, start=1):
        if (note.duration * MUSICXML_DIVISIONS).denominator != 1:  # music21 would round it
            raise NabiyaError(
                f"note {number} ({note.code}) lasts {note.duration} quarter notes, which MusicXML at "
                f"{MUSICXML_DIVISIONS} divisions per quarter cannot hold exactly"
            )
    score = song_to_score(song)
    if colors:
        _color_notes(score, song, colors)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exporter = ScoreExporter(score, makeNotation=False)  # notated already
            exporter.parse()
    except Exception as error:  # e.g. a duration music21 cannot notate
        raise NabiyaError(f"cannot write {song.title or 'the song'} as MusicXML: {_reason(error)}") from None
    _make_deterministic(exporter.xmlRoot)
    return exporter.asBytes()


def _make_deterministic(root) -> None:
    """Take out what music21 writes differently each time: random part ids and today's date.

    It also names "Music21" as the composer of a song without one; nabiya names none.
    """
    part_ids: dict[str, str] = {}  # a <score-part> and its <part> share an id
    instrument_ids: dict[str, str] = {}
    for element in root.iter():
        if element.get("id") is None:
            continue
        if element.tag in ("score-part", "part"):
            element.set("id", part_ids.setdefault(element.get("id"), f"P{len(part_ids) + 1}"))
        elif element.tag in ("score-instrument", "midi-instrument"):
            element.set("id", instrument_ids.setdefault(element.get("id"), f"I{len(instrument_ids) + 1}"))
    identification = root.find("identification")
    if identification is not None:
        for creator in identification.findall("creator"):
            if creator.text == "Music21":
                identification.remove(creator)
        for encoding in identification.findall("encoding"):
            for date in encoding.findall("encoding-date"):
                encoding.remove(date)


ENGRAVING_SCALE = 50  # percent of verovio's size: the sheet music of runs and the playground
_VEROVIO_PAGE_WIDTH = 2100  # verovio's default, in its units: the picture's width at ENGRAVING_SCALE


def song_to_svg(song: Song, *, colors: Mapping[int, str] | None = None, scale: int = ENGRAVING_SCALE) -> str:
    """Sheet music of the song as one SVG document, engraved by verovio from MusicXML.

    ``colors`` colours some notes, by index into ``song.notes`` (see :func:`song_to_musicxml`):
    the note heads, stems and flags take the colour. ``scale`` sizes the notes (percent of
    verovio's own size); the picture keeps its width, so larger notes take more lines. The
    default fits a children's song on two or three lines; 70 makes colours easier to see.

    The page shows the title, and a clef, meter and key. A song of more than
    ``MAX_ENGRAVED_BARS`` bars or ``MAX_ENGRAVED_NOTES`` notes (see :mod:`nabiya.music.limits`)
    is engraved up to there, and its title says so: "Tune (the first 500 of 7,512 bars)".

    Example:
        >>> song_to_svg(Song.from_codes("c4 d4 e2", title="Up")).startswith("<svg")
        True
    """
    from importlib import resources

    import verovio

    engraved = engraved_part(song)
    if colors and len(engraved.notes) < len(song.notes):
        colors = {index: color for index, color in colors.items() if index < len(engraved.notes)}
    song = engraved
    verovio.enableLog(verovio.LOG_OFF)
    # verovio keeps its default resource path (its fonts) per thread and sets it only in the
    # thread that imported it; in any other thread (a web server's) engraving would fail.
    toolkit = verovio.toolkit(False)
    toolkit.setResourcePath(str(resources.files("verovio") / "data"))
    # One tall page, so that the whole song is one picture; a fixed id seed, so that the
    # same song gives the same file.
    toolkit.setOptions(
        {"pageHeight": 60000, "adjustPageHeight": True, "scale": scale, "footer": "none", "xmlIdSeed": 1,
         "pageWidth": round(_VEROVIO_PAGE_WIDTH * ENGRAVING_SCALE / scale)}
    )
    if not toolkit.loadData(song_to_musicxml(song, colors=colors).decode("utf-8")):
        raise NabiyaError(f"verovio could not engrave {song.title or 'the song'}")
    pages = [toolkit.renderToSVG(page) for page in range(1, toolkit.getPageCount() + 1)]
    return pages[0] if len(pages) == 1 else _stack_pages(pages)


def _color_notes(score, song: Song, colors: Mapping[int, str]) -> None:
    """Colour the written pieces of the song's notes named in ``colors``, in place.

    The score is :func:`song_to_score`'s: its notes and rests, in order, are the song's
    notes cut at bar lines, so a running sum of durations tells which note each piece is of.
    """
    for index, color in colors.items():
        if not _HEX_COLOR.fullmatch(str(color)):
            raise NabiyaError(f"note {index + 1}: colour {color!r} is not a #rrggbb colour")
    index, left = 0, song.notes[0].duration if song.notes else Fraction(0)
    for element in score.recurse().notesAndRests:
        if index in colors:
            element.style.color = colors[index]
        left -= Fraction(element.quarterLength)
        if left <= 0 and index + 1 < len(song.notes):
            index += 1
            left = song.notes[index].duration


def engraved_part(song: Song, *, max_bars: int | None = None, max_notes: int | None = None) -> Song:
    """The song, or as many of its first bars as hold at most ``max_bars`` bars and ``max_notes`` notes.

    The limits are ``MAX_ENGRAVED_BARS`` and ``MAX_ENGRAVED_NOTES`` by default (a pickup counts
    as a bar); a song cut short is titled to say so.

    Example:
        >>> engraved_part(Song.from_codes(["c1"] * 5, title="Long"), max_bars=2).title
        'Long (the first 2 of 5 bars)'
    """
    max_bars = MAX_ENGRAVED_BARS if max_bars is None else max_bars
    max_notes = MAX_ENGRAVED_NOTES if max_notes is None else max_notes
    bar_length = bar_quarters(parse_meter(song.meter) or DEFAULT_METER)
    pickup = song.pickup if 0 < song.pickup < bar_length else Fraction(0)

    def bar_at(time: Fraction) -> int:  # the bar (0 = the first, a pickup or not) in which time lies
        return int(time // bar_length) if not pickup else (0 if time < pickup else 1 + int((time - pickup) // bar_length))

    def bar_start(bar: int) -> Fraction:
        return bar * bar_length if not pickup else (Fraction(0) if bar == 0 else pickup + (bar - 1) * bar_length)

    length = song.duration_quarters
    bars = bar_at(length) + (length != bar_start(bar_at(length)))  # a last bar part-filled counts
    kept_bars = max_bars
    if len(song.notes) > max_notes:
        onset = sum((note.duration for note in song.notes[:max_notes]), Fraction(0))
        kept_bars = min(kept_bars, max(1, bar_at(onset)))
    if kept_bars >= bars:
        return song
    end = bar_start(kept_bars)
    notes, time = [], Fraction(0)
    for note in song.notes:
        if time >= end:
            break
        notes.append(note if time + note.duration <= end else Note(note.pitch, end - time, note.spelling))
        time += note.duration
    if len(notes) > max_notes:  # notes so short that one bar holds more than the limit
        notes, cut = notes[:max_notes], f"the first {max_notes:,} of {len(song.notes):,} notes"
    else:
        cut = f"the first {kept_bars:,} of {bars:,} bars"
    return song.with_notes(notes, title=f"{song.title} ({cut})".strip())


# --- reading helpers --------------------------------------------------------------------------


def _is_melody(element) -> bool:
    """A note, rest or chord of the melody: not a chord symbol, not a grace note."""
    from music21 import harmony

    return not isinstance(element, harmony.Harmony) and not element.duration.isGrace


def _note_of(element, place: str) -> Note:
    try:
        return _checked_note_of(element, place)
    except NabiyaError as error:
        message = str(error)
        raise NabiyaError(message if message.startswith(place) else f"{place}: {message}") from None
    except (ArithmeticError, ValueError, TypeError) as error:  # NaN or infinite numbers in a damaged file
        raise NabiyaError(f"{place}: a note that cannot be read ({_reason(error)})") from None


def _checked_note_of(element, place: str) -> Note:
    from music21 import chord, note

    duration = Fraction(element.quarterLength)
    if duration <= 0:
        raise NabiyaError(f"{place}: a note of no length")
    if isinstance(element, note.Rest):
        return Note(None, duration)
    if isinstance(element, chord.Chord):
        pitches = {round(p.ps) for p in element.pitches}
        if len(pitches) > 1:
            names = " ".join(p.nameWithOctave.replace("-", "b") for p in element.pitches)
            raise NabiyaError(f"{place}: a chord ({names}) where a melody note was expected; nabiya reads one melody")
        music21_pitch = element.pitches[0]
    elif isinstance(element, note.Note):
        music21_pitch = element.pitch
    else:
        raise NabiyaError(f"{place}: an unpitched note ({type(element).__name__}) where a melody note was expected")
    pitch = round(music21_pitch.ps)
    if music21_pitch.ps != pitch:
        raise NabiyaError(f"{place}: a microtone ({music21_pitch.nameWithOctave}) that MIDI pitches cannot hold")
    if not 0 <= pitch <= 127:
        raise NabiyaError(f"{place}: the pitch {music21_pitch.nameWithOctave} is outside MIDI's range")
    accidental = music21_pitch.accidental
    alter = 0 if accidental is None else accidental.alter
    spelling = music21_pitch.step.lower() + ("#" * int(alter) if alter > 0 else "b" * int(-alter))
    return Note(pitch, duration, spelling if fits(pitch, spelling) else None)


def _score_notation(score, part) -> dict:
    """The first meter and key of a part (or its score), as Song keyword arguments."""
    from music21 import key, meter

    meta: dict = {}
    signatures = list(part.recurse().getElementsByClass(meter.TimeSignature))
    if signatures:
        meta["meter"] = signatures[0].ratioString
    keys = list(part.recurse().getElementsByClass(key.KeySignature)) or list(
        score.recurse().getElementsByClass(key.KeySignature)
    )
    if keys:
        found = keys[0] if isinstance(keys[0], key.Key) else keys[0].asKey("major")
        meta["key"] = key_name(found.tonic.name.lower().replace("-", "b"), found.mode)
    return meta


def _title(score) -> str:
    data = score.metadata
    if data is None:
        return ""
    return (data.title or data.movementName or "").strip()


def _tempo(score) -> float:
    from music21 import tempo

    for mark in score.recurse().getElementsByClass(tempo.MetronomeMark):
        bpm = mark.getQuarterBPM()
        if bpm and bpm > 0:
            return round(float(bpm), 6)
    return DEFAULT_TEMPO_BPM


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    if len(text) > 120:
        text = text[:117] + "…"
    return text or type(error).__name__


# --- writing helpers --------------------------------------------------------------------------


def _music21_pitch_name(note: Note) -> str:
    """``'F#4'``, ``'B-3'``: music21's name for the note, keeping its spelling where it fits."""
    spelling = note.spelling if fits(note.pitch, note.spelling) and abs(alteration(note.spelling)) <= 3 else None
    spelling = spelling or DEFAULT_SPELLINGS[note.pitch % 12]
    alter = alteration(spelling)
    accidentals = "#" * alter if alter > 0 else "-" * -alter
    return f"{spelling[0].upper()}{accidentals}{written_octave(note.pitch, spelling)}"


def _stack_pages(pages: list[str]) -> str:
    """Several SVG pages as one SVG, one below the other."""

    sizes = [tuple(float(v) for v in re.search(r'width="([\d.]+)px" height="([\d.]+)px"', page).groups()) for page in pages]
    width = max(w for w, _ in sizes)
    parts, y = [], 0.0
    for page, (_, height) in zip(pages, sizes):
        parts.append(re.sub(r"^<svg ", f'<svg y="{y}" ', page.split("?>", 1)[-1].lstrip(), count=1))
        y += height
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{width}px" height="{y}px">' + "".join(parts) + "</svg>"
    )
