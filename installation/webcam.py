"""Webcam input: one daemon thread turns camera frames into motion, brightness and presence signals.

`Webcam` opens a camera (device index), a video file or a stream URL with `cv2.VideoCapture`, reads
frames, analyses a small grayscale copy at a fixed rate and writes the mapped values into the
`ControlState` as source "webcam" (the lowest precedence: keyboard and OSC writes hold a parameter
for a while and the webcam's writes to it are ignored meanwhile). The display loop never waits on the
camera: it reads `signals()` and `preview()`, each a one-slot "latest wins" hand-off.

The signal math (`motion_energy`, `brightness`, `smooth`, `track_visitor`) and the mapping from signals
to parameters (`Rule`, `Mapping`, `apply_mapping`) are pure functions; `Analyzer` strings them together
for one frame at a time, and `Webcam` adds the I/O: opening, pacing, reconnecting and writing controls.

Frames are analysed in memory and dropped; nothing is stored or sent anywhere (see docs/webcam.md).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from installation.controls import PARAMETERS, ControlState
from installation.osc import RateLimitedLog

logger = logging.getLogger(__name__)

SOURCE = "webcam"
VALUE_SIGNALS = ("motion", "brightness", "presence")
EVENT_SIGNALS = ("new_visitor",)
SIGNAL_NAMES = VALUE_SIGNALS + EVENT_SIGNALS
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
# Named curves; a number is an exponent applied to the normalised input (t ** curve).
CURVES: dict[str, float | str] = {"linear": 1.0, "ease-in": 2.0, "ease-out": 0.5, "smoothstep": "smoothstep"}
HAAR_FRONTAL_FACE = "haarcascade_frontalface_default.xml"
_STREAM_TIMEOUT_MS = 5000  # Bounds how long opening or reading a network stream may block the thread.
_HELD_RETRY_SECONDS = 0.5  # How often to retry a write that a higher-ranked source's hold refused.


# ---------------------------------------------------------------------------------------------
# Validation helpers


def _number(label: str, value: Any, low: float, high: float, *, integer: bool = False) -> float | int:
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


def _pair(label: str, raw: Any) -> tuple[float, float]:
    """Two finite numbers, e.g. an input or output range."""
    if isinstance(raw, list | tuple) and len(raw) == 2:
        try:
            return (_number(label, raw[0], -math.inf, math.inf), _number(label, raw[1], -math.inf, math.inf))
        except ValueError:
            pass
    raise ValueError(f"{label} must be two finite numbers like [0, 0.2], got {raw!r}")


# ---------------------------------------------------------------------------------------------
# Signals (pure functions)


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


# ---------------------------------------------------------------------------------------------
# Mapping signals to parameters (pure)


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
        in_range = _pair(f"{label}.in", self.in_range)
        if not in_range[0] < in_range[1]:
            raise ValueError(f"{label}.in must be [low, high] with low < high, got {list(self.in_range)}")
        out_range = (parameter.min, parameter.max) if self.out_range is None else _pair(f"{label}.out", self.out_range)
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


# ---------------------------------------------------------------------------------------------
# Configuration


def parse_source(raw: Any) -> int | str | None:
    """Normalise a source: a device index (int or digits), a file path or URL, or None / "none" (disabled)."""
    if raw is None:
        return None
    if isinstance(raw, os.PathLike):
        raw = os.fspath(raw)
    if isinstance(raw, bool | np.bool_):
        raise ValueError(f"webcam source must be a device index, a file path, a URL or 'none', got {raw!r}")
    if isinstance(raw, numbers.Integral):
        return int(_number("webcam source (device index)", int(raw), 0, 10_000, integer=True))
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in ("none", "off", "false", "disabled"):
            return None
        if text.isdigit():
            return int(_number("webcam source (device index)", int(text), 0, 10_000, integer=True))
        if text:
            return text
    raise ValueError(f"webcam source must be a device index, a file path, a URL or 'none', got {raw!r}")


def source_kind(source: int | str | None) -> str:
    """"device", "file", "stream" or "none"."""
    if source is None:
        return "none"
    if isinstance(source, int) or source.startswith("/dev/video"):
        return "device"
    if "://" in source:
        return "stream"
    return "file"


def describe_source(source: int | str | None) -> str:
    """A source for log lines, with any password in a URL hidden."""
    kind = source_kind(source)
    if kind == "device":
        return f"camera {source}"
    if kind == "stream":
        return "stream " + re.sub(r"//[^/@]*@", "//***@", str(source))
    if kind == "file":
        return f"video file {source}"
    return "no source"


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
            set_(self, name, _number(f"webcam {name}", getattr(self, name), low, high, integer=True))
        for name, low, high in (("fps", 1.0, 60.0), ("absence_seconds", 0.0, 86400.0),
                                ("write_threshold", 0.0, 1.0), ("reconnect_initial", 0.01, 60.0),
                                ("reconnect_max", 0.01, 3600.0)):
            set_(self, name, _number(f"webcam {name}", getattr(self, name), low, high))
        smoothing = _number("webcam smoothing", self.smoothing, 0.0, 1.0)
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


# ---------------------------------------------------------------------------------------------
# Face detection


FaceDetector = Callable[[np.ndarray], int]  # BGR uint8 image -> number of faces.


def find_haar_cascade(name: str = HAAR_FRONTAL_FACE) -> Path | None:
    """Locate a Haar cascade shipped with OpenCV: cv2.data, then next to cv2, then system folders."""
    candidates: list[Path] = []
    data = getattr(cv2, "data", None)
    folder = getattr(data, "haarcascades", None)
    if folder:
        candidates.append(Path(folder) / name)
    package = Path(cv2.__file__).resolve().parent
    candidates += [package / "data" / name, package.parent / "share" / "opencv4" / "haarcascades" / name]
    for root in ("/usr/share/opencv4", "/usr/local/share/opencv4", "/usr/share/opencv"):
        candidates.append(Path(root) / "haarcascades" / name)
    return next((path for path in candidates if path.is_file()), None)


class HaarFaceDetector:
    """Frontal faces with an OpenCV Haar cascade (needs cv2.CascadeClassifier: OpenCV 4.x)."""

    def __init__(self, path: str | Path, min_size: int = 24) -> None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise ValueError(f"OpenCV {cv2.__version__} has no CascadeClassifier to load {path}; "
                             "use a YuNet .onnx face model instead")
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ValueError(f"{path} is not a Haar cascade that OpenCV can load")
        self.min_size = min_size

    def __call__(self, image: np.ndarray) -> int:
        gray = cv2.equalizeHist(to_gray(image))
        faces = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                               minSize=(self.min_size, self.min_size))
        return len(faces)


class YuNetFaceDetector:
    """Faces with OpenCV's YuNet network (cv2.FaceDetectorYN) from a .onnx model file."""

    def __init__(self, path: str | Path, score_threshold: float = 0.8) -> None:
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ValueError(f"OpenCV {cv2.__version__} has no FaceDetectorYN to load {path}")
        try:
            self._detector = cv2.FaceDetectorYN.create(str(path), "", (320, 240), score_threshold)
        except cv2.error as error:
            raise ValueError(f"{path} is not a YuNet model that OpenCV can load: {str(error).strip()[:200]}") from None
        self._size: tuple[int, int] | None = None

    def __call__(self, image: np.ndarray) -> int:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self._detector.setInputSize(size)
            self._size = size
        _, faces = self._detector.detect(image)
        return 0 if faces is None else len(faces)


