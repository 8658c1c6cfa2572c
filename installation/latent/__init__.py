"""Gliding through a GAN's latent space: interpolation, easing, seeded keyframes, time-driven walks.

Everything here is plain numpy, in modules that build on one another:

- `interpolation`: lerp, slerp, the easing curves and truncation; pure maths on vectors.
- `settings`: `WalkConfig` and the allowed range of every walk setting, checked in one place.
- `keyframes`: seeded latents (keyframes, drift knots, offset directions), pure functions of a seed.
- `paths`: the walk as a pure function of walk time (`walk_batch`, `loop_times`, phases, keyframe indices).
- `walker`: the stateful `Walker` the live piece steers; `advance(now)` moves it, `latents_at(times)` reads it.

Time is "walk time": seconds along the path at speed 1, integrated from wall-clock time by the `Walker`
(``walk_time += (now - last_now) * speed``). Positions never depend on the frame count, so the walk looks
the same at 10 fps and at 60 fps, and a speed change never makes the image jump.
"""

from installation.latent.interpolation import EASINGS, ease, lerp, slerp, truncate
from installation.latent.keyframes import keyframe, offset_direction
from installation.latent.paths import (
    keyframe_index,
    loop_period,
    loop_phase,
    loop_times,
    walk_batch,
    walk_latent,
    walk_phase,
)
from installation.latent.settings import (
    MAX_LATENT_DIM,
    MAX_LOOP_KEYFRAMES,
    MAX_SECONDS_PER_KEYFRAME,
    MAX_SEED,
    MAX_SPEED,
    MAX_TRANSITION_SECONDS,
    MAX_TRUNCATION,
    MIN_LOOP_KEYFRAMES,
    MODES,
    WalkConfig,
)
from installation.latent.walker import Walker, WalkState

__all__ = [
    "EASINGS",
    "MAX_LATENT_DIM",
    "MAX_LOOP_KEYFRAMES",
    "MAX_SECONDS_PER_KEYFRAME",
    "MAX_SEED",
    "MAX_SPEED",
    "MAX_TRANSITION_SECONDS",
    "MAX_TRUNCATION",
    "MIN_LOOP_KEYFRAMES",
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
