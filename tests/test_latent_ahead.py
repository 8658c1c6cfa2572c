"""`Walker.latents_at`: the latents the walk reaches at future times, read without moving or copying the walker.

The live piece asks for the frames it will show next this way. Before it existed, the piece deep-copied the
walker and advanced the copy through the times; these tests pin that the answer is the same, for random
steering sequences, and that asking changes nothing.
"""

import pickle

import numpy as np
import pytest

from installation.latent import EASINGS, MODES, WalkConfig, Walker, offset_direction, walk_batch

STEERING_CASES = range(60)

# What the pre-change walk gave for `_steered_walker(case)` at `_future_times(...)` (deep copy of the walker,
# `copy.advance(t).z` at each time; recorded at commit b5305d7). Each case ends in a different situation:
# 0 never advanced, 1 paused mid-glide from a frozen latent with an offset, 2 drift gliding from the old path,
# 4 loop gliding, 6 endless gliding from a frozen latent, 9 speed near 0 while gliding, 22 a glide ending
# between two of the times (with an offset), 57 endless gliding with an offset.
PRE_CHANGE = {
    0: [[0.7861898, -1.2299483, 0.96235347], [-0.40217757, -0.1741546, 0.02161521],
        [0.5568256, -0.7507928, -0.58991927], [1.0911111, -1.3539103, -1.3983072],
        [1.0911111, -1.3539103, -1.3983072]],
    1: [[-1.8712763, -0.09932436, 3.241044]] * 5,
    2: [[-0.058738887, -1.189847, 0.36397123], [-0.093784034, -0.29433236, 1.3885837],
        [-1.0418979, -1.8105408, -2.3751435], [0.4220108, 1.4554116, -1.4966074],
        [0.8561688, -1.6840656, 0.17997238]],
    4: [[-1.358921, 1.044623, -2.3764067], [-0.8867972, 2.3050945, -1.1342313],
        [-1.0913483, 2.8553867, -0.51316553], [-1.4831209, 3.2148452, -0.055174686],
        [-1.5237744, 2.9241674, -0.069673836]],
    6: [[-0.12735273, 0.559229, 0.8593905], [-0.300159, 0.56568104, 0.87800765],
        [-0.67113274, 0.36399603, 0.9475262], [-1.2400695, -0.38198292, 0.7025696],
        [-0.7229873, -0.750626, -0.9583693]],
    9: [[-1.3228043, 1.3158419, -0.55718046], [-0.61866075, 1.5042373, -1.0982094],
        [1.3481885, 0.66264766, -1.3203036], [1.3478597, 0.6632034, -1.3201687],
        [1.347089, 0.66450524, -1.3198524]],
    22: [[-0.2857787, 1.8038757, -0.71301484], [0.034695126, 2.1448228, -1.3838389],
         [1.3937503, 0.80394644, -0.84789157], [-1.0296673, 1.85187, -0.81019634],
         [-1.0296673, 1.85187, -0.81019634]],
    57: [[-0.990534, 0.33062518, -0.7094426], [-0.47408056, -2.497691, -0.6569101],
         [0.7546956, -2.4627209, -2.4502068], [2.4780731, -1.3203354, -2.934438],
         [2.912219, -1.382428, -2.7071493]],
}


