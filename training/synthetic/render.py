"""Rasterizing a Design: shapes to anti-aliased masks, a carved height field, its material, light and backdrop.

Rendering draws no random numbers. It works at twice the requested size and area-downsamples (render_mask),
with cv2's sub-pixel fixed point, so small renders stay faithful to large ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from training.synthetic.design import Design
from training.synthetic.geometry import Shape, band
from training.synthetic.mask import design_mask

MIN_SIZE = 16
MAX_SIZE = 1024
SOURCE = "Masquerade procedural collection"
LICENSE = "CC0-1.0"

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel precision keeps small renders faithful to large ones.
_ONE = 1 << _SHIFT


class Canvas:
    """Maps normalized coordinates (rotated about the image center) to fixed-point pixels of a window.

    The window (`origin`, `shape`) lets the object be rendered in its bounding box only.
    """

    def __init__(self, size: int, angle: float, origin: tuple[int, int] = (0, 0),
                 shape: tuple[int, int] | None = None):
        self.size = size
        self.origin = origin
        self.shape = shape or (size, size)
        self._c, self._s = math.cos(angle), math.sin(angle)

    def window(self, x0: int, y0: int, x1: int, y1: int) -> Canvas:
        angle = math.atan2(self._s, self._c)
        return Canvas(self.size, angle, (x0, y0), (y1 - y0, x1 - x0))

    def px(self, pts) -> np.ndarray:
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2) - 0.5
        x = (self._c * p[:, 0] - self._s * p[:, 1] + 0.5) * self.size - self.origin[0]
        y = (self._s * p[:, 0] + self._c * p[:, 1] + 0.5) * self.size - self.origin[1]
        return np.round(np.stack([x, y], axis=1) * _ONE).astype(np.int32)

    def width(self, w: float) -> tuple[int, float]:
        """cv2 thickness and opacity that together cover exactly `w` (normalized) across the line.

        Anti-aliased cv2 lines only come in widths of about 1.3, 3.35, 5.4, 7.5, ... pixels (thickness 1, 2,
        3, 5, 7, ...), so the next wider one is drawn with its opacity lowered to keep the painted weight, and
        thin strands keep the same presence at every resolution.
        """
        px = w * self.size
        k = max(0, math.ceil((px - 1.31) / 2.04))
        thickness = (1, 2)[k] if k < 2 else 2 * k - 1
        return thickness, min(1.0, px / (1.31 + 2.04 * k))

    def draw(self, layer: np.ndarray, shapes: Sequence[Shape], value=255) -> np.ndarray:
        for s in shapes:
            if s[0] == "poly":  # one call per polygon: a shared call would XOR the overlaps
                cv2.fillPoly(layer, [self.px(s[1])], value, cv2.LINE_AA, _SHIFT)
            elif s[0] == "line":
                outline = None if s[3] else band(s[1], s[2])
                if outline is not None:
                    cv2.fillPoly(layer, [self.px(outline)], value, cv2.LINE_AA, _SHIFT)
                else:
                    thickness, weight = self.width(s[2])
                    cv2.polylines(layer, [self.px(s[1])], bool(s[3]), value * weight, thickness, cv2.LINE_AA,
                                  _SHIFT)
            else:
                center = tuple(int(v) for v in self.px(s[1])[0])
                radius = max(1, int(round(s[2] * self.size * _ONE)))
                cv2.circle(layer, center, radius, value, -1, cv2.LINE_AA, _SHIFT)
        return layer

    def mask(self, shapes: Sequence[Shape]) -> np.ndarray:
        layer = np.zeros(self.shape, np.uint8)
        return self.draw(layer, shapes).astype(np.float32) * (1 / 255.0)


def _resize(field_: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if field_.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(field_, (size, size), interpolation=interp)


def _blur(img: np.ndarray, sigma_norm: float, size: int) -> np.ndarray:
    """Gaussian blur with a sigma relative to the image; zero outside, so windows match the full image."""
    sigma = sigma_norm * size
    if sigma < 0.3:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)


def _bevel(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Rounded edge profile: a quarter circle of `radius_px` rising from the part's outline."""
    inside = (mask > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    u = np.minimum(dist / max(radius_px, 1e-3), 1.0)
    return radius_px * np.sqrt(np.clip(1 - (1 - u) ** 2, 0, 1))


def _lerp_(dst: np.ndarray, color, t: np.ndarray) -> None:
    """In place: dst <- dst + (color - dst) * t, with t an H x W weight."""
    dst += (np.asarray(color, np.float32) - dst) * t[..., None]


def _object_window(canvas: Canvas, design: Design) -> tuple[int, int, int, int]:
    """Pixel bounding box (x0, y0, x1, y1) of every solid part, padded and clipped to the image."""
    pts = []
    for shapes, _, _ in design.parts:
        for shape in shapes:
            if shape[0] == "circle":
                (x, y), r = shape[1], shape[2]
                pts.append(canvas.px([[x - r, y - r], [x + r, y - r], [x - r, y + r], [x + r, y + r]]))
            else:
                pts.append(canvas.px(shape[1]))
    allpts = np.concatenate(pts) / _ONE
    x0, y0 = np.floor(allpts.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(allpts.max(axis=0)).astype(int) + 3
    s = canvas.size
    return max(0, int(x0)), max(0, int(y0)), min(s, int(x1)), min(s, int(y1))


def render_design(design: Design, size: int) -> np.ndarray:
    """The design as uint8 RGB, size x size: backdrop, then the object carved, coloured and lit in its window."""
    s = size
    canvas = Canvas(s, design.angle)
    coords = (np.arange(s, dtype=np.float32) + 0.5) / s
    xn, yn = coords[None, :], coords[:, None]
    spot_full = np.clip(1.15 - 1.2 * ((xn - design.spot[0]) ** 2 + (yn - design.spot[1]) ** 2), 0.5, 1.15)
    bg = _backdrop(design, s, xn, yn)

    # The carved object is computed inside its bounding box only.
    x0, y0, x1, y1 = _object_window(canvas, design)
    win = canvas.window(x0, y0, x1, y1)
    xw, yw = xn[:, x0:x1], yn[y0:y1, :]
    spot = spot_full[y0:y1, x0:x1]
    alpha, height, incised, holes = _carve(design, win, xw, yw, s)
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) / 8
    albedo = _albedo(design, win, (x0, y0, x1, y1), xw, height, gx, gy, incised, (alpha > 0.5).astype(np.float32), s)
    color = _shade(design, albedo, height, gx, gy, incised, spot, s)

    # openings: the backdrop seen through a dark carved tunnel
    color += (bg[y0:y1, x0:x1] * 0.3 + 0.01 - color) * holes[..., None]
    if design.teeth:
        ivory = np.array(design.albedo, np.float32) * 1.15 * (design.ambient + 0.5)
        _lerp_(color, ivory, win.mask(design.teeth) * holes)
    return _composite(design, canvas, bg, spot_full, (x0, y0, x1, y1), alpha, color)


def _backdrop(design: Design, s: int, xn: np.ndarray, yn: np.ndarray) -> np.ndarray:
    """Studio grey, gradient or cloth, with its folds or weave and a vignette around the spot light."""
    folds = _resize(design.bg_noise, s)
    if design.background == "dark cloth":
        shade = 0.75 + 0.5 * folds + 0.12 * (_resize(design.bg_weave, s) - 0.5)
    else:
        shade = 0.97 + 0.06 * folds
    r2 = (xn - design.spot[0]) ** 2 + (yn - design.spot[1] - 0.15) ** 2
    shade *= np.clip(1.0 - design.vignette * r2 * 2.2, 0.15, 1.1)
    if design.background == "gradient":
        top, bottom = (np.array(c, np.float32) for c in design.bg_colors)
        t = np.clip(yn * 1.1 - 0.05, 0, 1)[..., None]
        return (top * (1 - t) + bottom * t) * shade[..., None]
    return shade[..., None] * np.array(design.bg_colors[0], np.float32)


def _carve(design: Design, win: Canvas, xw: np.ndarray, yw: np.ndarray, s: int):
    """-> (coverage, height field in pixels, incision mask, hole mask) of the object's window."""
    shape = win.shape
    alpha = np.zeros(shape, np.float32)
    height = np.zeros(shape, np.float32)
    face = None
    for shapes, bevel, base in design.parts:
        m = win.mask(shapes)
        face = m if face is None else face
        h = _bevel(m, bevel * s) + base * s
        np.maximum(height, h * (m > 0.5), out=height)
        np.maximum(alpha, m, out=alpha)
    dcx, dcy, dax, day, dh = design.dome
    q = 1 - ((xw - dcx) / dax) ** 2 - ((yw - dcy) / day) ** 2
    height += face * (dh * s) * np.sqrt(np.clip(q, 0, 1))
    solid = (alpha > 0.5).astype(np.float32)
    # Blurring is linear, so reliefs sharing a blur radius are summed first and blurred once.
    by_blur: dict[float, np.ndarray] = {}
    for shapes, amount, blur in design.relief:
        acc = by_blur.setdefault(blur, np.zeros(shape, np.float32))
        acc += win.mask(shapes) * (amount * s)
    for blur, acc in by_blur.items():
        height += _blur(acc, blur, s) * solid
    incised = win.mask(design.incisions)
    holes = win.mask(design.holes)
    height -= _blur(incised, 0.002, s) * (0.006 * s) + _blur(holes, 0.008, s) * (0.03 * s)
    return alpha, height, incised, holes


def _albedo(design: Design, win: Canvas, window: tuple[int, int, int, int], xw: np.ndarray, height: np.ndarray,
            gx: np.ndarray, gy: np.ndarray, incised: np.ndarray, solid: np.ndarray, s: int) -> np.ndarray:
    """The material's colour: grain or mottle, worn kaolin, paint, specks, patina or rust."""
    x0, y0, x1, y1 = window
    surface = _resize(design.surface_noise, s)[y0:y1, x0:x1]
    specks = _resize(design.speck_noise, s)[y0:y1, x0:x1]
    if design.grain > 0:
        warp = _resize(design.grain_warp, s)[y0:y1, x0:x1]
        fine = _resize(design.grain_fine, s)[y0:y1, x0:x1]
        rings = np.sin(2 * math.pi * (design.grain_freq * (xw - 0.5) + 2.5 * warp))
        tone = 1 + design.grain * (0.5 * rings + 0.9 * (fine - 0.5))
    else:
        tone = 0.92 + 0.16 * surface
    albedo = tone[..., None] * np.array(design.albedo, np.float32)
    if design.material == "wood with white kaolin":
        # The pigment rubs off where hands and wear reach: edges, ridges and scattered flecks.
        slope = np.sqrt(gx * gx + gy * gy)
        wear = np.clip((0.6 * slope + 0.5 * specks + 0.3 * surface + 0.5 * incised - 1.1 + design.kaolin_wear)
                       * 5, 0, 1)
        _lerp_(albedo, design.wood_base, wear)
    for region, pattern, color, opacity in design.paint:
        paint = win.mask(pattern) * win.mask(region) * solid
        paint *= opacity * (0.85 + 0.15 * surface)
        _lerp_(albedo, color, paint)
    for shapes, color, opacity in design.specks:
        _lerp_(albedo, color, win.mask(shapes) * opacity)
    if design.material == "bronze":  # green patina collects in the recesses and in mottled patches
        recess = np.clip((_blur(height, 0.02, s) - height) / (0.01 * s), 0, 1)
        mottle = np.clip((surface + 0.4 * specks - 0.85) * 3, 0, 1)
        _lerp_(albedo, (0.25, 0.40, 0.33), np.clip(0.7 * recess + 0.6 * mottle, 0, 0.8))
    elif design.material == "iron":  # rust blooms
        _lerp_(albedo, (0.36, 0.19, 0.10), np.clip((specks + 0.5 * surface - 0.9) * 3, 0, 0.7))
    return albedo


def _shade(design: Design, albedo: np.ndarray, height: np.ndarray, gx: np.ndarray, gy: np.ndarray,
           incised: np.ndarray, spot: np.ndarray, s: int) -> np.ndarray:
    """Lambert plus a Blinn highlight on the height field's normals, with ambient occlusion in the recesses."""
    inv = 1.0 / np.sqrt(gx * gx + gy * gy + 1)
    lx, ly, lz = design.light
    diffuse = np.clip((lz - gx * lx - gy * ly) * inv, 0, 1)
    hx, hy, hz = lx, ly, lz + 1
    hn = math.sqrt(hx * hx + hy * hy + hz * hz)
    spec = np.clip((hz - gx * hx - gy * hy) * (inv / hn), 0, 1) ** design.shininess * design.specular
    ao = 1 - np.clip((_blur(height, 0.03, s) - height) / (0.02 * s), 0, 0.55)
    light = (design.ambient + (1 - design.ambient) * 1.1 * diffuse) * ao * (1 - 0.55 * incised) * spot
    color = albedo * light[..., None]
    color += (spec * spot)[..., None] * np.array((1.0, 0.96, 0.9), np.float32)
    return color


def _composite(design: Design, canvas: Canvas, bg: np.ndarray, spot_full: np.ndarray,
               window: tuple[int, int, int, int], alpha: np.ndarray, color: np.ndarray) -> np.ndarray:
    """The cast shadow on the backdrop, the raffia behind the object, then the object itself."""
    s = canvas.size
    x0, y0, x1, y1 = window
    dx, dy, blur, strength = design.shadow
    silhouette = np.zeros((s, s), np.float32)
    silhouette[y0:y1, x0:x1] = alpha
    raffia_a = None
    if design.raffia:
        raffia_mask = np.zeros((s, s), np.uint8)
        raffia_rgb = np.zeros((s, s, 3), np.uint8)
        w, weight = canvas.width(design.raffia_width)
        for strands, rgb in design.raffia:
            polys = list(canvas.px(strands).reshape(len(strands), -1, 2))
            cv2.polylines(raffia_mask, polys, False, 255 * weight, w, cv2.LINE_AA, _SHIFT)
            cv2.polylines(raffia_rgb, polys, False, tuple(c * 255 * weight for c in rgb), w, cv2.LINE_AA, _SHIFT)
        raffia_a = raffia_mask.astype(np.float32) * (1 / 255.0)
        np.maximum(silhouette, raffia_a, out=silhouette)
    m = np.float32([[1, 0, dx * s], [0, 1, dy * s]])
    shadow = cv2.warpAffine(_blur(silhouette, blur, s), m, (s, s))
    out = bg * (1 - strength * shadow)[..., None]
    if raffia_a is not None:
        # The strands were drawn onto black, so their colour layer is already weighted by coverage.
        raffia_lit = raffia_rgb.astype(np.float32) * (1 / 255.0) * (0.7 + 0.4 * spot_full[..., None])
        out = out * (1 - raffia_a[..., None]) + raffia_lit
    view = out[y0:y1, x0:x1]
    view += (color - view) * alpha[..., None]
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def check_size(size: int) -> None:
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise ValueError(f"size must be in {MIN_SIZE}..{MAX_SIZE}, got {size}")


def check_seed(seed: int) -> None:
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")


def render_mask(seed: int, size: int = 128) -> tuple[np.ndarray, dict]:
    """Renders one mask as uint8 RGB (size x size x 3) with its catalogue metadata."""
    check_seed(seed)
    check_size(size)
    design = design_mask(int(seed))
    big = render_design(design, 2 * int(size))
    image = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    metadata = {
        "title": design.title,
        "culture": design.culture,
        "material": design.material,
        "source": SOURCE,
        "license": LICENSE,
        "silhouette": design.silhouette,
        "features": list(design.features),
        "pattern": design.pattern,
    }
    return image, metadata
