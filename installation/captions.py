"""Provenance captions in the live loop: look-ups off the display thread, the overlay the compositor draws."""

from __future__ import annotations

import logging
import math

import numpy as np

from installation.config import RuntimeConfig
from installation.provenance import CaptionOverlay, CaptionStyle, ProvenanceWorker, open_captioner

log = logging.getLogger(__name__)


class Captions:
    """Feeds the newest frame to the provenance worker and keeps the caption overlay; inert without an index."""

    def __init__(self, captioner=None, style=None, rate_hz: float = 2.0, clock=None):
        self.captioner, self.style, self.rate_hz, self.clock = captioner, style, rate_hz, clock
        self.worker: ProvenanceWorker | None = None
        self.overlay: CaptionOverlay | None = None  # which caption is on screen; installation/compositor.py draws it
        self.submitted: np.ndarray | None = None

    @classmethod
    def open(cls, config: RuntimeConfig, bundle, clock) -> Captions:
        """Captions for a bundle: none (one warning) without an index; a mismatched index raises ValueError."""
        style = CaptionStyle(placement=config.caption_placement, font_path=config.caption_font or None,
                             size=config.caption_size, body_size=config.caption_body_size,
                             thumbnail_size=config.caption_thumbnail_size, duration=config.caption_duration,
                             fade=min(config.caption_fade, config.caption_duration / 2),
                             show_thumbnails=config.caption_thumbnails, k=config.caption_k,
                             language=config.caption_language)
        captioner = open_captioner(bundle.path, bundle.manifest, k=config.caption_k, backend=config.backend,
                                   threads=config.threads)
        return cls(captioner, style, config.caption_rate, clock)

    @property
    def enabled(self) -> bool:
        return self.captioner is not None

    def start(self) -> None:
        if not self.enabled:
            return
        self.worker = ProvenanceWorker(self.captioner.caption_for, rate_hz=self.rate_hz, clock=self.clock).start()
        self.overlay = CaptionOverlay(self.style, self.captioner.index)

    def after_frame(self, frame: np.ndarray | None, controls, now: float) -> str:
        """Offer the newest frame for a look-up (never waits) and return the caption text when it changes."""
        if self.worker is None or frame is None or not controls["captions"]:
            return ""
        if frame is not self.submitted:
            self.worker.submit(frame, controls["caption_layer"])
            self.submitted = frame
        if self.overlay.update(self.worker.latest(), now):
            return self.overlay.caption.text(self.style.labels)
        return ""

    @property
    def novelty(self) -> float:
        caption = self.overlay.caption if self.overlay is not None else None
        return caption.novelty if caption is not None else math.nan

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
