"""OSC server and feedback over real UDP on loopback: types, bundles, garbage, floods, allowlist, feedback."""

import logging
import math
import random
import socket
import struct
import time
from pathlib import Path

import pytest
from conftest import wait_until
from pythonosc.osc_message import OscMessage as PythonOscMessage
from pythonosc.udp_client import SimpleUDPClient

from installation import osc_send
from installation.controls import PARAMETERS, ControlState
from installation.osc import (
    MAX_BUNDLE_DEPTH,
    OscFeedback,
    OscParseError,
    OscPortInUseError,
    OscServer,
    RateLimitedLog,
    parse_packet,
)

LOCALHOST = "127.0.0.1"
NTP_DELTA = 2208988800


# Hand-built OSC packets ------------------------------------------------------------------------


def osc_string(text: str) -> bytes:
    data = text.encode() + b"\x00"
    return data + b"\x00" * (-len(data) % 4)


def message(address: str, *typed: tuple[str, object]) -> bytes:
    """Build a message from (tag, value) pairs; T, F and N take no value."""
    tags, payload = ",", b""
    for tag, value in typed:
        tags += tag
        if tag == "i":
            payload += struct.pack(">i", value)
        elif tag == "h":
            payload += struct.pack(">q", value)
        elif tag == "f":
            payload += struct.pack(">f", value)
        elif tag == "d":
            payload += struct.pack(">d", value)
        elif tag == "s":
            payload += osc_string(value)
    return osc_string(address) + osc_string(tags) + payload


def timetag(unix_seconds: float | None) -> bytes:
    if unix_seconds is None:
        return struct.pack(">Q", 1)
    ntp = unix_seconds + NTP_DELTA
    return struct.pack(">II", int(ntp), int((ntp % 1) * 2**32))


def bundle(tag: bytes, *elements: bytes) -> bytes:
    return b"#bundle\x00" + tag + b"".join(struct.pack(">i", len(e)) + e for e in elements)


# Fixtures ----------------------------------------------------------------------------------------




@pytest.fixture
def controls():
    return ControlState(hold_seconds=10.0)


@pytest.fixture
def server(controls):
    with OscServer(controls, host=LOCALHOST, port=0) as running:
        yield running
    assert not running.is_alive


@pytest.fixture
def sender():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield sock
    sock.close()


def send_and_wait(sock, server, data: bytes, timeout: float = 2.0) -> None:
    """Send one datagram and wait until the server has counted it."""
    before = server.stats().received
    sock.sendto(data, (LOCALHOST, server.port))
    assert wait_until(lambda: server.stats().received > before, timeout)


# Pure parser -------------------------------------------------------------------------------------


def test_parse_packet_types_arrays_and_bundles():
    data = message("/a", ("i", -3), ("h", 2**40), ("f", 0.5), ("d", 0.25), ("s", "loop"), ("T", None),
                   ("F", None), ("N", None))
    (parsed,) = parse_packet(data)
    assert parsed.address == "/a" and parsed.args == (-3, 2**40, 0.5, 0.25, "loop", True, False, None)
    future = time.time() + 3600
    nested = bundle(timetag(None), message("/x", ("i", 1)), bundle(timetag(future), message("/y", ("i", 2))))
    parsed = parse_packet(nested)
    assert [(m.address, m.args) for m in parsed] == [("/x", (1,)), ("/y", (2,))]
    assert parsed[0].timetag is None and parsed[1].timetag == pytest.approx(future, abs=1e-3)
    assert parse_packet(osc_string("/bare"))[0].args == ()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"/no-terminator",
        osc_string("/a") + b"i\x00\x00\x00",  # Type tags without the comma.
        message("/a", ("i", 1))[:-2],  # Truncated argument.
        osc_string("/a") + osc_string(",x") + b"\x00" * 4,  # Unknown type tag.
        osc_string("/a") + osc_string(",[i") + b"\x00" * 4,  # Unbalanced array.
        b"/a\xff\x00" + osc_string(",i") + b"\x00" * 4,  # Address that is not UTF-8.
        b"#bundle\x00" + timetag(None) + struct.pack(">i", -4),  # python-osc 1.10 loops forever on this.
        b"#bundle\x00" + timetag(None) + struct.pack(">i", 400) + b"/a\x00\x00",
        b"#bundle\x00\x00\x00",
    ],
)
def test_parse_packet_rejects_malformed_packets(data):
    with pytest.raises(OscParseError):
        parse_packet(data)


