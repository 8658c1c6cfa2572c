"""The pygame screen: fullscreen or windowed, aspect kept, screenshots. Software only, no OpenGL.

Overlays are drawn by the compositor (installation/compositor.py) between `present` and `flip`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

log = logging.getLogger(__name__)

# SDL drivers that show nothing: fine when asked for by name (tests, headless rendering), never as a fallback.
HEADLESS_DRIVERS = ("offscreen", "dummy")
HEADLESS_HINT = "or set SDL_VIDEODRIVER=dummy to render headless on purpose"
X_SERVER_ADVICE = f"start the X server, check DISPLAY and XAUTHORITY (may this user connect?), {HEADLESS_HINT}"


class NoDisplayError(RuntimeError):
    """No screen to draw on: the message says how to get one."""


def requested_drivers() -> list[str]:
    """The SDL video drivers named in SDL_VIDEODRIVER (SDL accepts a comma-separated list), lower case."""
    return [name.strip().lower() for name in os.environ.get("SDL_VIDEODRIVER", "").split(",") if name.strip()]


def display_name() -> str:
    names = [f"{variable}={os.environ[variable]!r}" for variable in ("DISPLAY", "WAYLAND_DISPLAY")
             if os.environ.get(variable)]
    return ", ".join(names) or "(none)"


def start_video() -> str:
    """Start SDL's video on a screen someone can see (or on a headless driver named in SDL_VIDEODRIVER); returns
    the driver's name. Raises NoDisplayError with the problem and the fix in one line."""
    # SDL's framebuffer flip (what pygame.display.flip uses for a software surface) goes through an OpenGL
    # renderer when one is available. On Linux with Mesa that loads llvmpipe (swrast_dri.so), whose LLVM clashes
    # with the LLVM that TensorFlow's libraries carry: the first flip segfaults, whatever the import order.
    # The piece only blits surfaces, so SDL's plain X11 framebuffer (XShm) does the same job without OpenGL.
    # SDL reads its hints from the environment; this must be set before the first window is created.
    os.environ["SDL_FRAMEBUFFER_ACCELERATION"] = "0"
    requested = requested_drivers()
    if "wayland" in requested:
        raise NoDisplayError(WAYLAND_ADVICE)  # before SDL starts: its Wayland start-up alone can crash
    if not requested and sys.platform.startswith("linux"):
        requested = [linux_driver()]
        # Named, so that SDL neither probes Wayland (which prints its own complaints) nor falls back to a
        # driver that shows nothing.
        os.environ["SDL_VIDEODRIVER"] = requested[0]
    with opening(f"the display {display_name()}", ','.join(requested) or "default", X_SERVER_ADVICE):
        pygame.display.init()
        driver = pygame.display.get_driver()
        # A headless driver is fine as the first choice; reached as a fallback ("x11,offscreen"), nobody sees it.
        first_choice = requested[0] if requested else None
        if driver in HEADLESS_DRIVERS and driver != first_choice:
            raise NoDisplayError(f"cannot reach the display {display_name()}: SDL fell back to its {driver} driver, "
                                 f"which shows nothing; {X_SERVER_ADVICE}")
    return driver


@contextlib.contextmanager
def opening(what: str, driver: str, advice: str):
    """While opening `what` with SDL's `driver`: any failure closes SDL's video again and is one NoDisplayError
    line, an SDL error as "cannot open WHAT with SDL's DRIVER driver (ERROR); ADVICE"."""
    try:
        yield
    except pygame.error as error:
        pygame.display.quit()
        raise NoDisplayError(f"cannot open {what} with SDL's {driver} driver ({error}); {advice}") from None
    except NoDisplayError:
        pygame.display.quit()
        raise


# pygame's SDL 2.28 shows a software surface on Wayland only through OpenGL ES (it has no plain Wayland
# framebuffer), and that is the GL that crashes beside TensorFlow; X11, and XWayland under a Wayland
# compositor such as cage, has a plain framebuffer.
WAYLAND_ADVICE = ("the piece runs through XWayland, not SDL's Wayland driver (which needs OpenGL, and Mesa's "
                  "OpenGL crashes beside TensorFlow): enable XWayland in the compositor so that DISPLAY is set "
                  "(cage: apt install xwayland) and use SDL_VIDEODRIVER=x11; see deploy/kiosk-session.md")


def linux_driver() -> str:
    """The SDL driver for an unconfigured Linux session: X11 (XWayland under Wayland), or why there is none."""
    if os.environ.get("DISPLAY"):
        return "x11"
    if os.environ.get("WAYLAND_DISPLAY"):
        raise NoDisplayError(f"a Wayland session without XWayland (WAYLAND_DISPLAY is set, DISPLAY is not): "
                             f"{WAYLAND_ADVICE}")
    raise NoDisplayError(
        "no display: DISPLAY and WAYLAND_DISPLAY are not set; run the piece inside a desktop or kiosk session "
        f"(deploy/kiosk-session.md), point DISPLAY at a running X server (e.g. DISPLAY=:0), {HEADLESS_HINT}"
    )


def screen_size(display_index: int) -> tuple[int, int]:
    """The desktop size of monitor `display_index`; NoDisplayError naming the monitors when it does not exist."""
    sizes = pygame.display.get_desktop_sizes()
    if not 0 <= display_index < len(sizes):
        found = ", ".join(f"{index} = {width}x{height}" for index, (width, height) in enumerate(sizes))
        raise NoDisplayError(f"display {display_index} does not exist (this screen has {len(sizes)}: {found}); "
                             f"pick one with --display")
    return sizes[display_index]


