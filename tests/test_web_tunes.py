"""The playground's "New tunes" panel on the server: corpus models offered by name or uploaded, and tunes jobs.

The request checks run in-process with no worker (bad input never queues); one slow test
runs a real worker: an upload read by the safe reader, tunes in every format, a bad file's
message the CLI's own.
"""

import shutil
import time
import warnings

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # Starlette now prefers httpx2 to httpx; either serves
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from nabiya.cli import main  # noqa: E402
from nabiya.errors import NabiyaError  # noqa: E402
from nabiya.web.app import create_app  # noqa: E402
from nabiya.web.jobs import JobQueue  # noqa: E402
from nabiya.web.tunes import MAX_MODEL_UPLOAD_BYTES, MAX_TUNES, ModelFolder, find_models  # noqa: E402
from web_jobs_waiting import wait_for_job as _wait  # noqa: E402

BYTES = {"content-type": "application/octet-stream"}


@pytest.fixture
def models_folder(tmp_path, corpus_model_file, model_file):
    """A folder as `nabiya serve --models` finds it: a corpus model, a run folder, and files it passes over."""
    folder = tmp_path / "models"
    (folder / "reels").mkdir(parents=True)
    shutil.copy(corpus_model_file, folder / "jigs.safetensors")
    shutil.copy(corpus_model_file, folder / "reels" / "model.safetensors")
    shutil.copy(model_file, folder / "tutorial.safetensors")  # a tutorial model: not offered
    (folder / "notes.txt").write_text("c4 d4")
    return folder


@pytest.fixture
def client(tmp_path, models_folder):
    app = create_app(jobs=JobQueue(tmp_path / "jobs", workers=1), models=find_models(models_folder))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def test_the_server_offers_the_corpus_models_of_its_folder_by_name(client, models_folder):
    response = client.get("/api/info")
    info = response.json()
    assert info["features"]["tunes"] is True
    offered = {model["name"]: model for model in info["corpus_models"]}
    assert set(offered) == {"jigs", "reels"}  # not the tutorial model, not the text file
    assert offered["jigs"]["preset"] == "folk-lstm"
    assert offered["jigs"]["meters"] == ["6/8", "4/4", "3/4"]  # the training tunes' meters, the commonest first
    assert offered["jigs"]["keys"] == ["D major", "G major", "E minor"]
    # The modes each meter has among the training tunes: the page offers only keys the model can write there.
    assert offered["jigs"]["modes"]["6/8"] == ["major"] and sorted(offered["jigs"]["modes"]["4/4"]) == ["major", "minor"]
    assert str(models_folder) not in response.text  # the server's paths stay on the server


def _tunes(**changes):
    return {"kind": "tunes", "model": "jigs", "meter": "6/8", "key": "D major", "count": 2, "strategy": "top-p",
            "top_p": 0.9, "length": 40, "seed": 1, **changes}


@pytest.mark.parametrize(
    "changes, status, message",
    [
        ({"model": "nosuch"}, 404, "no such job"),
        ({"model": "../models/jigs.safetensors"}, 404, "no such job"),  # a path is just an unknown name
        ({"model": 5}, 400, "model must be text"),
        ({"meter": "5/4"}, 400, "jigs has no meter '5/4': its training tunes' meters are 6/8, 4/4, 3/4"),
        ({"key": "F# minor"}, 400, "jigs has no key 'F# minor'"),
        ({"count": 0}, 400, f"count must be from 1 to {MAX_TUNES}"),
        ({"count": 99}, 400, f"count must be from 1 to {MAX_TUNES}"),
        ({"count": "two"}, 400, "count must be a whole number, not 'two'"),
        ({"length": 1}, 400, "length must be from 2 to 1,024 tokens"),
        ({"seed": -1}, 400, "the seed must be a whole number from 0"),
        ({"strategy": "beam"}, 400, "new tunes are made with temperature, top-k, top-p, greedy, not 'beam'"),
        ({"top_k": "x"}, 400, "top_k must be a whole number"),
    ],
)
def test_bad_tunes_requests_are_one_line_errors_and_never_queue(client, changes, status, message):
    response = client.post("/api/jobs", json=_tunes(**changes))
    assert response.status_code == status, response.text
    assert message in response.json()["error"] and "\n" not in response.json()["error"]
    assert client.app.state.jobs.worker_pids == []  # nothing was queued, so no worker started


def test_model_uploads_are_limited_in_size_and_kind(client):
    too_big = client.post("/api/models/upload", params={"name": "huge.safetensors"},
                          content=b"\0" * (MAX_MODEL_UPLOAD_BYTES + 1), headers=BYTES)
    assert too_big.status_code == 413 and too_big.json()["error"].startswith("huge.safetensors: the file is larger")
    song = client.post("/api/models/upload", params={"name": "tune.abc"}, content=b"X:1\nK:C\nCDE|", headers=BYTES)
    assert song.status_code == 400 and "upload a corpus model file (.safetensors" in song.json()["error"]
    form = client.post("/api/models/upload", params={"name": "m.safetensors"}, content=b"x",
                       headers={"content-type": "text/plain"})
    assert form.status_code == 415
    assert client.app.state.jobs.worker_pids == []
    assert not list((client.app.state.jobs.root).rglob("*.safetensors"))  # nothing kept of a refused upload


