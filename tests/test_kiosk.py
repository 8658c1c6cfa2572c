"""Unattended operation: render failures degrade instead of stopping, dead threads restart, --check, SIGTERM."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from installation.app import Fallback, Piece
from installation.config import RuntimeConfig
from models.bundle import load_bundle
from models.render import Renderer

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "SDL_VIDEODRIVER": "dummy"}


class FlakyRenderer(Renderer):
    """The real renderer, made to fail: always with the upscaler, or always."""

    def __init__(self, bundle, fail_plain=False):
        super().__init__(bundle)
        self.fail_plain = fail_plain

    def render(self, latents, upscale=True):
        if upscale or self.fail_plain:
            raise RuntimeError("injected render failure")
        return super().render(latents, upscale)


def test_upscaler_failures_fall_back_to_plain_frames_and_the_loop_continues(tiny_bundle, tmp_path):
    bundle = load_bundle(tiny_bundle)
    status = tmp_path / "status.json"
    config = RuntimeConfig(model=str(tiny_bundle), osc=False, frames=60, status_file=str(status),
                           heartbeat_every=0.5, stats_every=3600.0)
    piece = Piece.from_config(config, bundle=bundle, renderer=FlakyRenderer(bundle))
    assert piece.run() == 0
    assert piece.frames_shown == 60
    assert piece.shown.shape == (64, 64, 3)  # generator frames without the upscaler
    report = json.loads(status.read_text())
    assert report["state"] == "stopped" and report["fallback"] == "no-upscaler"
    assert "injected render failure" in report["last_error"]


def test_a_renderer_that_always_fails_holds_a_still_frame(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    piece = Piece.from_config(RuntimeConfig(model=str(tiny_bundle), osc=False, frames=30, stats_every=3600.0),
                              bundle=bundle, renderer=FlakyRenderer(bundle, fail_plain=True))
    assert piece.run() == 0
    assert piece.frames_shown == 30 and piece.shown is not None


def test_fallback_levels_and_recovery():
    fallback = Fallback(failures=3, retry_seconds=10)
    for failures in (1, 2, 3):
        fallback.update(failures, "boom", now=1.0)
    assert fallback.level == "no-upscaler" and not fallback.upscale
    for failures in (4, 5, 6):
        fallback.update(failures, "boom", now=2.0)
    assert fallback.level == "still"
    assert fallback.may_render(3.0) and not fallback.may_render(3.5)
    fallback.update(0, None, now=5.0)
    assert fallback.level == "still"  # recovery waits for retry_seconds
    fallback.update(0, None, now=12.5)
    assert fallback.level == "no-upscaler"
    fallback.update(0, None, now=23.0)
    assert fallback.level == "none"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_dead_osc_thread_is_restarted_and_answers_again(tiny_bundle):
    port = free_port()
    config = RuntimeConfig(model=str(tiny_bundle), osc_port=port, heartbeat_every=0.5, stats_every=3600.0)
    piece = Piece.from_config(config, bundle=load_bundle(tiny_bundle))
    thread = threading.Thread(target=piece.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while piece.frames_shown < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        piece.services.osc.stop()  # the OSC thread dies
        deadline = time.monotonic() + 5
        while piece.health.restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert piece.health.restarts >= 1 and piece.services.osc.is_alive
        SimpleUDPClient("127.0.0.1", port).send_message("/masquerade/speed", 4.0)
        deadline = time.monotonic() + 5
        while piece.walker.speed != 4.0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert piece.walker.speed == 4.0
    finally:
        piece.request_stop()
        thread.join(5)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_camera_thread_is_restarted(tiny_bundle, tmp_path):
    import cv2

    from installation.controls import ControlState
    from installation.webcam import Webcam, WebcamConfig, open_capture

    video = tmp_path / "static.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for _ in range(10):
        writer.write(np.full((48, 64, 3), 90, np.uint8))
    writer.release()
    calls = []

    def dies_once(config):
        calls.append(config)
        if len(calls) == 1:
            raise SystemExit("camera thread killed")  # escapes the thread's own error handling
        return open_capture(config)

    webcam = Webcam(ControlState(), WebcamConfig(source=str(video)), capture_factory=dies_once).start()
    try:
        deadline = time.monotonic() + 5
        while webcam.alive and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not webcam.alive
        assert webcam.ensure_alive() and webcam.alive
        deadline = time.monotonic() + 5
        while webcam.frames == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert webcam.frames > 0
    finally:
        webcam.stop()


def test_check_reports_a_missing_bundle_and_a_busy_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "run_installation.py", "--check", "--model", "/nonexistent/bundle",
                                 "--osc-port", str(port), "--require-osc"], cwd=ROOT, env=ENV, capture_output=True,
                                text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("FAIL  bundle") and "/nonexistent/bundle does not exist" in line for line in lines)
    assert any(line.startswith("FAIL  osc") and f"OSC port {port}" in line for line in lines)
    assert any(line.startswith("ok    display") for line in lines)
    assert lines[-1] == "2 check(s) failed"


def test_check_passes_on_a_good_machine(tiny_bundle):
    result = subprocess.run([sys.executable, "run_installation.py", "--check", "--model", str(tiny_bundle),
                             "--osc-port", str(free_port())], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "all checks passed"


def test_sigterm_exits_within_a_second_and_the_status_file_says_so(tiny_bundle, tmp_path):
    status = tmp_path / "status.json"
    process = subprocess.Popen([sys.executable, "run_installation.py", "--no-osc", "--model", str(tiny_bundle),
                                "--windowed", "--status-file", str(status), "--heartbeat-every", "0.5"],
                               cwd=ROOT, env=ENV, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if status.exists() and json.loads(status.read_text())["frames_shown"] > 5:
            break
        time.sleep(0.1)
    assert json.loads(status.read_text())["state"] == "running"
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    assert time.monotonic() - signalled < 1.0
    assert process.returncode == 0
    report = json.loads(status.read_text())
    assert report["state"] == "stopped" and report["reason"] == "SIGTERM"
