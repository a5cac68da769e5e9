"""Songs and plots written by helper processes, so that a run waits for none of it.

A run folder's files are made by music21, verovio and matplotlib: Python code that holds the
interpreter's lock (the GIL) nearly all the time. Written by a thread of the training process,
they compete with it for the lock while it imports JAX, builds the model and traces its
programs, and after training they can only be written one after another. So
``nabiya.run(out=...)`` starts helper processes (``python -m nabiya.rendering``) when the run
starts: they import those libraries and write the song's own files on the other core while the
model trains, and after training each writes a share of the predictions' files and plots at the
same time. Nothing a helper writes depends on it being a helper: :func:`write_jobs` runs the same
jobs in the calling process, byte for byte the same files (tested).

A job is a small JSON object, one of::

    {"song": SONG, "path": ".../one_step.mid"}          # a song, in the format its extension names
    {"roll": [TRUTH, PREDICTION], "given": 4, "title": "...", "path": ".../one_step_roll.png"}
    {"loss": {"stateful2": [2.3, ...]}, "title": "...", "path": ".../loss.png"}
    {"warm": true}                                        # import the libraries, draw a first figure

where a song is :func:`nabiya.music.corpus_reading.song_to_json`'s object. A request is one
JSON line ``{"jobs": [...]}`` on a helper's standard input, its reply one line on its standard
output, ``{"ok": true}`` or ``{"error": "..."}``: no pickle. A helper that cannot start or dies
leaves its jobs to the calling process, which writes them itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from nabiya.errors import NabiyaError


def write_jobs(jobs: Sequence[dict]) -> None:
    """Do each job here, in order (see the module docstring).

    Raises:
        NabiyaError: as :func:`nabiya.music.formats.write_song` and the plots raise.

    Example:
        >>> from nabiya.music.corpus_reading import song_to_json
        >>> from nabiya.music.song import Song
        >>> write_jobs([{"song": song_to_json(Song.from_codes("c4 d4")), "path": "out/cd.mid"}])  # doctest: +SKIP
    """
    for job in jobs:
        _do(job)


def _do(job: dict) -> None:
    from nabiya.music.corpus_reading import song_from_json

    if "song" in job:
        from nabiya.music.formats import write_song

        write_song(song_from_json(job["song"]), job["path"])
    elif "roll" in job:
        from nabiya.plots import plot_piano_roll, save_figure

        truth, prediction = (song_from_json(song) for song in job["roll"])
        save_figure(plot_piano_roll(truth, prediction, given=job["given"], title=job["title"]), job["path"])
    elif "loss" in job:
        from nabiya.plots import plot_loss, save_figure

        save_figure(plot_loss(job["loss"], title=job["title"]), job["path"])
    elif "warm" in job:
        _warm_up()
    else:
        raise NabiyaError(f"unknown rendering job {sorted(job)}")


def _warm_up() -> None:
    """Import what writing needs and use it once: matplotlib's first figure loads its fonts (~0.5 s)."""
    import io

    from nabiya.music.formats import song_to_bytes
    from nabiya.music.song import Song
    from nabiya.plots import _pyplot

    plt = _pyplot()
    figure = plt.figure(figsize=(1, 1))
    figure.savefig(io.BytesIO(), format="png")
    plt.close(figure)
    tiny = Song.from_codes("c4 d4")
    for suffix in (".musicxml", ".svg"):
        song_to_bytes(tiny, suffix)


class Helpers:
    """Helper processes that write jobs, each request answered in order; a context manager.

    Args:
        count: how many processes to start (each imports music21, verovio and matplotlib:
            ~1.5 s of CPU, spent while the caller does other work).

    ``send(index, jobs)`` hands jobs to helper ``index`` and returns at once; ``wait()`` waits
    for every request sent so far and raises the first error. Where a helper could not be
    started or has died, its jobs are done in this process instead. Leaving the context (an
    error or Ctrl-C included) stops the helpers first, so that none writes after it.

    Example:
        >>> with Helpers(2) as helpers:                                   # doctest: +SKIP
        ...     helpers.send(0, [{"warm": True}])
        ...     helpers.send(1, jobs)
        ...     helpers.wait()
    """

    def __init__(self, count: int):
        self._processes: list[subprocess.Popen | None] = [_start() for _ in range(count)]
        self._pending: list[list[list[dict]]] = [[] for _ in range(count)]

    def send(self, index: int, jobs: list[dict]) -> None:
        process = self._processes[index]
        if process is not None:
            try:
                process.stdin.write(json.dumps({"jobs": jobs}).encode() + b"\n")
                process.stdin.flush()
            except OSError:  # it died: its jobs are done here when waited for
                process = self._processes[index] = None
        self._pending[index].append(jobs)

    def wait(self) -> None:
        error = None
        for index, pending in enumerate(self._pending):
            while pending:
                jobs = pending.pop(0)
                reply = self._reply(index)
                if reply is None:
                    write_jobs(jobs)  # no helper (any more): here, the same files
                elif "error" in reply and error is None:
                    error = NabiyaError(reply["error"])
        if error is not None:
            raise error

    def _reply(self, index: int) -> dict | None:
        process = self._processes[index]
        if process is None:
            return None
        line = process.stdout.readline()
        try:
            return json.loads(line)
        except ValueError:  # it died (an empty line) or said something else
            self._processes[index] = None
            process.kill()
            return None

    def stop(self) -> None:
        """Stop every helper at once, whatever it is writing (for a caller about to remove it)."""
        self._close(kill=True)

    def __enter__(self) -> "Helpers":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._close(kill=kind is not None)

    def _close(self, *, kill: bool) -> None:
        for index, process in enumerate(self._processes):
            if process is None:
                continue
            self._processes[index] = None
            try:
                if kill:
                    process.kill()
                else:
                    process.stdin.close()  # the end of requests: it leaves
            except OSError:
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass


def _start() -> subprocess.Popen | None:
    """A helper process running this module, or None where one cannot be started."""
    if not sys.executable:
        return None
    # The helper imports the same nabiya as this process, wherever that came from.
    package_root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    environment = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
    try:
        return subprocess.Popen([sys.executable, "-m", "nabiya.rendering"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment)  # fmt: skip
    except OSError:
        return None


def main() -> int:
    """A helper's life: answer each request line on standard input until it closes."""
    import signal
    import warnings

    # Ctrl-C is the caller's to handle: it stops the helpers itself, so none writes after it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    warnings.simplefilter("ignore")  # the caller warns about what it asks for (e.g. audio too long)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    for line in requests:
        try:
            write_jobs(json.loads(line)["jobs"])
            reply = {"ok": True}
        except NabiyaError as error:
            reply = {"error": str(error)}
        except Exception as error:  # a bug must not hang the caller: it says what happened
            reply = {"error": f"writing failed: {type(error).__name__}: {error}"}
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()
    return 0


def _die_with_parent() -> None:
    """On Linux, be killed when the caller is (even by SIGKILL): none may write into a folder it left behind."""
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):  # not Linux: it leaves when its standard input closes
        return
    if os.getppid() != parent:  # the caller died before the line above
        os._exit(0)


if __name__ == "__main__":
    from nabiya.quick_exit import quick_exit

    quick_exit(main())  # every reply is flushed: leave without tearing music21 and matplotlib down
