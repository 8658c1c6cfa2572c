"""One thread-safe control state ("latest value wins") shared by keyboard, OSC and webcam.

Writers call `ControlState.set(name, value, source)` from any thread; the display loop calls
`snapshot()` and `drain_triggers()` once per frame and applies what it finds to the latent walker
and the renderer flags. Nothing here blocks for longer than one dictionary update.

Precedence: sources rank "keyboard" > "remote" (the web remote) > "osc" > "webcam". After a source writes a
parameter it holds that parameter for `hold_seconds` (default 10 s, refreshed by each write); while a hold is active,
writes to the same parameter from lower-ranked sources are ignored. Once the hold expires the next
lower-ranked write applies again, so a webcam that keeps writing takes over by itself. Equal-ranked
writes always apply. Triggers (next, previous, jump, query, seed) are events, not values: they are
never held, so a press from any source counts.
"""

from __future__ import annotations

import math
import numbers
import reprlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

KINDS = ("float", "int", "bool", "choice", "trigger")
SOURCES = ("keyboard", "remote", "osc", "webcam")  # Highest precedence first.
DEFAULT_HOLD_SECONDS = 10.0
SEED_MAX = 2**31 - 1

# Values arrive from the network: a repr of one must stay short and must not recurse into nested arrays.
_BOUNDED_REPR = reprlib.Repr()
_BOUNDED_REPR.maxlevel, _BOUNDED_REPR.maxstring, _BOUNDED_REPR.maxother, _BOUNDED_REPR.maxlong = 3, 60, 60, 40
_BOUNDED_REPR.maxtuple = _BOUNDED_REPR.maxlist = _BOUNDED_REPR.maxdict = 6


def short_repr(value: Any) -> str:
    """A repr of an untrusted value bounded in length and depth (for log lines and error messages)."""
    return _BOUNDED_REPR.repr(value)


_TRUE_WORDS = frozenset({"true", "1", "on", "yes", "t"})
_FALSE_WORDS = frozenset({"false", "0", "off", "no", "f"})


