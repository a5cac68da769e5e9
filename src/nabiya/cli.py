"""The ``nabiya`` command: a thin layer over the Python API (see ``nabiya.run``).

Every command builds arguments, calls the API, and prints. Bad input of any kind ends
with one line on standard error, ``nabiya: error: ...``, and exit status 2. JAX is
imported only by the commands that train or generate, so ``nabiya --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Sequence

from nabiya.config import PRESET_DESCRIPTIONS, PRESETS
from nabiya.errors import NabiyaError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2), as every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise NabiyaError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None


_PRESET_LIST = "\n".join(f"  {name:<10} {PRESET_DESCRIPTIONS[name]}" for name in PRESETS)

_RUN_EXAMPLES = """\
presets (the tutorial's four models):
{presets}

examples:
  nabiya run                          # stateful2 on 나비야: the tutorial's best model
  nabiya run mlp --epochs 500         # the MLP, shorter
  nabiya run stateful --seed 7 --out runs/seed7
  nabiya run stateful2 --song tune.abc --tune 2 --save tune.nabiya
  nabiya run stateful2 --song reel.abc --repeats played   # repeats as played (default: as written)
  nabiya run stateful2 --song "c4 d4 e4 c4 c4 d4 e4 c4 e4 f4 g2"
  nabiya run stateful --song ode_to_joy --features onehot
""".format(presets=_PRESET_LIST)

_COMPARE_EXAMPLES = """\
examples:
  nabiya compare                      # all four presets on 나비야, one table, one plot
  nabiya compare --epochs 300 --out runs/short
  nabiya compare --song reel.abc --repeats played
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nabiya",
        description="Teach sequence models to play melodies: the 나비야 Keras tutorial, exactly and fast.",
        epilog="Run 'nabiya COMMAND --help' for a command's options and examples.\n\n"
        "examples:\n  nabiya run\n  nabiya compare\n  nabiya songs\n"
        "  nabiya convert tune.abc tune.mid\n  nabiya generate model.nabiya --strategy top-p --top-p 0.9",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nabiya {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="train one preset on a song and show what it learned",
        description="Train a preset (default stateful2) on a song (default 나비야), then predict one step "
        "at a time and the full song from the first window. Writes a run folder with summary.json, "
        "loss.png, and the song and both predictions as MIDI, WAV and more.",
        epilog=_RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("preset", nargs="?", default="stateful2", metavar="PRESET",
                     help=f"one of {', '.join(PRESETS)} (default: stateful2)")
    _add_song_options(run)
    _add_training_options(run)
    run.add_argument("--features", choices=("index", "pitch_length", "onehot"),
                     help="override the preset's note encoding: index (index / 13), pitch_length (pitch and "
                     "length, the tutorial's two features) or onehot (one input per note, for songs where one "
                     "number per pitch is a poor input)")
    run.add_argument("--save", metavar="FILE", help="also save the trained model to FILE (safetensors + JSON, no pickle)")
    run.set_defaults(handler=_cmd_run)

    compare = commands.add_parser(
        "compare",
        help="train all four presets and compare them in one table and one plot",
        description="Train mlp, lstm, stateful and stateful2 on the same song: a table of accuracy, "
        "one-step and full-song matches, the epoch training accuracy first reached 100%%, and "
        "training seconds, and the four loss curves in one PNG.",
        epilog=_COMPARE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_song_options(compare)
    _add_training_options(compare)
    compare.set_defaults(handler=_cmd_compare)

    songs = commands.add_parser(
        "songs",
        help="list the built-in songs",
        description="List the built-in songs: 나비야 and a handful of well-known public-domain tunes.",
        epilog="examples:\n  nabiya songs\n  nabiya run stateful2 --song twinkle",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    songs.set_defaults(handler=_cmd_songs)

    convert = commands.add_parser(
        "convert",
        help="convert a melody between formats (by file extension)",
        description="Read a melody (ABC, MusicXML, MIDI, or a text file of note codes) and write it in the "
        "format named by OUT's extension: .mid, .wav, .abc, .musicxml, .svg (sheet music), .txt.",
        epilog="examples:\n  nabiya convert tune.abc tune.mid\n  nabiya convert tunes.abc --tune 3 tune.svg\n"
        "  nabiya convert reel.abc --repeats played reel.mid   # repeats as played (default: as written)\n"
        "  nabiya convert nabiya nabiya.musicxml     # a built-in song by name",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("input", metavar="IN", help="a melody file, or a built-in song's name")
    convert.add_argument("output", metavar="OUT", help="the file to write; its extension picks the format")
    convert.add_argument("--tune", metavar="X|TITLE", help="which tune of a multi-tune ABC file (X: number or title)")
    _add_repeats_option(convert)
    convert.set_defaults(handler=_cmd_convert)

    generate = commands.add_parser(
        "generate",
        help="make new music with a saved model",
        description="Continue a primer with a model saved by 'nabiya run --save'. Prints the generated notes "
        "as note codes on one line; with --out, also writes them as MIDI, WAV and more. With the defaults "
        "(the training song's first window, greedy, the rest of the song's length) a stateful2 model "
        "replays the rest of its song.",
        epilog="examples:\n  nabiya generate nabiya.model\n"
        "  nabiya generate nabiya.model --strategy temperature --temperature 1.5 --length 100 --seed 3\n"
        "  nabiya generate nabiya.model --strategy top-p --top-p 0.9 --out runs/new-tune\n"
        "  nabiya generate nabiya.model --primer reel.abc --repeats played\n"
        '  nabiya generate nabiya.model --primer "g8 e8 e4 f8" --strategy beam --beam-width 4',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    generate.add_argument("model", metavar="MODEL", help="a model file saved by 'nabiya run --save'")
    generate.add_argument("--primer", metavar="CODES|FILE",
                          help="the notes to continue: note codes or a song file (default: the training song's first window)")
    generate.add_argument("--length", type=_positive_int, metavar="N",
                          help="how many notes to generate (default: the rest of the training song)")
    generate.add_argument("--strategy", choices=("greedy", "temperature", "top-k", "top-p", "beam"),
                          help="how to choose each note (default: greedy, the tutorial's argmax; "
                          "or the one the options below imply)")
    generate.add_argument("--temperature", type=_float, metavar="T",
                          help="sampling temperature, > 0 (with temperature, top-k, top-p; default 1.0)")
    generate.add_argument("--top-k", type=_int, metavar="K", help="sample from the K likeliest notes (default 5)")
    generate.add_argument("--top-p", type=_float, metavar="P",
                          help="sample from the likeliest notes whose probabilities add up to P, in (0, 1] (default 0.9)")
    generate.add_argument("--beam-width", type=_int, metavar="W", help="beams for --strategy beam (default 4)")
    generate.add_argument("--seed", type=_int, default=0, help="random seed: the same seed gives the same music (default 0)")
    generate.add_argument("--out", metavar="DIR", help="also write the generated melody (primer included) to DIR")
    _add_repeats_option(generate)
    generate.set_defaults(handler=_cmd_generate)
    return parser


def _add_song_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--song", metavar="NAME|FILE|CODES",
                        help="the melody to learn: a built-in song (see 'nabiya songs'), a file (.abc, .musicxml, "
                        ".mxl, .mid, .txt of note codes) or note codes in quotes (default: 나비야)")
    parser.add_argument("--tune", metavar="X|TITLE", help="which tune of a multi-tune ABC file (X: number or title)")
    _add_repeats_option(parser)


# --- repeats: how a song file's repeat signs are read (nabiya.music.abc_tune) ----------------------


def _add_repeats_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repeats", choices=("written", "played"), default=None,
        help="how to read a song file's repeats: written (the default: each section once, 1st and 2nd "
        "endings both, as printed) or played (|: :| sections twice, each pass with its own ending, and an "
        "ABC header's P: parts in order, as a musician plays them); for ABC and MusicXML files",
    )  # fmt: skip


# ---


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=_int, metavar="N", help="training epochs (default: 2000, the tutorial's)")
    parser.add_argument("--seed", type=_int, metavar="N", help="random seed (default: 5, the tutorial's)")
    parser.add_argument("--out", metavar="DIR", help="the run folder (default: a new folder under ./runs/)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar; print only a one-line summary")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 success, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "handler", None) is None:
            parser.print_help()
            return 0
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            return args.handler(args) or 0
    except NabiyaError as error:
        print(f"nabiya: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nabiya: interrupted", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, UserWarning) and not issubclass(category, DeprecationWarning):
        print(f"nabiya: warning: {message}", file=sys.stderr)


def _use_compilation_cache() -> None:
    """Keep XLA's compiled programs between runs: a later run skips ~1 s of compilation.

    The CLI's choice, not the library's: ``nabiya.run`` from Python leaves JAX's global
    config alone. The cache lives in ``$NABIYA_CACHE_DIR`` (empty: no cache), else
    ``$XDG_CACHE_HOME/nabiya/xla`` or ``~/.cache/nabiya/xla``; a JAX cache folder the user
    set already wins.
    """
    import os

    import jax

    if jax.config.jax_compilation_cache_dir:
        return
    root = os.environ.get("NABIYA_CACHE_DIR")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nabiya", "xla")
    if not root:
        return
    jax.config.update("jax_compilation_cache_dir", root)
    # JAX caches only compilations over 1 s by default; nabiya's take 0.1-1 s each.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _load_song(source: str | None, tune: str | None, repeats: str | None = None):
    """The song a command names: a file (``tune`` picks one of a multi-tune file; ``repeats`` how
    its repeats are read), a built-in song, or note codes (which have no repeats)."""
    from nabiya.experiment import SONG_FILE_SUFFIXES, resolve_song

    if tune is None and repeats is None:
        return resolve_song(source)
    if tune is not None and not source:
        raise NabiyaError("--tune picks a tune of an ABC file given with --song")
    if tune is not None or Path(source or "").suffix.lower() in SONG_FILE_SUFFIXES:
        from nabiya.music.formats import read_song

        return read_song(source, tune=tune, repeats=repeats or "written")
    return resolve_song(source)


def _cmd_run(args) -> int:
    _use_compilation_cache()
    from nabiya.config import preset
    from nabiya.experiment import default_run_folder, run

    config = preset(args.preset).replace(epochs=args.epochs, seed=args.seed)
    if args.features:
        import dataclasses

        config = config.replace(model=dataclasses.replace(config.model, features=args.features))
    song = _load_song(args.song, args.tune, args.repeats)
    out = Path(args.out) if args.out else default_run_folder(args.preset)
    if args.save:
        from nabiya.fileio import ensure_directory

        ensure_directory(Path(args.save).parent)
    result = run(config, song=song, out=out, progress=not args.quiet)
    if args.save:
        result.save(args.save)
    from nabiya.display import print_run

    print_run(result, out=out, saved=args.save, quiet=args.quiet)
    return 0


def _cmd_compare(args) -> int:
    _use_compilation_cache()
    from nabiya.experiment import compare, default_run_folder

    song = _load_song(args.song, args.tune, args.repeats)
    out = Path(args.out) if args.out else default_run_folder("compare")
    comparison = compare(song=song, epochs=args.epochs, seed=args.seed, out=out, progress=not args.quiet)
    from nabiya.display import print_comparison

    print_comparison(comparison, out=out, quiet=args.quiet)
    return 0


def _cmd_songs(args) -> int:
    from nabiya.display import print_songs

    print_songs()
    return 0


def _cmd_convert(args) -> int:
    from nabiya.music.formats import write_song

    song = _load_song(args.input, args.tune, args.repeats)
    write_song(song, args.output)
    print(f"wrote {args.output} ({len(song)} notes)")
    return 0


def _cmd_generate(args) -> int:
    _use_compilation_cache()
    from nabiya.checkpoint import load_model
    from nabiya.generate import continue_song, make_strategy

    strategy = make_strategy(args.strategy, temperature=args.temperature, top_k=args.top_k,
                             top_p=args.top_p, beam_width=args.beam_width)
    saved = load_model(args.model)
    primer = _load_primer(args.primer, args.repeats) if args.primer else None
    notes = continue_song(saved, primer, steps=args.length, strategy=strategy, seed=args.seed)
    print(" ".join(note.code for note in notes))
    if args.out:
        from nabiya.music.song import Song
        from nabiya.report import write_songs

        given = tuple(primer) if primer is not None else saved.song.notes[: saved.window]
        title = f"{saved.song.title if saved.song else 'melody'} (generated)"
        melody = (saved.song or Song(())).with_notes(given + tuple(notes), title=title)
        written = write_songs({"generated": melody}, args.out)
        print(f"wrote {args.out}: {', '.join(path.name for path in written)}", file=sys.stderr)
    return 0


def _load_primer(text: str, repeats: str | None = None):
    """Primer notes from a song file (by extension), a built-in song's name, or note codes."""
    return _load_song(text, None, repeats).notes


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nabiya")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