def load_face_detector(model: str | None = None) -> tuple[FaceDetector | None, str]:
    """Load a face detector; returns (detector, description) or (None, why presence is unavailable).

    With `model` (a YuNet .onnx or a Haar .xml file) a file that is missing or unusable raises
    FileNotFoundError / ValueError, since the user asked for it. Without, the Haar frontal-face cascade
    shipped with OpenCV is used where this OpenCV has one; OpenCV 5 ships neither the cascades nor
    CascadeClassifier, so there the result is (None, reason) and presence stays off.
    """
    if model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"webcam face_model {model} does not exist; "
                                    "give a YuNet .onnx model or a Haar cascade .xml file")
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            return YuNetFaceDetector(path), f"YuNet model {path.name}"
        if suffix == ".xml":
            return HaarFaceDetector(path), f"Haar cascade {path.name}"
        raise ValueError(f"webcam face_model {model} must be a YuNet .onnx model or a Haar cascade .xml file")
    if not hasattr(cv2, "CascadeClassifier"):
        return None, (f"OpenCV {cv2.__version__} has no Haar face detector (CascadeClassifier); "
                      "set face_model to a YuNet .onnx file to enable presence")
    path = find_haar_cascade()
    if path is None:
        return None, f"the Haar cascade {HAAR_FRONTAL_FACE} was not found in the OpenCV installation"
    try:
        return HaarFaceDetector(path), f"Haar cascade {path}"
    except ValueError as error:
        return None, str(error)