def test_an_upload_cancelled_before_it_is_read_leaves_no_file(client, corpus_model_file):
    job = client.post("/api/models/upload", params={"name": "mine.safetensors"},
                      content=corpus_model_file.read_bytes(), headers=BYTES).json()
    assert client.delete(f"/api/jobs/{job['id']}").json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while list(client.app.state.jobs.root.rglob("*.safetensors")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(client.app.state.jobs.root.rglob("*.safetensors"))


def test_a_model_added_to_the_folder_while_the_server_runs_is_offered_and_a_removed_one_is_not(
    tmp_path, models_folder, corpus_model_file, monkeypatch
):
    from nabiya.web import tunes

    app = create_app(jobs=JobQueue(tmp_path / "jobs", workers=1), models=ModelFolder(models_folder))
    with TestClient(app, base_url="http://127.0.0.1") as client:

        def offered():
            return sorted(model["name"] for model in client.get("/api/info").json()["corpus_models"])

        assert offered() == ["jigs", "reels"]
        shutil.copy(corpus_model_file, models_folder / "hornpipes.safetensors")  # trained meanwhile
        (models_folder / "jigs.safetensors").unlink()
        assert offered() == ["hornpipes", "reels"]
        response = client.post("/api/tunes", json={"model": "jigs", "count": 1})
        assert response.status_code == 404, response.json()  # no longer offered: no such model
        read = []
        monkeypatch.setattr(tunes, "peek_model", lambda path, name: read.append(name))
        assert offered() == ["hornpipes", "reels"] and read == []  # an unchanged folder: no file read again


def test_find_models_says_what_is_wrong_with_the_folder(tmp_path, model_file):
    with pytest.raises(NabiyaError, match="no such folder"):
        find_models(tmp_path / "nosuch")
    shutil.copy(model_file, tmp_path / "tutorial.safetensors")
    with pytest.raises(NabiyaError, match="no corpus model there"):
        find_models(tmp_path)


@pytest.mark.slow
def test_upload_a_model_make_tunes_in_every_format_and_a_bad_file_gets_the_cli_message(
    client, corpus_model_file, tmp_path, monkeypatch, capsys
):
    # The same broken file through the CLI and through the page: the same message.
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(corpus_model_file.read_bytes()[:-100])
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "broken.safetensors", "--count", "1", "--out", "tunes"]) == 2
    cli_message = capsys.readouterr().err.removeprefix("nabiya: error: ").rstrip("\n")

    bad = client.post("/api/models/upload", params={"name": "broken.safetensors"}, content=broken.read_bytes(),
                      headers=BYTES)
    assert bad.status_code == 201, bad.text
    state = _wait(client, bad.json()["id"])
    assert state["status"] == "failed" and state["error"] == cli_message, state
    assert str(client.app.state.jobs.root) not in state["error"]  # the server's paths stay on the server

    good = client.post("/api/models/upload", params={"name": "mine.safetensors"},
                       content=corpus_model_file.read_bytes(), headers=BYTES)
    model = _wait(client, good.json()["id"])
    assert model["status"] == "done" and model["result"]["name"] == "mine", model
    assert model["result"]["meters"] == ["6/8", "4/4", "3/4"]

    made = []
    for name in ("jigs", model["id"]):  # offered by the server, then the upload
        job = client.post("/api/jobs", json=_tunes(model=name))
        assert job.status_code == 201, job.text
        state = _wait(client, job.json()["id"])
        assert state["status"] == "done", state
        tunes = state["result"]["tunes"]
        assert [tune["stem"] for tune in tunes] == ["tune_01", "tune_02"]
        assert all(tune["meter"] == "6/8" and tune["key"] == "D major" for tune in tunes)
        assert "M:6/8" in tunes[0]["abc"] and "\nK:D" in tunes[0]["abc"]
        assert state["result"]["how"] == "top-p 0.9, seed 1"
        expected_magic = {"abc": b"X:1", "mid": b"MThd", "musicxml": b"<?xml", "wav": b"RIFF", "svg": b"<svg"}
        for suffix, magic in expected_magic.items():
            response = client.get(f"/api/jobs/{state['id']}/files/tune_02.{suffix}", params={"download": ""})
            assert response.status_code == 200 and response.content.startswith(magic), suffix
            assert "attachment" in response.headers["content-disposition"]
        made.append([tune["abc"] for tune in tunes])
    assert made[0] == made[1]  # the same model, request and seed: the same tunes




def test_offering_and_uploading_corpus_models_never_imports_jax_in_the_server(models_folder, corpus_model_file):
    """The models' facts come from their headers; reading and using them is the workers' (a subprocess, so that
    the test's own imports don't count)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from starlette.testclient import TestClient\n"
        "from nabiya.web.app import create_app\n"
        "from nabiya.web.tunes import find_models\n"
        f"models = find_models({str(models_folder)!r})\n"
        "with TestClient(create_app(models=models), base_url='http://127.0.0.1') as client:\n"
        "    assert client.get('/api/info').json()['corpus_models']\n"
        "    job = client.post('/api/jobs', json={'kind': 'tunes', 'model': 'jigs', 'meter': '6/8'})\n"
        f"    data = open({str(corpus_model_file)!r}, 'rb').read()\n"
        "    upload = client.post('/api/models/upload?name=m.safetensors', content=data,\n"
        "                         headers={'content-type': 'application/octet-stream'})\n"
        "    print(job.status_code, upload.status_code, 'jax' in sys.modules, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.split() == ["201", "201", "False"], result.stderr[-2000:]
