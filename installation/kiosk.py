"""Unattended operation: a status file and heartbeat, the systemd watchdog, and the `--check` report.

Health counts what a visitor sees: `new_frames` and `fps` count distinct pictures put on screen (a display that
flips the same picture 30 times a second is not running well), `display_fps` the flips. A piece that shows no
new picture for `stall_seconds` while not paused is `stalled`: the status file says so and the systemd watchdog
is no longer fed, so the service manager restarts it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DISPLAY_PROBE_SECONDS = 180  # loading TensorFlow and the bundle on a slow kiosk
PROBE_SHOW_SECONDS = 2.0


def sd_notify(message: str) -> bool:
    """Tell systemd something (READY=1, WATCHDOG=1, STOPPING=1) when run as a notify service; else do nothing."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError as error:
        log.warning("sd_notify(%s) failed: %s", message, error)
        return False


@dataclass
class Health:
    """What the heartbeat reports; the live loop updates it every frame."""

    started: float
    frames_shown: int = 0  # display flips
    new_frames: int = 0  # distinct pictures shown
    fps: float = 0.0  # distinct pictures per second
    display_fps: float = 0.0
    seconds_since_new_frame: float = 0.0
    stalled: bool = False
    render_ms: float = 0.0
    render_failures: int = 0
    fallback: str = "none"
    last_error: str | None = None
    restarts: int = 0
    osc: str = "off"
    bundle: str = ""
    closed: bool = False  # outside the opening hours: blank screen, no rendering
    hours: str = "open (no opening hours set)"
    remote: str = "off"