@dataclass(frozen=True)
class Placement:
    """Where a square-or-not frame goes on the screen: the frame area to show and the screen rectangle."""

    source: tuple[int, int, int, int]  # x, y, w, h within the frame
    target: tuple[int, int, int, int]  # x, y, w, h on the screen


def place(frame_size: tuple[int, int], screen_size: tuple[int, int], fit: str) -> Placement:
    """Letterbox (whole frame, bars) or fill (cover the screen, crop the frame's overflow), aspect kept."""
    frame_w, frame_h = frame_size
    screen_w, screen_h = screen_size
    if fit == "letterbox":
        scale = min(screen_w / frame_w, screen_h / frame_h)
        width, height = max(1, round(frame_w * scale)), max(1, round(frame_h * scale))
        return Placement((0, 0, frame_w, frame_h), ((screen_w - width) // 2, (screen_h - height) // 2, width, height))
    if fit == "fill":
        scale = max(screen_w / frame_w, screen_h / frame_h)
        crop_w, crop_h = min(frame_w, round(screen_w / scale)), min(frame_h, round(screen_h / scale))
        return Placement(((frame_w - crop_w) // 2, (frame_h - crop_h) // 2, crop_w, crop_h), (0, 0, screen_w, screen_h))
    raise ValueError(f"fit {fit!r} is not one of letterbox, fill")


class Display:
    def __init__(self, *, windowed: bool, size: tuple[int, int], display_index: int = 0, fit: str = "letterbox",
                 smooth: bool = True, hide_cursor: bool = True, caption: str = "Masquerade"):
        self.driver = start_video()
        with opening(f"a {'window' if windowed else 'fullscreen'} on display {display_index} of {display_name()}",
                     self.driver, "check the session (deploy/OPERATOR.md)"):
            # Fullscreen takes the chosen monitor's own size: pygame's (0, 0) would take the first monitor's.
            if windowed:
                screen_size(display_index)
                self.screen = pygame.display.set_mode(size, 0, display=display_index)
            else:
                self.screen = pygame.display.set_mode(screen_size(display_index), pygame.FULLSCREEN,
                                                      display=display_index)
        pygame.display.set_caption(caption)
        self.screen.fill((0, 0, 0))  # black, not whatever the video memory held, while the model loads
        pygame.display.flip()
        if hide_cursor and not windowed:
            pygame.mouse.set_visible(False)
        self.fit = fit
        self.smooth = smooth
        self.cache_key = None
        self.scaled: pygame.Surface | None = None
        self.windowed, self.display_index = windowed, display_index
        log.info("display %s %dx%d on monitor %d (%s, driver %s)", "window" if windowed else "fullscreen",
                 *self.screen.get_size(), display_index, fit, self.driver)

    @property
    def size(self) -> tuple[int, int]:
        return self.screen.get_size()

    def show(self, frame: np.ndarray) -> None:
        """Put one uint8 RGB frame on the screen as it is, no overlays (the compositor draws those)."""
        self.present(frame)
        self.flip()

    def present(self, frame: np.ndarray) -> None:
        """Scale one uint8 RGB frame onto the screen (not yet visible: `flip` shows it)."""
        height, width = frame.shape[:2]
        placement = place((width, height), self.size, self.fit)
        surface = pygame.image.frombuffer(np.ascontiguousarray(frame).data, (width, height), "RGB")
        x, y, w, h = placement.source
        if (x, y, w, h) != (0, 0, width, height):
            surface = surface.subsurface((x, y, w, h))
        target = placement.target
        scale = pygame.transform.smoothscale if self.smooth else pygame.transform.scale
        # The scaled surface takes the frame's own pixel format: smoothscale copies raw pixels, so a surface
        # with other channel masks (pygame's default 24-bit one is BGR) would swap red and blue on screen.
        key = (target[2:], surface.get_bitsize(), surface.get_masks())
        if self.scaled is None or self.cache_key != key:
            self.scaled, self.cache_key = pygame.Surface(target[2:], 0, surface), key
        scale(surface, target[2:], self.scaled)
        if target[:2] != (0, 0) or target[2:] != self.size:
            self.screen.fill((0, 0, 0))
        self.screen.blit(self.scaled, target[:2])

    def flip(self) -> None:
        pygame.display.flip()

    def poll_keys(self) -> list[tuple[str, bool, bool]]:
        """Drain pygame's events: key presses as (name, ctrl, shift); closing the window counts as Ctrl+Shift+Q."""
        keys = []
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                keys.append(("q", True, True))
            elif event.type == pygame.KEYDOWN:
                mods = event.mod
                keys.append((pygame.key.name(event.key), bool(mods & pygame.KMOD_CTRL), bool(mods & pygame.KMOD_SHIFT)))
        return keys

    def screenshot(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.screen, str(path))
        log.info("screenshot written to %s", path)
        return path

    def close(self) -> None:
        pygame.display.quit()


def open_display(config) -> Display:
    """The piece's screen as a `RuntimeConfig` asks for it (the live piece and `--check` both open it here)."""
    return Display(windowed=config.windowed, size=(config.width, config.height), display_index=config.display,
                   fit=config.fit, smooth=config.smooth_scaling, hide_cursor=config.hide_cursor)
