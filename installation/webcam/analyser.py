"""One frame at a time into Signals: the pure signal functions strung together with the face detector."""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from installation.ratelimit import RateLimitedLog
from installation.webcam.config import WebcamConfig
from installation.webcam.detectors import FaceDetector
from installation.webcam.signals import (
    Signals,
    VisitorState,
    brightness,
    motion_energy,
    resize_to_width,
    smooth,
    to_gray,
    track_visitor,
)

logger = logging.getLogger(__name__)


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
