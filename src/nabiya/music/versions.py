"""Versions of one tune: the same melody in two books, or twice in one, with a few notes changed.

Folk tune books copy each other: O'Neill's *Kiss the Bride* is Ryan's *Kiss the Bride -- Reel*
with a few notes changed, and music21's O'Neill's holds some tunes in two files. Exact
copies are dropped when a corpus is read; near ones are *versions*, and a split must keep
every version of a tune on the same side, or a model is tested on tunes it was trained on.

Two tunes are versions of each other when at least :data:`SHARED_SHARE` of the distinct
runs of :data:`RUN_NOTES` notes of the shorter one are in the other, comparing intervals
(so a version in another key counts) and durations. Versions of versions are one group.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from nabiya.music.song import Song
from nabiya.music.transpose import transpose  # noqa: F401  (used in the example)

RUN_NOTES = 16
SHARED_SHARE = 0.2
# A run shared by more tunes than this is a common phrase, not a sign of versions.
COMMON_RUN_TUNES = 50
_REST = 1000  # the interval code of a rest


def version_groups(songs: Sequence[Song]) -> dict[str, str]:
    """Which tunes are versions of others: ``{tune id: group id}`` for every tune in a group.

    A group's id is the smallest tune id in it (so it does not depend on the order of the
    songs); tunes that are versions of no other are left out.

    Example:
        >>> import dataclasses
        >>> tune = Song.from_codes("d8 e8 f#8 g8 a8 b8 a8 g8 f#8 e8 d8 e8 f#8 d8 e4 " * 2)
        >>> other = tune.with_notes(tune.notes[:-1] + Song.from_codes("d4").notes)   # one note changed
        >>> up = transpose(tune, 2)                                                  # in another key
        >>> songs = [dataclasses.replace(song, meta={"id": name})
        ...          for song, name in ((tune, "b/t#2"), (other, "a/t#1"), (up, "c/t#9"))]
        >>> version_groups(songs)
        {'b/t#2': 'a/t#1', 'a/t#1': 'a/t#1', 'c/t#9': 'a/t#1'}
    """
    runs = [_runs(song) for song in songs]
    owners: dict[int, list[int]] = {}
    for index, tune_runs in enumerate(runs):
        for run in tune_runs:
            owners.setdefault(run, []).append(index)
    shared: Counter = Counter()
    for tunes in owners.values():
        if 1 < len(tunes) <= COMMON_RUN_TUNES:
            for place, first in enumerate(tunes):
                for second in tunes[place + 1 :]:
                    shared[first, second] += 1
    parent = list(range(len(songs)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for (first, second), count in shared.items():
        if count >= SHARED_SHARE * min(len(runs[first]), len(runs[second])):
            parent[root(first)] = root(second)
    members: dict[int, list[str]] = {}
    for index, song in enumerate(songs):
        members.setdefault(root(index), []).append(song.meta["id"])
    groups = {}
    for ids in members.values():
        if len(ids) > 1:
            smallest = min(ids)
            groups.update(dict.fromkeys(ids, smallest))
    return groups


def _runs(song: Song) -> set[int]:
    """Hashes of the song's runs of :data:`RUN_NOTES` (interval, duration) pairs."""
    codes = np.empty(len(song.notes), dtype=np.uint64)
    previous = None
    for position, note in enumerate(song.notes):
        if note.pitch is None:
            interval = _REST
        else:
            interval = 0 if previous is None else note.pitch - previous
            previous = note.pitch
        duration = note.duration
        codes[position] = (interval + 2048) * 1_000_003 + duration.numerator * 1009 + duration.denominator
    count = len(codes) - RUN_NOTES + 1
    if count <= 0:
        return set()
    hashes = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(RUN_NOTES):  # a polynomial hash, wrapping at 2**64
            hashes = hashes * np.uint64(0x100000001B3) + codes[offset : offset + count]
    return set(hashes.tolist())