# ---------------------------------------------------------------------------------------------
# Per-frame analysis


class Analyzer:
    """Turns frames into Signals: downsize, gray, motion against the previous analysed frame,
    brightness, face presence every `face_every` frames, smoothing and the visitor edge.

    Not thread-safe: one Analyzer belongs to one capture thread.
    """

    def __init__(self, config: WebcamConfig, face_detector: FaceDetector | None = None,
                 on_error: Callable[[], None] | None = None) -> None:
        self.config = config
        self.face_detector = face_detector
        self.detector_errors = 0
        self._on_error = on_error
        self._limited = RateLimitedLog(logger, 30.0)
        self._previous_gray: np.ndarray | None = None
        self._motion: float | None = None
        self._brightness: float | None = None
        self._presence = 0
        self._visitor = VisitorState()
        self._count = 0

    def reset(self) -> None:
        """Forget the previous frame (after re-opening a source), keeping the smoothed values."""
        self._previous_gray = None

    def analyse(self, frame: np.ndarray, now: float) -> Signals:
        """Analyse one BGR (or gray) frame taken at `now`."""
        config = self.config
        gray = resize_to_width(to_gray(frame), config.analysis_width)
        previous = self._previous_gray
        if previous is not None and previous.shape == gray.shape:
            # No previous frame (first one, or a re-opened file jumping back to its start) leaves
            # the smoothed motion as it was instead of pulling it towards zero.
            raw_motion = motion_energy(previous, gray, config.noise_floor)
            self._motion = smooth(self._motion, raw_motion, config.smoothing)
        self._previous_gray = gray
        self._brightness = smooth(self._brightness, brightness(gray), config.smoothing)
        presence: int | None = None
        new_visitor = False
        if self.face_detector is not None:
            if self._count % config.face_every == 0:
                self._presence = self._detect(frame)
            presence = self._presence
            self._visitor, new_visitor = track_visitor(self._visitor, presence, now, config.absence_seconds)
        self._count += 1
        return Signals(motion=min(max(self._motion or 0.0, 0.0), 1.0), presence=presence,
                       brightness=min(max(self._brightness, 0.0), 1.0), new_visitor=new_visitor, timestamp=now)

    def _detect(self, frame: np.ndarray) -> int:
        try:
            return int(self.face_detector(resize_to_width(frame, self.config.face_width)))
        except (cv2.error, ValueError) as error:
            # A detector failure costs presence for this frame only; motion and brightness go on.
            self.detector_errors += 1
            if self._on_error is not None:
                self._on_error()
            self._limited.log(logging.WARNING, "face", "webcam face detection failed: %s", str(error).strip()[:200])
            return self._presence

    def preview(self, frame: np.ndarray) -> np.ndarray:
        """A small RGB uint8 copy of the frame for the corner preview (mirrored like a selfie if configured)."""
        small = resize_to_width(frame, self.config.preview_width)
        if small.ndim == 2:
            rgb = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
        elif small.shape[2] == 4:
            rgb = cv2.cvtColor(small, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        if self.config.mirror_preview:
            rgb = rgb[:, ::-1]
        return np.ascontiguousarray(rgb)


# ---------------------------------------------------------------------------------------------
# Capture thread


def open_capture(config: WebcamConfig) -> Any:
    """Open config.source with cv2.VideoCapture (the default capture factory of Webcam)."""
    source = config.source
    kind = source_kind(source)
    if kind == "stream":
        # Without timeouts FFmpeg can block for half a minute on a dead stream.
        return cv2.VideoCapture(source, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS,
                                                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS])
    capture = cv2.VideoCapture(source)
    if kind == "device" and capture.isOpened():
        if config.width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, config.width)
        if config.height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, config.height)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # Analyse the newest frame, not one queued seconds ago.
    return capture