@dataclass(frozen=True)
class Parameter:
    """Specification of one controllable parameter.

    kind: "float" | "int" | "bool" | "choice" | "trigger".
    min / max: inclusive range for float and int parameters; values outside are clamped.
    choices: allowed strings for "choice" parameters.
    event: for int parameters, also record each write as a trigger whose payload is the value
        (the "seed" parameter: writing 42 means "jump to seed 42", even if 42 was already set).
    """

    name: str
    kind: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""
    event: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum() or self.name != self.name.lower():
            raise ValueError(f"parameter name {self.name!r} must be lower-case letters, digits and '_'")
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind in ("float", "int"):
            if self.min is None or self.max is None or not self.min <= self.max:
                raise ValueError(f"parameter {self.name}: needs min <= max, got {self.min}..{self.max}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"parameter {self.name}: a choice parameter needs choices")
        if self.event and self.kind != "int":
            raise ValueError(f"parameter {self.name}: only int parameters can be events")
        if self.kind != "trigger":
            # The default must be a valid value; this catches typos in the registry and bad configured
            # starting values (dataclasses.replace runs this again).
            try:
                value, clamped = validate(self, self.default)
            except ValueError as error:
                raise ValueError(f"parameter {self.name}: default {self.default!r} is not valid: {error}") from None
            if clamped:
                raise ValueError(
                    f"parameter {self.name}: default {self.default!r} is outside {self.describe_range()}"
                )
            object.__setattr__(self, "default", value)  # Canonical type: 1 -> 1.0 for a float parameter.

    @property
    def is_trigger(self) -> bool:
        """True for parameters that produce events drained by `ControlState.drain_triggers`."""
        return self.kind == "trigger" or self.event

    def describe_range(self) -> str:
        """Human-readable allowed values, used in error messages and documentation."""
        if self.kind == "int":
            return f"{int(self.min)}..{int(self.max)}"
        if self.kind == "float":
            return f"{self.min:g}..{self.max:g}"
        if self.kind == "bool":
            return "true/false (1/0)"
        if self.kind == "choice":
            return " | ".join(self.choices)
        return "no value, or any non-zero value (0 / false is ignored, e.g. a button release)"


def _is_bool(raw: Any) -> bool:
    return isinstance(raw, bool | np.bool_)


def _finite_number(parameter: Parameter, raw: Any) -> float | int:
    """Return raw as a Python int or float, rejecting bools, NaN, inf and non-numbers."""
    expected = f"expected a finite number in {parameter.describe_range()}"
    if _is_bool(raw):
        raise ValueError(f"{parameter.name}: got boolean {short_repr(raw)}, {expected}")
    if isinstance(raw, numbers.Integral):
        return int(raw)
    if isinstance(raw, numbers.Real):
        number = float(raw)
    elif isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            raise ValueError(f"{parameter.name}: got {short_repr(raw)}, {expected}") from None
    else:
        raise ValueError(f"{parameter.name}: got {type(raw).__name__} {short_repr(raw)}, {expected}")
    if not math.isfinite(number):
        raise ValueError(f"{parameter.name}: got {short_repr(raw)}, {expected}")
    return number


def coerce(parameter: Parameter, raw: Any) -> Any:
    """Convert raw input (int, float, bool, numpy scalar, string) to the parameter's type, without clamping.

    Ints round floats to the nearest integer. Bools accept true/false, numbers (0 is false) and the strings
    true/false/1/0/on/off/yes/no. Choices accept a choice name (any case) or its index. Triggers return
    True to fire and False for "release" values (0, false), since TouchDesigner buttons send 1 then 0.
    Raises ValueError naming the value and the allowed range.
    """
    kind = parameter.kind
    if kind == "float":
        return float(_finite_number(parameter, raw))
    if kind == "int":
        number = _finite_number(parameter, raw)
        return number if isinstance(number, int) else int(round(number))
    if kind == "bool" or kind == "trigger":
        if kind == "trigger" and raw is None:
            return True
        if _is_bool(raw):
            return bool(raw)
        if isinstance(raw, numbers.Real):
            number = float(raw)
            if math.isnan(number):
                raise ValueError(f"{parameter.name}: got {short_repr(raw)}, expected {parameter.describe_range()}")
            return number != 0.0
        if isinstance(raw, str):
            word = raw.strip().lower()
            if word in _TRUE_WORDS or (kind == "trigger" and word in ("", "bang")):
                return True
            if word in _FALSE_WORDS:
                return False
        raise ValueError(f"{parameter.name}: got {short_repr(raw)}, expected {parameter.describe_range()}")
    if kind == "choice":
        if isinstance(raw, str):
            word = raw.strip().lower()
            if word in parameter.choices:
                return word
        elif not _is_bool(raw) and isinstance(raw, numbers.Real):
            # TouchDesigner menus travel through CHOPs as their index.
            number = float(raw)
            if number.is_integer() and 0 <= number < len(parameter.choices):
                return parameter.choices[int(number)]
        raise ValueError(
            f"{parameter.name}: got {short_repr(raw)}, expected one of {parameter.describe_range()} "
            f"(or an index 0..{len(parameter.choices) - 1})"
        )
    raise ValueError(f"{parameter.name}: unknown kind {kind!r}")


def clamp(parameter: Parameter, value: Any) -> tuple[Any, bool]:
    """Clamp an already coerced value into the parameter's range; returns (value, clamped)."""
    if parameter.kind not in ("float", "int"):
        return value, False
    low, high = parameter.min, parameter.max
    if value < low:
        return type(value)(low), True
    if value > high:
        return type(value)(high), True
    return value, False


def validate(parameter: Parameter, raw: Any) -> tuple[Any, bool]:
    """coerce() then clamp(); returns (value, clamped). Raises ValueError for unusable input."""
    return clamp(parameter, coerce(parameter, raw))


PARAMETER_LIST: tuple[Parameter, ...] = (
    Parameter("speed", "float", 1.0, 0.0, 10.0, doc="Walk speed multiplier; 0 stands still."),
    Parameter("pause", "bool", False, doc="Freeze the walk (the display keeps running)."),
    Parameter("next", "trigger", doc="Go to the next keyframe."),
    Parameter("previous", "trigger", doc="Go back to the previous keyframe."),
    Parameter("jump", "trigger", doc="Jump to a random point in latent space."),
    Parameter("seed", "int", 0, 0, SEED_MAX, event=True, doc="Jump to the latent point of this seed."),
    Parameter("truncation", "float", 1.0, 0.0, 2.0, doc="Latent truncation: lower is calmer, higher wilder."),
    Parameter("mode", "choice", "endless", choices=("endless", "loop", "drift"), doc="Walk mode."),
    Parameter("loop_keyframes", "int", 8, 2, 1024, doc="Number of keyframes in loop mode."),
    Parameter("offset_direction", "int", 0, 0, SEED_MAX, doc="Seed of a fixed latent direction."),
    Parameter("offset_amount", "float", 0.0, -10.0, 10.0, doc="How far to push along offset_direction."),
    Parameter("crossfade", "float", 2.0, 0.0, 60.0, doc="Transition time in seconds for jumps."),
    Parameter("upscale", "bool", True, doc="Use the super-resolution upscaler."),
    Parameter("captions", "bool", True, doc="Show provenance captions."),
    Parameter("caption_layer", "choice", "late", choices=("early", "late"),
              doc="Feature layer for provenance look-ups: early (texture) or late (motif)."),
    Parameter("blend", "float", 0.0, 0.0, 1.0,
              doc="Frame trail (0 = off, 1 = longest: each frame keeps 95 % of the last, never all of it)."),
    Parameter("query", "trigger", doc="Ask the piece to send all current values back over OSC."),
    Parameter("fps_overlay", "bool", False, doc="Show the frames-per-second overlay."),
    Parameter("open_now", "trigger", doc="Open (show the walk) outside the opening hours until their next change."),
    Parameter("close_now", "trigger", doc="Close (blank the screen, stop rendering) until the hours' next change."),
    Parameter("follow_hours", "trigger", doc="End an open_now / close_now override: follow the opening hours."),
    Parameter("ndi", "bool", False, doc="Send the frames as an NDI source (needs the ndi extra)."),
)

PARAMETERS: Mapping[str, Parameter] = MappingProxyType({p.name: p for p in PARAMETER_LIST})


@dataclass(frozen=True)
class Record:
    """The value in effect for one parameter, who wrote it and when (on the state's clock)."""

    value: Any
    source: str
    timestamp: float


class Snapshot(Mapping[str, Any]):
    """Immutable mapping of every current value for one frame; `version` grows whenever a value changes."""

    __slots__ = ("_values", "_sources", "_version")

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str], version: int) -> None:
        object.__setattr__(self, "_values", MappingProxyType(dict(values)))
        object.__setattr__(self, "_sources", MappingProxyType(dict(sources)))
        object.__setattr__(self, "_version", version)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Snapshot is immutable")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Snapshot(version={self._version}, {dict(self._values)})"

    @property
    def version(self) -> int:
        """Counter of value changes at the time of the snapshot."""
        return self._version

    def source(self, name: str) -> str:
        """Which source wrote the value in effect ("default" before any write)."""
        return self._sources[name]


