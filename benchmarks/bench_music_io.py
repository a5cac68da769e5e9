"""Time reading and writing long songs in every format, and parsing note codes.

Builds a random melody of ``--notes`` notes (pitches G3-G5, durations from a sixteenth to a
half note, with rests; 4/4, G major), then times, once each, in one process:

- writing it as ``.txt``, ``.mid``, ``.musicxml``, ``.abc``, ``.svg`` and ``.wav``, and the sizes
  (a song longer than nabiya renders as audio: also its first ``MAX_AUDIO_SECONDS`` as ``.wav``);
- reading back ``.txt``, ``.mid``, ``.musicxml`` and ``.abc``;
- parsing note-code text of ``--commas`` commas (the worst case for a separator regex).

Usage::

    python benchmarks/bench_music_io.py                    # 20,000 notes, 60,000 commas
    python benchmarks/bench_music_io.py --notes 2000 --skip abc
    python benchmarks/bench_music_io.py --read txt mid musicxml   # not ABC: its reader is music21's

Run it in the worktree with ``PYTHONPATH=src``. Figures move with the machine's load: compare
runs side by side.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import warnings
from fractions import Fraction
from pathlib import Path

from nabiya.errors import NabiyaError
from nabiya.music.audio import can_render_audio
from nabiya.music.formats import read_song, write_song
from nabiya.music.limits import MAX_AUDIO_SECONDS
from nabiya.music.note import Note, parse_codes
from nabiya.music.song import Song

DURATIONS = (Fraction(1, 4), Fraction(1, 2), Fraction(1, 2), Fraction(1), Fraction(1), Fraction(3, 2), Fraction(2))


def random_song(n_notes: int, *, seed: int = 0) -> Song:
    rng = random.Random(seed)
    notes = [Note(67, Fraction(1))]
    while len(notes) < n_notes:  # a rest never follows a rest: readers join rests in a row
        rest = notes[-1].pitch is not None and rng.random() < 0.05
        notes.append(Note(None if rest else rng.randint(55, 79), rng.choice(DURATIONS)))
    return Song(tuple(notes), title="benchmark", tempo_bpm=120.0, meter="4/4", key="G major")


def timed(label: str, action):
    start = time.perf_counter()
    try:
        result = action()
        note = ""
    except NabiyaError as error:
        result, note = None, f"  (NabiyaError: {error})"
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:9.2f} s{note}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=20_000, help="notes in the song (default 20000)")
    parser.add_argument("--commas", type=int, default=60_000, help="commas in the code text (default 60000)")
    parser.add_argument("--skip", nargs="*", default=[], help="formats not to write, e.g. svg wav abc")
    parser.add_argument("--read", nargs="*", default=["txt", "mid", "musicxml", "abc"],
                        help="formats to read back (default: txt mid musicxml abc)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    for count in (args.commas // 4, args.commas):
        text = "c4" + "," * count + "d4"
        timed(f"parse_codes, {count} commas", lambda text=text: parse_codes(text))

    song = random_song(args.notes)
    print(f"song: {len(song)} notes, {float(song.duration_quarters) / 2 / 60:.1f} minutes at 120 bpm")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for suffix in (".txt", ".mid", ".musicxml", ".abc", ".svg", ".wav"):
            if suffix.lstrip(".") in args.skip:
                continue
            path = folder / f"song{suffix}"
            timed(f"write {suffix}", lambda path=path: write_song(song, path))
            if path.exists():
                print(f"{'':<34} {os.path.getsize(path) / 1e6:9.2f} MB")
        if "wav" not in args.skip and not can_render_audio(song):
            start, notes = Fraction(0), []
            for note in song.notes:  # the song's first MAX_AUDIO_SECONDS, as long as nabiya renders
                if (start + note.duration) * song.seconds_per_quarter > MAX_AUDIO_SECONDS:
                    break
                notes.append(note)
                start += note.duration
            part = song.with_notes(notes)
            path = folder / "part.wav"
            timed(f"write .wav, first {len(notes)} notes", lambda: write_song(part, path))
            print(f"{'':<34} {os.path.getsize(path) / 1e6:9.2f} MB, {part.duration_seconds / 60:.1f} minutes")
        for suffix in (".txt", ".mid", ".musicxml", ".abc"):
            path = folder / f"song{suffix}"
            if suffix.lstrip(".") not in args.read or not path.exists():
                continue
            back = timed(f"read {suffix}", lambda path=path: read_song(path))
            if back is not None and back.notes != song.notes:
                print(f"{'':<34} read back differs from the song")


if __name__ == "__main__":
    main()
