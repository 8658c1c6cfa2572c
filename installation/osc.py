"""OSC control input (one background thread writing to the ControlState) and OSC feedback output.

Input: `OscServer` owns one UDP socket and one daemon thread running a plain receive loop. Each datagram
is parsed by `parse_packet` and its messages are applied to the control state at once, in the receiving
thread: no thread per packet, no sleeping.

Why our own parser rather than `pythonosc.osc_packet.OscPacket`: python-osc 1.10 loops forever on a
bundle whose element size is negative (a 20-byte packet stops the server for good), lets
UnicodeDecodeError escape from string arguments, and writes warnings to the root logger for unknown
type tags. `parse_packet` is small, iterative and bounded (bundle and array nesting alike: a deeply nested
array would otherwise make every later repr of the value recurse), and raises only `OscParseError`.
python-osc is still used for everything it does well: building and sending messages (`OscFeedback`,
`installation.osc_send`) and in the tests.

Bundle time tags are ignored: every message is applied when its packet arrives, including bundles
stamped in the future. The control state keeps only the latest value, TouchDesigner sends "immediately",
and waiting for a time tag would either stall the receive loop or need a scheduler for no artistic gain.

Messages (prefix "/masquerade" by default, see docs/osc.md):
    /masquerade/<name> value          one parameter per address (TouchDesigner OSC Out CHOP channels)
    /masquerade name value name value  several parameters in one message (OSC Out DAT sendOSC)
    /masquerade/preset/save N|name     addresses given as handlers (presets), see OscServer
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import numbers
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.udp_client import UDPClient

from installation.controls import ControlState, short_repr

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
DEFAULT_FEEDBACK_PORT = 9001
DEFAULT_PREFIX = "/masquerade"
SOURCE = "osc"

MAX_DATAGRAM = 65536
MAX_BUNDLE_DEPTH = 8
MAX_ARRAY_DEPTH = 8
_NTP_TO_UNIX = 2208988800  # Seconds from 1900-01-01 (NTP epoch) to 1970-01-01.
_IMMEDIATELY = 1  # The OSC time tag 0x00000000_00000001.
_BUNDLE_HEADER = b"#bundle\x00"
_RECEIVE_TIMEOUT = 0.15  # Bounds how long stop() waits for the loop to notice.


class OscParseError(ValueError):
    """A datagram is not a well-formed OSC packet."""


class OscStartError(RuntimeError):
    """The OSC server could not open its socket."""


class OscPortInUseError(OscStartError):
    """Another program already listens on the OSC port."""


@dataclass(frozen=True)
class OscMessage:
    """One parsed message. timetag: Unix time of the enclosing bundle, None for "immediately"."""

    address: str
    args: tuple[Any, ...]
    timetag: float | None = None


# ---------------------------------------------------------------------------------------------
# Parsing (pure functions)


def _read_string(data: bytes, index: int) -> tuple[str, int]:
    end = data.find(b"\x00", index)
    if end < 0:
        raise OscParseError(f"unterminated string at byte {index}")
    try:
        text = data[index:end].decode("utf-8")
    except UnicodeDecodeError:
        raise OscParseError(f"string at byte {index} is not UTF-8") from None
    following = end + 1
    following += -following % 4
    if following > len(data):
        raise OscParseError(f"string padding at byte {index} runs past the end")
    return text, following


def _read(data: bytes, index: int, fmt: str, size: int) -> tuple[Any, int]:
    if index + size > len(data):
        raise OscParseError(f"argument at byte {index} runs past the end ({len(data)} bytes)")
    return struct.unpack_from(fmt, data, index)[0], index + size


def _timetag_to_unix(raw: int) -> float | None:
    if raw == _IMMEDIATELY:
        return None
    return (raw >> 32) - _NTP_TO_UNIX + (raw & 0xFFFFFFFF) / 2**32


def parse_message(data: bytes, timetag: float | None = None) -> OscMessage:
    """Parse one OSC message. Supports i h f d s S c T F N I b t r m and [ ] arrays."""
    if not data.startswith(b"/"):
        raise OscParseError("message does not start with '/'")
    address, index = _read_string(data, 0)
    if index >= len(data):
        return OscMessage(address, (), timetag)  # Old-style message with neither type tags nor args.
    tags, index = _read_string(data, index)
    if not tags.startswith(","):
        raise OscParseError(f"type tags {tags[:20]!r} do not start with ','")
    stack: list[list[Any]] = [[]]
    for tag in tags[1:]:
        if tag == "i":
            value, index = _read(data, index, ">i", 4)
        elif tag == "f":
            value, index = _read(data, index, ">f", 4)
        elif tag == "d":
            value, index = _read(data, index, ">d", 8)
        elif tag == "h":
            value, index = _read(data, index, ">q", 8)
        elif tag in "sS":
            value, index = _read_string(data, index)
        elif tag == "c":
            code, index = _read(data, index, ">I", 4)
            value = chr(code) if code < 0x110000 else ""
        elif tag == "T":
            value = True
        elif tag == "F":
            value = False
        elif tag in "NI":
            value = None  # Nil, and Impulse ("bang"): both mean "no value".
        elif tag == "b":
            size, index = _read(data, index, ">i", 4)
            if size < 0 or index + size > len(data):
                raise OscParseError(f"blob size {size} at byte {index} does not fit the message")
            value = data[index : index + size]
            index += size + (-size % 4)
        elif tag == "t":
            raw, index = _read(data, index, ">Q", 8)
            value = _timetag_to_unix(raw)
        elif tag in "rm":
            value, index = _read(data, index, ">I", 4)
        elif tag == "[":
            if len(stack) > MAX_ARRAY_DEPTH:
                raise OscParseError(f"arrays nested deeper than {MAX_ARRAY_DEPTH}")
            stack.append([])
            continue
        elif tag == "]":
            if len(stack) < 2:
                raise OscParseError("unbalanced ']' in type tags")
            value = tuple(stack.pop())
        else:
            raise OscParseError(f"unsupported type tag {tag!r}")
        stack[-1].append(value)
    if len(stack) != 1:
        raise OscParseError("unbalanced '[' in type tags")
    return OscMessage(address, tuple(stack[0]), timetag)


def parse_packet(data: bytes) -> list[OscMessage]:
    """Parse a datagram into its messages, flattening bundles (bounded depth, all-or-nothing)."""
    if data.startswith(b"/"):
        return [parse_message(data)]
    if not data.startswith(_BUNDLE_HEADER):
        raise OscParseError("packet is neither a message ('/') nor a bundle ('#bundle')")
    messages: list[OscMessage] = []
    pending = [(data, 0)]
    while pending:
        bundle, depth = pending.pop()
        if depth >= MAX_BUNDLE_DEPTH:
            raise OscParseError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        raw_timetag, index = _read(bundle, len(_BUNDLE_HEADER), ">Q", 8)
        timetag = _timetag_to_unix(raw_timetag)
        while index < len(bundle):
            size, index = _read(bundle, index, ">i", 4)
            if size <= 0 or index + size > len(bundle):
                raise OscParseError(f"bundle element size {size} at byte {index} does not fit the bundle")
            element = bundle[index : index + size]
            index += size
            if element.startswith(_BUNDLE_HEADER):
                pending.append((element, depth + 1))
            else:
                messages.append(parse_message(element, timetag))
    return messages


# ---------------------------------------------------------------------------------------------
# Rate-limited logging


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


# ---------------------------------------------------------------------------------------------
# Server


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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def plain_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a dual-stack socket sees IPv4 senders) as plain IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def plain_network(network: Network) -> Network:
    """An allowlist entry inside ::ffff:0:0/96 as the IPv4 network it stands for, so both spellings match."""
    mapped = ipaddress.ip_network("::ffff:0:0/96")
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(mapped):
        return ipaddress.ip_network((network.network_address.ipv4_mapped, network.prefixlen - 96))
    return network


def parse_allowlist(entries: Iterable[str] | None, what: str = "OSC allowlist") -> tuple[Network, ...]:
    """Turn addresses or networks ("192.168.1.20", "10.0.0.0/24") into networks; raises ValueError.

    IPv4-mapped entries (::ffff:192.168.1.20) become IPv4, and senders are compared the same way, so an IPv4
    entry matches an IPv4 sender whether the socket is IPv4 or dual-stack (--osc-host ::)."""
    if entries is None:
        return ()
    if isinstance(entries, str):
        entries = [part for part in entries.replace(",", " ").split() if part]
    networks = []
    for entry in entries:
        try:
            networks.append(plain_network(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"{what} entry {entry!r} is not an IP address or network "
                "like 192.168.1.20 or 10.0.0.0/24"
            ) from None
    if not networks:
        raise ValueError(f"{what} is empty; leave it unset to accept every sender")
    return tuple(networks)


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
        if value is not None and self.controls.parameters[name].is_trigger:
            now = self._clock()
            previous = self._last_event.get(name)
            self._last_event[name] = (value, now)
            if previous is not None and previous[0] == value and now - previous[1] < self.repeat_window:
                self._count("repeats")
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
        now = self._clock()
        previous = self._last_event.get(address)
        self._last_event[address] = (args, now)
        if previous is not None and previous[0] == args and now - previous[1] < self.repeat_window:
            self._count("repeats")
            return
        try:
            self.handlers[name](args)
        except ValueError as error:
            self._invalid(address, str(error))
            return
        self._count("applied")

    def _invalid(self, where: str, reason: str) -> None:
        self._count("invalid")
        key = ("invalid", where.split(" ")[0])
        self._limited.log(logging.WARNING, key, "OSC %s ignored: %s", where, reason)


def _show(args: tuple[Any, ...]) -> str:
    text = " ".join(short_repr(arg) for arg in args[:8])
    return text if len(text) <= 120 else text[:117] + "..."


# ---------------------------------------------------------------------------------------------
# Feedback


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
