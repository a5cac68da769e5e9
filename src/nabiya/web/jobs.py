"""The playground's jobs: training and generation run in worker processes, never in the server's event loop.

- **Workers** are long-lived processes started with ``spawn`` (JAX must not be forked once
  imported), at most ``workers`` of them, each when first needed. Each pays JAX's import
  and its compilations once, then runs job after job (:mod:`nabiya.web.worker`).
- **One queue**: jobs wait in order, generation (a moment) before training (a while);
  ``position`` is the number of jobs ahead of one, which the page shows.
- **Cancel** a waiting job and it leaves the queue; cancel a running one and its worker is
  terminated and a fresh one takes its place. A worker that crashes or is killed fails its
  job with a message saying so, and the queue goes on.
- **Bounded**: at most ``max_waiting`` jobs wait; finished jobs are kept ``keep_seconds``
  (and at most ``keep_jobs`` of them), then removed with their folders.

All state lives in the event loop's thread: workers report over pipes the loop watches
(``loop.add_reader``), so nothing is shared between threads and nothing needs a lock.
Watchers (the server's event streams) wait on :meth:`JobQueue.changed`.

Example (inside a running event loop)::

    queue = JobQueue(workers=1)
    await queue.start()
    job = queue.submit("train", {...task...}, epochs_total=200)
    while job.status in ("queued", "running"):
        await queue.changed(job, job.version, timeout=10)
    await queue.stop()
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nabiya.errors import NabiyaError

FINISHED = ("done", "failed", "cancelled")
PRIORITY = {"generate": 0, "model": 0, "tunes": 0, "train": 1}  # lower runs first


class QueueFull(NabiyaError):
    """Too many jobs are waiting: the server is busy."""


@dataclass(eq=False)
class Job:
    """One job and what the page may know of it.

    Attributes:
        id: a random name (16 hex digits), the job's only handle.
        kind: ``'train'`` or ``'generate'``.
        task: what the worker gets (see :mod:`nabiya.web.worker`).
        status: ``'queued'``, ``'running'``, ``'done'``, ``'failed'`` or ``'cancelled'``.
        progress: ``[epochs_done, loss, accuracy]`` after each block of epochs.
        epochs_total: for training, the epochs asked for.
        result: the worker's result when done; ``error``: the message when failed.
        files: the names of the files in :attr:`files_folder` when done.
        uses: the id of the job whose model this one uses (generation), or None.
        about: what the server knew of the job when it was submitted, for the page (for
            training: what the preset can reach on the song by construction).
        version: bumped at every change; see :meth:`JobQueue.changed`.
    """

    id: str
    kind: str
    task: dict
    folder: Path
    epochs_total: int | None = None
    uses: str | None = None
    about: dict = field(default_factory=dict)
    status: str = "queued"
    progress: list = field(default_factory=list)
    result: dict | None = None
    error: str | None = None
    files: tuple[str, ...] = ()
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None
    version: int = 0
    _event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def files_folder(self) -> Path:
        """Where the worker writes the job's files (a folder the server named)."""
        return self.folder / "files"

    def touch(self) -> None:
        """Mark a change: wake every watcher."""
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()


class _Worker:
    """One worker process, its two pipes, and the job it runs (None when idle)."""

    def __init__(self, number: int, context, target: Callable, loop: asyncio.AbstractEventLoop, queue: "JobQueue"):
        task_reader, self.tasks = context.Pipe(duplex=False)
        self.events, event_writer = context.Pipe(duplex=False)
        self.process = context.Process(
            target=target, args=(task_reader, event_writer), name=f"nabiya-worker-{number}", daemon=True
        )
        self.process.start()
        task_reader.close()  # the child's ends: only the child holds them now, so a dead child reads as EOF
        event_writer.close()
        self.job: Job | None = None
        self.loop = loop
        self.queue = queue
        loop.add_reader(self.events.fileno(), self._readable)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _readable(self) -> None:
        try:
            message = self.events.recv()
        except (EOFError, OSError):
            self.queue._worker_died(self)
            return
        self.queue._message(self, message)

    def detach(self) -> None:
        """Stop listening and close the server's ends of the pipes."""
        try:
            self.loop.remove_reader(self.events.fileno())
        except (ValueError, OSError):
            pass
        self.events.close()
        self.tasks.close()

    def stop(self) -> "asyncio.Future[int | None]":
        """Terminate the process (it may be in the middle of a job); the future gives its exit code."""
        self.detach()
        if self.process.is_alive():
            self.process.terminate()
        return self.loop.run_in_executor(None, _reap, self.process)


def _reap(process, grace_seconds: float = 5.0) -> int | None:
    """Wait for a process to end (killing it after a grace period) and give its exit code."""
    process.join(grace_seconds)
    if process.is_alive():
        process.kill()
        process.join()
    return process.exitcode


