"""The playground's job queue: worker processes, queueing, cancelling, crashes, removal, many watchers.

Most tests give the queue a light stand-in worker (:func:`stand_in_worker`, below: no JAX, it
sleeps and reports) so that what is tested is the queue; the last tests run the real worker.
"""

import asyncio
import json
import os
import signal
import socket
import statistics
import threading
import time
import warnings
import zipfile
import io

import pytest

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from nabiya.web.jobs import JobQueue, QueueFull, describe_exit  # noqa: E402
from web_jobs_waiting import wait_for_job as _wait  # noqa: E402


def stand_in_worker(tasks, events):
    """A worker for tests: per task, ``steps`` progress reports ``seconds`` apart, then done (or failed)."""
    from pathlib import Path

    events.send(("ready", None, None))
    while True:
        try:
            task = tasks.recv()
        except EOFError:
            return
        if task is None:
            return
        steps, seconds = task.get("steps", task.get("epochs", 3)), task.get("seconds", 0.05)
        for step in range(1, steps + 1):
            time.sleep(seconds)
            events.send(("progress", task["job"], {"epochs_done": step, "epochs_total": steps, "loss": 1.0 / step,
                                                  "accuracy": step / steps}))
        if task.get("fail"):
            events.send(("failed", task["job"], "the stand-in failed on purpose"))
            continue
        folder = Path(task["folder"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "out.txt").write_text(f"made by {os.getpid()}")
        events.send(("done", task["job"], {"pid": os.getpid()}))


def run(scenario):
    """Run an async test scenario to its end (no pytest plugin needed)."""
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


async def until(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.01)


def finished(job):
    return job.status in ("done", "failed", "cancelled")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_jobs_wait_in_order_run_in_workers_and_finish(tmp_path):
    async def scenario():
        jobs = JobQueue(tmp_path, workers=1, target=stand_in_worker)
        await jobs.start()
        try:
            first = jobs.submit("train", {"steps": 10})
            second = jobs.submit("train", {"steps": 2})
            third = jobs.submit("train", {"steps": 2})
            generation = jobs.submit("generate", {"steps": 1})
            assert first.status == "running" and jobs.position(first) is None
            # Generation takes a moment, so it waits ahead of the training jobs.
            assert [jobs.position(job) for job in (generation, second, third)] == [0, 1, 2]
            assert jobs.state(third)["position"] == 2
            await until(lambda: finished(third))
            assert [job.status for job in (first, second, third, generation)] == ["done"] * 4
            assert [step for step, _, _ in first.progress] == list(range(1, 11))
            assert first.finished < generation.finished < second.finished < third.finished
            assert first.files == ("out.txt",) and (first.files_folder / "out.txt").exists()
            # One long-lived worker ran them all, in its own process.
            pids = {job.result["pid"] for job in (first, second, third, generation)}
            assert len(pids) == 1 and pids.pop() != os.getpid()
        finally:
            await jobs.stop()

    run(scenario)


def test_no_more_than_the_bound_run_at_once(tmp_path):
    async def scenario():
        jobs = JobQueue(tmp_path, workers=2, target=stand_in_worker)
        await jobs.start()
        try:
            submitted = [jobs.submit("train", {"steps": 4}) for _ in range(5)]
            most = 0
            while not all(finished(job) for job in submitted):
                most = max(most, sum(job.status == "running" for job in submitted))
                await asyncio.sleep(0.005)
            assert most == 2 and len(jobs.worker_pids) == 2
            assert all(job.status == "done" for job in submitted)
        finally:
            await jobs.stop()

    run(scenario)


def test_cancel_a_waiting_job_and_a_running_one(tmp_path):
    async def scenario():
        jobs = JobQueue(tmp_path, workers=1, target=stand_in_worker)
        await jobs.start()
        try:
            running = jobs.submit("train", {"steps": 1000, "seconds": 0.01})
            waiting = jobs.submit("train", {"steps": 1})
            last = jobs.submit("train", {"steps": 1})
            assert jobs.position(last) == 1
            jobs.cancel(waiting.id)
            assert waiting.status == "cancelled" and jobs.position(last) == 0
            await until(lambda: len(running.progress) >= 3)
            pid = jobs.running_pid(running)
            jobs.cancel(running.id)
            assert running.status == "cancelled"
            await until(lambda: not alive(pid))  # its worker was terminated ...
            await until(lambda: finished(last))  # ... and a fresh one ran the next job
            assert last.status == "done" and last.result["pid"] != pid
        finally:
            await jobs.stop()

    run(scenario)


def test_a_killed_worker_fails_its_job_and_the_queue_goes_on(tmp_path):
    async def scenario():
        jobs = JobQueue(tmp_path, workers=1, target=stand_in_worker)
        await jobs.start()
        try:
            doomed = jobs.submit("train", {"steps": 1000, "seconds": 0.01})
            after = jobs.submit("train", {"steps": 2})
            await until(lambda: len(doomed.progress) >= 2)
            os.kill(jobs.running_pid(doomed), signal.SIGKILL)
            await until(lambda: finished(doomed))
            assert doomed.status == "failed"
            assert doomed.error.startswith("the worker process stopped unexpectedly (killed by SIGKILL)")
            await until(lambda: finished(after))
            assert after.status == "done"
            # A job that fails (bad input found in the worker) leaves its worker serving.
            failing = jobs.submit("train", {"steps": 1, "fail": True})
            next_one = jobs.submit("train", {"steps": 1})
            await until(lambda: finished(next_one))
            assert failing.status == "failed" and failing.error == "the stand-in failed on purpose"
            assert next_one.result["pid"] == after.result["pid"]
        finally:
            await jobs.stop()
        assert not alive(after.result["pid"])  # stop() ends the workers

    run(scenario)


def test_exit_codes_in_words():
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(1) == "exit status 1"


def test_finished_jobs_are_removed_after_a_while_and_the_queue_is_bounded(tmp_path):
    async def scenario():
        jobs = JobQueue(tmp_path, workers=1, keep_seconds=3600, keep_jobs=2, max_waiting=2, target=stand_in_worker)
        await jobs.start()
        try:
            blocker = jobs.submit("train", {"steps": 1000, "seconds": 0.01})
            early = [jobs.submit("train", {"steps": 1}) for _ in range(2)]
            with pytest.raises(QueueFull, match="the server is busy: 2 jobs are waiting"):
                jobs.submit("train", {"steps": 1})
            jobs.cancel(blocker.id)
            await until(lambda: all(finished(job) for job in early))
            done = [jobs.submit("train", {"steps": 1}) for _ in range(2)]
            await until(lambda: all(finished(job) for job in done))
            # keep_jobs=2: of the four finished, the newest two are kept, with their folders.
            jobs.sweep()
            assert [jobs.get(job.id) for job in done] == done
            assert sorted(path.name for path in tmp_path.iterdir()) == sorted(job.id for job in done)
            for gone in (blocker, *early):
                with pytest.raises(Exception, match="no such job"):
                    jobs.get(gone.id)
            # keep_seconds: every finished job goes once it is old enough.
            assert sorted(jobs.sweep(now=time.monotonic() + 3601)) == sorted(job.id for job in done)
            assert list(tmp_path.iterdir()) == []
        finally:
            await jobs.stop()

    run(scenario)


def test_a_model_in_use_is_kept_until_its_generation_finishes(tmp_path):
    async def scenario():
        jobs = JobQueue(tmp_path, workers=1, keep_seconds=3600, target=stand_in_worker)
        await jobs.start()
        try:
            trained = jobs.submit("train", {"steps": 1})
            await until(lambda: finished(trained))
            blocker = jobs.submit("train", {"steps": 1000, "seconds": 0.01})
            generation = jobs.submit("generate", {"steps": 1}, uses=trained.id)
            assert jobs.sweep(now=time.monotonic() + 7200) == []  # in use: kept
            jobs.cancel(blocker.id)
            await until(lambda: finished(generation))
            assert trained.id in jobs.sweep(now=time.monotonic() + 7200)
        finally:
            await jobs.stop()

    run(scenario)


# --- the HTTP server with many clients -----------------------------------------------------------


class LiveServer:
    """The app on a real uvicorn server, in a thread, on a free loopback port."""

    def __init__(self, app):
        import uvicorn

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)
        self.socket.close()


