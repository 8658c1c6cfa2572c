"""Checks for webcam settings that raise one ValueError naming the setting and its allowed range."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def checked_number(label: str, value: Any, low: float, high: float, *, integer: bool = False) -> float | int:
    """Return value if it is a (finite) number in low..high, else raise ValueError naming label and range."""
    kind = "an integer" if integer else "a number"
    shown = f"{low:g}..{high:g}"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{label} must be {kind} in {shown}, got {value!r}")
    if integer and not isinstance(value, numbers.Integral):
        raise ValueError(f"{label} must be {kind} in {shown}, got {value!r}")
    if not math.isfinite(float(value)) or not low <= value <= high:
        raise ValueError(f"{label} must be {kind} in {shown}, got {value!r}")
    return int(value) if integer else float(value)


def checked_pair(label: str, raw: Any) -> tuple[float, float]:
    """Two finite numbers, e.g. an input or output range."""
    if isinstance(raw, list | tuple) and len(raw) == 2:
        try:
            return (checked_number(label, raw[0], -math.inf, math.inf),
                    checked_number(label, raw[1], -math.inf, math.inf))
        except ValueError:
            pass
    raise ValueError(f"{label} must be two finite numbers like [0, 0.2], got {raw!r}")
