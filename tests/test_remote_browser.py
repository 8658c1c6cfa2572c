"""The web remote in a real browser (Debian's Chromium driven by Playwright) against a running piece."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Reads the live view's pixels in the page (a blob: image is same-origin, so a canvas may read it) as a checksum.
PIXEL_SUM = """(image) => {
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let index = 0; index < data.length; index += 1) sum = (sum * 31 + data[index] * (index % 97 + 1)) >>> 0;
  return sum;
}"""


def chromium() -> str:
    """Debian's Chromium (.ci/run installs it); Playwright must not download a browser of its own."""
    path = shutil.which("chromium")
    if path is None:
        message = "chromium not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the browser test")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def piece(tmp_path_factory):
    """The real piece in a subprocess (SDL's dummy video driver), its remote on a free loopback port."""
    folder = tmp_path_factory.mktemp("remote_piece")
    port = free_port()
    environment = {**os.environ, "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    log = open(folder / "piece.log", "w")
    process = subprocess.Popen(
        [sys.executable, "run_installation.py", "--windowed", "--width", "256", "--height", "256", "--no-osc",
         "--no-captions", "--remote", "--remote-port", str(port), "--remote-token-file", str(folder / "token"),
         "--status-file", str(folder / "status.json"), "--heartbeat-every", "0.5", "--stats-every", "3600"],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen(url + "/", timeout=2).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"the piece's remote did not answer: {(folder / 'piece.log').read_text()[-2000:]}")
    token = (folder / "token").read_text().strip()
    yield url, token, folder
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        yield launched
        launched.close()


def wait_for(page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function evaluates strings in the
    page, which the remote's Content-Security-Policy forbids, as it should.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {expression}")
        time.sleep(0.05)


def sign_in(page, url: str, token: str) -> None:
    page.goto(url + "/")
    page.locator("#token").wait_for(state="visible", timeout=15000)
    assert page.locator("#controls").is_hidden()
    page.fill("#token", token)
    page.click("#sign-in")
    page.locator("#controls").wait_for(state="visible", timeout=15000)
    wait_for(page, "document.getElementById('live').dataset.frame")


def live_pixels(page) -> int:
    """The live view's pixel checksum, once a newer picture than the one shown now has arrived."""
    frame = page.get_attribute("#live", "data-frame")
    wait_for(page, f"document.getElementById('live').dataset.frame !== {json.dumps(frame)} && "
             "document.getElementById('live').complete")
    return page.eval_on_selector("#live", PIXEL_SUM)


def test_a_phone_sized_screen_has_no_horizontal_scrolling(piece, browser):
    url, token, folder = piece
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    sign_in(page, url, token)
    wait_for(page, "document.getElementById('fps').textContent !== '–'", 15)
    widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[2] and widths[1] <= widths[2], widths
    box = page.locator("#live").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    page.screenshot(path=str(folder / "remote_phone.png"), full_page=True)
    context.close()


def test_pause_stops_the_live_view_and_next_changes_it(piece, browser):
    url, token, _ = piece
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    sign_in(page, url, token)
    wait_for(page, "document.getElementById('state').textContent === 'running'", 15)
    assert live_pixels(page) != live_pixels(page)  # the walk moves

    page.click("#pause")
    wait_for(page, "document.getElementById('state').textContent === 'paused'", 10)
    assert page.text_content("#pause") == "Resume"
    time.sleep(1.5)  # the last frames asked for before the pause arrive
    still = live_pixels(page)
    assert live_pixels(page) == still and live_pixels(page) == still

    # Stand still (speed 0) and resume, so only a keyframe jump can change the picture; then press next.
    page.fill("#speed", "0")
    wait_for(page, "document.getElementById('speed-value').textContent === '0'", 10)
    page.click("#pause")
    wait_for(page, "document.getElementById('state').textContent === 'running'", 10)
    time.sleep(1.0)
    standing = live_pixels(page)
    assert live_pixels(page) == standing
    page.click("#next")
    deadline = time.monotonic() + 10
    while live_pixels(page) == standing and time.monotonic() < deadline:
        pass
    assert live_pixels(page) != standing
    page.close()


def test_health_has_the_status_files_fields(piece):
    url, token, folder = piece
    request = urllib.request.Request(url + "/health", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        health = json.loads(response.read())
    status = json.loads((folder / "status.json").read_text())
    assert set(health) == set(status) and health["state"] in ("running", "stalled")
    assert health["remote"].startswith("listening on 127.0.0.1:")
