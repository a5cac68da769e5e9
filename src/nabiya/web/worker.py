"""What a playground worker process does: train a model or continue a melody, through the public API.

A worker is a long-lived process started by :mod:`nabiya.web.jobs` with the ``spawn``
method. It pays JAX's import (and each shape's compilation) once, then runs one task
after another: it receives a task (a dict of plain values) on one pipe and sends back
``("progress", job, {...})``, then ``("done", job, result)`` or ``("failed", job, message)``
on another. Everything a task writes goes into the job's folder, which the server chose.

The task's inputs arrive as plain values (preset name, numbers, the song as note-code
text), never as objects, so nothing but data crosses between the processes.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import traceback
from pathlib import Path
from typing import Callable

from nabiya.errors import NabiyaError

WRONG_COLOR = "#d62728"  # the piano rolls' red
PRIMER_COLOR = "#8a8a8a"  # given notes, grey, so that generated ones stand out
SONG_SUFFIXES = (".mid", ".wav", ".abc", ".musicxml", ".svg", ".txt")
MODEL_FILE = "model.nabiya"
CORPUS_MODEL_FILE = "model.safetensors"

Report = Callable[[dict], None]


def worker_main(tasks, events) -> None:
    """The worker's loop: run tasks from ``tasks`` until ``None`` or the server goes away.

    Args:
        tasks: the receiving end of a pipe of task dicts (each with ``job`` and ``kind``).
        events: the sending end of a pipe for ``(kind, job, payload)`` tuples.
    """
    # Ctrl+C in a terminal reaches the whole process group; the server stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()
    events.send(("ready", None, None))
    while True:
        try:
            task = tasks.recv()
        except (EOFError, OSError):  # the server has gone
            return
        if task is None:
            return
        job = task["job"]
        try:
            result = run_task(task, lambda progress, job=job: events.send(("progress", job, progress)))
        except NabiyaError as error:
            events.send(("failed", job, str(error)))
        except Exception as error:  # a bug, not bad input: keep the worker, tell the page, log the trace
            traceback.print_exc(file=sys.stderr)
            events.send(("failed", job, f"something went wrong in the worker ({type(error).__name__}: {error})"))
        else:
            events.send(("done", job, result))


def warm_up() -> None:
    """Import what every job needs (JAX, music21, verovio, matplotlib) before the first job asks.

    A second or more each: paid once per worker, while it waits, rather than by the
    first person to press Train.
    """
    import matplotlib

    matplotlib.use("Agg")  # no window: the plots of a run folder are files
    import matplotlib.pyplot  # noqa: F401
    import music21  # noqa: F401
    import verovio  # noqa: F401

    import nabiya.checkpoint  # noqa: F401  (JAX, Equinox and the models)
    import nabiya.experiment  # noqa: F401


def run_task(task: dict, report: Report) -> dict:
    """Run one task (its ``kind`` is a key of :data:`TASKS`) and return its result for the page."""
    run = TASKS.get(task["kind"])
    if run is None:
        raise NabiyaError(f"unknown task {task['kind']!r}")
    return run(task, report)


def train(task: dict, report: Report) -> dict:
    """Train a preset on a song; write the run folder and the model file into ``task['folder']``.

    Task keys: ``song`` (note-code text), ``preset``, ``epochs``, ``seed``,
    ``epochs_per_block`` (how often progress is reported), ``folder``.

    Returns:
        ``summary`` (accuracy, loss and accuracy per epoch, the training choice for a song
        beyond one window per step, …), and for ``one_step`` and
        ``full_song``: matches, total, the wrong notes' numbers and a piano roll.
    """
    import nabiya
    from nabiya.music.formats import song_from_codes_text, write_song
    from nabiya.music.scores import song_to_musicxml, song_to_svg
    from nabiya.fileio import write_bytes, write_text
    from nabiya.web.songs import piano_roll

    song = song_from_codes_text(task["song"], source="the song")
    config = nabiya.preset(task["preset"])
    config = config.replace(train=dataclasses.replace(config.train, epochs_per_block=task["epochs_per_block"]))

    def progress(epochs_done: int, epochs_total: int, loss: float, accuracy: float) -> None:
        report({"epochs_done": epochs_done, "epochs_total": epochs_total, "loss": loss, "accuracy": accuracy})

    # The epochs asked for on the page are the epochs trained, also for a song that needs more memory
    # (nabiya.run then trains through several windows per step and says why: training_choice).
    result = nabiya.run(config, song=song, epochs=task["epochs"], seed=task["seed"], progress=progress)
    folder = Path(task["folder"])
    result.write(folder)
    result.save(folder / MODEL_FILE)
    predictions = {}
    for which in ("one_step", "full_song"):
        prediction = getattr(result, which)
        melody = result.prediction_song(which)
        # Note numbers are 1-based and count the primer, as the CLI's messages do.
        wrong = [len(prediction.primer) + index for index in prediction.wrong]
        colors = {index: WRONG_COLOR for index in wrong}
        write_text(folder / f"{which}.svg", song_to_svg(melody, colors=colors))
        write_bytes(folder / f"{which}.musicxml", song_to_musicxml(melody, colors=colors))
        write_song(melody, folder / f"{which}.txt")
        predictions[which] = {
            **prediction.to_json(),
            "wrong_notes": [index + 1 for index in wrong],
            "first_mismatch": prediction.describe_first_mismatch(),
            "roll": piano_roll(result.song, melody, wrong=wrong),
        }
    write_song(result.song, folder / "song.txt")
    summary = result.summary()
    return {
        "summary": {
            **{name: summary[name]
               for name in ("preset", "seed", "epochs", "accuracy", "epochs_to_100_percent",
                            "final_accuracy_below_earlier_100_percent", "loss_history", "accuracy_history")},
            "train_seconds": result.train_seconds,  # printed, never in summary.json (a run's files are reproducible)
            "training_choice": summary.get("training_choice"),  # how it trained a song beyond one window, and why
        },
        "song": {"title": result.song.title, "notes": len(result.song)},
        "predictions": predictions,
    }


def generate(task: dict, report: Report | None = None) -> dict:
    """Continue a melody with a trained model; write it in every format into ``task['folder']``.

    Task keys: ``model`` (the model file a training job wrote), ``primer`` (note codes or
    None for the training song's first window), ``steps`` (None: the song's length),
    ``strategy``, ``temperature``, ``top_k``, ``top_p``, ``beam_width``, ``seed``, ``folder``.

    Returns:
        ``title``, ``codes`` (primer and new notes), ``primer`` (how many were given) and a
        piano roll.
    """
    import nabiya
    from nabiya.fileio import write_bytes, write_text
    from nabiya.music.formats import write_song
    from nabiya.music.note import parse_codes
    from nabiya.music.scores import song_to_musicxml, song_to_svg
    from nabiya.music.song import Song
    from nabiya.web.songs import piano_roll

    try:
        saved = nabiya.load_model(task["model"])
    except NabiyaError:
        raise NabiyaError(
            "the trained model is no longer kept (finished jobs are removed after a while): train again"
        ) from None
    strategy = nabiya.make_strategy(
        task["strategy"], temperature=task.get("temperature"), top_k=task.get("top_k"),
        top_p=task.get("top_p"), beam_width=task.get("beam_width"),
    )  # fmt: skip
    primer = parse_codes(task["primer"], source="the primer") if task.get("primer") else None
    notes = nabiya.continue_song(saved, primer, steps=task.get("steps"), strategy=strategy, seed=task["seed"])
    given = tuple(primer) if primer is not None else saved.song.notes[: saved.window]
    title = f"{saved.song.title if saved.song and saved.song.title else 'a melody'}: new music by " \
            f"{saved.config.preset} ({strategy_words(strategy, task['seed'])})"
    if saved.song is not None:
        melody = saved.song.with_notes(given + tuple(notes), title=title)
    else:
        melody = Song(given + tuple(notes), title=title)
    folder = Path(task["folder"])
    colors = {index: PRIMER_COLOR for index in range(len(given))}
    for suffix in SONG_SUFFIXES:
        path = folder / f"generated{suffix}"
        if suffix == ".svg":
            write_text(path, song_to_svg(melody, colors=colors))
        elif suffix == ".musicxml":
            write_bytes(path, song_to_musicxml(melody, colors=colors))
        else:
            write_song(melody, path)
    return {
        "title": melody.title,
        "codes": melody.codes,
        "primer": len(given),
        "roll": piano_roll(None, melody, given=len(given)),
    }


def strategy_words(strategy, seed: int) -> str:
    """How a continuation was made, for its title: ``'top-k 3, seed 1'``, ``'greedy'``.

    Example:
        >>> from nabiya.generation import TopP
        >>> strategy_words(TopP(p=0.8, temperature=1.5), 2)
        'top-p 0.8, temperature 1.5, seed 2'
    """
    name = type(strategy).__name__
    if name == "Greedy":
        return "greedy"
    if name == "Beam":
        return f"beam search, width {strategy.width}"
    words = {"TopK": f"top-k {getattr(strategy, 'k', '')}", "TopP": f"top-p {getattr(strategy, 'p', '')}"}.get(name)
    temperature = f"temperature {strategy.temperature:g}"
    if words is None:
        words = temperature
    elif strategy.temperature != 1:
        words += f", {temperature}"
    return f"{words}, seed {seed}"


def check_model(task: dict, report: Report | None = None) -> dict:
    """Read an uploaded corpus model with the safe reader; keep it as the job's ``model.safetensors``.

    Task keys: ``upload`` (the file the server staged the bytes in, under a name it made),
    ``name`` (the file's name as the person gave it: the messages name it), ``folder``.

    Returns:
        The model's facts for the page (:func:`nabiya.web.tunes.model_facts`).

    Raises:
        NabiyaError: the reader's one-line message (``cannot load model 'NAME': …``), for any
            file that is not a whole, unchanged corpus model.
    """
    import os

    from nabiya.checkpoint import read_metadata
    from nabiya.web.tunes import model_facts

    folder = Path(task["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CORPUS_MODEL_FILE
    os.replace(task["upload"], path)  # both the server's names; the job's folder owns the file from now on
    try:
        _load_corpus_model(path, task["name"])
        return model_facts(read_metadata(path), Path(task["name"]).stem)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def tunes(task: dict, report: Report | None = None) -> dict:
    """Whole new tunes from a corpus model (:func:`nabiya.generate_tunes`), each written in every format.

    Task keys: ``model`` (its file: one the server offers, or one a ``model`` job kept),
    ``name`` (its name, for messages), ``count``, ``meter`` and ``key`` (None: drawn from the
    corpus), ``strategy``, ``temperature``, ``top_k``, ``top_p``, ``max_tokens``, ``seed``,
    ``folder``.

    Returns:
        ``tunes``: for each, ``stem`` (its files are ``STEM.abc``, ``.mid``, ``.musicxml``,
        ``.wav``, ``.svg``), ``title``, ``meter``, ``key``, ``notes``, ``ended`` (chose to end
        before the length limit) and ``abc`` (its text); and ``how`` (the strategy in words).
    """
    import nabiya

    saved = _load_corpus_model(task["model"], task["name"])
    strategy = nabiya.make_strategy(task["strategy"], temperature=task.get("temperature"), top_k=task.get("top_k"),
                                    top_p=task.get("top_p"))  # fmt: skip
    made = nabiya.generate_tunes(saved, count=task["count"], meter=task.get("meter"), key=task.get("key"),
                                 strategy=strategy, seed=task["seed"], max_tokens=task["max_tokens"])  # fmt: skip
    written = made.write(Path(task["folder"]))
    stems = sorted({path.stem for path in written})
    rows = []
    for number, (stem, row) in enumerate(zip(stems, made.to_json())):
        rows.append({"stem": stem, **{name: row[name] for name in ("title", "meter", "key", "notes", "ended")},
                     "abc": made.abc(number)})  # fmt: skip
    return {"model": task["name"], "tunes": rows, "how": strategy_words(strategy, task["seed"])}


def _load_corpus_model(path, name: str):
    """:func:`nabiya.load_corpus_model`, its messages naming the model as the page does, never a server path."""
    import nabiya

    try:
        return nabiya.load_corpus_model(path)
    except NabiyaError as error:
        message = str(error).replace(repr(str(path)), repr(name)).replace(str(path), name)
        raise NabiyaError(message) from None


# What a worker can do: kind -> function(task, report) -> result (plain JSON data). A new kind of
# job adds its function here and, where the page asks for it, its request check to
# nabiya.web.app.JOB_KINDS.
TASKS: dict[str, Callable[[dict, Report], dict]] = {"train": train, "generate": generate, "model": check_model,
                                                    "tunes": tunes}
