"""Render off the display thread with "latest wins": one pending request, one finished result, no backlog.

The display posts a request (latents for the times it will show them); the worker renders the newest
request it finds and publishes the result into a one-slot mailbox. Requests that were replaced before the
worker took them are dropped and counted; results made before the walk was steered are stale and dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameRequest:
    stamp: int  # the steering generation: bumped whenever controls change the path
    times: np.ndarray  # display-clock times the frames are meant to be shown at
    latents: np.ndarray
    upscale: bool = True


@dataclass(frozen=True)
class FrameResult:
    stamp: int
    times: np.ndarray
    frames: np.ndarray
    render_seconds: float
    finished_at: float
    sequence: int  # increases with each published result


class RenderWorker:
    def __init__(self, render: Callable[[np.ndarray, bool], np.ndarray], clock=time.monotonic, name="render"):
        self.render = render
        self.clock = clock
        self.name = name
        self.condition = threading.Condition()
        self.pending: FrameRequest | None = None
        self.result: FrameResult | None = None
        self.min_stamp = 0
        self.running = False
        self.rendering = False
        self.thread: threading.Thread | None = None
        self.sequence = 0
        self.renders = 0
        self.dropped_requests = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.latency = 0.0  # smoothed seconds per render

    def start(self) -> RenderWorker:
        self.running = True
        self.thread = threading.Thread(target=self.loop, name=self.name, daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        with self.condition:
            self.running = False
            self.condition.notify_all()
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def idle(self) -> bool:
        with self.condition:
            return self.pending is None and not self.rendering

    def submit(self, request: FrameRequest) -> None:
        """Replace any request not yet taken (it is stale now) and wake the worker."""
        with self.condition:
            if self.pending is not None:
                self.dropped_requests += 1
            self.pending = request
            self.min_stamp = max(self.min_stamp, request.stamp)
            self.condition.notify()

    def latest(self) -> FrameResult | None:
        """The newest finished result that is not stale."""
        with self.condition:
            if self.result is not None and self.result.stamp < self.min_stamp:
                return None
            return self.result

    def take_request(self) -> FrameRequest | None:
        with self.condition:
            while self.running and self.pending is None:
                self.condition.wait(0.25)
            request, self.pending = self.pending, None
            self.rendering = request is not None
            return request

    def loop(self) -> None:
        while self.running:
            request = self.take_request()
            if request is None:
                continue
            began = self.clock()
            try:
                frames = self.render(request.latents, request.upscale)
            except Exception as error:  # noqa: BLE001 - the worker must outlive any one bad frame; it reports
                self.failures += 1
                self.consecutive_failures += 1
                self.last_error = f"{type(error).__name__}: {error}"
                log.error("render failed (%d in a row): %s", self.consecutive_failures, self.last_error)
                with self.condition:
                    self.rendering = False
                continue
            finished = self.clock()
            seconds = finished - began
            self.latency = seconds if self.renders == 0 else 0.8 * self.latency + 0.2 * seconds
            with self.condition:
                self.sequence += 1
                self.renders += 1
                self.consecutive_failures = 0
                self.rendering = False
                self.result = FrameResult(request.stamp, request.times, frames, seconds, finished, self.sequence)


def pick_frame(result: FrameResult, display_time: float) -> int:
    """Index of the frame in a result whose intended time is nearest to now, never one from the future
    unless it is the first (a render-ahead batch is shown frame by frame as its times arrive)."""
    due = np.flatnonzero(result.times <= display_time)
    return int(due[-1]) if len(due) else 0


def blend(previous: np.ndarray, current: np.ndarray, alpha: float) -> np.ndarray:
    """Cross-fade two uint8 frames; alpha 1 shows `current` alone."""
    if previous is None or previous.shape != current.shape or alpha >= 1.0:
        return current
    return cv2.addWeighted(current, float(alpha), previous, 1.0 - float(alpha), 0.0)
