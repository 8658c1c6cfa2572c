"""The one table of the live piece's parameters: name, type, range or choices, default, help, and where each is set.

Every other place derives from `TABLE`: the `RuntimeConfig` dataclass, its TOML file and the command-line flags
(installation/config.py) take the start-up settings (`section` given); the control state that OSC, the web remote,
the keys, the webcam and the presets write (installation/controls.py) takes the live controls (`live`). A parameter
that is both starts at its configured value and is then steered live, under one name and one range.

Renamed parameters keep their old spelling working as an alias (`control_aliases` on OSC, the remote, the webcam
mapping and the presets file; `setting_aliases` in the TOML file and on the command line); each use logs one
deprecation line. This module imports nothing from the rest of the piece, so any module can take its limits from it.
"""

from __future__ import annotations

import logging
import math
import numbers
import reprlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

KINDS = ("float", "int", "bool", "choice", "trigger", "text")
PYTHON_TYPES = {"float": float, "int": int, "bool": bool, "choice": str, "text": str}
SEED_MAX = 2**31 - 1  # seeds travel over OSC as int32 and through JSON and TOML; walks take any seed up to here
EASINGS = ("linear", "smoothstep", "smootherstep", "cosine", "cubic")  # installation/latent.py's easing names
MODES = ("endless", "loop", "drift")
DEFAULT_MODEL = str(Path(__file__).resolve().parents[1] / "assets" / "models" / "default")

# Values arrive from the network: a repr of one must stay short and must not recurse into nested arrays.
_BOUNDED_REPR = reprlib.Repr()
_BOUNDED_REPR.maxlevel, _BOUNDED_REPR.maxstring, _BOUNDED_REPR.maxother, _BOUNDED_REPR.maxlong = 3, 60, 60, 40
_BOUNDED_REPR.maxtuple = _BOUNDED_REPR.maxlist = _BOUNDED_REPR.maxdict = 6


def short_repr(value: Any) -> str:
    """A repr of an untrusted value bounded in length and depth (for log lines and error messages)."""
    return _BOUNDED_REPR.repr(value)


