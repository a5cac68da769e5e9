"""Transposition: a song moved up or down by semitones, its key and spellings with it.

Two uses in training on a corpus: moving every tune to a common tonic (C), so that a model
learns one set of intervals instead of twelve, and back again for output; and augmenting
a training set with the same tunes in other keys.

A transposed key is spelled with the fewest accidentals (D major up 1 is Eb major, not
D# major); its notes are spelled from it (sharps in sharp keys, flats in flat ones).
"""

from __future__ import annotations

from nabiya.errors import NabiyaError
from nabiya.music.note import LETTER_SEMITONES, Note
from nabiya.music.notation import alteration, key_name, parse_key, spell
from nabiya.music.song import Song

_TONIC_NAMES = tuple(letter + accidental for letter in "cdefgab" for accidental in ("", "#", "b"))


def tonic_pitch_class(key: str | None) -> int | None:
    """The tonic of a key as a pitch class, 0 (C) to 11 (B); None when there is no key.

    Example:
        >>> tonic_pitch_class("D major"), tonic_pitch_class("Bb minor"), tonic_pitch_class(None)
        (2, 10, None)
    """
    parsed = parse_key(key)
    if parsed is None:
        return None
    tonic = parsed[0]
    return (LETTER_SEMITONES[tonic[0]] + alteration(tonic)) % 12


def shift_to_c(key: str | None) -> int:
    """The semitones, in -5..6, that move a key's tonic to C; 0 when there is no key.

    The shift is the smaller way round (G goes up 5 to C, not down 7), so a tune stays
    near its own register.

    Example:
        >>> shift_to_c("D major"), shift_to_c("G major"), shift_to_c("F# minor"), shift_to_c(None)
        (-2, 5, 6, 0)
    """
    pitch_class = tonic_pitch_class(key)
    if pitch_class is None:
        return 0
    return (-pitch_class + 5) % 12 - 5


def transpose_key(key: str, semitones: int) -> str:
    """A key moved by ``semitones``, its tonic spelled with the fewest accidentals.

    Of two equally good spellings (F# and Gb major, six each) the flat one is chosen.

    Example:
        >>> transpose_key("D major", 1), transpose_key("E dorian", -2), transpose_key("C major", 6)
        ('Eb major', 'D dorian', 'Gb major')
    """
    parsed = parse_key(key)
    if parsed is None:
        raise NabiyaError(f"{key!r} is not a key: write one such as 'G major' or 'D dorian'")
    _, mode, _ = parsed
    target = (tonic_pitch_class(key) + semitones) % 12
    candidates = []
    for tonic in _TONIC_NAMES:
        if (LETTER_SEMITONES[tonic[0]] + alteration(tonic)) % 12 != target:
            continue
        found = parse_key(f"{tonic} {mode}")
        if found is not None:
            candidates.append((abs(found[2]), found[2], tonic))
    _, _, tonic = min(candidates)
    return key_name(tonic, mode)


def transpose(song: Song, semitones: int) -> Song:
    """The song moved by ``semitones`` (up when positive): notes, key and spellings.

    Meter, pickup, title, tempo and ``meta`` are kept. A song without a key keeps none, its
    notes spelled as a piano names them.

    Raises:
        NabiyaError: when a note would leave MIDI's range 0..127, naming it.

    Example:
        >>> up = transpose(Song.from_codes("d4 f#4 a4", key="D major"), 1)
        >>> up.codes, up.key
        (['eb4', 'g4', 'bb4'], 'Eb major')
    """
    if semitones == 0:
        return song
    key = transpose_key(song.key, semitones) if song.key else None
    fifths = parse_key(key)[2] if key else None
    notes = []
    for number, note in enumerate(song.notes, start=1):
        if note.pitch is None:
            notes.append(note)
            continue
        pitch = note.pitch + semitones
        if not 0 <= pitch <= 127:
            raise NabiyaError(
                f"{song.title or 'the song'} moved by {semitones:+d} semitones: note {number} ({note.code}) "
                "would leave MIDI's pitch range 0..127"
            )
        notes.append(Note(pitch, note.duration, spell(pitch, fifths)))
    return Song(tuple(notes), title=song.title, tempo_bpm=song.tempo_bpm, meter=song.meter, key=key,
                pickup=song.pickup, meta=dict(song.meta))  # fmt: skip
