"""How much memory real tunes need, and whether a preset memorises them (an experiment, run by hand).

Reads every tune of some of music21's ABC books (shipped inside music21: O'Neill's Music of
Ireland 1850, Ryan's Mammoth Collection, Aird's Airs), analyses each with ``nabiya.analyze``
(memory needed at the preset's window, ambiguous places), and prints how many tunes need how
much. With ``--train N`` it then trains the preset (its defaults: 2000 epochs, seed 5) on N
tunes drawn at random from each band of memory needed, and reports which it memorises: 100%
training accuracy and every note of the full-song continuation right.

    python benchmarks/memory_survey.py                        # analysis only (a minute)
    python benchmarks/memory_survey.py --train 3              # + 27 trainings (~15 min on 2 cores)
    python benchmarks/memory_survey.py --train 2 --sample-seed 1 --bands 13-16,17-20,21-24,25-28,29-32,33-99
    python benchmarks/memory_survey.py --out survey.jsonl     # one JSON line per tune (and per training)

Tunes that music21 cannot read, or shorter than 10 notes, are skipped (and counted).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import warnings
from pathlib import Path

DEFAULT_BOOKS = (
    "oneills1850/0001-0050.abc",
    "oneills1850/0051-0100.abc",
    "oneills1850/0101-0200.abc",
    "airdsAirs/book1.abc",
    "ryansMammoth/*Reel.abc",
)
DEFAULT_BANDS = "0-4,5-8,9-12,13-16,17-20,21-24,25-28,29-32,33-99"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--books", nargs="+", default=DEFAULT_BOOKS, help="globs under music21/corpus")
    parser.add_argument("--preset", default="stateful2")
    parser.add_argument("--max-notes", type=int, default=140, help="train only on tunes of at most this many notes")
    parser.add_argument("--train", type=int, default=0, metavar="N", help="tunes to train per band of memory needed")
    parser.add_argument("--bands", default=DEFAULT_BANDS, help="bands of memory needed, in notes: 'lo-hi,...'")
    parser.add_argument("--sample-seed", type=int, default=0, help="which tunes are drawn from each band")
    parser.add_argument("--out", help="also write one JSON line per tune and per training here")
    args = parser.parse_args(argv)

    import music21

    import nabiya

    window = nabiya.preset(args.preset).window
    root = Path(music21.__file__).parent / "corpus"
    out = open(args.out, "w", encoding="utf-8") if args.out else None
    tunes, skipped = [], 0
    for pattern in args.books:
        for path in sorted(root.glob(pattern)):
            for number in re.findall(r"^X:\s*(\d+)", path.read_text(errors="replace"), re.MULTILINE):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        song = nabiya.read_song(path, tune=int(number))
                except nabiya.NabiyaError:
                    skipped += 1
                    continue
                if len(song) < 10:
                    skipped += 1
                    continue
                report = nabiya.analyze(song, max_window=window).at(window)
                row = {"tune": f"{path.relative_to(root)}#{int(number)}", "title": song.title, "notes": len(song),
                       "memory_notes": report.memory_notes, "carried_notes": report.carried_notes,
                       "ambiguous_places": report.ambiguous_places, "ceiling": round(report.ceiling, 4),
                       "reaches_start": bool(report.memory and report.memory.reaches_start)}
                tunes.append((row, song))
                if out:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
    bands = [tuple(int(x) for x in band.split("-")) for band in args.bands.split(",")]
    print(f"{len(tunes)} tunes analysed, {skipped} skipped; window {window} ({args.preset})")
    print(f"{'memory needed':>14} {'tunes':>6}")
    for low, high in bands:
        count = sum(low <= row["memory_notes"] <= high for row, _ in tunes)
        print(f"{low:>6}-{high:<7} {count:>6}")
    if not args.train:
        return 0

    rng = random.Random(args.sample_seed)
    print(f"\ntraining {args.preset} (its defaults) on {args.train} tunes per band, at most {args.max_notes} notes")
    print(f"{'tune':<48} {'notes':>5} {'memory':>6} {'places':>6} {'accuracy':>8} {'full song':>10} {'100% at':>7}")
    memorised: dict[tuple[int, int], list[bool]] = {}
    for low, high in bands:
        pool = [(row, song) for row, song in tunes if low <= row["memory_notes"] <= high and row["notes"] <= args.max_notes]
        for row, song in rng.sample(pool, min(args.train, len(pool))):
            start = time.perf_counter()
            result = nabiya.run(args.preset, song=song, progress=False)
            total = len(result.full_song.notes)
            ok = result.accuracy == 1.0 and result.full_song.matches == total
            memorised.setdefault((low, high), []).append(ok)
            print(f"{row['tune']:<48} {row['notes']:>5} {row['memory_notes']:>6} {row['ambiguous_places']:>6} "
                  f"{result.accuracy:>8.1%} {result.full_song.matches:>4}/{total:<5} {result.epochs_to_perfect or '—':>7}",
                  flush=True)
            if out:
                out.write(json.dumps({**row, "preset": args.preset, "accuracy": result.accuracy,
                                      "full_song": result.full_song.matches, "predicted": total,
                                      "epochs_to_100": result.epochs_to_perfect, "memorised": ok,
                                      "wrong_notes": [index + window + 1 for index in result.one_step.wrong],
                                      "seconds": round(time.perf_counter() - start, 1)}, ensure_ascii=False) + "\n")
                out.flush()
    print(f"\n{'memory needed':>14} {'memorised':>10}")
    for (low, high), results in memorised.items():
        print(f"{low:>6}-{high:<7} {sum(results):>4} of {len(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
