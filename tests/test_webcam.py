"""Webcam: signal math, mapping, config validation, and the capture thread on real generated video files."""

import functools
import logging
import math
import time

import cv2
import numpy as np
import pytest
from conftest import wait_until as shared_wait_until

from installation.controls import PARAMETERS, ControlState
from installation.webcam import (
    DEFAULT_MAPPING,
    Analyzer,
    Mapped,
    Mapping,
    Rule,
    Signals,
    VisitorState,
    Webcam,
    WebcamConfig,
    apply_mapping,
    brightness,
    describe_source,
    draw_preview,
    draw_webcam_preview,
    find_haar_cascade,
    load_face_detector,
    map_value,
    motion_energy,
    open_capture,
    parse_source,
    smooth,
    track_visitor,
)

SPEED_DEFAULT = PARAMETERS["speed"].default
WIDTH, HEIGHT = 160, 120


# Helpers -----------------------------------------------------------------------------------------


wait_until = functools.partial(shared_wait_until, timeout=4.0, interval=0.02)

def write_video(path, frames, fps: float = 30.0):
    """Write BGR uint8 frames as MJPG in an .avi, read back by the real cv2.VideoCapture."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return str(path)


def moving_square_frames(count: int = 30):
    """A bright 60 px square jumping 24 px to the right each frame on a dark background."""
    for index in range(count):
        frame = np.full((HEIGHT, WIDTH, 3), 20, np.uint8)
        left = (index * 24) % (WIDTH - 60)
        frame[30:90, left:left + 60] = 255
        yield frame


def static_frames(count: int = 20, level: int = 200, seed: int = 0):
    """The same bright frame repeated, with +-2 levels of noise (below the noise floor)."""
    rng = np.random.default_rng(seed)
    base = np.full((HEIGHT, WIDTH, 3), level, np.int16)
    for _ in range(count):
        yield np.clip(base + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    return {
        "motion": write_video(root / "motion.avi", moving_square_frames(30)),
        "static": write_video(root / "static.avi", static_frames(20)),
        "short": write_video(root / "short.avi", static_frames(8, level=90), fps=60.0),
    }


def fast(**overrides) -> WebcamConfig:
    """A config for tests: fast analysis and reconnects, no face detection in the mapping."""
    settings = dict(fps=30.0, smoothing=0.5, reconnect_initial=0.02, reconnect_max=0.2,
                    mapping=Mapping((DEFAULT_MAPPING.rules[0], DEFAULT_MAPPING.rules[1])))
    settings.update(overrides)
    return WebcamConfig(**settings)


@pytest.fixture
def cameras():
    """Webcams started by a test; each is stopped afterwards and must stop within about a second."""
    started = []

    def make(*args, **kwargs):
        camera = Webcam(*args, **kwargs)
        started.append(camera)
        return camera.start()

    yield make
    for camera in started:
        begin = time.monotonic()
        camera.stop()
        assert time.monotonic() - begin < 1.2
        assert not camera.alive


# Pure signal functions ---------------------------------------------------------------------------


def test_motion_energy_is_zero_for_identical_frames_and_noise_below_the_floor():
    gray = np.full((12, 16), 100, np.uint8)
    assert motion_energy(None, gray) == 0.0
    assert motion_energy(gray, gray) == 0.0
    noisy = gray + np.random.default_rng(0).integers(0, 5, gray.shape).astype(np.uint8)
    assert motion_energy(gray, noisy, noise_floor=8) == 0.0
    assert motion_energy(gray, noisy, noise_floor=0) > 0.0


def test_motion_energy_is_the_normalised_mean_absolute_difference():
    black = np.zeros((10, 10), np.uint8)
    white = np.full((10, 10), 255, np.uint8)
    assert motion_energy(black, white) == pytest.approx(1.0)
    assert motion_energy(white, black) == pytest.approx(1.0)
    half = black.copy()
    half[:5] = 255
    assert motion_energy(black, half) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        motion_energy(black, np.zeros((5, 5), np.uint8))


def test_brightness_and_smooth():
    assert brightness(np.zeros((4, 4), np.uint8)) == 0.0
    assert brightness(np.full((4, 4), 255, np.uint8)) == 1.0
    assert brightness(np.full((4, 4), 51, np.uint8)) == pytest.approx(0.2)
    assert smooth(None, 0.7, 0.9) == 0.7
    assert smooth(0.2, 0.8, 0.0) == 0.8
    assert smooth(0.2, 0.8, 0.5) == pytest.approx(0.5)
    assert smooth(0.0, 1.0, 0.75) == pytest.approx(0.25)
    for bad in (1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="smoothing factor"):
            smooth(0.0, 1.0, bad)


def test_new_visitor_fires_on_the_edge_after_enough_absence_only():
    presences = [0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 2, 2, 0]
    state, edges = VisitorState(), []
    for second, presence in enumerate(presences):
        state, edge = track_visitor(state, presence, float(second), absence_seconds=5.0)
        edges.append(edge)
    # t=2 the first visitor; t=5 returns after 1 s of a lost face (not new); t=12 after 7 s of absence.
    assert [index for index, edge in enumerate(edges) if edge] == [2, 12]
    state, edge = track_visitor(VisitorState(), 1, 0.0, absence_seconds=0.0)
    assert edge and state.present


# Mapping -------------------------------------------------------------------------------------------


def test_default_mapping_clamps_and_curves():
    motion, light = DEFAULT_MAPPING.rules[0], DEFAULT_MAPPING.rules[1]
    assert (motion.signal, motion.to, light.signal, light.to) == ("motion", "speed", "brightness", "truncation")
    assert map_value(motion, -1.0) == pytest.approx(0.5)
    assert map_value(motion, 0.0) == pytest.approx(0.5)
    assert map_value(motion, 0.2) == pytest.approx(3.0)
    assert map_value(motion, 5.0) == pytest.approx(3.0)
    # ease-out (t ** 0.5): a quarter of the input range gives half of the output range.
    assert map_value(motion, 0.05) == pytest.approx(1.75)
    assert map_value(light, 0.0) == pytest.approx(0.6)
    assert map_value(light, 0.45) == pytest.approx(0.9)
    assert map_value(light, 1.0) == pytest.approx(1.2)


def test_curves_reversed_ranges_and_int_parameters():
    linear = Rule("motion", "speed", (0.0, 1.0), (0.0, 10.0))
    ease_in = Rule("motion", "speed", (0.0, 1.0), (0.0, 10.0), "ease-in")
    smoothstep = Rule("motion", "speed", (0.0, 1.0), (0.0, 10.0), "smoothstep")
    inverted = Rule("brightness", "blend", (0.0, 1.0), (1.0, 0.0))
    assert map_value(linear, 0.25) == pytest.approx(2.5)
    assert map_value(ease_in, 0.5) == pytest.approx(2.5)
    assert map_value(smoothstep, 0.25) == pytest.approx(10 * 0.15625)
    assert map_value(inverted, 0.25) == pytest.approx(0.75)
    counted = Mapping((Rule("presence", "loop_keyframes", (0, 4), (2, 10)),))
    assert apply_mapping(Signals(presence=1), counted).values == {"loop_keyframes": 4}
    assert isinstance(apply_mapping(Signals(presence=1), counted).values["loop_keyframes"], int)


def test_apply_mapping_values_triggers_and_missing_presence():
    values, triggers = apply_mapping(Signals(motion=0.2, brightness=0.15, new_visitor=True), DEFAULT_MAPPING)
    assert values == {"speed": pytest.approx(3.0), "truncation": pytest.approx(0.6)}
    assert triggers == ("jump",)
    assert apply_mapping(Signals(), DEFAULT_MAPPING).triggers == ()
    with_presence = Mapping((Rule("presence", "blend", (0, 2), (0.0, 1.0)),))
    assert apply_mapping(Signals(presence=None), with_presence).values == {}
    assert apply_mapping(Signals(presence=1), with_presence).values == {"blend": pytest.approx(0.5)}


def test_mapping_from_dict_round_trips_and_defaults_out_to_the_parameter_range():
    table = {"motion": {"to": "speed", "in": [0, 0.2], "out": [0.5, 3.0], "curve": "ease-out"},
             "brightness": {"to": "truncation", "in": [0.15, 0.75], "out": [0.6, 1.2]},
             "new_visitor": {"to": "jump"}}
    assert Mapping.from_dict(table) == DEFAULT_MAPPING
    assert Mapping.from_dict(DEFAULT_MAPPING.to_dict()) == DEFAULT_MAPPING
    several = Mapping.from_dict({"motion": [{"to": "speed"}, {"to": "blend", "curve": 2}], "presence": False})
    assert [(r.to, r.out_range, r.curve) for r in several.rules] == [("speed", (0.0, 10.0), 1.0),
                                                                    ("blend", (0.0, 1.0), 2.0)]
    assert Mapping.from_dict({}).rules == ()


@pytest.mark.parametrize("table, message", [
    ({"motoin": {"to": "speed"}}, "unknown signal 'motoin'"),
    ({"motion": {"to": "speed", "inn": [0, 1]}}, "motion: unknown key 'inn'"),
    ({"motion": {"in": [0, 1]}}, "motion: missing key 'to'"),
    ({"motion": {"to": "sped"}}, "motion.to: unknown parameter 'sped'"),
    ({"motion": {"to": "speed", "out": [0.5, 12]}}, r"motion.out: 12 is outside speed's range 0..10"),
    ({"motion": {"to": "speed", "in": [0.2, 0.2]}}, r"motion.in must be \[low, high\]"),
    ({"motion": {"to": "speed", "in": [0, "a"]}}, r"motion.in must be two finite numbers"),
    ({"motion": {"to": "speed", "curve": "wobbly"}}, "motion.curve must be one of"),
    ({"motion": {"to": "speed", "curve": -1}}, "motion.curve"),
    ({"motion": {"to": "jump"}}, "motion.to: motion needs a float or int parameter"),
    ({"brightness": {"to": "pause"}}, "brightness.to: brightness needs a float or int"),
    ({"new_visitor": {"to": "speed"}}, "new_visitor.to: new_visitor is an event and needs a trigger"),
    ({"new_visitor": {"to": "jump", "out": [0, 1]}}, "new_visitor: unknown key 'out'; expected to"),
    ({"motion": {"to": "speed"}, "brightness": {"to": "speed"}}, "speed is driven by both motion and brightness"),
    ({"motion": "speed"}, "motion must be a table like"),
    ("motion=speed", "webcam mapping must be a table"),
])
def test_mapping_parse_errors_name_the_bad_key(table, message):
    with pytest.raises(ValueError, match=message):
        Mapping.from_dict(table)


# Configuration ---------------------------------------------------------------------------------------


def test_config_validates_values_naming_them_and_their_range():
    assert WebcamConfig().source == 0
    assert WebcamConfig(source="2").source == 2
    assert WebcamConfig(source=" None ").source is None and not WebcamConfig(source="none").enabled
    assert WebcamConfig(source="rtsp://cam.local/live").source == "rtsp://cam.local/live"
    cases = [
        (dict(fps=0), r"webcam fps must be a number in 1..60, got 0"),
        (dict(fps=61.0), r"1..60"),
        (dict(smoothing=1.0), r"webcam smoothing must be a number in 0..1 with 1 excluded"),
        (dict(smoothing=-0.5), r"webcam smoothing"),
        (dict(analysis_width=8), r"webcam analysis_width must be an integer in 16..1280, got 8"),
        (dict(face_every=0), r"webcam face_every must be an integer in 1..1000"),
        (dict(source=-1), r"webcam source \(device index\) must be an integer in 0..10000, got -1"),
        (dict(source=""), r"webcam source must be a device index"),
        (dict(source=True), r"webcam source must be a device index"),
        (dict(reconnect_initial=2.0, reconnect_max=1.0), r"reconnect_max \(1 s\) must be at least"),
        (dict(loop_file="yes"), r"webcam loop_file must be true or false"),
        (dict(preview_corner="middle"), r"preview_corner must be one of top-left"),
        (dict(mapping={"motion": {"to": "nope"}}), r"unknown parameter 'nope'"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            WebcamConfig(**overrides)
    with pytest.raises(ValueError, match="unknown setting 'fsp'"):
        WebcamConfig.from_dict({"fsp": 10})
    parsed = WebcamConfig.from_dict({"source": "none", "fps": 10, "mapping": {"motion": {"to": "speed"}}})
    assert parsed.fps == 10.0 and parsed.mapping.rules[0].to == "speed"


def test_mapping_targets_must_exist_in_the_control_state():
    only_speed = ControlState([PARAMETERS["speed"]])
    with pytest.raises(ValueError, match="brightness.to: the control state has no parameter 'truncation'"):
        Webcam(only_speed, WebcamConfig(source="none"))


def test_sources_are_classified_and_passwords_hidden_in_logs():
    assert parse_source(3) == 3 and parse_source("off") is None
    assert describe_source(0) == "camera 0"
    assert describe_source("/dev/video2") == "camera /dev/video2"
    assert describe_source("demo.avi") == "video file demo.avi"
    assert describe_source("rtsp://user:secret@cam/stream") == "stream rtsp://***@cam/stream"


# Face detection ------------------------------------------------------------------------------------


def test_bundled_face_detector_loads_or_is_reported_unavailable():
    detector, description = load_face_detector()
    if hasattr(cv2, "CascadeClassifier") and find_haar_cascade() is not None:
        assert detector is not None and "Haar" in description
        assert detector(np.zeros((120, 160, 3), np.uint8)) == 0
    else:
        # OpenCV 5 ships neither CascadeClassifier nor the cascade files.
        assert detector is None
        assert "face_model" in description or "not found" in description


def test_explicit_face_models_that_cannot_work_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="face_model .*missing.onnx does not exist"):
        load_face_detector(str(tmp_path / "missing.onnx"))
    other = tmp_path / "faces.txt"
    other.write_text("not a model")
    with pytest.raises(ValueError, match="YuNet .onnx model or a Haar cascade .xml"):
        load_face_detector(str(other))
    garbage = tmp_path / "faces.onnx"
    garbage.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="faces.onnx"):
        load_face_detector(str(garbage))


def test_presence_unavailable_is_one_warning_and_the_webcam_runs_without_it(videos, caplog, cameras):
    caplog.set_level(logging.WARNING, logger="installation.webcam")
    detector_missing = load_face_detector()[0] is None
    # The default mapping uses new_visitor, so the webcam asks for the bundled face detector.
    camera = cameras(ControlState(), WebcamConfig(source=videos["static"], fps=30.0))
    assert wait_until(lambda: camera.stats().analysed >= 3)
    warnings = [r for r in caplog.records if "presence and new-visitor detection disabled" in r.message]
    if detector_missing:
        assert len(warnings) == 1
        assert camera.signals().presence is None
    else:
        assert not warnings and camera.signals().presence == 0


def test_new_visitor_through_the_thread_fires_jump(videos, cameras):
    counts = iter([0, 0, 0, 1])
    detector = lambda image: next(counts, 1)  # noqa: E731 - a one-line fake detector.
    controls = ControlState()
    camera = cameras(controls, fast(source=videos["static"], face_every=1, mapping=DEFAULT_MAPPING),
                     face_detector=detector)
    assert wait_until(lambda: camera.stats().visitors >= 1)
    assert controls.drain_triggers() == {"jump": 1}
    time.sleep(0.2)
    assert camera.stats().visitors == 1 and controls.drain_triggers() == {}
    assert camera.signals().presence == 1


# The capture thread on real video files --------------------------------------------------------


def test_motion_in_a_video_raises_speed_and_dark_frames_lower_truncation(videos, cameras):
    controls = ControlState()
    camera = cameras(controls, fast(source=videos["motion"]))
    assert wait_until(lambda: controls.get("speed") > 1.5)
    assert controls.record("speed").source == "webcam"
    assert camera.signals().motion > 0.05
    assert wait_until(lambda: controls.get("truncation") < 0.8)  # Mostly dark background.
    assert camera.alive and camera.errors == 0


def test_a_static_video_does_not_raise_speed_and_keeps_the_version_calm(videos, cameras):
    controls = ControlState()
    camera = cameras(controls, fast(source=videos["static"]))
    assert wait_until(lambda: camera.stats().analysed >= 12)
    assert controls.get("speed") <= SPEED_DEFAULT + 0.05
    assert camera.signals().motion < 0.01
    # A bright frame (200/255) maps to the top of the truncation range.
    assert wait_until(lambda: controls.get("truncation") > 1.15)
    settled = controls.version
    analysed = camera.stats().analysed
    assert wait_until(lambda: camera.stats().analysed >= analysed + 8)
    assert controls.version == settled
    assert camera.stats().writes <= 6


def test_a_video_file_that_ends_is_reopened_and_keeps_counting(videos, cameras):
    camera = cameras(ControlState(), fast(source=videos["short"]))  # 8 frames at 60 fps.
    assert wait_until(lambda: camera.frames > 3 * 8)
    stats = camera.stats()
    assert stats.loops >= 2 and stats.reconnects == 0 and camera.alive


def test_without_loop_file_the_thread_idles_at_the_end(videos, cameras):
    controls = ControlState()
    camera = cameras(controls, fast(source=videos["short"], loop_file=False))
    assert wait_until(lambda: camera.frames == 8)
    time.sleep(0.3)
    assert camera.frames == 8 and camera.alive and camera.reconnects == 0
    # The webcam hands its parameters back to their defaults when its source is gone.
    assert controls.get("speed") == SPEED_DEFAULT


@pytest.mark.parametrize("source", [99, "missing/no_such_video.avi"])
def test_an_unopenable_source_is_retried_with_backoff_and_nothing_stops(source, tmp_path, caplog, cameras):
    caplog.set_level(logging.WARNING, logger="installation.webcam")
    attempts = []

    def recording_factory(config):
        attempts.append(time.monotonic())
        return open_capture(config)  # The real cv2.VideoCapture.

    camera = cameras(ControlState(), fast(source=source, reconnect_initial=0.02, reconnect_max=0.16),
                     capture_factory=recording_factory)
    loops = 0
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and camera.reconnects < 4:
        loops += 1  # The test's own loop keeps running while the camera thread retries.
        time.sleep(0.01)
    assert camera.reconnects >= 4 and camera.alive and loops > 10
    assert "cannot open" in camera.last_error
    gaps = np.diff(attempts)
    assert gaps[2] > 1.5 * gaps[0]  # Exponential back-off.
    assert camera.stats().errors == 0
    opened = [r for r in caplog.records if "cannot open" in r.message]
    assert len(opened) == 1  # Rate-limited: one line per interval, however many attempts.


class FlakyCapture:
    """Delivers black frames, but raises like a broken driver on the third grab."""

    def __init__(self, fail_at: int = 3):
        self.grabs, self.fail_at = 0, fail_at

    def isOpened(self):
        return True

    def get(self, prop):
        return 0.0

    def grab(self):
        self.grabs += 1
        if self.grabs == self.fail_at:
            raise cv2.error("simulated driver failure")
        time.sleep(0.01)
        return True

    def retrieve(self):
        return True, np.zeros((HEIGHT, WIDTH, 3), np.uint8)

    def release(self):
        pass


def test_exceptions_are_logged_counted_and_followed_by_a_reconnect(cameras, caplog):
    caplog.set_level(logging.ERROR, logger="installation.webcam")
    camera = cameras(ControlState(), fast(source=0), capture_factory=lambda config: FlakyCapture())
    assert wait_until(lambda: camera.errors >= 2 and camera.reconnects >= 2)
    assert camera.alive and "simulated driver failure" in camera.last_error
    assert any("simulated driver failure" in r.getMessage() for r in caplog.records)


class Fatal(BaseException):
    """Something that even the last-resort handler does not catch, to kill the thread."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_ensure_alive_restarts_a_dead_thread(cameras):
    calls = []

    def factory(config):
        calls.append(1)
        if len(calls) == 1:
            raise Fatal()
        return FlakyCapture(fail_at=10**9)

    camera = cameras(ControlState(), fast(source=0), capture_factory=factory)
    assert wait_until(lambda: not camera.alive)
    assert camera.ensure_alive() is True
    assert camera.alive and camera.stats().restarts == 1
    assert wait_until(lambda: camera.stats().analysed > 0)
    assert camera.ensure_alive() is False
    camera.restart()
    assert camera.alive and len(calls) == 3


