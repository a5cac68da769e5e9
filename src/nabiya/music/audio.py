"""WAV rendering: a plain synthesized tone per note, so a person can listen to a melody.

No sound font or synthesizer is needed: each note is a few sine harmonics under a short
attack and a decay, rests are silence. 16-bit mono PCM, written with the standard
library's ``wave``.
"""

from __future__ import annotations

import io
import wave

import numpy as np

from nabiya.music.song import Song

SAMPLE_RATE = 22_050
_HARMONICS = ((1, 1.0), (2, 0.35), (3, 0.15), (4, 0.05))


def render(song: Song, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The song as audio samples in [-1, 1], shape ``(n_samples,)``, float32.

    Example:
        >>> from nabiya.music.songs import nabiya
        >>> round(render(nabiya()).shape[0] / SAMPLE_RATE, 1)   # 32 quarter notes at 120 bpm
        16.0
    """
    pieces = []
    for note in song.notes:
        seconds = float(note.duration) * song.seconds_per_quarter
        count = int(round(seconds * sample_rate))
        if note.pitch is None or count == 0:
            pieces.append(np.zeros(count, dtype=np.float32))
            continue
        time = np.arange(count) / sample_rate
        frequency = 440.0 * 2 ** ((note.pitch - 69) / 12)
        tone = sum(weight * np.sin(2 * np.pi * frequency * harmonic * time) for harmonic, weight in _HARMONICS)
        attack = np.minimum(1.0, time / 0.01)
        release = np.minimum(1.0, (seconds - time) / 0.03)
        envelope = attack * np.exp(-2.5 * time) * np.clip(release, 0.0, 1.0)
        pieces.append((0.3 * tone * envelope).astype(np.float32))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def wav_bytes(song: Song, *, sample_rate: int = SAMPLE_RATE) -> bytes:
    """The song as the bytes of a WAV file (16-bit mono PCM)."""
    samples = np.clip(render(song, sample_rate=sample_rate), -1.0, 1.0)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def write_wav(song: Song, path) -> None:
    """Write the song as a WAV file, atomically."""
    from nabiya.fileio import write_bytes

    write_bytes(path, wav_bytes(song))
