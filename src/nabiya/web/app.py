"""The playground's web app (Starlette): the page, its static files, and a small JSON API over nabiya.

====================================  ========================================================
route                                 what
====================================  ========================================================
``GET /``                             the page (``static/index.html``)
``GET /static/…``                     its script, style sheet and icon, from the package
``GET /api/info``                     presets, built-in songs, strategies, limits, features
``POST /api/songs``                   JSON ``{"builtin": name}``, ``{"codes": text}`` or
                                      ``{"abc": text, "tune": x}``: the song as the page shows it
``POST /api/songs/upload?name=F``     the bytes of a file named F (``.abc``, ``.mid``, …)
``GET /api/songs/{id}.{ext}``         a song shown before, as ``.svg`` ``.wav`` ``.mid`` ``.abc``
                                      ``.musicxml`` or ``.txt``
``GET /api/songs/{id}/analysis``      its analysis at ``?window=4`` (:mod:`nabiya.web.analysis`)
``GET /api/songs/{id}/analysis.svg``  its sheet music, the ambiguous windows marked
                                      (``?window=4``; ``&mark=N``: only the N-th)
``POST /api/models/upload?name=F``    the bytes of a corpus model file: a job that reads it with
                                      the safe reader in a worker (:mod:`nabiya.web.tunes`)
``POST /api/jobs``                    JSON ``{"kind": "train", ...}``, ``{"kind": "generate", ...}``
                                      or ``{"kind": "tunes", "model": name or upload job, ...}``
``GET /api/jobs/{id}``                a job's state; ``…/events``: the same, as server-sent events
``DELETE /api/jobs/{id}``             cancel it
``GET /api/jobs/{id}/files/{name}``   one of its files; ``…/files.zip``: all of them
====================================  ========================================================

Bad input of any kind gets ``{"error": "<one line>"}`` with a 4xx status: the message the
CLI prints after ``nabiya: error:``. Nothing from a request becomes a path: songs are kept
in memory by a hash of their text, and a job's file is found by comparing the name asked
for with the names of the files the job wrote.

Heavy work never runs in the event loop: reading and engraving songs runs in a thread
(:data:`RENDER_THREADS` of them); training and generation in worker processes
(:mod:`nabiya.web.jobs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import json
import secrets
import warnings
import zipfile
from collections import OrderedDict
from functools import partial
from importlib import resources
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from nabiya.errors import NabiyaError
from nabiya.web import fields, songs, tunes
from nabiya.web.jobs import FINISHED, JobQueue, QueueFull
from nabiya.web.worker import CORPUS_MODEL_FILE, MODEL_FILE

# music21 keeps global state and is not known to be thread-safe: songs are read and engraved
# one at a time, in a thread, so that the event loop stays free.
RENDER_THREADS = 1
MAX_JSON_BYTES = 400_000
MAX_EPOCHS = 20_000
MAX_TRAIN_NOTES = 2_000
MAX_GENERATE_NOTES = 1_000
PROGRESS_UPDATES = 50  # progress reports per training run, about
KEEPALIVE_SECONDS = 15.0
SONG_CACHE = 256  # songs kept in memory for their downloads
# Optional panels: a panel shows when the Python API has the function that feeds it
# (name -> attribute of ``nabiya``). The page asks /api/info and shows what is there.
# A new panel (the analysis and the new tunes are two) adds its entry here, its routes
# or job kinds (JOB_KINDS below, worker.TASKS), a <section data-feature> in index.html
# and a PANELS entry in app.js; nothing else changes.
OPTIONAL_FEATURES = {"analysis": "analyze", "tunes": "generate_tunes"}
MEDIA_TYPES = {
    ".svg": "image/svg+xml",
    ".wav": "audio/wav",
    ".mid": "audio/midi",
    ".abc": "text/vnd.abc; charset=utf-8",
    ".musicxml": "application/vnd.recordare.musicxml+xml",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".json": "application/json",
    ".nabiya": "application/octet-stream",
    ".midi": "audio/midi",
}
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class Problem(Exception):
    """A request the app refuses, with an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_app(
    *,
    jobs: JobQueue | None = None,
    token: str | None = None,
    allowed_hosts: set[str] | None = None,
    cookie_name: str = "nabiya-token",
    models: "tunes.ModelFolder | dict[str, dict] | None" = None,
) -> Starlette:
    """The playground as an ASGI app.

    Args:
        jobs: the job queue (a new one with one worker when None); started and stopped
            with the app.
        token: when given, every request must carry it: ``?token=`` once (the page then
            keeps it in a cookie), the cookie, or an ``X-Nabiya-Token`` header.
        allowed_hosts: host names the ``Host`` header may name (any when None): a server on
            loopback allows only loopback names, so that a web page elsewhere cannot reach
            it through a DNS name that points at this machine.
        cookie_name: the cookie that keeps the token.
        models: the corpus models the server offers: a :class:`nabiya.web.tunes.ModelFolder`
            (``nabiya serve --models DIR``: looked at again on every request), or a fixed
            ``{name: {"path", "facts"}}`` as :func:`nabiya.web.tunes.find_models` gives it.

    Example:
        >>> app = create_app()                                   # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)       # doctest: +SKIP
    """
    jobs = jobs if jobs is not None else JobQueue(workers=1)
    state = _AppState(jobs, models or {})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await jobs.start()
        try:
            yield
        finally:
            await jobs.stop()

    routes = [
        Route("/", state.page),
        Route("/api/info", state.info),
        Route("/api/songs", state.song, methods=["POST"]),
        Route("/api/songs/upload", state.upload, methods=["POST"]),
        Route("/api/songs/{name}", state.song_file),
        Route("/api/songs/{song}/analysis", state.analysis),
        Route("/api/songs/{song}/analysis.svg", state.analysis_score),
        Route("/api/models/upload", state.upload_model, methods=["POST"]),
        Route("/api/jobs", state.submit, methods=["POST"]),
        Route("/api/jobs/{job}", state.job, methods=["GET", "DELETE"]),
        Route("/api/jobs/{job}/events", state.events),
        Route("/api/jobs/{job}/files.zip", state.job_zip),
        Route("/api/jobs/{job}/files/{name}", state.job_file),
        Mount("/static", StaticFiles(packages=[("nabiya.web", "static")]), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={Problem: _problem, NabiyaError: _bad_input})
    app.state.jobs = jobs
    return _Guard(app, token=token, allowed_hosts=allowed_hosts, cookie_name=cookie_name)


async def _problem(request: Request, error: Problem) -> Response:
    return JSONResponse({"error": str(error)}, status_code=error.status)


async def _bad_input(request: Request, error: NabiyaError) -> Response:
    return JSONResponse({"error": str(error)}, status_code=503 if isinstance(error, QueueFull) else 400)


class _AppState:
    """The routes, with the job queue and the songs shown lately."""

    def __init__(self, jobs: JobQueue, models: "tunes.ModelFolder | dict[str, dict]"):
        self.jobs = jobs
        self._models = models  # the corpus models the server offers: a ModelFolder, or {name: {"path", "facts"}}
        self.cleanups: set[asyncio.Task] = set()
        self.songs: OrderedDict[str, Any] = OrderedDict()  # id -> Song, least recently used first
        self.render_slots = asyncio.Semaphore(RENDER_THREADS)

    def offered_models(self) -> dict[str, dict]:
        """The corpus models offered now, by name (a folder is looked at again: see ``tunes.ModelFolder``)."""
        if isinstance(self._models, tunes.ModelFolder):
            try:
                return self._models.models()
            except NabiyaError:  # the folder is gone: none offered, the page goes on
                return {}
        return self._models

    # --- the page ------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        html = resources.files("nabiya.web").joinpath("static", "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"cache-control": "no-cache"})

    async def info(self, request: Request) -> Response:
        from nabiya.config import PRESET_DESCRIPTIONS, PRESETS
        from nabiya.music.songs import describe_songs
        from nabiya.plots import ADAM_SPIKES_NOTE, SPIKE_FACTOR, SPIKE_FLOOR

        return JSONResponse(
            {
                "presets": [
                    {"name": name, "description": PRESET_DESCRIPTIONS.get(name, ""), "epochs": config.train.epochs,
                     "seed": config.seed, "window": config.window, "stateful": config.model.stateful}
                    for name, config in PRESETS.items()
                ],
                "songs": [{"name": row["name"], "title": row["title"]} for row in describe_songs()],
                "strategies": ["greedy", "temperature", "top-k", "top-p", "beam"],
                "upload_extensions": list(songs.UPLOAD_EXTENSIONS),
                "max_upload_bytes": songs.MAX_UPLOAD_BYTES,
                "max_epochs": MAX_EPOCHS,
                "max_generate_notes": MAX_GENERATE_NOTES,
                "workers": self.jobs.max_workers,
                "features": features(),
                "corpus_models": [entry["facts"] for entry in self.offered_models().values()],
                "max_model_upload_bytes": tunes.MAX_MODEL_UPLOAD_BYTES,
                "max_tunes": tunes.MAX_TUNES,
                "max_tune_tokens": tunes.MAX_TUNE_TOKENS,
                "tune_strategies": list(tunes.TUNE_STRATEGIES),
                "adam_spikes": {"note": " ".join(ADAM_SPIKES_NOTE.split()), "factor": SPIKE_FACTOR, "floor": SPIKE_FLOOR},
            }
        )

    # --- songs ----------------------------------------------------------------------------------

    async def song(self, request: Request) -> Response:
        body = await _json_body(request)
        tune = fields.optional_text(body, "tune")
        if "builtin" in body:
            read = partial(songs.builtin_song, fields.text(body, "builtin"))
        elif "codes" in body:
            read = partial(songs.song_from_codes, fields.text(body, "codes"))
        elif "abc" in body:
            read = partial(songs.song_from_abc_text, fields.text(body, "abc"), tune=tune)
        else:
            raise Problem(400, "say which song: builtin, codes or abc")
        abc = body.get("abc") if isinstance(body.get("abc"), str) else None
        return JSONResponse(await self._read_song(read, abc=abc))

    async def upload(self, request: Request) -> Response:
        name = songs.display_name(request.query_params.get("name", ""))
        _require_type(request, "application/octet-stream")
        data = await _read_body(request, songs.MAX_UPLOAD_BYTES, too_large=songs.too_large_message(name))
        tune = request.query_params.get("tune") or None
        abc = data.decode("utf-8", "replace") if name.lower().endswith(".abc") else None
        return JSONResponse(await self._read_song(partial(songs.song_from_upload, data, name, tune=tune), abc=abc))

    async def _read_song(self, read: Callable, *, abc: str | None = None) -> dict:
        """Read a song in a thread (music21 is slow to load and to parse); remember it for downloads.

        For ABC text, the facts also list its tunes, so that a person can choose another.
        """

        def work():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                song = read()
                facts = songs.describe(song)
            facts["warnings"] = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
            facts["tunes"] = songs.abc_tunes(abc) if abc else []
            return song, facts

        song, facts = await self._in_thread(work)
        if not song.notes:
            raise Problem(400, "the song has no notes")
        self.songs[facts["id"]] = song
        self.songs.move_to_end(facts["id"])
        while len(self.songs) > SONG_CACHE:
            self.songs.popitem(last=False)
        return facts

    async def song_file(self, request: Request) -> Response:
        song_id, dot, extension = request.path_params["name"].rpartition(".")
        suffix = f".{extension.lower()}"
        song = self._song(song_id if dot else "")
        if suffix not in songs.DOWNLOAD_SUFFIXES:
            raise Problem(404, f"a song can be downloaded as {', '.join(songs.DOWNLOAD_SUFFIXES)}")
        from nabiya.music.formats import song_to_bytes

        data = await self._in_thread(partial(song_to_bytes, song, suffix))
        return Response(data, media_type=MEDIA_TYPES[suffix], headers=_download_headers(request, song.title, suffix))

    def _song(self, song_id: str):
        song = self.songs.get(song_id)
        if song is None:
            raise Problem(404, "no such song here any more: choose it again")
        return song

    # --- the song analysis (an optional panel) ---------------------------------------------------

    async def analysis(self, request: Request) -> Response:
        """The analysis at ``?window=`` (default 4) as JSON: see :func:`nabiya.web.analysis.analysis_facts`."""
        from nabiya.web.analysis import analysis_facts

        song_id, song, window = self._analysis_request(request)
        url = f"/api/songs/{song_id}/analysis.svg?window={window}"
        facts = await run_in_thread(partial(analysis_facts, song, window, score_url=url))
        return JSONResponse(facts, headers={"cache-control": "private, max-age=3600"})

    async def analysis_score(self, request: Request) -> Response:
        """The sheet music with the ambiguous windows marked (``&mark=N``: only the N-th, 1-based)."""
        from nabiya.web.analysis import marked_score

        _, song, window = self._analysis_request(request)
        mark = fields.whole(dict(request.query_params), "mark", None)
        only = mark - 1 if mark else None
        svg = await self._in_thread(partial(marked_score, song, window, only=only))
        return Response(svg, media_type=MEDIA_TYPES[".svg"], headers={"cache-control": "private, max-age=3600"})

    def _analysis_request(self, request: Request):
        if not features()["analysis"]:
            raise Problem(404, "this nabiya has no song analysis")
        song_id = request.path_params["song"]
        song = self._song(song_id)
        window = fields.whole(dict(request.query_params), "window", 4)
        return song_id, song, window

    async def _in_thread(self, work: Callable):
        import anyio.to_thread

        async with self.render_slots:
            return await anyio.to_thread.run_sync(work)

    # --- jobs -----------------------------------------------------------------------------------

    async def submit(self, request: Request) -> Response:
        body = await _json_body(request)
        kind = body.get("kind")
        queue = JOB_KINDS.get(kind) if isinstance(kind, str) else None
        if queue is None:
            raise Problem(400, f"say what to do: kind {' or '.join(repr(name) for name in JOB_KINDS)}")
        job = await queue(self, body)
        return JSONResponse(self.jobs.state(job), status_code=201)

    async def submit_training(self, body: dict):
        task, epochs, about = await run_in_thread(partial(_train_task, body))
        return self.jobs.submit("train", task, epochs_total=epochs, about=about)

    async def submit_generation(self, body: dict):
        model_job = self._job(fields.text(body, "model"))
        if model_job.kind != "train" or model_job.status != "done":
            raise Problem(400, "generate with a model that has finished training")
        task = _generate_task(body)
        task["model"] = str(model_job.files_folder / MODEL_FILE)
        return self.jobs.submit("generate", task, uses=model_job.id)

    # --- corpus models and new tunes (an optional panel: nabiya.generate_tunes) --------------------

    async def upload_model(self, request: Request) -> Response:
        """Keep the bytes under a name made here; a worker reads them with the safe reader (a ``model`` job)."""
        self._require_tunes()
        name = songs.display_name(request.query_params.get("name", ""))
        if not name.lower().endswith(tunes.MODEL_SUFFIX):
            raise Problem(400, f"{name}: upload a corpus model file ({tunes.MODEL_SUFFIX}, written by 'nabiya train')")
        _require_type(request, "application/octet-stream")
        megabytes = tunes.MAX_MODEL_UPLOAD_BYTES / 1e6
        data = await _read_body(request, tunes.MAX_MODEL_UPLOAD_BYTES,
                                too_large=f"{name}: the file is larger than {megabytes:.0f} MB, the most the "
                                "playground reads")  # fmt: skip
        staged = self.jobs.root / "uploads" / f"{secrets.token_hex(8)}{tunes.MODEL_SUFFIX}"

        def stage() -> None:
            staged.parent.mkdir(exist_ok=True)
            staged.write_bytes(data)

        await run_in_thread(stage)
        try:
            job = self.jobs.submit("model", {"upload": str(staged), "name": name}, about={"name": name})
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        # The worker moves the file into the job's folder; a job cancelled before it ran leaves it here.
        cleanup = asyncio.create_task(self._remove_when_finished(job, staged))
        self.cleanups.add(cleanup)
        cleanup.add_done_callback(self.cleanups.discard)
        return JSONResponse(self.jobs.state(job), status_code=201)

    async def _remove_when_finished(self, job, path) -> None:
        while job.status not in FINISHED and not self.jobs.closed:
            await self.jobs.changed(job, job.version, timeout=60)
        path.unlink(missing_ok=True)

    async def submit_tunes(self, body: dict):
        self._require_tunes()
        name = fields.text(body, "model")
        offered = self.offered_models().get(name)
        if offered is not None:
            path, facts, uses = offered["path"], offered["facts"], None
        else:
            model_job = self._job(name)
            if model_job.kind != "model" or model_job.status != "done":
                raise Problem(400, "make tunes with a corpus model the server offers or one uploaded and read")
            path, facts, uses = model_job.files_folder / CORPUS_MODEL_FILE, model_job.result, model_job.id
        task = tunes.tunes_task(body, facts)
        task["model"] = str(path)
        return self.jobs.submit("tunes", task, uses=uses, about={"model": facts["name"]})

    def _require_tunes(self) -> None:
        if not features()["tunes"]:
            raise Problem(404, "this nabiya makes no tunes from corpus models")

    async def job(self, request: Request) -> Response:
        job = self._job(request.path_params["job"])
        if request.method == "DELETE":
            self.jobs.cancel(job.id)
        return JSONResponse(self.jobs.state(job))

    async def events(self, request: Request) -> Response:
        """The job's state as server-sent events: all of it first, then what changed, until it ends."""
        job = self._job(request.path_params["job"])
        jobs = self.jobs

        async def stream():
            sent = 0
            yield "retry: 2000\n\n"
            while True:
                version = job.version
                state = jobs.state(job, since=sent)
                sent = len(job.progress)
                yield f"event: state\ndata: {json.dumps(state, separators=(',', ':'))}\n\n"
                if job.status in ("done", "failed", "cancelled") or jobs.closed:
                    return
                while not await jobs.changed(job, version, timeout=KEEPALIVE_SECONDS):
                    yield ": keep-alive\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
        )

    async def job_file(self, request: Request) -> Response:
        job = self._job(request.path_params["job"])
        name = request.path_params["name"]
        if name not in job.files:  # the job's own listing: the request's text is compared, never opened
            raise Problem(404, f"job {job.id} has no file {name!r}")
        path = job.files_folder / job.files[job.files.index(name)]
        suffix = path.suffix.lower()
        stem = job.result.get("song", {}).get("title") if job.result else None
        headers = _download_headers(request, f"{stem} {path.stem}" if stem else path.stem, suffix)
        return FileResponse(path, media_type=MEDIA_TYPES.get(suffix, "application/octet-stream"), headers=headers)

    async def job_zip(self, request: Request) -> Response:
        job = self._job(request.path_params["job"])
        if job.status != "done":
            raise Problem(404, "the job has no files (yet)")

        def pack() -> bytes:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for name in job.files:
                    archive.write(job.files_folder / name, f"nabiya-{job.id}/{name}")
            return buffer.getvalue()

        data = await self._in_thread(pack)
        return Response(data, media_type="application/zip",
                        headers={"content-disposition": f'attachment; filename="nabiya-{job.id}.zip"'})

    def _job(self, job_id: str):
        try:
            return self.jobs.get(job_id)
        except NabiyaError as error:
            raise Problem(404, str(error)) from None


