"""Finishing a rendered frame for the file: fitted to the output size the way the live display fits it,
a caption burnt in, and the keyframe contact sheet."""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.grid import image_grid

CONTACT_TILE_MAX = 256
CONTACT_SHEET_MAX = 4096
CONTACT_GAP = 4  # pixels between tiles and around the sheet
CONTACT_BACKGROUND = 24


def fit_frame(frame: np.ndarray, width: int, height: int, fit: str) -> np.ndarray:
    """Resize a frame to exactly width x height: letterbox (bars) or fill (crop), the live display's geometry.

    INTER_AREA when shrinking, INTER_CUBIC when enlarging.
    """
    # Imported here: installation.display starts pygame on import, and the export needs only its geometry.
    from installation.display import place

    frame_h, frame_w = frame.shape[:2]
    if (frame_w, frame_h) == (width, height):
        return frame
    placement = place((frame_w, frame_h), (width, height), fit)
    sx, sy, sw, sh = placement.source
    tx, ty, tw, th = placement.target
    source = frame[sy:sy + sh, sx:sx + sw]
    if (tw, th) != (sw, sh):
        interpolation = cv2.INTER_AREA if tw * th < sw * sh else cv2.INTER_CUBIC
        source = cv2.resize(source, (tw, th), interpolation=interpolation)
    if (tw, th) == (width, height):
        return np.ascontiguousarray(source)
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[ty:ty + th, tx:tx + tw] = source
    return canvas


def draw_caption(frame: np.ndarray, text: str) -> np.ndarray:
    """A one-line caption on a dark band at the bottom of the frame (Unicode, shrunk or shortened to fit)."""
    if not text:
        return frame
    height, width = frame.shape[:2]
    size = max(8, round(height / 28))
    font = ImageFont.load_default(size=size)
    margin = max(2, size // 2)
    while size > 8 and font.getlength(text) > width - 2 * margin:
        size -= 1
        font = ImageFont.load_default(size=size)
    while len(text) > 1 and font.getlength(text) > width - 2 * margin:
        text = text[:-2] + "\u2026"
    band = size + 2 * margin
    image = Image.fromarray(frame)
    image.paste(Image.fromarray((frame[height - band:] * 0.4).astype(np.uint8)), (0, height - band))
    ImageDraw.Draw(image).text((margin, height - band + margin), text, font=font, fill=(240, 236, 228))
    return np.asarray(image)


def contact_columns(count: int) -> int:
    """Columns of the near-square grid that holds `count` keyframes."""
    return math.ceil(math.sqrt(count))


def contact_tile_size(count: int, width: int, height: int) -> tuple[int, int]:
    """Tile size for `count` frames of width x height: at most 256 px wide, the sheet at most 4096 px wide."""
    tile_w = min(width, CONTACT_TILE_MAX, CONTACT_SHEET_MAX // contact_columns(count))
    return tile_w, max(1, round(height * tile_w / width))


def contact_sheet(tiles: np.ndarray, labels: list[str]) -> np.ndarray:
    """Same-sized keyframe tiles in a near-square grid, row by row, with a label in each tile's corner."""
    return image_grid(tiles, contact_columns(len(tiles)), gap=CONTACT_GAP, margin=CONTACT_GAP,
                      background=CONTACT_BACKGROUND, labels=labels)
