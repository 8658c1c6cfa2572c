"""Walks as pure functions of walk time: where the path is at time t, which keyframe, which phase of the loop.

Time is "walk time": seconds along the path at speed 1 (the `Walker` integrates it from the clock). Modes:
- ``endless``: keyframes ``i`` and ``i + 1`` of an unbounded seeded sequence, ``i = floor(t / spk)``.
- ``loop``: a closed cycle of ``K`` keyframes; the keyframe index is taken modulo ``K``, so
  ``z(t + K * spk) == z(t)`` (bit-exact at ``t = 0``, to rounding of ``t`` elsewhere).
- ``drift``: smooth noise, a few octaves of Catmull-Rom interpolated random latents (value noise),
  normalised so every coordinate stays standard normal; continuous with a continuous first derivative.
"""

from __future__ import annotations

import math

import numpy as np

from installation.latent.interpolation import ease, slerp, truncate
from installation.latent.keyframes import DRIFT_STREAM, KEYFRAME_STREAM, gather
from installation.latent.settings import WalkConfig

# Drift: octave k has knots every spk / 2**k walk-seconds, shifted by k * golden ratio knots so that the
# knots of different octaves never line up.
_DRIFT_OCTAVES = 3
_DRIFT_SHIFT = 0.6180339887498949