class ControlState:
    """Thread-safe "latest value wins" store with source precedence and coalesced triggers.

    parameters: the registry (default PARAMETERS).
    hold_seconds: how long a source's write blocks lower-ranked sources on that parameter (0 disables).
    clock: monotonic time source in seconds; tests inject a fake one.
    sources: source names, highest precedence first.
    """

    def __init__(
        self,
        parameters: Mapping[str, Parameter] | Iterable[Parameter] = PARAMETERS,
        *,
        hold_seconds: float = DEFAULT_HOLD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sources: tuple[str, ...] = SOURCES,
    ) -> None:
        if not math.isfinite(hold_seconds) or hold_seconds < 0:
            raise ValueError(f"hold_seconds must be a finite number >= 0, got {hold_seconds!r}")
        if not sources or len(set(sources)) != len(sources):
            raise ValueError(f"sources must be distinct names, got {sources!r}")
        if not isinstance(parameters, Mapping):
            parameters = {p.name: p for p in parameters}
        self.parameters: Mapping[str, Parameter] = MappingProxyType(dict(parameters))
        self.hold_seconds = float(hold_seconds)
        self.sources = tuple(sources)
        self._rank = {source: len(sources) - index for index, source in enumerate(sources)}
        self._clock = clock
        self._lock = threading.Lock()
        start = clock()
        # The initial records belong to no source (rank 0), so any source may overwrite them at once.
        self._records: dict[str, Record] = {
            p.name: Record(p.default, "default", start - self.hold_seconds)
            for p in self.parameters.values()
            if p.kind != "trigger"
        }
        self._version = 0
        self._trigger_counts: dict[str, int] = {}
        self._trigger_payloads: dict[str, Any] = {}
        self._held = 0
        # Set on every applied write, so the display loop can react between frames instead of at the next one.
        self.changed = threading.Event()

    def parameter(self, name: str) -> Parameter:
        """Look a parameter up by name; raises ValueError listing the known names."""
        try:
            return self.parameters[name]
        except KeyError:
            raise ValueError(
                f"unknown parameter {name!r}; known: {', '.join(sorted(self.parameters))}"
            ) from None

    def set(self, name: str, value: Any, source: str) -> tuple[Any, bool]:
        """Validate, clamp and store one write; returns (applied_value, clamped).

        applied_value is None when nothing was applied: the parameter is held by a higher-ranked source,
        or a trigger received a release value (0 / false). Raises ValueError for an unknown name or source
        and for values that cannot be used (wrong type, NaN, inf).
        """
        parameter = self.parameter(name)
        rank = self._rank.get(source)
        if rank is None:
            raise ValueError(f"unknown control source {source!r}; expected one of {', '.join(self.sources)}")
        applied, clamped = validate(parameter, value)
        if parameter.kind == "trigger":
            if not applied:
                return None, False
            with self._lock:
                self._trigger_counts[name] = self._trigger_counts.get(name, 0) + 1
            self.changed.set()
            return 1, False
        with self._lock:
            now = self._clock()
            current = self._records[name]
            held = self._rank.get(current.source, 0) > rank and now - current.timestamp < self.hold_seconds
            if held and not parameter.event:
                self._held += 1
                return None, clamped
            if current.value != applied:
                self._version += 1
            self._records[name] = Record(applied, source, now)
            if parameter.event:
                self._trigger_counts[name] = self._trigger_counts.get(name, 0) + 1
                self._trigger_payloads[name] = applied
        self.changed.set()
        return applied, clamped

    def trigger(self, name: str, source: str) -> None:
        """Fire a trigger parameter once (same as set(name, True, source))."""
        self.set(name, True, source)

    def get(self, name: str) -> Any:
        """Current value of one parameter."""
        return self.record(name).value

    def record(self, name: str) -> Record:
        """Current value of one parameter with its source and timestamp."""
        parameter = self.parameter(name)
        if parameter.kind == "trigger":
            raise ValueError(f"{name} is a trigger and has no value; use drain_triggers()")
        with self._lock:
            return self._records[name]

    def snapshot(self) -> Snapshot:
        """Immutable copy of all current values, for one frame."""
        with self._lock:
            records = dict(self._records)
            version = self._version
        return Snapshot(
            {name: r.value for name, r in records.items()},
            {name: r.source for name, r in records.items()},
            version,
        )

    @property
    def version(self) -> int:
        """Counter that grows whenever any value changes."""
        with self._lock:
            return self._version

    @property
    def held_writes(self) -> int:
        """How many writes were ignored because a higher-ranked source held the parameter."""
        with self._lock:
            return self._held

    def drain_triggers(self) -> dict[str, Any]:
        """Take the events since the last call: {name: count} for triggers, {name: last payload} for events.

        Repeated presses between two frames coalesce into one count; events such as seed keep only
        their latest payload. Names without events are absent.
        """
        with self._lock:
            counts, payloads = self._trigger_counts, self._trigger_payloads
            self._trigger_counts, self._trigger_payloads = {}, {}
        return {name: payloads.get(name, count) for name, count in counts.items()}

    def reset(self, source: str = "keyboard") -> None:
        """Set every value parameter back to its default, as a write from `source`."""
        for parameter in self.parameters.values():
            if parameter.kind != "trigger" and not parameter.event:
                self.set(parameter.name, parameter.default, source)
