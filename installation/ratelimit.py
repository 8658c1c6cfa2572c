"""A logger wrapper for untrusted or repeating input: one line per problem per interval, the rest counted.

Used by the OSC server and feedback, the webcam thread and the live loop, so that a flood of bad packets
or a failing camera cannot fill the disk or hide everything else in the log.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any


class RateLimitedLog:
    """Log each key at most once per `interval` seconds, and at most `budget` lines per interval overall.

    Suppressed repeats are counted and reported with the next line for the same key.
    """

    def __init__(
        self,
        log: logging.Logger,
        interval: float = 5.0,
        *,
        budget: int = 20,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        self._log = log
        self.interval = interval
        self._budget = budget
        self._clock = clock
        self._max_keys = max_keys
        self._last: dict[Any, float] = {}
        self._suppressed: dict[Any, int] = {}
        self._window_start = -math.inf
        self._window_lines = 0
        self._lock = threading.Lock()

    def log(self, level: int, key: Any, message: str, *args: Any, exc_info: bool = False) -> bool:
        """Log unless the key (or the overall budget) is rate-limited; returns whether a line was written."""
        with self._lock:
            now = self._clock()
            if now - self._window_start >= self.interval:
                self._window_start, self._window_lines = now, 0
            last = self._last.get(key)
            if (last is not None and now - last < self.interval) or self._window_lines >= self._budget:
                if len(self._suppressed) < self._max_keys or key in self._suppressed:
                    self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            if len(self._last) >= self._max_keys:
                # Forget keys that are no longer rate-limited so that random addresses cannot grow the map.
                self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
                if len(self._last) >= self._max_keys:
                    self._last.clear()
            self._last[key] = now
            self._window_lines += 1
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        self._log.log(level, message, *args, exc_info=exc_info)
        return True
