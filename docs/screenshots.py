"""Take the README's screenshots of the playground (run by hand: ``python docs/screenshots.py [MODELS]``).

Starts ``nabiya serve`` on a free port, drives Debian's Chromium headless with Playwright,
trains the tutorial's MLP on 나비야 (it stops at the 92% a 4-note window allows, so the wrong
notes show in red), and writes three small PNGs beside this file:

- ``playground.png``: training (loss and accuracy, the ceiling dashed) and the one-step
  prediction, at desktop width;
- ``playground-analysis.png``: the song analysis, its ambiguous windows marked on the score;
- ``playground-phone.png``: the top of the page at a phone's width;
- ``playground-tunes.png``, when a folder of corpus models is given (``nabiya serve --models
  MODELS``): new jigs in D major from its first model, top-p 0.9, seed 3. The README's was made
  from ``nabiya train --corpus oneills1850 --minutes 5 --size 128 --embedding-size 64 --out
  MODELS/oneills`` (250 steps, validation NLL 2.39 nats per note against the 10-gram's 2.45).

Needs ``pip install playwright`` and ``apt-get install chromium`` (and, for Hangul in the
title, a Korean font such as ``fonts-nanum``). Colours are reduced so that the files stay small.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

HERE = Path(__file__).parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio",
                 "--hide-scrollbars"]


def wait_until(page, condition: str, seconds: float = 300.0) -> None:
    deadline = time.monotonic() + seconds
    while not page.evaluate(f"() => ({condition})"):
        if time.monotonic() > deadline:
            raise TimeoutError(condition)
        time.sleep(0.1)


def shrink(path: Path, colors: int = 128) -> None:
    """Fewer colours, same pixels: a screenshot of flat colours compresses several times smaller.

    An octree keeps small areas of distinct colour (the analysis's six window colours, the red
    of a wrong note) that median cut merges into their neighbours.
    """
    image = Image.open(path).convert("RGB")
    image.quantize(colors=colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)


def clip(page, name: str, first: str, last: str) -> None:
    """A picture of the page from the top of ``first`` to the bottom of ``last`` (CSS selectors)."""
    top, bottom = page.evaluate(f"""() => [
        document.querySelector({first!r}).getBoundingClientRect().top + scrollY - 8,
        document.querySelector({last!r}).getBoundingClientRect().bottom + scrollY + 8]""")
    page.screenshot(path=HERE / name, full_page=True, clip={"x": 0, "y": top, "width": 1000, "height": bottom - top})


def main(models: str | None = None) -> None:
    command = [sys.executable, "-m", "nabiya", "serve", "--port", "0", *(["--models", models] if models else [])]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"http://\S+", server.stdout.readline()).group(0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)

            phone = browser.new_page(viewport={"width": 390, "height": 780}, device_scale_factor=1, is_mobile=True)
            phone.goto(url)
            wait_until(phone, "document.body.dataset.ready === 'true' "
                              "&& document.querySelector('#song-score').naturalWidth > 0")
            phone.screenshot(path=HERE / "playground-phone.png")

            page = browser.new_page(viewport={"width": 1000, "height": 900}, device_scale_factor=1)
            page.goto(url)
            wait_until(page, "document.body.dataset.ready === 'true'")
            page.select_option("#preset", "mlp")
            page.click("#train-button")
            wait_until(page, "!document.querySelector('#results').hidden")
            wait_until(page, "[...document.querySelectorAll('#results img, #analysis img')]"
                             ".every(image => image.complete && image.naturalWidth > 0)")
            clip(page, "playground.png", "#train", "#pred-one_step .listen")
            clip(page, "playground-analysis.png", "#analysis", "#analysis-windows")
            if models:
                tunes(page)
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    for name in ("playground.png", "playground-analysis.png", "playground-phone.png") + (
            ("playground-tunes.png",) if models else ()):
        shrink(HERE / name)
        print(f"wrote docs/{name}: {(HERE / name).stat().st_size / 1000:.0f} kB")


def tunes(page) -> None:
    """Two jigs in D major from the first corpus model offered; the panel down to the first tune's downloads."""
    page.select_option("#tunes-meter", "6/8")
    page.select_option("#tunes-key", "D major")
    page.select_option("#tunes-strategy", "top-p")
    page.fill("#tunes-length", "200")
    page.fill("#tunes-seed", "3")
    page.click("#tunes-button")
    wait_until(page, "!document.querySelector('#tunes-view').hidden")
    wait_until(page, "[...document.querySelectorAll('#tunes-list img')]"
                     ".every(image => image.complete && image.naturalWidth > 0)")
    clip(page, "playground-tunes.png", "#tunes", "#tunes-list article:nth-child(1) .downloads")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
