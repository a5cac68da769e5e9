"""The playground's song analysis: the JSON the panel shows, the marked score, bad input, and training's ceiling.

In-process (Starlette's TestClient); the one job submitted goes to an idle stand-in worker, so no JAX.
"""

import re
import warnings

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # Starlette now prefers httpx2 to httpx; either serves
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from nabiya.cli import main  # noqa: E402
from nabiya.web import analysis as web_analysis  # noqa: E402
from nabiya.web.app import create_app  # noqa: E402
from nabiya.web.jobs import JobQueue  # noqa: E402

BLUE, ORANGE, GREEN, PURPLE = (color.upper() for color in web_analysis.PALETTE[:4])


def idle_worker(tasks, events):
    """A worker that takes tasks and never finishes them: the tests here look at jobs as they are queued."""
    events.send(("ready", None, None))
    while True:
        try:
            if tasks.recv() is None:
                return
        except EOFError:
            return


@pytest.fixture
def client(tmp_path):
    app = create_app(jobs=JobQueue(tmp_path / "jobs", workers=1, target=idle_worker))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def show(client, **song):
    response = client.post("/api/songs", json=song)
    assert response.status_code == 200, response.text
    return response.json()


def note_colors(svg: str) -> list[str]:
    """The colour of every coloured note head on a verovio page, in order."""
    return re.findall(r'class="note" color="(#[0-9A-F]{6})"', svg)


def test_nabiya_at_window_4_four_ambiguous_windows_and_92_percent(client):
    song = show(client, builtin="nabiya")
    response = client.get(f"/api/songs/{song['id']}/analysis", params={"window": 4})
    assert response.status_code == 200, response.text
    facts = response.json()
    at = facts["at"]
    assert (at["best_matches"], at["samples"], at["ceiling"], at["ambiguous_places"]) == (46, 50, 0.92, 9)
    assert [entry["window"] for entry in at["ambiguous"]] == [
        ["f8", "d8", "d4", "c8"], ["e8", "e8", "e8", "f8"], ["d8", "d8", "d8", "d8"], ["e8", "e8", "e8", "e8"]]
    first = at["ambiguous"][0]
    assert first["notes"] == [8, 22, 49] and first["continuations"] == ["d8", "e8", "e8"]
    assert first["counts"] == {"d8": 1, "e8": 2} and first["best"] == 2
    # One colour per window, all different, each with its paler tint.
    assert [entry["color"] for entry in at["ambiguous"]] == list(web_analysis.PALETTE[:4])
    assert len({entry["pale"] for entry in at["ambiguous"]} | {entry["color"] for entry in at["ambiguous"]}) == 8
    # Every continuation unique from a window of 8; a stateful model must remember 8 notes, 4 before its window.
    assert (facts["unique_window"], facts["memory_notes"], at["carried_notes"]) == (8, 8, 4)
    assert "notes 8 and 49 follow the same 7 notes" in facts["memory"]
    assert [round(row["ceiling"] * 100) for row in facts["curve"]] == [57, 75, 86, 92, 98, 98, 98, 100]
    assert {name: verdict["verdict"] for name, verdict in facts["presets"].items()} == {
        "mlp": "ceiling", "lstm": "ceiling", "stateful": "state", "stateful2": "state"}
    assert facts["score"] == f"/api/songs/{song['id']}/analysis.svg?window=4"


def test_a_window_beyond_the_default_table_is_analysed_too(client):
    song = show(client, builtin="nabiya")
    facts = client.get(f"/api/songs/{song['id']}/analysis", params={"window": 12}).json()
    assert facts["window"] == 12 and len(facts["curve"]) == 12
    assert facts["at"]["ambiguous"] == [] and facts["at"]["ceiling"] == 1.0


def test_the_score_marks_each_window_pale_and_the_note_after_it_strong(client):
    song = show(client, builtin="nabiya")
    url = f"/api/songs/{song['id']}/analysis.svg"
    # Only the first window, f8 d8 d4 c8 (notes 4-7, 18-21, 45-48), then d8 / e8 / e8 (notes 8, 22, 49).
    only = client.get(url, params={"window": 4, "mark": 1})
    assert only.status_code == 200 and only.headers["content-type"] == "image/svg+xml"
    pale_blue = web_analysis._tint(web_analysis.PALETTE[0]).upper()
    colors = note_colors(only.text)  # 나비야's notes never cross a bar line: one head per note
    assert colors.count(BLUE) == 3 and colors.count(pale_blue) == 12 and len(colors) == 15
    # All four: each window's places in its own colour (3, 2, 2, 2), pale notes around them.
    every = note_colors(client.get(url, params={"window": 4}).text)
    assert [every.count(color) for color in (BLUE, ORANGE, GREEN, PURPLE)] == [3, 2, 2, 2]
    assert len(every) > 9
    # A window size with nothing ambiguous marks nothing.
    assert note_colors(client.get(url, params={"window": 8}).text) == []


