"""One picture from many: the grid behind training sample grids, the synthetic collection's contact sheet and the
video export's keyframe sheet."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

LABEL_ORIGIN = (4, 14)  # baseline of a label's first letter, in pixels from the tile's top-left corner
LABEL_SCALE = 0.4


def image_grid(images: Sequence[np.ndarray] | np.ndarray, columns: int, *, gap: int = 2, margin: int = 0,
               background: int = 16, labels: Sequence[str] | None = None) -> np.ndarray:
    """Tile same-sized uint8 images (H x W or H x W x C) row by row, `gap` pixels apart, `margin` pixels of
    `background` around the whole; `labels` (one per image) are written in each tile's top-left corner.

    More columns than images shrink to the image count, so a short batch makes no empty column.
    Returns H x W images as one H x W grid, H x W x C images as one H x W x C grid.
    """
    if len(images) == 0:
        raise ValueError("image_grid needs at least one image")
    if int(columns) < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    if gap < 0 or margin < 0:
        raise ValueError(f"gap = {gap} and margin = {margin} must be at least 0")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"image_grid got {len(labels)} labels for {len(images)} images")
    height, width = images[0].shape[:2]
    channels = images[0].shape[2] if images[0].ndim == 3 else 1
    columns = min(int(columns), len(images))
    rows = -(-len(images) // columns)
    grid = np.full((rows * (height + gap) - gap + 2 * margin, columns * (width + gap) - gap + 2 * margin, channels),
                   background, np.uint8)
    for index, image in enumerate(images):
        if image.shape[:2] != (height, width):
            raise ValueError(f"image_grid images must share one size: {image.shape[:2]} vs {(height, width)}")
        tile = image.reshape(height, width, channels)
        if labels is not None:
            tile = labelled(tile, labels[index])
        row, column = divmod(index, columns)
        top, left = margin + row * (height + gap), margin + column * (width + gap)
        grid[top:top + height, left:left + width] = tile
    return grid if channels != 1 else grid[..., 0]


def labelled(tile: np.ndarray, label: str) -> np.ndarray:
    """A copy of `tile` with `label` in white on a dark outline, readable on light and dark pictures alike."""
    tile = np.ascontiguousarray(tile).copy()
    white = (255,) * tile.shape[2]
    for colour, thickness in (((0,) * tile.shape[2], 3), (white, 1)):
        cv2.putText(tile, label, LABEL_ORIGIN, cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE, colour, thickness, cv2.LINE_AA)
    return tile