@pytest.mark.slow
def test_fifty_clients_stream_queued_jobs_and_the_server_stays_responsive(tmp_path):
    """10 queued jobs on 2 workers, each watched by 5 clients over server-sent events (50 streams), while
    another client keeps asking for /api/info: every stream sees its job through to the end, each
    queued job's place only goes down, and the server answers quickly throughout."""
    from nabiya.web.app import create_app

    app = create_app(jobs=JobQueue(tmp_path, workers=2, target=stand_in_worker))
    song = "g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4"

    async def scenario(url):
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            # The stand-in worker reads "steps" and "seconds"; the app checks the rest as for real.
            submitted = []
            for _ in range(10):
                response = await client.post("/api/jobs", json={"kind": "train", "preset": "stateful2", "epochs": 8,
                                                                "song": song})
                assert response.status_code == 201, response.text
                submitted.append(response.json()["id"])

            async def watch(job_id):
                statuses, positions, progress = [], [], 0
                async with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            state = json.loads(line[6:])
                            statuses.append(state["status"])
                            progress += len(state["progress"])
                            if state["position"] is not None:
                                positions.append(state["position"])
                return statuses, positions, progress

            latencies = []
            watching = True

            async def probe():
                while watching:
                    started = time.perf_counter()
                    response = await client.get("/api/info")
                    assert response.status_code == 200
                    latencies.append(time.perf_counter() - started)
                    await asyncio.sleep(0.02)

            prober = asyncio.create_task(probe())
            results = await asyncio.gather(*(watch(job_id) for job_id in submitted for _ in range(5)))
            watching = False
            await prober
            return results, latencies

    with LiveServer(app) as server:
        results, latencies = asyncio.run(asyncio.wait_for(scenario(server.url), timeout=120))
    assert len(results) == 50
    for statuses, positions, progress in results:
        assert statuses[-1] == "done" and progress == 8  # the stand-in's report per "epoch", each seen once
        assert positions == sorted(positions, reverse=True)  # a place in the queue only goes down
    assert any(positions and positions[0] >= 3 for _, positions, _ in results)  # some really waited
    assert len(latencies) >= 10
    assert statistics.median(latencies) < 0.25 and max(latencies) < 2.0, (statistics.median(latencies), max(latencies))


