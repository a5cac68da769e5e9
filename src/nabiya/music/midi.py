"""MIDI files in and out, with music21's MIDI layer (imported inside the functions: it is slow to import).

music21 does the byte work: it encodes and decodes events, delta times and chunks, and
translates tempo and key events. nabiya lays out the events itself, in both directions:

- *writing* in time linear in the song's length: a tempo track (title, tempo, meter, key)
  and the melody's track of note-ons and note-offs. (music21's ``streamToMidiFile`` takes
  time quadratic in the number of notes: a 20,000-note song took about a minute.)
- *pairing* note-offs with note-ons first in, first out per pitch and channel, so a pitch
  struck again while it sounds is two notes, each with its own end.
- *the top line*: a melody is cut out of the first track with notes (drums on channel 10
  left out). A note that starts while the last one still sounds continues the line
  (legato: the earlier note is cut where the new one starts); where the track plays
  chords, or lower notes under a held higher note, its top line is read (the highest note
  at each onset) and a warning says so. music21's own import (``midiFileToStream``) makes
  chords, voices, measures and tied pieces that would have to be undone, and still has no
  notion of a top line, so nabiya reads the note events.
- *rests at both ends*: gaps between notes are rests, including before the first note and
  up to the end of the track, where the writer puts the song's trailing rest. The
  quarter-note delay music21's writer adds at the end of every track is not a rest.
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
from collections import deque
from fractions import Fraction

from nabiya.errors import NabiyaError
from nabiya.music.notation import DEFAULT_METER, bar_quarters, key_name, parse_key, parse_meter, pitch_name, spell
from nabiya.music.note import Note
from nabiya.music.song import Song

PERCUSSION_CHANNEL = 10  # music21 counts channels from 1, as musicians do
CLEAN_DENOMINATOR = 64  # timing on this grid (in quarters) or coarser is read exactly
PERFORMANCE_GRID = 24  # otherwise times are rounded to 1/24 quarter
TICKS_PER_QUARTER = 10080  # music21's resolution: 2^5 * 3^2 * 5 * 7, so tuplets are whole ticks
VELOCITY = 90  # how hard each note is struck, as music21 writes


def song_to_midi(song: Song) -> bytes:
    """The song as the bytes of a Standard MIDI File: a tempo track, then the melody's track.

    The tempo, meter and key are meta events of the first track, and the title its name.
    A pickup is a first bar of its own, shorter meter. A trailing rest is the time from the
    last note-off to the end of the melody's track (MIDI has no rests).

    Raises:
        NabiyaError: for a note whose duration is not a whole number of ticks (e.g. 1/11
            of a quarter note), naming the note.

    Example:
        >>> data = song_to_midi(Song.from_codes("r8 c4 e8 r4", title="Hi"))
        >>> song_from_midi(data).codes
        ['r8', 'c4', 'e8', 'r4']
    """
    from music21 import midi

    for number, played in enumerate(song.notes, start=1):
        if (played.duration * TICKS_PER_QUARTER).denominator != 1:
            raise NabiyaError(
                f"note {number} ({played.code}) lasts {played.duration} quarter notes, which MIDI at "
                f"{TICKS_PER_QUARTER} ticks per quarter cannot hold exactly"
            )
    tempo_track, melody_track = midi.MidiTrack(0), midi.MidiTrack(1)

    def add(track, delta: int, event) -> None:
        track.events.append(midi.DeltaTime(track, time=delta))
        track.events.append(event)

    def meta(track, kind, data: bytes):
        event = midi.MidiEvent(track, type=kind)
        event.data = data
        return event

    if song.title:  # the standard's place for a sequence's name is the first track's name
        add(tempo_track, 0, meta(tempo_track, midi.MetaEvents.SEQUENCE_TRACK_NAME, song.title.encode("utf-8")))
    # A tempo slower than MIDI can hold (3 bytes of microseconds a quarter) is written as the slowest.
    microseconds = min(round(60_000_000 / song.tempo_bpm), 0xFFFFFF)
    add(tempo_track, 0, meta(tempo_track, midi.MetaEvents.SET_TEMPO, microseconds.to_bytes(3, "big")))
    # A pickup needs bars to be a pickup of: 4/4 when the song has no meter, as notation writes it.
    time_signature = parse_meter(song.meter) or (DEFAULT_METER if song.pickup else None)
    if time_signature and time_signature[0] > 255:
        time_signature = None  # a time signature event holds at most 255 beats
    has_pickup = time_signature and 0 < song.pickup < bar_quarters(time_signature)
    first = _pickup_meter(song.pickup, time_signature[1]) if has_pickup else None
    pickup_ticks = int(song.pickup * TICKS_PER_QUARTER) if first else 0
    if time_signature:
        # A pickup is a first bar of its own, shorter meter; the song's meter starts after it.
        data = _time_signature_data(first or time_signature)
        add(tempo_track, 0, meta(tempo_track, midi.MetaEvents.TIME_SIGNATURE, data))
    parsed_key = parse_key(song.key)
    if parsed_key:  # MIDI knows major and minor only: other modes keep their signature
        _, mode, fifths = parsed_key
        minor = 1 if mode in ("minor", "aeolian") else 0
        add(tempo_track, 0, meta(tempo_track, midi.MetaEvents.KEY_SIGNATURE, bytes([fifths & 0xFF, minor])))
    if pickup_ticks:
        data = _time_signature_data(time_signature)
        add(tempo_track, pickup_ticks, meta(tempo_track, midi.MetaEvents.TIME_SIGNATURE, data))
    add(tempo_track, 0, meta(tempo_track, midi.MetaEvents.END_OF_TRACK, b""))

    waiting = 0  # ticks since the last event of the melody's track: rests
    for played in song.notes:
        ticks = int(played.duration * TICKS_PER_QUARTER)
        if played.pitch is None:
            waiting += ticks
            continue
        for kind, delta, velocity in ((midi.ChannelVoiceMessages.NOTE_ON, waiting, VELOCITY),
                                      (midi.ChannelVoiceMessages.NOTE_OFF, ticks, 0)):  # fmt: skip
            event = midi.MidiEvent(melody_track, type=kind, channel=1)
            event.pitch, event.velocity = played.pitch, velocity
            add(melody_track, delta, event)
        waiting = 0
    add(melody_track, waiting, meta(melody_track, midi.MetaEvents.END_OF_TRACK, b""))

    midi_file = midi.MidiFile()
    midi_file.format = 1
    midi_file.ticksPerQuarterNote = TICKS_PER_QUARTER
    midi_file.tracks = [tempo_track, melody_track]
    return midi_file.writestr()


def _time_signature_data(meter: tuple[int, int]) -> bytes:
    """A time signature meta event's data: beats, the unit as a power of two, 24 clocks a click, 8 32nds a quarter."""
    beats, unit = meter
    return bytes([beats, unit.bit_length() - 1, 24, 8])


