"""OSC into the real live loop: send -> first displayed frame that reflects it, and the rate absorbed.

    python bench/osc_live.py [--seconds 4]

The real `Piece` (SDL dummy video driver, 256x256 window, the real-time upscaler bundle of
bench/live_fps.py) listens for OSC on loopback. Latency: a message changing `offset_amount` is sent at t0;
the loop applies it at its next frame, which bumps its steering stamp and requests a render at once; t1 is
when a frame rendered for that stamp (or later) is first put on screen. Polled at 0.5 ms in this thread.
Absorption: a sender *process* (as TouchDesigner is) floods messages at a fixed rate while the display
frame rate is compared with an idle run in the same process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from live_fps import make_bundle  # noqa: E402
from osc_latency import sender_main  # noqa: E402
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from installation.app import Piece  # noqa: E402
from installation.config import RuntimeConfig  # noqa: E402
from installation.display import Display  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(bundle_dir: Path, port: int, fps: float) -> tuple[Piece, threading.Thread]:
    config = RuntimeConfig(model=str(bundle_dir), windowed=True, width=256, height=256, fps=fps, osc_port=port,
                           stats_every=3600.0)
    piece = Piece.from_config(config, display=Display(windowed=True, size=(256, 256)))
    thread = threading.Thread(target=piece.run, daemon=True)
    thread.start()
    while piece.frames_shown < 30:
        time.sleep(0.01)
    return piece, thread


def wait(condition, timeout=2.0) -> bool:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.0005)
    return True


def latency(piece: Piece, port: int, count: int) -> np.ndarray:
    client = SimpleUDPClient("127.0.0.1", port)
    samples = []
    for index in range(count):
        before = piece.stamp
        began = time.perf_counter()
        client.send_message("/masquerade/offset_amount", float(1 + index % 2))
        if wait(lambda before=before: piece.stamp > before):
            target = piece.stamp
            if wait(lambda target=target: piece.shown_stamp >= target):
                samples.append(time.perf_counter() - began)
        time.sleep(0.05 + 0.05 * np.random.default_rng(index).random())  # land at random frame phases
    return 1000 * np.asarray(samples)


def displayed_fps(piece: Piece, seconds: float) -> float:
    frames, began = piece.frames_shown, time.perf_counter()
    time.sleep(seconds)
    return (piece.frames_shown - frames) / (time.perf_counter() - began)


def absorbed(piece: Piece, port: int, rate: float, seconds: float) -> tuple[float, float]:
    sent = multiprocessing.Value("q", 0)
    before = piece.services.osc.stats().applied
    sender = multiprocessing.Process(target=sender_main, args=(port, rate, seconds, time.monotonic() + 0.2, sent))
    sender.start()
    time.sleep(0.2)
    fps = displayed_fps(piece, seconds)
    sender.join()
    return (piece.services.osc.stats().applied - before) / seconds, fps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--count", type=int, default=60, help="latency samples")
    parser.add_argument("--rate", type=float, default=10_000.0, help="messages per second for absorption")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        bundle_dir = make_bundle(Path(scratch) / "bundle", 64, 0.25)
        port = free_port()
        piece, thread = start(bundle_dir, port, args.fps)
        try:
            samples = latency(piece, port, args.count)
            idle = displayed_fps(piece, args.seconds)
            rate, loaded = absorbed(piece, port, args.rate, args.seconds)
        finally:
            piece.request_stop()
            thread.join(5)
    interval = 1000 / args.fps
    render = piece.health.render_ms
    print(f"{os.cpu_count()} CPU cores, display target {args.fps:.0f} fps ({interval:.1f} ms), "
          f"render {render:.1f} ms")
    print(f"  OSC -> displayed frame: median {np.median(samples):.1f} ms, p99 {np.percentile(samples, 99):.1f} ms "
          f"over {len(samples)} messages (target median <= {interval + render:.1f} ms = frame + render)")
    print(f"  absorbed {rate:,.0f} messages/s (sent at {args.rate:,.0f}/s); display {loaded:.1f} fps vs "
          f"{idle:.1f} idle ({100 * (loaded / idle - 1):+.1f}%, target within 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