def _steered_walker(case):
    """A walker after a seeded random run of steering calls at a jittery clock; returns it, its clock and the rng."""
    rng = np.random.default_rng(case)
    config = WalkConfig(
        mode=MODES[case % len(MODES)], seed=int(rng.integers(0, 1000)), latent_dim=3,
        seconds_per_keyframe=float(rng.choice([0.5, 1.0, 2.5])), loop_keyframes=int(rng.integers(2, 6)),
        easing=EASINGS[int(rng.integers(len(EASINGS)))], truncation=float(rng.uniform(0.5, 1.5)),
        transition_seconds=float(rng.choice([0.0, 0.4, 1.5, 1.5])), drift_smoothness=float(rng.uniform()),
    )
    walker = Walker(config, speed=float(rng.uniform(0.0, 3.0)))
    now = float(rng.uniform(0.0, 100.0))
    for _ in range(int(rng.integers(0, 14))):
        now += float(rng.uniform(-0.1, 0.5))  # now and then the clock steps back: no time passes
        action = int(rng.integers(0, 14))
        if action == 0:
            walker.set_speed(float(rng.uniform(0.0, 4.0)), now)
        elif action == 1:
            walker.toggle_pause(now)
        elif action == 2:
            walker.pause(now) if rng.uniform() < 0.5 else walker.resume(now)
        elif action == 3:
            walker.set_truncation(float(rng.uniform(0.0, 2.0)))
        elif action == 4:
            walker.set_transition_seconds(float(rng.choice([0.0, 0.4, 1.5])))
        elif action == 5:
            amount = float(rng.uniform(-2.0, 2.0))
            walker.set_offset(offset_direction(int(rng.integers(0, 50)), 3) if amount > -1.0 else None, amount)
        elif action == 6:
            walker.jump_to_seed(int(rng.integers(0, 1000)), now)
        elif action == 7:
            walker.jump_random(now)
        elif action == 8:
            walker.jump_to_keyframe(int(rng.integers(0, 1000)), int(rng.integers(-3, 9)), now)
        elif action == 9:
            walker.next_keyframe(now)
        elif action == 10:
            walker.previous_keyframe(now)
        elif action == 11:
            walker.set_mode(MODES[int(rng.integers(len(MODES)))], now)
        elif action == 12:
            walker.set_loop_keyframes(int(rng.integers(2, 6)), now)
        if rng.uniform() < 0.7:
            walker.advance(now)
    return walker, now, rng


def _future_times(now, rng, count=5):
    """Times a display would ask for, now and then one a little behind the one before."""
    return now + np.cumsum(rng.uniform(-0.05, 0.8, count))


def _stepwise(walker, times):
    """The latents the walker shows when it really advances to each time in turn (it moves)."""
    shown = []
    for now in times:
        walker.advance(now)
        shown.append(walker.latents_at([now])[0])
    return np.stack(shown)


@pytest.mark.parametrize("case", sorted(PRE_CHANGE))
def test_latents_at_gives_what_the_walker_copy_gave_before(case):
    walker, now, rng = _steered_walker(case)
    expected = np.array(PRE_CHANGE[case], dtype=np.float32)
    np.testing.assert_allclose(walker.latents_at(_future_times(now, rng)), expected, rtol=0, atol=2e-6)


def test_latents_at_equals_advancing_step_by_step():
    gliding = 0
    for case in STEERING_CASES:
        walker, now, rng = _steered_walker(case)
        times = _future_times(now, rng)
        ahead = walker.latents_at(times)
        gliding += walker.transitioning
        # The same steering replayed drives a second walker, which then really advances through the times.
        twin, _, _ = _steered_walker(case)
        np.testing.assert_array_equal(ahead, _stepwise(twin, times), err_msg=f"steering case {case}")
        assert ahead.dtype == np.float32 and ahead.shape == (len(times), 3)
    assert gliding > 10  # the cases cover glides running at the time of asking


def test_latents_at_changes_nothing():
    for case in range(0, 60, 3):
        walker, now, rng = _steered_walker(case)
        before = pickle.dumps(walker)
        times = _future_times(now, rng)
        first = walker.latents_at(times)
        assert pickle.dumps(walker) == before, f"steering case {case}"
        np.testing.assert_array_equal(walker.latents_at(times), first)
        # And what follows is what an unasked twin does.
        twin, _, _ = _steered_walker(case)
        np.testing.assert_array_equal(_stepwise(walker, times), _stepwise(twin, times))
        assert vars(walker.state()) == vars(twin.state())


def test_latents_at_follows_the_path_at_the_walkers_speed():
    config = WalkConfig(mode="loop", seed=4, latent_dim=6, seconds_per_keyframe=1.5, loop_keyframes=3)
    walker = Walker(config, speed=2.0)
    walker.advance(10.0)
    walker.advance(11.0)
    times = 11.0 + np.array([0.0, 0.25, 1.0, 4.0])
    np.testing.assert_allclose(walker.latents_at(times), walk_batch(config, 2.0 + 2.0 * (times - 11.0)), atol=1e-6)
    walker.pause(11.0)
    np.testing.assert_array_equal(walker.latents_at(times), walk_batch(config, [2.0] * 4))


def test_latents_at_refuses_bad_times():
    walker = Walker(WalkConfig(latent_dim=5))
    assert walker.latents_at([]).shape == (0, 5)
    with pytest.raises(ValueError, match="1-D"):
        walker.latents_at([[1.0, 2.0]])
    with pytest.raises(ValueError, match="finite"):
        walker.latents_at([1.0, float("nan")])
