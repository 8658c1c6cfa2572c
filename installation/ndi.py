"""NDI video out: the piece's own frames as an NDI source, for TouchDesigner's NDI In TOP and other tools.

The binding is `ndi-python` (module `NDIlib`), an optional extra (`pip install '.[ndi]'`) whose wheels carry
Vizrt's NDI runtime (libndi) for Linux x86_64/aarch64/armv7l, macOS arm64 and Windows x64. Without it the
piece runs as before and says once why NDI is off.

The display loop only hands a frame over (`NdiOutput.offer`: one slot, the newest frame wins); a daemon
thread converts it to RGBX and sends it, so a slow network, a slow receiver or the encoder never hold up
the picture on screen. Frames go out at their own size, before any scaling to the screen, stamped with
the piece's frame-rate target.
"""

from __future__ import annotations

import logging
import re
import time
from fractions import Fraction

import numpy as np

from installation.latest_wins import LatestWinsThread

log = logging.getLogger(__name__)

INSTALL_HINT = "install the NDI extra: pip install 'masquerade[ndi]' (or .[ndi] in a checkout)"
# NDI shows a source as "MACHINE (name)"; brackets or a comma in the name would make that ambiguous.
NAME_PATTERN = re.compile(r"[A-Za-z0-9 _.\-]{1,63}")


class NdiUnavailable(RuntimeError):
    """The NDI binding or its runtime cannot be used on this machine; the message says why in one line."""


def check_source_name(name: str) -> str:
    """Refuse a source name NDI would show ambiguously; returns it unchanged."""
    if not NAME_PATTERN.fullmatch(name) or name.strip() != name:
        raise ValueError(f"ndi_name = {name!r} must be 1-63 letters, digits, spaces, '.', '_' or '-' "
                         "(no brackets, no leading or trailing space)")
    return name


def load_binding():
    """The `NDIlib` module, initialised; NdiUnavailable with one line when it is missing or cannot start."""
    try:
        import NDIlib
    except ImportError as error:
        if "avahi" in str(error):  # libndi links the system's Avahi client library on Linux
            raise NdiUnavailable(f"the NDI runtime needs the system's Avahi client library ({error}); "
                                 "Debian/Ubuntu: apt-get install libavahi-client3") from None
        raise NdiUnavailable(f"the NDI binding is not installed ({error}); {INSTALL_HINT}") from None
    except OSError as error:  # libndi found but one of its system libraries (e.g. libavahi-client) is not
        raise NdiUnavailable(f"the NDI runtime cannot be loaded ({error})") from None
    if not NDIlib.initialize():
        raise NdiUnavailable("the NDI runtime refused to start (this processor lacks SSE4.2?)")
    return NDIlib


def frame_rate(fps: float) -> tuple[int, int]:
    """NDI's frame rate as numerator/denominator: 30 -> 30000/1000, 29.97 -> 2997/100."""
    rate = Fraction(fps).limit_denominator(1001)
    return (rate.numerator * 1000, rate.denominator * 1000) if rate.denominator == 1 else \
        (rate.numerator, rate.denominator)


