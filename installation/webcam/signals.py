"""What the camera saw, as pure functions of frames: motion, brightness, smoothing and the visitor edge."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

VALUE_SIGNALS = ("motion", "brightness", "presence")
EVENT_SIGNALS = ("new_visitor",)
SIGNAL_NAMES = VALUE_SIGNALS + EVENT_SIGNALS


@dataclass(frozen=True)
class Signals:
    """What the camera saw in one analysed frame.

    motion: smoothed frame-difference energy, 0 (still) .. 1 (every pixel flipped black to white).
    presence: number of faces found by the last face detection; None when face detection is off.
    brightness: smoothed mean luma, 0 (black) .. 1 (white).
    new_visitor: True only in the frame where presence went from 0 to > 0 after at least
        `absence_seconds` without anyone.
    timestamp: the webcam clock (time.monotonic) when the frame was analysed.
    """

    motion: float = 0.0
    presence: int | None = 0
    brightness: float = 0.0
    new_visitor: bool = False
    timestamp: float = 0.0


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Grayscale uint8 copy of a BGR, BGRA or already gray frame."""
    if frame.ndim == 2:
        return frame if frame.dtype == np.uint8 else np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return to_gray(frame[:, :, 0])
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        return cv2.cvtColor(frame, code)
    raise ValueError(f"expected a gray, BGR or BGRA image, got an array of shape {frame.shape}")


def resize_to_width(image: np.ndarray, width: int) -> np.ndarray:
    """Resize keeping the aspect ratio (area interpolation, which also averages out sensor noise)."""
    height, current = image.shape[:2]
    if current == width:
        return image
    new_height = max(1, round(height * width / current))
    return cv2.resize(image, (width, new_height), interpolation=cv2.INTER_AREA)


def motion_energy(previous_gray: np.ndarray | None, gray: np.ndarray, noise_floor: int = 8) -> float:
    """Mean absolute difference of two gray uint8 frames in 0..1; per-pixel differences below
    `noise_floor` luma levels count as zero, so sensor noise and compression shimmer read as stillness.

    Returns 0.0 when there is no previous frame. Raises ValueError when the shapes differ.
    """
    if previous_gray is None:
        return 0.0
    if previous_gray.shape != gray.shape:
        raise ValueError(f"frame shapes differ: {previous_gray.shape} and {gray.shape}")
    difference = cv2.absdiff(previous_gray, gray)
    if noise_floor > 0:
        difference = np.where(difference >= noise_floor, difference, 0)
    return float(np.mean(difference, dtype=np.float64) / 255.0)


def brightness(gray: np.ndarray) -> float:
    """Mean luma of a gray uint8 frame in 0..1."""
    return float(np.mean(gray, dtype=np.float64) / 255.0)


def smooth(previous: float | None, value: float, factor: float) -> float:
    """Exponential moving average: factor is the weight of the previous value (0 = no smoothing, <1).

    With no previous value the new value is returned as it is.
    """
    if not 0.0 <= factor < 1.0:
        raise ValueError(f"smoothing factor must be in 0..1 (1 excluded), got {factor!r}")
    if previous is None:
        return float(value)
    return float(previous + (1.0 - factor) * (value - previous))


@dataclass(frozen=True)
class VisitorState:
    """Whether someone is present now and when someone was last seen (webcam clock)."""

    present: bool = False
    last_seen: float = -math.inf


def track_visitor(state: VisitorState, presence: int, now: float,
                  absence_seconds: float) -> tuple[VisitorState, bool]:
    """Advance the visitor state by one presence count; returns (new state, new_visitor edge).

    The edge fires when presence goes from 0 to > 0 and nobody was seen for at least absence_seconds,
    so a face that the detector loses for a moment does not count as a new visitor.
    """
    if presence > 0:
        new_visitor = not state.present and now - state.last_seen >= absence_seconds
        return VisitorState(True, now), new_visitor
    return VisitorState(False, state.last_seen), False
