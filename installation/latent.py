"""Gliding through a GAN's latent space: interpolation, easing, seeded keyframes, time-driven walks.

Everything here is plain numpy. The module-level functions are pure; `Walker` holds state but never reads
the clock: every call that moves it takes an explicit `now` (seconds, any monotonic origin), so the same
sequence of calls with the same times always gives the same latents.

Time is "walk time": seconds along the path at speed 1, integrated from wall-clock time by the `Walker`
(``walk_time += (now - last_now) * speed``). Positions never depend on the frame count, so the walk looks
the same at 10 fps and at 60 fps, and a speed change never makes the image jump.

Modes:
- ``endless``: keyframes ``i`` and ``i + 1`` of an unbounded seeded sequence, ``i = floor(t / spk)``.
- ``loop``: a closed cycle of ``K`` keyframes; the keyframe index is taken modulo ``K``, so
  ``z(t + K * spk) == z(t)`` (bit-exact at ``t = 0``, to rounding of ``t`` elsewhere).
- ``drift``: smooth noise, a few octaves of Catmull-Rom interpolated random latents (value noise),
  normalised so every coordinate stays standard normal; continuous with a continuous first derivative.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

__all__ = [
    "EASINGS",
    "MODES",
    "WalkConfig",
    "WalkState",
    "Walker",
    "ease",
    "keyframe",
    "keyframe_index",
    "lerp",
    "loop_period",
    "loop_phase",
    "loop_times",
    "offset_direction",
    "slerp",
    "truncate",
    "walk_batch",
    "walk_latent",
    "walk_phase",
]

EASINGS = ("linear", "smoothstep", "smootherstep", "cosine", "cubic")
MODES = ("endless", "loop", "drift")

MAX_LATENT_DIM = 4096
MAX_SECONDS_PER_KEYFRAME = 3600.0
MIN_LOOP_KEYFRAMES, MAX_LOOP_KEYFRAMES = 2, 1024
MAX_TRUNCATION = 2.0
MAX_TRANSITION_SECONDS = 60.0
MAX_SPEED = 10.0
MAX_SEED = 2**63 - 1

# Drift: octave k has knots every spk / 2**k walk-seconds, shifted by k * golden ratio knots so that the
# knots of different octaves never line up.
_DRIFT_OCTAVES = 3
_DRIFT_SHIFT = 0.6180339887498949
# Below this sine of the angle between two directions the great circle is ill-defined (parallel or
# antiparallel); slerp then rotates through a fixed perpendicular instead.
_DEGENERATE_SIN = 1e-12
_TINY_NORM = 1e-30
_JUMP_STREAM = 0x6A756D70  # "jump"; keeps random-jump seeds apart from keyframe streams.
_DIRECTION_STREAM = 0x64697200  # "dir"; offset directions, apart from keyframes and drift octaves.


# --------------------------------------------------------------------------------------------------------
# Interpolation and easing
# --------------------------------------------------------------------------------------------------------


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
    degenerate_norm = (norm_a < _TINY_NORM) | (norm_b < _TINY_NORM)
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


# --------------------------------------------------------------------------------------------------------
# Keyframes and truncation
# --------------------------------------------------------------------------------------------------------


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
    return int(seed)


def _check_latent_dim(latent_dim) -> int:
    if (
        isinstance(latent_dim, bool)
        or not isinstance(latent_dim, Integral)
        or not 1 <= int(latent_dim) <= MAX_LATENT_DIM
    ):
        raise ValueError(f"latent_dim must be an integer in [1, {MAX_LATENT_DIM}], got {latent_dim!r}")
    return int(latent_dim)


@functools.lru_cache(maxsize=1024)
def _cached_stream(seed: int, index: int, latent_dim: int, stream: int) -> np.ndarray:
    # Stream 0 is the public keyframe sequence; others are tagged with a trailing non-zero word because
    # SeedSequence treats trailing zero words as absent.
    if stream == 0:
        entropy = [seed, index] if index >= 0 else [seed, -index, 1]
    else:
        entropy = [seed, index, stream]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    z = rng.standard_normal(latent_dim).astype(np.float32)
    z.flags.writeable = False
    return z


def keyframe(seed: int, index: int, latent_dim: int) -> np.ndarray:
    """The seeded keyframe latent: ``default_rng(SeedSequence([seed, index])).standard_normal(latent_dim)``.

    Returned as float32 (drawn in float64, then cast). Negative indices (walking an endless path backwards)
    use ``SeedSequence([seed, -index, 1])``, a separate stream.
    """
    seed = _check_seed(seed)
    latent_dim = _check_latent_dim(latent_dim)
    if isinstance(index, bool) or not isinstance(index, Integral):
        raise ValueError(f"keyframe index must be an integer, got {index!r}")
    return _cached_stream(seed, int(index), latent_dim, 0).copy()


def offset_direction(seed: int, latent_dim: int) -> np.ndarray:
    """A seeded unit vector (float32) for `Walker.set_offset`: controllers name a direction by a number."""
    seed = _check_seed(seed)
    latent_dim = _check_latent_dim(latent_dim)
    z = _cached_stream(seed, 0, latent_dim, _DIRECTION_STREAM).astype(np.float64)
    return (z / np.linalg.norm(z)).astype(np.float32)


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


# --------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------


def _check_real(name: str, value, low: float, high: float, *, low_open: bool = False) -> float:
    bracket = "(" if low_open else "["
    message = f"{name} must be a number in {bracket}{low:g}, {high:g}], got {value!r}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(message)
    value = float(value)
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        raise ValueError(message)
    return value


@dataclass(frozen=True)
class WalkConfig:
    """How the latent walk moves. All times are walk-seconds, i.e. seconds at speed 1.

    mode: "endless" (never repeats), "loop" (closed cycle of `loop_keyframes`) or "drift" (smooth noise).
    seed: picks the keyframes; 0 .. 2**63 - 1.
    latent_dim: length of a latent vector, 1 .. 4096.
    seconds_per_keyframe: time from one keyframe to the next (drift: between the slowest noise knots).
    loop_keyframes: K, keyframes in the loop, 2 .. 1024; one loop lasts K * seconds_per_keyframe.
    easing: the curve between keyframes and for transitions, one of `EASINGS`. Non-linear curves dwell on
        each keyframe (zero velocity there); "linear" moves at constant angular speed with a kink at each.
    truncation: scale toward the mean latent, 0 .. 2 (1 = untouched, < 1 = more typical images).
    transition_seconds: wall-clock duration of the glide after a jump, seed or mode change; 0 = hard cut.
    drift_smoothness: 0 .. 1; 1 keeps only the slowest drift octave, 0 weighs the three octaves equally.
    """

    mode: str = "endless"
    seed: int = 0
    latent_dim: int = 100
    seconds_per_keyframe: float = 4.0
    loop_keyframes: int = 8
    easing: str = "smoothstep"
    truncation: float = 1.0
    transition_seconds: float = 2.0
    drift_smoothness: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.easing not in EASINGS:
            raise ValueError(f"easing must be one of {', '.join(EASINGS)}, got {self.easing!r}")
        set_field = functools.partial(object.__setattr__, self)
        set_field("seed", _check_seed(self.seed))
        set_field("latent_dim", _check_latent_dim(self.latent_dim))
        set_field(
            "seconds_per_keyframe",
            _check_real("seconds_per_keyframe", self.seconds_per_keyframe, 0.0, MAX_SECONDS_PER_KEYFRAME,
                        low_open=True),
        )
        k = self.loop_keyframes
        if (
            isinstance(k, bool)
            or not isinstance(k, Integral)
            or not MIN_LOOP_KEYFRAMES <= int(k) <= MAX_LOOP_KEYFRAMES
        ):
            raise ValueError(
                f"loop_keyframes must be an integer in [{MIN_LOOP_KEYFRAMES}, {MAX_LOOP_KEYFRAMES}], "
                f"got {k!r}"
            )
        set_field("loop_keyframes", int(k))
        set_field("truncation", _check_real("truncation", self.truncation, 0.0, MAX_TRUNCATION))
        set_field(
            "transition_seconds",
            _check_real("transition_seconds", self.transition_seconds, 0.0, MAX_TRANSITION_SECONDS),
        )
        set_field("drift_smoothness", _check_real("drift_smoothness", self.drift_smoothness, 0.0, 1.0))


# --------------------------------------------------------------------------------------------------------
# Time-driven walks
# --------------------------------------------------------------------------------------------------------


def _check_times(times) -> np.ndarray:
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1:
        raise ValueError(f"times must be a 1-D array of seconds, got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise ValueError("times must be finite seconds, got NaN or infinity")
    return times


def _check_time(t_seconds) -> float:
    t = float(t_seconds)
    if not math.isfinite(t):
        raise ValueError(f"walk time must be finite seconds, got {t_seconds!r}")
    return t


def _gather(config: WalkConfig, indices: np.ndarray, stream: int) -> np.ndarray:
    """Float64 latents for integer lattice ``indices`` (any shape) -> ``indices.shape + (D,)``."""
    unique, inverse = np.unique(indices, return_inverse=True)
    table = np.stack(
        [_cached_stream(config.seed, int(i), config.latent_dim, stream) for i in unique]
    ).astype(np.float64)
    return table[inverse.reshape(indices.shape)]


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
    start = _gather(config, index, 0)
    end = _gather(config, following, 0)
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
        values = _gather(config, lattice, 2 + octave)  # (N, 4, D)
        # Dividing by the weights' root sum of squares keeps each coordinate standard normal between
        # knots (a plain weighted sum of independent normals would shrink toward 0 mid-way). Its slope
        # is 0 at the knots, so the path keeps Catmull-Rom's continuous first derivative.
        scale = np.sqrt(np.sum(weights * weights, axis=-1, keepdims=True))
        total += amplitude * np.einsum("nk,nkd->nd", weights / scale, values)
    return total / math.sqrt(sum(a * a for a in amplitudes))


def _path_batch(config: WalkConfig, times: np.ndarray) -> np.ndarray:
    """Untruncated float64 latents ``(N, D)`` on the walk path at walk ``times``."""
    if config.mode == "drift":
        return _drift_path(config, times)
    return _keyframe_path(config, times)


def walk_batch(config: WalkConfig, times) -> np.ndarray:
    """Latents ``(N, latent_dim)`` float32 at walk ``times`` (1-D, seconds at speed 1), truncated."""
    times = _check_times(times)
    return truncate(_path_batch(config, times), config.truncation).astype(np.float32)


def walk_latent(config: WalkConfig, t_seconds: float) -> np.ndarray:
    """The latent ``(latent_dim,)`` float32 at walk time ``t_seconds``; a pure function of the time."""
    return walk_batch(config, [_check_time(t_seconds)])[0]


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


# --------------------------------------------------------------------------------------------------------
# The stateful walker used by the live loop
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WalkState:
    """One step of the walk, as returned by `Walker.advance`.

    z: float32 latent (truncation and offset applied). walk_time: position on the current path.
    wrapped: the walk crossed the loop seam since the previous `advance` (loop mode, natural motion only;
    jumps and mode changes never count as a wrap). transition: progress of a jump's glide in [0, 1],
    1.0 when no glide is running.
    """

    z: np.ndarray
    walk_time: float
    keyframe_index: int
    phase: float
    wrapped: bool
    seed: int
    mode: str
    speed: float
    paused: bool
    transition: float


@dataclass
class _Transition:
    """A glide from a source (an old path still moving, or a frozen latent) to the current path."""

    duration: float
    source_config: WalkConfig | None = None
    source_position: float = 0.0
    source_z: np.ndarray | None = None
    elapsed: float = 0.0

    def progress(self) -> float:
        return min(self.elapsed / self.duration, 1.0)


class Walker:
    """A controllable latent walk driven by explicit times.

    Call ``advance(now)`` once per frame. Walk time integrates ``(now - last_now) * speed`` while not
    paused, so frame rate never changes the motion and speed changes never jump. Jumps (seed, keyframe,
    mode, loop length) glide: the latent slerps, eased with ``config.easing``, from the old path (which
    keeps moving) to the new one over ``config.transition_seconds`` of wall-clock time that is not paused
    (speed does not stretch it). A jump during a glide starts the next glide from the latent shown at
    that moment. Truncation and offset changes apply immediately; callers that want them gradual send
    small steps. ``now`` going backwards counts as no time passing.

    The methods that take an optional ``now`` (set_speed, pause, resume, toggle_pause) first bring the walk
    up to ``now`` under the old setting; without it the change acts from the previous ``advance``.
    """

    def __init__(self, config: WalkConfig, *, speed: float = 1.0) -> None:
        if not isinstance(config, WalkConfig):
            raise ValueError(f"Walker needs a WalkConfig, got {type(config).__name__}")
        self._config = config
        self._base_seed = config.seed
        self._position = 0.0
        self._last_now: float | None = None
        self._speed = 1.0
        self.set_speed(speed)
        self._paused = False
        self._transition: _Transition | None = None
        self._offset: np.ndarray | None = None
        self._offset_amount = 0.0
        self._jumps = 0
        self._wraps = 0
        self._pending_wrap = False
        self._cycle = self._loop_cycle()

    # ----- properties -----------------------------------------------------------------------------------

    @property
    def config(self) -> WalkConfig:
        return self._config

    @property
    def walk_time(self) -> float:
        return self._position

    @property
    def keyframe(self) -> int:
        return keyframe_index(self._config, self._position)

    @property
    def phase(self) -> float:
        return walk_phase(self._config, self._position)

    @property
    def seed(self) -> int:
        return self._config.seed

    @property
    def mode(self) -> str:
        return self._config.mode

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def wraps(self) -> int:
        """How many times the loop seam has been crossed by natural motion."""
        return self._wraps

    @property
    def transitioning(self) -> bool:
        return self._transition is not None

    # ----- time ---------------------------------------------------------------------------------------

    def _loop_cycle(self) -> int:
        if self._config.mode != "loop":
            return 0
        return math.floor(self._position / loop_period(self._config))

    def _integrate(self, now: float | None) -> None:
        if now is None:
            return
        now = _check_time(now)
        if self._last_now is None:
            self._last_now = now
            return
        elapsed = max(now - self._last_now, 0.0)
        self._last_now = max(now, self._last_now)
        if self._paused or elapsed == 0.0:
            return
        step = elapsed * self._speed
        self._position += step
        if self._transition is not None:
            self._transition.elapsed += elapsed
            self._transition.source_position += step
            if self._transition.elapsed >= self._transition.duration:
                self._transition = None
        cycle = self._loop_cycle()
        if cycle > self._cycle:
            self._wraps += cycle - self._cycle
            self._pending_wrap = True
        self._cycle = cycle

    def _raw(self) -> np.ndarray:
        """The untruncated float64 latent shown now, including any running glide."""
        target = _path_batch(self._config, np.array([self._position]))[0]
        if self._transition is None:
            return target
        transition = self._transition
        if transition.source_z is not None:
            source = transition.source_z
        else:
            source = _path_batch(transition.source_config, np.array([transition.source_position]))[0]
        return slerp(source, target, ease(self._config.easing, transition.progress()))

    def state(self) -> WalkState:
        """The current state without moving; ``wrapped`` is always False here."""
        return self._state(wrapped=False)

    def _state(self, wrapped: bool) -> WalkState:
        z = truncate(self._raw(), self._config.truncation)
        if self._offset is not None:
            z = z + self._offset_amount * self._offset
        return WalkState(
            z=z.astype(np.float32),
            walk_time=self._position,
            keyframe_index=self.keyframe,
            phase=self.phase,
            wrapped=wrapped,
            seed=self._config.seed,
            mode=self._config.mode,
            speed=self._speed,
            paused=self._paused,
            transition=1.0 if self._transition is None else self._transition.progress(),
        )

    def advance(self, now: float) -> WalkState:
        """Move the walk to wall-clock time ``now`` (seconds) and return the state there.

        The first call only sets the time origin: the walk starts at walk time 0.
        """
        self._integrate(now)
        wrapped = self._pending_wrap
        self._pending_wrap = False
        return self._state(wrapped=wrapped)

    # ----- speed and pause ------------------------------------------------------------------------------

    def set_speed(self, speed: float, now: float | None = None) -> None:
        """Walk-seconds per wall-second, clamped to [0, 10]."""
        speed = float(speed)
        if math.isnan(speed):
            raise ValueError("speed must be a number in [0, 10], got nan")
        self._integrate(now)
        self._speed = min(max(speed, 0.0), MAX_SPEED)

    def pause(self, now: float | None = None) -> None:
        self._integrate(now)
        self._paused = True

    def resume(self, now: float | None = None) -> None:
        self._integrate(now)
        self._paused = False

    def toggle_pause(self, now: float | None = None) -> bool:
        """Flip pause; returns the new paused state."""
        self._integrate(now)
        self._paused = not self._paused
        return self._paused

    # ----- immediate settings ---------------------------------------------------------------------------

    def set_truncation(self, truncation: float) -> None:
        """Set the truncation (0 .. 2) at once."""
        self._config = dataclasses.replace(self._config, truncation=truncation)

    def set_transition_seconds(self, seconds: float) -> None:
        """Set the glide duration (0 .. 60 wall-clock seconds) for later jumps; a running glide keeps its own."""
        self._config = dataclasses.replace(self._config, transition_seconds=seconds)

    def set_offset(self, direction, amount: float = 0.0) -> None:
        """Add ``amount`` times the unit vector along ``direction`` to every latent; None removes it.

        ``amount`` is in latent units (a standard-normal latent has norm about sqrt(latent_dim)).
        """
        if direction is None:
            self._offset = None
            self._offset_amount = 0.0
            return
        direction = np.asarray(direction, dtype=np.float64)
        if direction.shape != (self._config.latent_dim,):
            raise ValueError(
                f"offset direction must have shape ({self._config.latent_dim},), got {direction.shape}"
            )
        norm = float(np.linalg.norm(direction))
        if not math.isfinite(norm) or norm < _TINY_NORM:
            raise ValueError(f"offset direction must be finite and non-zero, got norm {norm!r}")
        amount = float(amount)
        if not math.isfinite(amount):
            raise ValueError(f"offset amount must be a finite number, got {amount!r}")
        self._offset = direction / norm
        self._offset_amount = amount

    # ----- jumps (smooth) ---------------------------------------------------------------------------------

    def _start_transition(self, new_config: WalkConfig, new_position: float) -> None:
        """Switch to ``new_config`` at ``new_position``, gliding from what is shown now."""
        duration = new_config.transition_seconds
        if duration <= 0.0:
            self._transition = None
        elif self._transition is not None:
            self._transition = _Transition(duration=duration, source_z=self._raw())
        else:
            self._transition = _Transition(
                duration=duration, source_config=self._config, source_position=self._position
            )
        self._config = new_config
        self._position = float(new_position)
        self._cycle = self._loop_cycle()

    def jump_to_seed(self, seed: int, now: float) -> None:
        """Glide to the path of another seed at the same walk time."""
        self._integrate(now)
        self._start_transition(dataclasses.replace(self._config, seed=seed), self._position)

    def jump_random(self, now: float) -> int:
        """Glide to a new seed drawn deterministically from the starting seed and the jump count.

        Returns the new seed.
        """
        self._integrate(now)
        while True:
            rng = np.random.default_rng(np.random.SeedSequence([self._base_seed, self._jumps, _JUMP_STREAM]))
            self._jumps += 1
            seed = int(rng.integers(0, 2**31))
            if seed != self._config.seed:
                break
        self._start_transition(dataclasses.replace(self._config, seed=seed), self._position)
        return seed

    def jump_to_keyframe(self, seed: int, keyframe: int, now: float) -> None:
        """Glide to keyframe ``keyframe`` of the path of ``seed`` (a recalled preset), like any jump."""
        self._integrate(now)
        position = int(keyframe) * self._config.seconds_per_keyframe
        self._start_transition(dataclasses.replace(self._config, seed=_check_seed(seed)), position)

    def _step_keyframe(self, steps: int, now: float) -> None:
        self._integrate(now)
        spk = self._config.seconds_per_keyframe
        nearest = round(self._position / spk)
        position = (nearest + steps) * spk
        if self._config.mode == "loop" and position < 0.0:
            position += math.ceil(-position / loop_period(self._config)) * loop_period(self._config)
        self._start_transition(self._config, position)

    def next_keyframe(self, now: float) -> None:
        """Glide to the keyframe after the nearest one."""
        self._step_keyframe(1, now)

    def previous_keyframe(self, now: float) -> None:
        """Glide to the keyframe before the nearest one."""
        self._step_keyframe(-1, now)

    def set_mode(self, mode: str, now: float) -> None:
        """Glide to another mode ("endless", "loop", "drift") at the same walk time."""
        self._integrate(now)
        if mode == self._config.mode:
            return
        self._start_transition(dataclasses.replace(self._config, mode=mode), self._position)

    def set_loop_keyframes(self, keyframes: int, now: float) -> None:
        """Change the loop length K; glides when the loop is what is playing."""
        self._integrate(now)
        new_config = dataclasses.replace(self._config, loop_keyframes=keyframes)
        if new_config.loop_keyframes == self._config.loop_keyframes:
            return
        if self._config.mode == "loop":
            self._start_transition(new_config, self._position)
        else:
            self._config = new_config
