"""Behaviour of the latent walk: interpolation, easing, keyframes, walks, the Walker."""

import dataclasses

import numpy as np
import pytest

from installation.latent import (
    EASINGS,
    MODES,
    WalkConfig,
    Walker,
    ease,
    keyframe,
    keyframe_index,
    lerp,
    loop_period,
    loop_phase,
    loop_times,
    offset_direction,
    slerp,
    truncate,
    walk_batch,
    walk_latent,
)

RNG = np.random.default_rng(1234)


def _pair(dim=16, same_norm=True):
    a = RNG.standard_normal(dim)
    b = RNG.standard_normal(dim)
    if same_norm:
        b *= np.linalg.norm(a) / np.linalg.norm(b)
    return a, b


def _shown(walker, now):
    """Advance to ``now`` and return the latent shown then, as the live loop renders it."""
    walker.advance(now)
    return walker.latents_at([now])[0]


def _max_step(latents):
    return float(np.max(np.linalg.norm(np.diff(latents, axis=0), axis=-1)))


# ----- lerp / slerp --------------------------------------------------------------------------------------


def test_lerp_endpoints_and_shapes():
    a, b = _pair()
    np.testing.assert_array_equal(lerp(a, b, 0.0), a)
    np.testing.assert_array_equal(lerp(a, b, 1.0), b)
    np.testing.assert_allclose(lerp(a, b, 0.5), (a + b) / 2)
    assert lerp(a, b, np.linspace(0, 1, 7)).shape == (7, 16)


@pytest.mark.parametrize("same_norm", [True, False])
def test_slerp_endpoints(same_norm):
    a, b = _pair(same_norm=same_norm)
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-12)
    ends = slerp(a, b, np.array([0.0, 1.0]))
    np.testing.assert_allclose(ends, np.stack([a, b]), atol=1e-12)


def test_slerp_preserves_equal_norms_even_when_extrapolating():
    a, b = _pair(dim=100)
    t = np.linspace(-0.5, 1.5, 41)
    norms = np.linalg.norm(slerp(a, b, t), axis=-1)
    np.testing.assert_allclose(norms, np.linalg.norm(a), rtol=1e-12)


def test_slerp_midpoint_is_the_bisector():
    a, b = _pair(dim=32)
    mid = slerp(a, b, 0.5)
    bisector = (a + b) / np.linalg.norm(a + b) * np.linalg.norm(a)
    np.testing.assert_allclose(mid, bisector, atol=1e-12)
    cos_a = mid @ a / (np.linalg.norm(mid) * np.linalg.norm(a))
    cos_b = mid @ b / (np.linalg.norm(mid) * np.linalg.norm(b))
    assert cos_a == pytest.approx(cos_b, abs=1e-12)


def test_slerp_interpolates_norm_linearly_and_angle_uniformly():
    a, b = _pair(dim=8, same_norm=False)
    t = np.linspace(0, 1, 11)
    out = slerp(a, b, t)
    expected_norms = (1 - t) * np.linalg.norm(a) + t * np.linalg.norm(b)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), expected_norms, rtol=1e-12)
    unit = out / np.linalg.norm(out, axis=-1, keepdims=True)
    angles = np.arccos(np.clip(np.sum(unit[1:] * unit[:-1], axis=-1), -1, 1))
    np.testing.assert_allclose(angles, angles[0], rtol=1e-6)


def test_slerp_vectorised_shapes_and_dtype():
    a32 = RNG.standard_normal((5, 10)).astype(np.float32)
    b32 = RNG.standard_normal((5, 10)).astype(np.float32)
    assert slerp(a32, b32, 0.3).shape == (5, 10)
    assert slerp(a32, b32, np.linspace(0, 1, 5)).shape == (5, 10)
    assert slerp(a32, b32, np.linspace(0, 1, 3)[:, None]).shape == (3, 5, 10)
    assert slerp(a32[0], b32[0], np.linspace(0, 1, 4)).shape == (4, 10)
    assert slerp(a32, b32, 0.3).dtype == np.float32
    batched = slerp(a32, b32, np.linspace(0, 1, 5))
    for i, t in enumerate(np.linspace(0, 1, 5)):
        np.testing.assert_allclose(batched[i], slerp(a32[i], b32[i], t), rtol=1e-6)


