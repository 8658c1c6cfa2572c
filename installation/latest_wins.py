"""A worker thread with "latest wins": one pending request, no backlog, never a wait for the one who submits.

The display loop hands work to threads (renders, provenance look-ups) that must never hold it up: a submitted
request replaces one not yet taken (it is stale now, and counted as replaced), and the thread always works on
the newest request it finds. Subclasses say what working on a request means (`handle`) and what to do when it
fails (`failed`); the thread outlives any one bad request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LatestWinsThread:
    """One-slot hand-off to a daemon thread. `min_interval` seconds at least between the starts of two requests
    (0: as fast as requests come; a caption rate of 2 Hz: 0.5)."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic, min_interval: float = 0.0):
        self.name = name
        self.clock = clock
        self.min_interval = min_interval
        self.condition = threading.Condition()  # re-entrant: a subclass's submit may hold it around the base's
        self.stopping = threading.Event()
        self.pending = None
        self.busy = False  # a request is taken and being handled
        self.thread: threading.Thread | None = None
        self.replaced = 0  # requests replaced by a newer one before the thread could take them
        self.handled = 0  # requests handled without an error
        self.latency = 0.0  # smoothed seconds per handled request

    def start(self):
        self.stopping.clear()
        self.thread = threading.Thread(target=self.loop, name=self.name, daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self.stopping.set()
        with self.condition:
            self.condition.notify_all()
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def idle(self) -> bool:
        """Nothing pending and nothing being handled."""
        with self.condition:
            return self.pending is None and not self.busy

    def submit(self, request) -> None:
        """Replace any request not yet taken and wake the thread; never blocks beyond a brief lock."""
        with self.condition:
            if self.pending is not None:
                self.replaced += 1
            self.pending = request
            self.condition.notify()

    def take(self):
        """The newest request, waiting for one; None once stopping (a pending request is then dropped)."""
        with self.condition:
            while not self.stopping.is_set() and self.pending is None:
                self.condition.wait(0.25)
            taken, self.pending = self.pending, None
            taken = None if self.stopping.is_set() else taken
            self.busy = taken is not None
            return taken

    def loop(self) -> None:
        while not self.stopping.is_set():
            request = self.take()
            if request is None:
                continue
            began = self.clock()
            try:
                self.handle(request, began)
            except Exception as error:  # noqa: BLE001 - the thread must outlive any one bad request; it reports
                self.failed(error)
            finally:
                with self.condition:
                    self.busy = False
            if self.min_interval > 0:
                # Hold the rate: newer requests replace the pending one meanwhile, so the next one is the newest.
                self.stopping.wait(max(0.0, began + self.min_interval - self.clock()))

    def measured(self, seconds: float) -> None:
        """Count one handled request that took `seconds` into the smoothed latency."""
        self.latency = seconds if self.handled == 0 else 0.8 * self.latency + 0.2 * seconds
        self.handled += 1

    def handle(self, request, began: float) -> None:
        """Work on one request taken at `began` (clock time); publish the outcome under `self.condition`."""
        raise NotImplementedError

    def failed(self, error: Exception) -> None:
        """Report a request whose `handle` raised; the thread goes on with the next one."""
        raise NotImplementedError
