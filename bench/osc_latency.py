"""OSC latency and throughput: send -> value visible to a 60 fps reader, absorbed rate, frame pacing.

    python bench/osc_latency.py                      # default scenarios, 3 s each
    python bench/osc_latency.py --rates 0,45,1000,flood --duration 5 --frame-work-ms 8 --json out.json

A sender *process* (like TouchDesigner, it does not share our GIL) sends `/masquerade/offset_direction`
at a given rate, each value being its own send time in microseconds (monotonic clock, modulo 2**31).
The receiving process runs the real OscServer thread and a simulated display loop that wakes at `--fps`,
takes a snapshot and drains triggers once per frame, then does `--frame-work-ms` of busy work in Python
(holding the GIL, a pessimistic stand-in for rendering). Reported per scenario:

- sent / received / applied, and the absorbed rate (values applied to the control state per second);
- apply latency: send -> value written to the ControlState (transport + parsing + lock);
- visible latency: send -> the first frame that sees the value (adds waiting for the next frame);
- frame pacing: interval mean, p99, max, and frames later than 1.5 periods.

To extend: add a `Scenario`, or pass another `frame_work` to `FrameLoop` (the render loop, once it
exists), or another `payload` function to `sender_main` (bundles, Transpose-By-Name messages).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from installation.controls import ControlState, Snapshot  # noqa: E402
from installation.osc import OscServer  # noqa: E402

ADDRESS = "/masquerade/offset_direction"
WRAP = 2**31
FrameWork = Callable[[Snapshot, dict], None]


def now_us() -> int:
    """Monotonic clock in microseconds, shared by every process on the machine."""
    return int(time.monotonic() * 1e6) % WRAP


def _osc_string(text: str) -> bytes:
    data = text.encode() + b"\x00"
    return data + b"\x00" * (-len(data) % 4)


_HEADER = _osc_string(ADDRESS) + _osc_string(",i")


def timestamp_payload() -> bytes:
    """One message whose int argument is its own send time (µs)."""
    return _HEADER + struct.pack(">i", now_us())


def sender_main(port: int, rate: float | None, duration: float, start_at: float, sent_out,
                payload: Callable[[], bytes] = timestamp_payload) -> None:
    """Send `payload()` to 127.0.0.1:port at `rate` per second (None: as fast as possible)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    destination = ("127.0.0.1", port)
    while time.monotonic() < start_at:
        time.sleep(0.001)
    start, sent, failed = time.monotonic(), 0, 0
    end = start + duration
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = 1000 if rate is None else int((now - start) * rate) + 1 - sent
        for _ in range(max(0, min(due, 1000))):
            try:
                sock.sendto(payload(), destination)
                sent += 1
            except OSError:
                failed += 1
        if rate is not None:
            time.sleep(min(0.001, max(0.0, start + (sent + 1) / rate - time.monotonic())))
    sock.close()
    sent_out.value = sent


def idle_frame(snapshot: Snapshot, events: dict) -> None:
    """No rendering."""


def busy_frame(milliseconds: float) -> FrameWork:
    """Python busy work holding the GIL for `milliseconds`, a pessimistic stand-in for rendering."""

    def work(snapshot: Snapshot, events: dict) -> None:
        end = time.perf_counter() + milliseconds / 1000.0
        while time.perf_counter() < end:
            pass

    return work


@dataclass
class FrameRecord:
    starts: list[float] = field(default_factory=list)  # Frame start times, seconds.
    visible_us: list[int] = field(default_factory=list)  # Send -> first frame that sees the value.
    apply_us: list[int] = field(default_factory=list)  # Send -> written to the control state.


class FrameLoop:
    """A display loop stand-in: once per frame, snapshot + drain triggers + work, paced to `fps`."""

    def __init__(self, controls: ControlState, fps: float = 60.0, frame_work: FrameWork = idle_frame) -> None:
        self.controls = controls
        self.period = 1.0 / fps
        self.frame_work = frame_work

    def run(self, duration: float) -> FrameRecord:
        record = FrameRecord()
        last_version = self.controls.version
        next_frame = time.monotonic()
        end = next_frame + duration
        while next_frame < end:
            delay = next_frame - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            start = time.monotonic()
            record.starts.append(start)
            snapshot = self.controls.snapshot()
            events = self.controls.drain_triggers()
            if snapshot.version != last_version:
                last_version = snapshot.version
                frame_us = int(start * 1e6) % WRAP
                sent = snapshot["offset_direction"]
                record.visible_us.append((frame_us - sent) % WRAP)
                written = self.controls.record("offset_direction")
                record.apply_us.append((int(written.timestamp * 1e6) - sent) % WRAP)
            self.frame_work(snapshot, events)
            # Drift-free schedule; after a long frame, skip ahead instead of bursting to catch up.
            next_frame += self.period
            if next_frame < time.monotonic() - self.period:
                next_frame = time.monotonic()
        return record


