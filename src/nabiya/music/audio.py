"""WAV rendering: a plain synthesized tone per note, so a person can listen to a melody.

No sound font or synthesizer is needed: each note is a few sine harmonics under a short
attack and a decay, rests are silence. 16-bit mono PCM, written with the standard
library's ``wave``. Each distinct (pitch, length) is synthesized once and reused, so
rendering takes time in proportion to the audio's length, not to its notes' number.

Audio is rendered for songs of up to ``MAX_AUDIO_SECONDS`` (see :mod:`nabiya.music.limits`:
20 minutes, 53 MB of WAV); :func:`can_render_audio` says whether a song fits, so that a
caller can leave its audio out rather than fail.
"""

from __future__ import annotations

import io
import wave

import numpy as np

from nabiya.errors import NabiyaError
from nabiya.music.limits import MAX_AUDIO_SECONDS
from nabiya.music.song import Song

SAMPLE_RATE = 22_050
_HARMONICS = ((1, 1.0), (2, 0.35), (3, 0.15), (4, 0.05))


def can_render_audio(song: Song) -> bool:
    """Whether the song is short enough to render as audio (at most ``MAX_AUDIO_SECONDS`` long).

    Example:
        >>> can_render_audio(Song.from_codes("c4 d4 e2")), can_render_audio(Song.from_codes(["c1"] * 1000))
        (True, False)
    """
    return song.duration_seconds <= MAX_AUDIO_SECONDS


def render(song: Song, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The song as audio samples in [-1, 1], shape ``(n_samples,)``, float32.

    Raises:
        NabiyaError: for a song longer than ``MAX_AUDIO_SECONDS``.

    Example:
        >>> from nabiya.music.songs import nabiya
        >>> round(render(nabiya()).shape[0] / SAMPLE_RATE, 1)   # 32 quarter notes at 120 bpm
        16.0
    """
    if not can_render_audio(song):
        raise NabiyaError(
            f"{song.title or 'the song'} lasts {song.duration_seconds / 60:.0f} minutes: nabiya renders audio "
            f"of up to {MAX_AUDIO_SECONDS // 60} minutes"
        )
    tones: dict[tuple[int | None, int], np.ndarray] = {}  # (pitch, samples) -> samples, made once
    pieces = []
    for note in song.notes:
        count = round(float(note.duration) * song.seconds_per_quarter * sample_rate)
        tone = tones.get((note.pitch, count))
        if tone is None:
            tone = tones[note.pitch, count] = _tone(note.pitch, count, sample_rate)
        pieces.append(tone)
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def _tone(pitch: int | None, count: int, sample_rate: int) -> np.ndarray:
    """``count`` samples of one note (silence for a rest), float32."""
    if pitch is None or count == 0:
        return np.zeros(count, dtype=np.float32)
    time = np.arange(count) / sample_rate
    seconds = count / sample_rate
    frequency = 440.0 * 2 ** ((pitch - 69) / 12)
    tone = sum(weight * np.sin(2 * np.pi * frequency * harmonic * time) for harmonic, weight in _HARMONICS)
    attack = np.minimum(1.0, time / 0.01)
    release = np.minimum(1.0, (seconds - time) / 0.03)
    envelope = attack * np.exp(-2.5 * time) * np.clip(release, 0.0, 1.0)
    return (0.3 * tone * envelope).astype(np.float32)


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
