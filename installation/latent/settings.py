"""The walk's settings (`WalkConfig`) and the one place their allowed ranges are declared and checked.

Every limit below is read by `check_integer` / `check_real` and nowhere else; the seeded-latent functions and the
`Walker` import the same names, so a limit changes here or not at all.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from numbers import Integral, Real

from installation.latent.interpolation import EASINGS
from installation.parameters import BY_NAME, MODES, SEED_MAX

# The ranges a user can set come from the one parameter table; the rest are the walk's own (latent size, drift).
MIN_SEED, MAX_SEED = 0, SEED_MAX
MIN_LATENT_DIM, MAX_LATENT_DIM = 1, 4096
MAX_SECONDS_PER_KEYFRAME = float(BY_NAME["seconds_per_keyframe"].max)  # lower end 0, excluded: it must take time
MIN_LOOP_KEYFRAMES, MAX_LOOP_KEYFRAMES = int(BY_NAME["loop_keyframes"].min), int(BY_NAME["loop_keyframes"].max)
MAX_TRUNCATION = float(BY_NAME["truncation"].max)
MAX_TRANSITION_SECONDS = float(BY_NAME["transition_seconds"].max)
MAX_SPEED = float(BY_NAME["speed"].max)  # speed is clamped into [0, MAX_SPEED], not refused: a controller may overshoot
MAX_DRIFT_SMOOTHNESS = 1.0
# Seeds drawn by a random jump are ones a controller can name back (OSC int32, presets, TOML).
MAX_JUMP_SEED = SEED_MAX


def check_integer(name: str, value, low: int, high: int) -> int:
    """``value`` as an int when it is an integer (not a bool) in [low, high]; else ValueError naming the range."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= int(value) <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def check_real(name: str, value, low: float, high: float, *, low_open: bool = False) -> float:
    """``value`` as a float when it is a finite number in [low, high] (or (low, high]); else ValueError."""
    bracket = "(" if low_open else "["
    message = f"{name} must be a number in {bracket}{low:g}, {high:g}], got {value!r}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(message)
    value = float(value)
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        raise ValueError(message)
    return value


def check_seed(seed) -> int:
    return check_integer("seed", seed, MIN_SEED, MAX_SEED)


def check_latent_dim(latent_dim) -> int:
    return check_integer("latent_dim", latent_dim, MIN_LATENT_DIM, MAX_LATENT_DIM)


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
        """Refuse a value outside its range with a message naming it; store numbers as plain int / float."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.easing not in EASINGS:
            raise ValueError(f"easing must be one of {', '.join(EASINGS)}, got {self.easing!r}")
        set_field = functools.partial(object.__setattr__, self)
        set_field("seed", check_seed(self.seed))
        set_field("latent_dim", check_latent_dim(self.latent_dim))
        set_field("seconds_per_keyframe", check_real("seconds_per_keyframe", self.seconds_per_keyframe, 0.0,
                                                     MAX_SECONDS_PER_KEYFRAME, low_open=True))
        set_field("loop_keyframes",
                  check_integer("loop_keyframes", self.loop_keyframes, MIN_LOOP_KEYFRAMES, MAX_LOOP_KEYFRAMES))
        set_field("truncation", check_real("truncation", self.truncation, 0.0, MAX_TRUNCATION))
        set_field("transition_seconds",
                  check_real("transition_seconds", self.transition_seconds, 0.0, MAX_TRANSITION_SECONDS))
        set_field("drift_smoothness",
                  check_real("drift_smoothness", self.drift_smoothness, 0.0, MAX_DRIFT_SMOOTHNESS))
