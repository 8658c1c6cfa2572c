"""Unattended operation: a status file and heartbeat, the systemd watchdog, and the `--check` report."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


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
    frames_shown: int = 0
    fps: float = 0.0
    render_ms: float = 0.0
    render_failures: int = 0
    fallback: str = "none"
    last_error: str | None = None
    restarts: int = 0


class Heartbeat:
    """Writes a JSON status file and sends an OSC heartbeat at a fixed period; feeds the systemd watchdog."""

    def __init__(self, status_file: str, every: float, feedback=None, clock=time.monotonic):
        self.path = Path(status_file) if status_file else None
        self.every, self.feedback, self.clock = every, feedback, clock
        self.last = -float("inf")

    def document(self, health: Health, state: str, reason: str | None = None) -> dict:
        return {"state": state, "reason": reason, "pid": os.getpid(),
                "uptime_seconds": round(self.clock() - health.started, 3), "frames_shown": health.frames_shown,
                "fps": round(health.fps, 2), "render_ms": round(health.render_ms, 2),
                "render_failures": health.render_failures, "fallback": health.fallback,
                "last_error": health.last_error, "thread_restarts": health.restarts,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def beat(self, health: Health, force: bool = False) -> bool:
        now = self.clock()
        if not force and now - self.last < self.every:
            return False
        self.last = now
        sd_notify("WATCHDOG=1")
        if self.path is not None:
            self.write(self.document(health, "running"))
        if self.feedback is not None:
            self.feedback.send("/heartbeat", round(now - health.started, 1), round(health.fps, 2),
                               health.frames_shown)
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
            log.warning("cannot write status file %s: %s", self.path, error)


def read_status(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_bundle(config) -> str:
    from installation.render import Renderer
    from models.bundle import load_bundle

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
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    try:
        pygame.display.init()
        driver = pygame.display.get_driver()
        sizes = pygame.display.get_desktop_sizes()
        if config.display >= len(sizes):
            raise ValueError(f"display {config.display} does not exist ({len(sizes)} found)")
        return f"driver {driver}, display {config.display} is {sizes[config.display][0]}x{sizes[config.display][1]}"
    except pygame.error as error:
        raise ValueError(f"no display available ({error}); use a desktop session or xvfb-run") from None
    finally:
        pygame.display.quit()


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


def check_port(config) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((config.osc_host, config.osc_port))
        except OSError as error:
            raise ValueError(
                f"OSC port {config.osc_port} on {config.osc_host} is not available ({error.strerror})"
            ) from None
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
    if config.webcam.strip().lower() not in ("", "none"):
        checks.append(("camera", check_camera))
    if config.osc:
        checks.append(("osc", check_port))
    if config.feedback_host:
        checks.append(("feedback", check_feedback))
    if config.status_file:
        checks.append(("status", check_status_file))
    failures = 0
    for name, check in checks:
        try:
            details, verdict = [check(config)], "ok  "
        except BundleError as error:
            details, verdict = error.problems, "FAIL"
            failures += 1
        except (ValueError, FileNotFoundError, OSError) as error:
            details, verdict = [(str(error).splitlines() or [type(error).__name__])[0]], "FAIL"
            failures += 1
        for detail in details:
            print(f"{verdict}  {name:<9} {detail}", file=out)
    print("all checks passed" if not failures else f"{failures} check(s) failed", file=out)
    return failures