def test_parse_packet_limits_bundle_nesting():
    packet = message("/deep", ("i", 1))
    for _ in range(MAX_BUNDLE_DEPTH + 1):
        packet = bundle(timetag(None), packet)
    with pytest.raises(OscParseError, match="nested"):
        parse_packet(packet)


# Server over UDP ---------------------------------------------------------------------------------


def test_python_osc_client_messages_change_the_state(server, controls):
    client = SimpleUDPClient(LOCALHOST, server.port)
    client.send_message("/masquerade/speed", 0.5)
    client.send_message("/masquerade/mode", "loop")
    client.send_message("/masquerade/pause", True)
    client.send_message("/masquerade/loop_keyframes", 16)
    client.send_message("/masquerade/next", [])
    assert wait_until(lambda: server.stats().received >= 5)
    snapshot = controls.snapshot()
    assert (snapshot["speed"], snapshot["mode"], snapshot["pause"], snapshot["loop_keyframes"]) == (
        0.5, "loop", True, 16,
    )
    assert controls.drain_triggers() == {"next": 1}
    assert controls.record("speed").source == "osc"
    client.close()


def test_raw_packets_of_every_numeric_type_and_strings(server, controls, sender):
    send_and_wait(sender, server, message("/masquerade/loop_keyframes", ("i", 12)))
    send_and_wait(sender, server, message("/masquerade/speed", ("f", 2.5)))
    send_and_wait(sender, server, message("/masquerade/truncation", ("d", 0.7)))
    send_and_wait(sender, server, message("/masquerade/seed", ("h", 123456789)))
    send_and_wait(sender, server, message("/masquerade/upscale", ("F", None)))
    send_and_wait(sender, server, message("/masquerade/fps_overlay", ("T", None)))
    send_and_wait(sender, server, message("/masquerade/captions", ("s", "false")))
    send_and_wait(sender, server, message("/masquerade/caption_layer", ("s", "early")))
    send_and_wait(sender, server, message("/masquerade/mode", ("f", 2.0)))  # A TouchDesigner menu index.
    send_and_wait(sender, server, message("/masquerade/offset_amount/", ("i", -3)))  # Trailing slash.
    snapshot = controls.snapshot()
    assert snapshot["loop_keyframes"] == 12 and snapshot["speed"] == 2.5
    assert snapshot["truncation"] == pytest.approx(0.7) and snapshot["seed"] == 123456789
    assert snapshot["upscale"] is False and snapshot["fps_overlay"] is True and snapshot["captions"] is False
    assert snapshot["caption_layer"] == "early" and snapshot["mode"] == "drift"
    assert snapshot["offset_amount"] == -3.0
    assert controls.drain_triggers() == {"seed": 123456789}
    assert server.stats().applied == 10


def test_transpose_by_name_multi_argument_message(server, controls, sender):
    data = message(
        "/masquerade",
        ("s", "speed"), ("f", 0.25),
        ("s", "mode"), ("s", "drift"),
        ("s", "offset_direction"), ("i", 77),
        ("s", "next"), ("i", 1),
        ("s", "previous"), ("i", 0),  # A button release does not fire.
        ("s", "jump"),  # A lone trailing trigger name fires.
    )
    send_and_wait(sender, server, data)
    snapshot = controls.snapshot()
    assert (snapshot["speed"], snapshot["mode"], snapshot["offset_direction"]) == (0.25, "drift", 77)
    assert controls.drain_triggers() == {"next": 1, "jump": 1}


