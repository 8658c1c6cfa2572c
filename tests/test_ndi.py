"""NDI video out, received by a real NDI receiver in this process (the same binding, ndi-python), found by name
with the loopback address given as an extra search IP, so nothing leaves the machine and no mDNS is needed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_until
from PIL import Image

from installation.ndi import NdiOutput, NdiSwitch, check_source_name, frame_rate

ROOT = Path(__file__).resolve().parents[1]


def binding():
    """NDIlib, or a skip on a developer machine without the extra (CI installs it through .[test])."""
    try:
        import NDIlib
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("ndi-python is not installed; CI installs it with the test extra")
        pytest.skip("ndi-python not installed (pip install '.[ndi]')")
    assert NDIlib.initialize()
    return NDIlib


@pytest.fixture(autouse=True)
def private_ndi_config(tmp_path, monkeypatch):
    """No user NDI configuration (~/.ndi) in the tests: an empty configuration folder of their own."""
    folder = tmp_path / "ndi-config"
    folder.mkdir()
    monkeypatch.setenv("NDI_CONFIG_DIR", str(folder))
    return folder


class Receiver:
    """An NDI receiver that finds a source by its name through the loopback address and collects RGB frames."""

    def __init__(self, name: str, timeout: float = 60.0):
        ndi = self.ndi = binding()
        finder = ndi.find_create_v2(ndi.FindCreate(show_local_sources=True, p_extra_ips="127.0.0.1"))
        deadline, source = time.monotonic() + timeout, None
        try:
            while source is None and time.monotonic() < deadline:
                ndi.find_wait_for_sources(finder, 500)
                source = next((found for found in ndi.find_get_current_sources(finder)
                               if found.ndi_name.endswith(f"({name})")), None)
        finally:
            ndi.find_destroy(finder)
        if source is None:
            raise AssertionError(f"no NDI source named {name!r} found through 127.0.0.1 within {timeout:.0f} s")
        self.source_name, self.url = source.ndi_name, source.url_address
        # UYVY as it travels, decoded here: libndi's own RGBA conversion on receive uses BT.601 coefficients
        # while its sender encodes RGBX with BT.709, which alone shifts a saturated blue by 11 levels.
        self.receiver = ndi.recv_create_v3(ndi.RecvCreateV3(color_format=ndi.RECV_COLOR_FORMAT_UYVY_BGRA))
        ndi.recv_connect(self.receiver, source)

    def frames(self, seconds: float, until=None) -> list[tuple[float, np.ndarray, tuple[int, int]]]:
        """(arrival time, RGB copy, (frame_rate_N, frame_rate_D)) of each video frame within `seconds`."""
        ndi, received = self.ndi, []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (until is None or not until(received)):
            kind, video, _, _ = ndi.recv_capture_v2(self.receiver, 200)
            if kind == ndi.FRAME_TYPE_VIDEO:
                assert video.FourCC == ndi.FOURCC_VIDEO_TYPE_UYVY, video.FourCC
                received.append((time.monotonic(), uyvy_to_rgb(np.array(video.data), video.xres, video.yres),
                                 (video.frame_rate_N, video.frame_rate_D)))
                ndi.recv_free_video_v2(self.receiver, video)
        return received

    def close(self):
        self.ndi.recv_destroy(self.receiver)


def uyvy_to_rgb(data: np.ndarray, width: int, height: int) -> np.ndarray:
    """Studio-range 4:2:2 UYVY (U Y0 V Y1) to 8-bit RGB with the BT.709 matrix the NDI sender encodes with."""
    pixels = data.reshape(height, width // 2, 4).astype(np.float64)
    u, v = np.repeat(pixels[..., 0], 2, axis=1), np.repeat(pixels[..., 2], 2, axis=1)
    y = np.stack([pixels[..., 1], pixels[..., 3]], axis=-1).reshape(height, width)
    luma, blue, red = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    r = luma + 1.5748 * red
    b = luma + 1.8556 * blue
    g = (luma - 0.2126 * r - 0.0722 * b) / 0.7152
    return np.clip(np.rint(np.stack([r, g, b], axis=-1) * 255), 0, 255).astype(np.uint8)


def colour_bars(width: int = 256, height: int = 128) -> np.ndarray:
    """Eight flat bars, 32 px wide (whole codec blocks), in colours that exercise each channel."""
    colours = [(255, 255, 255), (230, 200, 20), (20, 200, 210), (30, 190, 40), (200, 40, 190), (210, 30, 30),
               (30, 40, 200), (12, 12, 12)]
    frame = np.zeros((height, width, 3), np.uint8)
    for index, colour in enumerate(colours):
        frame[:, index * width // 8:(index + 1) * width // 8] = colour
    return frame


def test_a_known_frame_arrives_at_its_size_in_its_colours():
    binding()
    name = f"Masquerade bars {os.getpid()}"
    output = NdiOutput(name, 30.0).start()
    try:
        receiver = Receiver(name)
        bars = colour_bars()
        frames = []
        deadline = time.monotonic() + 20
        while len(frames) < 5 and time.monotonic() < deadline:
            output.offer(bars)
            frames += receiver.frames(0.1)
        receiver.close()
    finally:
        output.stop()
    assert receiver.url.startswith("127.0.0.1:")
    assert len(frames) >= 5
    _, picture, rate = frames[-1]
    assert picture.shape == bars.shape and rate == (30000, 1000)
    error = np.abs(picture.astype(int) - bars.astype(int))
    # Studio-range 4:2:2 YUV and NDI's codec: flat bars come back within a few levels, their edges included
    # (a JPEG of the same bars at quality 90 is off by 10 or more at the edges).
    assert error.max() <= 4, error.max()
    assert error.mean() < 2.0


def test_the_switch_turns_the_source_on_and_off_and_survives_a_missing_binding(monkeypatch, caplog):
    binding()
    name = f"Masquerade switch {os.getpid()}"
    switch = NdiSwitch(name, 25.0)
    frame = colour_bars(64, 64)
    switch.update(True, frame)
    assert switch.output is not None and switch.output.alive
    receiver = Receiver(name)
    received, deadline = [], time.monotonic() + 20
    while not received and time.monotonic() < deadline:
        switch.update(True, frame)  # one call per displayed frame, as the live loop does
        received = receiver.frames(0.1)
    receiver.close()
    assert received and received[0][1].shape == (64, 64, 3)
    switch.update(False, frame)
    assert switch.output is None
    monkeypatch.setitem(sys.modules, "NDIlib", None)  # as on a machine without the extra: import fails
    switch.update(True, frame)
    switch.update(True, frame)
    assert switch.output is None
    lines = [record.getMessage() for record in caplog.records if "NDI output unavailable" in record.getMessage()]
    assert len(lines) == 1 and "pip install" in lines[0]


def test_source_names_and_frame_rates():
    assert check_source_name("Masquerade") == "Masquerade"
    for bad in ("", "a (b)", " lead", "x" * 64, "comma,name"):
        with pytest.raises(ValueError, match="ndi_name"):
            check_source_name(bad)
    assert frame_rate(30.0) == (30000, 1000) and frame_rate(29.97) == (2997, 100) and frame_rate(60) == (60000, 1000)


def read_status(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def test_the_running_piece_is_an_ndi_source_at_its_frame_size_colours_and_rate(tiny_bundle, tmp_path):
    """The real piece, headless (SDL's dummy driver), on a 256 px window showing its 64 px frames scaled x4 by
    nearest neighbour: NDI carries the 64 px frames themselves, the pixels the screen shows, at the screen's rate."""
    binding()
    name = f"Masquerade piece {os.getpid()}"
    status, shot = tmp_path / "status.json", tmp_path / "screen.png"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "SDL_VIDEODRIVER": "dummy"}
    process = subprocess.Popen(
        [sys.executable, "run_installation.py", "--no-osc", "--model", str(tiny_bundle), "--windowed",
         "--width", "256", "--height", "256", "--no-upscale", "--no-smooth-scaling", "--speed", "0",
         "--no-captions", "--ndi", "--ndi-name", name, "--status-file", str(status), "--heartbeat-every", "0.5",
         "--screenshot", str(shot)],
        cwd=ROOT, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        try:
            receiver = Receiver(name, timeout=150)
        except AssertionError as error:
            process.send_signal(signal.SIGTERM)
            raise AssertionError(f"{error}; the piece said:\n{process.communicate(timeout=30)[1]}") from None
        receiver.frames(30, until=lambda got: len(got) >= 10)  # the picture is flowing
        shown, frames = [], []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            frames += receiver.frames(0.05)
            document = read_status(status)
            if document and (not shown or document["frames_shown"] != shown[-1][1]):
                shown.append((time.monotonic(), document["frames_shown"]))
        receiver.close()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert "NDI output on" in errors
    assert all(picture.shape == (64, 64, 3) for _, picture, _ in frames)
    assert {rate for _, _, rate in frames} == {(30000, 1000)}
    (start, first), (end, last) = shown[1], shown[-1]
    display_rate = (last - first) / (end - start)
    received_rate = sum(start <= arrival <= end for arrival, _, _ in frames) / (end - start)
    assert display_rate > 10
    assert abs(received_rate - display_rate) <= 0.1 * display_rate, (received_rate, display_rate)
    screen = np.asarray(Image.open(shot).convert("RGB"))
    assert screen.shape == (256, 256, 3)
    picture = frames[-1][1].astype(int)
    shown_pixels = screen[::4, ::4].astype(int)  # each frame pixel is a 4x4 block on the screen
    assert np.array_equal(screen[1::4, 2::4], screen[::4, ::4])
    difference = np.abs(picture - shown_pixels)
    assert difference.mean() < 2.0 and difference.max() <= 8, (difference.mean(), difference.max())  # seen: 1.5, 3


def test_without_the_extra_ndi_is_one_line_and_the_piece_runs(tiny_bundle, tmp_path):
    """A machine without ndi-python: an NDIlib that cannot be imported stands first on the path."""
    shadow = tmp_path / "shadow" / "NDIlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("No module named \'NDIlib\'")\n', encoding="utf-8")
    environment = {**os.environ, "PYTHONPATH": f"{shadow.parent}{os.pathsep}{ROOT}", "TF_CPP_MIN_LOG_LEVEL": "3",
                   "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run([sys.executable, "run_installation.py", "--no-osc", "--model", str(tiny_bundle),
                             "--windowed", "--ndi", "--frames", "20"], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "NDI" in line]
    assert len(lines) == 1 and "pip install" in lines[0] and "runs without it" in lines[0], lines
    assert "Traceback" not in result.stderr and "stopped after 20 frames" in result.stderr


