"""The playground in a real browser: Playwright drives Debian's Chromium, headless, against `nabiya serve`.

Playwright's own browser download cannot work on these machines, so the tests use the system
Chromium (``apt-get install chromium``) and skip, saying why, when it or Playwright is missing.
They load the page, pick 나비야, train stateful2 briefly and watch the curve move, look at and
listen to the predictions, generate, upload a good and a bad file, and use two tabs at once.

The page's content security policy stays on: Playwright's ``wait_for_function`` would need
``eval``, which the policy forbids, so conditions are polled with ``page.evaluate`` instead.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright): no browser tests"
)
CHROMIUM = next((path for path in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
                 if path and os.path.exists(path)), None)
if CHROMIUM is None:
    pytest.skip("Debian's Chromium is not installed (apt-get install chromium): no browser tests",
                allow_module_level=True)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio"]
EPOCHS = "100"
SRC = Path(__file__).parents[1] / "src"


@pytest.fixture(scope="module")
def server_url(corpus_model_file):
    """`nabiya serve` on a free port, one worker, offering a tiny corpus model, for the whole module."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    server = subprocess.Popen([sys.executable, "-m", "nabiya", "serve", "--port", "0", "--workers", "1",
                               "--models", str(corpus_model_file.parent)],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()
        url = re.search(r"http://\S+", line)
        assert url, f"nabiya serve printed {line!r}"
        yield url.group(0)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_page(page, server_url)
    yield page
    context.close()
    assert errors == [], errors  # no script error on the page, whatever the test did


def open_page(page, url):
    page.goto(url)
    wait_until(page, "document.body.dataset.ready === 'true'")


def wait_until(page, condition, seconds=60.0, *arguments):
    """Poll a JavaScript condition until it holds."""
    deadline = time.monotonic() + seconds
    while True:
        value = page.evaluate(f"(args) => {{ return ({condition}); }}", list(arguments))
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.05)


def image_shown(page, selector):
    wait_until(page, f"(() => {{ const i = document.querySelector({selector!r}); "
                     "return i && i.complete && i.naturalWidth > 0; })()")


def audio_seconds(page, selector):
    """The audio element loads (its duration is known), and its file decodes as audio: both in seconds."""
    wait_until(page, f"document.querySelector({selector!r}).readyState >= 1")
    element = page.evaluate(f"document.querySelector({selector!r}).duration")
    decoded = page.evaluate(
        """async (selector) => {
            const audio = document.querySelector(selector);
            const data = await (await fetch(audio.currentSrc || audio.src)).arrayBuffer();
            const buffer = await new OfflineAudioContext(1, 1, 22050).decodeAudioData(data);
            return buffer.duration;
        }""",
        selector,
    )
    return element, decoded


def train(page, epochs=EPOCHS):
    page.fill("#epochs", epochs)
    page.click("#train-button")


def test_the_page_shows_nabiya_as_sheet_music_and_sound_and_works_by_keyboard(page):
    assert page.inner_text("#song-title") == "나비야 (Butterfly)"
    assert "54 notes" in page.inner_text("#song-facts") and "2/4" in page.inner_text("#song-facts")
    image_shown(page, "#song-score")
    element, decoded = audio_seconds(page, "#song-audio")
    assert 15.5 < element < 16.5 and 15.5 < decoded < 16.5  # 32 quarter notes at 120 bpm
    # By keyboard alone: arrow to "Note codes", type a melody, Tab to Show, press Enter.
    page.focus("input[name=source][value=builtin]")
    page.keyboard.press("ArrowRight")
    assert page.is_checked("input[name=source][value=codes]") and page.is_visible("#codes-text")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "codes-text"
    page.keyboard.type("% title: Scale\nc4 d4 e4 f4 g4 a4 b4 c'4")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "show-song"
    page.keyboard.press("Enter")
    wait_until(page, "document.querySelector('#song-title').textContent === 'Scale'")
    assert page.inner_text("#song-facts").startswith("8 notes")


