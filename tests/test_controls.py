"""ControlState: coercion, clamping, precedence with holds, trigger coalescing, thread safety."""

import math
import threading

import numpy as np
import pytest

from installation.controls import (
    PARAMETERS,
    SEED_MAX,
    ControlState,
    Parameter,
    clamp,
    coerce,
    validate,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def state(clock):
    return ControlState(clock=clock, hold_seconds=10.0)


def test_registry_has_the_documented_parameters_with_valid_defaults():
    expected = {
        "speed", "pause", "next", "previous", "jump", "seed", "truncation", "mode", "loop_keyframes",
        "offset_direction", "offset_amount", "transition_seconds", "upscale", "captions", "caption_layer", "trail",
        "query", "fps_overlay",
    }
    assert expected <= set(PARAMETERS)
    snapshot = ControlState().snapshot()
    assert snapshot["speed"] == 1.0 and snapshot["truncation"] == 1.0 and snapshot["mode"] == "endless"
    assert snapshot["loop_keyframes"] == 8 and snapshot["crossfade"] == 2.0 and snapshot["blend"] == 0.0
    assert snapshot["upscale"] is True and snapshot["captions"] is True and snapshot["fps_overlay"] is False
    assert "next" not in snapshot  # Triggers have no value.
    for parameter in PARAMETERS.values():
        assert parameter.doc


def test_parameter_spec_validation():
    with pytest.raises(ValueError, match="kind"):
        Parameter("x", "colour")
    with pytest.raises(ValueError, match="min <= max"):
        Parameter("x", "float", 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="default"):
        Parameter("x", "float", 5.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="choices"):
        Parameter("x", "choice", "a")


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("speed", 2, 2.0),
        ("speed", 2.5, 2.5),
        ("speed", np.float32(0.5), 0.5),
        ("speed", np.int64(3), 3.0),
        ("speed", " 1.25 ", 1.25),
        ("loop_keyframes", 7.6, 8),
        ("loop_keyframes", np.float64(15.2), 15),
        ("loop_keyframes", "12", 12),
        ("loop_keyframes", np.int32(9), 9),
        ("pause", True, True),
        ("pause", np.True_, True),
        ("pause", 0, False),
        ("pause", 1.0, True),
        ("pause", "true", True),
        ("pause", "FALSE", False),
        ("pause", "1", True),
        ("pause", "0", False),
        ("pause", "off", False),
        ("mode", "loop", "loop"),
        ("mode", " Drift ", "drift"),
        ("mode", 1, "loop"),
        ("mode", 2.0, "drift"),
        ("caption_layer", "early", "early"),
        ("next", None, True),
        ("next", 1, True),
        ("next", 0.0, False),
        ("next", "bang", True),
        ("next", False, False),
    ],
)
def test_coerce_accepts(name, raw, expected):
    value = coerce(PARAMETERS[name], raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("speed", math.nan, r"speed: got nan, expected a finite number in 0\.\.10"),
        ("speed", math.inf, "finite"),
        ("speed", -math.inf, "finite"),
        ("speed", "fast", "'fast'"),
        ("speed", True, "boolean"),
        ("speed", None, "NoneType"),
        ("speed", b"\x01", "bytes"),
        ("loop_keyframes", math.nan, r"2\.\.1024"),
        ("pause", "maybe", "true/false"),
        ("pause", math.nan, "nan"),
        ("mode", "spiral", "endless | loop | drift"),
        ("mode", 3, "index 0..2"),
        ("mode", True, "endless"),
        ("next", "later", "'later'"),
    ],
)
def test_coerce_rejects_with_a_message_naming_value_and_range(name, raw, message):
    with pytest.raises(ValueError, match=message):
        coerce(PARAMETERS[name], raw)


def test_clamp_and_validate():
    speed = PARAMETERS["speed"]
    assert clamp(speed, 11.0) == (10.0, True)
    assert clamp(speed, -1.0) == (0.0, True)
    assert clamp(speed, 5.0) == (5.0, False)
    assert validate(speed, 1e300) == (10.0, True)
    assert validate(PARAMETERS["loop_keyframes"], 1) == (2, True)
    assert validate(PARAMETERS["loop_keyframes"], 1e12) == (1024, True)
    assert validate(PARAMETERS["seed"], -5) == (0, True)
    assert validate(PARAMETERS["seed"], 2**40) == (SEED_MAX, True)
    assert validate(PARAMETERS["offset_amount"], -50) == (-10.0, True)
    assert validate(PARAMETERS["mode"], "loop") == ("loop", False)


def test_set_returns_applied_value_and_bumps_version(state):
    version = state.version
    assert state.set("speed", 20, "osc") == (10.0, True)
    assert state.version == version + 1
    assert state.set("speed", 10.0, "osc") == (10.0, False)
    assert state.version == version + 1  # Same value: nothing changed.
    record = state.record("speed")
    assert (record.value, record.source, record.timestamp) == (10.0, "osc", 1000.0)


def test_set_rejects_unknown_names_sources_and_bad_values_without_changing_state(state):
    before = state.snapshot()
    with pytest.raises(ValueError, match="unknown parameter 'sped'"):
        state.set("sped", 1.0, "osc")
    with pytest.raises(ValueError, match="unknown control source"):
        state.set("speed", 1.0, "midi")
    with pytest.raises(ValueError, match="finite"):
        state.set("speed", math.nan, "osc")
    assert state.snapshot() == before and state.snapshot().version == before.version


