"""OSC control input: one UDP socket and one daemon thread writing received values into the ControlState.

Each datagram is parsed by `parse_packet` and its messages are applied to the control state at once, in
the receiving thread: no thread per packet, no sleeping.

Bundle time tags are ignored: every message is applied when its packet arrives, including bundles
stamped in the future. The control state keeps only the latest value, TouchDesigner sends "immediately",
and waiting for a time tag would either stall the receive loop or need a scheduler for no artistic gain.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from installation.controls import ControlState, short_repr
from installation.osc.allowlist import parse_allowlist, plain_address
from installation.osc.defaults import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_PREFIX
from installation.osc.parser import OscParseError, parse_packet
from installation.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)


SOURCE = "osc"

MAX_DATAGRAM = 65536
_RECEIVE_TIMEOUT = 0.15  # Bounds how long stop() waits for the loop to notice.


class OscStartError(RuntimeError):
    """The OSC server could not open its socket."""


class OscPortInUseError(OscStartError):
    """Another program already listens on the OSC port."""


@dataclass(frozen=True)
class OscStats:
    """Counters of an OscServer.

    received: datagrams; malformed and not_allowed: dropped datagrams; messages: parsed messages;
    applied: values written to the control state (clamped: of which were clamped); held: ignored because
    the keyboard holds the parameter; repeats: repeated trigger/seed values ignored as one press;
    unknown: unknown addresses or names; invalid: values of the wrong type, NaN or inf.
    internal_errors: datagrams whose handling raised an unexpected exception (a bug; should stay 0).
    """

    received: int = 0
    messages: int = 0
    applied: int = 0
    clamped: int = 0
    held: int = 0
    repeats: int = 0
    malformed: int = 0
    not_allowed: int = 0
    unknown: int = 0
    invalid: int = 0
    internal_errors: int = 0

    @property
    def dropped(self) -> int:
        """Everything that did not reach the control state."""
        return self.malformed + self.not_allowed + self.unknown + self.invalid


class OscServer:
    """Receive OSC on one UDP port in one daemon thread and write the values into a ControlState.

    host: interface to listen on. The default 127.0.0.1 accepts only this machine; use "0.0.0.0"
        when TouchDesigner runs on another computer (and consider an allowlist).
    port: UDP port; 0 picks a free one (see `port` after start()).
    prefix: OSC address prefix of every control.
    allowlist: sender addresses or networks to accept; None accepts everyone.
    log_interval: seconds between repeated log lines about the same problem.
    repeat_window: an event (trigger or seed) that repeats the previous OSC value for the same
        parameter within this many seconds is a continuation, not a new press. TouchDesigner's OSC Out
        CHOP with "Send Events Every Cook" resends a held button (1) or a seed every frame; without
        this the piece would jump 60 times a second. Bangs (no argument) always fire. 0 disables.
    handlers: addresses beyond the parameters (e.g. "preset/save" for /masquerade/preset/save), each
        called with the message's arguments in the receiving thread; a ValueError counts as invalid input.
        A repeat of the same arguments within `repeat_window` is one press, as for triggers.
    """

    def __init__(
        self,
        controls: ControlState,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        prefix: str = DEFAULT_PREFIX,
        *,
        allowlist: Iterable[str] | None = None,
        log_interval: float = 5.0,
        repeat_window: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        handlers: Mapping[str, Callable[[tuple[Any, ...]], None]] | None = None,
    ) -> None:
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"OSC port must be an integer in 0..65535, got {port!r}")
        if not prefix.startswith("/") or prefix.endswith("/") or " " in prefix:
            raise ValueError(
                f"OSC prefix must look like /masquerade (leading '/', no trailing '/'), got {prefix!r}"
            )
        self.controls = controls
        self.host = host
        self.prefix = prefix
        self._requested_port = port
        self._allowed = parse_allowlist(allowlist)
        self._sender_verdicts: dict[str, bool] = {}
        self._limited = RateLimitedLog(logger, log_interval, clock=clock)
        self._clock = clock
        self.repeat_window = repeat_window
        self._last_event: dict[str, tuple[Any, float]] = {}
        self.handlers = dict(handlers or {})
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._counts = dict.fromkeys(OscStats.__dataclass_fields__, 0)
        self._counts_lock = threading.Lock()

    # Lifecycle ---------------------------------------------------------------------------------

    def start(self) -> OscServer:
        """Open the socket and start the receive thread; raises OscStartError with a one-line reason."""
        if self._thread is not None:
            raise OscStartError("OSC server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = None
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            # A bigger receive buffer absorbs bursts from a controller while the loop catches up.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            if family == socket.AF_INET6 and self.host.split("%", 1)[0] == "::":
                # "::" means every interface, IPv4 included, whatever the system's bindv6only default.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((self.host, self._requested_port))
        except OSError as error:
            if sock is not None:
                sock.close()
            where = f"OSC port {self._requested_port} on {self.host}"
            if error.errno == errno.EADDRINUSE:
                message = f"{where} is already in use; choose another with --osc-port"
                raise OscPortInUseError(message) from None
            if error.errno == errno.EACCES:
                message = f"{where} needs privileges; choose a port above 1023 with --osc-port"
                raise OscStartError(message) from None
            raise OscStartError(
                f"cannot listen on {where}: {error.strerror or error}; check --osc-host "
                "(127.0.0.1 for this machine, 0.0.0.0 for every network interface)"
            ) from None
        sock.settimeout(_RECEIVE_TIMEOUT)
        self._socket = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="osc-server", daemon=True)
        self._thread.start()
        logger.info(
            "listening for OSC on %s:%d, prefix %s%s",
            self.host, self.port, self.prefix,
            f", senders {', '.join(map(str, self._allowed))}" if self._allowed else "",
        )
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread (returns within about `timeout` seconds) and close the socket."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("OSC server thread did not stop within %.1f s", timeout)
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> OscServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (useful after asking for port 0)."""
        if self._socket is None:
            return self._requested_port
        return self._socket.getsockname()[1]

    @property
    def is_alive(self) -> bool:
        """True while the receive thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> OscStats:
        """A copy of the counters."""
        with self._counts_lock:
            return OscStats(**self._counts)

    # Receive loop ------------------------------------------------------------------------------

    def _count(self, name: str, amount: int = 1) -> None:
        with self._counts_lock:
            self._counts[name] += amount

    def _serve(self) -> None:
        sock = self._socket
        if sock is None:
            return
        buffer = bytearray(MAX_DATAGRAM)
        while not self._stopping.is_set():
            try:
                size, sender = sock.recvfrom_into(buffer)
            except TimeoutError:
                continue
            except OSError as error:
                if self._stopping.is_set():
                    break
                self._limited.log(logging.WARNING, "socket", "OSC receive error: %s", error)
                time.sleep(0.01)  # Keeps a persistent socket error from spinning a core.
                continue
            try:
                self.handle_datagram(bytes(buffer[:size]), sender[0])
            except Exception:
                self._count("internal_errors")
                # Last-resort boundary: the specific failures (parse errors, bad values, unknown names)
                # are handled inside handle_datagram; anything else is a bug, and one bad packet must not
                # silence the piece's controls for the rest of the night.
                self._limited.log(logging.ERROR, "internal", "OSC packet from %s crashed the handler",
                                  sender[0], exc_info=True)
        logger.debug("OSC server thread stopped")

    def _sender_allowed(self, sender: str) -> bool:
        if not self._allowed:
            return True
        verdict = self._sender_verdicts.get(sender)
        if verdict is None:
            try:
                address = plain_address(ipaddress.ip_address(sender.split("%", 1)[0]))
                verdict = any(address in network for network in self._allowed)
            except ValueError:
                verdict = False
            if len(self._sender_verdicts) < 4096:
                self._sender_verdicts[sender] = verdict
        return verdict

    def handle_datagram(self, data: bytes, sender: str) -> None:
        """Parse one datagram and apply its messages (called by the receive thread; public for tests).

        `received` is counted last, so a reader that sees it grow also sees every effect of the datagram.
        """
        try:
            if not self._sender_allowed(sender):
                self._count("not_allowed")
                self._limited.log(logging.WARNING, ("not_allowed", sender),
                                  "OSC from %s dropped: sender is not in the allowlist", sender)
                return
            try:
                messages = parse_packet(data)
            except OscParseError as error:
                self._count("malformed")
                self._limited.log(logging.WARNING, ("malformed", sender),
                                  "malformed OSC packet (%d bytes) from %s dropped: %s", len(data), sender, error)
                return
            for message in messages:
                self._count("messages")
                self.handle_message(message.address, message.args)
        finally:
            self._count("received")

    def handle_message(self, address: str, args: tuple[Any, ...]) -> None:
        """Apply one message: /prefix/<name> value, or /prefix name value [name value ...]."""
        address = address.rstrip("/") or "/"
        if address == self.prefix:
            self._apply_by_name(address, args)
            return
        if address.startswith(self.prefix + "/"):
            name = address[len(self.prefix) + 1 :]
            if name in self.controls.parameters:
                if len(args) > 1:
                    self._invalid(address, f"expected one value, got {len(args)}: {_show(args)}")
                    return
                self._apply(address, name, args[0] if args else None)
                return
            if name in self.handlers:
                self._call_handler(address, name, args)
                return
        self._count("unknown")
        self._limited.log(logging.WARNING, ("unknown", address),
                          "unknown OSC address %s ignored; see docs/osc.md for the addresses", address[:200])

    def _apply_by_name(self, address: str, args: tuple[Any, ...]) -> None:
        index = 0
        while index < len(args):
            name = args[index]
            if not isinstance(name, str) or name not in self.controls.parameters:
                if isinstance(name, str):
                    self._count("unknown")
                    self._limited.log(logging.WARNING, ("unknown", address, name),
                                      "unknown OSC parameter name %r in %s ignored", name[:100], address)
                else:
                    self._invalid(address, f"expected a parameter name at position {index}, got {short_repr(name)}")
                index += 2
                continue
            if index + 1 < len(args):
                self._apply(f"{address} {name}", name, args[index + 1])
            else:
                self._apply(f"{address} {name}", name, None)  # A lone trailing trigger name fires it.
            index += 2

    def _apply(self, where: str, name: str, value: Any) -> None:
        if value is not None and self.controls.parameters[name].is_trigger and self._is_repeat(name, value):
            return
        try:
            applied, clamped = self.controls.set(name, value, SOURCE)
        except ValueError as error:
            self._invalid(where, str(error))
            return
        if applied is None:
            if self.controls.parameter(name).kind != "trigger":
                self._count("held")
            return
        self._count("applied")
        if clamped:
            self._count("clamped")
            self._limited.log(logging.INFO, ("clamped", name), "OSC %s: %s clamped to %s (range %s)",
                              where, _show((value,)), applied, self.controls.parameter(name).describe_range())

    def _call_handler(self, address: str, name: str, args: tuple[Any, ...]) -> None:
        if self._is_repeat(address, args):
            return
        try:
            self.handlers[name](args)
        except ValueError as error:
            self._invalid(address, str(error))
            return
        self._count("applied")

    def _is_repeat(self, key: str, value: Any) -> bool:
        """Whether an event repeats the previous value for `key` within repeat_window (one press; counted)."""
        now = self._clock()
        previous = self._last_event.get(key)
        self._last_event[key] = (value, now)
        if previous is not None and previous[0] == value and now - previous[1] < self.repeat_window:
            self._count("repeats")
            return True
        return False

    def _invalid(self, where: str, reason: str) -> None:
        self._count("invalid")
        key = ("invalid", where.split(" ")[0])
        self._limited.log(logging.WARNING, key, "OSC %s ignored: %s", where, reason)


def _show(args: tuple[Any, ...]) -> str:
    text = " ".join(short_repr(arg) for arg in args[:8])
    return text if len(text) <= 120 else text[:117] + "..."