def test_osc_switches_the_ndi_output_of_the_live_loop_on_and_off(tiny_bundle):
    """/masquerade/ndi 1 over real UDP starts the source of a running piece (headless), 0 withdraws it."""
    from pythonosc.udp_client import SimpleUDPClient
    from test_control_integration import free_port, start_piece

    from installation.app import Piece
    from installation.config import RuntimeConfig

    binding()
    name, port = f"Masquerade osc {os.getpid()}", free_port()
    piece = Piece.from_config(RuntimeConfig(model=str(tiny_bundle), osc_port=port, ndi_name=name, stats_every=3600.0))
    thread = start_piece(piece)
    try:
        assert piece.ndi.output is None
        client = SimpleUDPClient("127.0.0.1", port)
        client.send_message("/masquerade/ndi", 1)
        receiver = Receiver(name, timeout=30)
        assert receiver.frames(10, until=lambda got: len(got) >= 3)
        assert piece.ndi.output is not None and piece.ndi.output.sent >= 3
        client.send_message("/masquerade/ndi", 0)
        assert wait_until(lambda: piece.ndi.output is None, timeout=5)
        receiver.frames(0.5)  # what was already on its way
        assert receiver.frames(1.0) == []
        receiver.close()
    finally:
        piece.request_stop()
        thread.join(10)