def test_touchdesigner_button_press_and_release_count_once(server, controls, sender):
    send_and_wait(sender, server, message("/masquerade/next", ("f", 1.0)))
    send_and_wait(sender, server, message("/masquerade/next", ("f", 0.0)))
    assert controls.drain_triggers() == {"next": 1}


def test_bundles_immediate_and_one_hour_in_the_future_apply_at_once(server, controls, sender):
    send_and_wait(sender, server, bundle(timetag(None), message("/masquerade/speed", ("f", 3.0)),
                                         message("/masquerade/blend", ("f", 0.5))))
    assert controls.get("speed") == 3.0 and controls.get("blend") == 0.5
    start = time.monotonic()
    future = bundle(timetag(time.time() + 3600), message("/masquerade/speed", ("f", 4.0)),
                    bundle(timetag(time.time() + 7200), message("/masquerade/mode", ("s", "loop"))))
    sender.sendto(future, (LOCALHOST, server.port))
    assert wait_until(lambda: controls.get("speed") == 4.0 and controls.get("mode") == "loop", timeout=0.5)
    assert time.monotonic() - start < 0.5


def test_out_of_range_values_are_clamped_and_logged(server, controls, sender, caplog):
    caplog.set_level(logging.INFO, logger="installation.osc")
    send_and_wait(sender, server, message("/masquerade/speed", ("d", 1e300)))
    send_and_wait(sender, server, message("/masquerade/loop_keyframes", ("i", -2**31)))
    assert controls.get("speed") == 10.0 and controls.get("loop_keyframes") == 2
    assert server.stats().clamped == 2
    assert any("clamped to 10.0" in record.getMessage() for record in caplog.records)


def test_nan_inf_and_wrong_types_are_rejected_logged_and_not_fatal(server, controls, sender, caplog):
    caplog.set_level(logging.INFO, logger="installation.osc")
    controls.set("speed", 2.0, "osc")
    for data in (
        message("/masquerade/speed", ("f", math.nan)),
        message("/masquerade/speed", ("d", math.inf)),
        message("/masquerade/speed", ("f", -math.inf)),
        message("/masquerade/speed", ("s", "fast")),
        message("/masquerade/speed", ("f", 1.0), ("f", 2.0)),
        message("/masquerade/speed"),
        message("/masquerade/mode", ("s", "spiral")),
        message("/masquerade", ("i", 5), ("f", 1.0)),
    ):
        send_and_wait(sender, server, data)
    assert controls.get("speed") == 2.0 and controls.get("mode") == "endless"
    assert server.stats().invalid == 8 and server.stats().applied == 0
    assert any("finite" in record.getMessage() for record in caplog.records)
    send_and_wait(sender, server, message("/masquerade/speed", ("f", 6.0)))
    assert server.is_alive and controls.get("speed") == 6.0


def test_unknown_addresses_are_logged_once_per_interval(server, controls, sender, caplog):
    caplog.set_level(logging.INFO, logger="installation.osc")
    for _ in range(50):
        sender.sendto(message("/masquerade/bogus", ("f", 1.0)), (LOCALHOST, server.port))
    sender.sendto(message("/other/thing", ("f", 1.0)), (LOCALHOST, server.port))
    assert wait_until(lambda: server.stats().received == 51)
    assert server.stats().unknown == 51
    bogus = [r for r in caplog.records if "/masquerade/bogus" in r.getMessage()]
    other = [r for r in caplog.records if "/other/thing" in r.getMessage()]
    assert len(bogus) == 1 and len(other) == 1 and bogus[0].levelno == logging.WARNING


