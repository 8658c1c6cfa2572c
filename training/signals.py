"""Signal handlers installed for the span of a `with` block and restored after it, the way every long command
(training, ingest) stops cleanly: only the main thread may install them, so elsewhere the block runs unguarded."""

from __future__ import annotations

import signal
import threading
from typing import Any


class HandledSignals:
    """Route `SIGNALS` to `handle(signum, frame)` inside the block; subclasses say what stopping means."""

    SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.previous: dict[int, Any] = {}

    def handle(self, signum, frame) -> None:
        raise NotImplementedError

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False
