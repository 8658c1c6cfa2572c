"""The render path, the render worker and the live loop under the dummy video driver."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from installation.app import Piece
from installation.compositor import pick_frame
from installation.config import RuntimeConfig
from installation.worker import FrameRequest, RenderWorker
from models.bundle import load_bundle
from models.render import Renderer

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "SDL_VIDEODRIVER": "dummy"}


@pytest.fixture(scope="module")
def renderer(tiny_bundle):
    return Renderer(load_bundle(tiny_bundle), max_batch=3)


def test_render_shapes_dtype_and_determinism(renderer):
    latents = np.random.default_rng(0).standard_normal((5, 100)).astype(np.float32)
    frames = renderer.render(latents)
    assert frames.shape == (5, 256, 256, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, renderer.render(latents))
    assert np.array_equal(frames[3:4], renderer.render(latents[3]))  # batching never changes a frame
    small = renderer.render(latents, upscale=False)
    assert small.shape == (5, 64, 64, 3)
    with pytest.raises(ValueError, match="latent_dim 100"):
        renderer.render(np.zeros((1, 7)))


def test_worker_keeps_only_the_newest_result_and_drops_replaced_requests():
    release = threading.Event()
    calls = []

    def slow_render(latents, upscale):
        calls.append(latents[0, 0])
        release.wait(5)
        return np.full((len(latents), 4, 4, 3), int(latents[0, 0]), np.uint8)

    worker = RenderWorker(slow_render).start()
    try:
        for value in range(1, 6):
            worker.submit(FrameRequest(0, np.array([0.0]), np.full((1, 2), value, np.float32)))
            time.sleep(0.02)
        release.set()
        deadline = time.monotonic() + 5
        while (worker.latest() is None or worker.latest().frames[0, 0, 0, 0] != 5) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.latest().frames[0, 0, 0, 0] == 5
        assert calls == [1, 5]  # 2, 3 and 4 were replaced before the worker could take them
        assert worker.dropped_requests == 3
        release.clear()  # the stamp-1 render now blocks, so what `latest` says meanwhile is determined
        worker.submit(FrameRequest(1, np.array([0.0]), np.full((1, 2), 9, np.float32)))
        assert worker.latest() is None  # the stamp-0 result is stale from the moment stamp 1 is asked for
        release.set()
        deadline = time.monotonic() + 5
        while worker.latest() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.latest().stamp == 1 and worker.latest().frames[0, 0, 0, 0] == 9
    finally:
        worker.stop()


def test_pick_frame_follows_the_display_clock():
    class Result:
        times = np.array([1.0, 1.1, 1.2])

    assert [pick_frame(Result, t) for t in (0.5, 1.05, 1.15, 9.0)] == [0, 0, 1, 2]


def test_a_slow_renderer_does_not_slow_the_display_loop(tiny_bundle):
    class SlowRenderer(Renderer):
        def render(self, latents, upscale=True):
            time.sleep(0.25)
            return super().render(latents, upscale)

    bundle = load_bundle(tiny_bundle)
    piece = Piece.from_config(RuntimeConfig(model=str(tiny_bundle), fps=30, frames=45, osc=False), bundle=bundle,
                              renderer=SlowRenderer(bundle))
    piece.run()
    assert piece.frames_shown == 45
    rate = 44 / (piece.last_frame_at - piece.first_frame_at)
    assert rate > 20  # paced by the display (30 fps target), not by the renderer's 4 frames a second
    # The display kept flipping while renders took a quarter of a second each: far fewer distinct pictures than
    # flips, and no more than the renderer could have made in that time (batches show several frames each).
    seconds = piece.last_frame_at - piece.first_frame_at
    assert 1 <= piece.worker.renders <= seconds / 0.25 + 2
    assert piece.worker.renders < piece.frames_shown / 3


def run_app(*args, timeout=120):
    return subprocess.run([sys.executable, "run_installation.py", "--no-osc", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_real_loop_runs_and_writes_a_screenshot(tiny_bundle, tmp_path):
    shot = tmp_path / "screen.png"
    result = run_app("--model", str(tiny_bundle), "--frames", "20", "--windowed", "--width", "320",
                     "--height", "200", "--screenshot", str(shot), "--show-fps")
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(shot))
    assert image.shape == (200, 320, 3)
    assert image[120:, :50].max() == 0 and image[:, -50:].max() == 0  # letterbox bars (overlay is top-left)
    assert image[:, 60:260].std() > 0  # a real frame between them
    assert "bundle" in result.stderr and "fps" in result.stderr


def test_sigterm_exits_cleanly_within_a_second(tiny_bundle):
    process = subprocess.Popen([sys.executable, "run_installation.py", "--no-osc", "--model", str(tiny_bundle),
                                "--windowed", "--stats-every", "1"], cwd=ROOT, env=ENV, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 90
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if "fps displayed" in line:
            break
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    assert time.monotonic() - signalled < 1.0
    assert process.returncode == 0, "".join(lines)


@pytest.mark.parametrize("args, message", [
    (["--fps", "0"], "fps = 0.0 is outside the allowed range 1.0..240.0"),
    (["--mode", "spiral"], "mode = 'spiral' is not one of endless, loop, drift"),
    (["--model", "/nonexistent/bundle"], "/nonexistent/bundle does not exist"),
])
def test_bad_settings_are_one_clear_line(args, message):
    result = run_app(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_config_file_flags_override_and_print_config(tmp_path):
    config = tmp_path / "piece.toml"
    config.write_text('[walk]\nmode = "loop"\nspeed = 2\n[display]\nfps = 24\n')
    result = run_app("--config", str(config), "--fps", "50", "--print-config")
    assert result.returncode == 0, result.stderr
    assert 'mode = "loop"' in result.stdout and "speed = 2.0" in result.stdout and "fps = 50.0" in result.stdout
    config.write_text("[walk]\nsped = 2\n")
    result = run_app("--config", str(config))
    assert result.returncode == 2 and "unknown setting [walk] sped" in result.stderr


def test_corrupt_bundle_names_the_file(tiny_bundle, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "generator.keras").write_bytes(b"not a zip")
    result = run_app("--model", str(broken))
    assert result.returncode == 2
    assert "generator.keras is corrupt or truncated" in result.stderr and "Traceback" not in result.stderr


def test_no_display_is_one_clear_line(tiny_bundle):
    env = {**ENV, "SDL_VIDEODRIVER": "x11", "DISPLAY": ":99"}
    result = subprocess.run([sys.executable, "run_installation.py", "--no-osc", "--model", str(tiny_bundle)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "cannot open the display DISPLAY=':99'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("fit, size", [("letterbox", (300, 200)), ("fill", (200, 300))])
def test_the_screen_shows_frames_in_rgb_order_and_keeps_the_aspect(tmp_path, fit, size):
    from installation.display import Display

    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:, :32] = (220, 30, 10)  # red on the left
    frame[:, 32:] = (10, 40, 230)  # blue on the right
    display = Display(windowed=True, size=size, fit=fit)
    try:
        display.show(frame)
        shot = np.asarray(Image.open(display.screenshot(tmp_path / "screen.png")).convert("RGB")).astype(int)
    finally:
        display.close()
    height, width = shot.shape[:2]
    left, right = shot[height // 2, width // 2 - 20], shot[height // 2, width // 2 + 20]
    assert abs(left - (220, 30, 10)).max() <= 4 and abs(right - (10, 40, 230)).max() <= 4
    if fit == "letterbox":
        assert shot[:, :40].max() == 0 and shot[:, -40:].max() == 0  # bars beside a square frame
    else:
        # The frame covers the whole screen (cropped at the sides): no bars, colour right to the corners.
        assert abs(shot[0, 0] - (220, 30, 10)).max() <= 4 and abs(shot[-1, -1] - (10, 40, 230)).max() <= 4