def test_rate_limited_log_reports_suppressed_repeats(caplog):
    caplog.set_level(logging.INFO)
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.limited"), 5.0, budget=3, clock=lambda: now[0])
    assert limited.log(logging.WARNING, "a", "problem %s", "a")
    assert not limited.log(logging.WARNING, "a", "problem %s", "a")
    assert limited.log(logging.WARNING, "b", "problem b") and limited.log(logging.WARNING, "c", "problem c")
    assert not limited.log(logging.WARNING, "d", "problem d")  # Over the budget for this interval.
    now[0] = 5.0
    assert limited.log(logging.WARNING, "a", "problem %s", "a")
    assert caplog.records[-1].getMessage() == "problem a (1 similar messages suppressed)"


def test_garbage_packets_leave_the_server_alive_and_answering(server, controls, sender):
    rng = random.Random(1234)
    valid = [
        message("/masquerade/speed", ("f", 0.5)),
        message("/masquerade", ("s", "speed"), ("f", 0.5), ("s", "mode"), ("s", "loop")),
        bundle(timetag(None), message("/masquerade/blend", ("f", 0.5)), message("/masquerade/next")),
    ]
    garbage = [b"#bundle\x00" + timetag(None) + struct.pack(">i", -4), bytes(60_000), b"/" * 60_000]
    for _ in range(1500):
        garbage.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))))
    for _ in range(1500):
        packet = rng.choice(valid)
        garbage.append(packet[: rng.randint(1, len(packet) - 1)])
    for _ in range(500):
        prefix = rng.choice([b"/", b"#bundle\x00", b"/masquerade/speed\x00\x00\x00,"])
        garbage.append(prefix + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 48))))
    for index, packet in enumerate(garbage, start=1):
        sender.sendto(packet, (LOCALHOST, server.port))
        if index % 100 == 0:
            # Let the loop keep up, so that the test checks parsing rather than kernel drops.
            wait_until(lambda index=index: server.stats().received >= index - 50, timeout=1.0)
    assert wait_until(lambda: server.stats().received >= len(garbage) * 0.9, timeout=5.0)
    assert server.is_alive
    assert server.stats().malformed > 1000
    controls.set("speed", 1.0, "osc")
    send_and_wait(sender, server, message("/masquerade/speed", ("f", 7.5)))
    assert controls.get("speed") == 7.5


def test_flood_is_coalesced_and_the_last_value_wins(server, controls, sender):
    sent = 50_000
    packets = [message("/masquerade/speed", ("f", (index % 1000) / 100.0)) for index in range(sent)]
    for packet in packets:
        sender.sendto(packet, (LOCALHOST, server.port))
    time.sleep(0.05)
    final = message("/masquerade/speed", ("f", 7.25))

    def settled() -> bool:
        # UDP may drop under a flood, so the final value is resent until it shows up.
        sender.sendto(final, (LOCALHOST, server.port))
        return controls.get("speed") == 7.25

    assert wait_until(settled, timeout=10.0, interval=0.1)
    assert server.is_alive
    stats = server.stats()
    assert stats.malformed == 0 and stats.received > 1000
    # Stay settled: nothing queued behind the final value.
    time.sleep(0.2)
    assert controls.get("speed") == 7.25


def test_allowlist_drops_other_senders(controls, sender, caplog):
    caplog.set_level(logging.INFO, logger="installation.osc")
    with OscServer(controls, host=LOCALHOST, port=0, allowlist=["10.9.9.9"]) as server:
        for _ in range(5):
            sender.sendto(message("/masquerade/speed", ("f", 9.0)), (LOCALHOST, server.port))
        assert wait_until(lambda: server.stats().received == 5)
        assert server.stats().not_allowed == 5
        assert controls.get("speed") == 1.0 and server.stats().applied == 0
    assert len([r for r in caplog.records if "not in the allowlist" in r.getMessage()]) == 1
    with OscServer(controls, host=LOCALHOST, port=0, allowlist="10.9.9.9, 127.0.0.0/8") as server:
        send_and_wait(sender, server, message("/masquerade/speed", ("f", 9.0)))
        assert controls.get("speed") == 9.0
    with pytest.raises(ValueError, match="not an IP address"):
        OscServer(controls, allowlist=["ten.nine"])