def test_a_disabled_source_starts_nothing():
    camera = Webcam(ControlState(), WebcamConfig(source="none")).start()
    assert not camera.alive and camera.ensure_alive() is False
    camera.stop()


def test_an_osc_write_holds_speed_against_the_webcam_until_the_hold_expires(videos, cameras):
    controls = ControlState(hold_seconds=0.8)
    controls.set("speed", 7.0, "osc")
    camera = cameras(controls, fast(source=videos["motion"]))
    assert wait_until(lambda: camera.stats().held > 0)
    assert controls.get("speed") == 7.0 and controls.record("speed").source == "osc"
    assert controls.held_writes > 0
    # Once the hold expires the webcam takes over by itself.
    assert wait_until(lambda: controls.record("speed").source == "webcam")
    assert 1.5 < controls.get("speed") <= 3.0


def test_only_meaningful_changes_are_written_and_range_ends_are_reached_exactly():
    controls = ControlState()
    camera = Webcam(controls, fast(source=0), face_detector=None)  # Not started: _publish alone.
    camera._publish(Mapped({"speed": 1.01, "truncation": 1.0}, ()), 0.0)  # Under 1% of 0.5..3.0.
    assert controls.version == 0
    camera._publish(Mapped({"speed": 2.99}, ()), 0.0)
    camera._publish(Mapped({"speed": 2.995}, ()), 0.0)
    assert controls.get("speed") == 2.99 and controls.version == 1
    camera._publish(Mapped({"speed": 3.0}, ()), 0.0)  # The end of the output range is written exactly.
    assert controls.get("speed") == 3.0 and controls.version == 2
    camera._publish(Mapped({}, ("jump",)), 0.0)
    assert controls.drain_triggers() == {"jump": 1} and camera.stats().triggers == 1