@pytest.mark.slow
def test_many_songs_engraved_at_once_all_come_back(tmp_path):
    """Sheet music is engraved in the server's threads: every request must succeed, in whichever thread
    (verovio keeps its resource path per thread)."""
    from nabiya.web.app import create_app

    async def scenario(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            ids = []
            for name in ("nabiya", "twinkle", "mary", "ode_to_joy"):
                ids.append((await client.post("/api/songs", json={"builtin": name})).json()["id"])
            return await asyncio.gather(*(client.get(f"/api/songs/{song_id}.svg") for song_id in ids * 2))

    with LiveServer(create_app(jobs=JobQueue(tmp_path))) as server:
        responses = asyncio.run(scenario(server.url))
    assert [response.status_code for response in responses] == [200] * 8
    assert all(response.text.startswith("<svg") for response in responses)


# --- the real worker ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_training_job_and_a_generation_through_the_api(tmp_path):
    """stateful2 on 나비야 for a few epochs in a real worker: progress, predictions with the wrong notes
    coloured on the sheet music, every file, the zip; then a continuation with top-k sampling."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from nabiya.web.app import create_app
    from nabiya.web.songs import describe
    from nabiya.music.songs import get_song

    app = create_app(jobs=JobQueue(tmp_path, workers=1))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        song = describe(get_song("nabiya"))
        job = client.post("/api/jobs", json={"kind": "train", "preset": "stateful2", "epochs": 20, "seed": 5,
                                             "song": song["text"]}).json()
        state = _wait(client, job["id"])
        assert state["status"] == "done", state
        assert [point[0] for point in state["progress"]] == list(range(1, 21))  # epochs_per_block 1 for 20 epochs
        result = state["result"]
        assert len(result["summary"]["loss_history"]) == 20
        for which in ("one_step", "full_song"):
            prediction = result["predictions"][which]
            assert prediction["total"] == 50 and prediction["matches"] + len(prediction["wrong_notes"]) == 50
            svg = client.get(f"/api/jobs/{job['id']}/files/{which}.svg").text
            # each wrong note, and only they, red on the sheet music (나비야's notes never cross a bar line)
            assert svg.count('class="note" color="#D62728"') == len(prediction["wrong_notes"])
            roll = prediction["roll"]
            assert sum(note[3] == "wrong" for note in roll["notes"]) == len(prediction["wrong_notes"])
        assert result["predictions"]["full_song"]["wrong_notes"], "20 epochs should not be enough for the whole song"
        expected = {f"{name}{suffix}" for name in ("song", "one_step", "full_song")
                    for suffix in (".mid", ".wav", ".abc", ".musicxml", ".svg", ".txt")}
        expected |= {"model.nabiya", "summary.json", "loss.png", "one_step_roll.png", "full_song_roll.png"}
        assert set(state["files"]) == expected
        archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/jobs/{job['id']}/files.zip").content))
        assert {name.split("/")[-1] for name in archive.namelist()} == expected
        model = client.get(f"/api/jobs/{job['id']}/files/model.nabiya", params={"download": ""})
        assert model.status_code == 200 and "attachment" in model.headers["content-disposition"]

        generation = client.post("/api/jobs", json={"kind": "generate", "model": job["id"], "strategy": "top-k",
                                                    "top_k": 3, "seed": 2, "length": 12}).json()
        state = _wait(client, generation["id"])
        assert state["status"] == "done", state
        assert state["result"]["primer"] == 4 and len(state["result"]["codes"]) == 16
        svg = client.get(f"/api/jobs/{generation['id']}/files/generated.svg").text
        assert svg.count('class="note" color="#8A8A8A"') == 4  # the given notes in grey
        assert client.get(f"/api/jobs/{generation['id']}/files/generated.wav").content[:4] == b"RIFF"
        # A strategy option that makes no sense fails the job with the CLI's message; the worker goes on.
        bad = client.post("/api/jobs", json={"kind": "generate", "model": job["id"], "strategy": "greedy",
                                             "top_p": 0.5}).json()
        state = _wait(client, bad["id"])
        assert state["status"] == "failed" and state["error"] == "top_p=0.5 has no effect with the greedy strategy"


