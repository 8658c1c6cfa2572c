"""The capture thread: open the source, pace reads, analyse, write mapped controls, reconnect with back-off.

The display loop never waits on the camera: it reads `signals()` and `preview()`, each a one-slot
"latest wins" hand-off.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from installation.controls import ControlState
from installation.ratelimit import RateLimitedLog
from installation.webcam.analyser import Analyzer
from installation.webcam.config import WebcamConfig
from installation.webcam.detectors import FaceDetector, load_face_detector
from installation.webcam.mapping import Mapped, apply_mapping
from installation.webcam.signals import Signals
from installation.webcam.source import describe_source, open_capture, source_kind

logger = logging.getLogger(__name__)


SOURCE = "webcam"
_HELD_RETRY_SECONDS = 0.5  # How often to retry a write that a higher-ranked source's hold refused.


@dataclass(frozen=True)
class WebcamStats:
    """Counters of a Webcam.

    frames: frames read; analysed: frames analysed; reconnects: attempts to open the source again
    after a failure; loops: times a video file was re-opened at its end; errors: unexpected exceptions
    and face-detector failures; writes: values written to the control state; held: writes ignored
    because keyboard or OSC held the parameter; triggers: triggers fired; visitors: new visitors seen;
    restarts: threads restarted by ensure_alive(); connected: the source is open and delivering.
    """

    frames: int = 0
    analysed: int = 0
    reconnects: int = 0
    loops: int = 0
    errors: int = 0
    writes: int = 0
    held: int = 0
    triggers: int = 0
    visitors: int = 0
    restarts: int = 0
    connected: bool = False


class _Run:
    """One capture thread's private stop flag and analyzer; a restarted Webcam gets new ones, so a thread
    still blocked in a read can never write after it was told to stop."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.stop = threading.Event()
        self.analyzer = analyzer
        self.thread: threading.Thread | None = None


_STOPPED, _ENDED = "stopped", "ended"
AUTO = "auto"


