"""The OSC server against hostile input over real UDP: nesting bombs, huge values, dual-stack allowlists, a fuzz run."""

import logging
import math
import random
import socket
import struct
import time

import pytest
from conftest import wait_until

from installation.controls import PARAMETERS, ControlState
from installation.osc import MAX_ARRAY_DEPTH, OscParseError, OscServer, parse_packet

LOCALHOST = "127.0.0.1"
TAGS = "ifdhsScTFNIbtrm[]"


def osc_string(text: str | bytes) -> bytes:
    data = (text.encode() if isinstance(text, str) else text) + b"\x00"
    return data + b"\x00" * (-len(data) % 4)


def raw_message(address: str, tags: str, payload: bytes = b"") -> bytes:
    return osc_string(address) + osc_string("," + tags) + payload


class Recorder(logging.Handler):
    """Formats every record as it arrives (a bad format argument raises into the server, where it is counted)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record):
        self.lines.append((record.levelno, self.format(record)))


@pytest.fixture
def recorder():
    logger = logging.getLogger("installation.osc")
    handler, level = Recorder(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def sender():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield sock
    sock.close()


def send_and_wait(sock, server, data: bytes, target=(LOCALHOST,)) -> None:
    before = server.stats().received
    sock.sendto(data, (*target, server.port))
    assert wait_until(lambda: server.stats().received > before)


def nested_array(depth: int) -> bytes:
    return raw_message("/masquerade/speed", "[" * depth + "i" + "]" * depth, struct.pack(">i", 1))


def test_deeply_nested_arrays_are_refused_by_the_parser():
    with pytest.raises(OscParseError, match="arrays nested deeper"):
        parse_packet(nested_array(MAX_ARRAY_DEPTH + 1))
    (message,) = parse_packet(nested_array(MAX_ARRAY_DEPTH))
    value = message.args[0]
    for _ in range(MAX_ARRAY_DEPTH - 1):
        value = value[0]
    assert value == (1,)


def test_a_nesting_bomb_over_udp_is_one_warning_not_a_traceback(recorder, sender):
    """An array nested 10,000 deep used to raise RecursionError inside the handler's logging (repr of it)."""
    controls = ControlState()
    with OscServer(controls, host=LOCALHOST, port=0) as server:
        depth = 10_000
        send_and_wait(sender, server, nested_array(depth))
        send_and_wait(sender, server, raw_message("/masquerade/speed", "[" * depth + "]" * depth))
        send_and_wait(sender, server, raw_message("/masquerade/speed", "[[[[[[" + "i" * 4000 + "]]]]]]",
                                                  b"\x00\x00\x00\x07" * 4000))
        stats = server.stats()
        assert stats.malformed == 2 and stats.invalid == 1 and stats.internal_errors == 0
        send_and_wait(sender, server, raw_message("/masquerade/speed", "f", struct.pack(">f", 4.0)))
        assert controls.get("speed") == 4.0
    assert all(level < logging.ERROR for level, _ in recorder.lines)
    assert max(len(line) for _, line in recorder.lines) < 400  # the 4000-value array is not printed whole


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            probe.bind(("::", 0))
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no dual-stack IPv6 on loopback here")
def test_dual_stack_listener_matches_ipv4_senders_against_ipv4_allow_entries(sender):
    controls = ControlState()
    speed = raw_message("/masquerade/speed", "f", struct.pack(">f", 6.0))
    with OscServer(controls, host="::", port=0, allowlist=["127.0.0.1"]) as server:
        send_and_wait(sender, server, speed)  # arrives as ::ffff:127.0.0.1
        assert server.stats().not_allowed == 0 and controls.get("speed") == 6.0
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sender6:
            send_and_wait(sender6, server, raw_message("/masquerade/speed", "f", struct.pack(">f", 2.0)),
                          target=("::1",))
        assert server.stats().not_allowed == 1 and controls.get("speed") == 6.0  # ::1 is not listed
    with OscServer(controls, host="::", port=0, allowlist=["10.0.0.0/8", "::ffff:127.0.0.1"]) as server:
        send_and_wait(sender, server, raw_message("/masquerade/speed", "f", struct.pack(">f", 3.0)))
        assert controls.get("speed") == 3.0  # a mapped allow entry matches too
    with OscServer(controls, host="::", port=0, allowlist=["10.0.0.0/8"]) as server:
        send_and_wait(sender, server, speed)
        assert server.stats().not_allowed == 1 and controls.get("speed") == 3.0


# Fuzz ------------------------------------------------------------------------------------------------