@dataclass(frozen=True)
class Parameter:
    """One parameter of the piece.

    kind: "float" | "int" | "bool" | "choice" | "trigger" (an event without a value) | "text" (a start-up string).
    min / max: inclusive range of float and int parameters (live writes are clamped, start-up values refused).
    choices: allowed strings of a "choice" parameter.
    doc: one sentence of help (flags, docs, errors).
    event: an int control whose every write is also an event carrying the value (writing seed 42 jumps to 42).
    section: the TOML section of a start-up setting (also a command-line flag); None for a live-only control.
    live: in the control state, steerable over OSC (every live parameter has an OSC address).
    remote: offered by the web remote.   keys: keyboard keys that toggle it (bool) or fire it (trigger).
    control_aliases / setting_aliases: old names still accepted live / in the TOML file and as flags.
    """

    name: str
    kind: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""
    event: bool = False
    section: str | None = None
    live: bool = True
    remote: bool = False
    keys: tuple[str, ...] = ()
    control_aliases: tuple[str, ...] = ()
    setting_aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum() or self.name != self.name.lower():
            raise ValueError(f"parameter name {self.name!r} must be lower-case letters, digits and '_'")
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind in ("float", "int") and (self.min is None or self.max is None or not self.min <= self.max):
            raise ValueError(f"parameter {self.name}: needs min <= max, got {self.min}..{self.max}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"parameter {self.name}: a choice parameter needs choices")
        if self.event and self.kind != "int":
            raise ValueError(f"parameter {self.name}: only int parameters can be events")
        if self.kind == "text" and self.live:
            raise ValueError(f"parameter {self.name}: text parameters are start-up settings only (live=False)")
        if self.kind != "trigger":
            # The default must be a valid value; this catches typos in the table and bad configured starting
            # values (dataclasses.replace runs this again).
            try:
                value, clamped = validate(self, self.default)
            except ValueError as error:
                raise ValueError(f"parameter {self.name}: default {self.default!r} is not valid: {error}") from None
            if clamped:
                raise ValueError(f"parameter {self.name}: default {self.default!r} is outside {self.describe_range()}")
            object.__setattr__(self, "default", value)  # Canonical type: 1 -> 1.0 for a float parameter.

    @property
    def is_trigger(self) -> bool:
        """True for parameters that produce events drained by `ControlState.drain_triggers`."""
        return self.kind == "trigger" or self.event

    @property
    def flag(self) -> str:
        """The command-line flag of a start-up setting."""
        return "--" + self.name.replace("_", "-")

    def in_range(self, value: Any) -> bool:
        """The one range test: min <= value <= max for numbers, membership for choices, else True."""
        if self.kind in ("float", "int"):
            return self.min <= value <= self.max
        if self.kind == "choice":
            return value in self.choices
        return True

    def describe_range(self) -> str:
        """Human-readable allowed values, used in error messages and documentation."""
        if self.kind == "int":
            return f"{int(self.min)}..{int(self.max)}"
        if self.kind == "float":
            return f"{self.min:g}..{self.max:g}"
        if self.kind == "bool":
            return "true/false (1/0)"
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind == "text":
            return "text"
        return "no value, or any non-zero value (0 / false is ignored, e.g. a button release)"


# ---------------------------------------------------------------------------------------------
# Validation: live writes are coerced and clamped, start-up settings are checked strictly.

_TRUE_WORDS = frozenset({"true", "1", "on", "yes", "t"})
_FALSE_WORDS = frozenset({"false", "0", "off", "no", "f"})


def _is_bool(raw: Any) -> bool:
    return isinstance(raw, bool | np.bool_)


def _finite_number(parameter: Parameter, raw: Any) -> float | int:
    """Return raw as a Python int or float, rejecting bools, NaN, inf and non-numbers."""
    expected = f"expected a finite number in {parameter.describe_range()}"
    if _is_bool(raw):
        raise ValueError(f"{parameter.name}: got boolean {short_repr(raw)}, {expected}")
    if isinstance(raw, numbers.Integral):
        return int(raw)
    if isinstance(raw, numbers.Real):
        number = float(raw)
    elif isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            raise ValueError(f"{parameter.name}: got {short_repr(raw)}, {expected}") from None
    else:
        raise ValueError(f"{parameter.name}: got {type(raw).__name__} {short_repr(raw)}, {expected}")
    if not math.isfinite(number):
        raise ValueError(f"{parameter.name}: got {short_repr(raw)}, {expected}")
    return number


def coerce(parameter: Parameter, raw: Any) -> Any:
    """Convert live input (int, float, bool, numpy scalar, string) to the parameter's type, without clamping.

    Ints round floats to the nearest integer. Bools accept true/false, numbers (0 is false) and the strings
    true/false/1/0/on/off/yes/no. Choices accept a choice name (any case) or its index. Triggers return
    True to fire and False for "release" values (0, false), since TouchDesigner buttons send 1 then 0.
    Raises ValueError naming the value and the allowed range.
    """
    kind = parameter.kind
    if kind == "float":
        return float(_finite_number(parameter, raw))
    if kind == "int":
        number = _finite_number(parameter, raw)
        return number if isinstance(number, int) else int(round(number))
    if kind in ("bool", "trigger"):
        if kind == "trigger" and raw is None:
            return True
        if _is_bool(raw):
            return bool(raw)
        if isinstance(raw, numbers.Real):
            number = float(raw)
            if math.isnan(number):
                raise ValueError(f"{parameter.name}: got {short_repr(raw)}, expected {parameter.describe_range()}")
            return number != 0.0
        if isinstance(raw, str):
            word = raw.strip().lower()
            if word in _TRUE_WORDS or (kind == "trigger" and word in ("", "bang")):
                return True
            if word in _FALSE_WORDS:
                return False
        raise ValueError(f"{parameter.name}: got {short_repr(raw)}, expected {parameter.describe_range()}")
    if kind == "choice":
        if isinstance(raw, str):
            word = raw.strip().lower()
            if word in parameter.choices:
                return word
        elif not _is_bool(raw) and isinstance(raw, numbers.Real):
            # TouchDesigner menus travel through CHOPs as their index.
            number = float(raw)
            if number.is_integer() and 0 <= number < len(parameter.choices):
                return parameter.choices[int(number)]
        raise ValueError(
            f"{parameter.name}: got {short_repr(raw)}, expected one of {parameter.describe_range()} "
            f"(or an index 0..{len(parameter.choices) - 1})"
        )
    if kind == "text" and isinstance(raw, str):
        return raw
    raise ValueError(f"{parameter.name}: got {short_repr(raw)}, expected {parameter.describe_range()}")


def clamp(parameter: Parameter, value: Any) -> tuple[Any, bool]:
    """Clamp an already coerced value into the parameter's range; returns (value, clamped)."""
    if parameter.kind not in ("float", "int") or parameter.in_range(value):
        return value, False
    return type(value)(parameter.min if value < parameter.min else parameter.max), True


def validate(parameter: Parameter, raw: Any) -> tuple[Any, bool]:
    """Live input: coerce() then clamp(); returns (value, clamped). Raises ValueError for unusable input."""
    return clamp(parameter, coerce(parameter, raw))


def check(parameter: Parameter, value: Any) -> Any:
    """A start-up value (TOML, flag, dataclass field, stored preset): the exact type, inside the range, or a
    ValueError of one line naming the value and what is allowed. Returns the value (ints widened to floats)."""
    expected = PYTHON_TYPES.get(parameter.kind, bool)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    low, high = parameter.min, parameter.max
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        wanted = {int: "an integer", float: "a number", bool: "true or false", str: "text"}[expected]
        allowed = f" in {low}..{high}" if low is not None else ""
        if parameter.kind == "choice":
            allowed = f", one of {', '.join(parameter.choices)}"
        raise ValueError(f"{parameter.name} = {short_repr(value)} must be {wanted}{allowed}")
    if expected is float and not math.isfinite(value):
        raise ValueError(f"{parameter.name} = {value!r} must be a finite number in {low}..{high}")
    if not parameter.in_range(value):
        if parameter.kind == "choice":
            raise ValueError(f"{parameter.name} = {short_repr(value)} is not one of {', '.join(parameter.choices)}")
        raise ValueError(f"{parameter.name} = {value!r} is outside the allowed range {low}..{high}")
    return value


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def deprecated(old: str, new: str, where: str) -> None:
    """Log once per process that an old name was used where (a surface such as "OSC" or "config file")."""
    with _warned_lock:
        if (old, where) in _warned:
            return
        _warned.add((old, where))
    log.warning("%s: %r is the old name of %r; it still works, but please rename it", where, old, new)


# ---------------------------------------------------------------------------------------------
# The table. Sections group the settings in the TOML file; their order is the file's order.


def _setting(section: str):
    """A factory for the settings of one TOML section (start-up only unless live=True is given)."""
    def make(name, kind, default, low=None, high=None, *, doc, **more) -> Parameter:
        return Parameter(name, kind, default, low, high, doc=doc, section=section, live=more.pop("live", False),
                         **more)
    return make


def _control(name, kind, default=None, low=None, high=None, *, doc, **more) -> Parameter:
    """A live-only control: OSC (and the remote or keys where given), no start-up setting."""
    return Parameter(name, kind, default, low, high, doc=doc, **more)


_model, _display, _walk, _render = (_setting(section) for section in ("model", "display", "walk", "render"))
_control_setting, _webcam, _ndi, _presets = (_setting(section) for section in ("control", "webcam", "ndi", "presets"))
_captions, _kiosk, _hours, _remote, _run = (_setting(section)
                                            for section in ("captions", "kiosk", "hours", "remote", "run"))

TABLE: tuple[Parameter, ...] = (
    _model("model", "text", DEFAULT_MODEL, doc="model bundle folder"),
    # Display.
    _display("windowed", "bool", False, doc="run in a window instead of fullscreen (studio use)"),
    _display("display", "int", 0, 0, 16, doc="which monitor to use for fullscreen"),
    _display("width", "int", 1024, 64, 16384, doc="window width (fullscreen uses the monitor's size)"),
    _display("height", "int", 768, 64, 16384, doc="window height"),
    _display("fit", "choice", "letterbox", choices=("letterbox", "fill"),
             doc="keep the aspect by letterboxing or fill the screen and crop"),
    _display("smooth_scaling", "bool", True, doc="smooth (bilinear) scaling to the screen size"),
    _display("fps", "float", 30.0, 1.0, 240.0, doc="display frame-rate target"),
    _display("fps_overlay", "bool", False, live=True, keys=("f",), setting_aliases=("show_fps",),
             doc="show the frames-per-second overlay (at start; toggle with F)"),
    _display("kiosk", "bool", False, doc="ignore Esc/Q; quit only with Ctrl+Shift+Q or a signal"),
    _display("hide_cursor", "bool", True, doc="hide the mouse cursor"),
    # Walk.
    _walk("mode", "choice", "endless", choices=MODES, live=True, doc="path through latent space"),
    _walk("seed", "int", 0, 0, SEED_MAX, live=True, event=True, remote=True,
          doc="seed of the keyframes; written live, jump to the latent point of this seed"),
    _walk("seconds_per_keyframe", "float", 6.0, 0.1, 3600.0, doc="seconds from one keyframe to the next at speed 1"),
    _walk("loop_keyframes", "int", 8, 2, 1024, live=True, doc="keyframes in a closed loop (loop mode)"),
    _walk("easing", "choice", "smootherstep", choices=EASINGS, doc="easing between keyframes"),
    _walk("truncation", "float", 1.0, 0.0, 2.0, live=True,
          doc="scale latents toward the mean (1 = none): lower is calmer, higher wilder"),
    _walk("transition_seconds", "float", 2.0, 0.0, 60.0, live=True, control_aliases=("crossfade",),
          doc="cross-fade time in seconds of jumps (next, previous, seed, jump, mode changes)"),
    _walk("speed", "float", 1.0, 0.0, 10.0, live=True, remote=True, doc="walk speed multiplier; 0 stands still"),
    # Rendering.
    _render("upscale", "bool", True, live=True, remote=True, keys=("u",), doc="use the bundle's upscaler"),
    _render("render_ahead", "int", 2, 0, 16, doc="frames rendered ahead along the path when not steered"),
    _render("fade_between_renders", "bool", True, setting_aliases=("blend",),
            doc="cross-fade from one rendered frame to the next when rendering is slower than the display"),
    _render("backend", "choice", "auto", choices=("auto", "litert", "tf"),
            doc="inference engine: LiteRT (no TensorFlow), TensorFlow, or auto (LiteRT when the bundle has LiteRT "
                "files, else TensorFlow)"),
    _render("threads", "int", 0, 0, 256, doc="LiteRT CPU threads (0 = one per core)"),
    # Control from outside: OSC (TouchDesigner) and a webcam.
    _control_setting("osc", "bool", True, doc="listen for OSC control messages"),
    _control_setting("osc_host", "text", "127.0.0.1", doc="interface to listen on (0.0.0.0 for other machines)"),
    _control_setting("osc_port", "int", 9000, 1, 65535, doc="UDP port for OSC control"),
    _control_setting("require_osc", "bool", False,
                     doc="exit at start (status 2) when the OSC port cannot be opened; otherwise the piece runs "
                         "without OSC, says so, and retries the port"),
    _control_setting("osc_retry_seconds", "float", 10.0, 1.0, 3600.0,
                     doc="seconds between attempts to open an unavailable OSC port"),
    _control_setting("osc_prefix", "text", "/masquerade", doc="OSC address prefix"),
    _control_setting("osc_allow", "text", "",
                     doc="comma-separated sender addresses or networks to accept (empty: all)"),
    _control_setting("feedback_host", "text", "",
                     doc="send state, loop wraps and captions here over OSC (empty: off)"),
    _control_setting("feedback_port", "int", 9001, 1, 65535, doc="UDP port for OSC feedback"),
    _control_setting("feedback_every", "float", 0.5, 0.05, 60.0, doc="seconds between state feedback messages"),
    _control_setting("hold_seconds", "float", 10.0, 0.0, 3600.0,
                     doc="seconds a keyboard or OSC write overrides the webcam"),
    _control_setting("webcam", "text", "none", doc="webcam: a device index, a video file, a stream URL, or none"),
    _control_setting("webcam_preview", "bool", False, doc="small webcam preview in a corner"),
    _webcam("webcam_settings", "text", "",
            doc="further webcam settings as JSON, or a [webcam] table in the config file (mapping, fps, "
                "smoothing...; see docs/webcam.md)"),
    # Video out to other tools (TouchDesigner's NDI In TOP), and stored states of the piece.
    _ndi("ndi", "bool", False, live=True,
         doc="send the live frames as an NDI source (needs the ndi extra; also switched live)"),
    _ndi("ndi_name", "text", "Masquerade", doc="NDI source name; receivers list it as MACHINE (name)"),
    _presets("presets_file", "text", "",
             doc="presets file (JSON); empty: presets.json beside the --config file, or masquerade-presets.json "
                 "in the working directory without one"),
    # Provenance captions (need a bundle with an index; see `python -m training index`).
    _captions("captions", "bool", True, live=True, remote=True, keys=("c",),
              doc="caption frames with their nearest training images (toggle with C)"),
    _captions("caption_layer", "choice", "late", choices=("early", "late"), live=True,
              doc="features compared: early (colour, texture) or late (shape, motif)"),
    _captions("caption_rate", "float", 2.0, 0.1, 30.0, doc="caption look-ups per second, off the display thread"),
    _captions("caption_placement", "choice", "bottom-left",
              choices=("bottom-left", "bottom-right", "bottom-center", "top-left", "top-right"),
              doc="where captions sit"),
    _captions("caption_font", "text", "", doc="a .ttf/.otf font file (empty: pygame's default font)"),
    _captions("caption_size", "int", 36, 8, 200,
              doc="height of the caption's title line in pixels on a 1080-line screen (all caption sizes scale "
                  "with the screen height)"),
    _captions("caption_body_size", "int", 24, 8, 200,
              doc="height of the caption's other lines in pixels at 1080 lines"),
    _captions("caption_thumbnail_size", "int", 112, 16, 512,
              doc="side of the nearest-image thumbnails in pixels at 1080 lines (at most the size the bundle's "
                  "index stores)"),
    _captions("caption_duration", "float", 10.0, 1.0, 3600.0, doc="seconds a caption stays, fades included"),
    _captions("caption_fade", "float", 1.0, 0.0, 60.0, doc="seconds of fade in and out"),
    _captions("caption_thumbnails", "bool", True, doc="show a strip of the nearest images"),
    _captions("caption_k", "int", 5, 1, 24, doc="nearest images looked up and shown"),
    _captions("caption_language", "choice", "en", choices=("en", "fr"), doc="language of caption labels"),
    # Unattended operation.
    _kiosk("status_file", "text", "", doc="write a JSON status (fps, uptime, frames, last error) here"),
    _kiosk("heartbeat_every", "float", 5.0, 0.5, 3600.0,
           doc="seconds between status writes, OSC heartbeats, watchdog pings"),
    _kiosk("stall_seconds", "float", 10.0, 1.0, 3600.0,
           doc="seconds without a new picture (walk not paused) before the piece reports a stall and stops "
               "feeding the systemd watchdog"),
    _kiosk("failures_before_fallback", "int", 3, 1, 1000, doc="render failures in a row before falling back"),
    _kiosk("retry_seconds", "float", 30.0, 1.0, 86400.0,
           doc="seconds before a fallen-back piece retries the full pipeline"),
    # Opening hours: outside them the screen is blank (or a still) and nothing renders.
    _hours("hours", "text", "",
           doc="weekly opening hours, e.g. 'mon-fri 10:00-18:00; sat,sun 12:00-22:00' (a close at or before the "
               "open time is the next day; empty: always open)"),
    _hours("hours_timezone", "text", "",
           doc="time zone of the opening hours, an IANA name such as Europe/Paris (empty: the machine's)"),
    _hours("hours_closed", "text", "", doc="dates closed all day, e.g. '2026-12-25, 2027-01-01'"),
    _hours("hours_open", "text", "",
           doc="dates with their own hours instead of the weekday's, e.g. '2026-12-28 12:00-16:00; 2026-12-31 "
               "18:00-02:00' (a bare date: open all day)"),
    _hours("closed_image", "text", "", doc="a still (PNG or JPEG) shown while closed (empty: a black screen)"),
    # The web remote for gallery staff.
    _remote("remote", "bool", False, doc="serve the web remote: status, live view and controls in a browser"),
    _remote("remote_host", "text", "127.0.0.1",
            doc="interface the remote listens on (0.0.0.0 for phones on the gallery network; then set remote_allow)"),
    _remote("remote_port", "int", 8080, 0, 65535, doc="TCP port of the remote (0: any free port, logged)"),
    _remote("remote_allow", "text", "",
            doc="comma-separated client addresses or networks to serve (empty: all)"),
    _remote("remote_token_file", "text", "",
            doc="file holding the remote's access token, created (mode 0600) at first start (empty: "
                "~/.config/masquerade/remote-token)"),
    _remote("remote_token", "text", "",
            doc="the access token itself (at least 16 characters) instead of the token file"),
    _remote("remote_open_status", "bool", False,
            doc="serve status, health and the live view without the token (controls always need it)"),
    _remote("remote_names", "text", "",
            doc="host names the remote answers to besides IP addresses, localhost and this machine's name "
                "(comma-separated)"),
    _remote("remote_control_rate", "float", 2.0, 0.1, 100.0, doc="controls per second a client may send, sustained"),
    _remote("remote_control_burst", "int", 10, 1, 1000, doc="controls a client may send at once"),
    _remote("remote_thumbnail_rate", "float", 2.0, 0.2, 30.0, doc="live-view pictures encoded per second at most"),
    _remote("remote_thumbnail_size", "int", 320, 32, 1024, doc="longest side of the live view in pixels"),
    # Running.
    _run("frames", "int", 0, 0, 10**12, doc="exit after this many displayed frames (0 = run forever)"),
    _run("screenshot", "text", "",
         doc="write a PNG of the screen here on exit (and on key S); with --screenshot-every, a pattern such as "
             "shots/walk_{frame:05d}.png"),
    _run("screenshot_every", "int", 0, 0, 10**9, doc="also write a screenshot every N displayed frames (0 = off)"),
    _run("stats_every", "float", 60.0, 1.0, 86400.0, doc="seconds between frame-rate and latency log lines"),
    _run("log_level", "choice", "info", choices=("debug", "info", "warning", "error"), doc="logging level"),
    # Live-only controls: steered while the piece runs, never set at start.
    _control("pause", "bool", False, remote=True, keys=("space",), doc="freeze the walk (the display keeps running)"),
    _control("next", "trigger", remote=True, keys=("right", "n"), doc="go to the next keyframe"),
    _control("previous", "trigger", remote=True, keys=("left", "p"), doc="go back to the previous keyframe"),
    _control("jump", "trigger", remote=True, keys=("j",), doc="jump to a random point in latent space"),
    _control("offset_direction", "int", 0, 0, SEED_MAX, doc="seed of a fixed latent direction"),
    _control("offset_amount", "float", 0.0, -10.0, 10.0, doc="how far to push along offset_direction"),
    _control("trail", "float", 0.0, 0.0, 1.0, control_aliases=("blend",),
             doc="frame trail (0 = off, 1 = longest: each frame keeps 95 % of the last, never all of it)"),
    _control("query", "trigger", doc="ask the piece to send all current values back over OSC"),
    _control("open_now", "trigger", remote=True,
             doc="open (show the walk) outside the opening hours until their next change"),
    _control("close_now", "trigger", remote=True,
             doc="close (blank the screen, stop rendering) until the hours' next change"),
    _control("follow_hours", "trigger", remote=True,
             doc="end an open_now / close_now override: follow the opening hours"),
)

BY_NAME: dict[str, Parameter] = {parameter.name: parameter for parameter in TABLE}
SETTINGS: tuple[Parameter, ...] = tuple(parameter for parameter in TABLE if parameter.section is not None)
CONTROLS: tuple[Parameter, ...] = tuple(parameter for parameter in TABLE if parameter.live)
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(parameter.section for parameter in SETTINGS))
CONTROL_ALIASES: dict[str, str] = {old: p.name for p in CONTROLS for old in p.control_aliases}
SETTING_ALIASES: dict[str, str] = {old: p.name for p in SETTINGS for old in p.setting_aliases}