def test_window_colors_by_hand():
    from nabiya.analysis import window_report

    # 'ab' is followed by 'c', then by 'd'.
    colors = web_analysis.window_colors(window_report("abcabd", 2))
    pale, strong = web_analysis._tint(web_analysis.PALETTE[0]), web_analysis.PALETTE[0]
    assert colors == {0: pale, 1: pale, 3: pale, 4: pale, 2: strong, 5: strong}
    # Two windows that overlap: 'xa' -> b / c and 'ab' -> y / z. A continuation is never drawn pale.
    report = window_report("xabyxaczabz", 2)
    assert [entry.notes for entry in report.ambiguous] == [("x", "a"), ("a", "b")]
    colors = web_analysis.window_colors(report)
    assert colors[2] == strong and colors[3] == web_analysis.PALETTE[1]  # b after 'xa', y after 'ab'
    assert colors[1] == pale  # 'a' is in both windows: the first one's
    assert web_analysis.window_colors(report, only=1) == {
        1: web_analysis._tint(web_analysis.PALETTE[1]), 2: web_analysis._tint(web_analysis.PALETTE[1]),
        9: web_analysis._tint(web_analysis.PALETTE[1]), 8: web_analysis._tint(web_analysis.PALETTE[1]),
        3: web_analysis.PALETTE[1], 10: web_analysis.PALETTE[1]}


@pytest.mark.parametrize(
    "song, window, cli_args",
    [
        ({"builtin": "nabiya"}, 60, ["analyze", "nabiya", "--window", "60"]),
        ({"codes": "c4"}, 4, ["analyze", "c4"]),
        ({"codes": "c4 d4 e4"}, 3, ["analyze", "c4 d4 e4", "--window", "3"]),
    ],
)
def test_bad_input_gives_the_cli_message(client, capsys, song, window, cli_args):
    assert main(cli_args) == 2
    cli_message = capsys.readouterr().err.removeprefix("nabiya: error: ").rstrip("\n")
    shown = show(client, **song)
    for path in ("analysis", "analysis.svg"):
        response = client.get(f"/api/songs/{shown['id']}/{path}", params={"window": window})
        assert response.status_code == 400 and response.json() == {"error": cli_message}, path


def test_other_bad_requests_are_one_line(client, monkeypatch):
    song = show(client, builtin="nabiya")
    url = f"/api/songs/{song['id']}/analysis"
    cases = [
        (client.get("/api/songs/0123456789abcdef0123/analysis"), 404, "no such song here any more: choose it again"),
        (client.get(url, params={"window": "four"}), 400, "window must be a whole number, not 'four'"),
        (client.get(url, params={"window": 0}), 400, "a window must be at least 1 note, not 0"),
        (client.get(url + ".svg", params={"window": 4, "mark": 5}), 400,
         "mark must be from 1 to 4, the ambiguous windows of 4 notes, not 5"),
        (client.get(url + ".svg", params={"window": 8, "mark": 1}), 400,
         "no window of 8 notes is continued in more than one way: nothing to mark"),
    ]
    monkeypatch.setattr(web_analysis, "MAX_ANALYSIS_NOTES", 50)
    cases.append((client.get(url), 400, "나비야 (Butterfly) has 54 notes: the playground analyses songs of at most 50"))
    for response, status, message in cases:
        assert (response.status_code, response.json()) == (status, {"error": message})


@pytest.mark.parametrize(
    "preset, summary",
    [
        ("mlp", "92% is the most a 4-note window can reach on this song (46 of 50 notes)"),
        ("stateful2", ("a model that sees only its 4-note window could reach at most 92% on this song; this one also "
                       "carries what it read before the window, and 4 notes from before it tell every place apart: "
                       "100% is possible")),
    ],
)
def test_a_training_job_says_what_its_preset_can_reach_on_the_song(client, preset, summary):
    song = show(client, builtin="nabiya")
    job = client.post("/api/jobs", json={"kind": "train", "preset": preset, "epochs": 10, "song": song["text"]})
    assert job.status_code == 201, job.text
    expectation = job.json()["about"]["expectation"]
    assert expectation["summary"] == summary
    assert (expectation["window"], expectation["best_matches"], expectation["samples"]) == (4, 46, 50)
    assert expectation["ambiguous_notes"] == [8, 19, 22, 32, 33, 39, 40, 41, 49]
    # The same as the job's state, as the page keeps reading it.
    assert client.get(f"/api/jobs/{job.json()['id']}").json()["about"]["expectation"] == expectation


def test_the_page_learns_the_presets_windows_and_the_spike_rule(client):
    from nabiya.plots import SPIKE_FACTOR, SPIKE_FLOOR

    info = client.get("/api/info").json()
    assert info["features"]["analysis"] is True
    assert {preset["name"]: (preset["window"], preset["stateful"]) for preset in info["presets"]} == {
        "mlp": (4, False), "lstm": (4, False), "stateful": (4, True), "stateful2": (4, True)}
    spikes = info["adam_spikes"]
    assert (spikes["factor"], spikes["floor"]) == (SPIKE_FACTOR, SPIKE_FLOOR) and "ε = 1e-7" in spikes["note"]