# Preview --------------------------------------------------------------------------------------------


def test_preview_frames_are_small_rgb_and_drawn_into_a_corner(videos, cameras):
    camera = cameras(ControlState(), fast(source=videos["static"], preview=True, preview_width=64))
    assert wait_until(lambda: camera.preview() is not None)
    preview = camera.preview()
    assert preview.shape == (48, 64, 3) and preview.dtype == np.uint8
    assert abs(int(preview.mean()) - 200) < 8

    import pygame

    surface = pygame.Surface((320, 240))
    surface.fill((0, 0, 0))
    marked = np.zeros((10, 20, 3), np.uint8)
    marked[:, :10] = (255, 0, 0)  # Left half red, right half blue: checks orientation.
    marked[:, 10:] = (0, 0, 255)
    rect = draw_preview(surface, marked, "bottom-right", size=40, margin=5)
    assert (rect.width, rect.height, rect.right, rect.bottom) == (40, 20, 315, 235)
    assert tuple(surface.get_at((rect.left + 2, rect.top + 2)))[:3] == (255, 0, 0)
    assert tuple(surface.get_at((rect.right - 3, rect.bottom - 3)))[:3] == (0, 0, 255)
    top_left = draw_preview(surface, marked, "top-left", margin=0)
    assert (top_left.left, top_left.top, top_left.width) == (0, 0, 20)
    assert draw_preview(surface, None) is None
    with pytest.raises(ValueError, match="corner must be one of"):
        draw_preview(surface, marked, "centre")


