"""Runtime configuration: one frozen dataclass, read from a TOML file, every setting overridable by a flag.

The fields, their defaults, ranges, choices, help lines and TOML sections are not written here: they are the
start-up settings of installation/parameters.py's table, so the dataclass, the flags, the TOML keys, the validation
messages and `--print-config` cannot disagree with each other or with the live controls of the same name.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import string
import tomllib
from pathlib import Path
from typing import Any

from installation.latent import WalkConfig
from installation.ndi import check_source_name
from installation.parameters import (
    BY_NAME,
    DEFAULT_MODEL,
    PYTHON_TYPES,
    SECTIONS,
    SETTING_ALIASES,
    SETTINGS,
    Parameter,
    check,
    deprecated,
)

__all__ = ["DEFAULT_MODEL", "RuntimeConfig", "add_arguments", "read_toml", "resolve", "walk_config", "toml_value",
           "sections", "kind", "validate", "check_screenshot_pattern"]


class Settings:
    """The behaviour of `RuntimeConfig`; its fields come from the table (see the module's docstring)."""

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

    @property
    def webcam_on(self) -> bool:
        """The one decision whether the piece uses a webcam: its source is not none / off (webcam.parse_source)."""
        return self.webcam_config().enabled

    @property
    def show_fps(self) -> bool:
        """Old name of `fps_overlay`, for callers not yet renamed."""
        return self.fps_overlay

    @property
    def blend(self) -> bool:
        """Old name of `fade_between_renders`, for callers not yet renamed."""
        return self.fade_between_renders


def _field(parameter: Parameter) -> tuple[str, type, dataclasses.Field]:
    metadata = {"section": parameter.section, "help": parameter.doc, "range": (parameter.min, parameter.max),
                "choices": parameter.choices or None, "parameter": parameter}
    return parameter.name, PYTHON_TYPES[parameter.kind], dataclasses.field(default=parameter.default,
                                                                            metadata=metadata)


RuntimeConfig = dataclasses.make_dataclass("RuntimeConfig", [_field(parameter) for parameter in SETTINGS],
                                           bases=(Settings,), frozen=True)
RuntimeConfig.__module__ = __name__
RuntimeConfig.__doc__ = "Every start-up setting of the piece (installation/parameters.py), validated at creation."

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
    return list(SECTIONS)


def kind(spec: dataclasses.Field) -> type:
    return PYTHON_TYPES[BY_NAME[spec.name].kind]


def validate(spec: dataclasses.Field, value: Any) -> None:
    """Check one field's value against its row of the table (ValueError of one line naming value and range)."""
    check(BY_NAME[spec.name], value)


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
    """Flatten a TOML file's sections into field values, rejecting unknown keys by name; old names of renamed
    settings are read as the new name, with one deprecation line."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"config file {path} is not valid TOML: {error}") from None
    values: dict[str, Any] = {}
    for section, table in document.items():
        if section == "webcam" and isinstance(table, dict):
            values["webcam_settings"] = json.dumps(table)
            continue
        if not isinstance(table, dict):
            raise ValueError(f"{path}: top-level key {section!r} must be inside a section ({', '.join(sections())})")
        for key, value in table.items():
            name = SETTING_ALIASES.get(key, key)
            parameter = BY_NAME.get(name)
            if parameter is None or parameter.section != section:
                raise ValueError(f"{path}: unknown setting [{section}] {key}")
            if name != key:
                if name in table:
                    raise ValueError(f"{path}: [{section}] sets both {name} and its old name {key}; keep {name}")
                deprecated(key, name, f"config file {path} [{section}]")
            if parameter.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            values[name] = value
    return values


class DeprecatedFlag(argparse.Action):
    """An old flag of a renamed setting: sets the new setting and logs one deprecation line."""

    def __init__(self, option_strings, dest, new_flag: str, boolean: bool, **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, nargs=0 if boolean else None, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        negative = option_string.startswith("--no-")
        deprecated(option_string, "--no-" + self.new_flag[2:] if negative else self.new_flag, "command line")
        setattr(namespace, self.dest, not negative if self.nargs == 0 else values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--config, --print-config and one flag per setting of the table, its help saying the range and default."""
    parser.add_argument("--config", help="TOML file of settings; flags override it")
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    for parameter in SETTINGS:
        if parameter.kind == "choice":
            detail = f" ({' | '.join(parameter.choices)})"
        else:
            detail = f" ({parameter.min}..{parameter.max})" if parameter.min is not None else ""
        live = "; also steered live (docs/osc.md)" if parameter.live else ""
        help_text = f"{parameter.doc}{detail}; default {parameter.default!r}{live}"
        boolean = parameter.kind == "bool"
        if boolean:
            parser.add_argument(parameter.flag, dest=parameter.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        else:
            parser.add_argument(parameter.flag, dest=parameter.name, type=PYTHON_TYPES[parameter.kind],
                                default=None, help=help_text)
        for old in parameter.setting_aliases:
            flags = ["--" + old.replace("_", "-")] + (["--no-" + old.replace("_", "-")] if boolean else [])
            parser.add_argument(*flags, dest=parameter.name, action=DeprecatedFlag, new_flag=parameter.flag,
                                boolean=boolean, default=None, help=argparse.SUPPRESS,
                                **({} if boolean else {"type": PYTHON_TYPES[parameter.kind]}))


def resolve(args: argparse.Namespace) -> RuntimeConfig:
    """Defaults, then the TOML file, then explicit flags."""
    values = read_toml(args.config) if getattr(args, "config", None) else {}
    for parameter in SETTINGS:
        given = getattr(args, parameter.name, None)
        if given is not None:
            values[parameter.name] = given
    if not values.get("presets_file") and getattr(args, "config", None):
        values["presets_file"] = str(Path(args.config).parent / "presets.json")  # presets live beside the config
    return RuntimeConfig(**values)


def walk_config(config: RuntimeConfig, latent_dim: int) -> WalkConfig:
    """The walk the settings describe, for a generator with `latent_dim` inputs (the live piece and export share it)."""
    return WalkConfig(mode=config.mode, seed=config.seed, latent_dim=latent_dim,
                      seconds_per_keyframe=config.seconds_per_keyframe, loop_keyframes=config.loop_keyframes,
                      easing=config.easing, truncation=config.truncation,
                      transition_seconds=config.transition_seconds)
