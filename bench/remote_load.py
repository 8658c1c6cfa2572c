"""What the web remote costs the live loop under load: frame rate with and without a few hundred status polls a
second from another process.

The real `installation.app.Piece` loop (walk -> render worker -> screen surface on SDL's dummy driver) with its
remote on a loopback port, run in rounds that alternate between no client and a poller process that sends
`--rate` authenticated `GET /api/status` a second over keep-alive connections (plus the live view twice a
second, as an open remote page does). Loopback only, bounded in time and count.

    python bench/remote_load.py [--seconds 8] [--rounds 2] [--rate 300] [--model assets/models/default]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token-bench-token-bench"
MAX_REQUESTS = 100_000
POLLER_MARGIN = 1.0  # seconds the poller runs before and after the measured window


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def poll(port: int, rate: float, seconds: float, connections: int) -> dict:
    """The poller process: `rate` status requests a second, spread over keep-alive connections, for `seconds`."""
    counts: dict[str, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    per_connection = rate / connections

    def client(paths: list[str], every: float):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        next_at, sent = time.monotonic(), 0
        while time.monotonic() < stop_at and sent < MAX_REQUESTS:
            for path in paths:
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    key = str(response.status)
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    key = "error"
                with lock:
                    counts[key] = counts.get(key, 0) + 1
                sent += 1
            next_at += every
            time.sleep(max(0.0, next_at - time.monotonic()))
        connection.close()

    threads = [threading.Thread(target=client, args=(["/api/status"], 1.0 / per_connection))
               for _ in range(connections)]
    threads.append(threading.Thread(target=client, args=(["/api/thumbnail.jpg"], 0.5)))
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    return {"requests_per_s": counts.get("200", 0) / elapsed, "counts": counts}


def run_round(bundle, model: str, seconds: float, size: int, fps: float, rate: float) -> dict:
    from installation.app import Piece
    from installation.config import RuntimeConfig
    from installation.display import Display

    port = free_port()
    config = RuntimeConfig(model=model, windowed=True, width=size, height=size, fps=fps, frames=0, osc=False,
                           captions=False, stats_every=3600.0, remote=True, remote_port=port, remote_token=TOKEN)
    piece = Piece.from_config(config, bundle=bundle, display=Display(windowed=True, size=(size, size)))
    poller = None
    counts: dict = {}
    warm_up = 2.0

    def measure():
        nonlocal poller
        time.sleep(warm_up)
        if rate:  # the poller runs a second longer on each side than the measured window
            poller = subprocess.Popen([sys.executable, __file__, "--poller", str(port), str(rate),
                                       str(seconds + 2 * POLLER_MARGIN)], stdout=subprocess.PIPE, text=True)
            time.sleep(POLLER_MARGIN)
        frames, new, began = piece.frames_shown, piece.new_frames, time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - began
        counts.update(fps=(piece.frames_shown - frames) / elapsed, new_fps=(piece.new_frames - new) / elapsed)
        if poller is not None:
            counts["poller"] = poller.communicate(timeout=60)[0]
        piece.request_stop()

    timer = threading.Thread(target=measure)
    timer.start()
    piece.run()
    timer.join()
    piece.display.close()
    if poller is not None:
        counts.update(json.loads(counts.pop("poller").strip().splitlines()[-1]))
    return counts


def main(argv=None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--poller"]:
        port, rate, seconds = int(arguments[1]), float(arguments[2]), float(arguments[3])
        print(json.dumps(poll(port, rate, seconds, connections=4)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per round (at most 60)")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of rounds, without and with load (at most 5)")
    parser.add_argument("--rate", type=float, default=300.0, help="status polls a second (at most 2000)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--fps", type=float, default=30.0, help="the display's frame-rate target")
    parser.add_argument("--model", default=str(ROOT / "assets" / "models" / "default"))
    args = parser.parse_args(arguments)
    seconds, rounds, rate = min(args.seconds, 60.0), min(args.rounds, 5), min(args.rate, 2000.0)
    from models.bundle import load_bundle

    bundle = load_bundle(args.model)
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}; {args.size}x{args.size}, display "
          f"target {args.fps:g} fps, {seconds:g} s per round, {rate:g} status polls/s when loaded")
    results: dict[str, list[dict]] = {"idle": [], "loaded": []}
    for index in range(rounds):
        for name, polls in (("idle", 0.0), ("loaded", rate)):
            result = run_round(bundle, args.model, seconds, args.size, args.fps, polls)
            results[name].append(result)
            served = (f", {result['requests_per_s']:.0f} requests/s answered 200 {result['counts']}"
                      if polls else "")
            print(f"  round {index + 1} {name:<6}: {result['fps']:5.1f} frames/s shown, {result['new_fps']:5.1f} new "
                  f"pictures/s{served}")

    def mean(name, key):
        return sum(result[key] for result in results[name]) / len(results[name])

    for key, label in (("fps", "frames shown"), ("new_fps", "new pictures")):
        idle, loaded = mean("idle", key), mean("loaded", key)
        print(f"{label:>13}/s: {idle:5.1f} idle, {loaded:5.1f} under load: cost {100 * (1 - loaded / idle):.1f}% "
              "(target < 10%; below 0: none measurable)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