def test_train_watch_the_curve_move_see_hear_the_predictions_and_generate(page):
    page.select_option("#preset", "stateful2")
    train(page)
    wait_until(page, "!document.querySelector('#results').hidden", 240)
    statuses = page.get_attribute("#train-view", "data-statuses").split()
    assert "running" in statuses and statuses[-1] == "done"
    chart = page.query_selector("#loss-chart")
    # The curve was redrawn as the epochs went by (a report every 2 epochs), then whole at the end.
    assert int(chart.get_attribute("data-updates")) >= 5
    assert chart.get_attribute("data-points") == EPOCHS
    assert float(chart.get_attribute("data-last-loss")) < float(chart.get_attribute("data-first-loss"))
    assert page.evaluate("document.querySelector('#train-progress').value") == 1
    # Beside its accuracy, what the preset can reach on 나비야, and why it can do better than a window alone.
    assert "could reach at most 92%" in page.inner_text("#train-expectation")
    assert page.get_attribute("#accuracy-chart", "data-ceiling") == "0.92"
    for which in ("one_step", "full_song"):
        box = f"#pred-{which}"
        verdict = page.inner_text(f"{box} .verdict")
        right = int(re.match(r"(\d+)/50 right", verdict).group(1))
        image_shown(page, f"{box} img")
        roll = page.query_selector(f"{box} .roll")
        assert roll.get_attribute("data-notes") == "54" and int(roll.get_attribute("data-wrong")) == 50 - right
        assert len(roll.query_selector_all("rect.wrong")) == 50 - right
        element, decoded = audio_seconds(page, f"{box} audio")
        assert element > 1 and decoded > 1
    model_size = page.evaluate("""async () => {
        const link = [...document.querySelectorAll('#run-downloads a')].find(a => a.textContent === 'model file');
        return (await (await fetch(link.href)).arrayBuffer()).byteLength; }""")
    assert model_size > 10_000

    page.select_option("#strategy", "top-k")
    assert page.is_visible("#top_k") and not page.is_visible("#top_p") and page.is_visible("#temperature")
    page.fill("#top_k", "3")
    page.fill("#length", "16")
    page.fill("#gen-seed", "1")
    page.click("#generate-button")
    wait_until(page, "!document.querySelector('#generated').hidden", 120)
    assert len(page.inner_text("#generated-codes").split()) == 4 + 16
    image_shown(page, "#generated-score")
    element, decoded = audio_seconds(page, "#generated-audio")
    assert element > 1 and decoded > 1


def pixels_of(page, selector, color):
    """How many pixels of an image on the page are close to ``color`` (``#rrggbb``)."""
    return page.evaluate(
        """([selector, color]) => {
            const image = document.querySelector(selector);
            const canvas = document.createElement('canvas');
            canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
            const context = canvas.getContext('2d');
            context.drawImage(image, 0, 0);
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            const want = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
            let count = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i + 3] > 200 && want.every((value, k) => Math.abs(data[i + k] - value) < 24)) count++;
            }
            return count; }""",
        [selector, color],
    )


def test_the_analysis_marks_the_ambiguous_windows_on_the_score(page):
    from nabiya.web.analysis import PALETTE

    blue, orange = PALETTE[:2]
    wait_until(page, "document.querySelector('#analysis').dataset.state === 'shown'")
    assert page.is_visible("#analysis") and page.input_value("#analysis-window") == "4"  # stateful2's window
    assert "46 of 50 notes: 92%" in page.inner_text("#analysis-lead")
    assert page.inner_text("#analysis-tiles dt") == "92%"
    assert page.locator("#analysis-windows button").count() == 4
    image_shown(page, "#analysis-score")
    assert pixels_of(page, "#analysis-score", blue) > 50 and pixels_of(page, "#analysis-score", orange) > 50
    # Choose the first window: only it stays marked.
    page.click("#analysis-windows button >> nth=0")
    wait_until(page, "document.querySelector('#analysis-score').dataset.mark === '1'")
    image_shown(page, "#analysis-score")
    wait_until(page, "document.querySelector('#analysis-score').currentSrc.endsWith('mark=1')")
    assert pixels_of(page, "#analysis-score", blue) > 50 and pixels_of(page, "#analysis-score", orange) == 0
    # A window of 8 notes: every next note is certain, nothing to mark.
    page.select_option("#analysis-window", "8")
    wait_until(page, "document.querySelector('#analysis-lead').textContent.includes('always followed by the same note')")
    assert page.is_hidden("#analysis-marks") and page.get_attribute("#ceiling-chart", "data-chosen") == "8"


def test_upload_a_good_file_then_a_bad_one_and_the_page_stays_usable(page, tmp_path, monkeypatch, capsys):
    from nabiya.cli import main

    good = tmp_path / "up.abc"
    good.write_text("X:1\nT:Up\nM:3/4\nL:1/4\nK:D\nD E F|A2 d|]\n")
    bad = tmp_path / "bad.abc"
    bad.write_text("X:1\nT:Broken\nM:4/4\nL:1/0\nK:C\nCDEF|\n")
    monkeypatch.chdir(tmp_path)
    assert main(["convert", "bad.abc", "out.txt"]) == 2
    cli_message = capsys.readouterr().err.removeprefix("nabiya: error: ").strip()

    page.check("input[name=source][value=file]")
    page.set_input_files("#song-file", str(good))
    wait_until(page, "document.querySelector('#song-title').textContent === 'Up'")
    assert "3/4" in page.inner_text("#song-facts") and "D major" in page.inner_text("#song-facts")
    image_shown(page, "#song-score")

    page.set_input_files("#song-file", str(bad))
    wait_until(page, "!document.querySelector('#song-error').hidden")
    assert page.inner_text("#song-error") == cli_message
    assert page.inner_text("#song-title") == "Up"  # the last good song is still there to train on
    assert page.is_enabled("#train-button")

    page.check("input[name=source][value=builtin]")
    assert not page.is_visible("#song-error")
    page.select_option("#builtin-song", "twinkle")
    wait_until(page, "document.querySelector('#song-title').textContent.startsWith('Twinkle')")
    assert not page.is_visible("#song-error")


