"""Soak test: the real live loop for many frames under OSC and webcam load; RSS, threads and frame rate.

    python bench/soak.py --frames 100000                 # the issue-9 figure (minutes at --fps 240)
    python bench/soak.py --frames 3000 --every 500       # a quick check
    python bench/soak.py --frames 100000 --json soak.json --tracemalloc

What runs, all in this process except the OSC traffic:
- `installation.app.Piece` with a real `Display` (SDL dummy video driver, a small window), its render
  worker, heartbeat (status file every second) and services, on a tiny untrained bundle with the shapes
  of the tests' `make_bundle` (or `--model BUNDLE`);
- the webcam thread reading a generated MJPG .avi with a moving disc and a pulsing brightness, looped
  (so the capture is re-opened every few seconds), with the corner preview on;
- OSC: a sender *process* (it does not share our GIL, like TouchDesigner) sends a mix of messages at
  `--rate` per second to the piece's port: speed, truncation, next, seed, query, offsets, mode, upscale,
  Transpose-By-Name messages, bundles, unknown addresses and malformed packets. Every other 10 s it
  leaves speed and truncation alone so the webcam takes them back after the hold. The same process is
  the sink for the piece's OSC feedback (state every 0.05 s, query replies, heartbeats) and counts it.

Every `--every` displayed frames the display hook samples the frame rate over those frames, the longest
gap between two frames (a stall the systemd watchdog would see), RSS (VmRSS from /proc/self/status),
Python threads (threading.active_count()) and OS threads. The table gives, per `--block` frames,
min/median/max of the sampled frame rates, the longest gap, RSS and thread counts; the
summary compares RSS at `--warmup` (fraction of the frames) with the end. Ctrl-C (or SIGTERM) stops the
piece cleanly and prints the partial table. `--tracemalloc` diffs Python allocations between the
warm-up point and the end (slower, and RSS then includes tracemalloc's own tables, so it is not
judged; native TensorFlow memory is not traced).

Exit status: 0 when RSS growth after warm-up <= --max-rss-growth % and the thread counts stayed
constant, 1 otherwise, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PREFIX = "/masquerade"
MIX_SECONDS = 10.0  # length of each phase of the sender: with, then without speed/truncation


# ---------------------------------------------------------------------------------------------
# The OSC sender and feedback sink (a separate process; imports nothing heavy)


def osc_message(address: str, *values) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder(address=address)
    for value in values:
        builder.add_arg(value)
    return builder.build().dgram


def osc_bundle(*messages: bytes) -> bytes:
    body = b"".join(struct.pack(">i", len(message)) + message for message in messages)
    return b"#bundle\x00" + struct.pack(">Q", 1) + body


def next_packet(rng: random.Random, steer_walk: bool) -> tuple[str, bytes]:
    """One packet of the traffic mix: (kind, datagram)."""
    kinds = {"next": 8, "seed": 6, "query": 4, "offset_amount": 10, "offset_direction": 3, "mode": 2,
             "upscale": 2, "crossfade": 4, "transpose": 8, "bundle": 5, "unknown": 4, "malformed": 3}
    if steer_walk:
        kinds.update(speed=25, truncation=20)
    kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
    if kind == "speed":
        return kind, osc_message(f"{PREFIX}/speed", rng.uniform(0.2, 3.0))
    if kind == "truncation":
        return kind, osc_message(f"{PREFIX}/truncation", rng.uniform(0.5, 1.5))
    if kind == "next":
        return kind, osc_message(f"{PREFIX}/next")
    if kind == "seed":
        return kind, osc_message(f"{PREFIX}/seed", rng.randrange(2**31 - 1))
    if kind == "query":
        return kind, osc_message(f"{PREFIX}/query")
    if kind == "offset_amount":
        return kind, osc_message(f"{PREFIX}/offset_amount", rng.uniform(-2.0, 2.0))
    if kind == "offset_direction":
        return kind, osc_message(f"{PREFIX}/offset_direction", rng.randrange(1000))
    if kind == "mode":
        return kind, osc_message(f"{PREFIX}/mode", rng.choice(["endless", "loop", "drift"]))
    if kind == "upscale":
        return kind, osc_message(f"{PREFIX}/upscale", rng.random() < 0.8)
    if kind == "crossfade":
        return kind, osc_message(f"{PREFIX}/crossfade", rng.uniform(0.0, 3.0))
    if kind == "transpose":
        name = "speed" if steer_walk else "offset_amount"
        return kind, osc_message(PREFIX, name, rng.uniform(0.2, 2.0), "crossfade", rng.uniform(0.0, 2.0), "next")
    if kind == "bundle":
        return kind, osc_bundle(osc_message(f"{PREFIX}/offset_amount", rng.uniform(-1.0, 1.0)),
                                osc_message(f"{PREFIX}/blend", rng.choice([0.0, 0.0, 0.3])))
    if kind == "unknown":
        # Random addresses: the rate-limited log must not grow a map entry per address forever.
        return kind, osc_message(f"{PREFIX}/no_such_{rng.randrange(10**6)}", 1.0)
    return kind, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))


def sender_main(osc_port: int, rate: float, seed: int) -> int:
    """Send the traffic mix to 127.0.0.1:osc_port at `rate`/s and count the feedback; stop on SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    print(f"sink {sink.getsockname()[1]}", flush=True)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = random.Random(seed)
    sent: dict[str, int] = {}
    failed = 0
    feedback: dict[str, int] = {}
    parent = os.getppid()
    start = time.monotonic()
    total = 0
    while not stop.is_set() and os.getppid() == parent:
        now = time.monotonic()
        steer_walk = int((now - start) / MIX_SECONDS) % 2 == 0
        due = min(int((now - start) * rate) - total, 100)
        for _ in range(max(0, due)):
            kind, packet = next_packet(rng, steer_walk)
            try:
                out.sendto(packet, ("127.0.0.1", osc_port))
                sent[kind] = sent.get(kind, 0) + 1
            except OSError:
                failed += 1
            total += 1
        while True:
            try:
                data = sink.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            address = data.split(b"\x00", 1)[0].decode("ascii", "replace")
            key = address if address.startswith((f"{PREFIX}/state", f"{PREFIX}/heartbeat")) else \
                address.rsplit("/", 1)[0] if address.startswith(f"{PREFIX}/value/") else address
            feedback[key] = feedback.get(key, 0) + 1
        time.sleep(0.002)
    print(json.dumps({"sent": sent, "send_failures": failed, "seconds": time.monotonic() - start,
                      "feedback": feedback}), flush=True)
    return 0


