"""MIDI files in and out: a small Standard MIDI File reader and writer, with no dependencies.

nabiya reads MIDI at the level of events rather than through music21, because a melody
must be cut out of what a MIDI file holds: it takes the first track with notes (drums on
channel 10 left out) and, where that track plays chords or overlapping notes, its *top
line*: the highest note starting at each onset, cut short where the next one starts
(a warning says so). Gaps between notes become rests, including before the first note and
up to the track's end, so that a song's leading and trailing rests survive a round trip.

Times are exact fractions of a quarter note when the file's timing is clean (every event
on a grid of at most 1/64 quarter, as notation programs and nabiya write); otherwise (a
recorded performance) they are rounded to the nearest 1/24 quarter, which keeps
sixteenths, thirty-seconds and triplets.

The writer makes a single-track file (format 0) at 6720 ticks per quarter note, so that
sixty-fourths, triplets, quintuplets and septuplets are whole numbers of ticks; the title
is the track name, and the tempo, meter and key are meta events.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass, field
from fractions import Fraction

from nabiya.errors import NabiyaError
from nabiya.music.notation import key_name, parse_key, parse_meter, spell
from nabiya.music.note import Note
from nabiya.music.song import Song

TICKS_PER_QUARTER = 6720  # 2**6 * 3 * 5 * 7
VELOCITY = 80
PERCUSSION_CHANNEL = 9  # "channel 10" to musicians
CLEAN_DENOMINATOR = 64  # timing on this grid (in quarters) or coarser is read exactly
PERFORMANCE_GRID = 24  # otherwise times are rounded to 1/24 quarter

_MAJOR_TONICS = ("cb", "gb", "db", "ab", "eb", "bb", "f", "c", "g", "d", "a", "e", "b", "f#", "c#")
_MINOR_TONICS = ("ab", "eb", "bb", "f", "c", "g", "d", "a", "e", "b", "f#", "c#", "g#", "d#", "a#")


def song_to_midi(song: Song) -> bytes:
    """The song as the bytes of a Standard MIDI File (format 0, one track, channel 1).

    Raises:
        NabiyaError: for a note whose duration is not a whole number of ticks (e.g. 1/11
            of a quarter note), naming the note.

    Example:
        >>> data = song_to_midi(Song.from_codes("r8 c4 e8 r4", title="Hi"))
        >>> song_from_midi(data).codes
        ['r8', 'c4', 'e8', 'r4']
    """
    events = bytearray()

    def add(delta: int, payload: bytes) -> None:
        events.extend(_variable_length(delta) + payload)

    if song.title:
        add(0, _meta(0x03, song.title.encode("utf-8")))
    microseconds = min(max(round(60_000_000 / song.tempo_bpm), 1), 0xFFFFFF)
    add(0, _meta(0x51, microseconds.to_bytes(3, "big")))
    meter = parse_meter(song.meta.get("meter"))
    if meter:
        add(0, _meta(0x58, bytes([meter[0], meter[1].bit_length() - 1, 24, 8])))
    key = parse_key(song.meta.get("key"))
    if key:
        add(0, _meta(0x59, struct.pack(">bB", key[2], 1 if key[1] in ("minor", "aeolian") else 0)))
    delta = 0
    for number, note in enumerate(song.notes, start=1):
        ticks = note.duration * TICKS_PER_QUARTER
        if ticks.denominator != 1:
            raise NabiyaError(
                f"note {number} ({note.code}) lasts {note.duration} quarter notes, which MIDI at "
                f"{TICKS_PER_QUARTER} ticks per quarter cannot hold exactly"
            )
        if note.pitch is None:
            delta += int(ticks)
            continue
        add(delta, bytes([0x90, note.pitch, VELOCITY]))
        add(int(ticks), bytes([0x80, note.pitch, 0]))
        delta = 0
    add(delta, _meta(0x2F, b""))
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(events)) + bytes(events)


def song_from_midi(data: bytes, *, source: str = "MIDI data") -> Song:
    """Read the melody of a Standard MIDI File.

    Args:
        data: the file's bytes.
        source: the file name, for messages.

    Returns:
        The melody of the first track with notes (its top line if it has chords), titled
        with the first track's name, at the first tempo (120 bpm if none); ``meta`` holds
        ``meter`` and ``key`` where the file has them. Black keys are spelled from the key
        signature.

    Raises:
        NabiyaError: for bytes that are not a MIDI file, a file cut short, or one without
            notes, naming ``source``, the track and the byte.

    Example:
        >>> song_from_midi(song_to_midi(Song.from_codes("g8 e8 e4"))).codes
        ['g8', 'e8', 'e4']
    """
    division, tracks = _parse(data, source)
    melodic = [track for track in tracks if track.notes]
    if not melodic:
        raise NabiyaError(f"{source}: no notes to read")
    track = melodic[0]
    clean = all(
        Fraction(tick, division).denominator <= CLEAN_DENOMINATOR
        for start, end, _ in track.notes
        for tick in (start, end)
    )

    def quarters(tick: int) -> Fraction:
        exact = Fraction(tick, division)
        return exact if clean else Fraction(round(exact * PERFORMANCE_GRID), PERFORMANCE_GRID)

    played = sorted(((quarters(s), quarters(e), p) for s, e, p in track.notes), key=lambda n: (n[0], -n[2]))
    played = [note for note in played if note[1] > note[0]]  # notes shorter than the grid vanish
    overlapping, latest_end = False, Fraction(0)
    for start, end, _ in played:
        overlapping = overlapping or start < latest_end
        latest_end = max(latest_end, end)
    problems = []
    if len(melodic) > 1:
        problems.append(f"{len(melodic)} tracks have notes; reading only track {track.number}")
    if overlapping:
        problems.append("it plays chords or overlapping notes; reading its top line (the highest note at each onset)")
    if problems:
        warnings.warn(f"{source}: " + "; ".join(problems), stacklevel=2)
    top_line = _top_line(played)
    fifths, minor = next((track.key for track in tracks if track.key), (None, False))
    notes: list[Note] = []
    time = Fraction(0)
    for index, (start, end, pitch) in enumerate(top_line):
        if start > time:
            notes.append(Note(None, start - time))
        if index + 1 < len(top_line):
            end = min(end, top_line[index + 1][0])
        notes.append(Note(pitch, end - start, spell(pitch, fifths)))
        time = end
    song_end = quarters(track.end_tick)
    if song_end > time:
        notes.append(Note(None, song_end - time))
    meta: dict = {}
    meter = next((track.meter for track in tracks if track.meter), None)
    if meter:
        meta["meter"] = meter
    if fifths is not None:
        meta["key"] = key_name((_MINOR_TONICS if minor else _MAJOR_TONICS)[fifths + 7], "minor" if minor else "major")
    tempo = next((track.tempo_bpm for track in tracks if track.tempo_bpm), 120.0)
    return Song(tuple(notes), title=tracks[0].name or "", tempo_bpm=tempo, meta=meta)


# --- reading ----------------------------------------------------------------------------------


@dataclass
class _Track:
    number: int  # 1-based, as people count tracks
    notes: list[tuple[int, int, int]] = field(default_factory=list)  # (start tick, end tick, pitch)
    end_tick: int = 0
    name: str | None = None
    tempo_bpm: float | None = None
    meter: str | None = None
    key: tuple[int, bool] | None = None  # (fifths, minor)


def _parse(data: bytes, source: str) -> tuple[int, list[_Track]]:
    """The file's ticks per quarter note and its tracks."""
    if not data:
        raise NabiyaError(f"{source}: the file is empty")
    if data[:4] != b"MThd":
        raise NabiyaError(f"{source}: not a MIDI file (it does not begin with 'MThd')")
    position = 0
    chunks = []
    while position + 8 <= len(data):
        kind, length = data[position : position + 4], struct.unpack(">I", data[position + 4 : position + 8])[0]
        body = data[position + 8 : position + 8 + length]
        if len(body) < length:
            raise NabiyaError(
                f"{source}, byte {position}: a {kind.decode('latin-1')!r} chunk of {length} bytes is cut short "
                f"after {len(body)}"
            )
        chunks.append((kind, body, position + 8))
        position += 8 + length
    header = chunks[0][1]
    if len(header) < 6:
        raise NabiyaError(f"{source}: the MIDI header is {len(header)} bytes long, not 6")
    _, _, division = struct.unpack(">HHH", header[:6])
    if division & 0x8000:
        raise NabiyaError(f"{source}: timing in SMPTE frames is not supported (only ticks per quarter note)")
    if division == 0:
        raise NabiyaError(f"{source}: the MIDI header gives 0 ticks per quarter note")
    bodies = [(body, offset) for kind, body, offset in chunks[1:] if kind == b"MTrk"]
    if not bodies:
        raise NabiyaError(f"{source}: the MIDI file has no tracks")
    return division, [_read_track(body, offset, number, source) for number, (body, offset) in enumerate(bodies, 1)]


