"""Provenance look-ups off the display thread, a few times a second, newest frame wins."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np

from installation.latest_wins import LatestWinsThread
from installation.provenance.captioner import Caption

log = logging.getLogger(__name__)


class ProvenanceWorker(LatestWinsThread):
    """Captions the newest submitted frame at most `rate_hz` times a second, on a daemon thread.

    One slot, latest wins: `submit` replaces a frame not yet taken (never a queue) and never blocks beyond a
    brief lock; `latest()` returns the newest caption. Errors are counted and logged at most once per
    `error_log_interval` seconds; the worker keeps going. Submitted frames must not be modified afterwards.
    """

    def __init__(self, caption_for: Callable[[np.ndarray, str], Caption], rate_hz: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, name: str = "provenance",
                 error_log_interval: float = 30.0):
        if not 0.01 <= rate_hz <= 120:
            raise ValueError(f"rate_hz {rate_hz} is outside the allowed range 0.01..120")
        super().__init__(name, clock, min_interval=1.0 / rate_hz)
        self.caption_for = caption_for
        self.error_log_interval = error_log_interval
        self.caption: Caption | None = None
        self.published_at: float | None = None
        self.failures = 0
        self.last_error: str | None = None
        self.last_error_logged = -math.inf
        self.errors_since_log = 0

    @property
    def captions(self) -> int:
        """Look-ups that gave a caption."""
        return self.handled

    def submit(self, frame: np.ndarray, layer: str = "late") -> None:
        super().submit((frame, layer))

    def latest(self) -> Caption | None:
        with self.condition:
            return self.caption

    def handle(self, request: tuple[np.ndarray, str], began: float) -> None:
        caption = self.caption_for(*request)
        seconds = self.clock() - began
        with self.condition:
            self.measured(seconds)
            self.caption, self.published_at = caption, self.clock()

    def failed(self, error: Exception) -> None:
        self.failures += 1
        self.errors_since_log += 1
        self.last_error = f"{type(error).__name__}: {error}"
        now = self.clock()
        if now - self.last_error_logged >= self.error_log_interval:
            log.error("provenance look-up failed (%d since last report): %s", self.errors_since_log, self.last_error)
            self.last_error_logged, self.errors_since_log = now, 0
