"""How often nabiya's ABC reader agrees with abc2midi, note for note, on music21's ABC books.

Every tune of the books (or a sample) is read by nabiya and by abc2midi (abcMIDI), and the
pitched notes are compared as (onset, duration, pitch); see ``tests/abc_oracle.py`` for what
is set aside (decorations, grace notes, fermatas, chord-symbol accompaniment, and with
``--repeats written`` the repeat signs, since abc2midi always plays repeats). Run by hand:

    python benchmarks/abc_agreement.py                       # every tune, as written (~13,000)
    python benchmarks/abc_agreement.py --repeats played      # repeats played, as abc2midi plays them
    python benchmarks/abc_agreement.py --books oneills1850 --details out.jsonl
    python benchmarks/abc_agreement.py --speed               # tunes per second, O'Neill's book

It prints the counts of each verdict and the commonest kinds of difference.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from abc_oracle import ABC2MIDI, compare_tune, music21_abc_books, tune_texts  # noqa: E402

BOOKS = ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk", "essenFolksong", "nottingham-dataset", "josquin")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--books", nargs="+", default=list(BOOKS), help="folders of music21's corpus")
    parser.add_argument("--repeats", choices=("written", "played"), default="written")
    parser.add_argument("--sample", type=int, help="a random sample of this many tunes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--details", type=Path, help="write one JSON line per tune here")
    parser.add_argument("--speed", action="store_true", help="time split_tunes + reading every tune of O'Neill's book")
    args = parser.parse_args()
    if args.speed:
        return speed()
    if ABC2MIDI is None:
        print("abc2midi is not installed (apt-get install abcmidi)", file=sys.stderr)
        return 1
    from nabiya.music.abc import song_from_abc

    takes_repeats = "repeats" in inspect.signature(song_from_abc).parameters
    if args.repeats == "played" and not takes_repeats:
        print("this nabiya has no repeats= option", file=sys.stderr)
        return 1

    def read(text):
        return song_from_abc(text, repeats=args.repeats) if takes_repeats else song_from_abc(text)

    tunes = []
    root = music21_abc_books()
    for book in args.books:
        for path in sorted((root / book).rglob("*.abc")):
            tunes += [(f"{book}/{label}", text) for label, text in tune_texts(path)]
    if args.sample:
        tunes = random.Random(args.seed).sample(tunes, min(args.sample, len(tunes)))
    verdicts, kinds = collections.Counter(), collections.Counter()
    details = args.details.open("w") if args.details else None
    started = time.perf_counter()
    for number, (label, text) in enumerate(tunes, start=1):
        result = compare_tune(text, read, repeats=args.repeats)
        verdicts[result.verdict] += 1
        if result.verdict != "agree":
            kinds[(result.verdict, _kind(result.detail))] += 1
        if details:
            details.write(json.dumps({"tune": label, "verdict": result.verdict, "detail": result.detail}) + "\n")
        if number % 500 == 0:
            print(f"  {number}/{len(tunes)} tunes, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    total = sum(verdicts.values())
    print(f"{total} tunes, repeats {args.repeats}: " + ", ".join(
        f"{verdict} {count} ({count / total:.1%})" for verdict, count in verdicts.most_common()))  # fmt: skip
    for (verdict, kind), count in kinds.most_common(25):
        print(f"  {count:6d}  {verdict}: {kind}")
    return 0


def _kind(detail: str) -> str:
    """A difference or error with its particulars (numbers, names, places) blurred, to count kinds."""
    if re.match(r"note \d+: nabiya", detail):
        match = re.match(r"note \d+: nabiya (\d+)@(\S+)\+(\S+), abc2midi (\d+)@(\S+)\+(\S+)", detail)
        if match:
            same_pitch, same_onset, same_length = match[1] == match[4], match[2] == match[5], match[3] == match[6]
            return "differ in " + ", ".join(
                name for name, same in (("pitch", same_pitch), ("onset", same_onset), ("duration", same_length)) if not same
            )
    detail = re.sub(r"^.*?(?:line \d+|measure \d+|note \d+|X:\S+)[^:]*: ", "", detail)
    detail = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", detail)
    return re.sub(r"\d+", "N", detail)[:100]


def speed() -> int:
    """split_tunes + reading every tune of O'Neill's book: tunes per second."""
    from nabiya.errors import NabiyaError
    from nabiya.music.abc import song_from_abc, split_tunes
    from nabiya.music.formats import _decode

    paths = sorted((music21_abc_books() / "oneills1850").glob("*.abc"))
    texts = [_decode(path.read_bytes()) for path in paths]
    started = time.perf_counter()
    tunes = [(text, tune) for text in texts for tune in split_tunes(text)]
    split_seconds = time.perf_counter() - started
    read, failed = 0, 0
    started = time.perf_counter()
    for text, tune in tunes:
        try:
            song_from_abc("\n".join(tune.lines))
            read += 1
        except NabiyaError:
            failed += 1
    read_seconds = time.perf_counter() - started
    print(f"O'Neill's 1850: {len(tunes)} tunes; split_tunes {split_seconds:.2f} s, reading {read_seconds:.1f} s "
          f"({read} songs, {failed} errors): {len(tunes) / (split_seconds + read_seconds):.0f} tunes/s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
