"""MIDI files in and out, through music21 (imported inside the functions: it is slow to import).

music21 does the file work: it writes the song (as a music21 part) as a Standard MIDI File,
reads the bytes into tracks of events, pairs note-ons with their note-offs and translates
tempo and key events. nabiya adds what a melody needs and music21 does not give:

- *the top line*: a melody is cut out of the first track with notes (drums on channel 10
  left out); where that track plays chords or overlapping notes, its highest note starting
  at each onset, cut short where the next one starts (a warning says so). music21's own
  import (``midiFileToStream``) makes chords, voices, measures and tied pieces that would
  have to be undone, and still has no notion of a top line, so nabiya reads the note events.
- *rests at both ends*: gaps between notes are rests, including before the first note and
  up to the end of the track, where the writer puts the song's trailing rest.
- *the title* as the first track's name, where the MIDI standard puts a sequence's name.
- *strictness*: music21 skips events it cannot read and guesses a status for a stray data
  byte; nabiya says the file is damaged, and where.

Times are exact fractions of a quarter note when the file's timing is clean (every note
on a grid of at most 1/64 quarter, as notation programs and nabiya write); otherwise (a
recorded performance) they are rounded to the nearest 1/24 quarter, which keeps
sixteenths, thirty-seconds and triplets. nabiya writes at music21's 10080 ticks per
quarter note, so that triplets, quintuplets, septuplets and 128th notes are whole ticks.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

from nabiya.errors import NabiyaError
from nabiya.music.notation import bar_quarters, key_name, parse_key, parse_meter, spell
from nabiya.music.note import Note
from nabiya.music.song import Song

PERCUSSION_CHANNEL = 10  # music21 counts channels from 1, as musicians do
CLEAN_DENOMINATOR = 64  # timing on this grid (in quarters) or coarser is read exactly
PERFORMANCE_GRID = 24  # otherwise times are rounded to 1/24 quarter
MIN_TEMPO_BPM = 60_000_000 / 0xFFFFFF  # MIDI's slowest tempo: 3 bytes of microseconds a quarter


def song_to_midi(song: Song) -> bytes:
    """The song as the bytes of a Standard MIDI File: a tempo track, then the melody's track.

    The tempo, meter and key are meta events of the first track, and the title its name.

    Raises:
        NabiyaError: for a note whose duration is not a whole number of ticks (e.g. 1/11
            of a quarter note), naming the note.

    Example:
        >>> data = song_to_midi(Song.from_codes("r8 c4 e8 r4", title="Hi"))
        >>> song_from_midi(data).codes
        ['r8', 'c4', 'e8', 'r4']
    """
    from music21 import defaults, key, meter, midi, note, pitch, stream, tempo

    ticks_per_quarter = defaults.ticksPerQuarter
    for number, played in enumerate(song.notes, start=1):
        if (played.duration * ticks_per_quarter).denominator != 1:  # music21 would round it
            raise NabiyaError(
                f"note {number} ({played.code}) lasts {played.duration} quarter notes, which MIDI at "
                f"{ticks_per_quarter} ticks per quarter cannot hold exactly"
            )
    # A flat part rather than song_to_score's measures: MIDI has no bars, ties or spellings.
    part = stream.Part()
    # music21 would wrap a tempo slower than MIDI can hold around to a fast one.
    part.append(tempo.MetronomeMark(number=max(song.tempo_bpm, MIN_TEMPO_BPM), referent=1.0))
    time_signature = parse_meter(song.meter)
    if time_signature:
        # A pickup is a first bar of its own, shorter meter; the song's meter starts after it.
        first = _pickup_meter(song.pickup, time_signature[1]) if song.pickup else time_signature
        part.append(meter.TimeSignature(f"{first[0]}/{first[1]}"))
    parsed_key = parse_key(song.key)
    if parsed_key:  # MIDI knows major and minor only: other modes keep their signature
        _, mode, fifths = parsed_key
        part.append(key.KeySignature(fifths).asKey("minor" if mode in ("minor", "aeolian") else "major"))
    part.append(
        [
            note.Rest(quarterLength=played.duration)
            if played.pitch is None
            else note.Note(pitch.Pitch(midi=played.pitch), quarterLength=played.duration)
            for played in song.notes
        ]
    )
    if time_signature and song.pickup:
        part.insert(float(song.pickup), meter.TimeSignature(f"{time_signature[0]}/{time_signature[1]}"))
    midi_file = midi.translate.streamToMidiFile(part, addEndDelay=False)
    tempo_track, melody_track = midi_file.tracks[0], midi_file.tracks[-1]
    if song.title:  # music21 writes no title; the standard's place for one is the first track's name
        name = midi.MidiEvent(tempo_track, type=midi.MetaEvents.SEQUENCE_TRACK_NAME)
        name.data = song.title.encode("utf-8")
        tempo_track.events[:0] = [midi.DeltaTime(tempo_track), name]
    # MIDI has no rests: a trailing rest is the time from the last note-off to the end of
    # the track, which is the delta time before the END_OF_TRACK event music21 ends with.
    trailing = Fraction(0)
    for played in reversed(song.notes):
        if played.pitch is not None:
            break
        trailing += played.duration
    melody_track.events[-2].time = int(trailing * ticks_per_quarter)
    return midi_file.writestr()


def song_from_midi(data: bytes, *, source: str = "MIDI data") -> Song:
    """Read the melody of a Standard MIDI File.

    Args:
        data: the file's bytes.
        source: the file name, for messages.

    Returns:
        The melody of the first track with notes (its top line if it has chords), titled
        with the first track's name, at the first tempo (120 bpm if none), with the
        meter and key where the file has them. Black keys are spelled from the key
        signature.

    Raises:
        NabiyaError: for bytes that are not a MIDI file, a file cut short or damaged, or
            one without notes, naming ``source`` (and the track and byte where known).

    Example:
        >>> song_from_midi(song_to_midi(Song.from_codes("g8 e8 e4"))).codes
        ['g8', 'e8', 'e4']
    """
    from music21 import midi

    midi_file = _read_midi_file(data, source)
    division = midi_file.ticksPerQuarterNote
    tracks = [midi.translate.getTimeForEvents(track) for track in midi_file.tracks]  # (tick, event)
    melodic = []  # (track number, [(start tick, end tick, pitch)], end tick)
    for number, events in enumerate(tracks, start=1):
        notes = [
            (note.onTime, note.offTime, note.event.pitch)
            for note in midi.translate.getNotesFromEvents(events)
            if note.event.channel != PERCUSSION_CHANNEL
        ]
        if notes:
            melodic.append((number, notes, events[-1][0]))
    if not melodic:
        raise NabiyaError(f"{source}: no notes to read")
    number, track_notes, end_tick = melodic[0]
    clean = all(
        Fraction(tick, division).denominator <= CLEAN_DENOMINATOR
        for start, end, _ in track_notes
        for tick in (start, end)
    )

    def quarters(tick: int) -> Fraction:
        exact = Fraction(tick, division)
        return exact if clean else Fraction(round(exact * PERFORMANCE_GRID), PERFORMANCE_GRID)

    played = sorted(((quarters(s), quarters(e), p) for s, e, p in track_notes), key=lambda n: (n[0], -n[2]))
    played = [note for note in played if note[1] > note[0]]  # notes shorter than the grid vanish
    overlapping, latest_end = False, Fraction(0)
    for start, end, _ in played:
        overlapping = overlapping or start < latest_end
        latest_end = max(latest_end, end)
    problems = []
    if len(melodic) > 1:
        problems.append(f"{len(melodic)} tracks have notes; reading only track {number}")
    if overlapping:
        problems.append("it plays chords or overlapping notes; reading its top line (the highest note at each onset)")
    if problems:
        warnings.warn(f"{source}: " + "; ".join(problems), stacklevel=2)
    meta, fifths = _meta(tracks, division)
    top_line = _top_line(played)
    notes: list[Note] = []
    time = Fraction(0)
    for index, (start, end, pitch) in enumerate(top_line):
        if start > time:
            notes.append(Note(None, start - time))
        if index + 1 < len(top_line):
            end = min(end, top_line[index + 1][0])
        notes.append(Note(pitch, end - start, spell(pitch, fifths)))
        time = end
    if quarters(end_tick) > time:
        notes.append(Note(None, quarters(end_tick) - time))
    return Song(tuple(notes), title=_title(tracks[0]), tempo_bpm=meta.pop("tempo_bpm", 120.0), **meta)


# --- reading helpers --------------------------------------------------------------------------


def _read_midi_file(data: bytes, source: str):
    """The file as a ``music21.midi.MidiFile``, checked more strictly than music21 does."""
    from music21 import midi

    if not data:
        raise NabiyaError(f"{source}: the file is empty")
    if not data.startswith(b"MThd"):
        raise NabiyaError(f"{source}: not a MIDI file (it does not begin with 'MThd')")
    midi_file = midi.MidiFile()
    try:
        midi_file.readstr(data)
    except IndexError:  # music21 reads past the end of bytes that run out
        raise NabiyaError(f"{source}: the file is cut short") from None
    except Exception as error:  # music21 raises MidiException, ValueError, ... on damaged bytes
        reason = " ".join(str(error).split()) or type(error).__name__
        if "ticks per frame" in reason:
            reason = "timing in SMPTE frames is not supported (only ticks per quarter note)"
        elif "file format" in reason:
            reason = f"a MIDI file of format {midi_file.format} (only formats 0 and 1 hold one song)"
        elif "MTrk" in reason:
            reason = "a track is cut short or missing (the header promises more tracks than the file holds)"
        elif "badly formatted" in reason:
            reason = "the MIDI header is damaged (its length is not 6)"
        raise NabiyaError(f"{source}: not a readable MIDI file: {reason}") from None
    if midi_file.ticksPerSecond:
        raise NabiyaError(f"{source}: timing in SMPTE frames is not supported (only ticks per quarter note)")
    if not midi_file.ticksPerQuarterNote:
        raise NabiyaError(f"{source}: the MIDI header gives 0 ticks per quarter note")
    if not midi_file.tracks:
        raise NabiyaError(f"{source}: the MIDI file has no tracks")
    start = 14  # the header chunk
    for number, track in enumerate(midi_file.tracks, start=1):
        _check_track(track, number, start + 8, source)
        start += 8 + len(track.data)
    return midi_file


def _check_track(track, number: int, start: int, source: str) -> None:
    """Read a track's bytes once more with music21's event reader, but strictly.

    music21's ``MidiTrack`` skips events it cannot read, takes a stray data byte for a
    note-on and reads a track cut short as far as it goes, silently; a melody read from
    such a file would be wrong without a word, so nabiya raises instead, naming the byte
    (``start`` is where the track's events begin in the file).
    """
    from music21 import midi

    rest, status = track.data, None
    while rest:
        place = f"{source}, track {number}, byte {start + len(track.data) - len(rest)}"
        try:
            _, rest = midi.DeltaTime(track).readUntilLowByte(rest)
        except (IndexError, midi.MidiException):
            raise NabiyaError(f"{place}: a delta time runs past the end of the track") from None
        if len(rest) < 2:
            break
        first = rest[0]
        if first < 0x80 and status is None:
            raise NabiyaError(f"{place}: a data byte (0x{first:02X}) where an event was expected")
        if 0xF0 < first < 0xFF and first != 0xF7:
            raise NabiyaError(f"{place}: 0x{first:02X} is not an event a MIDI file may hold")
        event = midi.MidiEvent(track)
        event.lastStatusByte = status  # running status, as music21 keeps it
        try:
            rest = event.read(rest)
        except Exception as error:  # MidiException, IndexError, ValueError
            raise NabiyaError(f"{place}: {' '.join(str(error).split()) or type(error).__name__}") from None
        if event.type == midi.MetaEvents.END_OF_TRACK:
            return
        if (event.isNoteOn() or event.isNoteOff()) and max(event.pitch, event.velocity) > 127:
            raise NabiyaError(f"{place}: a data byte above 127 in a note event")
        status = event.lastStatusByte
    raise NabiyaError(f"{source}, track {number}: the track is cut short (it has no end-of-track event)")


def _pickup_meter(pickup: Fraction, denominator: int) -> tuple[int, int]:
    """The meter of a pickup bar: 1 quarter in 6/8 is 2/8, half a quarter in 3/4 is 1/8."""
    while (pickup * denominator / 4).denominator != 1:
        denominator *= 2
    return int(pickup * denominator / 4), denominator


def _meta(tracks, division: int) -> tuple[dict, int | None]:
    """The first tempo (``tempo_bpm``), meter, pickup and key of the file, and the key's fifths.

    A pickup is written as a first meter that lasts exactly one bar of its own and is
    shorter than a bar of the meter that follows (a 1/4 bar before 3/4 bars).
    """
    from music21 import midi

    translate = midi.translate
    meta: dict = {}
    fifths = None
    meters: list[tuple[int, str]] = []  # (tick, meter) of the first track with meters
    for events in tracks:
        for tick, event in events:
            try:
                if event.type == midi.MetaEvents.SET_TEMPO and "tempo_bpm" not in meta:
                    meta["tempo_bpm"] = float(translate.midiEventsToTempo(event).number)
                elif event.type == midi.MetaEvents.TIME_SIGNATURE and len(meters) < 2:
                    # Not translate.midiEventsToTimeSignature: its TimeSignature works out beat
                    # groupings nabiya never uses, which takes a second for a damaged 250/2.
                    meter = f"{event.data[0]}/{2 ** event.data[1]}"
                    if parse_meter(meter) and (not meters or tick > meters[-1][0]):
                        meters.append((tick, meter))
                elif event.type == midi.MetaEvents.KEY_SIGNATURE and "key" not in meta:
                    found = translate.midiEventsToKey(event)
                    name = key_name(found.tonic.name.lower().replace("-", "b"), found.mode)
                    if parse_key(name):
                        meta["key"], fifths = name, found.sharps
            except Exception:  # a damaged meta event (no data, a tempo of 0) is as good as none
                continue
    if meters:
        meta["meter"] = meters[0][1]
    if len(meters) == 2 and meters[0][0] == 0:
        first_bar = bar_quarters(parse_meter(meters[0][1]))
        if Fraction(meters[1][0], division) == first_bar < bar_quarters(parse_meter(meters[1][1])):
            meta["meter"], meta["pickup"] = meters[1][1], first_bar
    return meta, fifths


def _title(events) -> str:
    """The name of a track: in the first track, the name of the whole file."""
    from music21 import midi

    for _, event in events:
        if event.type == midi.MetaEvents.SEQUENCE_TRACK_NAME and isinstance(event.data, bytes):
            return event.data.decode("utf-8", errors="replace").strip()
    return ""


def _top_line(played: list[tuple[Fraction, Fraction, int]]) -> list[tuple[Fraction, Fraction, int]]:
    """The highest note starting at each onset, unless a higher note is still sounding."""
    line: list[tuple[Fraction, Fraction, int]] = []
    for start, end, pitch in played:  # sorted by start, highest first
        if line and line[-1][0] == start:
            continue  # a lower note of the same onset
        if line and line[-1][1] > start and line[-1][2] > pitch:
            continue  # under a higher note that still sounds
        line.append((start, end, pitch))
    return line
