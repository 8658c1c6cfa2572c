"""What the screen shows, composed in one place: the picture, then every overlay over it in a fixed order.

The render worker hands over batches of frames; the compositor picks the one due now (`pick_frame`), mixes it
with what is on screen (the cross-fade when renders come slower than the display, the `trail` control),
and draws the overlays over it, always in this order: the provenance caption panel, the webcam preview, the
frame-rate text. The display (installation/display.py) only scales a frame onto the screen and flips it.

pygame is imported where it draws (`draw_overlays`), so that a piece without a screen and the light commands
(`--print-config`, export) do not load it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from installation.provenance import CaptionOverlay
from installation.webcam import draw_webcam_preview
from installation.worker import FrameResult

# The `trail` control's top: each frame keeps at most this much of the last one. At 1.0 the picture would
# never change again; 0.95 is a trail of about 20 frames that still reaches every new picture.
MAX_SMEAR = 0.95
TEXT_COLOR = (255, 255, 255)
TEXT_BACKDROP = (0, 0, 0, 150)


def pick_frame(result: FrameResult, display_time: float) -> int:
    """Index of the frame in a result whose intended time is nearest to now, never one from the future
    unless it is the first (a render-ahead batch is shown frame by frame as its times arrive)."""
    due = np.flatnonzero(result.times <= display_time)
    return int(due[-1]) if len(due) else 0


def cross_fade(previous: np.ndarray, current: np.ndarray, alpha: float) -> np.ndarray:
    """Cross-fade two uint8 frames; alpha 1 shows `current` alone."""
    if previous is None or previous.shape != current.shape or alpha >= 1.0:
        return current
    return cv2.addWeighted(current, float(alpha), previous, 1.0 - float(alpha), 0.0)


@dataclass(frozen=True)
class Overlays:
    """What is drawn over one picture; each part is left out when it is None or empty."""

    caption: CaptionOverlay | None = None  # the provenance caption (it knows its own fade)
    preview: np.ndarray | None = None  # the webcam's small RGB preview frame
    preview_corner: str = "bottom-right"
    text: Sequence[str] = ()  # the frame-rate lines, top left


def placeholder(size: int) -> np.ndarray:
    """What a piece that has never rendered shows while it retries: a dark frame, not a crash."""
    return np.full((size, size, 3), 12, np.uint8)


class Compositor:
    """The picture for the screen: the newest render, cross-faded in when renders come slower than display
    (the `fade_between_renders` setting), trailed by the `trail` control."""

    def __init__(self, fade_between_renders: bool):
        self.fade_between_renders = fade_between_renders
        self.trail: np.ndarray | None = None  # float accumulator of the `trail` control

    def reset_trail(self) -> None:
        """Forget the trail: the next picture is shown as rendered (after closing, after a stall)."""
        self.trail = None

    def mix(self, target: np.ndarray, shown: np.ndarray | None, smear: float, since_arrival: float,
            frame_gap: float, interval: float) -> np.ndarray:
        """The frame to put on screen given the newest render `target` and the picture `shown` now. The trail is
        kept in floating point, so it reaches a still picture exactly instead of stopping a few levels short of
        it, and never keeps more than MAX_SMEAR."""
        smear = min(float(smear), MAX_SMEAR)
        if smear > 0:
            if self.trail is None or self.trail.shape != target.shape:
                self.trail = target.astype(np.float32)
            else:
                cv2.addWeighted(self.trail, smear, target.astype(np.float32), 1.0 - smear, 0.0, dst=self.trail)
            return np.rint(self.trail).astype(np.uint8)
        self.trail = None
        if self.fade_between_renders and frame_gap > 1.5 * interval and since_arrival < frame_gap:
            return cross_fade(shown, target, min(1.0, (since_arrival + interval) / frame_gap))
        return target

    def show(self, display, picture: np.ndarray, overlays: Overlays, now: float) -> None:
        """Put `picture` on the display with its overlays, then flip."""
        display.present(picture)
        draw_overlays(display.screen, overlays, now)
        display.flip()


def draw_overlays(screen, overlays: Overlays, now: float) -> None:
    """Every overlay, in the one order: caption panel, webcam preview, frame-rate text (on top of the rest)."""
    if overlays.caption is not None:
        overlays.caption.draw(screen, now)
    if overlays.preview is not None:
        draw_webcam_preview(screen, overlays.preview, overlays.preview_corner)
    if overlays.text:
        draw_text(screen, overlays.text)


@functools.lru_cache(maxsize=4)
def text_font(screen_height: int):
    """The frame-rate overlay's font: pygame's default font at this nominal size draws lines of about 24 px at
    1080 lines."""
    import pygame  # here: see the module's docstring

    if not pygame.font.get_init():
        pygame.font.init()
    return pygame.font.Font(None, max(16, round(screen_height * 34 / 1080)))


def draw_text(screen, lines: Sequence[str]) -> None:
    """White lines on translucent black, top left."""
    import pygame  # here: see the module's docstring

    font = text_font(screen.get_height())
    margin = 8
    y = margin
    for line in lines:
        text = font.render(line, True, TEXT_COLOR)
        backdrop = pygame.Surface((text.get_width() + 8, text.get_height() + 4), pygame.SRCALPHA)
        backdrop.fill(TEXT_BACKDROP)
        screen.blit(backdrop, (margin - 4, y - 2))
        screen.blit(text, (margin, y))
        y += text.get_height() + 4
