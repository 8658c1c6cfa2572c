"""Interpolation between latents and the easing curves that pace it: pure numpy, no state, no seeds.

`slerp` and `ease` shape every step of the walk; `truncate` is the "truncation trick" applied to what it shows.
"""

from __future__ import annotations

import math

import numpy as np

EASINGS = ("linear", "smoothstep", "smootherstep", "cosine", "cubic")

# Below this sine of the angle between two directions the great circle is ill-defined (parallel or
# antiparallel); slerp then rotates through a fixed perpendicular instead.
_DEGENERATE_SIN = 1e-12
# Norms below this count as zero: such a vector has no direction to rotate (slerp, offsets).
TINY_NORM = 1e-30


def _output_dtype(*arrays: np.ndarray) -> np.dtype:
    dtype = np.result_type(*arrays)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def lerp(a, b, t) -> np.ndarray:
    """Linear interpolation ``(1 - t) * a + t * b``, exact at t = 0 and t = 1.

    ``a`` and ``b`` are latents of shape ``(..., D)``; ``t`` is a scalar or an array that broadcasts against
    their batch dimensions (a trailing axis is added to it): ``(D,)`` with ``t`` of shape ``(N,)`` gives
    ``(N, D)``, ``(B, D)`` with ``t`` of shape ``(B,)`` gives ``(B, D)``. ``t`` outside [0, 1] extrapolates.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    dtype = _output_dtype(a, b)
    t64 = np.asarray(t, dtype=np.float64)[..., None]
    out = (1.0 - t64) * a.astype(np.float64) + t64 * b.astype(np.float64)
    return out.astype(dtype, copy=False)


def slerp(a, b, t) -> np.ndarray:
    """Spherical interpolation of direction, linear interpolation of norm.

    The direction rotates along the great circle from ``a`` to ``b`` at constant angular speed; the norm
    goes linearly from ``|a|`` to ``|b|`` (so vectors of equal norm keep that norm, and keyframes of
    different norms blend without a dip toward the origin, which a GAN renders as a grey, washed-out
    image). Shapes and broadcasting as in `lerp`; the result has the floating dtype of the inputs.

    Edge cases: ``t`` outside [0, 1] keeps rotating along the same circle and extrapolates the norm linearly,
    clipped at zero. Parallel vectors reduce to `lerp`. Antiparallel vectors (no unique great circle) rotate
    through a fixed, deterministic perpendicular. When either vector is zero, or D == 1, the result is `lerp`.
    t == 0 and t == 1 return ``a`` and ``b`` exactly.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"slerp needs vectors of shape (..., D), got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"slerp needs vectors of the same length, got {a.shape[-1]} and {b.shape[-1]}")
    dtype = _output_dtype(a, b)
    dim = a.shape[-1]
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    t64 = np.asarray(t, dtype=np.float64)[..., None]
    linear = (1.0 - t64) * a64 + t64 * b64
    if dim == 1:
        return linear.astype(dtype, copy=False)

    norm_a = np.linalg.norm(a64, axis=-1, keepdims=True)
    norm_b = np.linalg.norm(b64, axis=-1, keepdims=True)
    degenerate_norm = (norm_a < TINY_NORM) | (norm_b < TINY_NORM)
    unit_a = a64 / np.where(degenerate_norm, 1.0, norm_a)
    unit_b = b64 / np.where(degenerate_norm, 1.0, norm_b)
    cos_omega = np.sum(unit_a * unit_b, axis=-1, keepdims=True)
    perp = unit_b - cos_omega * unit_a
    sin_omega = np.linalg.norm(perp, axis=-1, keepdims=True)
    omega = np.arctan2(sin_omega, cos_omega)

    degenerate_angle = sin_omega < _DEGENERATE_SIN
    if np.any(degenerate_angle):
        # The basis vector least aligned with a, made orthogonal to it: deterministic and well conditioned.
        basis = np.argmin(np.abs(unit_a), axis=-1)
        fallback = -np.take_along_axis(unit_a, basis[..., None], axis=-1) * unit_a
        np.put_along_axis(
            fallback, basis[..., None], np.take_along_axis(fallback, basis[..., None], axis=-1) + 1.0, axis=-1
        )
        fallback /= np.linalg.norm(fallback, axis=-1, keepdims=True)
        perp = np.where(degenerate_angle, fallback, perp / np.where(degenerate_angle, 1.0, sin_omega))
    else:
        perp = perp / sin_omega

    direction = np.cos(t64 * omega) * unit_a + np.sin(t64 * omega) * perp
    norm = np.maximum((1.0 - t64) * norm_a + t64 * norm_b, 0.0)
    out = np.where(degenerate_norm, linear, direction * norm)
    out = np.where(t64 == 0.0, a64, out)
    out = np.where(t64 == 1.0, b64, out)
    return out.astype(dtype, copy=False)


def _ease_linear(t):
    return t


def _ease_smoothstep(t):
    return t * t * (3.0 - 2.0 * t)


def _ease_smootherstep(t):
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


def _ease_cosine(t):
    return 0.5 - 0.5 * np.cos(np.pi * t)


def _ease_cubic(t):
    return np.where(t < 0.5, 4.0 * t**3, 1.0 - 0.5 * (2.0 - 2.0 * t) ** 3)


_EASE_FUNCTIONS = {
    "linear": _ease_linear,
    "smoothstep": _ease_smoothstep,
    "smootherstep": _ease_smootherstep,
    "cosine": _ease_cosine,
    "cubic": _ease_cubic,
}


def ease(name: str, t):
    """Easing curve ``name`` (one of `EASINGS`) at ``t``; maps 0 -> 0 and 1 -> 1, non-decreasing.

    ``t`` is clipped to [0, 1] first. Returns a float for scalar ``t``, else a float64 array of its shape.
    All curves except "linear" have zero slope at both ends; "cubic" is the in-out cubic.
    """
    function = _EASE_FUNCTIONS.get(name)
    if function is None:
        raise ValueError(f"unknown easing {name!r}; choose one of {', '.join(EASINGS)}")
    t64 = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    out = np.asarray(function(t64), dtype=np.float64)
    return float(out) if out.ndim == 0 else out


def truncate(z, truncation: float, mean=None) -> np.ndarray:
    """Scale ``z`` toward ``mean`` (0 by default): truncation 1 leaves it unchanged, 0 gives the mean.

    The "truncation trick": values below 1 trade variety for typical, cleaner images.
    """
    truncation = float(truncation)
    if not math.isfinite(truncation) or truncation < 0.0:
        raise ValueError(f"truncation must be a finite number >= 0, got {truncation!r}")
    z = np.asarray(z)
    dtype = _output_dtype(z)
    if mean is None:
        return (z.astype(np.float64) * truncation).astype(dtype, copy=False)
    mean = np.asarray(mean, dtype=np.float64)
    return (mean + truncation * (z.astype(np.float64) - mean)).astype(dtype, copy=False)
