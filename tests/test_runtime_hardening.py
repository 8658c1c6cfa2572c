"""The running piece under hostile controls and a careless operator: a frozen picture is noticed, a failed
screenshot or a busy OSC port does not stop the show, signals end it cleanly."""

import json
import logging
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
from conftest import wait_until
from pythonosc.udp_client import SimpleUDPClient
from support import killed_on_exit

from installation.app import Piece
from installation.config import RuntimeConfig
from models.bundle import load_bundle
from models.render import Renderer

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "SDL_VIDEODRIVER": "dummy"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def status_of(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


class RunningPiece:
    """A real Piece (real renderer, real OSC server, real heartbeat) running headless in a thread."""

    def __init__(self, bundle_path, **settings):
        config = RuntimeConfig(model=str(bundle_path), heartbeat_every=0.5, stats_every=3600.0, **settings)
        self.piece = Piece.from_config(config, bundle=load_bundle(bundle_path))
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.code = None

    def run(self):
        self.code = self.piece.run()

    def __enter__(self):
        self.thread.start()
        assert wait_until(lambda: self.piece.frames_shown >= 3, timeout=90)
        return self.piece

    def __exit__(self, *exc_info):
        self.piece.request_stop()
        self.thread.join(10)


def heartbeats(sock: socket.socket) -> list[tuple]:
    """The /masquerade/heartbeat messages waiting on a feedback listener."""
    from pythonosc.osc_message import OscMessage

    found = []
    while True:
        try:
            message = OscMessage(sock.recv(65536))
        except (BlockingIOError, TimeoutError):
            return found
        if message.address == "/masquerade/heartbeat":
            found.append(tuple(message.params))


def test_blend_at_its_maximum_keeps_the_picture_changing(tiny_bundle, tmp_path):
    """`/masquerade/blend 1.0` over UDP used to return the previous frame forever while the status said 30 fps."""
    port, status = free_port(), tmp_path / "status.json"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.setblocking(False)
        with RunningPiece(tiny_bundle, osc_port=port, status_file=str(status), speed=4.0,
                          feedback_host="127.0.0.1", feedback_port=listener.getsockname()[1]) as piece:
            SimpleUDPClient("127.0.0.1", port).send_message("/masquerade/blend", 1.0)
            assert wait_until(lambda: piece.controls.get("blend") == 1.0)
            time.sleep(0.3)
            before_frames, before_picture = piece.new_frames, piece.shown.copy()
            before_status = status_of(status).get("new_frames", 0)
            heartbeats(listener)
            time.sleep(2.0)
            assert piece.new_frames - before_frames > 10
            assert not np.array_equal(piece.shown, before_picture)
            report = status_of(status)
            assert report["state"] == "running" and report["new_frames"] > before_status
            assert report["fps"] > 3 and report["seconds_since_new_frame"] < 1.0
            beats = heartbeats(listener)
            assert len(beats) >= 2 and beats[-1][2] > beats[0][2] >= before_frames  # distinct pictures, rising


def test_a_trail_reaches_a_still_picture_exactly(tiny_bundle):
    """Paused, with the longest trail, the screen converges on the rendered frame (no residue of the old one)."""
    with RunningPiece(tiny_bundle, osc=False) as piece:
        piece.controls.set("blend", 1.0, "keyboard")
        piece.controls.set("pause", True, "keyboard")
        assert wait_until(lambda: piece.target is not None and np.array_equal(piece.shown, piece.target), 10.0)


class FrozenRenderer(Renderer):
    """The real renderer, made to return the same picture whatever the latents (a stuck pipeline)."""

    first = None

    def render(self, latents, upscale=True):
        frames = super().render(latents, upscale)
        if self.first is None or self.first.shape != frames.shape[1:]:
            self.first = frames[0]
        return np.broadcast_to(self.first, frames.shape).copy()


@pytest.fixture
def watchdog(tmp_path, monkeypatch):
    """A real systemd-style notify socket: collects what the piece sends to it."""
    path = Path(f"/tmp/masq-notify-{os.getpid()}-{time.monotonic_ns()}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    def received() -> list[str]:
        messages = []
        while True:
            try:
                messages.append(sock.recv(256).decode())
            except TimeoutError:
                return messages

    yield received
    sock.close()
    path.unlink(missing_ok=True)


def test_no_new_picture_while_walking_is_a_stall_and_starves_the_watchdog(tiny_bundle, tmp_path, watchdog):
    status = tmp_path / "status.json"
    bundle = load_bundle(tiny_bundle)
    config = RuntimeConfig(model=str(tiny_bundle), osc=False, status_file=str(status), heartbeat_every=0.5,
                           stall_seconds=1.0, stats_every=3600.0)
    piece = Piece.from_config(config, bundle=bundle, renderer=FrozenRenderer(bundle))
    thread = threading.Thread(target=piece.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: status_of(status).get("state") == "stalled", timeout=90)
        assert "no new picture" in status_of(status)["last_error"]
        watchdog()
        time.sleep(1.0)
        assert "WATCHDOG=1" not in watchdog()
        piece.controls.set("pause", True, "keyboard")  # a paused walk holds its picture on purpose
        assert wait_until(lambda: status_of(status).get("state") == "running", timeout=5)
        time.sleep(0.5)
        assert "WATCHDOG=1" in watchdog()
    finally:
        piece.request_stop()
        thread.join(10)
    assert status_of(status)["state"] == "stopped"


def run_app(*args, timeout=180):
    return subprocess.run([sys.executable, "run_installation.py", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("pattern", ["shots/{fram}.png", "shots/{0}.png", "{frame:s}.png", "{frame.real}.png"])
def test_a_bad_screenshot_pattern_is_refused_at_start(pattern):
    result = run_app("--no-osc", "--screenshot", pattern, "--screenshot-every", "10")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: screenshot = '{pattern}' is not a usable file name pattern")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("blocker", ["folder", "file"])
def test_failed_screenshots_are_logged_and_the_show_goes_on(tiny_bundle, tmp_path, blocker):
    """A screenshot that cannot be written (pygame.error on a folder of that name; OSError when the folder
    cannot be made) used to end the piece with exit 1 and no final status."""
    if blocker == "folder":
        (tmp_path / "shot_00005.png").mkdir()
        for frame in range(10, 45, 5):
            (tmp_path / f"shot_{frame:05d}.png").mkdir()
        pattern = tmp_path / "shot_{frame:05d}.png"
    else:
        (tmp_path / "plain-file").write_text("not a folder")
        pattern = tmp_path / "plain-file" / "shot_{frame:05d}.png"
    status = tmp_path / "status.json"
    result = run_app("--no-osc", "--model", str(tiny_bundle), "--windowed", "--width", "160", "--height", "120",
                     "--frames", "40", "--screenshot", str(pattern), "--screenshot-every", "5",
                     "--status-file", str(status))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "not written" in line]
    assert len(warnings) == 1  # eight failures (every 5th frame and on exit), one line: rate-limited
    report = json.loads(status.read_text())
    assert report["state"] == "stopped" and report["frames_shown"] == 40


def test_the_s_key_with_an_unwritable_screenshot_keeps_the_piece_running(tiny_bundle, tmp_path, caplog):
    from installation.display import Display

    (tmp_path / "taken.png").mkdir()
    config = RuntimeConfig(model=str(tiny_bundle), osc=False, kiosk=True, screenshot=str(tmp_path / "taken.png"),
                           stats_every=3600.0)
    piece = Piece.from_config(config, bundle=load_bundle(tiny_bundle), display=Display(windowed=True, size=(160, 120)))
    try:
        with caplog.at_level(logging.WARNING, logger="masquerade"):
            piece.handle_key("s", False, False)
        assert any("not written" in record.getMessage() for record in caplog.records)
        assert not piece.stop_requested.is_set()
    finally:
        piece.display.close()


def start_piece(tmp_path, tiny_bundle, *args):
    status = tmp_path / "status.json"
    process = subprocess.Popen([sys.executable, "run_installation.py", "--no-osc", "--model", str(tiny_bundle),
                                "--windowed", "--status-file", str(status), "--heartbeat-every", "0.5", *args],
                               cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, status


def test_sighup_stops_the_piece_like_sigterm(tiny_bundle, tmp_path):
    """SIGHUP (a closed ssh session) used to kill the piece with 129 and leave the status "running"."""
    process, status = start_piece(tmp_path, tiny_bundle)
    try:
        assert wait_until(lambda: status_of(status).get("frames_shown", 0) > 5, timeout=120, interval=0.1)
        process.send_signal(signal.SIGHUP)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    report = status_of(status)
    assert report["state"] == "stopped" and report["reason"] == "SIGHUP"


def catches(pid: int, signum: int) -> bool:
    """Whether a process has installed a handler for a signal (Linux: the SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads signal masks from /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM])
def test_a_signal_while_starting_is_one_line(tiny_bundle, tmp_path, signum):
    """Ctrl-C while the model loads used to print a KeyboardInterrupt traceback; SIGHUP killed it silently."""
    process, _ = start_piece(tmp_path, tiny_bundle, "--log-level", "error")  # the one line is all it says
    with killed_on_exit(process):
        assert wait_until(lambda: catches(process.pid, signal.SIGHUP), timeout=60)  # the piece's handlers are in
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    assert err == f"interrupted by {signal.Signals(signum).name} while starting; nothing shown\n"


def test_a_busy_osc_port_leaves_the_piece_running_and_the_port_is_retried(tiny_bundle, tmp_path, caplog):
    status = tmp_path / "status.json"
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        with caplog.at_level(logging.WARNING), RunningPiece(tiny_bundle, osc_port=port, osc_retry_seconds=1.0,
                                                            status_file=str(status)) as piece:
            assert wait_until(lambda: status_of(status).get("osc", "").startswith("unavailable"), timeout=5)
            assert f"OSC port {port} on 127.0.0.1 is already in use" in status_of(status)["osc"]
            assert any("running without OSC control" in record.getMessage() for record in caplog.records)
            shown = piece.new_frames
            assert wait_until(lambda: piece.new_frames > shown + 10, timeout=10)  # the picture goes on
            taken.close()
            assert wait_until(lambda: status_of(status).get("osc", "").startswith("listening"), timeout=10)
            SimpleUDPClient("127.0.0.1", port).send_message("/masquerade/speed", 4.0)
            assert wait_until(lambda: piece.walker.speed == 4.0, timeout=5)
    finally:
        taken.close()


def test_require_osc_fails_fast_before_loading_the_model():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_app("--require-osc", "--osc-port", str(port), "--model", "/nonexistent/bundle")
        checked = run_app("--check", "--osc-port", str(port))
    assert result.returncode == 2
    assert result.stderr == f"error: OSC port {port} on 127.0.0.1 is not available (Address already in use)\n"
    osc_line = next(line for line in checked.stdout.splitlines() if "osc" in line.split()[:2])
    assert osc_line.startswith("warn  osc") and "will run without OSC control" in osc_line
    assert checked.stdout.splitlines()[-1].endswith("(1 warning)")


def test_a_webcam_video_file_that_does_not_exist_is_refused_at_start(tmp_path):
    missing = tmp_path / "nonexistent.mp4"
    result = run_app("--no-osc", "--webcam", str(missing), timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"error: webcam video file {missing} does not exist (or is not a file); give a camera " \
                            "index, a video file, a stream URL or none\n"


def test_an_unwritable_status_file_is_one_warning_not_one_per_beat(tiny_bundle, tmp_path, caplog):
    (tmp_path / "plain-file").write_text("not a folder")
    config = RuntimeConfig(model=str(tiny_bundle), osc=False, frames=75, fps=30.0, heartbeat_every=0.5,
                           status_file=str(tmp_path / "plain-file" / "status.json"), stats_every=3600.0)
    with caplog.at_level(logging.WARNING, logger="installation.kiosk"):
        piece = Piece.from_config(config, bundle=load_bundle(tiny_bundle))
        assert piece.run() == 0  # 2.5 s: six beats and the final write
    warnings = [record for record in caplog.records if "cannot write status file" in record.getMessage()]
    assert len(warnings) == 1
