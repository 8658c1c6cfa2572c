"""OSC feedback: the piece's state sent back to the controller (TouchDesigner). Sending never raises."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.udp_client import UDPClient

from installation.osc.defaults import DEFAULT_FEEDBACK_PORT, DEFAULT_HOST, DEFAULT_PREFIX
from installation.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)


def _osc_argument(value: Any) -> tuple[Any, str]:
    """Pick an OSC type for a Python/numpy value: bools as 0/1 ints (CHOP friendly), ints, floats, strings."""
    if isinstance(value, bool | np.bool_):
        return int(value), "i"
    if isinstance(value, numbers.Integral):
        number = int(value)
        return (number, "i") if -(2**31) <= number < 2**31 else (float(number), "d")
    if isinstance(value, numbers.Real):
        return float(value), "f"
    return str(value), "s"


class OscFeedback:
    """Send state back to the controller (TouchDesigner). Sending never raises; failures are logged.

    Addresses (prefix /masquerade):
        /state seed keyframe phase fps novelty   one message with everything (OSC In DAT)
        /state/seed, /state/keyframe, /state/phase, /state/fps, /state/novelty   one value each (OSC In CHOP)
        /loop/wrap count      each time a loop completes
        /caption text         whenever the caption changes
        /value/<name> value   every parameter, in reply to the "query" trigger
    """

    STATE_FIELDS = ("seed", "keyframe", "phase", "fps", "novelty")

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_FEEDBACK_PORT,
        prefix: str = DEFAULT_PREFIX,
        *,
        log_interval: float = 5.0,
    ) -> None:
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"OSC feedback port must be an integer in 1..65535, got {port!r}")
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"OSC prefix must look like /masquerade, got {prefix!r}")
        try:
            self._client = UDPClient(host, port)
        except OSError as error:
            raise ValueError(f"cannot resolve OSC feedback host {host!r}: {error}") from None
        self.host, self.port, self.prefix = host, port, prefix
        self._limited = RateLimitedLog(logger, log_interval)
        self.sent = 0
        self.failed = 0

    def send(self, address: str, *values: Any) -> bool:
        """Send one message to prefix + address; returns False (and logs, rate-limited) on failure."""
        full_address = self.prefix + address
        try:
            builder = OscMessageBuilder(address=full_address)
            for value in values:
                builder.add_arg(*_osc_argument(value))
            self._client.send(builder.build())
        except (OSError, BuildError, ValueError, TypeError, OverflowError) as error:
            self.failed += 1
            self._limited.log(logging.WARNING, ("send", address), "OSC feedback %s to %s:%d failed: %s",
                              full_address, self.host, self.port, error)
            return False
        self.sent += 1
        return True

    def send_state(self, seed: int, keyframe: int, phase: float, fps: float, novelty: float) -> None:
        """Send the walk state as one message and as one value per address."""
        values = (int(seed), int(keyframe), float(phase), float(fps), float(novelty))
        self.send("/state", *values)
        for field, value in zip(self.STATE_FIELDS, values, strict=True):
            self.send(f"/state/{field}", value)

    def send_loop_wrap(self, count: int) -> None:
        """Announce that the loop wrapped around (count: loops completed so far)."""
        self.send("/loop/wrap", int(count))

    def send_caption(self, text: str) -> None:
        """Send the current provenance caption."""
        self.send("/caption", str(text))

    def state_reply(self, snapshot: Mapping[str, Any]) -> None:
        """Send every current parameter value to /value/<name> (the reply to the "query" trigger)."""
        for name, value in snapshot.items():
            self.send(f"/value/{name}", value)

    def close(self) -> None:
        """Close the socket."""
        try:
            self._client.close()
        except OSError:
            pass