class Sender:
    """The sender process seen from the piece's side."""

    def __init__(self, osc_port: int, rate: float, seed: int):
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--sender", "--osc-port", str(osc_port),
             "--rate", str(rate), "--seed", str(seed)],
            stdout=subprocess.PIPE, text=True, start_new_session=True)  # Ctrl-C reaches us only; we stop it
        line = self.process.stdout.readline().split()
        if len(line) != 2 or line[0] != "sink":
            self.process.kill()
            raise RuntimeError(f"the OSC sender did not start (said {line!r})")
        self.sink_port = int(line[1])

    def stop(self) -> dict:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return {}
        lines = [line for line in out.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


# ---------------------------------------------------------------------------------------------
# Inputs: a bundle and a webcam video


def make_bundle(path: Path, resolution: int = 64) -> Path:
    """A tiny untrained bundle of the tests' shapes (tests/conftest.py make_bundle)."""
    from models import bundle, dcgan, srgan

    bundle.save_model(path, "generator.keras", dcgan.generator(resolution, width_multiplier=0.0625))
    bundle.update_manifest(path, "generator", {"file": "generator.keras", "architecture": "dcgan",
                                               "resolution": resolution, "latent_dim": 100,
                                               "width_multiplier": 0.0625, "steps": 0})
    bundle.save_model(path, "upscaler.keras", srgan.realtime_upscaler(num_filters=8, num_layers=2))
    bundle.update_manifest(path, "upscaler", {"file": "upscaler.keras", "architecture": "realtime", "scale": 4,
                                              "input_size": resolution, "output_size": resolution * 4})
    return path


def make_video(path: Path, seconds: float = 4.0, fps: int = 30, size: tuple[int, int] = (160, 120)) -> Path:
    """An MJPG .avi with motion (a disc circling) and a pulsing brightness, so every webcam rule fires."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write an MJPG video to {path} (OpenCV without a video writer?)")
    width, height = size
    count = int(seconds * fps)
    for index in range(count):
        phase = index / count
        level = int(40 + 150 * (0.5 + 0.5 * np.sin(2 * np.pi * phase)))
        frame = np.full((height, width, 3), level, np.uint8)
        x = int(width / 2 + width / 3 * np.cos(4 * np.pi * phase))
        y = int(height / 2 + height / 3 * np.sin(4 * np.pi * phase))
        cv2.circle(frame, (x, y), height // 6, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Sampling


def proc_status() -> dict[str, int]:
    """VmRSS (kB) and Threads from /proc/self/status."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "Threads"):
                values[key] = int(rest.split()[0])
    return values


class Sampler:
    """Called once per displayed frame (from the display); records a sample every `every` frames."""

    def __init__(self, every: int, warmup_frame: int, tracemalloc_on: bool):
        self.every, self.warmup_frame, self.tracemalloc_on = every, warmup_frame, tracemalloc_on
        self.frames = 0
        self.piece = None
        self.samples: list[dict] = []
        self.started = self.last_time = self.previous_frame = 0.0
        self.last_frames = self.last_new = 0
        self.max_gap = 0.0  # longest time between two displayed frames in the current sample
        self.warm_snapshot = None

    def tick(self) -> None:
        now = time.monotonic()
        self.frames += 1
        if self.frames == 1:  # Time from the first frame on, not from start-up (loading, warm-up).
            self.started = self.last_time = self.previous_frame = now
            self.last_frames = 1
        self.max_gap = max(self.max_gap, now - self.previous_frame)
        self.previous_frame = now
        if self.frames % self.every:
            return
        status = proc_status()
        new_frames = self.piece.new_frames if self.piece is not None else 0
        elapsed = max(now - self.last_time, 1e-9)
        self.samples.append({
            "frames": self.frames, "time": now - self.started, "fps": (self.frames - self.last_frames) / elapsed,
            "new_fps": (new_frames - self.last_new) / elapsed, "max_gap_ms": 1000 * self.max_gap,
            "rss_mb": status["VmRSS"] / 1024, "python_threads": threading.active_count(),
            "os_threads": status["Threads"]})
        self.last_time, self.last_frames, self.last_new, self.max_gap = now, self.frames, new_frames, 0.0
        if self.tracemalloc_on and self.warm_snapshot is None and self.frames >= self.warmup_frame:
            import tracemalloc

            self.warm_snapshot = tracemalloc.take_snapshot()


def sampled_display(sampler: Sampler, size: int):
    from installation.display import Display

    class SampledDisplay(Display):
        def flip(self):
            super().flip()
            sampler.tick()

    return SampledDisplay(windowed=True, size=(size, size))


# ---------------------------------------------------------------------------------------------
# Report


def blocks(samples: list[dict], block: int) -> list[dict]:
    rows = []
    for start in range(0, samples[-1]["frames"] if samples else 0, block):
        chosen = [s for s in samples if start < s["frames"] <= start + block]
        if not chosen:
            continue
        fps = [s["fps"] for s in chosen]
        rows.append({
            "frames": f"{start + 1}-{chosen[-1]['frames']}", "fps_min": min(fps),
            "fps_median": statistics.median(fps), "fps_max": max(fps),
            "new_fps_median": statistics.median(s["new_fps"] for s in chosen),
            "max_gap_ms": max(s["max_gap_ms"] for s in chosen),
            "rss_mb_end": chosen[-1]["rss_mb"], "rss_mb_max": max(s["rss_mb"] for s in chosen),
            "python_threads": sorted({s["python_threads"] for s in chosen}),
            "os_threads": sorted({s["os_threads"] for s in chosen})})
    return rows


def summarise(samples: list[dict], warmup_frame: int) -> dict:
    if not samples:
        return {}
    warm = next((s for s in samples if s["frames"] >= warmup_frame), samples[-1])
    end = samples[-1]
    after = [s for s in samples if s["frames"] >= warm["frames"]]
    python_threads = [s["python_threads"] for s in samples]
    os_threads = [s["os_threads"] for s in samples]
    fps = [s["fps"] for s in samples]
    return {
        "frames": end["frames"], "seconds": end["time"],
        "warmup_frames": warm["frames"], "rss_mb_warmup": warm["rss_mb"], "rss_mb_end": end["rss_mb"],
        "rss_mb_max_after_warmup": max(s["rss_mb"] for s in after),
        "rss_growth_percent": 100.0 * (end["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"],
        "python_threads_min": min(python_threads), "python_threads_max": max(python_threads),
        "os_threads_min": min(os_threads), "os_threads_max": max(os_threads),
        "fps_min": min(fps), "fps_median": statistics.median(fps), "fps_max": max(fps),
        "max_gap_ms": max(s["max_gap_ms"] for s in samples)}


def print_report(rows: list[dict], summary: dict, every: int) -> None:
    print(f"\nper block (fps = displayed frames/s, sampled every {every} frames)")
    print(f"{'frames':>15} {'fps min':>8} {'median':>8} {'max':>8} {'new/s':>7} {'gap ms':>7} {'RSS MB':>8} "
          f"{'py thr':>7} {'os thr':>9}")
    for row in rows:
        threads = "-".join(str(n) for n in (row["python_threads"][0], row["python_threads"][-1]))
        os_threads = "-".join(str(n) for n in (row["os_threads"][0], row["os_threads"][-1]))
        print(f"{row['frames']:>15} {row['fps_min']:8.1f} {row['fps_median']:8.1f} {row['fps_max']:8.1f} "
              f"{row['new_fps_median']:7.1f} {row['max_gap_ms']:7.0f} {row['rss_mb_end']:8.1f} {threads:>7} "
              f"{os_threads:>9}")
    if not summary:
        print("no samples")
        return
    print(f"\n{summary['frames']} frames in {summary['seconds']:.0f} s; fps min/median/max "
          f"{summary['fps_min']:.1f}/{summary['fps_median']:.1f}/{summary['fps_max']:.1f}, longest gap between "
          f"two frames {summary['max_gap_ms']:.0f} ms")
    print(f"RSS {summary['rss_mb_warmup']:.1f} MB at frame {summary['warmup_frames']} (warm-up) -> "
          f"{summary['rss_mb_end']:.1f} MB at the end (max {summary['rss_mb_max_after_warmup']:.1f}): "
          f"{summary['rss_growth_percent']:+.2f} %")
    print(f"threads: Python {summary['python_threads_min']}-{summary['python_threads_max']}, "
          f"OS {summary['os_threads_min']}-{summary['os_threads_max']}")


def tracemalloc_report(warm_snapshot, top: int = 15) -> list[str]:
    import tracemalloc

    if warm_snapshot is None:
        return ["tracemalloc: no warm-up snapshot (the run ended before the warm-up point)"]
    end = tracemalloc.take_snapshot()
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    stats = end.filter_traces(ignore).compare_to(warm_snapshot.filter_traces(ignore), "lineno")
    lines = [f"tracemalloc: Python allocations grown since warm-up (top {top} by size_diff)"]
    lines += [f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {stat.traceback[0].filename}:"
              f"{stat.traceback[0].lineno}" for stat in stats[:top]]
    return lines


# ---------------------------------------------------------------------------------------------
# Main


def run(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(1)
    from installation.app import Piece, initial_controls
    from installation.config import RuntimeConfig
    from installation.controls import ControlState
    from models.bundle import load_bundle

    scratch = tempfile.TemporaryDirectory(prefix="masquerade-soak-")
    work = Path(scratch.name)
    model = Path(args.model) if args.model else make_bundle(work / "bundle")
    video = make_video(work / "webcam.avi")
    osc_port = free_udp_port()
    sender = Sender(osc_port, args.rate, args.seed)
    config = RuntimeConfig(
        model=str(model), windowed=True, width=args.window, height=args.window, fps=args.fps, fps_overlay=True,
        seed=args.seed, seconds_per_keyframe=2.0, osc_port=osc_port, feedback_host="127.0.0.1",
        feedback_port=sender.sink_port, feedback_every=0.05, hold_seconds=args.hold_seconds, webcam=str(video),
        webcam_preview=True, status_file=str(work / "status.json"), heartbeat_every=1.0, frames=args.frames,
        stats_every=60.0, log_level=args.log_level)
    warmup_frame = max(args.every, int(args.frames * args.warmup))
    sampler = Sampler(args.every, warmup_frame, args.tracemalloc)
    piece = None
    interrupted = []

    def on_signal(signum, _frame):
        interrupted.append(signum)
        if piece is None:
            raise KeyboardInterrupt
        piece.request_stop(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    print(f"soak: {args.frames} frames at a {args.fps:g} fps target, {args.window}x{args.window} window, OSC "
          f"{args.rate:g} msg/s to port {osc_port}, feedback to {sender.sink_port}, webcam {video.name}, "
          f"{os.cpu_count()} CPU cores", flush=True)
    try:
        bundle = load_bundle(str(model))
        controls = ControlState(initial_controls(config).parameters, hold_seconds=config.hold_seconds)
        piece = Piece.from_config(config, bundle=bundle, display=sampled_display(sampler, args.window),
                                  controls=controls)
        sampler.piece = piece
        progress = threading.Thread(target=report_progress, args=(sampler, args.block, piece.stop_requested),
                                    name="soak-progress", daemon=True)
        began = time.monotonic()
        progress.start()
        piece.run()
        elapsed = time.monotonic() - began
    except KeyboardInterrupt:
        interrupted.append(signal.SIGINT)
        elapsed = 0.0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if piece is not None:
            piece.stop_requested.set()
            piece.display.close()
        traffic = sender.stop()
    rows, summary = blocks(sampler.samples, args.block), summarise(sampler.samples, warmup_frame)
    print_report(rows, summary, args.every)
    extra = report_counters(piece, traffic, elapsed) if piece is not None else {}
    for line in extra.get("lines", []):
        print(line)
    traced = tracemalloc_report(sampler.warm_snapshot) if args.tracemalloc else []
    for line in traced:
        print(line)
    if args.tracemalloc:
        print("RSS not judged: with --tracemalloc it includes tracemalloc's own growing tables")
    verdicts = []
    if summary and not interrupted:
        verdicts = [] if args.tracemalloc else [  # tracemalloc's own tables grow with every traced block
                    ("RSS growth after warm-up", summary["rss_growth_percent"] <= args.max_rss_growth,
                     f"{summary['rss_growth_percent']:+.2f} % (limit {args.max_rss_growth:g} %)")]
        verdicts += [("Python threads constant", summary["python_threads_max"] == summary["python_threads_min"],
                     f"{summary['python_threads_min']}-{summary['python_threads_max']}"),
                    ("OS threads constant", summary["os_threads_max"] == summary["os_threads_min"],
                     f"{summary['os_threads_min']}-{summary['os_threads_max']}")]
        for name, passed, detail in verdicts:
            print(f"{'PASS' if passed else 'FAIL'}  {name}: {detail}")
    elif interrupted:
        print(f"interrupted ({signal.Signals(interrupted[0]).name}) after {sampler.frames} frames: partial table")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "arguments": {k: v for k, v in vars(args).items() if k != "sender"}, "summary": summary,
            "blocks": rows, "samples": sampler.samples, "counters": extra.get("counters", {}),
            "tracemalloc": traced, "verdicts": [{"name": n, "passed": p, "detail": d} for n, p, d in verdicts],
            "interrupted": bool(interrupted)}, indent=1), encoding="utf-8")
        print(f"wrote {args.json}")
    scratch.cleanup()
    if interrupted:
        return 130
    return 0 if all(passed for _, passed, _ in verdicts) else 1


def report_progress(sampler: Sampler, block: int, stop: threading.Event) -> None:
    """A line per block while the soak runs (the table comes at the end)."""
    shown = 0
    while not stop.wait(2.0):
        if sampler.samples and sampler.samples[-1]["frames"] >= shown + block:
            recent = [s for s in sampler.samples if s["frames"] > shown]
            shown = recent[-1]["frames"]
            print(f"  {shown:>8} frames  fps {statistics.median(s['fps'] for s in recent):6.1f}  "
                  f"RSS {recent[-1]['rss_mb']:7.1f} MB  threads {recent[-1]['python_threads']}/"
                  f"{recent[-1]['os_threads']}", flush=True)


def report_counters(piece, traffic: dict, elapsed: float) -> dict:
    services = piece.services
    health = piece.health
    counters = {"frames_shown": piece.frames_shown, "new_frames": piece.new_frames, "seconds": elapsed,
                "thread_restarts": health.restarts, "render_failures": health.render_failures,
                "fallback": health.fallback, "last_error": health.last_error, "traffic": traffic}
    lines = [f"new (rendered) frames shown: {piece.new_frames}; render failures {health.render_failures}, "
             f"fallback {health.fallback}, thread restarts {health.restarts}"]
    if services.osc is not None:
        osc = services.osc.stats()
        counters["osc"] = osc.__dict__
        lines.append(f"OSC in: {osc.received} datagrams, {osc.messages} messages, {osc.applied} applied, "
                     f"{osc.malformed} malformed, {osc.unknown} unknown, {osc.invalid} invalid, {osc.repeats} repeats")
    if services.webcam is not None:
        webcam = services.webcam.stats()
        counters["webcam"] = webcam.__dict__
        lines.append(f"webcam: {webcam.frames} frames read, {webcam.analysed} analysed, {webcam.loops} loops, "
                     f"{webcam.writes} writes, {webcam.held} held, {webcam.errors} errors, "
                     f"{webcam.restarts} restarts")
    if traffic:
        feedback = traffic.get("feedback", {})
        lines.append(f"OSC sent: {sum(traffic.get('sent', {}).values())} packets in {traffic.get('seconds', 0):.0f} s "
                     f"({traffic.get('send_failures', 0)} failed); feedback received: "
                     f"{sum(feedback.values())} messages, {feedback.get(PREFIX + '/heartbeat', 0)} heartbeats")
    return {"counters": counters, "lines": lines}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100_000, help="displayed frames to run for")
    parser.add_argument("--fps", type=float, default=240.0, help="display frame-rate target (max 240)")
    parser.add_argument("--window", type=int, default=128, help="window side in pixels (dummy driver)")
    parser.add_argument("--model", help="bundle folder (default: a tiny untrained bundle built here)")
    parser.add_argument("--rate", type=float, default=200.0, help="OSC packets per second")
    parser.add_argument("--hold-seconds", type=float, default=2.0, help="OSC hold over the webcam")
    parser.add_argument("--every", type=int, default=1000, help="sample every N displayed frames")
    parser.add_argument("--block", type=int, default=10_000, help="frames per table row")
    parser.add_argument("--warmup", type=float, default=0.1, help="fraction of the frames before RSS is compared")
    parser.add_argument("--max-rss-growth", type=float, default=2.0, help="percent allowed after warm-up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write samples, table and summary here")
    parser.add_argument("--tracemalloc", action="store_true", help="diff Python allocations: warm-up vs end")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--osc-port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.sender:
        if args.frames < 1 or args.every < 1 or args.block < args.every:
            parser.error("--frames and --every must be >= 1 and --block >= --every")
        if not 0 < args.warmup < 1:
            parser.error("--warmup must be a fraction between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.sender:
        return sender_main(args.osc_port, args.rate, args.seed)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
