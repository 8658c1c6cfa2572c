"""Rules from signals to parameters (pure): which signal drives which control, through which curve."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

from installation.controls import PARAMETERS
from installation.webcam.signals import EVENT_SIGNALS, SIGNAL_NAMES, Signals
from installation.webcam.validation import checked_pair

# Named curves; a number is an exponent applied to the normalised input (t ** curve).
CURVES: dict[str, float | str] = {"linear": 1.0, "ease-in": 2.0, "ease-out": 0.5, "smoothstep": "smoothstep"}


def _normalise_curve(label: str, curve: Any) -> float | str:
    if isinstance(curve, str):
        name = curve.strip().lower()
        if name in CURVES:
            return CURVES[name]
    elif not isinstance(curve, bool) and isinstance(curve, numbers.Real):
        if math.isfinite(curve) and 0.05 <= curve <= 20:
            return float(curve)
    raise ValueError(f"{label}.curve must be one of {', '.join(CURVES)} or an exponent in 0.05..20, got {curve!r}")


@dataclass(frozen=True)
class Rule:
    """One mapping rule: a signal drives one parameter.

    Value signals (motion, brightness, presence) drive float or int parameters: the signal is clamped
    to `in_range`, normalised to 0..1, shaped by `curve` and scaled to `out_range` (which may be
    reversed to invert). `out_range` defaults to the parameter's whole range. Event signals
    (new_visitor) fire trigger parameters (jump, next, previous).
    """

    signal: str
    to: str
    in_range: tuple[float, float] = (0.0, 1.0)
    out_range: tuple[float, float] | None = None
    curve: float | str = 1.0

    def __post_init__(self) -> None:
        label = f"webcam mapping {self.signal}"
        if self.signal not in SIGNAL_NAMES:
            raise _unknown_signal(self.signal)
        parameter = PARAMETERS.get(self.to) if isinstance(self.to, str) else None
        if parameter is None:
            raise ValueError(f"{label}.to: unknown parameter {self.to!r}; known: {', '.join(sorted(PARAMETERS))}")
        if self.signal in EVENT_SIGNALS:
            if parameter.kind != "trigger":
                triggers = ", ".join(p.name for p in PARAMETERS.values() if p.kind == "trigger")
                raise ValueError(f"{label}.to: {self.signal} is an event and needs a trigger parameter "
                                 f"({triggers}), got the {parameter.kind} parameter {self.to!r}")
            return
        if parameter.kind not in ("float", "int"):
            raise ValueError(f"{label}.to: {self.signal} needs a float or int parameter (e.g. speed, truncation), "
                             f"got the {parameter.kind} parameter {self.to!r}")
        in_range = checked_pair(f"{label}.in", self.in_range)
        if not in_range[0] < in_range[1]:
            raise ValueError(f"{label}.in must be [low, high] with low < high, got {list(self.in_range)}")
        if self.out_range is None:
            out_range = (parameter.min, parameter.max)
        else:
            out_range = checked_pair(f"{label}.out", self.out_range)
        for bound in out_range:
            if not parameter.min <= bound <= parameter.max:
                raise ValueError(f"{label}.out: {bound:g} is outside {self.to}'s range {parameter.describe_range()}")
        object.__setattr__(self, "in_range", in_range)
        object.__setattr__(self, "out_range", (float(out_range[0]), float(out_range[1])))
        object.__setattr__(self, "curve", _normalise_curve(label, self.curve))

    @property
    def is_event(self) -> bool:
        return self.signal in EVENT_SIGNALS

    def to_dict(self) -> dict[str, Any]:
        """The rule as it would be written in a configuration table."""
        if self.is_event:
            return {"to": self.to}
        curve = self.curve
        for name, value in CURVES.items():
            if value == curve:
                curve = name
                break
        return {"to": self.to, "in": list(self.in_range), "out": list(self.out_range), "curve": curve}


def shape_curve(t: float, curve: float | str) -> float:
    """Apply a curve to t in 0..1: an exponent (t ** curve) or "smoothstep"."""
    if curve == "smoothstep":
        return t * t * (3.0 - 2.0 * t)
    return t ** float(curve)


def map_value(rule: Rule, value: float) -> float:
    """Map one signal value through a value rule: clamp to in_range, normalise, curve, scale to out_range."""
    low, high = rule.in_range
    t = min(max((value - low) / (high - low), 0.0), 1.0)
    t = shape_curve(t, rule.curve)
    start, end = rule.out_range
    return start + (end - start) * t


_RULE_KEYS = ("to", "in", "out", "curve")
_EXAMPLE_RULE = '{to = "speed", in = [0, 0.2], out = [0.5, 3.0]}'


def _unknown_signal(signal: Any) -> ValueError:
    return ValueError(f"webcam mapping: unknown signal {signal!r}; expected one of {', '.join(SIGNAL_NAMES)}")


@dataclass(frozen=True)
class Mapping:
    """Which signal drives which parameter. At most one value rule per parameter."""

    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        rules = tuple(self.rules)
        for rule in rules:
            if not isinstance(rule, Rule):
                raise ValueError(f"webcam mapping rules must be Rule objects, got {rule!r}")
        object.__setattr__(self, "rules", rules)
        seen: dict[str, str] = {}
        for rule in rules:
            if rule.is_event:
                continue
            if rule.to in seen:
                raise ValueError(f"webcam mapping: {rule.to} is driven by both {seen[rule.to]} and {rule.signal}; "
                                 "keep one rule per parameter")
            seen[rule.to] = rule.signal

    @classmethod
    def from_dict(cls, data: Any) -> Mapping:
        """Parse a table such as {"motion": {"to": "speed", "in": [0, 0.2], "out": [0.5, 3.0], "curve": 0.5},
        "new_visitor": {"to": "jump"}}. A signal may also hold a list of tables (one signal driving
        several parameters), or false / an empty list to map nothing. Raises ValueError naming the bad key.
        """
        if not isinstance(data, dict):
            raise ValueError(f"webcam mapping must be a table like {{motion = {_EXAMPLE_RULE}}}, got {data!r}")
        rules: list[Rule] = []
        for signal, spec in data.items():
            if signal not in SIGNAL_NAMES:
                raise _unknown_signal(signal)
            if spec is None or spec is False:
                continue
            specs = spec if isinstance(spec, list | tuple) else [spec]
            allowed = ("to",) if signal in EVENT_SIGNALS else _RULE_KEYS
            for item in specs:
                label = f"webcam mapping {signal}"
                if not isinstance(item, dict):
                    raise ValueError(f"{label} must be a table like {_EXAMPLE_RULE}, got {item!r}")
                for key in item:
                    if key not in allowed:
                        raise ValueError(f"{label}: unknown key {key!r}; expected {', '.join(allowed)}")
                if "to" not in item:
                    raise ValueError(f"{label}: missing key 'to' (the parameter it drives, e.g. speed)")
                rules.append(Rule(signal, item["to"], item.get("in", (0.0, 1.0)), item.get("out"),
                                  item.get("curve", 1.0)))
        return cls(tuple(rules))

    def to_dict(self) -> dict[str, Any]:
        """The mapping as a configuration table (inverse of from_dict)."""
        table: dict[str, Any] = {}
        for rule in self.rules:
            entry = rule.to_dict()
            if rule.signal not in table:
                table[rule.signal] = entry
            elif isinstance(table[rule.signal], list):
                table[rule.signal].append(entry)
            else:
                table[rule.signal] = [table[rule.signal], entry]
        return table

    @property
    def uses_faces(self) -> bool:
        """True when a rule needs face detection (presence or new_visitor)."""
        return any(rule.signal in ("presence", "new_visitor") for rule in self.rules)

    @property
    def targets(self) -> tuple[str, ...]:
        """Parameters driven by value rules."""
        return tuple(rule.to for rule in self.rules if not rule.is_event)


DEFAULT_MAPPING = Mapping((
    Rule("motion", "speed", (0.0, 0.2), (0.5, 3.0), "ease-out"),
    Rule("brightness", "truncation", (0.15, 0.75), (0.6, 1.2)),
    Rule("new_visitor", "jump"),
))


class Mapped(NamedTuple):
    """Output of apply_mapping: parameter values to write and triggers to fire."""

    values: dict[str, float | int]
    triggers: tuple[str, ...]


def apply_mapping(signals: Signals, mapping: Mapping) -> Mapped:
    """Turn one Signals into parameter values and triggers. Rules whose signal is None are skipped."""
    values: dict[str, float | int] = {}
    triggers: list[str] = []
    for rule in mapping.rules:
        raw = getattr(signals, rule.signal)
        if raw is None:
            continue
        if rule.is_event:
            if raw:
                triggers.append(rule.to)
            continue
        value = map_value(rule, float(raw))
        values[rule.to] = round(value) if PARAMETERS[rule.to].kind == "int" else value
    return Mapped(values, tuple(triggers))