@dataclass(frozen=True)
class WebcamStats:
    """Counters of a Webcam.

    frames: frames read; analysed: frames analysed; reconnects: attempts to open the source again
    after a failure; loops: times a video file was re-opened at its end; errors: unexpected exceptions
    and face-detector failures; writes: values written to the control state; held: writes ignored
    because keyboard or OSC held the parameter; triggers: triggers fired; visitors: new visitors seen;
    restarts: threads restarted by ensure_alive(); connected: the source is open and delivering.
    """

    frames: int = 0
    analysed: int = 0
    reconnects: int = 0
    loops: int = 0
    errors: int = 0
    writes: int = 0
    held: int = 0
    triggers: int = 0
    visitors: int = 0
    restarts: int = 0
    connected: bool = False


class _Run:
    """One capture thread's private stop flag and analyzer; a restarted Webcam gets new ones, so a thread
    still blocked in a read can never write after it was told to stop."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.stop = threading.Event()
        self.analyzer = analyzer
        self.thread: threading.Thread | None = None


_STOPPED, _ENDED = "stopped", "ended"
AUTO = "auto"


class Webcam:
    """Capture frames in one daemon thread and write mapped controls into a ControlState.

    controls: where to write (source "webcam"); None only computes signals.
    face_detector: "auto" loads one (see load_face_detector) when the mapping uses presence or
        new_visitor; None disables presence; or any callable BGR image -> face count (tests inject one).
    capture_factory: opens the source (default open_capture); anything with isOpened/grab/retrieve/get/release.
    clock: monotonic seconds, for pacing, timestamps and the visitor edge.
    """

    def __init__(
        self,
        controls: ControlState | None,
        config: WebcamConfig | None = None,
        *,
        face_detector: FaceDetector | str | None = AUTO,
        capture_factory: Callable[[WebcamConfig], Any] = open_capture,
        clock: Callable[[], float] = time.monotonic,
        log_interval: float = 10.0,
    ) -> None:
        self.controls = controls
        self.config = config = config if config is not None else WebcamConfig()
        if controls is not None:
            for rule in config.mapping.rules:
                if rule.to not in controls.parameters:
                    raise ValueError(f"webcam mapping {rule.signal}.to: the control state has no parameter {rule.to!r}")
        self._capture_factory = capture_factory
        self._clock = clock
        self._limited = RateLimitedLog(logger, log_interval, clock=clock)
        if isinstance(face_detector, str):
            if face_detector != AUTO:
                raise ValueError(f"face_detector must be 'auto', None or a callable, got {face_detector!r}")
            face_detector = None
            if config.enabled and (config.mapping.uses_faces or config.face_model):
                face_detector, description = load_face_detector(config.face_model)
                if face_detector is None:
                    logger.warning("webcam presence and new-visitor detection disabled: %s", description)
                else:
                    logger.info("webcam face detection: %s", description)
        if face_detector is not None and not callable(face_detector):
            raise ValueError(f"face_detector must be 'auto', None or a callable, got {face_detector!r}")
        self._face_detector = face_detector
        self._lifecycle = threading.RLock()
        self._lock = threading.Lock()
        self._run: _Run | None = None
        self._wanted = False
        self._counts = {name: 0 for name in WebcamStats.__dataclass_fields__ if name != "connected"}
        self._connected = False
        self._signals: Signals | None = None
        self._preview: np.ndarray | None = None
        self._last_error: str | None = None
        self._refused_until: dict[str, float] = {}
        self._spans = {rule.to: abs(rule.out_range[1] - rule.out_range[0]) for rule in config.mapping.rules
                       if not rule.is_event}
        self._ends = {rule.to: rule.out_range for rule in config.mapping.rules if not rule.is_event}

    # Lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Webcam:
        """Start the capture thread (no-op when the source is "none" or the thread already runs)."""
        with self._lifecycle:
            if not self.config.enabled:
                logger.info("webcam disabled (source none)")
                return self
            if self.alive:
                return self
            run = _Run(Analyzer(self.config, self._face_detector, on_error=lambda: self._count("errors")))
            run.thread = threading.Thread(target=self._main, args=(run,), name="webcam", daemon=True)
            self._run = run
            self._wanted = True
            run.thread.start()
            logger.info("webcam reading %s at %g analyses per second", describe_source(self.config.source),
                        self.config.fps)
            return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread; returns within about `timeout` seconds even if a read is blocking."""
        with self._lifecycle:
            self._wanted = False
            run, self._run = self._run, None
            if run is None:
                return
            run.stop.set()
            if run.thread is not None and run.thread is not threading.current_thread():
                run.thread.join(timeout)
                if run.thread.is_alive():
                    logger.warning("webcam thread did not stop within %.1f s; it will exit after its current read",
                                   timeout)

    def restart(self) -> None:
        """Stop and start again (re-opens the source at once, without waiting for the back-off)."""
        with self._lifecycle:
            self.stop()
            self.start()

    def ensure_alive(self) -> bool:
        """Restart the thread if it should run but died; returns True when it restarted it (watchdog hook)."""
        with self._lifecycle:
            if not self._wanted or self.alive:
                return False
            logger.warning("webcam thread died; restarting it")
            self._count("restarts")
            self._run = None
            self.start()
            return True

    def __enter__(self) -> Webcam:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        """True while the capture thread runs (also while it waits to reconnect or idles after a file)."""
        run = self._run
        return run is not None and run.thread is not None and run.thread.is_alive()

    # Reading the results -------------------------------------------------------------------------

    def signals(self) -> Signals | None:
        """The latest Signals, or None before the first analysed frame."""
        with self._lock:
            return self._signals

    def preview(self) -> np.ndarray | None:
        """The latest preview frame (RGB uint8, preview_width wide) when preview is on, else None."""
        with self._lock:
            return self._preview

    def stats(self) -> WebcamStats:
        """A copy of the counters."""
        with self._lock:
            counts = dict(self._counts)
            connected = self._connected
        return WebcamStats(**counts, connected=connected)

    @property
    def frames(self) -> int:
        return self.stats().frames

    @property
    def reconnects(self) -> int:
        return self.stats().reconnects

    @property
    def errors(self) -> int:
        return self.stats().errors

    @property
    def last_error(self) -> str | None:
        """The latest problem (could not open, stopped delivering, exception), or None."""
        with self._lock:
            return self._last_error

    # Thread ------------------------------------------------------------------------------------

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _problem(self, key: str, level: int, message: str, *args: Any, exc_info: bool = False) -> None:
        with self._lock:
            self._last_error = message % args if args else message
        self._limited.log(level, key, "webcam: " + message, *args, exc_info=exc_info)

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected

    def _main(self, run: _Run) -> None:
        config = self.config
        described = describe_source(config.source)
        is_file = source_kind(config.source) == "file"
        backoff = config.reconnect_initial
        reconnecting = False
        try:
            while not run.stop.is_set():
                if reconnecting:
                    self._count("reconnects")
                reconnecting = True  # Cleared below only when a file loops.
                capture = None
                try:
                    capture = self._capture_factory(config)
                    if capture is None or not capture.isOpened():
                        self._problem("open", logging.WARNING, "cannot open %s; retrying with back-off (now %.1f s)",
                                      described, backoff)
                    else:
                        self._set_connected(True)
                        outcome, frames_read = self._read_frames(run, capture, is_file)
                        self._set_connected(False)
                        if outcome == _STOPPED:
                            break
                        if frames_read:
                            backoff = config.reconnect_initial
                        if is_file and frames_read and config.loop_file:
                            self._count("loops")
                            reconnecting = False
                            continue
                        self._release_controls(run)
                        if is_file and frames_read:
                            logger.info("webcam: %s ended; idle until restarted (loop_file is off)", described)
                            run.stop.wait()
                            break
                        self._problem("read", logging.WARNING, "%s stopped delivering frames; reconnecting "
                                      "with back-off (now %.1f s)", described, backoff)
                except Exception as error:
                    # Last-resort boundary: a camera driver, a codec or our own code can raise anything
                    # (cv2.error, MemoryError from a corrupt frame, a bug); the piece must keep running,
                    # so log it, count it and try again after the back-off like any other failure.
                    self._set_connected(False)
                    self._count("errors")
                    self._problem("exception", logging.ERROR, "error reading %s: %s: %s", described,
                                  type(error).__name__, str(error).strip()[:300], exc_info=True)
                    self._release_controls(run)
                finally:
                    if capture is not None:
                        try:
                            capture.release()
                        except Exception as error:  # Releasing a broken device must not end the thread.
                            logger.debug("webcam: release failed: %s", error)
                if run.stop.wait(backoff):
                    break
                backoff = min(backoff * 2.0, config.reconnect_max)
        finally:
            # A thread that outlived stop() (blocked in a read) must not disturb its successor.
            if self._run is run or self._run is None:
                self._set_connected(False)
                self._release_controls(run, stopping=True)
            logger.debug("webcam thread stopped")

    def _read_frames(self, run: _Run, capture: Any, is_file: bool) -> tuple[str, int]:
        """Read until the source fails or stop is asked; returns (outcome, frames read)."""
        config = self.config
        analysis_interval = 1.0 / config.fps
        frame_interval = 0.0
        if is_file:
            # Files are read at their own frame rate so that a demo plays in real time and motion
            # between analysed frames means the same as with a live camera.
            file_fps = capture.get(cv2.CAP_PROP_FPS)
            file_fps = file_fps if math.isfinite(file_fps) and 1.0 <= file_fps <= 240.0 else config.fps
            frame_interval = 1.0 / file_fps
        run.analyzer.reset()
        frames_read = 0
        now = self._clock()
        next_read = next_analysis = now
        while not run.stop.is_set():
            if frame_interval:
                delay = next_read - self._clock()
                if delay > 0 and run.stop.wait(delay):
                    return _STOPPED, frames_read
                # Never try to catch up more than one frame after a stall.
                next_read = max(next_read + frame_interval, self._clock() - frame_interval)
            if not capture.grab():
                return _ENDED, frames_read
            frames_read += 1
            self._count("frames")
            now = self._clock()
            # A little tolerance so that a 30 fps camera analysed at 15 fps does not skip on jitter.
            if now < next_analysis - 0.2 * analysis_interval:
                continue
            next_analysis = max(next_analysis + analysis_interval, now - analysis_interval)
            ok, frame = capture.retrieve()
            if not ok or frame is None:
                return _ENDED, frames_read
            self._process(run, frame, now)
        return _STOPPED, frames_read

    def _process(self, run: _Run, frame: np.ndarray, now: float) -> None:
        analyzer = run.analyzer
        signals = analyzer.analyse(frame, now)
        preview = analyzer.preview(frame) if self.config.preview else None
        if run.stop.is_set():
            return
        with self._lock:
            self._signals = signals
            if preview is not None:
                self._preview = preview
            self._counts["analysed"] += 1
            if signals.new_visitor:
                self._counts["visitors"] += 1
        if self.controls is not None:
            self._publish(apply_mapping(signals, self.config.mapping), now)

    def _publish(self, mapped: Mapped, now: float) -> None:
        """Write values that moved meaningfully (keeps the state's version counter calm) and fire triggers."""
        controls = self.controls
        for name, value in mapped.values.items():
            if now < self._refused_until.get(name, -math.inf):
                continue
            current = controls.get(name)
            if value == current:
                continue
            at_end = value in self._ends[name]  # Settle exactly on a range end instead of just short of it.
            if abs(value - current) < self.config.write_threshold * self._spans[name] and not at_end:
                continue
            applied, _ = controls.set(name, value, SOURCE)
            if applied is None:
                # Keyboard or OSC holds this parameter; retry now and then so the webcam takes over
                # again soon after the hold expires.
                self._refused_until[name] = now + _HELD_RETRY_SECONDS
                self._count("held")
            else:
                self._refused_until.pop(name, None)
                self._count("writes")
        for name in mapped.triggers:
            controls.trigger(name, SOURCE)
            self._count("triggers")

    def _release_controls(self, run: _Run, stopping: bool = False) -> None:
        """Hand the webcam's parameters back to their defaults when the source is lost or the thread stops,
        so that a camera unplugged mid-gesture does not leave the piece racing; drop the stale preview."""
        if not stopping and run.stop.is_set():
            return
        with self._lock:
            self._preview = None
        if self.controls is None:
            return
        for name in self.config.mapping.targets:
            record = self.controls.record(name)
            default = self.controls.parameter(name).default
            if record.source == SOURCE and record.value != default:
                self.controls.set(name, default, SOURCE)
        self._refused_until.clear()