def test_slerp_parallel_antiparallel_and_degenerate_inputs():
    a = RNG.standard_normal(12)
    np.testing.assert_allclose(slerp(a, 3 * a, 0.5), 2 * a, rtol=1e-12)
    opposite = slerp(a, -a, np.linspace(0, 1, 9))
    assert np.all(np.isfinite(opposite))
    np.testing.assert_allclose(np.linalg.norm(opposite, axis=-1), np.linalg.norm(a), rtol=1e-12)
    assert abs(opposite[4] @ a) < 1e-9  # half way round, perpendicular to a
    np.testing.assert_allclose(opposite[-1], -a, atol=1e-12)
    assert np.max(np.linalg.norm(np.diff(opposite, axis=0), axis=-1)) < np.linalg.norm(a)
    np.testing.assert_allclose(slerp(np.zeros(12), a, 0.25), 0.25 * a)
    np.testing.assert_allclose(slerp(np.array([2.0]), np.array([-2.0]), 0.25), [1.0])


# ----- easing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EASINGS)
def test_easing_endpoints_and_monotone(name):
    assert ease(name, 0.0) == 0.0
    assert ease(name, 1.0) == 1.0
    values = ease(name, np.linspace(0, 1, 1001))
    assert np.all(np.diff(values) >= 0)
    assert ease(name, -3.0) == 0.0 and ease(name, 7.0) == 1.0
    assert ease(name, 0.5) == pytest.approx(0.5)


def test_unknown_easing_is_named():
    with pytest.raises(ValueError, match="'bounce'"):
        ease("bounce", 0.5)


# ----- keyframes, truncation -----------------------------------------------------------------------------


def test_keyframe_is_seeded_float32_normal():
    z = keyframe(7, 3, 100)
    assert z.shape == (100,) and z.dtype == np.float32
    expected = np.random.default_rng(np.random.SeedSequence([7, 3])).standard_normal(100)
    np.testing.assert_array_equal(z, expected.astype(np.float32))
    np.testing.assert_array_equal(z, keyframe(7, 3, 100))
    assert not np.allclose(z, keyframe(8, 3, 100))
    assert not np.allclose(z, keyframe(7, 4, 100))
    assert not np.allclose(keyframe(7, -3, 100), z)
    z[:] = 0  # callers get a copy, never the cache
    assert np.any(keyframe(7, 3, 100) != 0)


def test_truncation_scales_toward_the_mean():
    z = RNG.standard_normal(50)
    assert np.linalg.norm(truncate(z, 0.5)) == pytest.approx(0.5 * np.linalg.norm(z))
    np.testing.assert_array_equal(truncate(z, 1.0), z)
    np.testing.assert_array_equal(truncate(z, 0.0), np.zeros(50))
    mean = RNG.standard_normal(50)
    np.testing.assert_allclose(truncate(z, 0.0, mean), mean)
    shrunk = truncate(z, 0.25, mean)
    np.testing.assert_allclose(np.linalg.norm(shrunk - mean), 0.25 * np.linalg.norm(z - mean))
    with pytest.raises(ValueError, match="-1"):
        truncate(z, -1.0)


def test_walk_truncation_scales_latents():
    config = WalkConfig(seed=3)
    full = walk_latent(config, 5.3)
    half = walk_latent(dataclasses.replace(config, truncation=0.5), 5.3)
    np.testing.assert_allclose(half, 0.5 * full, rtol=1e-6)
    np.testing.assert_array_equal(walk_latent(dataclasses.replace(config, truncation=0.0), 5.3), 0)


