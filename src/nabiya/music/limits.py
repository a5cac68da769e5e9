"""The documented limits of what nabiya reads and writes, checked before any work is done.

A melody beyond these is not a melody a person wrote or could listen to; it is a typo
(``c:999999999``), a damaged file or an attack, and would otherwise exhaust memory or time
in the readers, writers and renderers (music21, verovio, WAV synthesis). Every reader checks
them before it hands a tune on, and :class:`~nabiya.music.note.Note` and
:class:`~nabiya.music.song.Song` check them as they are built, so no song beyond them exists.

=========================  ===========================================================
limit                      value
=========================  ===========================================================
a note's duration          at most ``MAX_NOTE_QUARTERS`` quarter notes (64 bars of 4/4), a
                           fraction with a denominator of at most ``MAX_DURATION_DENOMINATOR``
                           (music21 reads no finer; MIDI's finest is 1/32767 of a quarter)
a song's notes             at most ``MAX_SONG_NOTES``
a song's length            at most ``MAX_SONG_SECONDS`` seconds at its tempo (6 hours)
tempo                      ``MIN_TEMPO_BPM`` to ``MAX_TEMPO_BPM`` quarter notes a minute
a file read as a song      at most ``MAX_FILE_BYTES`` bytes, and a regular file (not a
                           folder, a FIFO or a device such as ``/dev/zero``)
audio (``.wav``)           songs of at most ``MAX_AUDIO_SECONDS`` seconds (20 minutes)
sheet music (``.svg``)     the first ``MAX_ENGRAVED_BARS`` bars, and no more bars than hold
                           ``MAX_ENGRAVED_NOTES`` notes; the page says when a song has more
=========================  ===========================================================

Songs of the longest kinds nabiya holds are still written quickly as note codes, MIDI,
ABC and MusicXML (in time linear in their length); audio and engraving are what grow with
a song's length into minutes and hundreds of megabytes, so those are capped.
"""

from __future__ import annotations

MAX_NOTE_QUARTERS = 256
MAX_DURATION_DENOMINATOR = 65_535
MAX_SONG_NOTES = 100_000
MAX_SONG_SECONDS = 6 * 60 * 60
MIN_TEMPO_BPM = 1.0
MAX_TEMPO_BPM = 1000.0
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_AUDIO_SECONDS = 20 * 60
MAX_ENGRAVED_BARS = 500
MAX_ENGRAVED_NOTES = 4000
