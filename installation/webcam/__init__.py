"""Webcam input: one daemon thread turns camera frames into motion, brightness and presence signals.

`Webcam` opens a camera (device index), a video file or a stream URL with `cv2.VideoCapture`, reads
frames, analyses a small grayscale copy at a fixed rate and writes the mapped values into the
`ControlState` as source "webcam" (the lowest precedence: keyboard and OSC writes hold a parameter
for a while and the webcam's writes to it are ignored meanwhile).

Modules, in the order data flows through them:
    signals    pure maths on frames (motion_energy, brightness, smooth, track_visitor)
    mapping    pure rules from signals to parameters (Rule, Mapping, apply_mapping)
    config     WebcamConfig and the source setting's parser
    source     what a source is, how to log it, open_capture
    detectors  face counting (Haar cascade or YuNet)
    analyser   Analyzer: one frame into Signals
    capture    Webcam: the thread that reads, analyses, writes controls and reconnects
    preview    draw_preview / draw_webcam_preview onto a pygame surface

Frames are analysed in memory and dropped; nothing is stored or sent anywhere (see docs/webcam.md).
"""

from installation.webcam.analyser import Analyzer
from installation.webcam.capture import AUTO, SOURCE, Webcam, WebcamStats
from installation.webcam.config import CORNERS, WebcamConfig, parse_source
from installation.webcam.detectors import (
    HAAR_FRONTAL_FACE,
    FaceDetector,
    HaarFaceDetector,
    YuNetFaceDetector,
    find_haar_cascade,
    load_face_detector,
)
from installation.webcam.mapping import (
    CURVES,
    DEFAULT_MAPPING,
    Mapped,
    Mapping,
    Rule,
    apply_mapping,
    map_value,
    shape_curve,
)
from installation.webcam.preview import draw_preview, draw_webcam_preview
from installation.webcam.signals import (
    EVENT_SIGNALS,
    SIGNAL_NAMES,
    VALUE_SIGNALS,
    Signals,
    VisitorState,
    brightness,
    motion_energy,
    resize_to_width,
    smooth,
    to_gray,
    track_visitor,
)
from installation.webcam.source import describe_source, open_capture, source_kind

__all__ = [
    "AUTO",
    "CORNERS",
    "CURVES",
    "DEFAULT_MAPPING",
    "EVENT_SIGNALS",
    "HAAR_FRONTAL_FACE",
    "SIGNAL_NAMES",
    "SOURCE",
    "VALUE_SIGNALS",
    "Analyzer",
    "FaceDetector",
    "HaarFaceDetector",
    "Mapped",
    "Mapping",
    "Rule",
    "Signals",
    "VisitorState",
    "Webcam",
    "WebcamConfig",
    "WebcamStats",
    "YuNetFaceDetector",
    "apply_mapping",
    "brightness",
    "describe_source",
    "draw_preview",
    "draw_webcam_preview",
    "find_haar_cascade",
    "load_face_detector",
    "map_value",
    "motion_energy",
    "open_capture",
    "parse_source",
    "resize_to_width",
    "shape_curve",
    "smooth",
    "source_kind",
    "to_gray",
    "track_visitor",
]