def random_payload(rng: random.Random, tags: str) -> bytes:
    """Plausible bytes for the tags, sometimes wrong on purpose."""
    parts = []
    for tag in tags:
        if tag in "ircm":
            parts.append(struct.pack(">I", rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0xD800, 0x110000,
                                                        rng.getrandbits(32)])))
        elif tag == "f":
            parts.append(struct.pack(">f", rng.choice([math.nan, math.inf, -math.inf, 3.4e38, -0.0, 1e-45,
                                                       rng.uniform(-1e6, 1e6)])))
        elif tag in "dht":
            parts.append(struct.pack(">Q", rng.getrandbits(64)))
        elif tag in "sS":
            text = rng.choice([b"", b"loop", b"speed", b"\xff\xfe", "\u00e9".encode() * 300, b"%s%d%r{0}",
                               bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))])
            parts.append(osc_string(text.replace(b"\x00", b"")))
        elif tag == "b":
            size = rng.choice([0, 3, 4, 1 << 30, -1, rng.randint(0, 64)])
            parts.append(struct.pack(">i", size) + bytes(rng.randint(0, 16)))
    return b"".join(parts)


def fuzz_packet(rng: random.Random) -> bytes:
    names = list(PARAMETERS) + ["", "nope", "speed/extra"]
    kind = rng.randrange(8)
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 96)))
    if kind == 1:
        tags = "".join(rng.choice(TAGS) for _ in range(rng.randint(0, 24)))
        return raw_message(f"/masquerade/{rng.choice(names)}", tags, random_payload(rng, tags))
    if kind == 2:
        depth = rng.choice([MAX_ARRAY_DEPTH, MAX_ARRAY_DEPTH + 1, 50, 5000, 16_000])
        return nested_array(depth)
    if kind == 3:
        tags, payload = "", b""
        for _ in range(rng.randint(1, 6)):
            name = rng.choice(names)
            value_tag = rng.choice("ifdsTFN[")
            tags += "s" + (value_tag + "i]" if value_tag == "[" else value_tag)
            payload += osc_string(name) + random_payload(rng, value_tag.replace("[", "i"))
        return raw_message("/masquerade", tags, payload)
    if kind == 4:
        element = raw_message("/masquerade/jump", "")
        for _ in range(rng.randint(1, 12)):
            element = b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", len(element)) + element
        return element
    if kind == 5:
        element = raw_message(f"/masquerade/{rng.choice(names)}", "f", struct.pack(">f", 0.5))
        size = rng.choice([len(element), -len(element), 0, len(element) + 9, 2**31 - 1])
        return b"#bundle\x00" + struct.pack(">Q", rng.getrandbits(64)) + struct.pack(">i", size) + element
    if kind == 6:
        count = rng.choice([100, 2000, 15_000])
        return raw_message(f"/masquerade/{rng.choice(names)}", "i" * count, b"\x00\x00\x00\x01" * count)
    valid = raw_message(f"/masquerade/{rng.choice(names)}", "f", struct.pack(">f", rng.uniform(-5, 5)))
    cut = rng.randint(1, len(valid))
    return valid[:cut] + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 8)))


def test_fuzzed_packets_and_hostile_values_raise_no_handler_exception(recorder, sender):
    """3,000 seeded malformed packets and hostile values over UDP: every one is counted, none crashes the
    handler, no log line is an error or unbounded, and the server still answers afterwards."""
    rng = random.Random(20261130)
    packets = [fuzz_packet(rng) for _ in range(3000)]
    controls = ControlState()
    began = time.monotonic()
    with OscServer(controls, host=LOCALHOST, port=0, log_interval=0.0) as server:
        for index, packet in enumerate(packets, start=1):
            sender.sendto(packet[:65507], (LOCALHOST, server.port))
            if index % 50 == 0:
                # Keep within the socket buffer, so that every packet is handled rather than dropped by the kernel.
                assert wait_until(lambda index=index: server.stats().received >= index, timeout=5.0)
        assert wait_until(lambda: server.stats().received == len(packets), timeout=5.0)
        stats = server.stats()
        assert server.is_alive
        assert stats.internal_errors == 0
        assert stats.malformed > 500 and stats.invalid + stats.unknown > 100  # the fuzz reached the handlers
        send_and_wait(sender, server, raw_message("/masquerade/blend", "f", struct.pack(">f", 0.25)))
        assert controls.get("blend") == 0.25
    assert time.monotonic() - began < 60
    errors = [line for level, line in recorder.lines if level >= logging.ERROR]
    assert errors == []
    assert max(len(line) for _, line in recorder.lines) < 600