def key_bindings() -> tuple[dict[str, str], dict[str, str]]:
    """(toggle keys, trigger keys): key name -> the bool control it toggles / the trigger it fires."""
    toggles = {key: p.name for p in CONTROLS if p.kind == "bool" for key in p.keys}
    triggers = {key: p.name for p in CONTROLS if p.kind == "trigger" for key in p.keys}
    return toggles, triggers



# ---------------------------------------------------------------------------------------------
# Reference tables for the docs (docs/osc.md holds this output; a test keeps them equal).

OSC_TYPES = {
    "float": "i h f d, numeric s",
    "int": "i h f d (floats are rounded), numeric s",
    "bool": "T F, i f (0 = false), s `true`/`false`/`1`/`0`/`on`/`off`",
    "choice": "s by name, or its index as i or f",
    "trigger": "none, or any non-zero number, T, s `bang`",
}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"`{value}`" if isinstance(value, str) else repr(value)


def osc_reference(prefix: str = "/masquerade") -> str:
    """The markdown table of every OSC address of a live parameter, straight from the table."""
    lines = ["| address | kind | range | default | start-up setting | also from | effect |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for parameter in CONTROLS:
        kind = parameter.kind + (", event" if parameter.event else "")
        allowed = ""
        if parameter.kind in ("float", "int"):
            allowed = parameter.describe_range().replace("..", " .. ")
        elif parameter.kind == "choice":
            allowed = " / ".join(f"`{choice}`" for choice in parameter.choices)
        default = "" if parameter.kind == "trigger" else _shown(parameter.default)
        setting = f"`{parameter.flag}` (`[{parameter.section}] {parameter.name}`)" if parameter.section else ""
        keys = ", ".join(f"`{key}`" for key in parameter.keys)
        also = "; ".join((["the web remote"] if parameter.remote else []) + ([f"keys {keys}"] if keys else []))
        old = "".join(f"; old address `{prefix}/{alias}` still accepted" for alias in parameter.control_aliases)
        lines.append(f"| `{prefix}/{parameter.name}` | {kind} | {allowed} | {default} | {setting} | {also} | "
                     f"{parameter.doc}{old} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(osc_reference())