def features() -> dict[str, bool]:
    """Which optional panels the Python API can feed: ``{"analysis": True, ...}``."""
    import nabiya

    return {panel: function in nabiya.__all__ for panel, function in OPTIONAL_FEATURES.items()}


async def run_in_thread(work: Callable):
    """Run quick numpy work (checking a request, an analysis) off the event loop."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(work)


# The jobs the page may ask for: kind -> the method that checks the request (bad input never
# waits in the queue) and queues the job; a worker runs it with nabiya.web.worker.TASKS[kind].
JOB_KINDS: dict[str, Callable] = {"train": _AppState.submit_training, "generate": _AppState.submit_generation,
                                  "tunes": _AppState.submit_tunes}


# --- reading requests ---------------------------------------------------------------------------


def _train_task(body: dict) -> tuple[dict, int, dict]:
    """A training task from the page's request, checked here so that bad input never waits in the queue.

    Returns the task, its epochs, and what the page may know of it before it runs: the
    ``expectation`` (what the preset can reach on the song by construction), where the
    analysis exists.
    """
    from nabiya.config import preset
    from nabiya.experiment import prepare
    from nabiya.music.formats import song_from_codes_text

    preset_name = fields.text(body, "preset")
    # The config checks epochs and seed as it does for the CLI (same messages); the page adds a ceiling.
    epochs = fields.whole(body, "epochs", None)
    if epochs is not None and epochs > MAX_EPOCHS:
        raise NabiyaError(f"epochs must be at most {MAX_EPOCHS:,} here, not {epochs:,}")
    config = preset(preset_name).replace(epochs=epochs, seed=fields.whole(body, "seed", None))
    epochs = config.train.epochs
    if not 0 <= config.seed < 2**32:
        raise NabiyaError(f"the seed must be a whole number from 0 to {2**32 - 1}, not {config.seed}")
    seed = config.seed
    song = song_from_codes_text(fields.text(body, "song"), source="the song")
    if len(song) > MAX_TRAIN_NOTES:
        raise NabiyaError(
            f"the song has {len(song)} notes: the playground trains on songs of at most {MAX_TRAIN_NOTES}"
        )
    prepare(config, song)  # a song too short for the window fails here, not in the queue
    task = {
        "preset": preset_name,
        "epochs": epochs,
        "seed": seed,
        "epochs_per_block": max(1, epochs // PROGRESS_UPDATES),
        "song": songs.song_text(song),
    }
    about = {}
    if features()["analysis"]:
        from nabiya.web.analysis import training_expectation

        about["expectation"] = training_expectation(song, config)
    return task, epochs, about


def _generate_task(body: dict) -> dict:
    """A generation task from the page's request; the strategy's options are checked by the worker."""
    from nabiya.music.note import parse_codes

    primer = fields.optional_text(body, "primer")
    if primer:
        primer_codes = [note.code for note in parse_codes(primer, source="the primer")]
    else:
        primer_codes = None
    task = {
        "strategy": fields.optional_text(body, "strategy") or "greedy",
        "primer": " ".join(primer_codes) if primer_codes else None,
        "steps": fields.whole(body, "length", None),
        "seed": fields.whole(body, "seed", 0),
    }
    if task["steps"] is not None and not 1 <= task["steps"] <= MAX_GENERATE_NOTES:
        raise NabiyaError(f"length must be from 1 to {MAX_GENERATE_NOTES:,} notes, not {task['steps']:,}")
    for name, kind in (("temperature", float), ("top_p", float), ("top_k", int), ("beam_width", int)):
        if body.get(name) is not None:
            task[name] = fields.number(body, name, kind)
    return task


async def _json_body(request: Request) -> dict:
    _require_type(request, "application/json")
    data = await _read_body(request, MAX_JSON_BYTES, too_large="the request is too large")
    try:
        body = json.loads(data)
    except ValueError:
        raise Problem(400, "the request is not JSON") from None
    if not isinstance(body, dict):
        raise Problem(400, "the request is not a JSON object")
    return body


def _require_type(request: Request, media_type: str) -> None:
    # A page on another site can post only form-like types without asking first (CORS), so
    # demanding this type keeps other sites from queueing jobs here.
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given != media_type:
        raise Problem(415, f"send {media_type}, not {given or 'nothing'}")


async def _read_body(request: Request, limit: int, *, too_large: str) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise Problem(413, too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def _download_headers(request: Request, title: str, suffix: str) -> dict:
    """Inline for the page's own use; an attachment with a readable name when ``?download`` is asked."""
    if "download" not in request.query_params:
        return {"cache-control": "private, max-age=3600"}
    from urllib.parse import quote

    stem = "".join(ch if ch.isalnum() or ch in " -_()" else "_" for ch in (title or "song")).strip() or "song"
    fallback = "".join(ch if ch.isascii() else "_" for ch in stem)
    disposition = f"attachment; filename=\"{fallback}{suffix}\"; filename*=UTF-8''{quote(stem + suffix)}"
    return {"content-disposition": disposition}