class NdiOutput(LatestWinsThread):
    """One NDI sender fed from the display loop through a one-slot hand-off; sending happens in its thread.

    name: the source name receivers see (as "MACHINE (name)"). fps: the frame rate written into every frame.
    """

    def __init__(self, name: str, fps: float):
        super().__init__("ndi-sender")
        self.name = check_source_name(name)
        self.rate = frame_rate(fps)
        self.sent = self.failures = 0  # frames sent (`replaced`: offered but overtaken by a newer one)
        self.cpu_seconds = 0.0  # CPU time the sender thread spent converting and sending (what NDI costs here)
        self.problem: str | None = None  # why the last frame was not sent
        self._buffers: dict[tuple[int, int], np.ndarray] = {}  # RGBX frames by size, reused
        self._binding = None
        self._sender = None

    def start(self) -> NdiOutput:
        """Create the NDI sender and its thread; NdiUnavailable when the binding or the sender cannot start."""
        ndi = self._binding = load_binding()
        self._sender = ndi.send_create(ndi.SendCreate(p_ndi_name=self.name, clock_video=False))
        if self._sender is None:
            raise NdiUnavailable(f"the NDI runtime could not create a sender named {self.name!r} (see its log; "
                                 "is ndi-config.v1.json in NDI_CONFIG_DIR or ~/.ndi valid?)")
        super().start()
        log.info("NDI output on as %r, %d/%d fps", self.source_name, *self.rate)
        return self

    @property
    def source_name(self) -> str:
        """The full name receivers list ("MACHINE (name)"), or the configured name before start."""
        if self._sender is None:
            return self.name
        try:
            return self._binding.send_get_source_name(self._sender).ndi_name
        except (AttributeError, TypeError):
            return self.name

    def offer(self, frame: np.ndarray) -> None:
        """Hand the newest frame (H, W, 3 uint8 RGB) to the sender thread; never waits. The array must not be
        changed afterwards (the live loop makes a new one for every picture)."""
        self.submit(frame)

    def connections(self) -> int:
        """Receivers connected now (0 when stopped)."""
        if self._sender is None:
            return 0
        return int(self._binding.send_get_no_connections(self._sender, 0))

    def handle(self, frame: np.ndarray, began: float) -> None:
        import cv2  # here, so that reading the configuration (which checks the source name) stays light

        ndi = self._binding
        cpu_began = time.thread_time()
        height, width = frame.shape[:2]
        rgbx = self._buffers.get((width, height))
        if rgbx is None:
            rgbx = self._buffers[(width, height)] = np.empty((height, width, 4), np.uint8)
        cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2RGBA, dst=rgbx)  # releases the GIL
        video = ndi.VideoFrameV2(xres=width, yres=height, FourCC=ndi.FOURCC_VIDEO_TYPE_RGBX,
                                 frame_rate_N=self.rate[0], frame_rate_D=self.rate[1],
                                 picture_aspect_ratio=width / height)
        video.data = rgbx
        ndi.send_send_video_v2(self._sender, video)  # synchronous: rgbx is free again on return
        self.sent += 1
        self.cpu_seconds += time.thread_time() - cpu_began

    def failed(self, error: Exception) -> None:
        """A failing frame is counted and logged (at 1, 10, 100, then every 1000); the next may pass."""
        self.failures += 1
        self.problem = f"{type(error).__name__}: {error}"
        if self.failures in (1, 10, 100) or self.failures % 1000 == 0:
            log.warning("NDI frame not sent (%d so far): %s", self.failures, self.problem)
        time.sleep(0.05)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and withdraw the source."""
        super().stop(timeout)
        if self._sender is not None and not self.alive:
            self._binding.send_destroy(self._sender)
        self._sender = None
        log.info("NDI output off (%d frames sent)", self.sent)


class NdiSwitch:
    """What the live loop holds: turns the NDI output on and off as the `ndi` control asks and feeds it.
    A machine without NDI says so once per request to switch it on, and the piece runs on."""

    def __init__(self, name: str, fps: float):
        self.name, self.fps = name, fps
        self.output: NdiOutput | None = None
        self.last_output: NdiOutput | None = None  # the one last stopped, for its counters
        self.refused = False  # the last request to switch on failed; cleared when the control goes off

    def update(self, enabled: bool, frame: np.ndarray | None) -> None:
        """Called once per displayed frame with the control's value and the frame just shown."""
        if enabled and self.output is None and not self.refused:
            try:
                self.output = NdiOutput(self.name, self.fps).start()
            except NdiUnavailable as error:
                self.refused = True
                log.error("NDI output unavailable: %s; the piece runs without it", error)
        elif not enabled:
            self.refused = False
            if self.output is not None:
                self.output.stop()
                self.last_output, self.output = self.output, None
        if self.output is not None and frame is not None:
            self.output.offer(frame)

    def stop(self) -> None:
        if self.output is not None:
            self.output.stop()
            self.last_output, self.output = self.output, None
