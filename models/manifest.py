"""The bundle manifest's schema: hand-written checks into frozen dataclasses, one line per problem.

A manifest is JSON written by training and read by every tool, so anything in it may be wrong: a hand edit, a
file from a newer Masquerade, a copy gone bad. `parse_manifest` reports every problem it finds at once, each as
one line naming the manifest file and the field, instead of a traceback from deep inside the loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

FORMAT = "masquerade-bundle"
FORMAT_VERSION = 1
SECTIONS = ("generator", "upscaler", "index", "dataset", "quality")
MODEL_SUFFIX = ".keras"  # the Keras model format a bundle holds (a zip Keras reads in safe mode)
LITERT_SUFFIX = ".tflite"  # the same models for the runtime, converted for LiteRT (flatbuffers, no code)
BATCH_SIZE_RANGE = (1, 256)
RESOLUTION_RANGE = (4, 4096)
LATENT_DIM_RANGE = (1, 65536)
SCALE_RANGE = (1, 16)
FEATURE_DIM_RANGE = (1, 1 << 20)


class BundleError(ValueError):
    """What is wrong with a bundle: one line per problem, each naming the file and the field."""

    def __init__(self, problems):
        self.problems = tuple(problems) if not isinstance(problems, str) else (problems,)
        super().__init__("\n".join(self.problems))


def error_lines(error: BaseException) -> tuple[str, ...]:
    """What a command prints for refused input: each problem of a BundleError on its own line, else the message."""
    return error.problems if isinstance(error, BundleError) else (str(error),)


@dataclass(frozen=True)
class LiteRTSpec:
    """A model's LiteRT conversion: the .tflite file, its fixed batch sizes, and the sha256 of the Keras file (or
    the extractor's weights) it was converted from, so a conversion left behind by a re-export is noticed."""

    file: str
    batch_sizes: tuple[int, ...]
    source_sha256: str | None = None


@dataclass(frozen=True)
class GeneratorSpec:
    file: str
    resolution: int
    latent_dim: int
    architecture: str | None = None
    steps: int | None = None
    litert: LiteRTSpec | None = None


@dataclass(frozen=True)
class UpscalerSpec:
    file: str
    scale: int
    architecture: str | None = None
    input_size: int | None = None
    output_size: int | None = None
    litert: LiteRTSpec | None = None


@dataclass(frozen=True)
class IndexSpec:
    path: str
    extractor: str | None = None
    count: int | None = None
    dims: Mapping[str, int] | None = None
    litert: LiteRTSpec | None = None


@dataclass(frozen=True)
class Manifest:
    path: Path  # the manifest file, for messages
    format_version: int
    generator: GeneratorSpec | None
    upscaler: UpscalerSpec | None
    index: IndexSpec | None
    dataset_fingerprint: str | None


def describe(value: Any) -> str:
    """A short, bounded rendering of an untrusted value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Fields:
    """Reads the fields of one manifest object, noting each problem as a line; missing optional fields are None."""

    def __init__(self, source: Any, name: str, path: Path, problems: list[str]):
        self.name, self.path, self.problems = name, path, problems
        self.valid = isinstance(source, dict)
        self.source = source if self.valid else {}
        if not self.valid:
            self.problem(name, f"must be an object ({{...}}), not {type(source).__name__} {describe(source)}")

    def problem(self, field: str, text: str) -> None:
        self.problems.append(f"{self.path}: {field} {text}")

    def field(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def integer(self, key: str, allowed: tuple[int, int], required: bool = True) -> int | None:
        value = self.source.get(key)
        if value is None:
            if required and self.valid:
                self.problem(self.field(key), "is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(self.field(key), f"must be a whole number, not {describe(value)}")
            return None
        low, high = allowed
        if not low <= value <= high:
            self.problem(self.field(key), f"= {value} is outside the allowed range {low}..{high}")
            return None
        return value

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.source.get(key)
        if value is None:
            if required and self.valid:
                self.problem(self.field(key), "is missing")
            return None
        if not isinstance(value, str) or not value:
            self.problem(self.field(key), f"must be a non-empty string, not {describe(value)}")
            return None
        return value

    def relative_path(self, key: str, suffix: str | None = None, default: str | None = None) -> str | None:
        """A path inside the bundle, as written: relative, forward slashes, no `..`; `suffix` is the only format."""
        value = self.text(key, required=default is None)
        if value is None:
            return default if key not in self.source else None
        return check_relative_path(value, self.field(key), self.path, self.problems, suffix)


def check_relative_path(value: str, field: str, path: Path, problems: list[str],
                        suffix: str | None = None) -> str | None:
    """`value` when it names a place inside the bundle in the bundle's own format, else None and a problem."""
    pure = PurePosixPath(value)
    if pure.is_absolute() or "\\" in value or "\0" in value or (len(value) > 1 and value[1] == ":"):
        problems.append(f"{path}: {field} = {describe(value)} must be a path relative to the bundle folder")
        return None
    if ".." in pure.parts:
        problems.append(f"{path}: {field} = {describe(value)} points outside the bundle folder ('..' is not allowed)")
        return None
    if suffix is not None and pure.suffix.lower() != suffix:
        problems.append(f"{path}: {field} = {describe(value)} is not a {suffix} file (only {suffix} is loaded here)")
        return None
    return value