# --- the guard: token, host, security headers ---------------------------------------------------


class _Guard:
    """ASGI middleware: the token (when one is set), the Host header (when hosts are limited),
    and security headers on every response."""

    def __init__(self, app, *, token: str | None, allowed_hosts: set[str] | None, cookie_name: str):
        self.app = app
        self.token = token
        self.allowed_hosts = {host.lower() for host in allowed_hosts} if allowed_hosts is not None else None
        self.cookie_name = cookie_name

    @property
    def state(self):
        return self.app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is None and self.token and request.query_params.get("token") == self.token:
            if request.method == "GET" and request.url.path == "/":
                # Keep the token in a cookie, and take it out of the address bar and history.
                response = RedirectResponse("/", status_code=303)
                response.set_cookie(self.cookie_name, self.token, httponly=True, samesite="strict")
                refusal = response
        if refusal is not None:
            await _with_headers(refusal)(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in _SECURITY_HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        if self.allowed_hosts is not None and _host_name(request.headers.get("host", "")) not in self.allowed_hosts:
            return JSONResponse({"error": "this server answers only to its own address"}, status_code=403)
        if self.token is None:
            return None
        offered = (
            request.query_params.get("token")
            or request.headers.get("x-nabiya-token")
            or request.cookies.get(self.cookie_name)
            or ""
        )
        if secrets.compare_digest(offered.encode(), self.token.encode()):
            return None
        message = "this playground needs its token: open the address that 'nabiya serve' printed (…/?token=…)"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=403)
        return HTMLResponse(f"<!doctype html><title>nabiya</title><p>{message}</p>", status_code=403)


def _with_headers(response: Response) -> Response:
    response.headers.update(_SECURITY_HEADERS)
    return response


def _host_name(host: str) -> str:
    """The name in a Host header, without the port: ``'[::1]:8000'`` -> ``'::1'``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """Whether a host to listen on is this machine only (``127.0.0.1``, ``::1``, ``localhost``).

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