def test_keyboard_hold_blocks_osc_writes(server, controls, sender):
    controls.set("speed", 3.0, "keyboard")
    send_and_wait(sender, server, message("/masquerade/speed", ("f", 8.0)))
    assert controls.get("speed") == 3.0 and server.stats().held == 1


def test_port_in_use_gives_a_clear_error(controls):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind((LOCALHOST, 0))
    port = blocker.getsockname()[1]
    try:
        server = OscServer(controls, host=LOCALHOST, port=port)
        with pytest.raises(OscPortInUseError) as raised:
            server.start()
        assert str(raised.value) == (
            f"OSC port {port} on 127.0.0.1 is already in use; choose another with --osc-port"
        )
        assert isinstance(raised.value, RuntimeError) and not server.is_alive
    finally:
        blocker.close()


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="port"):
        OscServer(ControlState(), port=70000)
    with pytest.raises(ValueError, match="prefix"):
        OscServer(ControlState(), prefix="masquerade")


def test_stop_returns_quickly(controls):
    server = OscServer(controls, host=LOCALHOST, port=0).start()
    time.sleep(0.05)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1.0 and not server.is_alive


# Feedback ----------------------------------------------------------------------------------------


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOCALHOST, 0))
    sock.settimeout(2.0)
    yield sock
    sock.close()


def receive(sock, count: int) -> list[tuple[str, list]]:
    received = []
    for _ in range(count):
        data, _ = sock.recvfrom(65536)
        parsed = PythonOscMessage(data)
        received.append((parsed.address, parsed.params))
    return received


def test_feedback_messages_arrive(listener):
    feedback = OscFeedback(LOCALHOST, listener.getsockname()[1])
    feedback.send_state(seed=42, keyframe=3, phase=0.5, fps=59.5, novelty=0.25)
    feedback.send_loop_wrap(7)
    feedback.send_caption("Mask, Baule — wood")
    messages = receive(listener, 8)
    assert messages[0] == ("/masquerade/state", [42, 3, 0.5, 59.5, 0.25])
    assert messages[1:6] == [
        ("/masquerade/state/seed", [42]),
        ("/masquerade/state/keyframe", [3]),
        ("/masquerade/state/phase", [0.5]),
        ("/masquerade/state/fps", [59.5]),
        ("/masquerade/state/novelty", [0.25]),
    ]
    assert messages[6] == ("/masquerade/loop/wrap", [7])
    assert messages[7] == ("/masquerade/caption", ["Mask, Baule — wood"])
    assert feedback.sent == 8 and feedback.failed == 0
    feedback.close()


def test_query_reply_sends_every_value(listener):
    controls = ControlState()
    controls.set("speed", 2.5, "osc")
    feedback = OscFeedback(LOCALHOST, listener.getsockname()[1])
    snapshot = controls.snapshot()
    feedback.state_reply(snapshot)
    replies = dict(receive(listener, len(snapshot)))
    assert replies["/masquerade/value/speed"] == [2.5]
    assert replies["/masquerade/value/mode"] == ["endless"]
    assert replies["/masquerade/value/upscale"] == [1]  # Bools travel as 0/1 for CHOPs.
    assert replies["/masquerade/value/loop_keyframes"] == [8]
    feedback.close()


def test_feedback_never_raises(caplog):
    caplog.set_level(logging.INFO, logger="installation.osc")
    feedback = OscFeedback("255.255.255.255", 9)  # Broadcast without SO_BROADCAST: sendto fails.
    feedback.send_state(1, 2, 0.5, 60.0, 0.0)
    feedback.send_caption("x")
    assert feedback.failed >= 1 and feedback.sent + feedback.failed == 7
    assert len([r for r in caplog.records if "/masquerade/state " in r.getMessage() + " "]) <= 1
    with pytest.raises(ValueError, match="feedback port"):
        OscFeedback(LOCALHOST, 0)


# osc_send and docs -------------------------------------------------------------------------------


