"""Option dataclasses, declared once: their help, range and choices drive the flags, the checks and config.json.

A trainer config is a frozen dataclass whose fields are made by `option(...)`. From those declarations come the
command's `--flags` (with a sentence of help, the default and the allowed values), the range and choice checks
(`check_options`), and the run folder's config.json. A nested option dataclass (the `StrategyConfig` inside each
trainer config) is declared once and stored flat in config.json, each of its fields under its own key (`strategy`,
`tpu`, ...), as every run folder has always stored it: old run folders resume, and readers of config.json see
the same keys.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any

_INTERVAL = re.compile(r"^([\[(])\s*(\S+),\s*(\S+)\s*([\])])$")


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed values of a number: `low..high` (both included) or an interval such as `[0, 1)`."""

    text: str

    @property
    def bounds(self) -> tuple[float, float, bool, bool]:
        """(low, high, low included, high included)."""
        interval = _INTERVAL.match(self.text)
        if interval:
            opening, low, high, closing = interval.groups()
            return float(low), float(high), opening == "[", closing == "]"
        low, high = self.text.split("..")
        return float(low), float(high), True, True

    def __contains__(self, value) -> bool:
        low, high, low_included, high_included = self.bounds
        above = value >= low if low_included else value > low
        below = value <= high if high_included else value < high
        return above and below

    def __str__(self) -> str:
        return self.text


def option(default: Any = dataclasses.MISSING, help: str = "", *, range: str | None = None,  # noqa: A002
           choices: tuple[str, ...] | None = None, key: str | None = None, nested: type | None = None,
           flag: bool = True, default_factory: Any = dataclasses.MISSING, kw_only: Any = dataclasses.MISSING) -> Any:
    """A config field with what its flag and its check need.

    help: one sentence saying what the option does. range: e.g. "1..1000" or "[0, 1)", checked by check_options.
    choices: the allowed strings, checked by check_options. key: the field's name in config.json and on the
    command line when that differs from its Python name. nested: the option dataclass this field holds, stored
    flat. flag: False for fields the command line does not offer.
    """
    metadata = {"help": help, "range": Range(range) if range else None, "choices": choices, "key": key,
                "nested": nested, "flag": flag}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata, kw_only=kw_only)
    return dataclasses.field(default=default, metadata=metadata, kw_only=kw_only)


def flat_key(field: dataclasses.Field) -> str:
    return field.metadata.get("key") or field.name


def leaf_fields(config_class) -> list[dataclasses.Field]:
    """Every field as config.json and the command line see it: nested option dataclasses opened up, the config's
    own fields before those it inherits keyword-only."""
    leaves = []
    for field in sorted(dataclasses.fields(config_class), key=lambda field: field.kw_only is True):
        nested = field.metadata.get("nested")
        leaves.extend(leaf_fields(nested) if nested else [field])
    return leaves


def to_flat_dict(config) -> dict:
    """The config as config.json stores it: one key per leaf option."""
    values = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.metadata.get("nested"):
            values.update(to_flat_dict(value))
        else:
            values[flat_key(field)] = value
    return values


def from_flat_dict(config_class, values: dict):
    """Build `config_class` from flat keys (config.json, the command line); a nested field may also come whole."""
    remaining = dict(values)
    arguments = {}
    for field in dataclasses.fields(config_class):
        nested = field.metadata.get("nested")
        if nested is None:
            if flat_key(field) in remaining:
                arguments[field.name] = remaining.pop(flat_key(field))
            continue
        given = remaining.get(flat_key(field))
        if isinstance(given, nested):
            arguments[field.name] = remaining.pop(flat_key(field))
            continue
        parts = {flat_key(leaf): remaining.pop(flat_key(leaf)) for leaf in leaf_fields(nested)
                 if flat_key(leaf) in remaining}
        if parts:
            arguments[field.name] = from_flat_dict(nested, parts)
    if remaining:
        raise ValueError(f"unknown option {sorted(remaining)[0]!r} for {config_class.__name__}")
    return config_class(**arguments)


def replace(config, **changes):
    """`dataclasses.replace` by flat keys: a stored config with a few options changed."""
    return from_flat_dict(type(config), {**to_flat_dict(config), **changes})


def check_options(config) -> None:
    """Every declared range and choice of `config` (not its nested options: they check themselves)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value is None:
            continue
        allowed, choices = field.metadata.get("range"), field.metadata.get("choices")
        if allowed is not None and value not in allowed:
            raise ValueError(f"{flat_key(field)} {value} is outside the allowed range {allowed}")
        if choices is not None and value not in choices:
            raise ValueError(f"{flat_key(field)} {value!r} is unknown; choose one of {', '.join(map(str, choices))}")


def parse_bool(text: str) -> bool:
    """'true'/'false' (also yes/no, on/off, 1/0) for boolean options."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; use true or false")


PARSERS = {"int": int, "float": float, "bool": parse_bool}


def help_text(field: dataclasses.Field) -> str:
    """The field's sentence, then its allowed values and its default."""
    details = []
    if field.metadata.get("choices"):
        details.append("one of " + ", ".join(str(choice) for choice in field.metadata["choices"]))
    if field.metadata.get("range"):
        details.append(f"range {field.metadata['range']}")
    if field.default is dataclasses.MISSING:
        details.append("required")
    else:
        details.append("default: unset" if field.default is None else f"default: {field.default}")
    return f"{field.metadata.get('help', '')} ({'; '.join(details)})"


def add_options(parser: argparse.ArgumentParser, config_class) -> None:
    """One `--flag` per leaf option, defaulting to None so the command knows what was given explicitly."""
    for field in leaf_fields(config_class):
        if not field.metadata.get("flag", True):
            continue
        key = flat_key(field)
        kind = PARSERS.get(str(field.type).split(" ")[0], str)
        parser.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, default=None,
                            metavar="true|false" if kind is parse_bool else key.upper(), help=help_text(field))


def explicit_values(args: argparse.Namespace, config_class) -> dict:
    """The flat options the command line gave."""
    names = {flat_key(field) for field in leaf_fields(config_class)}
    return {key: value for key, value in vars(args).items() if key in names and value is not None}
