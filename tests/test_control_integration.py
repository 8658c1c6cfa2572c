"""OSC and webcam steering the real live loop (headless): real UDP on loopback, a real VideoCapture."""

import functools
import socket
import threading
import time

import cv2
import numpy as np
from conftest import wait_until
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from installation.app import Piece
from installation.config import RuntimeConfig
from models.bundle import load_bundle


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_piece(piece: Piece) -> threading.Thread:
    thread = threading.Thread(target=piece.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while piece.frames_shown < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    return thread


wait_for = functools.partial(wait_until, timeout=5.0, interval=0.01)

class Listener:
    """A real OSC receiver on loopback that records every message."""

    def __init__(self):
        self.messages = []
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: self.messages.append((address, args)))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def addresses(self):
        return [address for address, _ in list(self.messages)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_osc_steers_the_live_loop_and_feedback_reports_loop_wraps(tiny_bundle):
    listener = Listener()
    port = free_port()
    config = RuntimeConfig(model=str(tiny_bundle), mode="loop", loop_keyframes=2, seconds_per_keyframe=0.15,
                           osc_port=port, feedback_host="127.0.0.1", feedback_port=listener.port,
                           feedback_every=0.1, stats_every=3600.0)
    piece = Piece.from_config(config, bundle=load_bundle(tiny_bundle))
    thread = start_piece(piece)
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        client.send_message("/masquerade/speed", 2.5)
        assert wait_for(lambda: piece.walker.speed == 2.5)
        client.send_message("/masquerade/truncation", 7.0)  # out of range: clamped, not fatal
        assert wait_for(lambda: piece.walker.config.truncation == 2.0)
        client.send_message("/masquerade/query", [])
        assert wait_for(lambda: "/masquerade/value/speed" in listener.addresses())
        assert wait_for(lambda: "/masquerade/loop/wrap" in listener.addresses())
        assert "/masquerade/state" in listener.addresses()
        speed_reply = [args for address, args in listener.messages if address == "/masquerade/value/speed"]
        assert speed_reply[-1][0] == 2.5
        client.send_message("/masquerade/pause", True)
        assert wait_for(lambda: piece.walker.paused)
        shown = piece.frames_shown
        assert wait_for(lambda: piece.frames_shown > shown + 5)  # paused walk, display keeps running
    finally:
        piece.request_stop()
        thread.join(5)
        listener.close()
    assert not thread.is_alive()


def test_a_busy_osc_port_is_one_clear_line_and_the_piece_runs_without_osc(tiny_bundle):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "run_installation.py", "--model", str(tiny_bundle), "--windowed",
                                 "--osc-port", str(port), "--frames", "5"], cwd=root, capture_output=True, text=True,
                                env={"PATH": "/usr/bin:/bin", "SDL_VIDEODRIVER": "dummy", "PYTHONPATH": str(root),
                                     "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=120)
    assert result.returncode == 0, result.stderr  # --require-osc refuses instead (tests/test_runtime_hardening.py)
    (line,) = [line for line in result.stderr.splitlines() if "running without OSC control" in line]
    assert f"OSC port {port} on 127.0.0.1 is already in use" in line and "Traceback" not in result.stderr
    assert "stopped after 5 frames" in result.stderr


def moving_square_video(path, frames=60):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    for index in range(frames):
        image = np.zeros((120, 160, 3), np.uint8)
        x = (index * 9) % 130
        image[30:90, x : x + 30] = 255
        writer.write(image)
    writer.release()
    return path


def test_webcam_motion_speeds_up_the_live_walk(tiny_bundle, tmp_path):
    video = moving_square_video(tmp_path / "visitors.avi")
    config = RuntimeConfig(model=str(tiny_bundle), osc=False, webcam=str(video), stats_every=3600.0)
    piece = Piece.from_config(config, bundle=load_bundle(tiny_bundle))
    thread = start_piece(piece)
    try:
        assert wait_for(lambda: piece.walker.speed > 1.5, timeout=10)
    finally:
        piece.request_stop()
        thread.join(5)


def test_a_camera_that_cannot_be_opened_does_not_stop_the_piece(tiny_bundle):
    config = RuntimeConfig(model=str(tiny_bundle), osc=False, webcam="97", frames=40, stats_every=3600.0)
    piece = Piece.from_config(config, bundle=load_bundle(tiny_bundle))
    assert piece.run() == 0
    assert piece.frames_shown == 40


def test_the_config_file_carries_a_webcam_table(tmp_path):
    import argparse

    import pytest

    from installation import config as runtime_config

    path = tmp_path / "piece.toml"
    path.write_text('[control]\nwebcam = "2"\n[webcam]\nfps = 10.0\n'
                    'mapping = { motion = { to = "blend", in = [0, 0.1], out = [0.0, 0.6] } }\n')
    parser = argparse.ArgumentParser()
    runtime_config.add_arguments(parser)
    config = runtime_config.resolve(parser.parse_args(["--config", str(path)]))
    webcam = config.webcam_config()
    assert webcam.source == 2 and webcam.fps == 10.0
    assert webcam.mapping.to_dict()["motion"]["to"] == "blend"
    reprinted = tmp_path / "again.toml"
    reprinted.write_text(config.to_toml())
    assert runtime_config.resolve(parser.parse_args(["--config", str(reprinted)])) == config
    path.write_text('[webcam]\nmapping = { motion = { to = "speed", inn = [0, 1] } }\n')
    with pytest.raises(ValueError, match="webcam mapping motion: unknown key 'inn'"):
        runtime_config.resolve(parser.parse_args(["--config", str(path)]))
