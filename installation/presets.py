"""Presets: stored states of the piece (where the walk is and how it is steered), saved and recalled by
number or name from keys, OSC and a JSON file beside the config.

A preset holds the walk's seed and keyframe and the controls in PRESET_CONTROLS. Requests come from any
thread (the OSC receiver, the display loop's keys) into a small queue; the display loop takes them once per
frame (`Presets.take`), so saving reads one consistent state and a recall glides like any jump. Names and
numbers are keys inside the one presets file: nothing received names a file.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import numbers
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installation.controls import PARAMETERS, ControlState
from installation.parameters import BY_NAME, Parameter, check, deprecated, short_repr, validate

log = logging.getLogger(__name__)

FORMAT = 1
DEFAULT_FILE = "masquerade-presets.json"
PRESET_CONTROLS = ("speed", "truncation", "mode", "loop_keyframes", "offset_direction", "offset_amount",
                   "transition_seconds", "upscale", "captions", "caption_layer", "trail")
# Where the walk was: the table's seed, and a keyframe index (any the walk can reach in a long run).
STORED_WALK = (BY_NAME["seed"], Parameter("keyframe", "int", 0, -(2**40), 2**40, live=False))
MAX_NUMBER = 999
MAX_PRESETS = 1000  # a bound on the file, whatever a controller sends
MAX_FILE_BYTES = 4 << 20
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9 _.\-]{0,63}")
KEY_DIGITS = {str(digit): digit for digit in range(1, 10)} | {f"[{digit}]": digit for digit in range(1, 10)}
MAX_QUEUED = 64


class PresetFileError(ValueError):
    """The presets file cannot be read as presets; the message names the file and the problem."""


def preset_key(raw: Any) -> str:
    """The key a preset is stored under: a number 1..999 (int, whole float or digits) or a name (a letter, then
    up to 63 letters, digits, spaces, '.', '_', '-'). Raises ValueError naming what is allowed."""
    allowed = f"a preset number 1..{MAX_NUMBER} or a name (a letter, then letters, digits, space . _ -, at most 64)"
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"got {short_repr(raw)}, expected {allowed}")
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, numbers.Real):
        number = float(raw)
        if not (math.isfinite(number) and number.is_integer() and 1 <= number <= MAX_NUMBER):
            raise ValueError(f"got {short_repr(raw)}, expected {allowed}")
        return str(int(number))
    if isinstance(raw, str) and NAME_PATTERN.fullmatch(raw.strip()):
        return raw.strip()
    raise ValueError(f"got {short_repr(raw)}, expected {allowed}")


@dataclass(frozen=True)
class Preset:
    """One stored state: the walk's seed and keyframe, and the values of PRESET_CONTROLS."""

    seed: int
    keyframe: int
    controls: dict

    def to_json(self) -> dict:
        return {"seed": self.seed, "keyframe": self.keyframe, "controls": dict(self.controls)}

    @classmethod
    def from_json(cls, data: Any) -> Preset:
        """Validate one stored preset (values through the parameter table); ValueError naming the problem."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a table, got {short_repr(data)}")
        seed, keyframe = (check(parameter, data.get(parameter.name)) for parameter in STORED_WALK)
        stored = data.get("controls", {})
        if not isinstance(stored, dict):
            raise ValueError(f"controls = {short_repr(stored)} is not a table")
        controls = {}
        for stored_name, value in stored.items():
            name = PARAMETERS.canonical(stored_name) if isinstance(stored_name, str) else stored_name
            if name not in PRESET_CONTROLS:
                raise ValueError(f"unknown control {short_repr(stored_name)}; presets hold "
                                 f"{', '.join(PRESET_CONTROLS)}")
            if name != stored_name:  # a file saved before the rename; the next save writes the new name
                deprecated(stored_name, name, "presets file")
            controls[name], _ = validate(PARAMETERS[name], value)
        return cls(seed, keyframe, controls)


def read_presets(path: Path) -> dict[str, Preset]:
    """The presets in a file ({} when there is none); PresetFileError with one line when it is unusable."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise PresetFileError(f"presets file {path} is larger than {MAX_FILE_BYTES >> 20} MB; is it one?")
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PresetFileError(f"presets file {path} cannot be read: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or \
            not isinstance(document.get("presets"), dict):
        raise PresetFileError(f"presets file {path} is not a Masquerade presets file (format {FORMAT})")
    presets = {}
    for key, data in document["presets"].items():
        try:
            presets[preset_key(key)] = Preset.from_json(data)
        except ValueError as error:
            raise PresetFileError(f"presets file {path}: preset {short_repr(key)}: {error}") from None
    return presets


def write_presets(path: Path, presets: dict[str, Preset]) -> None:
    """Write every preset at once under a temporary name renamed into place (a crash leaves the old file)."""
    from models.bundle import write_json_atomic

    write_json_atomic(path, {"format": FORMAT, "presets": {key: preset.to_json() for key, preset in presets.items()}})


@dataclass(frozen=True)
class Request:
    action: str  # "save" or "recall"
    key: str
    source: str  # the control source that asked: "keyboard" or "osc"


class Presets:
    """The piece's presets: `request` from any thread, `take` once per frame in the display loop."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.corrupt = False  # the file on disk could not be read; it is set aside before the first save
        try:
            self.presets = read_presets(self.path)
        except PresetFileError as error:
            log.error("%s; starting without presets (the file is kept, and set aside on the first save)", error)
            self.presets, self.corrupt = {}, True
        self._queue: collections.deque[Request] = collections.deque(maxlen=MAX_QUEUED)
        self._lock = threading.Lock()
        self.saved = self.recalled = 0
        if self.presets:
            log.info("%d presets from %s: %s", len(self.presets), self.path, ", ".join(sorted(self.presets)))

    def request(self, action: str, raw_key: Any, source: str) -> str:
        """Queue a save or recall; returns the key. ValueError for a bad key or an unknown preset."""
        key = preset_key(raw_key)
        if action == "recall":
            with self._lock:
                known = key in self.presets or any(r.action == "save" and r.key == key for r in self._queue)
            if not known:
                raise ValueError(f"no preset {key!r} (saved: {', '.join(sorted(self.presets)) or 'none'})")
        elif action != "save":
            raise ValueError(f"unknown preset action {action!r}")
        with self._lock:
            self._queue.append(Request(action, key, source))
        return key

    def osc_handlers(self) -> dict:
        """/<prefix>/preset/save N|name and /<prefix>/preset/recall N|name. A 0 is a button's release."""

        def handler(action: str):
            def handle(args: tuple) -> None:
                if len(args) != 1:
                    raise ValueError(f"expected one preset number or name, got {len(args)} values")
                if isinstance(args[0], numbers.Real) and not isinstance(args[0], bool) and args[0] == 0:
                    return
                self.request(action, args[0], "osc")
            return handle

        return {"preset/save": handler("save"), "preset/recall": handler("recall")}

    def handle_key(self, name: str, ctrl: bool) -> bool:
        """Ctrl+1..9 saves, 1..9 recalls (number keys or keypad); True when the key was a preset key."""
        number = KEY_DIGITS.get(name)
        if number is None:
            return False
        try:
            self.request("save" if ctrl else "recall", number, "keyboard")
        except ValueError as error:
            log.warning("preset key %s: %s", name, error)
        return True

    def take(self, walker, controls: ControlState, feedback=None) -> Preset | None:
        """Carry out the queued requests (display loop): saves store the state now; a recall writes its controls
        into the control state and returns the preset, whose walk the caller glides to after steering."""
        with self._lock:
            requests = list(self._queue)
            self._queue.clear()
        recalled = None
        for request in requests:
            if request.action == "save":
                self.save(request.key, walker, controls)
            else:
                recalled = self.recall(request, controls) or recalled
            if feedback is not None:
                feedback.send(f"/preset/{'saved' if request.action == 'save' else 'recalled'}", request.key)
        return recalled

    def save(self, key: str, walker, controls: ControlState) -> None:
        snapshot = controls.snapshot()
        preset = Preset(int(walker.seed), int(walker.keyframe), {name: snapshot[name] for name in PRESET_CONTROLS})
        presets = {**self.presets, key: preset}
        if len(presets) > MAX_PRESETS:
            log.warning("preset %r not saved: %d presets already (the most a file holds)", key, MAX_PRESETS)
            return
        try:
            if self.corrupt and self.path.exists():
                aside = self.path.with_name(self.path.name + ".corrupt")
                self.path.replace(aside)
                log.warning("unreadable presets file moved to %s before saving the first preset", aside)
            write_presets(self.path, presets)
        except OSError as error:
            log.error("preset %r not saved: cannot write %s: %s", key, self.path, error)
            return
        self.presets, self.corrupt = presets, False
        self.saved += 1
        log.info("preset %s saved: seed %d, keyframe %d", key, preset.seed, preset.keyframe)

    def recall(self, request: Request, controls: ControlState) -> Preset | None:
        preset = self.presets.get(request.key)
        if preset is None:
            return None
        held = [name for name, value in preset.controls.items()
                if controls.set(name, value, request.source)[0] is None]
        self.recalled += 1
        log.info("preset %s recalled: seed %d, keyframe %d%s", request.key, preset.seed, preset.keyframe,
                 f" ({', '.join(held)} held by a higher-ranked source)" if held else "")
        return preset
