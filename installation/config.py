"""Runtime configuration: one frozen dataclass, read from a TOML file, every setting overridable by a flag.

Each field names its TOML section, its allowed range or choices, and a help line; the flags, the
validation messages and `--print-config` are all generated from that one description.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installation.latent import EASINGS, WalkConfig
from installation.ndi import check_source_name

DEFAULT_MODEL = str(Path(__file__).resolve().parents[1] / "assets" / "models" / "default")


def setting(default, section: str, help: str, low=None, high=None, choices=None):
    return field(default=default, metadata={"section": section, "help": help, "range": (low, high),
                                            "choices": choices})


@dataclass(frozen=True)
class RuntimeConfig:
    model: str = setting(DEFAULT_MODEL, "model", "model bundle folder")
    # Display.
    windowed: bool = setting(False, "display", "run in a window instead of fullscreen (studio use)")
    display: int = setting(0, "display", "which monitor to use for fullscreen", 0, 16)
    width: int = setting(1024, "display", "window width (fullscreen uses the monitor's size)", 64, 16384)
    height: int = setting(768, "display", "window height", 64, 16384)
    fit: str = setting("letterbox", "display", "keep the aspect by letterboxing or fill the screen and crop",
                       choices=("letterbox", "fill"))
    smooth_scaling: bool = setting(True, "display", "smooth (bilinear) scaling to the screen size")
    fps: float = setting(30.0, "display", "display frame-rate target", 1.0, 240.0)
    show_fps: bool = setting(False, "display", "frame-rate overlay at start (toggle with F)")
    kiosk: bool = setting(False, "display", "ignore Esc/Q; quit only with Ctrl+Shift+Q or a signal")
    hide_cursor: bool = setting(True, "display", "hide the mouse cursor")
    # Walk.
    mode: str = setting("endless", "walk", "path through latent space", choices=("endless", "loop", "drift"))
    seed: int = setting(0, "walk", "seed of the keyframes", 0, 2**31 - 1)
    seconds_per_keyframe: float = setting(6.0, "walk", "seconds from one keyframe to the next at speed 1", 0.1, 3600.0)
    loop_keyframes: int = setting(8, "walk", "keyframes in a closed loop", 2, 1024)
    easing: str = setting("smootherstep", "walk", "easing between keyframes", choices=EASINGS)
    truncation: float = setting(1.0, "walk", "scale latents toward the mean (1 = none)", 0.0, 2.0)
    transition_seconds: float = setting(2.0, "walk", "cross-fade time of jumps", 0.0, 60.0)
    speed: float = setting(1.0, "walk", "walk speed multiplier", 0.0, 10.0)
    # Rendering.
    upscale: bool = setting(True, "render", "use the bundle's upscaler")
    render_ahead: int = setting(2, "render", "frames rendered ahead along the path when not steered", 0, 16)
    blend: bool = setting(True, "render", "cross-fade between rendered frames when rendering is slower than display")
    backend: str = setting("auto", "render", "inference engine: LiteRT (no TensorFlow), TensorFlow, or auto (LiteRT "
                           "when the bundle has LiteRT files, else TensorFlow)", choices=("auto", "litert", "tf"))
    threads: int = setting(0, "render", "LiteRT CPU threads (0 = one per core)", 0, 256)
    # Control from outside: OSC (TouchDesigner) and a webcam.
    osc: bool = setting(True, "control", "listen for OSC control messages")
    osc_host: str = setting("127.0.0.1", "control", "interface to listen on (0.0.0.0 for other machines)")
    osc_port: int = setting(9000, "control", "UDP port for OSC control", 1, 65535)
    require_osc: bool = setting(False, "control", "exit at start (status 2) when the OSC port cannot be opened; "
                                "otherwise the piece runs without OSC, says so, and retries the port")
    osc_retry_seconds: float = setting(10.0, "control", "seconds between attempts to open an unavailable OSC port",
                                       1.0, 3600.0)
    osc_prefix: str = setting("/masquerade", "control", "OSC address prefix")
    osc_allow: str = setting("", "control", "comma-separated sender addresses or networks to accept (empty: all)")
    feedback_host: str = setting("", "control", "send state, loop wraps and captions here over OSC (empty: off)")
    feedback_port: int = setting(9001, "control", "UDP port for OSC feedback", 1, 65535)
    feedback_every: float = setting(0.5, "control", "seconds between state feedback messages", 0.05, 60.0)
    hold_seconds: float = setting(10.0, "control", "seconds a keyboard or OSC write overrides the webcam", 0.0, 3600.0)
    webcam: str = setting("none", "control", "webcam: a device index, a video file, a stream URL, or none")
    webcam_preview: bool = setting(False, "control", "small webcam preview in a corner")
    webcam_settings: str = setting("", "webcam", "further webcam settings as JSON, or a [webcam] table in the "
                                   "config file (mapping, fps, smoothing...; see docs/webcam.md)")
    # Video out to other tools (TouchDesigner's NDI In TOP), and stored states of the piece.
    ndi: bool = setting(False, "ndi", "send the live frames as an NDI source (needs the ndi extra; also "
                        "switched by OSC /masquerade/ndi 0|1)")
    ndi_name: str = setting("Masquerade", "ndi", "NDI source name; receivers list it as MACHINE (name)")
    presets_file: str = setting("", "presets", "presets file (JSON); empty: presets.json beside the --config "
                                "file, or masquerade-presets.json in the working directory without one")
    # Provenance captions (need a bundle with an index; see `python -m training index`).
    captions: bool = setting(True, "captions", "caption frames with their nearest training images (toggle with C)")
    caption_layer: str = setting("late", "captions", "features compared: early (colour, texture) or late (shape)",
                                 choices=("early", "late"))
    caption_rate: float = setting(2.0, "captions", "caption look-ups per second, off the display thread", 0.1, 30.0)
    caption_placement: str = setting("bottom-left", "captions", "where captions sit", choices=(
        "bottom-left", "bottom-right", "bottom-center", "top-left", "top-right"))
    caption_font: str = setting("", "captions", "a .ttf/.otf font file (empty: pygame's default font)")
    caption_size: int = setting(36, "captions", "height of the caption's title line in pixels on a 1080-line "
                                "screen (all caption sizes scale with the screen height)", 8, 200)
    caption_body_size: int = setting(24, "captions", "height of the caption's other lines in pixels at 1080 lines",
                                     8, 200)
    caption_thumbnail_size: int = setting(112, "captions", "side of the nearest-image thumbnails in pixels at 1080 "
                                          "lines (at most the size the bundle's index stores)", 16, 512)
    caption_duration: float = setting(10.0, "captions", "seconds a caption stays, fades included", 1.0, 3600.0)
    caption_fade: float = setting(1.0, "captions", "seconds of fade in and out", 0.0, 60.0)
    caption_thumbnails: bool = setting(True, "captions", "show a strip of the nearest images")
    caption_k: int = setting(5, "captions", "nearest images looked up and shown", 1, 24)
    caption_language: str = setting("en", "captions", "language of caption labels", choices=("en", "fr"))
    # Unattended operation.
    status_file: str = setting("", "kiosk", "write a JSON status (fps, uptime, frames, last error) here")
    heartbeat_every: float = setting(5.0, "kiosk", "seconds between status writes, OSC heartbeats, watchdog pings",
                                     0.5, 3600.0)
    stall_seconds: float = setting(10.0, "kiosk", "seconds without a new picture (walk not paused) before the "
                                   "piece reports a stall and stops feeding the systemd watchdog", 1.0, 3600.0)
    failures_before_fallback: int = setting(3, "kiosk", "render failures in a row before falling back", 1, 1000)
    retry_seconds: float = setting(30.0, "kiosk", "seconds before a fallen-back piece retries the full pipeline",
                                   1.0, 86400.0)
    # Opening hours: outside them the screen is blank (or a still) and nothing renders.
    hours: str = setting("", "hours", "weekly opening hours, e.g. 'mon-fri 10:00-18:00; sat,sun 12:00-22:00' (a "
                         "close at or before the open time is the next day; empty: always open)")
    hours_timezone: str = setting("", "hours", "time zone of the opening hours, an IANA name such as Europe/Paris "
                                  "(empty: the machine's)")
    hours_closed: str = setting("", "hours", "dates closed all day, e.g. '2026-12-25, 2027-01-01'")
    hours_open: str = setting("", "hours", "dates with their own hours instead of the weekday's, e.g. "
                              "'2026-12-28 12:00-16:00; 2026-12-31 18:00-02:00' (a bare date: open all day)")
    closed_image: str = setting("", "hours", "a still (PNG or JPEG) shown while closed (empty: a black screen)")
    # The web remote for gallery staff.
    remote: bool = setting(False, "remote", "serve the web remote: status, live view and controls in a browser")
    remote_host: str = setting("127.0.0.1", "remote", "interface the remote listens on (0.0.0.0 for phones on "
                               "the gallery network; then set remote_allow)")
    remote_port: int = setting(8080, "remote", "TCP port of the remote (0: any free port, logged)", 0, 65535)
    remote_allow: str = setting("", "remote", "comma-separated client addresses or networks to serve (empty: all)")
    remote_token_file: str = setting("", "remote", "file holding the remote's access token, created (mode 0600) "
                                     "at first start (empty: ~/.config/masquerade/remote-token)")
    remote_token: str = setting("", "remote", "the access token itself (at least 16 characters) instead of the "
                                "token file")
    remote_open_status: bool = setting(False, "remote", "serve status, health and the live view without the token "
                                       "(controls always need it)")
    remote_names: str = setting("", "remote", "host names the remote answers to besides IP addresses, localhost "
                                "and this machine's name (comma-separated)")
    remote_control_rate: float = setting(2.0, "remote", "controls per second a client may send, sustained", 0.1,
                                         100.0)
    remote_control_burst: int = setting(10, "remote", "controls a client may send at once", 1, 1000)
    remote_thumbnail_rate: float = setting(2.0, "remote", "live-view pictures encoded per second at most", 0.2, 30.0)
    remote_thumbnail_size: int = setting(320, "remote", "longest side of the live view in pixels", 32, 1024)
    # Running.
    frames: int = setting(0, "run", "exit after this many displayed frames (0 = run forever)", 0, 10**12)
    screenshot: str = setting("", "run", "write a PNG of the screen here on exit (and on key S); with "
                              "--screenshot-every, a pattern such as shots/walk_{frame:05d}.png")
    screenshot_every: int = setting(0, "run", "also write a screenshot every N displayed frames (0 = off)", 0, 10**9)
    stats_every: float = setting(60.0, "run", "seconds between frame-rate and latency log lines", 1.0, 86400.0)
    log_level: str = setting("info", "run", "logging level", choices=("debug", "info", "warning", "error"))

    def __post_init__(self):
        for spec in dataclasses.fields(self):
            validate(spec, getattr(self, spec.name))
        check_screenshot_pattern(self.screenshot)
        check_source_name(self.ndi_name)
        self.webcam_config()
        self.opening_hours()
        if self.remote_token and len(self.remote_token) < 16:
            raise ValueError("remote_token must be at least 16 characters (or leave it empty for a generated one)")

    def opening_hours(self):
        """The [hours] settings as a schedule, or None when the piece is always open."""
        from installation.schedule import schedule_from_config

        return schedule_from_config(self)

    def webcam_config(self):
        """The webcam's settings: its source and preview from the flags, the rest from the [webcam] table."""
        from installation.webcam import WebcamConfig

        try:
            table = json.loads(self.webcam_settings) if self.webcam_settings else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"webcam_settings is not valid JSON: {error}") from None
        if not isinstance(table, dict):
            raise ValueError(f"webcam_settings must be a table of settings, got {table!r}")
        for key in ("source", "preview"):
            if key in table:
                raise ValueError(f"[webcam] {key}: set it with the [control] webcam / webcam_preview settings")
        return WebcamConfig.from_dict({**table, "source": self.webcam, "preview": self.webcam_preview})

    def to_toml(self) -> str:
        lines: list[str] = []
        for section in sections():
            lines.append(f"[{section}]")
            if section == "webcam":
                table = json.loads(self.webcam_settings) if self.webcam_settings else {}
                lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
            for spec in dataclasses.fields(self):
                if spec.metadata["section"] == section and section != "webcam":
                    lines.append(f"{spec.name} = {toml_value(getattr(self, spec.name))}")
            lines.append("")
        return "\n".join(lines)


