"""OSC datagrams into messages (pure, bounded, raising only OscParseError).

Why our own parser rather than `pythonosc.osc_packet.OscPacket`: python-osc 1.10 loops forever on a
bundle whose element size is negative (a 20-byte packet stops the server for good), lets
UnicodeDecodeError escape from string arguments, and writes warnings to the root logger for unknown
type tags. `parse_packet` is small, iterative and bounded (bundle and array nesting alike: a deeply nested
array would otherwise make every later repr of the value recurse), and raises only `OscParseError`.
python-osc is still used for everything it does well: building and sending messages (`OscFeedback`,
`installation.osc.send`) and in the tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

MAX_BUNDLE_DEPTH = 8
MAX_ARRAY_DEPTH = 8
_NTP_TO_UNIX = 2208988800  # Seconds from 1900-01-01 (NTP epoch) to 1970-01-01.
_IMMEDIATELY = 1  # The OSC time tag 0x00000000_00000001.
_BUNDLE_HEADER = b"#bundle\x00"


class OscParseError(ValueError):
    """A datagram is not a well-formed OSC packet."""


@dataclass(frozen=True)
class OscMessage:
    """One parsed message. timetag: Unix time of the enclosing bundle, None for "immediately"."""

    address: str
    args: tuple[Any, ...]
    timetag: float | None = None


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
