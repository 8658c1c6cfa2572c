"""Render off the display thread with "latest wins": one pending request, one finished result, no backlog.

The display posts a request (latents for the times it will show them); the worker renders the newest
request it finds and publishes the result into a one-slot mailbox. Requests that were replaced before the
worker took them are dropped and counted; results made before the walk was steered are stale and dropped.
Which frame of a result goes on screen, and how, is the compositor's business (installation/compositor.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from installation.latest_wins import LatestWinsThread

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


class RenderWorker(LatestWinsThread):
    def __init__(self, render: Callable[[np.ndarray, bool], np.ndarray], clock=time.monotonic, name="render"):
        super().__init__(name, clock)
        self.render = render
        self.result: FrameResult | None = None
        self.min_stamp = 0
        self.sequence = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None

    @property
    def renders(self) -> int:
        return self.handled

    @property
    def dropped_requests(self) -> int:
        return self.replaced

    def submit(self, request: FrameRequest) -> None:
        """Replace any request not yet taken (it is stale now) and wake the worker."""
        with self.condition:
            super().submit(request)
            self.min_stamp = max(self.min_stamp, request.stamp)

    def latest(self) -> FrameResult | None:
        """The newest finished result that is not stale."""
        with self.condition:
            if self.result is not None and self.result.stamp < self.min_stamp:
                return None
            return self.result

    def handle(self, request: FrameRequest, began: float) -> None:
        frames = self.render(request.latents, request.upscale)
        finished = self.clock()
        seconds = finished - began
        with self.condition:
            self.measured(seconds)
            self.sequence += 1
            self.consecutive_failures = 0
            self.result = FrameResult(request.stamp, request.times, frames, seconds, finished, self.sequence)

    def failed(self, error: Exception) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        log.error("render failed (%d in a row): %s", self.consecutive_failures, self.last_error)


class Fallback:
    """Degrade instead of going black: after repeated render failures drop the upscaler, then hold a still
    frame; retry the fuller pipeline every `retry_seconds`."""

    LEVELS = ("none", "no-upscaler", "still")

    def __init__(self, failures: int, retry_seconds: float):
        self.failures, self.retry_seconds = failures, retry_seconds
        self.level = "none"
        self.seen = 0  # consecutive failures already acted on
        self.changed_at = 0.0
        self.last_attempt = -float("inf")

    @property
    def upscale(self) -> bool:
        return self.level == "none"

    def update(self, consecutive_failures: int, last_error: str | None, now: float) -> None:
        if consecutive_failures == 0:
            self.seen = 0
            if self.level != "none" and now - self.changed_at >= self.retry_seconds:
                self.move(self.LEVELS.index(self.level) - 1, now, "retrying")
        elif consecutive_failures - self.seen >= self.failures and self.level != "still":
            self.seen = consecutive_failures
            self.move(self.LEVELS.index(self.level) + 1, now, f"after {consecutive_failures} failures ({last_error})")

    def move(self, index: int, now: float, why: str) -> None:
        self.level, self.changed_at = self.LEVELS[index], now
        log.warning("render fallback: %s %s", self.level, why)

    def may_render(self, now: float) -> bool:
        """In the still fallback, try a render only every few seconds rather than every frame."""
        if self.level != "still":
            return True
        if now - self.last_attempt >= min(5.0, self.retry_seconds):
            self.last_attempt = now
            return True
        return False