# ---------------------------------------------------------------------------------------------
# Preview drawing


def draw_preview(surface: Any, preview_rgb: np.ndarray | None, corner: str = "bottom-right",
                 size: int | tuple[int, int] | None = None, margin: int = 16) -> Any:
    """Blit a preview frame into a corner of a pygame surface; returns the pygame.Rect drawn, or None.

    size: the width (height follows the aspect ratio), a (width, height) pair, or None for the
    preview's own size.
    """
    if preview_rgb is None:
        return None
    if corner not in CORNERS:
        raise ValueError(f"preview corner must be one of {', '.join(CORNERS)}, got {corner!r}")
    import pygame  # Lazily: the webcam thread and the tests of the signals do not need pygame.

    preview = np.ascontiguousarray(preview_rgb, dtype=np.uint8)
    if preview.ndim != 3 or preview.shape[2] != 3:
        raise ValueError(f"preview must be an RGB image of shape (height, width, 3), got {preview.shape}")
    height, width = preview.shape[:2]
    image = pygame.image.frombytes(preview.tobytes(), (width, height), "RGB")
    if isinstance(size, int):
        size = (size, max(1, round(height * size / width)))
    if size is not None and tuple(size) != (width, height):
        image = pygame.transform.smoothscale(image, (int(size[0]), int(size[1])))
    rect = image.get_rect()
    bounds = surface.get_rect()
    horizontal, vertical = corner.split("-")[1], corner.split("-")[0]
    rect.left = bounds.left + margin if horizontal == "left" else bounds.right - margin - rect.width
    rect.top = bounds.top + margin if vertical == "top" else bounds.bottom - margin - rect.height
    surface.blit(image, rect)
    return rect