def describe_exit(code: int | None) -> str:
    """A person's words for a process's exit code: ``'killed by SIGKILL'``, ``'exit status 1'``.

    Example:
        >>> describe_exit(-9), describe_exit(3)
        ('killed by SIGKILL', 'exit status 3')
    """
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class JobQueue:
    """Jobs waiting, running and finished, and the worker processes that run them.

    Args:
        root: the folder for the jobs' files (a new temporary folder, removed at
            :meth:`stop`, when None).
        workers: how many jobs may run at once (one worker process each).
        keep_seconds: how long a finished job and its files are kept.
        keep_jobs: at most this many finished jobs are kept (the oldest go first).
        max_waiting: at most this many jobs may wait; more raise :class:`QueueFull`.
        target: the worker processes' main function (see :func:`nabiya.web.worker.worker_main`).
        prestart: start one worker at :meth:`start`, so that its imports are done before
            the first job comes (otherwise workers start when first needed).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        workers: int = 1,
        keep_seconds: float = 3600.0,
        keep_jobs: int = 100,
        max_waiting: int = 100,
        target: Callable | None = None,
        prestart: bool = False,
    ):
        if workers < 1:
            raise NabiyaError(f"workers must be at least 1, not {workers}")
        from nabiya.web.worker import worker_main

        self.max_workers = workers
        self.keep_seconds = keep_seconds
        self.keep_jobs = keep_jobs
        self.max_waiting = max_waiting
        self.root = Path(root) if root is not None else None
        self._owns_root = root is None
        self._target = target or worker_main
        self.prestart = prestart
        self._context = multiprocessing.get_context("spawn")
        self._jobs: dict[str, Job] = {}
        self._waiting: list[Job] = []
        self._workers: list[_Worker] = []
        self._numbers = itertools.count(1)
        self._sequence = itertools.count()
        self._order: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task | None = None
        self._reaping: set[asyncio.Future] = set()
        self.closed = False

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind to the running event loop and start the sweeper; workers start when first needed."""
        self._loop = asyncio.get_running_loop()
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="nabiya-serve-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._sweeper = asyncio.create_task(self._sweep_forever())
        if self.prestart:
            self._workers.append(self._new_worker())

    async def stop(self) -> None:
        """Stop every worker, end every watch, and remove the jobs' folder if it was made here."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        exits = [worker.stop() for worker in self._workers]  # a worker holds nothing worth a graceful end
        self._workers.clear()
        await asyncio.gather(*exits, *self._reaping, return_exceptions=True)
        for job in self._jobs.values():
            job.touch()
        if self._owns_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- jobs --------------------------------------------------------------------------------

    def submit(self, kind: str, task: dict, *, epochs_total: int | None = None, uses: str | None = None,
               about: dict | None = None) -> Job:
        """Queue a job; it runs when a worker is free. ``task`` gets ``job`` and ``folder`` added.

        ``about`` is shown with the job's state as it is (plain JSON data).

        Raises:
            QueueFull: when ``max_waiting`` jobs are waiting already.
        """
        if self.closed or self._loop is None:
            raise NabiyaError("the server is not running")
        self.sweep()
        if len(self._waiting) >= self.max_waiting:
            raise QueueFull(f"the server is busy: {len(self._waiting)} jobs are waiting; try again in a minute")
        job_id = secrets.token_hex(8)
        folder = self.root / job_id
        job = Job(job_id, kind, {**task, "job": job_id, "kind": kind}, folder, epochs_total=epochs_total, uses=uses,
                  about=dict(about or {}))
        job.task["folder"] = str(job.files_folder)
        folder.mkdir()
        self._jobs[job_id] = job
        self._order[job_id] = next(self._sequence)
        self._waiting.append(job)
        self._waiting.sort(key=lambda waiting: (PRIORITY.get(waiting.kind, 9), self._order[waiting.id]))
        self._touch_waiting()
        self._dispatch()
        return job

    def get(self, job_id: str) -> Job:
        """The job of that id; NabiyaError if there is none (never was, or removed)."""
        job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise NabiyaError("no such job: it may have finished a while ago and been removed")
        return job

    def position(self, job: Job) -> int | None:
        """How many jobs are ahead of a waiting job (0: it runs next); None once it runs."""
        try:
            return self._waiting.index(job)
        except ValueError:
            return None

    def cancel(self, job_id: str) -> Job:
        """Cancel a job: out of the queue if waiting; its worker terminated if running."""
        job = self.get(job_id)
        if job.status == "queued":
            self._waiting.remove(job)
            self._finish(job, "cancelled")
            self._touch_waiting()
        elif job.status == "running":
            worker = next((w for w in self._workers if w.job is job), None)
            self._finish(job, "cancelled")
            if worker is not None:
                self._retire(worker)
            self._dispatch()
        return job

    def state(self, job: Job, *, since: int = 0) -> dict:
        """What the page may know of a job, as JSON data; ``progress`` from index ``since`` on."""
        state = {
            "id": job.id,
            "kind": job.kind,
            "status": job.status,
            "position": self.position(job),
            "running": sum(1 for worker in self._workers if worker.job is not None),
            "workers": self.max_workers,
            "epochs_total": job.epochs_total,
            "since": since,
            "progress": job.progress[since:],
        }
        if job.status == "done":
            state["result"] = job.result
            state["files"] = list(job.files)
        if job.error is not None:
            state["error"] = job.error
        if job.uses is not None:
            state["uses"] = job.uses
        if job.about:
            state["about"] = job.about
        return state

    async def changed(self, job: Job, version: int, *, timeout: float) -> bool:
        """Wait until ``job.version`` differs from ``version`` (True) or ``timeout`` seconds pass (False)."""
        if job.version != version or self.closed:
            return True
        try:
            await asyncio.wait_for(job._event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (for a person, or a test, to look at)."""
        return [worker.pid for worker in self._workers if worker.pid is not None]

    def running_pid(self, job: Job) -> int | None:
        """The process id of the worker running ``job``, or None."""
        return next((worker.pid for worker in self._workers if worker.job is job), None)

    # --- removing finished jobs ---------------------------------------------------------------

    def sweep(self, now: float | None = None) -> list[str]:
        """Remove finished jobs older than ``keep_seconds`` and all but the newest ``keep_jobs``.

        A job whose model a waiting or running job uses is kept until that one finishes.
        Returns the ids removed.
        """
        now = time.monotonic() if now is None else now
        in_use = {job.uses for job in self._jobs.values() if job.status not in FINISHED and job.uses}
        finished = sorted(
            (job for job in self._jobs.values() if job.status in FINISHED and job.id not in in_use),
            key=lambda job: job.finished,
        )
        excess = max(0, len(finished) - self.keep_jobs)
        removed = []
        for rank, job in enumerate(finished):
            if rank < excess or now - job.finished >= self.keep_seconds:
                del self._jobs[job.id]
                self._order.pop(job.id, None)
                shutil.rmtree(job.folder, ignore_errors=True)
                job.touch()
                removed.append(job.id)
        return removed

    async def _sweep_forever(self) -> None:
        interval = max(0.05, min(60.0, self.keep_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            self.sweep()

    # --- workers ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start waiting jobs on idle workers, starting workers up to the limit."""
        while self._waiting and not self.closed:
            worker = next((w for w in self._workers if w.job is None), None)
            if worker is None:
                if len(self._workers) >= self.max_workers:
                    return
                worker = self._new_worker()
                self._workers.append(worker)
            job = self._waiting.pop(0)
            try:
                worker.tasks.send(job.task)
            except (OSError, ValueError):  # the worker died just now: retire it, try again
                self._waiting.insert(0, job)
                self._retire(worker)
                continue
            worker.job = job
            job.status = "running"
            job.touch()
            self._touch_waiting()

    def _new_worker(self) -> _Worker:
        return _Worker(next(self._numbers), self._context, self._target, self._loop, self)

    def _message(self, worker: _Worker, message: tuple) -> None:
        kind, job_id, payload = message
        job = worker.job
        if job is None or job.id != job_id or job.status != "running":
            return  # "ready", or news of a job cancelled meanwhile
        if kind == "progress":
            job.progress.append([payload["epochs_done"], payload["loss"], payload["accuracy"]])
            job.touch()
            return
        worker.job = None
        if kind == "done":
            job.result = payload
            folder = job.files_folder
            names = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
            # Hidden files are bookkeeping (a run folder's .nabiya-output.json), not downloads.
            job.files = tuple(name for name in names if not name.startswith("."))
            self._finish(job, "done")
        else:
            job.error = str(payload)
            self._finish(job, "failed")
        self._dispatch()

    def _worker_died(self, worker: _Worker) -> None:
        job = worker.job
        self._retire(worker, on_exit=lambda code: self._fail_after_crash(job, code) if job is not None else None)
        self._dispatch()

    def _fail_after_crash(self, job: Job, code: int | None) -> None:
        if job.status == "running":
            job.error = (
                f"the worker process stopped unexpectedly ({describe_exit(code)}); the server goes on: try again"
            )
            self._finish(job, "failed")

    def _retire(self, worker: _Worker, on_exit: Callable[[int | None], None] | None = None) -> None:
        """Take a worker out of service and terminate it; a fresh one starts when needed."""
        if worker in self._workers:
            self._workers.remove(worker)
        worker.job = None
        reaped = worker.stop()
        self._reaping.add(reaped)

        def done(future: asyncio.Future) -> None:
            self._reaping.discard(future)
            if on_exit is not None and not future.cancelled():
                on_exit(future.result() if future.exception() is None else None)

        reaped.add_done_callback(done)

    def _finish(self, job: Job, status: str) -> None:
        job.status = status
        job.finished = time.monotonic()
        job.touch()

    def _touch_waiting(self) -> None:
        for job in self._waiting:
            job.touch()