def song_from_midi(data: bytes, *, source: str = "MIDI data") -> Song:
    """Read the melody of a Standard MIDI File.

    Args:
        data: the file's bytes.
        source: the file name, for messages.

    Returns:
        The melody of the first track with notes (its top line if it has chords), titled
        with the first track's name, at the tempo in force when the melody starts (120 bpm
        if none), with the meter and key where the file has them. Black keys are spelled
        from the key signature.

    Raises:
        NabiyaError: for bytes that are not a MIDI file, a file cut short or damaged, one
            without notes, or one beyond nabiya's limits (a note of thousands of bars),
            naming ``source`` (and the track, byte or time where known).

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
        notes = _paired_notes(events)
        if notes:
            melodic.append((number, notes, events[-1][0]))
    if not melodic:
        raise NabiyaError(f"{source}: no notes to read")
    number, track_notes, end_tick = melodic[0]
    if _ends_with_music21_delay(midi_file):
        end_tick -= division  # music21's end delay: silence its writer adds, not a rest of the song
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
    if not played:
        raise NabiyaError(f"{source}: no notes to read (every note is shorter than the timing grid)")
    top_line = _top_line(played)
    problems = []
    if len(melodic) > 1:
        problems.append(f"{len(melodic)} tracks have notes; reading only track {number}")
    if len(top_line) < len(played):
        problems.append(
            "it plays chords or notes under a held higher note; reading its top line (the highest note at each onset)"
        )
    if problems:
        warnings.warn(f"{source}: " + "; ".join(problems), stacklevel=2)
    meta, fifths = _meta(tracks, division, first_tick=min(start for start, _, _ in track_notes))
    place = f"{source}, track {number}"
    notes: list[Note] = []
    time = Fraction(0)
    for index, (start, end, pitch) in enumerate(top_line):
        if start > time:
            notes.append(_note(None, start - time, time, place))
        if index + 1 < len(top_line):
            end = min(end, top_line[index + 1][0])  # legato: the next note cuts this one
        notes.append(_note(pitch, end - start, start, place, spell(pitch, fifths)))
        time = end
    if quarters(end_tick) > time:
        notes.append(_note(None, quarters(end_tick) - time, time, place))
    try:
        return Song(tuple(notes), title=_title(tracks[0]), tempo_bpm=meta.pop("tempo_bpm", 120.0), **meta)
    except NabiyaError as error:
        raise NabiyaError(f"{source}: {error}") from None


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


def _pickup_meter(pickup: Fraction, denominator: int) -> tuple[int, int] | None:
    """The meter of a pickup bar: 1 quarter in 6/8 is 2/8, half a quarter in 3/4 is 1/8.

    None when no meter MIDI can hold fits (a pickup of 1/3 quarter note: no power of two).
    """
    while (pickup * denominator / 4).denominator != 1 and denominator < 64:
        denominator *= 2
    beats = pickup * denominator / 4
    return (int(beats), denominator) if beats.denominator == 1 and beats <= 255 else None


def _meta(tracks, division: int, *, first_tick: int) -> tuple[dict, int | None]:
    """The tempo (``tempo_bpm``), meter, pickup and key of the file, and the key's fifths.

    Where several events of a kind share a tick, the last one is the one that plays. The
    tempo is the one in force at ``first_tick`` (where the melody starts), or the first
    one set after it; the meter and the key are the first ones set.

    A pickup is written as a first meter that lasts exactly one bar of its own and is
    shorter than a bar of the meter that follows (a 1/4 bar before 3/4 bars).
    """
    from music21 import midi

    translate = midi.translate
    tempos: dict[int, float] = {}  # tick -> bpm; a later event at a tick replaces an earlier one
    meters: dict[int, str] = {}
    keys: dict[int, tuple[str, int]] = {}
    for events in tracks:
        for tick, event in events:
            try:
                if event.type == midi.MetaEvents.SET_TEMPO:
                    tempos[tick] = float(translate.midiEventsToTempo(event).number)
                elif event.type == midi.MetaEvents.TIME_SIGNATURE:
                    # Not translate.midiEventsToTimeSignature: its TimeSignature works out beat
                    # groupings nabiya never uses, which takes a second for a damaged 250/2.
                    meter = f"{event.data[0]}/{2 ** event.data[1]}"
                    if parse_meter(meter):
                        meters[tick] = meter
                elif event.type == midi.MetaEvents.KEY_SIGNATURE:
                    found = translate.midiEventsToKey(event)
                    name = key_name(found.tonic.name.lower().replace("-", "b"), found.mode)
                    if parse_key(name):
                        keys[tick] = (name, found.sharps)
            except Exception:  # a damaged meta event (no data, a tempo of 0) is as good as none
                continue
    meta: dict = {}
    fifths = None
    if tempos:
        before = [tick for tick in tempos if tick <= first_tick]
        meta["tempo_bpm"] = tempos[max(before) if before else min(tempos)]
    if keys:
        meta["key"], fifths = keys[min(keys)]
    ticks = sorted(meters)[:2]
    if ticks:
        meta["meter"] = meters[ticks[0]]
    if len(ticks) == 2 and ticks[0] == 0:
        first_bar = bar_quarters(parse_meter(meters[ticks[0]]))
        if Fraction(ticks[1], division) == first_bar < bar_quarters(parse_meter(meters[ticks[1]])):
            meta["meter"], meta["pickup"] = meters[ticks[1]], first_bar
    return meta, fifths


def _title(events) -> str:
    """The name of a track: in the first track, the name of the whole file."""
    from music21 import midi

    for _, event in events:
        if event.type == midi.MetaEvents.SEQUENCE_TRACK_NAME and isinstance(event.data, bytes):
            return event.data.decode("utf-8", errors="replace").strip()
    return ""


def _paired_notes(events) -> list[tuple[int, int, int]]:
    """The notes of a track as ``(start tick, end tick, pitch)``, in the order they start.

    A note-off ends the earliest-started sounding note of its pitch and channel (first in,
    first out), as notation programs read MIDI: a pitch struck again while it sounds
    (C 0-1.5, C 1-2) is two notes, each with its own end. (music21's reader gives both the
    first note-off; a synthesizer would silence both at it.) A note never released sounds to
    the end of its track. Drums (channel 10) are left out.
    """
    sounding: dict[tuple[int, int], deque] = {}
    notes: list[list[int]] = []
    for tick, event in events:
        if event.isNoteOn():  # velocity > 0; a note-on of velocity 0 is a note-off
            if event.channel != PERCUSSION_CHANNEL:
                note = [tick, -1, event.pitch]
                notes.append(note)
                sounding.setdefault((event.channel, event.pitch), deque()).append(note)
        elif event.isNoteOff():
            waiting = sounding.get((event.channel, event.pitch))
            if waiting:
                waiting.popleft()[1] = tick
    end_tick = events[-1][0] if events else 0
    return [(start, end_tick if end < 0 else end, pitch) for start, end, pitch in notes]


def _top_line(played: list[tuple[Fraction, Fraction, int]]) -> list[tuple[Fraction, Fraction, int]]:
    """The melody of notes sorted by onset, highest first: one note at a time, none lost to legato.

    At each onset the highest note is taken. A note that starts while the line's last note
    still sounds continues the line (the last note is cut where it starts: legato), unless
    the sounding note is higher and goes on for at least half of the new note: then the new
    note is a lower voice under a held melody note, and is left out.
    """
    line: list[tuple[Fraction, Fraction, int]] = []
    for start, end, pitch in played:
        if line and line[-1][0] == start:
            continue  # a lower note of the same onset
        if line and line[-1][2] > pitch and line[-1][1] - start >= (end - start) / 2:
            continue  # under a higher note that is held
        line.append((start, end, pitch))
    return line


def _note(pitch: int | None, duration: Fraction, at: Fraction, place: str, spelling: str | None = None) -> Note:
    """A note of the melody; beyond nabiya's limits, an error naming the track and the time."""
    try:
        return Note(pitch, duration, spelling)
    except NabiyaError as error:
        what = "rest" if pitch is None else f"note {pitch_name(pitch, spelling)}"
        raise NabiyaError(f"{place}: the {what} at quarter note {_short(at)}: {error}") from None


def _short(number: Fraction) -> str:
    return str(number) if len(str(number)) <= 24 else f"{float(number):.6g}"


def _ends_with_music21_delay(midi_file) -> bool:
    """Whether every track ends exactly one quarter note after its last event.

    music21's MIDI writer (``streamToMidiFile``) ends each track it writes, the tempo track
    too, with a delay of ``defaults.ticksAtStart`` ticks (one quarter note at its resolution)
    before the end-of-track event; that is padding, not a rest of the song. nabiya's writer
    ends its tempo track with no delay, so a rest at the end of its melody stays a rest.
    """
    tracks = midi_file.tracks
    if len(tracks) < 2:
        return False
    for track in tracks:
        events = track.events
        if len(events) < 2 or not events[-2].isDeltaTime() or events[-2].time != midi_file.ticksPerQuarterNote:
            return False
    return True