def check_screenshot_pattern(pattern: str) -> None:
    """Refuse at start a pattern that would fail at the first screenshot (`{fram}`, `{0}`, `{frame:s}`): its
    only field is {frame}, with at most a zero-padded width."""
    try:
        fields = [(name, conversion, spec) for _, name, spec, conversion in string.Formatter().parse(pattern)
                  if name is not None]
        problem = next((f"field {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
                        for name, conversion, spec in fields
                        if name != "frame" or conversion or not re.fullmatch(r"(0?[1-9]?[0-9]?d?)", spec)), None)
    except ValueError as error:
        problem = str(error)
    if problem:
        raise ValueError(f"screenshot = {pattern!r} is not a usable file name pattern ({problem}); its only "
                         "field is {frame}, e.g. shots/walk_{frame:05d}.png")


def sections() -> list[str]:
    return list(dict.fromkeys(spec.metadata["section"] for spec in dataclasses.fields(RuntimeConfig)))


def kind(spec: dataclasses.Field) -> type:
    return {"bool": bool, "int": int, "float": float}.get(str(spec.type), str)


def validate(spec: dataclasses.Field, value: Any) -> None:
    expected = kind(spec)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"{spec.name} = {value!r} must be a {expected.__name__}")
    low, high = spec.metadata["range"]
    if expected is float and not math.isfinite(value):
        raise ValueError(f"{spec.name} = {value!r} must be a finite number in {low}..{high}")
    if low is not None and not low <= value <= high:
        raise ValueError(f"{spec.name} = {value!r} is outside the allowed range {low}..{high}")
    choices = spec.metadata["choices"]
    if choices and value not in choices:
        raise ValueError(f"{spec.name} = {value!r} is not one of {', '.join(choices)}")


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Flatten a TOML file's sections into field values, rejecting unknown keys by name."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"config file {path} is not valid TOML: {error}") from None
    specs = {spec.name: spec for spec in dataclasses.fields(RuntimeConfig)}
    values: dict[str, Any] = {}
    for section, table in document.items():
        if section == "webcam" and isinstance(table, dict):
            values["webcam_settings"] = json.dumps(table)
            continue
        if not isinstance(table, dict):
            raise ValueError(f"{path}: top-level key {section!r} must be inside a section ({', '.join(sections())})")
        for key, value in table.items():
            spec = specs.get(key)
            if spec is None or spec.metadata["section"] != section:
                raise ValueError(f"{path}: unknown setting [{section}] {key}")
            if kind(spec) is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            values[key] = value
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file of settings; flags override it")
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    for spec in dataclasses.fields(RuntimeConfig):
        flag = "--" + spec.name.replace("_", "-")
        low, high = spec.metadata["range"]
        detail = f" ({low}..{high})" if low is not None else ""
        if spec.metadata["choices"]:
            detail = f" ({' | '.join(spec.metadata['choices'])})"
        help_text = f"{spec.metadata['help']}{detail}; default {spec.default!r}"
        if kind(spec) is bool:
            parser.add_argument(flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            parser.add_argument(flag, dest=spec.name, type=kind(spec), default=None, help=help_text)


def resolve(args: argparse.Namespace) -> RuntimeConfig:
    """Defaults, then the TOML file, then explicit flags."""
    values = read_toml(args.config) if getattr(args, "config", None) else {}
    for spec in dataclasses.fields(RuntimeConfig):
        given = getattr(args, spec.name, None)
        if given is not None:
            values[spec.name] = given
    if not values.get("presets_file") and getattr(args, "config", None):
        values["presets_file"] = str(Path(args.config).parent / "presets.json")  # presets live beside the config
    return RuntimeConfig(**values)


def walk_config(config: RuntimeConfig, latent_dim: int) -> WalkConfig:
    """The walk the settings describe, for a generator with `latent_dim` inputs (the live piece and export share it)."""
    return WalkConfig(mode=config.mode, seed=config.seed, latent_dim=latent_dim,
                      seconds_per_keyframe=config.seconds_per_keyframe, loop_keyframes=config.loop_keyframes,
                      easing=config.easing, truncation=config.truncation,
                      transition_seconds=config.transition_seconds)