class Heartbeat:
    """Writes a JSON status file and sends an OSC heartbeat at a fixed period; feeds the systemd watchdog."""

    WARNING_INTERVAL = 60.0  # seconds between repeated warnings about an unwritable status file

    def __init__(self, status_file: str, every: float, feedback=None, clock=time.monotonic):
        self.path = Path(status_file) if status_file else None
        self.every, self.feedback, self.clock = every, feedback, clock
        self.last = -float("inf")
        self.failed_writes = 0
        self.last_warning = -float("inf")

    def document(self, health: Health, state: str, reason: str | None = None) -> dict:
        return {"state": state, "reason": reason, "pid": os.getpid(),
                "uptime_seconds": round(self.clock() - health.started, 3), "new_frames": health.new_frames,
                "fps": round(health.fps, 2), "seconds_since_new_frame": round(health.seconds_since_new_frame, 2),
                "frames_shown": health.frames_shown, "display_fps": round(health.display_fps, 2),
                "render_ms": round(health.render_ms, 2), "render_failures": health.render_failures,
                "fallback": health.fallback, "osc": health.osc, "last_error": health.last_error,
                "thread_restarts": health.restarts, "bundle": health.bundle, "hours": health.hours,
                "remote": health.remote, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    @staticmethod
    def state(health: Health) -> str:
        return "stalled" if health.stalled else "closed" if health.closed else "running"

    def beat(self, health: Health, force: bool = False) -> bool:
        now = self.clock()
        if not force and now - self.last < self.every:
            return False
        self.last = now
        if not health.stalled:
            sd_notify("WATCHDOG=1")
        if self.path is not None:
            self.write(self.document(health, self.state(health)))
        if self.feedback is not None:
            self.feedback.send("/heartbeat", round(now - health.started, 1), round(health.fps, 2),
                               health.new_frames)
        return True

    def stopped(self, health: Health, reason: str) -> None:
        sd_notify("STOPPING=1")
        if self.path is not None:
            self.write(self.document(health, "stopped", reason))

    def write(self, document: dict) -> None:
        from models.bundle import write_json_atomic  # here, so --help and --print-config do not load Keras

        try:
            write_json_atomic(self.path, document)
        except OSError as error:
            self.failed_writes += 1
            now = self.clock()
            if now - self.last_warning >= self.WARNING_INTERVAL:
                self.last_warning = now
                log.warning("cannot write status file %s: %s (%d failed writes so far; next warning in %.0f s "
                            "at the earliest)", self.path, error, self.failed_writes, self.WARNING_INTERVAL)
            return
        if self.failed_writes:
            log.info("status file %s written again after %d failed writes", self.path, self.failed_writes)
            self.failed_writes, self.last_warning = 0, -float("inf")


def read_status(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_bundle(config) -> str:
    from models.bundle import load_bundle
    from models.render import Renderer

    bundle = load_bundle(config.model, backend=config.backend, threads=config.threads)
    try:
        frame = Renderer(bundle).render(renderer_latent(bundle.latent_dim))[0]
    except Exception as error:  # noqa: BLE001 - an inference error is a wall of text; the check gives one line
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise ValueError(f"{config.model}: the bundle loads but renders no frame ({type(error).__name__}: "
                         f"{lines[-1][:200] if lines else 'no message'})") from None
    if bundle.index is not None:
        from installation.provenance import open_captioner

        # What the piece does at start: loads the extractor.
        open_captioner(bundle.path, bundle.manifest, backend=config.backend, threads=config.threads)
    upscaler = bundle.manifest.get("upscaler")
    described = f"upscaler x{upscaler['scale']}" if upscaler else "no upscaler"
    indexed = f", index of {bundle.index.info['count']} images" if bundle.index is not None else ", no index"
    engine = "LiteRT" if bundle.backend == "litert" else "TensorFlow"
    return (f"{config.model}: generator {bundle.resolution} px, {described}{indexed}, renders {frame.shape[0]} px "
            f"frames with {engine}")


def renderer_latent(latent_dim: int):
    import numpy as np

    return np.zeros((1, latent_dim), np.float32)


def check_display(config) -> str:
    """Open the screen exactly as the piece would and flip a real frame onto it, in a child process: a crash
    there (a driver segfault) is a failed check with its reason, not the end of --check."""
    try:
        result = subprocess.run([sys.executable, "-m", "installation.kiosk", "--probe-display"], input=config.to_toml(),
                                capture_output=True, text=True, timeout=DISPLAY_PROBE_SECONDS)
    except subprocess.TimeoutExpired:
        raise ValueError(f"opening the display did not finish within {DISPLAY_PROBE_SECONDS} s") from None
    lines = result.stdout.strip().splitlines()
    if result.returncode == 0 and lines:
        return lines[-1]
    if result.returncode < 0:
        raise ValueError(f"opening the display killed the piece ({signal.Signals(-result.returncode).name}): the "
                         "piece would crash on this screen; see deploy/OPERATOR.md, \"Common problems\"")
    errors = [line.removeprefix("error: ") for line in result.stderr.splitlines() if line.startswith("error: ")]
    raise ValueError(errors[-1] if errors else f"the display probe failed (exit status {result.returncode})")


def probe_display(config) -> str:
    """What the piece does first: open its screen, load the bundle, show a rendered frame, flip it."""
    import numpy as np

    from installation.display import open_display
    from models.bundle import load_bundle
    from models.render import Renderer

    display = open_display(config)
    try:
        try:
            # In the same process and on the same backend as the piece (LiteRT: no TensorFlow beside the display).
            renderer = Renderer(load_bundle(config.model, backend=config.backend, threads=config.threads))
            frame, shown = renderer.render(renderer_latent(renderer.bundle.latent_dim))[0], "a rendered frame shown"
        except (ValueError, FileNotFoundError, OSError):  # the bundle check reports it; the screen is tested anyway
            ramp = np.linspace(0, 255, 256, dtype=np.uint8)
            frame, shown = np.dstack([np.tile(ramp, (256, 1))] * 3), "a test pattern shown (no bundle)"
        display.show(frame)
        time.sleep(PROBE_SHOW_SECONDS)  # long enough for an operator to see it
        kind = "window" if config.windowed else "fullscreen"
        width, height = display.size
        return f"driver {display.driver}, {kind} {width}x{height} on monitor {config.display} ({config.fit}), {shown}"
    finally:
        display.close()


def probe_main() -> int:
    """`python -m installation.kiosk --probe-display` < resolved TOML: the child process of check_display."""
    import tempfile

    from installation import config as runtime_config
    from installation.display import NoDisplayError

    with tempfile.NamedTemporaryFile("w", suffix=".toml", encoding="utf-8") as settings:
        settings.write(sys.stdin.read())
        settings.flush()
        config = runtime_config.RuntimeConfig(**runtime_config.read_toml(settings.name))
    try:
        print(probe_display(config))
    except (ValueError, FileNotFoundError, NoDisplayError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def check_camera(config) -> str:
    import cv2

    from installation.webcam import parse_source

    source = parse_source(config.webcam)
    capture = cv2.VideoCapture(source)
    try:
        if not capture.isOpened():
            raise ValueError(f"camera {config.webcam} cannot be opened")
        ok, frame = capture.read()
        if not ok:
            raise ValueError(f"camera {config.webcam} opened but gave no frame")
        return f"{config.webcam}: {frame.shape[1]}x{frame.shape[0]} frames"
    finally:
        capture.release()


class CheckWarning(Exception):
    """A check found something the piece works around (it runs, with less): reported, not a failure."""


def check_port(config) -> str:
    """The OSC port can be opened; a busy one fails only with `require_osc` (the piece runs without OSC)."""
    family = socket.AF_INET6 if ":" in config.osc_host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            probe.bind((config.osc_host, config.osc_port))
    except OSError as error:
        problem = f"OSC port {config.osc_port} on {config.osc_host} is not available ({error.strerror or error})"
        if config.require_osc:
            raise ValueError(problem) from None
        raise CheckWarning(f"{problem}: the piece will run without OSC control and retry every "
                           f"{config.osc_retry_seconds:g} s (--require-osc makes this an error)") from None
    return f"UDP {config.osc_host}:{config.osc_port} is free"


def check_feedback(config) -> str:
    try:
        socket.getaddrinfo(config.feedback_host, config.feedback_port, type=socket.SOCK_DGRAM)
    except OSError as error:
        raise ValueError(f"feedback host {config.feedback_host} does not resolve ({error})") from None
    return f"{config.feedback_host}:{config.feedback_port} resolves"


def check_status_file(config) -> str:
    path = Path(config.status_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    probe = path.with_name(f".{path.name}.check")
    probe.write_text("ok")
    probe.unlink()
    return f"{path} is writable"


def run_checks(config, out=None) -> int:
    """Validate a machine for the piece: prints one line per check, returns the number of failures."""
    import sys

    from models.manifest import BundleError

    out = out or sys.stdout
    checks = [("bundle", check_bundle), ("display", check_display)]
    if config.webcam_on:
        checks.append(("camera", check_camera))
    if config.osc:
        checks.append(("osc", check_port))
    if config.feedback_host:
        checks.append(("feedback", check_feedback))
    if config.status_file:
        checks.append(("status", check_status_file))
    if config.opening_hours() is not None or config.closed_image:
        from installation.schedule import check_hours

        checks.append(("hours", check_hours))
    if config.remote:
        from installation.remote import check_remote

        checks.append(("remote", check_remote))
    failures = warnings = 0
    for name, check in checks:
        try:
            details, verdict = [check(config)], "ok  "
        except CheckWarning as warning:
            details, verdict = [str(warning)], "warn"
            warnings += 1
        except BundleError as error:
            details, verdict = error.problems, "FAIL"
            failures += 1
        except (ValueError, FileNotFoundError, OSError) as error:
            details, verdict = [(str(error).splitlines() or [type(error).__name__])[0]], "FAIL"
            failures += 1
        for detail in details:
            print(f"{verdict}  {name:<9} {detail}", file=out)
    noted = f" ({warnings} warning{'s' if warnings > 1 else ''})" if warnings else ""
    print(f"all checks passed{noted}" if not failures else f"{failures} check(s) failed{noted}", file=out)
    return failures


if __name__ == "__main__":
    if sys.argv[1:] != ["--probe-display"]:
        sys.exit("usage: python -m installation.kiosk --probe-display < settings.toml (used by --check)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    code = probe_main()
    sys.stdout.flush()
    os._exit(code)  # as run_installation.py: skip TensorFlow's slow interpreter teardown