def check_times(times) -> np.ndarray:
    """``times`` as a 1-D float64 array of seconds; ValueError unless every one is finite."""
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1:
        raise ValueError(f"times must be a 1-D array of seconds, got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise ValueError("times must be finite seconds, got NaN or infinity")
    return times


def check_time(t_seconds) -> float:
    """One time in seconds as a float; ValueError unless it is finite."""
    t = float(t_seconds)
    if not math.isfinite(t):
        raise ValueError(f"walk time must be finite seconds, got {t_seconds!r}")
    return t


def loop_period(config: WalkConfig) -> float:
    """Walk-seconds in one loop: ``loop_keyframes * seconds_per_keyframe``."""
    return config.loop_keyframes * config.seconds_per_keyframe


def _keyframe_path(config: WalkConfig, times: np.ndarray) -> np.ndarray:
    if config.mode == "loop":
        # Reducing t modulo the period first makes z(0) and z(period) bit-identical.
        times = np.mod(times, loop_period(config))
    position = times / config.seconds_per_keyframe
    index = np.floor(position)
    fraction = np.clip(position - index, 0.0, 1.0)
    index = index.astype(np.int64)
    following = index + 1
    if config.mode == "loop":
        index = np.mod(index, config.loop_keyframes)
        following = np.mod(following, config.loop_keyframes)
    start = gather(config.seed, config.latent_dim, index, KEYFRAME_STREAM)
    end = gather(config.seed, config.latent_dim, following, KEYFRAME_STREAM)
    return slerp(start, end, ease(config.easing, fraction))


def _catmull_rom_weights(s: np.ndarray) -> np.ndarray:
    s2 = s * s
    s3 = s2 * s
    return 0.5 * np.stack(
        [-s + 2.0 * s2 - s3, 2.0 - 5.0 * s2 + 3.0 * s3, s + 4.0 * s2 - 3.0 * s3, -s2 + s3], axis=-1
    )


def _drift_path(config: WalkConfig, times: np.ndarray) -> np.ndarray:
    falloff = 1.0 - config.drift_smoothness
    amplitudes = [falloff**octave for octave in range(_DRIFT_OCTAVES)]
    total = np.zeros((times.shape[0], config.latent_dim))
    for octave, amplitude in enumerate(amplitudes):
        if amplitude == 0.0:
            continue
        position = times * (2.0**octave) / config.seconds_per_keyframe + octave * _DRIFT_SHIFT
        index = np.floor(position)
        weights = _catmull_rom_weights(position - index)  # (N, 4)
        knots = index.astype(np.int64)[:, None] + np.arange(-1, 3)  # (N, 4)
        # Zig-zag map to non-negative lattice ids, since SeedSequence entropy must be non-negative.
        lattice = np.where(knots >= 0, 2 * knots, -2 * knots - 1)
        values = gather(config.seed, config.latent_dim, lattice, DRIFT_STREAM + octave)  # (N, 4, D)
        # Dividing by the weights' root sum of squares keeps each coordinate standard normal between
        # knots (a plain weighted sum of independent normals would shrink toward 0 mid-way). Its slope
        # is 0 at the knots, so the path keeps Catmull-Rom's continuous first derivative.
        scale = np.sqrt(np.sum(weights * weights, axis=-1, keepdims=True))
        total += amplitude * np.einsum("nk,nkd->nd", weights / scale, values)
    return total / math.sqrt(sum(a * a for a in amplitudes))


def path_batch(config: WalkConfig, times: np.ndarray) -> np.ndarray:
    """Untruncated float64 latents ``(N, D)`` on the walk path at walk ``times``."""
    if config.mode == "drift":
        return _drift_path(config, times)
    return _keyframe_path(config, times)


def walk_batch(config: WalkConfig, times) -> np.ndarray:
    """Latents ``(N, latent_dim)`` float32 at walk ``times`` (1-D, seconds at speed 1), truncated."""
    times = check_times(times)
    return truncate(path_batch(config, times), config.truncation).astype(np.float32)


def walk_latent(config: WalkConfig, t_seconds: float) -> np.ndarray:
    """The latent ``(latent_dim,)`` float32 at walk time ``t_seconds``; a pure function of the time."""
    return walk_batch(config, [check_time(t_seconds)])[0]


def keyframe_index(config: WalkConfig, t):
    """Index of the keyframe the walk last passed at walk time ``t`` (modulo K in loop mode).

    In drift mode it counts the knots of the slowest octave. Int for scalar ``t``, int64 array otherwise.
    """
    t64 = np.asarray(t, dtype=np.float64)
    if config.mode == "loop":
        t64 = np.mod(t64, loop_period(config))
    index = np.floor(t64 / config.seconds_per_keyframe).astype(np.int64)
    if config.mode == "loop":
        index = np.mod(index, config.loop_keyframes)
    return int(index) if index.ndim == 0 else index


def _unit_fraction(x: np.ndarray) -> np.ndarray:
    fraction = np.mod(x, 1.0)
    # np.mod of a tiny negative number rounds to exactly 1.0; fold it back into [0, 1).
    return np.where(fraction >= 1.0, 0.0, fraction)


def loop_phase(config: WalkConfig, t):
    """Position in the loop cycle at walk time ``t``, in [0, 1) (period ``K * seconds_per_keyframe``).

    The formula ignores the mode; it means something only in loop mode. Float or float64 array.
    """
    phase = _unit_fraction(np.asarray(t, dtype=np.float64) / loop_period(config))
    return float(phase) if phase.ndim == 0 else phase


def walk_phase(config: WalkConfig, t):
    """The loop phase in loop mode, else the fraction of the way from the last keyframe to the next."""
    if config.mode == "loop":
        return loop_phase(config, t)
    phase = _unit_fraction(np.asarray(t, dtype=np.float64) / config.seconds_per_keyframe)
    return float(phase) if phase.ndim == 0 else phase


def loop_times(config: WalkConfig, seconds: float, fps: float) -> np.ndarray:
    """Walk times of a seamless one-loop video: ``round(seconds * fps)`` frames; the next would be frame 0.

    The export chooses the duration, and with it the playback speed ``K * spk / seconds``: frame ``i`` of
    ``n`` sits at walk time ``t_i = i / n * K * seconds_per_keyframe``. The loop's end is excluded because
    it equals its start (``walk_latent(config, K * spk) == walk_latent(config, 0)``).
    """
    if config.mode != "loop":
        raise ValueError(f"loop_times needs mode 'loop' to make a seamless video, got mode {config.mode!r}")
    seconds_f = float(seconds)
    fps_f = float(fps)
    if not math.isfinite(seconds_f) or seconds_f <= 0.0:
        raise ValueError(f"seconds must be a finite number > 0, got {seconds!r}")
    if not math.isfinite(fps_f) or fps_f <= 0.0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    count = round(seconds_f * fps_f)
    if count < 1:
        raise ValueError(f"seconds * fps must round to at least 1 frame, got {seconds!r} * {fps!r}")
    return np.arange(count, dtype=np.float64) / count * loop_period(config)
