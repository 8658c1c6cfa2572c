"""The stateful walk the live piece steers: wall-clock time in, walk position out, jumps as glides.

`Walker.advance(now)` moves the state; `Walker.latents_at(times)` reads it, giving the latents at future times
without changing anything, so the display can ask for the frames it will show next while steering goes on.
The walker never reads the clock itself: the same calls with the same times always give the same latents.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from installation.latent.interpolation import TINY_NORM, ease, slerp, truncate
from installation.latent.paths import check_time, check_times, keyframe_index, loop_period, path_batch, walk_phase
from installation.latent.settings import MAX_JUMP_SEED, MAX_SPEED, WalkConfig, check_seed

_JUMP_STREAM = 0x6A756D70  # "jump"; keeps random-jump seeds apart from keyframe streams.


@dataclass(frozen=True, eq=False)
class WalkState:
    """Where the walk is, as returned by `Walker.advance` (the latents themselves come from `Walker.latents_at`).

    walk_time: position on the current path. wrapped: the walk crossed the loop seam since the previous
    `advance` (loop mode, natural motion only; jumps and mode changes never count as a wrap). transition:
    progress of a jump's glide in [0, 1], 1.0 when no glide is running.
    """

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

    Call ``advance(now)`` once per frame to move the walk; ``latents_at(times)`` reads the latents it will
    reach at ``now`` and later, without moving it. Walk time integrates ``(now - last_now) * speed`` while not
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
        now = check_time(now)
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

    def latents_at(self, times) -> np.ndarray:
        """Latents ``(N, latent_dim)`` float32 the walk reaches at wall-clock ``times`` if nobody steers it.

        A pure read: nothing in the walker changes, so the display can ask for the frames it will show next.
        The times are taken in order, as if ``advance`` were called at each: one earlier than the time reached
        so far counts as no time passing, and before the first ``advance`` the first time is the origin.
        """
        times = check_times(times)
        if times.size == 0:
            return np.zeros((0, self._config.latent_dim), np.float32)
        origin = times[0] if self._last_now is None else self._last_now
        reached = np.maximum.accumulate(np.concatenate([[origin], times]))
        elapsed = np.maximum(times - reached[:-1], 0.0)
        if self._paused:
            elapsed = np.zeros_like(elapsed)
        z = truncate(self._raw_latents(elapsed), self._config.truncation)
        if self._offset is not None:
            z = z + self._offset_amount * self._offset
        return z.astype(np.float32)

    def _raw_latents(self, elapsed: np.ndarray) -> np.ndarray:
        """Untruncated float64 latents ``(N, D)`` after each further step of ``elapsed`` unpaused wall-seconds.

        Running sums in order (``np.cumsum`` adds one step at a time) give the very numbers that stepwise
        ``advance`` calls reach, so a prediction and the frame later shown at that time agree to the last bit.
        """
        steps = elapsed * self._speed
        positions = np.cumsum(np.concatenate([[self._position], steps]))[1:]
        target = path_batch(self._config, positions)
        glide = self._transition
        if glide is None:
            return target
        glide_elapsed = np.cumsum(np.concatenate([[glide.elapsed], elapsed]))[1:]
        if glide.source_z is not None:
            source = np.broadcast_to(glide.source_z, target.shape)
        else:
            source = path_batch(glide.source_config, np.cumsum(np.concatenate([[glide.source_position], steps]))[1:])
        progress = np.minimum(glide_elapsed / glide.duration, 1.0)
        blended = slerp(source, target, ease(self._config.easing, progress))
        # A glide ends once its duration has passed: from then on the walk is exactly on the new path.
        return np.where((glide_elapsed < glide.duration)[:, None], blended, target)

    def state(self) -> WalkState:
        """The current state without moving; ``wrapped`` is always False here."""
        return self._state(wrapped=False)

    def _state(self, wrapped: bool) -> WalkState:
        return WalkState(
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
        """Move the walk to wall-clock time ``now`` (seconds) and say where it is; no latent is computed.

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
            raise ValueError(f"speed must be a number in [0, {MAX_SPEED:g}], got nan")
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
        if not math.isfinite(norm) or norm < TINY_NORM:
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
            self._transition = _Transition(duration=duration, source_z=self._raw_latents(np.zeros(1))[0])
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
            seed = int(rng.integers(0, MAX_JUMP_SEED + 1))
            if seed != self._config.seed:
                break
        self._start_transition(dataclasses.replace(self._config, seed=seed), self._position)
        return seed

    def jump_to_keyframe(self, seed: int, keyframe: int, now: float) -> None:
        """Glide to keyframe ``keyframe`` of the path of ``seed`` (a recalled preset), like any jump."""
        self._integrate(now)
        position = int(keyframe) * self._config.seconds_per_keyframe
        self._start_transition(dataclasses.replace(self._config, seed=check_seed(seed)), position)

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