def test_preview_is_mirrored_like_a_selfie():
    analyzer = Analyzer(WebcamConfig(preview_width=16))
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[:, : WIDTH // 2] = (0, 0, 255)  # Red on the left in BGR.
    preview = analyzer.preview(frame)
    assert tuple(preview[0, -1]) == (255, 0, 0) and tuple(preview[0, 0]) == (0, 0, 0)


@pytest.mark.parametrize("corner", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_the_preview_lands_in_the_configured_corner(videos, cameras, corner):
    import pygame

    camera = cameras(ControlState(), fast(source=videos["static"], preview=True, preview_width=64,
                                          preview_corner=corner))
    assert wait_until(lambda: camera.preview() is not None)
    surface = pygame.Surface((320, 240))
    surface.fill((0, 0, 0))
    rect = draw_webcam_preview(surface, camera.preview(), camera.config.preview_corner)
    # Sized for a 240-line surface: 71 px wide (320 at 1080 lines), 8 px from the edges.
    assert (rect.width, rect.height) == (71, 53)
    inside = {"top-left": (8, 8), "top-right": (312 - 1, 8), "bottom-left": (8, 232 - 1),
              "bottom-right": (312 - 1, 232 - 1)}
    for name, (x, y) in inside.items():
        level = surface.get_at((x, y))[0]
        if name == corner:
            assert abs(level - 200) < 12, f"{corner}: the preview's gray 200 missing at {(x, y)}, got {level}"
        else:
            assert level == 0, f"{corner}: the {name} corner at {(x, y)} was drawn on ({level})"


def test_no_preview_draws_nothing(videos, cameras):
    import pygame

    camera = cameras(ControlState(), fast(source=videos["static"], preview=False, preview_corner="top-left"))
    assert wait_until(lambda: camera.stats().analysed > 0)
    surface = pygame.Surface((320, 240))
    surface.fill((0, 0, 0))
    assert draw_webcam_preview(surface, camera.preview(), camera.config.preview_corner) is None
    assert pygame.transform.average_color(surface)[:3] == (0, 0, 0)
