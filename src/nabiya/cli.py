"""The ``nabiya`` command: a thin layer over the Python API (see ``nabiya.run``).

Every command builds arguments, checks every input and output location, calls the API,
and prints. Bad input of any kind ends with one line on standard error,
``nabiya: error: ...``, and exit status 2, before any work is done; Ctrl-C ends with one
line and exit status 130. Outputs appear whole or not at all (see :mod:`nabiya.fileio`).
JAX is imported only by the commands that train or generate, so ``nabiya --help`` is instant.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence

from nabiya.config import MAX_BEAM_WIDTH, MAX_EPOCHS, MAX_GENERATE_NOTES, PRESET_DESCRIPTIONS, PRESETS
from nabiya.errors import NabiyaError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MODEL_SUFFIX = ".safetensors"  # a model file is a plain safetensors file: the name says so


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2), as every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise NabiyaError(f"{message} (see '{self.prog} --help')")


def _int(text: str) -> int:
    # int() of thousands of digits is slow or refused; no option needs more than 20.
    if len(text.strip()) > 20 or not text.strip().lstrip("+-").isascii():
        raise argparse.ArgumentTypeError(f"expected a whole number, not {_shown(text)}")
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {_shown(text)}") from None


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text) if len(text) <= 40 else None
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, not {_shown(text)}")
    return value


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 30 else f"{text[:20]!r}… ({len(text)} characters)"


_PRESET_LIST = "\n".join(f"  {name:<10} {PRESET_DESCRIPTIONS[name]}" for name in PRESETS)

_RUN_EXAMPLES = """\
presets (the tutorial's four models):
{presets}

examples:
  nabiya run                          # stateful2 on 나비야: the tutorial's best model
  nabiya run mlp --epochs 500         # the MLP, shorter
  nabiya run stateful --seed 7 --out runs/seed7
  nabiya run stateful2 --song tune.abc --tune 2 --save tune.safetensors
  nabiya run stateful2 --song reel.abc --repeats played   # repeats as played (default: as written)
  nabiya run stateful2 --song "c4 d4 e4 c4 c4 d4 e4 c4 e4 f4 g2"
  nabiya run stateful --song ode_to_joy --features onehot
  nabiya run --out runs/latest --force  # replace the earlier run in runs/latest
  nabiya run --song long.mid --no-audio # no WAV files
  nabiya run --song reel.abc --backprop-windows 32   # the gradient through 32 windows per step
  nabiya run --song reel.abc --backprop-windows 1    # the tutorial's one window, whatever the song

limits: --epochs 1 to {max_epochs:,}; --seed 0 to 2**32 - 1 (see the README's limits table).
""".format(presets=_PRESET_LIST, max_epochs=MAX_EPOCHS)

_COMPARE_EXAMPLES = """\
examples:
  nabiya compare                      # all four presets on 나비야, one table, one plot
  nabiya compare --epochs 300 --out runs/short
  nabiya compare --quiet              # one line: each preset's accuracy and full-song matches
  nabiya compare --song reel.abc --repeats played
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nabiya",
        description="Teach sequence models to play melodies: the 나비야 Keras tutorial, exactly and fast.",
        epilog="Run 'nabiya COMMAND --help' for a command's options and examples.\n\n"
        "examples:\n  nabiya run\n  nabiya compare\n  nabiya songs\n"
        "  nabiya convert tune.abc tune.mid\n  nabiya generate nabiya.safetensors --strategy top-p --top-p 0.9",
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
    run.add_argument("--backprop-windows", type=_int, metavar="K",
                     help="train a stateful preset through K consecutive windows per Adam step, the gradient "
                     "flowing through the state carried between them (1: the tutorial's one window). Default: "
                     "1, or 32 with up to twice the epochs (unless --epochs is given), stopping once the song is "
                     "memorised, when 'nabiya analyze' finds the song needs more memory than one window per step "
                     "trains (a line says so)")
    run.add_argument("--save", metavar="FILE",
                     help=f"also save the trained model to FILE, e.g. model{MODEL_SUFFIX} (a safetensors file: "
                     "weights + config + vocabulary, no pickle)")
    _add_output_options(run)
    run.set_defaults(handler=_cmd_run)

    compare = commands.add_parser(
        "compare",
        help="train all four presets and compare them in one table and one plot",
        description="Train mlp, lstm, stateful and stateful2 on the same song: a table of accuracy, "
        "one-step and full-song matches, the epoch training accuracy first reached 100%, and "
        "training seconds, and the loss and accuracy curves in one PNG (with the window-only ceiling).",
        epilog=_COMPARE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_song_options(compare)
    _add_training_options(compare)
    _add_output_options(compare)
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
        epilog="examples:\n  nabiya generate nabiya.safetensors\n"
        "  nabiya generate nabiya.safetensors --strategy temperature --temperature 1.5 --length 100 --seed 3\n"
        "  nabiya generate nabiya.safetensors --strategy top-p --top-p 0.9 --out runs/new-tune\n"
        "  nabiya generate nabiya.safetensors --primer reel.abc --repeats played\n"
        '  nabiya generate nabiya.safetensors --primer "g8 e8 e4 f8" --strategy beam --beam-width 4\n\n'
        f"limits: --length 1 to {MAX_GENERATE_NOTES:,}; --beam-width 1 to {MAX_BEAM_WIDTH}; --seed 0 to 2**32 - 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    generate.add_argument("model", metavar="MODEL", help=f"a model file saved by 'nabiya run --save' (*{MODEL_SUFFIX})")
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
    _add_output_options(generate)
    _add_repeats_option(generate)
    generate.set_defaults(handler=_cmd_generate)
    _add_corpus_generate_options(generate)
    _add_serve_command(commands)
    _add_analyze_command(commands)
    _add_corpus_commands(commands)
    _add_sweep_command(commands)
    _add_corpus_model_commands(commands)
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
    parser.add_argument("--epochs", type=_int, metavar="N",
                        help=f"training epochs, 1 to {MAX_EPOCHS:,} (default: 2000, the tutorial's)")
    parser.add_argument("--seed", type=_int, metavar="N",
                        help="random seed, 0 to 2**32 - 1 (default: 5, the tutorial's)")
    parser.add_argument("--out", metavar="DIR", help="the run folder (default: a new folder under ./runs/)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar; print only a one-line summary")


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier output of nabiya in --out (a folder holding anything else is "
                        "never replaced)")
    parser.add_argument("--no-audio", dest="audio", action="store_false",
                        help="write no WAV files (songs over 20 minutes get none anyway)")


def console_main() -> None:
    """The ``nabiya`` command and ``python -m nabiya``: :func:`main`, then a quick exit.

    The process ends as soon as the command is done, without the 0.3-0.4 s of tearing down
    an interpreter that has imported JAX (see :mod:`nabiya.quick_exit`).
    """
    from nabiya.quick_exit import quick_exit

    quick_exit(main())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 success, 2 bad input, 130 interrupted)."""
    # The model build's QR runs in scipy's OpenBLAS, loaded later by JAX: on a busy 2-core machine
    # its threads spun for 0.2-1 s per call, against 3 ms on one thread (the same bits).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            _refuse_unknown(parser, args, unknown)
        if getattr(args, "handler", None) is None:
            parser.print_help()
            return 0
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            return args.handler(args) or 0
    except NabiyaError as error:
        _print_error(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _print_error("interrupted", prefix="nabiya: ")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `nabiya songs | head`: the reader left; nothing more to say
        _silence_stdout()
        return 0
    except OSError as error:  # a file-system problem no check foresaw (a disk filling up mid-write)
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        _print_error(f"{where}{error.strerror or error}")
        return EXIT_USAGE


def _print_error(message: str, *, prefix: str = "nabiya: error: ") -> None:
    line = " ".join(message.split())  # one line, whatever the message holds
    try:
        print(f"{prefix}{line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # standard error closed: the exit status still says it
        pass


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _refuse_unknown(parser: argparse.ArgumentParser, args, unknown: list[str]) -> None:
    """An unknown option: name it, suggest a close one, and point at the command's own help."""
    import difflib

    command = getattr(args, "command", None)
    prog = f"nabiya {command}" if command else "nabiya"
    known = []
    for action in parser._subparsers._group_actions if parser._subparsers and command else []:  # noqa: SLF001
        sub = action.choices.get(command)
        if sub is not None:
            known = [option for sub_action in sub._actions for option in sub_action.option_strings]  # noqa: SLF001
    first = unknown[0].split("=", 1)[0]
    close = difflib.get_close_matches(first, known, n=1, cutoff=0.75) if first.startswith("-") else []
    hint = f" (did you mean {close[0]}?)" if close and close[0] != first else ""
    raise NabiyaError(f"unrecognized arguments: {' '.join(unknown)}{hint} (see '{prog} --help')")


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
    if source and len(source) < 4096 and "\0" not in source:
        from nabiya.fileio import refuse_special_file

        refuse_special_file(source, what="song file")  # a FIFO would block the reader forever
    if tune is not None and not source:
        raise NabiyaError("--tune picks a tune of an ABC file given with --song")
    from nabiya.music.sources import song_from_source

    song = song_from_source(source, tune=tune, repeats=repeats)
    if tune is None:
        _say_which_tune(source, song)
    return song


def _say_which_tune(source: str | None, song) -> None:
    """For an ABC file of many tunes read without --tune: one line saying which tune was taken."""
    reference = song.meta.get("tune") if isinstance(song.meta, dict) else None
    if reference is None or not source or not source.lower().endswith(".abc") or len(source) > 4096:
        return
    from nabiya.fileio import read_regular_file
    from nabiya.music.limits import MAX_FILE_BYTES

    try:
        text = read_regular_file(source, limit=MAX_FILE_BYTES).decode("utf-8", "replace")
    except NabiyaError:
        return
    count = sum(1 for line in text.splitlines() if line.startswith("X:"))
    if count > 1:
        title = f" {song.title!r}" if song.title else ""
        print(f"nabiya: reading tune X:{reference}{title}, the first of {count} in {source} "
              "(choose another with --tune)", file=sys.stderr)  # fmt: skip


def _check_outputs(args, *, out: Path | None, save: str | None = None) -> None:
    """Every output location, checked before any work (nothing is created)."""
    from nabiya.fileio import check_output_file, check_output_folder

    if out is not None:
        check_output_folder(out, force=args.force, what="output folder")
    if save:
        check_output_file(save, what="model file")
        if out is not None and os.path.abspath(save) == os.path.abspath(out):
            raise NabiyaError(f"--save {save!r} and --out name the same place: give them different names")


def _say_size(out: Path, songs, audio: bool) -> None:
    """Before a large output is written: say how large, and how to make it smaller."""
    from nabiya.report import LARGE_OUTPUT_BYTES, estimate_audio_bytes

    total = estimate_audio_bytes(songs, audio=audio)
    if total > LARGE_OUTPUT_BYTES:
        print(f"nabiya: {out} will hold about {total / 1e6:,.0f} MB of WAV files ({len(songs)} of them); "
              "--no-audio leaves them out", file=sys.stderr)  # fmt: skip


def _cmd_run(args) -> int:
    from nabiya.config import preset
    from nabiya.experiment import default_run_folder, prepare, run

    config = preset(args.preset).replace(epochs=args.epochs, seed=args.seed)
    if args.features:
        import dataclasses

        config = config.replace(model=dataclasses.replace(config.model, features=args.features))
    if args.backprop_windows is not None:
        config.replace(backprop_windows=args.backprop_windows)  # a bad value fails here, before the song loads
    out = Path(args.out) if args.out else default_run_folder(args.preset)
    _check_outputs(args, out=out, save=args.save)
    song = _load_song(args.song, args.tune, args.repeats)
    prepare(config, song)  # a song too short for the window fails here, before JAX loads
    _say_size(out, [song] * 3, args.audio)
    _use_compilation_cache()
    result = run(config, song=song, epochs=args.epochs, out=out, force=args.force, audio=args.audio,
                 progress=not args.quiet, backprop_windows=args.backprop_windows)  # fmt: skip
    if args.save:
        result.save(args.save)
    from nabiya.display import print_run

    print_run(result, out=out, saved=args.save, quiet=args.quiet)
    return 0


def _cmd_compare(args) -> int:
    from nabiya.config import preset
    from nabiya.experiment import compare, default_run_folder, prepare

    configs = [preset(name).replace(epochs=args.epochs, seed=args.seed) for name in PRESETS]
    out = Path(args.out) if args.out else default_run_folder("compare")
    _check_outputs(args, out=out)
    song = _load_song(args.song, args.tune, args.repeats)
    for config in configs:
        prepare(config, song)
    _say_size(out, [song] * 3 * len(configs), args.audio)
    _use_compilation_cache()
    comparison = compare(song=song, epochs=args.epochs, seed=args.seed, out=out, force=args.force, audio=args.audio,
                         progress=not args.quiet)  # fmt: skip
    from nabiya.display import print_comparison

    print_comparison(comparison, out=out, quiet=args.quiet)
    return 0


def _cmd_songs(args) -> int:
    from nabiya.display import print_songs

    print_songs()
    return 0


def _cmd_convert(args) -> int:
    from nabiya.fileio import check_output_file
    from nabiya.music.formats import write_song

    check_output_file(args.output, what="file")
    song = _load_song(args.input, args.tune, args.repeats)
    write_song(song, args.output)
    print(f"wrote {args.output} ({len(song)} notes)")
    return 0


def _cmd_generate(args) -> int:
    if _names_corpus_model(args.model):
        return _cmd_generate_tunes(args)
    _refuse_corpus_generate_options(args)
    from nabiya.config import MAX_SEED, check_whole_number

    out = Path(args.out) if args.out else None
    _check_outputs(args, out=out)
    check_whole_number(args.seed, "the seed", minimum=0, maximum=MAX_SEED)
    if args.length is not None:
        check_whole_number(args.length, "--length", minimum=1, maximum=MAX_GENERATE_NOTES)
    _use_compilation_cache()
    from nabiya.checkpoint import load_model
    from nabiya.generation import continue_song, make_strategy

    strategy = make_strategy(args.strategy, temperature=args.temperature, top_k=args.top_k,
                             top_p=args.top_p, beam_width=args.beam_width)
    saved = load_model(args.model)
    primer = _load_primer(args.primer, args.repeats) if args.primer else None
    notes = continue_song(saved, primer, steps=args.length, strategy=strategy, seed=args.seed)
    print(" ".join(note.code for note in notes))
    if out is not None:
        from nabiya.music.song import Song
        from nabiya.report import write_songs

        given = tuple(primer) if primer is not None else saved.song.notes[: saved.window]
        title = f"{saved.song.title if saved.song else 'melody'} (generated)"
        melody = (saved.song or Song(())).with_notes(given + tuple(notes), title=title)
        written = write_songs({"generated": melody}, out, force=args.force, audio=args.audio)
        print(f"wrote {out}: {', '.join(path.name for path in written)}", file=sys.stderr)
    return 0


# --- nabiya analyze -------------------------------------------------------------------------

_ANALYZE_EXAMPLES = """\
examples:
  nabiya analyze                         # 나비야: 4 ambiguous windows of 4 notes, at most 92%
  nabiya analyze twinkle --window 3
  nabiya analyze tunes.abc --tune 3 --out analysis/      # ceiling.png and analysis.json
  nabiya analyze "c4 d4 e4 c4 c4 d4 e4 g4" --out ceiling.png
  nabiya analyze nabiya --json | python -m json.tool
"""


def _add_analyze_command(commands) -> None:
    analyze = commands.add_parser(
        "analyze",
        help="why a window is not enough: ambiguous windows, the best a window-only model can do, memory needed",
        description="For each window size: the windows the song continues in more than one way (where, and with "
        "what), the highest accuracy any model that sees only the window can reach, and how far back a stateful "
        "model must remember to tell every place apart; and the smallest window that makes every continuation "
        "unique. Prints a table; --json prints JSON instead; --out draws the ceiling against the window size.",
        epilog=_ANALYZE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    analyze.add_argument("song", nargs="?", metavar="SONG",
                         help="a built-in song (see 'nabiya songs'), a file (.abc, .musicxml, .mxl, .mid, .txt of "
                         "note codes) or note codes in quotes (default: 나비야)")
    analyze.add_argument("--tune", metavar="X|TITLE", help="which tune of a multi-tune ABC file (X: number or title)")
    _add_repeats_option(analyze)
    analyze.add_argument("--window", type=_positive_int, default=4, metavar="N",
                         help="the window whose ambiguous windows are listed and marked (default: 4, the tutorial's)")
    analyze.add_argument("--max-window", type=_positive_int, metavar="N",
                         help="the largest window in the table (default: the smallest unique window, at least 8)")
    analyze.add_argument("--json", action="store_true", help="print the analysis as JSON instead of the table")
    analyze.add_argument("--out", metavar="FILE.png|DIR",
                         help="draw the ceiling against the window size into FILE.png, or write ceiling.png and "
                         "analysis.json into the folder DIR")
    analyze.set_defaults(handler=_cmd_analyze)


def _cmd_analyze(args) -> int:
    import json

    from nabiya.experiment import analyze

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix and out.suffix.lower() != ".png":
        raise NabiyaError(f"--out {args.out}: the plot is written as PNG: give a .png file or a folder")
    if args.tune is not None and not args.song:
        raise NabiyaError("--tune picks a tune of an ABC file given as SONG")
    song = _load_song(args.song, args.tune, args.repeats)
    analysis = analyze(song, max_window=args.max_window)
    if args.max_window is None and analysis.max_window < args.window < len(song):
        analysis = analyze(song, max_window=args.window)  # show the chosen window in the table
    report = analysis.at(args.window)  # a window too long for the song fails here
    data = {**analysis.to_json(), "presets": {name: a.to_json() for name, a in analysis.assess_presets().items()}}
    if out is not None:
        from nabiya.plots import save_figure

        figure = analysis.plot(window=report.window)
        if out.suffix:
            save_figure(figure, out)
        else:
            from nabiya.fileio import staged_folder

            with staged_folder(out) as staging:
                save_figure(figure, staging / "ceiling.png")
                (staging / "analysis.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                                                        encoding="utf-8")
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        from nabiya.display import print_analysis

        print_analysis(analysis, window=args.window)
        if out is not None:
            print(f"wrote {out}{'' if out.suffix else ': ceiling.png, analysis.json'}", file=sys.stderr)
    return 0


def _load_primer(text: str, repeats: str | None = None):
    """Primer notes from a song file (by extension), a built-in song's name, or note codes."""
    return _load_song(text, None, repeats).notes


# --- nabiya serve: the browser playground (parser and handler in one block) -------------------------

_SERVE_EXAMPLES = """\
examples:
  nabiya serve                          # http://127.0.0.1:8000/ on this machine only
  nabiya serve --port 8080 --open       # another port; open the page in the browser
  nabiya serve --host 0.0.0.0           # the whole network: prints an address with a token
  nabiya serve --workers 2              # two training jobs at once (one process each)
  nabiya serve --models runs/           # offer the corpus models in runs/ for new tunes
"""


def _add_serve_command(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="the playground: train, hear and see models in a web browser",
        description="Start the playground, a web page served from this machine: choose or bring a melody, "
        "see and hear it, train a model with a live loss curve, see and hear its predictions with the wrong "
        "notes marked, and make new music. It needs no internet. On a loopback address (the default) only "
        "this machine can reach it; on any other address every request needs a token, which the printed "
        "address carries.",
        epilog=_SERVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    serve.add_argument("--port", type=_port, default=8000, help="the port (default 8000; 0 picks a free one)")
    serve.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                       help="jobs that may run at once, one process each; more wait in a queue (default 1)")
    serve.add_argument("--token", metavar="TEXT",
                       help="the token to require (default: a random one, and only off loopback)")
    serve.add_argument("--open", action="store_true", help="open the page in the default web browser")
    serve.add_argument("--models", metavar="DIR",
                       help="offer the corpus models in DIR (NAME.safetensors, or run folders NAME/ of 'nabiya "
                       "train') for new tunes, by name; the page can also upload one")
    serve.set_defaults(handler=_cmd_serve)


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, not {value}")
    return value


def _cmd_serve(args) -> int:
    if args.token is not None and not args.token.strip():
        raise NabiyaError("--token must not be empty")
    from nabiya.web.server import serve

    serve(args.host, args.port, workers=args.workers, token=args.token, open_browser=args.open, models=args.models)
# --- nabiya corpus: corpora of many tunes -------------------------------------------------------
# The corpus and token options are shared with the commands that train on a corpus:
# add_corpus_options / add_token_options, then corpus_from_args / token_config_from_args.

_CORPUS_EXAMPLES = """\
examples:
  nabiya corpus info                              # the default corpus: O'Neill's, Ryan's, Aird's, miscFolk
  nabiya corpus info essenFolksong --json         # facts for programs
  nabiya corpus info oneills1850 my_tunes/ extra.abc --min-count 5
  nabiya corpus info tunes.jsonl --no-transpose --augment 2
  nabiya corpus info nosuchbook                   # lists the books music21 ships
"""


def _add_corpus_commands(commands) -> None:
    corpus = commands.add_parser(
        "corpus",
        help="corpora of many tunes: what they hold (nabiya corpus info)",
        description="Corpora are music21's ABC books (oneills1850, ryansMammoth, airdsAirs, miscFolk, "
        "essenFolksong, ...), folders of ABC / MIDI / MusicXML files, multi-tune ABC files and .jsonl files of "
        "notes. Tunes are read once, in parallel, and cached; unreadable ones are skipped and counted.",
        epilog=_CORPUS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = corpus.add_subparsers(dest="corpus_action", metavar="ACTION", parser_class=_Parser)
    info = actions.add_parser(
        "info",
        help="tunes, notes, skips by reason, meters, keys, lengths, split and vocabulary",
        description="Read a corpus (from the cache when it was read before) and print what it holds: tunes and "
        "notes, tunes skipped by reason, meters, modes and keys, lengths, pitches and durations, the "
        "train/validation/test split, and the token vocabulary a model would get (rare tokens counted).",
        epilog=_CORPUS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_corpus_options(info, positional=True)
    add_token_options(info)
    info.add_argument("--json", action="store_true", help="print the facts as JSON on standard output")
    info.add_argument("--quiet", "-q", action="store_true", help="no progress bar while reading tunes")
    info.set_defaults(handler=_cmd_corpus_info)
    corpus.set_defaults(handler=lambda args: corpus.print_help() or 0)


def add_corpus_options(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """The options that name a corpus and how it is read and split (``--corpus`` unless ``positional``)."""
    what = ("music21 books (default: oneills1850 ryansMammoth airdsAirs miscFolk), folders, ABC files or .jsonl "
            "files of notes")  # fmt: skip
    if positional:
        parser.add_argument("corpus", nargs="*", metavar="CORPUS", help=what)
    else:
        parser.add_argument("--corpus", nargs="+", metavar="CORPUS", help=what)
    parser.add_argument("--min-notes", type=_positive_int, default=8, metavar="N",
                        help="skip tunes of fewer notes (default 8)")
    parser.add_argument("--split", type=_split_fractions, default=(0.9, 0.05, 0.05), metavar="TRAIN/VALID/TEST",
                        help="shares of tunes for training, validation and test, e.g. 90/5/5 (the default) or 0.8/0.1/0.1")
    parser.add_argument("--split-seed", type=_int, default=0, metavar="N", help="another seed, another split (default 0)")
    parser.add_argument("--jobs", type=_positive_int, metavar="N", help="processes reading tunes (default: every core)")
    parser.add_argument("--no-cache", action="store_true", help="read every tune again, and cache nothing")


def add_token_options(parser: argparse.ArgumentParser) -> None:
    """The options of :class:`nabiya.tokens.TokenConfig`."""
    parser.add_argument("--no-transpose", action="store_true",
                        help="keep each tune's pitches and make its tonic a token (default: move every tune to C)")
    parser.add_argument("--augment", type=_augment_shifts, default=(), metavar="N|S,S,...",
                        help="also train on each training tune moved 1..N semitones up and down (or by the given "
                        "shifts: --augment=-2,2); needs --no-transpose")
    parser.add_argument("--min-count", type=_positive_int, default=3, metavar="K",
                        help="notes seen fewer than K times in training are rare (default 3)")
    parser.add_argument("--rare", choices=("unk", "drop"), default="unk",
                        help="rare notes become <unk> (default) or their tunes are dropped")


def corpus_from_args(args, *, progress: bool = True):
    """The corpus the options name (see :func:`add_corpus_options`)."""
    from nabiya.music.corpus import load_corpus

    return load_corpus(args.corpus or None, min_notes=args.min_notes, cache=not args.no_cache, jobs=args.jobs,
                       progress=progress)  # fmt: skip


def token_config_from_args(args):
    from nabiya.tokens import TokenConfig

    return TokenConfig(transpose=not args.no_transpose, augment=args.augment, min_count=args.min_count,
                       rare=args.rare)  # fmt: skip


def _split_fractions(text: str) -> tuple[float, float, float]:
    import re

    parts = [part for part in re.split(r"[/,:]", text) if part.strip()]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 3 or any(value < 0 for value in values) or values[0] <= 0:
        raise argparse.ArgumentTypeError(f"expected three shares such as 90/5/5, not {text!r}")
    total = sum(values)
    if abs(total - 100) < 1e-6:
        values = [value / 100 for value in values]
    elif abs(total - 1) > 1e-6:
        raise argparse.ArgumentTypeError(f"the shares {text!r} add up to {total:g}, not 100 (or 1)")
    return tuple(values)  # type: ignore[return-value]


def _augment_shifts(text: str) -> tuple[int, ...]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N (1..11) or semitone shifts such as -2,2, not {text!r}") from None
    if len(values) == 1 and "," not in text:
        count = values[0]
        if not 1 <= count <= 11:
            raise argparse.ArgumentTypeError(f"N is 1 to 11 semitones, not {count}")
        return tuple(shift for shift in range(-count, count + 1) if shift)
    return tuple(values)


def _cmd_corpus_info(args) -> int:
    from nabiya.music.corpus import corpus_info

    tokens = token_config_from_args(args)  # checked before any tune is read
    corpus = corpus_from_args(args, progress=not (args.quiet or args.json))
    info = corpus_info(corpus, tokens=tokens, split=corpus.split(args.split, seed=args.split_seed))
    if args.json:
        import json

        print(json.dumps(info.to_json(), indent=1, ensure_ascii=False))
        return 0
    from nabiya.display import print_corpus_info

    print_corpus_info(info)
    return 0


# --- nabiya sweep: many seeds at once (parser and handler in one block) ------------------------------

_SWEEP_EXAMPLES = """\
examples:
  nabiya sweep stateful2 --seeds 0-31            # 32 seeds of the tutorial's best model on 나비야
  nabiya sweep stateful --seeds 0-15 --epochs 500
  nabiya sweep mlp --seeds 0-7 --windows 2-8     # the MLP's ceiling as the window grows
  nabiya sweep stateful2 --seeds 0,5,9 --song ode_to_joy --out runs/sweep
  nabiya sweep --seeds 0-7 --song reel.abc --backprop-windows 1   # the tutorial's setting on a long-memory song
"""


def _add_sweep_command(commands) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="train a preset for many seeds at once and show the spread",
        description="Train one preset on one song for many seeds (and window sizes) at once, in one compiled "
        "program, and print the distribution: training accuracy, the first epoch at 100%, the full-song "
        "matches (median, min, max) and how many seeds replay the whole song. Each seed's numbers are those "
        "of 'nabiya run' with that seed. Writes sweep.json and sweep.png (one dot per seed).",
        epilog=_SWEEP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("preset", nargs="?", default="stateful2", metavar="PRESET",
                       help=f"one of {', '.join(PRESETS)} (default stateful2)")
    sweep.add_argument("--seeds", default="0-31", metavar="LIST",
                       help="seeds as ranges and lists: 0-31, 0,5,9, 0-3,10 (default 0-31)")
    sweep.add_argument("--windows", metavar="LIST",
                       help="window sizes to train, as ranges and lists: 2-8 (default: the preset's 4)")
    sweep.add_argument("--workers", type=_positive_int, metavar="N",
                       help="threads to split the seeds over (default: one per CPU core)")
    _add_song_options(sweep)
    sweep.add_argument("--epochs", type=_int, metavar="N", help="training epochs (default: 2000, the tutorial's)")
    sweep.add_argument("--backprop-windows", type=_int, metavar="K",
                       help="windows per Adam step for a stateful preset, as in 'nabiya run' (default: chosen "
                       "from the song as run chooses; 1: the tutorial's one window)")
    sweep.add_argument("--out", metavar="DIR", help="the sweep's folder (default: a new folder under ./runs/)")
    sweep.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=_cmd_sweep)


def _cmd_sweep(args) -> int:
    _use_compilation_cache()
    from nabiya.config import preset
    from nabiya.experiment import default_run_folder
    from nabiya.sweeps import parse_numbers, sweep

    seeds = parse_numbers(args.seeds, what="--seeds")
    windows = parse_numbers(args.windows, what="--windows") if args.windows else None
    config = preset(args.preset).replace(epochs=args.epochs)
    if args.backprop_windows is not None:
        config.replace(backprop_windows=args.backprop_windows)  # a bad value fails here, before the song loads
    song = _load_song(args.song, args.tune, args.repeats)
    out = Path(args.out) if args.out else default_run_folder(f"sweep-{args.preset}")
    result = sweep(config, seeds=seeds, windows=windows, song=song, epochs=args.epochs, out=out,
                   workers=args.workers, progress=not args.quiet, backprop_windows=args.backprop_windows)  # fmt: skip
    from nabiya.display import print_sweep

    print_sweep(result, out=out)
    return 0


# --- nabiya train / evaluate, and generate's corpus branch: models learned from a corpus ---------------

_TRAIN_EXAMPLES = """\
presets:
{presets}

examples:
  nabiya train                                   # folk-lstm on the default corpus (4,187 dance tunes)
  nabiya train --preset folk-transformer --minutes 15
  nabiya train --corpus miscFolk my_tunes/ --steps 500 --out runs/mine
  nabiya train --size 256 --batch-size 16 --dropout 0.2 --seed 3
  nabiya train --resume runs/mine                # continue a run stopped by Ctrl-C, --minutes or a kill

several processes (data-parallel; the same command in each, but --process-id; process 0 writes the run):
  nabiya train --out runs/big --coordinator 10.0.0.1:4321 --num-processes 2 --process-id 0   # on 10.0.0.1
  nabiya train --out runs/big --coordinator 10.0.0.1:4321 --num-processes 2 --process-id 1   # on another machine
  srun --ntasks 8 nabiya train --distributed --out runs/big     # Slurm or mpirun: JAX reads their variables
"""

_EVALUATE_EXAMPLES = """\
examples:
  nabiya evaluate runs/mine                      # the run's best model on its test tunes, with the baselines
  nabiya evaluate runs/mine/model.safetensors --samples 50
  nabiya evaluate runs/mine --json > scores.json
  nabiya evaluate runs/mine --corpus miscFolk    # another corpus, split with the model's shares and seed
"""


def _add_corpus_model_commands(commands) -> None:
    from nabiya.corpus_config import CORPUS_PRESET_DESCRIPTIONS, CORPUS_PRESETS, DEFAULT_CORPUS_PRESET

    presets = "\n".join(f"  {name:<17} {CORPUS_PRESET_DESCRIPTIONS[name]}" for name in CORPUS_PRESETS)
    train = commands.add_parser(
        "train",
        help="train a model on a corpus of tunes (folk-lstm, folk-transformer)",
        description="Train a corpus preset on the training tunes of a corpus, validating on its validation tunes. "
        "Writes a run folder: config.json, split.json, vocabulary.json, checkpoint.safetensors (every few hundred "
        "steps; a killed run resumes from it), model.safetensors (the best model, for 'nabiya generate' and "
        "'nabiya evaluate'), curves.png / curves.json (train and validation NLL, the n-gram's line) and "
        "summary.json. Ctrl-C stops after writing a checkpoint.",
        epilog=_TRAIN_EXAMPLES.format(presets=presets),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--preset", choices=tuple(CORPUS_PRESETS), metavar="PRESET",
                       help=f"one of {', '.join(CORPUS_PRESETS)} (default: {DEFAULT_CORPUS_PRESET})")
    add_corpus_options(train)
    add_token_options(train)
    # Only what is given counts: a resumed run compares the options given with its own config.
    train.set_defaults(min_notes=None, split=None, split_seed=None, augment=None, min_count=None, rare=None,
                       no_transpose=None)
    train.add_argument("--steps", type=_positive_int, metavar="N", help="optimizer steps (default: the preset's)")
    train.add_argument("--minutes", type=_positive_float, metavar="M",
                       help="stop with a checkpoint after M minutes of wall time (resume later with --resume)")
    train.add_argument("--out", metavar="DIR", help="the run folder, new or empty (default: a new folder under ./runs/)")
    train.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN from its last checkpoint")
    settings = train.add_argument_group("model and training settings (default: the preset's)")
    settings.add_argument("--size", type=_positive_int, metavar="N", help="LSTM units per layer, or transformer width")
    settings.add_argument("--layers", type=_positive_int, metavar="N", help="LSTM layers, or transformer blocks")
    settings.add_argument("--embedding-size", type=_positive_int, metavar="N", help="the LSTM's token embedding width")
    settings.add_argument("--heads", type=_positive_int, metavar="N", help="the transformer's attention heads")
    settings.add_argument("--context", type=_positive_int, metavar="N", help="the transformer's context in tokens")
    settings.add_argument("--dropout", type=_float, metavar="P", help="dropout rate, 0 to below 1")
    settings.add_argument("--batch-size", type=_positive_int, metavar="B", help="tunes side by side per step")
    settings.add_argument("--length", type=_positive_int, metavar="T",
                          help="tokens per row: the LSTM's truncation length, the transformer's row")
    settings.add_argument("--learning-rate", type=_float, metavar="LR", help="the peak learning rate (AdamW)")
    settings.add_argument("--warmup-steps", type=_int, metavar="N", help="steps of linear warm-up")
    settings.add_argument("--weight-decay", type=_float, metavar="W", help="AdamW's weight decay")
    settings.add_argument("--clip-norm", type=_float, metavar="C", help="clip the global gradient norm to C")
    settings.add_argument("--steps-per-block", type=_positive_int, metavar="N", help="steps compiled into one call")
    settings.add_argument("--validate-every", type=_positive_int, metavar="N", help="steps between validations")
    settings.add_argument("--checkpoint-every", type=_positive_int, metavar="N", help="steps between checkpoints")
    settings.add_argument("--patience", type=_int, metavar="N",
                          help="stop after N validations without a new best (0: never)")
    settings.add_argument("--seed", type=_int, metavar="N", help="the seed of initialisation, dropout and order")
    train.add_argument("--quiet", "-q", action="store_true", help="no progress bar; print only the summary line")
    _add_distributed_options(train)
    train.set_defaults(handler=_cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a corpus model on its test tunes against the n-gram and unigram baselines",
        description="Score a model trained by 'nabiya train' on the test tunes of its corpus (the split rebuilt "
        "from the model file): NLL per note in nats and bits, perplexity, accuracy, and the same per pitch and "
        "per duration, for the model, the Kneser-Ney n-gram (fitted on the same training tunes and tokens, its "
        "order chosen on validation) and the unigram, on exactly the same positions. With --samples N it also "
        "makes N new tunes and reports how many end by themselves, how many last whole bars, and the longest "
        "run of notes each copies from a training tune. Writes evaluation.json into the run folder.",
        epilog=_EVALUATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("model", metavar="MODEL", help="a run folder of 'nabiya train', or its model.safetensors")
    evaluate.add_argument("--corpus", nargs="+", metavar="CORPUS",
                          help="the corpus to split and test on (default: the one the model was trained on)")
    evaluate.add_argument("--part", choices=("test", "valid"), default="test", help="which part (default: test)")
    evaluate.add_argument("--samples", type=_int, default=0, metavar="N", help="also make N new tunes and report on them")
    evaluate.add_argument("--seed", type=_int, default=0, metavar="N", help="the seed of those tunes (default 0)")
    evaluate.add_argument("--out", metavar="DIR", help="write evaluation.json here (default: the model's run folder)")
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON on standard output")
    evaluate.add_argument("--quiet", "-q", action="store_true", help="no progress bar while tunes are read")
    evaluate.set_defaults(handler=_cmd_evaluate)


def _positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


_TRAIN_SETTINGS = ("size", "layers", "embedding_size", "heads", "context", "dropout", "batch_size", "length",
                   "learning_rate", "warmup_steps", "weight_decay", "clip_norm", "steps_per_block", "validate_every",
                   "checkpoint_every", "patience", "seed", "min_notes", "split", "split_seed", "min_count", "rare")


def _add_distributed_options(train) -> None:
    group = train.add_argument_group(
        "several processes (JAX's distributed runtime; see the README's 'Training on several machines')")
    group.add_argument("--coordinator", metavar="HOST:PORT",
                       help="process 0's address and a free port, the same in every process")
    group.add_argument("--num-processes", type=_positive_int, metavar="N", help="the processes of the run")
    group.add_argument("--process-id", type=_int, metavar="I", help="this process's number, 0 to N-1 (0 writes)")
    group.add_argument("--distributed", action="store_true",
                       help="take the coordinator, processes and id from the cluster launcher (Slurm, Open MPI, "
                       "Kubernetes; JAX detects them)")
    group.add_argument("--peer-timeout", type=_positive_int, metavar="SECONDS",
                       help="wait this long for every process to join, and for a silent one before the run stops "
                       "(default 120)")


def _launch_from_args(args):
    """The :class:`nabiya.distributed.Launch` the options ask for, or None for a run of one process."""
    from nabiya.distributed import DEFAULT_TIMEOUT_SECONDS, Launch

    given = [args.coordinator, args.num_processes, args.process_id]
    if not args.distributed and all(value is None for value in given):
        if args.peer_timeout is not None:
            raise NabiyaError("--peer-timeout is for a run of several processes (--coordinator or --distributed)")
        return None
    if args.distributed and any(value is not None for value in given):
        raise NabiyaError("--distributed takes the coordinator, processes and id from the cluster launcher: "
                          "leave out --coordinator, --num-processes and --process-id (or --distributed)")  # fmt: skip
    timeout = args.peer_timeout if args.peer_timeout is not None else DEFAULT_TIMEOUT_SECONDS
    return Launch(args.coordinator, args.num_processes, args.process_id, timeout).validate()


def _cmd_train(args) -> int:
    launch = _launch_from_args(args)
    if launch is None:
        return _train(args)
    from nabiya import distributed

    distributed.join(launch)  # before any JAX computation
    try:
        status = _train(args, writer=distributed.current_cluster().is_writer)
    except BaseException as error:
        distributed.leave(error)  # a lost process: the line, and exit at once
        raise
    distributed.leave()
    return status


def _train(args, *, writer: bool = True) -> int:
    _use_compilation_cache()
    from nabiya.corpus_train import train

    settings = {name: getattr(args, name) for name in _TRAIN_SETTINGS if getattr(args, name) is not None}
    if args.no_transpose:
        settings["transpose"] = False
    if args.augment:
        settings["augment"] = args.augment
    result = train(args.corpus, preset=args.preset, out=args.out, resume=args.resume, steps=args.steps,
                   minutes=args.minutes, progress=not args.quiet, **settings)
    if not writer:  # process 0 of a distributed run speaks for it
        return 0
    corpus = result.corpus
    skipped = ", ".join(f"{count} {reason}" for reason, count in corpus["skipped"].items())
    split = "/".join(str(corpus["split"][part]) for part in ("train", "valid", "test"))
    print(f"corpus: {corpus['tunes']:,} tunes (train/valid/test {split})"
          + (f"; skipped {sum(corpus['skipped'].values())} ({skipped})" if skipped else ""), file=sys.stderr)
    if result.stopped in ("interrupted", "time limit"):
        why = "interrupted" if result.stopped == "interrupted" else "stopped at the time limit"
        print(f"nabiya: {why} at step {result.steps} of {result.config.train.steps} (checkpoint written); "
              f"resume with: {result.resume_command}", file=sys.stderr)
    best = f"{result.best_valid_nll:.4f}" if result.best_valid_nll is not None else "—"
    ngram = (f" (the {result.ngram_order}-gram's: {result.ngram_valid_nll:.4f})"
             if result.ngram_valid_nll is not None else "")
    print(f"{result.config.preset}: {result.steps} steps, {result.stopped}; best validation NLL {best} nats/note "
          f"at step {result.best_step}{ngram}; {result.seconds / 60:.1f} min, {result.notes_per_second:,.0f} notes/s "
          f"→ {result.folder}")
    return 0


def _cmd_evaluate(args) -> int:
    import json

    _use_compilation_cache()
    from nabiya.corpus_eval import evaluate

    if args.samples < 0:
        raise NabiyaError(f"--samples must be at least 0, not {args.samples}")
    report = evaluate(args.model, args.corpus, part=args.part, samples=args.samples, seed=args.seed, out=args.out,
                      progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
        return 0
    from nabiya.display import print_corpus_evaluation

    print_corpus_evaluation(report)
    return 0


def _add_corpus_generate_options(generate) -> None:
    group = generate.add_argument_group("corpus models (trained by 'nabiya train'): whole new tunes")
    group.add_argument("--count", type=_positive_int, metavar="N", help="how many tunes, made in one batched call (default 1)")
    group.add_argument("--meter", metavar="M", help="the tunes' meter, e.g. 6/8 (default: drawn from the corpus)")
    group.add_argument("--key", metavar="K", help="the tunes' key, e.g. D, 'E minor', 'A dorian' (default: drawn)")
    generate.epilog += ("\n  nabiya generate runs/folk --count 8 --meter 6/8 --key D --seed 1   # new jigs in D"
                        "\n  nabiya generate runs/folk/model.safetensors --top-p 0.95 --out runs/tunes")


def _names_corpus_model(path: str) -> bool:
    from nabiya.corpus_eval import is_corpus_model

    return is_corpus_model(path)


def _refuse_corpus_generate_options(args) -> None:
    for option in ("count", "meter", "key"):
        if getattr(args, option) is not None:
            raise NabiyaError(f"--{option} is for corpus models (trained by 'nabiya train'); {args.model!r} is not one")


def _cmd_generate_tunes(args) -> int:
    from nabiya.experiment import default_run_folder

    out = Path(args.out) if args.out else default_run_folder("tunes")
    _check_outputs(args, out=out)
    _use_compilation_cache()
    from nabiya.corpus_eval import generate_tunes, resolve_model
    from nabiya.generation import Temperature, make_strategy

    saved = resolve_model(args.model)
    given = any(value is not None for value in (args.strategy, args.temperature, args.top_k, args.top_p, args.beam_width))
    strategy = (make_strategy(args.strategy, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                              beam_width=args.beam_width) if given else Temperature(1.0))  # fmt: skip
    primer = _load_primer(args.primer, args.repeats) if args.primer else None
    tunes = generate_tunes(saved, count=args.count or 1, meter=args.meter, key=args.key, primer=primer,
                           strategy=strategy, seed=args.seed, max_tokens=args.length or 512)  # fmt: skip
    written = tunes.write(out, force=args.force, audio=args.audio)
    for number in range(len(tunes)):
        print(tunes.abc(number).rstrip("\n") + "\n")
    ended = int(tunes.ended.sum())
    print(f"wrote {len(tunes)} tune{'s' if len(tunes) != 1 else ''} ({ended} ended by themselves) to {out}: "
          f"{len(written)} files (.abc .mid .wav .musicxml .svg)", file=sys.stderr)
    return 0


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nabiya")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
