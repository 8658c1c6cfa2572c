"""Geometry of the designs: splines, ellipses, strokes and mirrors in normalized 0..1 image coordinates.

Pure numpy; nothing here knows about pixels, so a design is the same at every output size.
"""

from __future__ import annotations

import math

import numpy as np

# Shapes are ("poly", pts), ("line", pts, width, closed) or ("circle", center, radius), all normalized.
Shape = tuple


def catmull_rom_closed(points: np.ndarray, samples: int = 8) -> np.ndarray:
    """Samples a closed uniform Catmull-Rom spline through `points` (N x 2)."""
    p1 = points
    p0 = np.roll(points, 1, axis=0)
    p2 = np.roll(points, -1, axis=0)
    p3 = np.roll(points, -2, axis=0)
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[None, :, None]
    t2, t3 = t * t, t * t * t
    a, b, c, d = (x[:, None, :] for x in (p0, p1, p2, p3))
    out = 0.5 * (2 * b + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t2 + (-a + 3 * b - 3 * c + d) * t3)
    return out.reshape(-1, 2)


def bezier(p0, p1, p2, n: int = 16) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def ellipse(cx: float, cy: float, ax: float, ay: float, angle: float = 0.0, n: int = 32) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    x, y = ax * np.cos(t), ay * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def almond(cx: float, cy: float, w: float, h_top: float, h_bottom: float, angle: float) -> np.ndarray:
    """A lens with pointed corners: the parabola y = h (1 - (2x/w)^2) above and below."""
    t = np.linspace(0.0, 2 * math.pi, 28, endpoint=False)
    x = 0.5 * w * np.cos(t)
    s = np.sin(t)
    y = np.where(s < 0, h_top, h_bottom) * s * np.abs(s)
    c, sn = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - sn * y, cy + sn * x + c * y], axis=1)


def band(pts, width: float) -> np.ndarray | None:
    """An open polyline of constant `width` as a polygon, when one direction is monotonic; else None.

    Filled polygons have exact anti-aliased widths at every resolution, unlike cv2's thick lines.
    """
    p = np.asarray(pts, dtype=np.float64)
    axis = next((a for a in (0, 1) if np.all(np.diff(p[:, a]) > 0) or np.all(np.diff(p[:, a]) < 0)), None)
    if axis is None:
        return None
    d = np.diff(p, axis=0)
    seg_cos = np.abs(d[:, axis]) / (np.linalg.norm(d, axis=1) + 1e-12)
    vertex_cos = np.concatenate([seg_cos[:1], (seg_cos[:-1] + seg_cos[1:]) / 2, seg_cos[-1:]])
    offset = np.zeros_like(p)
    offset[:, 1 - axis] = 0.5 * width / np.maximum(vertex_cos, 0.3)
    return np.concatenate([p - offset, (p + offset)[::-1]], axis=0)


def mirror(pts: np.ndarray, cx: float) -> np.ndarray:
    out = np.array(pts, dtype=np.float64, copy=True)
    out[..., 0] = 2 * cx - out[..., 0]
    return out


def tapered_stroke(center: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """Polygon around a centerline whose width goes linearly from w0 to w1."""
    d = np.gradient(center, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    w = np.linspace(w0, w1, len(center))[:, None] * 0.5
    return np.concatenate([center + normal * w, (center - normal * w)[::-1]], axis=0)
