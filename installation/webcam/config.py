"""Webcam settings: one frozen dataclass validated on construction, and the source setting's parser."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from installation.webcam.mapping import DEFAULT_MAPPING, Mapping
from installation.webcam.validation import checked_number

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def parse_source(raw: Any) -> int | str | None:
    """Normalise a source: a device index (int or digits), a file path or URL, or None / "none" (disabled)."""
    if raw is None:
        return None
    if isinstance(raw, os.PathLike):
        raw = os.fspath(raw)
    if isinstance(raw, bool | np.bool_):
        raise ValueError(f"webcam source must be a device index, a file path, a URL or 'none', got {raw!r}")
    if isinstance(raw, numbers.Integral):
        return int(checked_number("webcam source (device index)", int(raw), 0, 10_000, integer=True))
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in ("none", "off", "false", "disabled"):
            return None
        if text.isdigit():
            return int(checked_number("webcam source (device index)", int(text), 0, 10_000, integer=True))
        if text:
            return text
    raise ValueError(f"webcam source must be a device index, a file path, a URL or 'none', got {raw!r}")


@dataclass(frozen=True)
class WebcamConfig:
    """Webcam settings, validated on construction (ValueError naming the value and its range).

    source: device index (0 = first camera), "/dev/videoN", a video file path, a stream URL, or None /
        "none" to disable the webcam.
    width, height: capture size requested from a camera (0 = the camera's default); files keep their size.
    analysis_width: width of the grayscale copy used for motion and brightness.
    fps: analysis rate (frames per second); frames in between are read and dropped.
    smoothing: weight of the previous value in the moving average of motion and brightness
        (0 = none, 0.8 ≈ a quarter-second lag at 15 fps).
    noise_floor: per-pixel luma difference (0..255) below which a pixel counts as still.
    face_every: run face detection on every Nth analysed frame (it costs the most).
    face_width: width of the copy handed to the face detector.
    face_model: optional face detector file: a YuNet .onnx model or a Haar cascade .xml.
    absence_seconds: how long nobody must be seen before a face counts as a new visitor.
    mapping: signal-to-parameter rules (a Mapping, or a table accepted by Mapping.from_dict).
    write_threshold: only write a parameter when it moved by this fraction of its rule's output range.
    reconnect_initial, reconnect_max: exponential back-off between attempts to open the source (seconds).
    loop_file: re-open a video file at its end (gallery demos loop forever); otherwise the thread idles.
    preview, preview_width, preview_corner, mirror_preview: a small RGB copy of the frame for a corner preview.
    """

    source: int | str | None = 0
    width: int = 640
    height: int = 480
    analysis_width: int = 160
    fps: float = 15.0
    smoothing: float = 0.8
    noise_floor: int = 8
    face_every: int = 5
    face_width: int = 320
    face_model: str | None = None
    absence_seconds: float = 5.0
    mapping: Mapping = DEFAULT_MAPPING
    write_threshold: float = 0.01
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    loop_file: bool = True
    preview: bool = False
    preview_width: int = 160
    preview_corner: str = "bottom-right"
    mirror_preview: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "source", parse_source(self.source))
        for name, low, high in (("width", 0, 8192), ("height", 0, 8192), ("analysis_width", 16, 1280),
                                ("noise_floor", 0, 255), ("face_every", 1, 1000), ("face_width", 32, 1920),
                                ("preview_width", 16, 1920)):
            set_(self, name, checked_number(f"webcam {name}", getattr(self, name), low, high, integer=True))
        for name, low, high in (("fps", 1.0, 60.0), ("absence_seconds", 0.0, 86400.0),
                                ("write_threshold", 0.0, 1.0), ("reconnect_initial", 0.01, 60.0),
                                ("reconnect_max", 0.01, 3600.0)):
            set_(self, name, checked_number(f"webcam {name}", getattr(self, name), low, high))
        smoothing = checked_number("webcam smoothing", self.smoothing, 0.0, 1.0)
        if smoothing >= 1.0:
            raise ValueError("webcam smoothing must be a number in 0..1 with 1 excluded (1 would freeze the "
                             f"signals), got {self.smoothing!r}")
        set_(self, "smoothing", smoothing)
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError(f"webcam reconnect_max ({self.reconnect_max:g} s) must be at least reconnect_initial "
                             f"({self.reconnect_initial:g} s)")
        for name in ("loop_file", "preview", "mirror_preview"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ValueError(f"webcam {name} must be true or false, got {getattr(self, name)!r}")
            set_(self, name, bool(getattr(self, name)))
        if self.preview_corner not in CORNERS:
            raise ValueError(f"webcam preview_corner must be one of {', '.join(CORNERS)}, got {self.preview_corner!r}")
        if isinstance(self.mapping, dict):
            set_(self, "mapping", Mapping.from_dict(self.mapping))
        elif not isinstance(self.mapping, Mapping):
            raise ValueError(f"webcam mapping must be a Mapping or a table, got {self.mapping!r}")
        if self.face_model is not None:
            if isinstance(self.face_model, os.PathLike):
                set_(self, "face_model", os.fspath(self.face_model))
            if not isinstance(self.face_model, str) or not self.face_model.strip():
                raise ValueError(f"webcam face_model must be a file path or unset, got {self.face_model!r}")

    @property
    def enabled(self) -> bool:
        """False when the source is "none"."""
        return self.source is not None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebcamConfig:
        """Build from a table (e.g. the [webcam] section of a TOML file); unknown keys raise ValueError."""
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                raise ValueError(f"webcam: unknown setting {key!r}; expected one of {', '.join(names)}")
        return cls(**data)
