"""Notes and songs: pitches, durations, note codes, audio. Knows nothing of JAX."""

from nabiya.music.note import Note, format_code, parse_code, parse_codes
from nabiya.music.song import Song

__all__ = ["Note", "Song", "format_code", "parse_code", "parse_codes"]
