"""Which training setting memorises tunes that need long memory (an experiment, run by hand).

The tunes are those ``memory_survey.py`` found that ``stateful2`` with the tutorial's defaults
does not memorise: reels whose first strain is written out twice, ending differently, and one
air (Kathleen O'Moore). Each setting trains every tune for several seeds at once
(``nabiya.sweep``: each seed exactly as ``nabiya.run`` trains it) and reports, per tune, how many
seeds memorise it (100% training accuracy and every note of the full-song continuation right),
the first epoch at 100%, and the training time.

    python benchmarks/memory_settings.py                                    # every setting, seeds 5-8
    python benchmarks/memory_settings.py --settings window chunk32 --seeds 5-6 --tunes 1 4
    python benchmarks/memory_settings.py --out settings.jsonl               # one JSON line per tune and setting

Settings (the preset is ``stateful2``; ``--preset`` picks another):

- ``window``: the preset as it is (one window per Adam step, no gradient into the carried state);
- ``chunkK``: K consecutive windows per Adam step, the gradient flowing through the state
  carried between them (``TrainConfig.backprop_windows = K``); ``chunksong``: the whole song;
- ``hidden256``: a wider state; ``epochsN``: more epochs (``epochs4000``);
- settings combine with ``+``: ``chunk32+epochs3000``;
- ``chosen``: what ``nabiya run`` does with the song (its own choice, and its stop once the song is
  memorised), each seed one after another.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

TUNES = (
    ("ryansMammoth/RovingBachelorReel.abc", 1),
    ("ryansMammoth/TeetotalersReel.abc", 1),
    ("ryansMammoth/LarryDownsReel.abc", 1),
    ("ryansMammoth/AlhambraReel.abc", 1),
    ("ryansMammoth/CountessOfLoudensReel.abc", 1),
    ("ryansMammoth/BonnieLadReel.abc", 1),
    ("oneills1850/0101-0200.abc", 110),
    # shorter tunes the analysis finds beyond one-window training (memory 21-28), for the tests
    ("oneills1850/0101-0200.abc", 164),
    ("airdsAirs/book1.abc", 121),
    ("oneills1850/0001-0050.abc", 12),
)
DEFAULT_SETTINGS = ("window", "chunk32", "chunk16", "chunksong", "hidden256", "epochs4000", "chunk32+epochs4000")


def setting_config(base, setting: str, song_windows: int):
    """The run config of a setting (see the module docstring)."""
    config = base
    for part in setting.split("+"):
        train, model = config.train, config.model
        if part == "window":
            pass
        elif part == "chunksong":
            config = config.replace(train=dataclasses.replace(train, backprop_windows=song_windows))
        elif part.startswith("chunk"):
            config = config.replace(train=dataclasses.replace(train, backprop_windows=int(part[5:])))
        elif part.startswith("hidden"):
            config = config.replace(model=dataclasses.replace(model, hidden_size=int(part[6:])))
        elif part.startswith("epochs"):
            config = config.replace(epochs=int(part[6:]))
        else:
            raise SystemExit(f"unknown setting {part!r}")
    return config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS)
    parser.add_argument("--seeds", default="5-8", help="seeds as ranges and lists (default 5-8: the tutorial's and three more)")
    parser.add_argument("--tunes", nargs="+", type=int, help="which of the tunes (1-based; default all)")
    parser.add_argument("--preset", default="stateful2")
    parser.add_argument("--out", help="append one JSON line per tune and setting here")
    args = parser.parse_args(argv)

    import music21

    import nabiya
    from nabiya.sweeps import parse_numbers

    seeds = parse_numbers(args.seeds, what="--seeds")
    root = Path(music21.__file__).parent / "corpus"
    chosen = [TUNES[i - 1] for i in args.tunes] if args.tunes else list(TUNES)
    songs = []
    for path, number in chosen:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            songs.append((f"{path}#{number}", nabiya.read_song(root / path, tune=number)))
    base = nabiya.preset(args.preset)
    out = open(args.out, "a", encoding="utf-8") if args.out else None
    print(f"{'setting':<20} {'tune':<42} {'memory':>6} {'memorised':>9} {'first 100% (per seed)':<28} {'seconds':>7}")
    for setting in args.settings:
        for tune, song in songs:
            memory = nabiya.analyze(song, max_window=base.window).at(base.window).memory_notes
            started = time.perf_counter()
            if setting == "chosen":  # what nabiya run does: its own choice (and stop), one seed after another
                config = base
                result = SimpleNamespace(runs=[nabiya.run(base, song=song, seed=seed, progress=False) for seed in seeds])
            else:
                config = setting_config(base, setting, len(song) - base.window)
                result = nabiya.sweep(config, seeds=seeds, song=song, progress=False,
                                      backprop_windows=config.train.backprop_windows)  # as given: no choice
            seconds = time.perf_counter() - started
            runs = [{"seed": run.config.seed, "accuracy": run.accuracy, "full_song": run.full_song.matches,
                     "predicted": len(run.full_song.notes), "epochs_to_100": run.epochs_to_perfect,
                     "memorised": run.accuracy == 1.0 and run.full_song.matches == len(run.full_song.notes),
                     "wrong_notes": [index + base.window + 1 for index in run.one_step.wrong],
                     "epochs_trained": len(run.loss_history)}
                    for run in result.runs]
            memorised = sum(run["memorised"] for run in runs)
            firsts = ",".join(str(run["epochs_to_100"] or "—") + ("" if run["memorised"] else "x") for run in runs)
            print(f"{setting:<20} {tune:<42} {memory:>6} {memorised:>4} of {len(runs):<2} {firsts:<28} {seconds:>7.0f}",
                  flush=True)
            if out:
                out.write(json.dumps({"setting": setting, "tune": tune, "title": song.title, "notes": len(song),
                                      "memory_notes": memory, "seeds": seeds, "memorised": memorised,
                                      "seconds": round(seconds, 1), "runs": runs,
                                      "train": dataclasses.asdict(config.train),
                                      "hidden_size": config.model.hidden_size}, ensure_ascii=False) + "\n")
                out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