def test_osc_send_cli_reaches_the_server(server, controls, capsys):
    assert osc_send.main(["/masquerade/speed", "0.5", "--port", str(server.port)]) == 0
    assert osc_send.main(["/masquerade", "mode", "drift", "loop_keyframes", "32", "--port", str(server.port)]) == 0
    assert osc_send.main(["/masquerade/pause", "--type", "T", "--port", str(server.port)]) == 0
    assert osc_send.main(["/masquerade/truncation", "1", "--type", "d", "--port", str(server.port)]) == 0
    assert wait_until(lambda: server.stats().received == 4)
    snapshot = controls.snapshot()
    assert (snapshot["speed"], snapshot["mode"], snapshot["loop_keyframes"], snapshot["pause"]) == (
        0.5, "drift", 32, True,
    )
    assert snapshot["truncation"] == 1.0
    assert "sent /masquerade/speed 0.5" in capsys.readouterr().out


def test_osc_send_guesses_types():
    assert osc_send.typed_value("3") == (3, "i")
    assert osc_send.typed_value("-0.5") == (-0.5, "f")
    assert osc_send.typed_value("true") == (True, "T")
    assert osc_send.typed_value("False") == (False, "F")
    assert osc_send.typed_value("loop") == ("loop", "s")
    assert osc_send.typed_value("3", "f") == (3.0, "f")
    assert osc_send.typed_value("3", "s") == ("3", "s")


@pytest.mark.parametrize(
    "argv",
    [
        ["speed", "1"],
        ["/masquerade/speed", "fast", "--type", "f"],
        ["/masquerade/speed", "1.5", "--type", "i"],
        ["/masquerade/pause", "1", "--type", "T"],
        ["/masquerade/seed", "99999999999"],
        ["/masquerade/speed", "1", "--port", "0"],
        ["/masquerade/speed", "1", "--type", "x"],
    ],
)
def test_osc_send_bad_arguments_print_one_line_and_exit_2(argv, capsys):
    try:
        status = osc_send.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1


def test_docs_list_every_parameter_address():
    text = (Path(__file__).resolve().parents[1] / "docs" / "osc.md").read_text(encoding="utf-8")
    for name in PARAMETERS:
        assert f"/masquerade/{name}" in text, name
    for address in ("/masquerade/state", "/masquerade/loop/wrap", "/masquerade/caption", "/masquerade/value/"):
        assert address in text


def test_repeated_trigger_and_seed_values_from_a_cooking_chop_fire_once(server, controls, sender):
    for _ in range(10):  # "Send Events Every Cook" while a button is held down, and a seed channel.
        sender.sendto(message("/masquerade/next", ("f", 1.0)), (LOCALHOST, server.port))
        sender.sendto(message("/masquerade/seed", ("f", 42.0)), (LOCALHOST, server.port))
    assert wait_until(lambda: server.stats().received == 20)
    assert controls.drain_triggers() == {"next": 1, "seed": 42} and server.stats().repeats == 18
    for data in (message("/masquerade/next", ("f", 0.0)), message("/masquerade/next", ("f", 1.0)),
                 message("/masquerade/jump"), message("/masquerade/jump")):
        send_and_wait(sender, server, data)
    assert controls.drain_triggers() == {"next": 1, "jump": 2}  # New press after a release; bangs always.


def test_an_unexpected_error_in_the_handler_does_not_kill_the_thread(server, controls, sender, caplog,
                                                                     monkeypatch):
    caplog.set_level(logging.INFO, logger="installation.osc")
    original = controls.set

    def broken(name, value, source):
        if value == 3.0:
            raise RuntimeError("simulated bug")
        return original(name, value, source)

    monkeypatch.setattr(controls, "set", broken)
    send_and_wait(sender, server, message("/masquerade/speed", ("f", 3.0)))
    send_and_wait(sender, server, message("/masquerade/speed", ("f", 4.0)))
    assert server.is_alive and controls.get("speed") == 4.0
    assert any("crashed the handler" in r.getMessage() and r.exc_info for r in caplog.records)
