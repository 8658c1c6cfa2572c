"""The corner preview: a small camera frame drawn onto a pygame surface, at the corner the settings name."""

from __future__ import annotations

from typing import Any

import numpy as np

from installation.webcam.config import CORNERS

# On a 1080-line screen the preview is 320 px wide with an 18 px margin; other screens scale with their height.
_WIDTH_PER_LINE = 320 / 1080
_MIN_WIDTH, _MIN_MARGIN = 64, 8


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


def draw_webcam_preview(surface: Any, preview_rgb: np.ndarray | None, corner: str) -> Any:
    """Draw a webcam preview frame in `corner` (the `preview_corner` setting), sized for the surface.

    The call a display-side compositor makes each frame with `webcam.preview()` and
    `webcam.config.preview_corner`; returns the pygame.Rect drawn, or None when there is no frame
    (preview off, no frame yet, or the source was lost).
    """
    height = surface.get_height()
    width = max(_MIN_WIDTH, int(height * _WIDTH_PER_LINE))
    margin = max(_MIN_MARGIN, height // 60)
    return draw_preview(surface, preview_rgb, corner, size=width, margin=margin)
