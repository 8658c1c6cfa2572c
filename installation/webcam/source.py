"""Where frames come from: what kind of source a setting names, how to log it, and opening it with OpenCV."""

from __future__ import annotations

import re
from typing import Any

import cv2

from installation.webcam.config import WebcamConfig

_STREAM_TIMEOUT_MS = 5000  # Bounds how long opening or reading a network stream may block the thread.


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