class Webcam:
    """Capture frames in one daemon thread and write mapped controls into a ControlState.

    controls: where to write (source "webcam"); None only computes signals.
    face_detector: "auto" loads one (see load_face_detector) when the mapping uses presence or
        new_visitor; None disables presence; or any callable BGR image -> face count (tests inject one).
    capture_factory: opens the source (default open_capture); anything with isOpened/grab/retrieve/get/release.
    clock: monotonic seconds, for pacing, timestamps and the visitor edge.
    """

    def __init__(
        self,
        controls: ControlState | None,
        config: WebcamConfig | None = None,
        *,
        face_detector: FaceDetector | str | None = AUTO,
        capture_factory: Callable[[WebcamConfig], Any] = open_capture,
        clock: Callable[[], float] = time.monotonic,
        log_interval: float = 10.0,
    ) -> None:
        self.controls = controls
        self.config = config = config if config is not None else WebcamConfig()
        if controls is not None:
            for rule in config.mapping.rules:
                if rule.to not in controls.parameters:
                    raise ValueError(f"webcam mapping {rule.signal}.to: the control state has no parameter {rule.to!r}")
        self._capture_factory = capture_factory
        self._clock = clock
        self._limited = RateLimitedLog(logger, log_interval, clock=clock)
        if isinstance(face_detector, str):
            if face_detector != AUTO:
                raise ValueError(f"face_detector must be 'auto', None or a callable, got {face_detector!r}")
            face_detector = None
            if config.enabled and (config.mapping.uses_faces or config.face_model):
                face_detector, description = load_face_detector(config.face_model)
                if face_detector is None:
                    logger.warning("webcam presence and new-visitor detection disabled: %s", description)
                else:
                    logger.info("webcam face detection: %s", description)
        if face_detector is not None and not callable(face_detector):
            raise ValueError(f"face_detector must be 'auto', None or a callable, got {face_detector!r}")
        self._face_detector = face_detector
        self._lifecycle = threading.RLock()
        self._lock = threading.Lock()
        self._run: _Run | None = None
        self._wanted = False
        self._counts = {name: 0 for name in WebcamStats.__dataclass_fields__ if name != "connected"}
        self._connected = False
        self._signals: Signals | None = None
        self._preview: np.ndarray | None = None
        self._last_error: str | None = None
        self._refused_until: dict[str, float] = {}
        self._spans = {rule.to: abs(rule.out_range[1] - rule.out_range[0]) for rule in config.mapping.rules
                       if not rule.is_event}
        self._ends = {rule.to: rule.out_range for rule in config.mapping.rules if not rule.is_event}

    # Lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Webcam:
        """Start the capture thread (no-op when the source is "none" or the thread already runs)."""
        with self._lifecycle:
            if not self.config.enabled:
                logger.info("webcam disabled (source none)")
                return self
            if self.alive:
                return self
            run = _Run(Analyzer(self.config, self._face_detector, on_error=lambda: self._count("errors")))
            run.thread = threading.Thread(target=self._main, args=(run,), name="webcam", daemon=True)
            self._run = run
            self._wanted = True
            run.thread.start()
            logger.info("webcam reading %s at %g analyses per second", describe_source(self.config.source),
                        self.config.fps)
            return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread; returns within about `timeout` seconds even if a read is blocking."""
        with self._lifecycle:
            self._wanted = False
            run, self._run = self._run, None
            if run is None:
                return
            run.stop.set()
            if run.thread is not None and run.thread is not threading.current_thread():
                run.thread.join(timeout)
                if run.thread.is_alive():
                    logger.warning("webcam thread did not stop within %.1f s; it will exit after its current read",
                                   timeout)

    def restart(self) -> None:
        """Stop and start again (re-opens the source at once, without waiting for the back-off)."""
        with self._lifecycle:
            self.stop()
            self.start()

    def ensure_alive(self) -> bool:
        """Restart the thread if it should run but died; returns True when it restarted it (watchdog hook)."""
        with self._lifecycle:
            if not self._wanted or self.alive:
                return False
            logger.warning("webcam thread died; restarting it")
            self._count("restarts")
            self._run = None
            self.start()
            return True

    def __enter__(self) -> Webcam:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        """True while the capture thread runs (also while it waits to reconnect or idles after a file)."""
        run = self._run
        return run is not None and run.thread is not None and run.thread.is_alive()

    # Reading the results -------------------------------------------------------------------------

    def signals(self) -> Signals | None:
        """The latest Signals, or None before the first analysed frame."""
        with self._lock:
            return self._signals

    def preview(self) -> np.ndarray | None:
        """The latest preview frame (RGB uint8, preview_width wide) when preview is on, else None."""
        with self._lock:
            return self._preview

    def stats(self) -> WebcamStats:
        """A copy of the counters."""
        with self._lock:
            counts = dict(self._counts)
            connected = self._connected
        return WebcamStats(**counts, connected=connected)

    @property
    def frames(self) -> int:
        return self.stats().frames

    @property
    def reconnects(self) -> int:
        return self.stats().reconnects

    @property
    def errors(self) -> int:
        return self.stats().errors

    @property
    def last_error(self) -> str | None:
        """The latest problem (could not open, stopped delivering, exception), or None."""
        with self._lock:
            return self._last_error

    # Thread ------------------------------------------------------------------------------------

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _problem(self, key: str, level: int, message: str, *args: Any, exc_info: bool = False) -> None:
        with self._lock:
            self._last_error = message % args if args else message
        self._limited.log(level, key, "webcam: " + message, *args, exc_info=exc_info)

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected

    def _main(self, run: _Run) -> None:
        config = self.config
        described = describe_source(config.source)
        is_file = source_kind(config.source) == "file"
        backoff = config.reconnect_initial
        reconnecting = False
        try:
            while not run.stop.is_set():
                if reconnecting:
                    self._count("reconnects")
                reconnecting = True  # Cleared below only when a file loops.
                capture = None
                try:
                    capture = self._capture_factory(config)
                    if capture is None or not capture.isOpened():
                        self._problem("open", logging.WARNING, "cannot open %s; retrying with back-off (now %.1f s)",
                                      described, backoff)
                    else:
                        self._set_connected(True)
                        outcome, frames_read = self._read_frames(run, capture, is_file)
                        self._set_connected(False)
                        if outcome == _STOPPED:
                            break
                        if frames_read:
                            backoff = config.reconnect_initial
                        if is_file and frames_read and config.loop_file:
                            self._count("loops")
                            reconnecting = False
                            continue
                        self._release_controls(run)
                        if is_file and frames_read:
                            logger.info("webcam: %s ended; idle until restarted (loop_file is off)", described)
                            run.stop.wait()
                            break
                        self._problem("read", logging.WARNING, "%s stopped delivering frames; reconnecting "
                                      "with back-off (now %.1f s)", described, backoff)
                except Exception as error:
                    # Last-resort boundary: a camera driver, a codec or our own code can raise anything
                    # (cv2.error, MemoryError from a corrupt frame, a bug); the piece must keep running,
                    # so log it, count it and try again after the back-off like any other failure.
                    self._set_connected(False)
                    self._count("errors")
                    self._problem("exception", logging.ERROR, "error reading %s: %s: %s", described,
                                  type(error).__name__, str(error).strip()[:300], exc_info=True)
                    self._release_controls(run)
                finally:
                    if capture is not None:
                        try:
                            capture.release()
                        except Exception as error:  # Releasing a broken device must not end the thread.
                            logger.debug("webcam: release failed: %s", error)
                if run.stop.wait(backoff):
                    break
                backoff = min(backoff * 2.0, config.reconnect_max)
        finally:
            # A thread that outlived stop() (blocked in a read) must not disturb its successor.
            if self._run is run or self._run is None:
                self._set_connected(False)
                self._release_controls(run, stopping=True)
            logger.debug("webcam thread stopped")

    def _read_frames(self, run: _Run, capture: Any, is_file: bool) -> tuple[str, int]:
        """Read until the source fails or stop is asked; returns (outcome, frames read)."""
        config = self.config
        analysis_interval = 1.0 / config.fps
        frame_interval = 0.0
        if is_file:
            # Files are read at their own frame rate so that a demo plays in real time and motion
            # between analysed frames means the same as with a live camera.
            file_fps = capture.get(cv2.CAP_PROP_FPS)
            file_fps = file_fps if math.isfinite(file_fps) and 1.0 <= file_fps <= 240.0 else config.fps
            frame_interval = 1.0 / file_fps
        run.analyzer.reset()
        frames_read = 0
        now = self._clock()
        next_read = next_analysis = now
        while not run.stop.is_set():
            if frame_interval:
                delay = next_read - self._clock()
                if delay > 0 and run.stop.wait(delay):
                    return _STOPPED, frames_read
                # Never try to catch up more than one frame after a stall.
                next_read = max(next_read + frame_interval, self._clock() - frame_interval)
            if not capture.grab():
                return _ENDED, frames_read
            frames_read += 1
            self._count("frames")
            now = self._clock()
            # A little tolerance so that a 30 fps camera analysed at 15 fps does not skip on jitter.
            if now < next_analysis - 0.2 * analysis_interval:
                continue
            next_analysis = max(next_analysis + analysis_interval, now - analysis_interval)
            ok, frame = capture.retrieve()
            if not ok or frame is None:
                return _ENDED, frames_read
            self._process(run, frame, now)
        return _STOPPED, frames_read

    def _process(self, run: _Run, frame: np.ndarray, now: float) -> None:
        analyzer = run.analyzer
        signals = analyzer.analyse(frame, now)
        preview = analyzer.preview(frame) if self.config.preview else None
        if run.stop.is_set():
            return
        with self._lock:
            self._signals = signals
            if preview is not None:
                self._preview = preview
            self._counts["analysed"] += 1
            if signals.new_visitor:
                self._counts["visitors"] += 1
        if self.controls is not None:
            self._publish(apply_mapping(signals, self.config.mapping), now)

    def _publish(self, mapped: Mapped, now: float) -> None:
        """Write values that moved meaningfully (keeps the state's version counter calm) and fire triggers."""
        controls = self.controls
        for name, value in mapped.values.items():
            if now < self._refused_until.get(name, -math.inf):
                continue
            current = controls.get(name)
            if value == current:
                continue
            at_end = value in self._ends[name]  # Settle exactly on a range end instead of just short of it.
            if abs(value - current) < self.config.write_threshold * self._spans[name] and not at_end:
                continue
            applied, _ = controls.set(name, value, SOURCE)
            if applied is None:
                # Keyboard or OSC holds this parameter; retry now and then so the webcam takes over
                # again soon after the hold expires.
                self._refused_until[name] = now + _HELD_RETRY_SECONDS
                self._count("held")
            else:
                self._refused_until.pop(name, None)
                self._count("writes")
        for name in mapped.triggers:
            controls.trigger(name, SOURCE)
            self._count("triggers")

    def _release_controls(self, run: _Run, stopping: bool = False) -> None:
        """Hand the webcam's parameters back to their defaults when the source is lost or the thread stops,
        so that a camera unplugged mid-gesture does not leave the piece racing; drop the stale preview."""
        if not stopping and run.stop.is_set():
            return
        with self._lock:
            self._preview = None
        if self.controls is None:
            return
        for name in self.config.mapping.targets:
            record = self.controls.record(name)
            default = self.controls.parameter(name).default
            if record.source == SOURCE and record.value != default:
                self.controls.set(name, default, SOURCE)
        self._refused_until.clear()