def test_snapshot_is_immutable_and_independent(state):
    snapshot = state.snapshot()
    with pytest.raises(TypeError):
        snapshot["speed"] = 3.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        snapshot.version = 7  # type: ignore[misc]
    state.set("speed", 3.0, "osc")
    assert snapshot["speed"] == 1.0
    later = state.snapshot()
    assert later["speed"] == 3.0 and later.version > snapshot.version and later.source("speed") == "osc"


def test_higher_source_holds_a_parameter_until_the_hold_expires(state, clock):
    assert state.set("speed", 2.0, "keyboard") == (2.0, False)
    clock.now += 5.0
    assert state.set("speed", 3.0, "osc") == (None, False)
    assert state.set("speed", 4.0, "webcam") == (None, False)
    assert state.get("speed") == 2.0 and state.held_writes == 2
    # Other parameters are not held.
    assert state.set("blend", 0.5, "webcam") == (0.5, False)
    clock.now += 5.0  # Exactly hold_seconds after the keyboard write: the hold is over.
    assert state.set("speed", 4.0, "webcam") == (4.0, False)
    assert state.record("speed").source == "webcam"


def test_each_write_refreshes_the_hold_and_lower_holds_chain(state, clock):
    state.set("speed", 2.0, "keyboard")
    clock.now += 9.0
    state.set("speed", 2.5, "keyboard")
    clock.now += 9.0  # 18 s after the first write, 9 s after the last one: still held.
    assert state.set("speed", 3.0, "osc") == (None, False)
    clock.now += 1.0
    assert state.set("speed", 3.0, "osc") == (3.0, False)
    clock.now += 1.0
    assert state.set("speed", 4.0, "webcam") == (None, False)  # Now OSC holds it.
    assert state.set("speed", 5.0, "keyboard") == (5.0, False)  # Higher always wins at once.
    assert state.set("speed", 6.0, "keyboard") == (6.0, False)  # Equal rank always applies.
    clock.now += 10.0
    assert state.set("speed", 4.0, "webcam") == (4.0, False)


def test_hold_is_configurable_and_zero_disables_it(clock):
    state = ControlState(clock=clock, hold_seconds=0.0)
    state.set("speed", 2.0, "keyboard")
    assert state.set("speed", 3.0, "webcam") == (3.0, False)
    state = ControlState(clock=clock, hold_seconds=2.0)
    state.set("speed", 2.0, "keyboard")
    clock.now += 1.9
    assert state.set("speed", 3.0, "osc")[0] is None
    clock.now += 0.1
    assert state.set("speed", 3.0, "osc")[0] == 3.0
    with pytest.raises(ValueError, match="hold_seconds"):
        ControlState(hold_seconds=math.nan)


def test_defaults_do_not_hold(state):
    assert state.set("speed", 0.5, "webcam") == (0.5, False)


def test_triggers_coalesce_into_counts_and_events_keep_the_last_payload(state, clock):
    for _ in range(1000):
        state.set("next", 1, "osc")
        state.set("next", 0, "osc")  # Button release: ignored.
    state.trigger("jump", "keyboard")
    state.set("seed", 5, "osc")
    state.set("seed", 9, "webcam")  # Events are never held.
    assert state.set("query", 0, "osc") == (None, False)
    assert state.drain_triggers() == {"next": 1000, "jump": 1, "seed": 9}
    assert state.drain_triggers() == {}
    assert state.get("seed") == 9
    # Triggers are never held: a keyboard press does not block an OSC press.
    state.trigger("previous", "keyboard")
    assert state.set("previous", True, "osc") == (1, False)
    assert state.drain_triggers() == {"previous": 2}
    with pytest.raises(ValueError, match="trigger"):
        state.get("next")


def test_same_seed_twice_fires_twice(state):
    state.set("seed", 42, "osc")
    assert state.drain_triggers() == {"seed": 42}
    state.set("seed", 42, "osc")
    assert state.drain_triggers() == {"seed": 42}


def test_reset_restores_defaults(state):
    state.set("speed", 4.0, "keyboard")
    state.set("mode", "drift", "keyboard")
    state.reset()
    assert state.get("speed") == 1.0 and state.get("mode") == "endless"


def test_concurrent_writers_and_readers():
    state = ControlState(hold_seconds=0.0)
    writers, writes = 8, 5000
    errors: list[BaseException] = []
    stop = threading.Event()
    versions: list[int] = []

    def write(index: int) -> None:
        try:
            source = ("keyboard", "osc", "webcam")[index % 3]
            for step in range(writes):
                state.set("speed", (index * writes + step) % 10, source)
                state.set("next", 1, source)
                if step % 10 == 0:
                    state.set("mode", ("endless", "loop", "drift")[step % 3], source)
        except BaseException as error:  # Reported by the main thread.
            errors.append(error)

    def read() -> None:
        drained = 0
        while not stop.is_set():
            snapshot = state.snapshot()
            if not (0.0 <= snapshot["speed"] <= 10.0 and snapshot["mode"] in ("endless", "loop", "drift")):
                errors.append(AssertionError(f"inconsistent snapshot {snapshot!r}"))
            versions.append(snapshot.version)
            drained += state.drain_triggers().get("next", 0)
        drained += state.drain_triggers().get("next", 0)
        versions.append(-drained)

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    reader.join()
    assert not errors
    total_next = -versions.pop()
    assert total_next == writers * writes  # No press lost or duplicated.
    assert versions == sorted(versions)  # The version never goes backwards.
