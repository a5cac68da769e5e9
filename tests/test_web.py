"""The playground's web app without a browser: songs in and out, the CLI's messages, safety, the token.

These run the app in-process (Starlette's TestClient); no job runs, so no worker starts.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

import warnings  # noqa: E402

with warnings.catch_warnings():  # Starlette now prefers httpx2 to httpx; either serves
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from nabiya.cli import main  # noqa: E402
from nabiya.web.app import create_app, is_loopback  # noqa: E402
from nabiya.web.jobs import JobQueue  # noqa: E402
from nabiya.web.songs import MAX_UPLOAD_BYTES, display_name  # noqa: E402

TWO_TUNES = "X:1\nT:Up\nM:4/4\nL:1/4\nK:C\nC D E F|G4|]\n\nX:2\nT:Down\nM:3/4\nL:1/4\nK:G\nB A G|D3|]\n"
JSON = {"content-type": "application/json"}
BYTES = {"content-type": "application/octet-stream"}


@pytest.fixture
def client(tmp_path):
    app = create_app(jobs=JobQueue(tmp_path / "jobs", workers=1))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def upload(client, name, data, **params):
    return client.post("/api/songs/upload", params={"name": name, **params}, content=data, headers=BYTES)


def test_a_built_in_song_comes_back_as_facts_sheet_music_audio_and_every_format(client):
    response = client.post("/api/songs", json={"builtin": "nabiya"})
    assert response.status_code == 200, response.text
    song = response.json()
    assert song["title"] == "나비야 (Butterfly)" and song["notes"] == 54 and song["meter"] == "2/4"
    assert song["codes"][:3] == ["g8", "e8", "e4"] and song["key"] == "C major"
    assert len(song["roll"]["notes"]) == 54 and song["roll"]["bar"] == 2.0
    svg = client.get(f"/api/songs/{song['id']}.svg")
    assert svg.headers["content-type"] == "image/svg+xml" and svg.text.startswith("<svg")
    assert 'class="clef"' in svg.text and 'class="meterSig"' in svg.text  # clef and meter engraved
    expected_magic = {"wav": b"RIFF", "mid": b"MThd", "abc": b"X:1", "musicxml": b"<?xml", "txt": b"% title"}
    for extension, magic in expected_magic.items():
        response = client.get(f"/api/songs/{song['id']}.{extension}", params={"download": ""})
        assert response.status_code == 200 and response.content.startswith(magic), extension
        assert "attachment" in response.headers["content-disposition"]
    # The song's text, sent back as typed codes, is the same song.
    again = client.post("/api/songs", json={"codes": song["text"]}).json()
    assert again["id"] == song["id"] and again["meter"] == "2/4"


def test_pasted_abc_lists_its_tunes_and_one_can_be_chosen(client):
    first = client.post("/api/songs", json={"abc": TWO_TUNES}).json()
    assert first["title"] == "Up" and [t["reference"] for t in first["tunes"]] == ["1", "2"]
    second = client.post("/api/songs", json={"abc": TWO_TUNES, "tune": "2"}).json()
    assert second["title"] == "Down" and second["meter"] == "3/4" and second["key"] == "G major"
    uploaded = upload(client, "tunes.abc", TWO_TUNES.encode(), tune="Down").json()
    assert uploaded["codes"] == second["codes"]


def test_uploads_of_every_readable_kind(client, tmp_path):
    from nabiya.music.formats import write_song
    from nabiya.music.songs import get_song

    twinkle = get_song("twinkle")
    for suffix in (".abc", ".mid", ".musicxml", ".txt"):
        path = write_song(twinkle, tmp_path / f"twinkle{suffix}")
        response = upload(client, path.name, path.read_bytes())
        assert response.status_code == 200, (suffix, response.text)
        assert response.json()["codes"] == twinkle.codes


# The same files as the CLI's broken-file test: the page must say what `nabiya` says.
BROKEN_FILES = [
    ("bad.abc", "X:1\nT:Broken\nM:4/4\nL:1/0\nK:C\nCDEF|\n"),
    ("bad.musicxml", "<score-partwise><part id='P1'><measure>"),
    ("bad.mid", "MThd garbage"),
    ("empty.txt", "% nothing here\n"),
    ("chords.abc", "X:1\nT:Chords\nM:4/4\nL:1/4\nK:C\n[CEG] D E F|\n"),
    ("typo.txt", "g8 e8 e4 x9 d8 d4\n"),
]


@pytest.mark.parametrize("name, content", BROKEN_FILES)
def test_a_broken_upload_gives_the_cli_message(client, tmp_path, monkeypatch, capsys, name, content):
    (tmp_path / name).write_text(content)
    monkeypatch.chdir(tmp_path)  # the CLI names the file as given: here, by its bare name, as an upload is
    assert main(["convert", name, "out.mid"]) == 2
    cli_message = capsys.readouterr().err.removeprefix("nabiya: error: ").rstrip("\n")
    response = upload(client, name, content.encode())
    assert response.status_code == 400
    assert response.json() == {"error": cli_message}


@pytest.mark.parametrize(
    "request_body, message",
    [
        ({"builtin": "nosuch"}, "unknown song 'nosuch': the built-in songs are nabiya, twinkle"),
        ({"codes": "g8 e8 x9"}, "unknown note code 'x9' (note codes: line 1, note 3)"),
        ({"codes": "   "}, "no note codes given"),
        ({"abc": "X:1\nK:C\nC D E|\n", "tune": "7"}, "the ABC text has no tune '7'"),
        ({"nothing": 1}, "say which song: builtin, codes or abc"),
        ({"codes": 5}, "codes must be text"),
    ],
)
def test_bad_songs_are_one_line_errors(client, request_body, message):
    response = client.post("/api/songs", json=request_body)
    assert response.status_code == 400 and message in response.json()["error"]
    assert "\n" not in response.json()["error"]


@pytest.mark.parametrize(
    "changes, cli_args",
    [
        ({"preset": "nosuch"}, ["run", "nosuch"]),
        ({"epochs": 0}, ["run", "--epochs", "0"]),
        ({"song": "g8 e8 e4 f8"}, ["run", "--song", "g8 e8 e4 f8"]),
    ],
)
def test_bad_training_requests_get_the_cli_message_and_never_queue(client, tmp_path, capsys, changes, cli_args):
    assert main([*cli_args, "--quiet", "--out", str(tmp_path / "run")]) == 2
    cli_message = capsys.readouterr().err.removeprefix("nabiya: error: ").rstrip("\n")
    body = {"kind": "train", "preset": "stateful2", "epochs": 10, "song": "g8 e8 e4 f8 d8 d4", **changes}
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 400 and response.json() == {"error": cli_message}
    assert client.app.state.jobs.worker_pids == []  # nothing was queued, so no worker started


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"kind": "train", "preset": "mlp", "epochs": 10**6, "song": "c4 d4 e4 f4 g4 a4"}, 400, "at most 20,000"),
        ({"kind": "train", "preset": "mlp", "epochs": "many", "song": "c4 d4 e4 f4 g4 a4"}, 400, "whole number"),
        ({"kind": "train", "preset": "mlp", "seed": -1, "song": "c4 d4 e4 f4 g4 a4"}, 400, "the seed must be"),
        ({"kind": "generate", "model": "0123456789abcdef"}, 404, "no such job"),
        ({"kind": "sing"}, 400, "kind 'train' or 'generate'"),
    ],
)
def test_bad_job_requests(client, body, status, message):
    response = client.post("/api/jobs", json=body)
    assert response.status_code == status and message in response.json()["error"]


def test_uploads_are_limited_in_size_and_kind(client):
    too_big = upload(client, "huge.abc", b"X:1\nK:C\n" + b"C" * MAX_UPLOAD_BYTES)
    assert too_big.status_code == 413 and "huge.abc: the file is larger than 1.0 MB" in too_big.json()["error"]
    pdf = upload(client, "score.pdf", b"%PDF-1.4")
    assert pdf.status_code == 400
    assert pdf.json()["error"].startswith("score.pdf: the playground does not read .pdf files: upload one of .abc")
    model = upload(client, "weights.safetensors", b"\0" * 16)
    assert model.status_code == 400 and "does not read .safetensors files" in model.json()["error"]


def test_requests_another_site_could_send_are_refused(client):
    # A form on another web site can post text/plain or form data without asking; never JSON or bytes.
    for path in ("/api/songs", "/api/jobs"):
        response = client.post(path, content=b'{"builtin": "nabiya"}', headers={"content-type": "text/plain"})
        assert response.status_code == 415
    response = client.post("/api/songs/upload?name=a.abc", content=b"X:1\nK:C\nCDE|",
                           headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert client.post("/api/songs", content=b"not json", headers=JSON).status_code == 400


def test_nothing_from_the_browser_becomes_a_path(client, tmp_path):
    assert display_name("../../etc/passwd.abc") == "passwd.abc"
    assert display_name("C:\\Users\\me\\tune.abc") == "tune.abc"
    assert display_name("") == "upload"
    response = upload(client, "../../../outside.abc", b"X:1\nT:Far\nK:C\nC D E|\n")
    assert response.status_code == 200 and response.json()["title"] == "Far"
    assert not list(tmp_path.rglob("outside*")) and not Path("/outside.abc").exists()
    for path in ("/api/songs/..%2F..%2Fetc%2Fpasswd", "/api/songs/%2Fetc%2Fpasswd.txt", "/api/jobs/..%2F..%2Fetc",
                 "/api/jobs/0123456789abcdef/files/..%2Fsummary.json", "/static/..%2F..%2F__init__.py"):
        assert client.get(path).status_code == 404, path


def test_the_page_and_its_files_come_from_the_package_with_no_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>nabiya playground</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    static = Path(__file__).parents[1] / "src" / "nabiya" / "web" / "static"
    for name in ("app.js", "app.css", "favicon.svg"):
        assert client.get(f"/static/{name}").status_code == 200
    for path in static.iterdir():
        addresses = re.findall(r"https?://[^\s\"')]+", path.read_text(encoding="utf-8"))
        assert set(addresses) <= {"http://www.w3.org/2000/svg"}, (path.name, addresses)
    info = client.get("/api/info").json()
    assert [p["name"] for p in info["presets"]] == ["mlp", "lstm", "stateful", "stateful2"]
    assert info["songs"][0] == {"name": "nabiya", "title": "나비야 (Butterfly)"}
    assert set(info["features"]) == {"analysis", "tunes"}


def test_a_token_is_required_when_one_is_set(tmp_path):
    app = create_app(jobs=JobQueue(tmp_path / "jobs"), token="s3cret", cookie_name="t")
    with TestClient(app, base_url="http://192.0.2.10", follow_redirects=False) as client:
        assert client.get("/").status_code == 403
        assert client.get("/api/info").status_code == 403
        assert client.get("/api/info", headers={"x-nabiya-token": "wrong"}).status_code == 403
        entry = client.get("/?token=s3cret")
        assert entry.status_code == 303 and entry.headers["location"] == "/"  # the token leaves the address bar
        assert "httponly" in entry.headers["set-cookie"].lower()
        assert client.get("/").status_code == 200  # the cookie carries it from now on
        assert client.get("/api/info").status_code == 200
    with TestClient(app, base_url="http://192.0.2.10") as client:
        assert client.get("/api/info", headers={"x-nabiya-token": "s3cret"}).status_code == 200


def test_a_loopback_server_answers_only_to_loopback_names(tmp_path):
    app = create_app(jobs=JobQueue(tmp_path / "jobs"), allowed_hosts={"127.0.0.1", "localhost", "::1"})
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/info").status_code == 200
        assert client.get("/api/info", headers={"host": "[::1]:8000"}).status_code == 200
        assert client.get("/api/info", headers={"host": "localhost"}).status_code == 200
        # A web page elsewhere reaching this server through a DNS name that points at 127.0.0.1:
        assert client.get("/api/info", headers={"host": "attacker.example:8000"}).status_code == 403
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_serve_prints_an_address_with_a_token_off_loopback():
    """`nabiya serve --host 0.0.0.0` prints where, with a token (a subprocess, stopped at once)."""
    import os
    import signal

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1] / "src"), *sys.path]))
    server = subprocess.Popen([sys.executable, "-m", "nabiya", "serve", "--host", "0.0.0.0", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = server.stdout.readline()
        second = server.stdout.readline()
        port = int(re.search(r":(\d+)/", first).group(1))
        assert _answers(port)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    address = re.search(r"http://\S+", first).group(0)
    assert re.fullmatch(r"http://[^/]+:\d+/\?token=[\w-]{20,}", address), first
    assert "127.0.0.1" in second and "token=" in second
    assert server.returncode == 0, server.stderr.read()


def test_serve_refuses_an_address_in_use(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nabiya: error: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert err.count("\n") == 1


def _answers(port: int, seconds: float = 30.0) -> bool:
    """Whether something answers HTTP on 127.0.0.1:port within ``seconds``."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=2)
        except urllib.error.HTTPError as error:
            return error.code == 403  # the token is missing: it answers
        except OSError:
            time.sleep(0.1)
        else:
            return True
    return False


def test_the_server_process_never_imports_jax():
    """Songs are read and analysed and training is checked and queued without JAX: only the worker processes
    (started with 'spawn', never forked) load it. A subprocess, so that the test's own imports don't count."""
    script = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from starlette.testclient import TestClient\n"
        "from nabiya.web.app import create_app\n"
        "with TestClient(create_app(), base_url='http://127.0.0.1') as client:\n"
        "    song = client.post('/api/songs', json={'builtin': 'nabiya'}).json()\n"
        "    client.get(f\"/api/songs/{song['id']}.svg\")\n"
        "    assert client.get(f\"/api/songs/{song['id']}/analysis\").status_code == 200\n"
        "    assert client.get(f\"/api/songs/{song['id']}/analysis.svg?window=4\").status_code == 200\n"
        "    job = client.post('/api/jobs', json={'kind': 'train', 'preset': 'stateful2', 'epochs': 5, "
        "'song': song['text']})\n"
        "    print(job.status_code, 'jax' in sys.modules, flush=True)\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.split() == ["201", "False"], result.stderr[-2000:]