# ----- config validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("mode", "spiral", r"mode.*'spiral'"),
        ("seed", -1, r"seed.*-1"),
        ("seed", 1.5, r"seed.*1\.5"),
        ("latent_dim", 0, r"latent_dim.*\[1, 4096\].*0"),
        ("latent_dim", 5000, r"latent_dim.*5000"),
        ("seconds_per_keyframe", 0.0, r"seconds_per_keyframe.*\(0, 3600\].*0\.0"),
        ("seconds_per_keyframe", 4000, r"seconds_per_keyframe.*4000"),
        ("seconds_per_keyframe", float("nan"), r"seconds_per_keyframe.*nan"),
        ("loop_keyframes", 1, r"loop_keyframes.*\[2, 1024\].*1"),
        ("loop_keyframes", 2000, r"loop_keyframes.*2000"),
        ("easing", "bounce", r"easing.*'bounce'"),
        ("truncation", 2.5, r"truncation.*\[0, 2\].*2\.5"),
        ("transition_seconds", -0.1, r"transition_seconds.*\[0, 60\].*-0\.1"),
        ("transition_seconds", 61, r"transition_seconds.*61"),
        ("drift_smoothness", 1.5, r"drift_smoothness.*\[0, 1\].*1\.5"),
    ],
)
def test_config_validation_names_the_value(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        WalkConfig(**{field: value})


def test_config_normalises_numpy_numbers():
    config = WalkConfig(seed=np.int64(4), latent_dim=np.int32(8), seconds_per_keyframe=np.float32(2))
    assert type(config.seed) is int and type(config.latent_dim) is int
    assert type(config.seconds_per_keyframe) is float


# ----- walks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("easing", ["linear", "smoothstep"])
def test_walk_is_continuous(mode, easing):
    config = WalkConfig(mode=mode, seed=5, latent_dim=16, seconds_per_keyframe=0.5, loop_keyframes=3,
                        easing=easing)
    times = np.arange(0, 2.5 * loop_period(config), 1e-4)  # crosses the loop seam twice
    latents = walk_batch(config, times)
    assert latents.shape == (times.size, 16) and latents.dtype == np.float32
    # A cut would move by about |z| ~ 4; the path moves < 1e-2 per 1e-4 s.
    assert _max_step(latents) < 1e-2


@pytest.mark.parametrize("mode", MODES)
def test_walk_batch_matches_walk_latent(mode):
    config = WalkConfig(mode=mode, seed=9, latent_dim=20)
    times = np.array([0.0, 1.7, 4.0, 11.3, 40.1])
    batch = walk_batch(config, times)
    for t, z in zip(times, batch, strict=True):
        np.testing.assert_array_equal(walk_latent(config, t), z)


def test_keyframe_walk_passes_through_keyframes():
    config = WalkConfig(mode="endless", seed=2, latent_dim=10, seconds_per_keyframe=3.0)
    for i in range(4):
        np.testing.assert_allclose(walk_latent(config, 3.0 * i), keyframe(2, i, 10), rtol=1e-6)
    loop = dataclasses.replace(config, mode="loop", loop_keyframes=3)
    np.testing.assert_allclose(walk_latent(loop, 9.0), keyframe(2, 0, 10), rtol=1e-6)


def test_loop_closes():
    config = WalkConfig(mode="loop", seed=11, seconds_per_keyframe=0.1, loop_keyframes=3, easing="linear")
    period = loop_period(config)
    np.testing.assert_array_equal(walk_latent(config, period), walk_latent(config, 0.0))
    times = np.linspace(0, period, 37)
    np.testing.assert_allclose(walk_batch(config, times + period), walk_batch(config, times), atol=1e-5)
    np.testing.assert_allclose(walk_batch(config, times + 5 * period), walk_batch(config, times), atol=1e-5)


@pytest.mark.parametrize("easing", EASINGS)
def test_loop_seam_has_matching_velocity(easing):
    config = WalkConfig(mode="loop", seed=4, seconds_per_keyframe=1.0, loop_keyframes=4, easing=easing)
    period = loop_period(config)
    h = 1e-3
    z = walk_batch(config, [period - h, period, period + h, -h, 0.0, h])
    left_seam, right_seam = (z[1] - z[0]) / h, (z[2] - z[1]) / h
    left_start, right_start = (z[4] - z[3]) / h, (z[5] - z[4]) / h
    np.testing.assert_allclose(left_seam, left_start, atol=1e-2)
    np.testing.assert_allclose(right_seam, right_start, atol=1e-2)
    if easing != "linear":  # eased curves come to rest on each keyframe, the seam included
        assert np.linalg.norm(right_seam - left_seam) < 0.1


def test_drift_has_continuous_velocity():
    config = WalkConfig(mode="drift", seed=8, latent_dim=32, seconds_per_keyframe=1.0)
    h = 1e-4
    times = np.arange(0, 3, h)
    velocity = np.diff(walk_batch(config, times).astype(np.float64), axis=0) / h
    acceleration_step = np.max(np.linalg.norm(np.diff(velocity, axis=0), axis=-1))
    assert acceleration_step < 0.05 * np.max(np.linalg.norm(velocity, axis=-1))
    norms = np.linalg.norm(walk_batch(config, np.linspace(0, 100, 500)), axis=-1)
    assert 0.7 * np.sqrt(32) < norms.mean() < 1.3 * np.sqrt(32)


@pytest.mark.parametrize("mode", MODES)
def test_walk_is_deterministic_by_seed(mode):
    config = WalkConfig(mode=mode, seed=21, latent_dim=24)
    times = np.linspace(0, 30, 50)
    np.testing.assert_array_equal(walk_batch(config, times), walk_batch(config, times))
    other = walk_batch(dataclasses.replace(config, seed=22), times)
    assert np.min(np.linalg.norm(other - walk_batch(config, times), axis=-1)) > 0.5


def test_endless_walk_does_not_repeat_and_accepts_negative_time():
    config = WalkConfig(mode="endless", seed=1, latent_dim=16, seconds_per_keyframe=1.0, loop_keyframes=4)
    assert not np.allclose(walk_latent(config, 0.5), walk_latent(config, 4.5))
    assert np.all(np.isfinite(walk_latent(config, -2.5)))


def test_keyframe_index_and_phases():
    config = WalkConfig(mode="loop", seconds_per_keyframe=2.0, loop_keyframes=4)
    assert keyframe_index(config, 0.0) == 0
    assert keyframe_index(config, 5.0) == 2
    assert keyframe_index(config, 9.0) == 0
    np.testing.assert_array_equal(keyframe_index(config, np.array([1.0, 3.0, 17.0])), [0, 1, 0])
    assert loop_phase(config, 0.0) == 0.0
    assert loop_phase(config, 4.0) == pytest.approx(0.5)
    assert loop_phase(config, 8.0) == 0.0
    assert 0.0 <= loop_phase(config, -1e-300) < 1.0
    endless = dataclasses.replace(config, mode="endless")
    assert keyframe_index(endless, 9.0) == 4


def test_loop_times_cover_one_closed_loop():
    config = WalkConfig(mode="loop", seconds_per_keyframe=2.0, loop_keyframes=5)
    times = loop_times(config, seconds=4.0, fps=24.5)
    assert times.size == 98 and times[0] == 0.0
    step = loop_period(config) / times.size
    np.testing.assert_allclose(np.diff(times), step)
    assert times[-1] + step == pytest.approx(loop_period(config))
    frames = walk_batch(config, times)
    seam = np.linalg.norm(frames[0] - frames[-1])
    assert seam <= 1.5 * np.max(np.linalg.norm(np.diff(frames, axis=0), axis=-1))
    with pytest.raises(ValueError, match="'endless'"):
        loop_times(dataclasses.replace(config, mode="endless"), 4.0, 24)
    with pytest.raises(ValueError, match="fps.*0"):
        loop_times(config, 4.0, 0)
    with pytest.raises(ValueError, match="1 frame"):
        loop_times(config, 0.01, 10)


# ----- Walker --------------------------------------------------------------------------------------------


def _run(fps, config, seconds=6.0, events=()):
    """Advance a Walker at ``fps``; ``events`` are (time, method name, args) applied at exact frame times."""
    walker = Walker(config)
    pending = sorted(events, key=lambda e: e[0])
    state = None
    for i in range(round(seconds * fps) + 1):
        now = 100.0 + i / fps
        while pending and pending[0][0] <= i / fps + 1e-12:
            _, name, args = pending.pop(0)
            getattr(walker, name)(*args, now=now)
        state = walker.advance(now)
    return walker, state, walker.latents_at([now])[0]


@pytest.mark.parametrize("mode", MODES)
def test_walker_speed_is_independent_of_frame_rate(mode):
    config = WalkConfig(mode=mode, seed=6, seconds_per_keyframe=1.5, loop_keyframes=3, transition_seconds=1.0)
    events = [(1.0, "set_speed", (2.5,)), (2.0, "jump_random", ()), (3.0, "next_keyframe", ()),
              (3.5, "pause", ()), (4.0, "resume", ()), (4.5, "set_speed", (0.5,))]
    slow_walker, slow, slow_z = _run(10, config, events=events)
    fast_walker, fast, fast_z = _run(60, config, events=events)
    assert slow.walk_time == pytest.approx(fast.walk_time, abs=1e-9)
    assert slow_walker.seed == fast_walker.seed
    np.testing.assert_allclose(slow_z, fast_z, atol=1e-5)


def test_walker_follows_walk_latent_at_its_speed():
    config = WalkConfig(mode="endless", seed=3)
    walker = Walker(config, speed=2.0)
    walker.advance(50.0)
    state = walker.advance(53.0)
    assert state.walk_time == pytest.approx(6.0)
    np.testing.assert_array_equal(walker.latents_at([53.0])[0], walk_latent(config, state.walk_time))
    walker.set_speed(99.0)
    assert walker.speed == 10.0
    walker.set_speed(-1.0)
    assert walker.speed == 0.0
    assert walker.advance(60.0).walk_time == pytest.approx(6.0)


def test_walker_is_deterministic():
    config = WalkConfig(mode="loop", seed=17, transition_seconds=0.5)
    events = [(0.5, "jump_random", ()), (1.2, "set_mode", ("drift",)), (2.0, "previous_keyframe", ())]
    first_walker, first, first_z = _run(30, config, seconds=3.0, events=events)
    second_walker, second, second_z = _run(30, config, seconds=3.0, events=events)
    np.testing.assert_array_equal(first_z, second_z)
    assert first_walker.seed == second_walker.seed != 17


@pytest.mark.parametrize(
    ("method", "args"),
    [("jump_to_seed", (99,)), ("jump_random", ()), ("next_keyframe", ()), ("previous_keyframe", ()),
     ("set_mode", ("drift",)), ("set_loop_keyframes", (2,))],
)
def test_jumps_glide_then_land_on_the_new_path(method, args):
    # The jump happens at walk time 10, between keyframes 2 and 3, where every target path differs.
    config = WalkConfig(mode="loop", seed=5, seconds_per_keyframe=4.0, transition_seconds=1.5)
    walker = Walker(config)
    fps, jump_at, end = 60, 10.0, 14.0
    times = [i / fps for i in range(0, round(end * fps) + 1)]
    frames = []
    before = None
    for now in times:
        if now == jump_at:
            before = _shown(walker, now)
            getattr(walker, method)(*args, now=now)
            assert walker.transitioning
        frames.append(_shown(walker, now))
    frames = np.stack(frames)
    target_config = walker.config
    assert not walker.transitioning
    np.testing.assert_allclose(frames[-1], walk_latent(target_config, walker.walk_time), atol=1e-5)
    # Landed: from the end of the glide on, the walker is exactly on the new path.
    landed = [i for i, now in enumerate(times) if now >= jump_at + 1.5 + 1e-9]
    expected = walk_batch(target_config, [walker.walk_time - (end - times[i]) for i in landed])
    np.testing.assert_allclose(frames[landed], expected, atol=1e-4)
    # Smooth: a cut would move by the distance between the paths; per frame the glide moves far less.
    cut = np.linalg.norm(before - walk_latent(target_config, walker.walk_time - (end - jump_at)))
    assert cut > 3.0
    assert _max_step(frames) < min(0.6, 0.1 * cut)


def test_jump_during_a_glide_stays_smooth():
    config = WalkConfig(seed=1, transition_seconds=1.0)
    walker = Walker(config)
    frames = []
    for i in range(0, 4 * 60):
        now = i / 60
        if i in (60, 90, 100):
            walker.jump_random(now)
        frames.append(_shown(walker, now))
    assert _max_step(np.stack(frames)) < 0.6


def test_zero_transition_is_a_cut():
    walker = Walker(WalkConfig(seed=1, transition_seconds=0.0))
    walker.advance(0.0)
    walker.jump_to_seed(2, 0.0)
    assert not walker.transitioning
    np.testing.assert_array_equal(_shown(walker, 0.0), walk_latent(WalkConfig(seed=2), 0.0))


def test_pause_freezes_the_latent():
    walker = Walker(WalkConfig(mode="drift", seed=3))
    for i in range(10):
        walker.advance(i / 30)
    walker.pause(10 / 30)
    frozen = walker.advance(10 / 30)
    frozen_z = walker.latents_at([10 / 30])[0]
    for i in range(11, 40):
        state = walker.advance(i / 30)
        np.testing.assert_array_equal(walker.latents_at([i / 30])[0], frozen_z)
        assert state.walk_time == frozen.walk_time and state.paused
    assert walker.toggle_pause(40 / 30) is False
    resumed = walker.advance(41 / 30)
    assert resumed.walk_time == pytest.approx(frozen.walk_time + 1 / 30)
    assert np.linalg.norm(walker.latents_at([41 / 30])[0] - frozen_z) < 0.5


def test_pause_freezes_a_glide_too():
    walker = Walker(WalkConfig(seed=3, transition_seconds=1.0))
    walker.advance(0.0)
    walker.jump_to_seed(4, 0.5)
    walker.advance(0.8)
    walker.pause(0.8)
    held = walker.advance(5.0)
    assert walker.transitioning and held.transition == pytest.approx(0.3)


def test_loop_wraps_are_reported_once():
    config = WalkConfig(mode="loop", seconds_per_keyframe=0.5, loop_keyframes=2)
    walker = Walker(config)
    wrapped = [walker.advance(i / 10).wrapped for i in range(0, 31)]
    assert sum(wrapped) == 3 and walker.wraps == 3
    assert [i for i, w in enumerate(wrapped) if w] == [10, 20, 30]
    walker.next_keyframe(3.1)
    walker.set_loop_keyframes(3, 3.1)
    assert walker.advance(3.1).wrapped is False and walker.wraps == 3


def test_truncation_and_offset():
    config = WalkConfig(seed=2, latent_dim=10)
    walker = Walker(config)
    base = _shown(walker, 0.0)
    walker.set_truncation(0.5)
    np.testing.assert_allclose(_shown(walker, 0.0), 0.5 * base, rtol=1e-6)
    direction = np.zeros(10)
    direction[3] = 7.0
    walker.set_offset(direction, 2.0)
    shifted = _shown(walker, 0.0)
    np.testing.assert_allclose(shifted - 0.5 * base, 2.0 * np.eye(10)[3], atol=1e-6)
    walker.set_offset(None, 0.0)
    np.testing.assert_allclose(_shown(walker, 0.0), 0.5 * base, rtol=1e-6)
    with pytest.raises(ValueError, match="truncation.*3"):
        walker.set_truncation(3.0)
    with pytest.raises(ValueError, match=r"\(10,\)"):
        walker.set_offset(np.ones(4), 1.0)
    with pytest.raises(ValueError, match="non-zero"):
        walker.set_offset(np.zeros(10), 1.0)
    unit = offset_direction(5, 10)
    assert unit.dtype == np.float32 and np.linalg.norm(unit) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(unit, offset_direction(5, 10))
    assert not np.allclose(unit, offset_direction(6, 10))
    walker.set_offset(unit, 1.5)
    np.testing.assert_allclose(_shown(walker, 0.0), 0.5 * base + 1.5 * unit, atol=1e-6)


def test_transition_seconds_can_change_live():
    walker = Walker(WalkConfig(seed=1, transition_seconds=2.0))
    walker.advance(0.0)
    walker.set_transition_seconds(0.5)
    walker.jump_to_seed(2, 1.0)
    assert walker.advance(1.4).transition == pytest.approx(0.8)
    assert not walker.advance(1.5).transition < 1.0 and not walker.transitioning
    with pytest.raises(ValueError, match="transition_seconds.*90"):
        walker.set_transition_seconds(90)


def test_walker_state_fields():
    config = WalkConfig(mode="loop", seed=12, seconds_per_keyframe=1.0, loop_keyframes=4)
    walker = Walker(config)
    walker.advance(10.0)
    state = walker.advance(12.5)
    assert state.keyframe_index == 2 == walker.keyframe
    assert state.phase == pytest.approx(2.5 / 4) == walker.phase
    assert (state.seed, state.mode, state.speed, state.paused) == (12, "loop", 1.0, False)
    assert state.transition == 1.0 and walker.latents_at([12.5]).dtype == np.float32
    assert walker.advance(11.0).walk_time == pytest.approx(2.5)  # clock going backwards: no time passes
    with pytest.raises(ValueError, match="seed"):
        walker.jump_to_seed(-5, 13.0)
    with pytest.raises(ValueError, match="mode.*'zigzag'"):
        walker.set_mode("zigzag", 13.0)