def parse_litert(fields: Fields, problems: list[str]) -> tuple[bool, LiteRTSpec | None]:
    """A section's optional "litert" object -> (valid, spec); a section without one is valid with None."""
    if "litert" not in fields.source:
        return True, None
    litert = Fields(fields.source["litert"], fields.field("litert"), fields.path, problems)
    before = len(problems)
    file = litert.relative_path("file", LITERT_SUFFIX)
    sizes = litert.source.get("batch_sizes")
    batch_sizes = None
    if not isinstance(sizes, list) or not sizes or any(isinstance(size, bool) or not isinstance(size, int) or
                                                       not BATCH_SIZE_RANGE[0] <= size <= BATCH_SIZE_RANGE[1]
                                                       for size in sizes):
        if litert.valid:
            litert.problem(litert.field("batch_sizes"), f"must be a non-empty list of whole numbers in "
                           f"{BATCH_SIZE_RANGE[0]}..{BATCH_SIZE_RANGE[1]}, not {describe(sizes)}")
    else:
        batch_sizes = tuple(sorted(set(sizes)))
    source = litert.text("source_sha256")
    if len(problems) > before or file is None or batch_sizes is None:
        return False, None
    return True, LiteRTSpec(file, batch_sizes, source)


def parse_generator(source: Any, path: Path, problems: list[str]) -> GeneratorSpec | None:
    fields = Fields(source, "generator", path, problems)
    values = (fields.relative_path("file", MODEL_SUFFIX), fields.integer("resolution", RESOLUTION_RANGE),
              fields.integer("latent_dim", LATENT_DIM_RANGE))
    architecture, steps = fields.text("architecture"), fields.integer("steps", (0, 1 << 62), required=False)
    litert_valid, litert = parse_litert(fields, problems)
    if not fields.valid or None in values or not litert_valid:
        return None
    return GeneratorSpec(*values, architecture=architecture, steps=steps, litert=litert)


def parse_upscaler(source: Any, path: Path, problems: list[str]) -> UpscalerSpec | None:
    fields = Fields(source, "upscaler", path, problems)
    file, scale = fields.relative_path("file", MODEL_SUFFIX), fields.integer("scale", SCALE_RANGE)
    architecture = fields.text("architecture")
    input_size = fields.integer("input_size", RESOLUTION_RANGE, required=False)
    output_size = fields.integer("output_size", (1, RESOLUTION_RANGE[1] * SCALE_RANGE[1]), required=False)
    litert_valid, litert = parse_litert(fields, problems)
    if not fields.valid or file is None or scale is None or not litert_valid:
        return None
    if input_size is not None and output_size is not None and output_size != input_size * scale:
        fields.problem("upscaler.output_size", f"= {output_size} is not input_size {input_size} x scale {scale}")
        return None
    return UpscalerSpec(file, scale, architecture, input_size, output_size, litert)


def parse_index(source: Any, path: Path, problems: list[str], default_path: str) -> IndexSpec | None:
    fields = Fields(source, "index", path, problems)
    folder = fields.relative_path("path", default=default_path)
    count = fields.integer("count", (0, 1 << 40), required=False)
    extractor = Fields(fields.source.get("extractor", {}), "index.extractor", path, problems)
    name = extractor.text("name")
    dims = None
    if "dims" in fields.source:
        dims_fields = Fields(fields.source["dims"], "index.dims", path, problems)
        dims = {key: dims_fields.integer(key, FEATURE_DIM_RANGE) for key in dims_fields.source}
    litert_valid, litert = parse_litert(fields, problems)
    if not (fields.valid and extractor.valid and litert_valid) or folder is None or \
            (dims is not None and None in dims.values()):
        return None
    return IndexSpec(folder, name, count, MappingProxyType(dims) if dims is not None else None, litert)


def parse_manifest(raw: Any, path: Path, default_index_path: str = "index") -> Manifest:
    """The validated manifest; raises BundleError listing every problem, one line each."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise BundleError(f"{path} is not a Masquerade bundle manifest (format must be {FORMAT!r})")
    problems: list[str] = []
    top = Fields(raw, "", path, problems)
    version = top.integer("format_version", (1, 1 << 31))
    if version is not None and version > FORMAT_VERSION:
        raise BundleError(f"{path} has format_version {version}; this Masquerade reads up to {FORMAT_VERSION}: "
                          "upgrade Masquerade")
    sections = {
        "generator": parse_generator(raw["generator"], path, problems) if "generator" in raw else None,
        "upscaler": parse_upscaler(raw["upscaler"], path, problems) if "upscaler" in raw else None,
        "index": parse_index(raw["index"], path, problems, default_index_path) if "index" in raw else None,
    }
    fingerprint = None
    if "dataset" in raw:
        fingerprint = Fields(raw["dataset"], "dataset", path, problems).text("fingerprint")
    if problems:
        raise BundleError(problems)
    return Manifest(path, version, dataset_fingerprint=fingerprint, **sections)
