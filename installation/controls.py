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
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from installation.parameters import (
    CONTROL_ALIASES,
    CONTROLS,
    KINDS,
    SEED_MAX,
    Parameter,
    clamp,
    coerce,
    deprecated,
    short_repr,
    validate,
)

__all__ = ["KINDS", "SEED_MAX", "SOURCES", "DEFAULT_HOLD_SECONDS", "Parameter", "PARAMETERS", "PARAMETER_LIST",
           "Registry", "Record", "Snapshot", "ControlState", "clamp", "coerce", "validate", "short_repr"]

SOURCES = ("keyboard", "remote", "osc", "webcam")  # Highest precedence first.
DEFAULT_HOLD_SECONDS = 10.0


class Registry(Mapping[str, Parameter]):
    """Parameters by name. An old name (an alias from the table) finds its parameter but is never listed, so the
    OSC server, the webcam mapping and the presets accept it while snapshots and feedback use the new name."""

    def __init__(self, parameters: Iterable[Parameter], aliases: Mapping[str, str] = CONTROL_ALIASES) -> None:
        self._parameters = {parameter.name: parameter for parameter in parameters}
        self._aliases = {old: new for old, new in aliases.items()
                         if new in self._parameters and old not in self._parameters}

    def canonical(self, name: str) -> str:
        """The current name of `name` (itself unless it is an alias)."""
        return name if name in self._parameters else self._aliases.get(name, name)

    def __getitem__(self, name: str) -> Parameter:
        return self._parameters[self.canonical(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parameters)

    def __len__(self) -> int:
        return len(self._parameters)

    def __repr__(self) -> str:
        return f"Registry({', '.join(self._parameters)})"


PARAMETER_LIST: tuple[Parameter, ...] = CONTROLS
PARAMETERS: Registry = Registry(CONTROLS)


@dataclass(frozen=True)
class Record:
    """The value in effect for one parameter, who wrote it and when (on the state's clock)."""

    value: Any
    source: str
    timestamp: float


class Snapshot(Mapping[str, Any]):
    """Immutable mapping of every current value for one frame; `version` grows whenever a value changes."""

    __slots__ = ("_values", "_sources", "_version", "_aliases")

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str], version: int,
                 aliases: Mapping[str, str] = CONTROL_ALIASES) -> None:
        object.__setattr__(self, "_values", MappingProxyType(dict(values)))
        object.__setattr__(self, "_sources", MappingProxyType(dict(sources)))
        object.__setattr__(self, "_version", version)
        object.__setattr__(self, "_aliases", aliases)  # old names still read (callers not yet renamed)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Snapshot is immutable")

    def __getitem__(self, name: str) -> Any:
        return self._values[name if name in self._values else self._aliases.get(name, name)]

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
        return self._sources[name if name in self._sources else self._aliases.get(name, name)]


class ControlState:
    """Thread-safe "latest value wins" store with source precedence and coalesced triggers.

    parameters: the registry (default PARAMETERS: the live controls of installation/parameters.py's table).
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
        self.parameters = Registry(parameters.values() if isinstance(parameters, Mapping) else parameters)
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
        """Look a parameter up by name (or an old name); raises ValueError listing the known names."""
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
        if parameter.name != name:
            deprecated(name, parameter.name, f"{source} control")
            name = parameter.name
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
            return self._records[parameter.name]

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