def test_two_tabs_train_at_once_and_the_second_waits_its_turn(browser, server_url):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    first, second = context.new_page(), context.new_page()
    try:
        for tab in (first, second):
            open_page(tab, server_url)
        second.fill("#seed", "7")  # the same song and model (compiled once), another seed
        train(first)
        train(second)
        for tab in (first, second):
            wait_until(tab, "!document.querySelector('#results').hidden", 240)
        # One worker: the second tab's job waited in the queue while the first one's ran.
        assert second.get_attribute("#train-view", "data-statuses").split()[:2] == ["queued", "running"]
        assert first.get_attribute("#train-view", "data-statuses").split()[0] == "running"
        assert "seed 5" in first.inner_text("#result-summary") and "seed 7" in second.inner_text("#result-summary")
        last_losses = [tab.get_attribute("#loss-chart", "data-last-loss") for tab in (first, second)]
        assert last_losses[0] != last_losses[1]
    finally:
        context.close()


def test_cancel_a_training_run(page):
    train(page, "5000")
    wait_until(page, "document.querySelector('#job-status').textContent.startsWith('Training: epoch')", 120)
    page.click("#cancel-button")
    wait_until(page, "document.querySelector('#job-status').textContent === 'Cancelled.'")
    assert page.is_enabled("#train-button") and not page.is_visible("#cancel-button")
    assert not page.is_visible("#results")


def test_new_tunes_from_a_corpus_model_seen_heard_and_downloaded(page, corpus_model_file, tmp_path):
    assert page.is_visible("#tunes") and page.input_value("#tunes-model") == "jigs"  # offered by --models
    meters = page.eval_on_selector_all("#tunes-meter option", "options => options.map(o => o.value)")
    assert meters == ["", "6/8", "4/4", "3/4"]  # 'from the corpus', then the model's meters
    page.select_option("#tunes-meter", "6/8")
    keys = page.eval_on_selector_all("#tunes-key option", "options => options.map(o => o.value)")
    assert keys == ["", "D major", "G major"]  # no tune in 6/8 is in a minor key
    page.select_option("#tunes-key", "D major")
    page.select_option("#tunes-strategy", "top-k")
    assert page.is_visible("#tunes-top_k") and not page.is_visible("#tunes-top_p")
    page.fill("#tunes-count", "2")
    page.fill("#tunes-length", "40")
    page.fill("#tunes-seed", "1")
    page.focus("#tunes-seed")
    page.keyboard.press("Enter")  # the keyboard alone makes tunes
    wait_until(page, "!document.querySelector('#tunes-view').hidden", 120)
    assert page.get_attribute("#tunes-status", "data-statuses").split()[-1] == "done"
    assert "top-k 5, seed 1" in page.inner_text("#tunes-how")
    assert page.locator("#tunes-list article").count() == 2
    for number in (1, 2):
        tune = f"#tunes-list article:nth-child({number})"
        assert "6/8 · D major" in page.inner_text(f"{tune} h3")
        image_shown(page, f"{tune} img")
        element, decoded = audio_seconds(page, f"{tune} audio")
        assert element > 0.5 and decoded > 0.5
        abc = page.eval_on_selector(f"{tune} pre", "element => element.textContent")
        assert "M:6/8" in abc and "\nK:D" in abc
        formats = page.eval_on_selector_all(f"{tune} .downloads a", "links => links.map(a => a.textContent)")
        assert formats == ["abc", "mid", "musicxml", "wav", "svg"]
    midi = page.evaluate("""async () => {
        const link = [...document.querySelectorAll('#tunes-list .downloads a')].find(a => a.textContent === 'mid');
        return new TextDecoder().decode((await (await fetch(link.href)).arrayBuffer()).slice(0, 4)); }""")
    assert midi == "MThd"

    # A broken model file: the reader's one line, and the panel goes on.
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(corpus_model_file.read_bytes()[:-100])
    page.set_input_files("#tunes-upload", str(broken))
    wait_until(page, "!document.querySelector('#tunes-error').hidden", 120)
    assert page.inner_text("#tunes-error").startswith("cannot load model 'broken.safetensors': ")
    assert page.is_enabled("#tunes-button") and page.input_value("#tunes-model") == "jigs"


def test_the_page_fits_a_phone(browser, server_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        open_page(phone, server_url)
        image_shown(phone, "#song-score")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
        for selector in ("#show-song", "#train-button", "#epochs", "#builtin-song", "#tunes-model", "#tunes-button"):
            box = phone.locator(selector).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
    finally:
        context.close()