def _read_track(body: bytes, offset: int, number: int, source: str) -> _Track:
    track = _Track(number)
    position, tick, status = 0, 0, None
    sounding: dict[tuple[int, int], list[int]] = {}  # (channel, pitch) -> start ticks, oldest first

    def fail(problem: str) -> NabiyaError:
        return NabiyaError(f"{source}, track {number}, byte {offset + position}: {problem}")

    def take(count: int) -> bytes:
        nonlocal position
        if position + count > len(body):
            raise fail("the track is cut short")
        chunk = body[position : position + count]
        position += count
        return chunk

    def length() -> int:
        value = 0
        for _ in range(4):
            byte = take(1)[0]
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                return value
        raise fail("a number longer than 4 bytes")

    while position < len(body):
        tick += length()
        first = take(1)[0]
        if first == 0xFF:  # a meta event; it cancels running status
            kind = take(1)[0]
            payload = take(length())
            status = None
            if kind == 0x2F:
                break
            _read_meta(track, kind, payload)
            continue
        if first in (0xF0, 0xF7):  # system exclusive: skipped
            take(length())
            status = None
            continue
        if first >= 0xF0:
            raise fail(f"0x{first:02X} is not an event a MIDI file may hold")
        if first >= 0x80:
            status = first
        elif status is None:
            raise fail(f"a data byte (0x{first:02X}) where an event was expected")
        else:
            position -= 1  # running status: this byte is the event's first data byte
        kind, channel = status >> 4, status & 0x0F
        values = take(1 if kind in (0xC, 0xD) else 2)
        if any(value >= 0x80 for value in values):
            raise fail(f"a data byte above 127 in event 0x{status:02X}")
        if channel == PERCUSSION_CHANNEL or kind not in (0x8, 0x9):
            continue
        pitch, velocity = values
        if kind == 0x9 and velocity > 0:
            sounding.setdefault((channel, pitch), []).append(tick)
        elif sounding.get((channel, pitch)):
            track.notes.append((sounding[(channel, pitch)].pop(0), tick, pitch))
    for (_, pitch), starts in sounding.items():  # notes never released end with the track
        track.notes.extend((start, tick, pitch) for start in starts)
    track.end_tick = tick
    return track


def _read_meta(track: _Track, kind: int, payload: bytes) -> None:
    if kind == 0x03 and track.name is None:
        track.name = payload.decode("utf-8", errors="replace").strip()
    elif kind == 0x51 and len(payload) == 3 and track.tempo_bpm is None:
        microseconds = int.from_bytes(payload, "big")
        if microseconds:
            # Round away the microsecond quantization, so that 92.5 bpm reads back as 92.5.
            track.tempo_bpm = round(60_000_000 / microseconds, 2)
    elif kind == 0x58 and len(payload) >= 2 and track.meter is None and payload[0] and payload[1] <= 6:
        track.meter = f"{payload[0]}/{2 ** payload[1]}"
    elif kind == 0x59 and len(payload) == 2 and track.key is None:
        fifths, mode = struct.unpack(">bB", payload)
        if -7 <= fifths <= 7:
            track.key = (fifths, mode == 1)


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


# --- writing ----------------------------------------------------------------------------------


def _variable_length(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits a byte, high bit set on all but the last."""
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(groups))


def _meta(kind: int, payload: bytes) -> bytes:
    return bytes([0xFF, kind]) + _variable_length(len(payload)) + payload