@dataclass(frozen=True)
class Scenario:
    name: str
    rate: float | None  # Messages per second; 0 = no traffic; None = flood.


def parse_rates(text: str) -> list[Scenario]:
    scenarios = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "flood":
            scenarios.append(Scenario("flood", None))
        else:
            try:
                rate = float(part)
            except ValueError:
                raise ValueError(f"--rates entries must be numbers or 'flood', got {part!r}") from None
            if rate < 0:
                raise ValueError(f"--rates entries must be >= 0, got {rate}")
            scenarios.append(Scenario("idle" if rate == 0 else f"{rate:g}/s", rate))
    return scenarios


def _percentiles_ms(values_us: list[int]) -> dict[str, float | None]:
    if not values_us:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    array = np.asarray(values_us, dtype=np.float64) / 1000.0
    return {
        "p50": float(np.percentile(array, 50)),
        "p95": float(np.percentile(array, 95)),
        "p99": float(np.percentile(array, 99)),
        "max": float(array.max()),
    }


def run_scenario(scenario: Scenario, duration: float, fps: float, frame_work: FrameWork) -> dict:
    controls = ControlState(clock=time.monotonic)
    with OscServer(controls, host="127.0.0.1", port=0) as server:
        sender = None
        sent_out = multiprocessing.Value("q", 0)
        lead_in = 0.3  # Let the sender process start before the frames are measured.
        if scenario.rate != 0:
            sender = multiprocessing.Process(
                target=sender_main,
                args=(server.port, scenario.rate, duration, time.monotonic() + lead_in, sent_out),
                daemon=True,
            )
            sender.start()
        time.sleep(lead_in)
        frames = FrameLoop(controls, fps, frame_work).run(duration)
        if sender is not None:
            sender.join(duration + 5.0)
        time.sleep(0.2)  # Let the server drain what the kernel still holds.
        stats = server.stats()
        alive = server.is_alive
    intervals_ms = np.diff(np.asarray(frames.starts)) * 1000.0
    period_ms = 1000.0 / fps
    return {
        "scenario": scenario.name,
        "rate": scenario.rate,
        "duration_s": duration,
        "sent": int(sent_out.value),
        "received": stats.received,
        "applied": stats.applied,
        "absorbed_per_s": stats.applied / duration,
        "server_alive": alive,
        "apply_latency_ms": _percentiles_ms(frames.apply_us),
        "visible_latency_ms": _percentiles_ms(frames.visible_us),
        "frames": len(frames.starts),
        "frame_interval_ms": {
            "mean": float(intervals_ms.mean()) if intervals_ms.size else None,
            "p99": float(np.percentile(intervals_ms, 99)) if intervals_ms.size else None,
            "max": float(intervals_ms.max()) if intervals_ms.size else None,
        },
        "late_frames": int((intervals_ms > 1.5 * period_ms).sum()),
        "stats": asdict(stats),
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(results: list[dict], fps: float, frame_work_ms: float) -> None:
    print(f"reader {fps:g} fps, {frame_work_ms:g} ms busy work per frame; latencies in ms (p50 / p99 / max)")
    header = (f"{'scenario':>9} {'sent':>8} {'received':>8} {'applied':>8} {'absorbed/s':>10}  "
              f"{'apply latency':>20}  {'visible latency':>20}  {'frame ms mean/p99/max':>22} {'late':>4}")
    print(header)
    print("-" * len(header))
    for r in results:
        apply, visible, frame = r["apply_latency_ms"], r["visible_latency_ms"], r["frame_interval_ms"]
        print(
            f"{r['scenario']:>9} {r['sent']:>8} {r['received']:>8} {r['applied']:>8} {r['absorbed_per_s']:>10.0f}  "
            f"{_fmt(apply['p50']):>6} /{_fmt(apply['p99']):>6} /{_fmt(apply['max']):>6}  "
            f"{_fmt(visible['p50']):>6} /{_fmt(visible['p99']):>6} /{_fmt(visible['max']):>6}  "
            f"{_fmt(frame['mean']):>6} /{_fmt(frame['p99']):>6} /{_fmt(frame['max']):>7} {r['late_frames']:>4}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="0,45,1000,10000,flood",
                        help="comma-separated messages per second; 0 = no traffic, 'flood' = as fast as possible")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per scenario")
    parser.add_argument("--fps", type=float, default=60.0, help="reader frame rate")
    parser.add_argument("--frame-work-ms", type=float, default=0.0, help="busy work per frame (holds the GIL)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    try:
        scenarios = parse_rates(args.rates)
        if args.duration <= 0 or args.fps <= 0 or args.frame_work_ms < 0:
            raise ValueError("--duration and --fps must be > 0 and --frame-work-ms >= 0")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    work = busy_frame(args.frame_work_ms) if args.frame_work_ms > 0 else idle_frame
    results = [run_scenario(scenario, args.duration, args.fps, work) for scenario in scenarios]
    print_table(results, args.fps, args.frame_work_ms)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
