"""Send one OSC message from the command line, to try the piece without TouchDesigner.

    python -m installation.osc_send /masquerade/speed 0.5
    python -m installation.osc_send /masquerade/mode loop --port 9000
    python -m installation.osc_send /masquerade speed 0.5 mode drift       (name/value pairs)
    python -m installation.osc_send /masquerade/next                       (a trigger needs no value)
    python -m installation.osc_send /masquerade/pause --type T

Values are typed by guessing: integers become 'i', other numbers 'f', true/false become T/F and
anything else a string. --type forces one type for every value (f, i, d, s), or sends a single
boolean (T, F) without values.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.udp_client import UDPClient

from installation.osc.defaults import DEFAULT_HOST, DEFAULT_PORT

TYPES = ("f", "i", "d", "T", "F", "s")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _parse_int(text: str) -> int:
    value = int(text, 0) if text.lower().lstrip("+-").startswith(("0x", "0b", "0o")) else int(text)
    if not INT32_MIN <= value <= INT32_MAX:
        raise ValueError(f"integer {text} is outside the OSC int32 range {INT32_MIN}..{INT32_MAX}; try --type d")
    return value


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def typed_value(text: str, type_code: str | None = None) -> tuple[Any, str]:
    """Turn one command-line word into (value, OSC type tag), guessing the type when type_code is None."""
    if type_code is None:
        word = text.strip().lower()
        if word in ("true", "false"):
            return word == "true", "T" if word == "true" else "F"
        try:
            return _parse_int(text), "i"
        except ValueError as error:
            if "int32" in str(error):
                raise
        try:
            return _parse_float(text), "f"
        except ValueError:
            return text, "s"
    if type_code == "i":
        try:
            return _parse_int(text), "i"
        except ValueError as error:
            if "int32" in str(error):
                raise
            raise ValueError(f"{text!r} is not an integer (--type i)") from None
    if type_code in ("f", "d"):
        return _parse_float(text), type_code
    if type_code == "s":
        return text, "s"
    raise ValueError(f"--type {type_code} takes no values; got {text!r}")


def build_message(address: str, words: Sequence[str], type_code: str | None = None) -> OscMessage:
    """Build the OSC message for an address and command-line values; raises ValueError."""
    if not address.startswith("/") or any(character.isspace() for character in address):
        raise ValueError(f"OSC address must start with '/' and contain no spaces, got {address!r}")
    if type_code is not None and type_code not in TYPES:
        raise ValueError(f"--type must be one of {', '.join(TYPES)}, got {type_code!r}")
    builder = OscMessageBuilder(address=address)
    if type_code in ("T", "F"):
        if words:
            raise ValueError(f"--type {type_code} sends a boolean and takes no values; got {' '.join(words)}")
        builder.add_arg(type_code == "T", type_code)
    for word in words:
        value, tag = typed_value(word, type_code)
        builder.add_arg(value, tag)
    try:
        return builder.build()
    except BuildError as error:
        raise ValueError(f"cannot build an OSC message from {address} {' '.join(words)}: {error}") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = _Parser(prog="python -m installation.osc_send", description=__doc__.split("\n")[0])
    parser.add_argument("address", help="OSC address, e.g. /masquerade/speed")
    parser.add_argument("values", nargs="*", help="values to send (types are guessed unless --type is given)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"destination host (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"destination port (default {DEFAULT_PORT})"
    )
    parser.add_argument("--type", dest="type_code", choices=TYPES, help="force the OSC type of every value")
    args = parser.parse_args(argv)
    try:
        if not 1 <= args.port <= 65535:
            raise ValueError(f"--port must be in 1..65535, got {args.port}")
        message = build_message(args.address, args.values, args.type_code)
        with UDPClient(args.host, args.port) as client:
            client.send(message)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot send to {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    shown = " ".join([message.address, *(repr(value) for value in message.params)])
    print(f"sent {shown} to {args.host}:{args.port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
