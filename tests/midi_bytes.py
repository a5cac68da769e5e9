"""Standard MIDI File bytes written by hand, for tests of the MIDI reader."""

from __future__ import annotations

import struct


def number(value: int) -> bytes:
    """A MIDI variable-length number."""
    groups = [value & 0x7F]
    while value > 0x7F:
        value >>= 7
        groups.append((value & 0x7F) | 0x80)
    return bytes(reversed(groups))


def midi_file(*tracks, division=480, end_delays=None) -> bytes:
    """Standard MIDI File bytes from tracks of (delta ticks, event bytes), each ended after ``end_delays[i]`` ticks."""
    chunks = [b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), division)]
    for index, events in enumerate(tracks):
        delay = end_delays[index] if end_delays else 0
        body = b"".join(number(delta) + event for delta, event in events) + number(delay) + b"\xff\x2f\x00"
        chunks.append(b"MTrk" + struct.pack(">I", len(body)) + body)
    return b"".join(chunks)


def on(pitch, channel=0):
    return bytes([0x90 | channel, pitch, 90])


def off(pitch, channel=0):
    return bytes([0x80 | channel, pitch, 0])


def tempo(bpm):
    return b"\xff\x51\x03" + round(60_000_000 / bpm).to_bytes(3, "big")
