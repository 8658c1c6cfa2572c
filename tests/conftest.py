"""Shared test set-up: quiet TensorFlow, headless pygame, two logical CPUs for MirroredStrategy tests."""

import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def pytest_configure(config):
    """Two logical CPU devices, set before TensorFlow initialises, so MirroredStrategy replicates in tests."""
    from training.strategy import use_logical_cpus

    use_logical_cpus(2)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """48 procedural masks ingested at 64 px through the real pipeline: the dataset most tests train on."""
    from training import data, synthetic

    root = tmp_path_factory.mktemp("tiny_dataset")
    synthetic.generate_collection(root / "images", count=48, size=64, seed=7, progress=False)
    data.ingest(root / "images", root / "dataset", data.IngestConfig(image_size=64, min_size=32), progress=False)
    return root / "dataset"


def make_bundle(path, resolution=64, with_upscaler=True):
    """A tiny untrained bundle written through the real bundle code (generator + real-time upscaler)."""
    from models import bundle, dcgan, srgan

    generator = dcgan.generator(resolution, width_multiplier=0.0625)
    bundle.save_model(path, "generator.keras", generator)
    bundle.update_manifest(path, "generator", {"file": "generator.keras", "architecture": "dcgan",
                                               "resolution": resolution, "latent_dim": 100,
                                               "width_multiplier": 0.0625, "steps": 0})
    if with_upscaler:
        upscaler = srgan.realtime_upscaler(num_filters=8, num_layers=2)
        bundle.save_model(path, "upscaler.keras", upscaler)
        bundle.update_manifest(path, "upscaler", {"file": "upscaler.keras", "architecture": "realtime", "scale": 4,
                                                  "input_size": resolution, "output_size": resolution * 4})
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def wait_until(predicate, timeout: float = 2.0, interval: float = 0.005) -> bool:
    """Poll `predicate` until it holds or `timeout` passes; threads and sockets under test need a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --------------------------------------------------------------------------------------------------
# A real X server (Xvfb) for the display tests


def require_tools(*names: str) -> None:
    """Skip when a system tool is missing on a developer's machine; fail in CI, where .ci/run installs them."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    message = (f"{', '.join(missing)} not installed "
               "(Debian: apt-get install xvfb x11-apps x11-utils libgl1-mesa-dri xdotool)")
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the real-display tests")
    pytest.skip(message)


class XServer:
    """A running Xvfb: its DISPLAY name, screen size, and grabs of the whole screen through `xwd` (X's own
    screen contents, not anything the program under test reports about itself)."""

    def __init__(self, display: str, size: tuple[int, int], process: subprocess.Popen):
        self.display, self.size, self.process = display, size, process

    def environment(self, **extra: str) -> dict:
        """An environment for a program that should show on this server through SDL's x11 driver."""
        environment = {key: value for key, value in os.environ.items() if key not in ("WAYLAND_DISPLAY",)}
        environment.update(DISPLAY=self.display, SDL_VIDEODRIVER="x11", **extra)
        return environment

    def grab(self, window: str = "-root") -> np.ndarray:
        """The screen (or one window, e.g. window="-id 0x400002") as uint8 RGB (H, W, 3), read from X."""
        dump = subprocess.run(["xwd", "-silent", "-display", self.display, *window.split()], capture_output=True,
                              check=True, timeout=30).stdout
        return decode_xwd(dump)


def decode_xwd(dump: bytes) -> np.ndarray:
    """An X window dump (xwd's ZPixmap, 24/32 bits per pixel, TrueColor) as uint8 RGB (H, W, 3)."""
    fields = np.frombuffer(dump[:100], ">u4")
    header_size, width, height = int(fields[0]), int(fields[4]), int(fields[5])
    byte_order, bits_per_pixel, bytes_per_line = int(fields[7]), int(fields[11]), int(fields[12])
    red_mask, green_mask, blue_mask, colours = int(fields[14]), int(fields[15]), int(fields[16]), int(fields[19])
    if bits_per_pixel not in (24, 32):
        raise ValueError(f"xwd dump with {bits_per_pixel} bits per pixel; the tests expect a 24-bit Xvfb screen")
    start = header_size + 12 * colours
    step = bits_per_pixel // 8
    rows = np.frombuffer(dump[start : start + bytes_per_line * height], np.uint8).reshape(height, bytes_per_line)
    data = rows[:, : width * step].reshape(height, width, step).astype(np.uint32)
    order = range(step) if byte_order else reversed(range(step))  # MSBFirst (1) or LSBFirst (0)
    pixels = np.zeros((height, width), np.uint32)
    for index in order:
        pixels = (pixels << 8) | data[..., index]
    channels = []
    for mask in (red_mask, green_mask, blue_mask):
        shift = (mask & -mask).bit_length() - 1
        channels.append(((pixels & mask) >> shift).astype(np.uint8))
    return np.stack(channels, axis=-1)


def start_xvfb(size: tuple[int, int] = (1920, 1080)) -> XServer:
    """Xvfb on a free display number, returned once it accepts connections. Numbers start high and vary by
    process, away from :0 and xvfb-run's :99, so parallel test runs and desktop sessions do not collide."""
    require_tools("Xvfb", "xwd")
    first = 200 + os.getpid() % 500
    for number in range(first, first + 50):
        if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        read_end, write_end = os.pipe()
        process = subprocess.Popen(["Xvfb", f":{number}", "-displayfd", str(write_end), "-screen", "0",
                                    f"{size[0]}x{size[1]}x24", "-nolisten", "tcp", "-noreset"], pass_fds=(write_end,),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_end)
        written = read_line(read_end, timeout=30)
        os.close(read_end)
        if written == str(number):
            return XServer(f":{number}", size, process)
        process.kill()
        process.wait()
    pytest.fail(f"Xvfb did not start on any display from :{first} to :{first + 49}")


def read_line(descriptor: int, timeout: float) -> str:
    """What Xvfb writes to -displayfd once it listens: its display number and a newline. Read through the newline:
    closing the pipe before Xvfb has written it kills Xvfb with SIGPIPE."""
    deadline, written = time.monotonic() + timeout, b""
    while not written.endswith(b"\n"):
        ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(descriptor, 64) if ready else b""
        if not chunk:  # timed out, or Xvfb exited and closed its end
            break
        written += chunk
    return written.decode().strip()


def stop_xvfb(server: XServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def xvfb():
    """One 1920x1080x24 Xvfb per test module, like a desktop monitor."""
    server = start_xvfb((1920, 1080))
    yield server
    stop_xvfb(server)
