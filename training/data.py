"""Dataset ingest (image folder -> TFRecord shards + manifest) and the tf.data reader.

The on-disk format is described in docs/CONVENTIONS.md ("Dataset on disk"). All file access goes
through `tf.io.gfile`, so both the source folder and the output folder may be `gs://` paths.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import posixpath
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from tqdm import tqdm

logger = logging.getLogger(__name__)

DATASET_FORMAT = "masquerade-dataset"
DATASET_FORMAT_VERSION = 1
REPORT_FORMAT = "masquerade-ingest-report"
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.json"
SHARD_DIR = "shards"
METADATA_FIELDS = ("title", "culture", "material", "source", "license")
METADATA_SIDECARS = ("metadata.csv", "metadata.json")

# Pillow plugin ids tried when opening a file; anything else counts as "not an image".
# (Multi-picture JPEGs from cameras open through the JPEG plugin and report format "MPO".)
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")
SUPPORTED_FORMATS_TEXT = "JPEG, PNG, WebP, BMP or TIFF"
# Used only to word the reason for a file Pillow cannot identify: with one of these extensions it is
# reported as corrupt, otherwise as not an image. Detection itself is by content.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff"}
)

IMAGE_SIZE_RANGE = (16, 2048)
MIN_SIZE_RANGE = (1, 65536)
NUM_SHARDS_RANGE = (1, 10000)
DEDUPE_THRESHOLD_RANGE = (-1, 64)
RESOLUTION_RANGE = (4, 4096)
IMAGES_PER_SHARD = 1000
FIT_MODES = ("crop", "pad")

# Errors Pillow raises for unreadable, truncated or hostile files. struct.error comes from
# malformed binary headers (EXIF, TIFF tags) that some plugins do not wrap.
_DECODE_ERRORS = (OSError, Image.DecompressionBombError, SyntaxError, ValueError, struct.error)

CATEGORY_CORRUPT = "corrupt"
CATEGORY_NOT_IMAGE = "not_image"
CATEGORY_TOO_SMALL = "too_small"
CATEGORY_DUPLICATE = "duplicate"


# --------------------------------------------------------------------------------------------------
# Configuration and report


@dataclass(frozen=True)
class IngestConfig:
    """How an image folder becomes a dataset.

    image_size: side of the square training images (16..2048).
    min_size: images whose shorter side (after EXIF rotation) is below this are skipped.
    fit: "crop" takes the centre square; "pad" letterboxes onto `background`.
    background: RGB used under transparent pixels and for padding. Black by default, because black
        is what most GAN training sets of cut-out objects look like; pass (255, 255, 255) for white.
    dedupe_threshold: near duplicates are images whose perceptual hashes differ in at most this many
        of 64 bits; -1 disables near-duplicate removal (byte-identical files are always dropped).
    num_shards: TFRecord shard count; None picks about one shard per 1000 files.
    metadata: path of a CSV or JSON sidecar with per-file title, culture, material, source, license.
        None looks for metadata.csv / metadata.json at the root of the source folder.
    """

    image_size: int = 256
    min_size: int = 64
    fit: str = "crop"
    background: tuple[int, int, int] = (0, 0, 0)
    dedupe_threshold: int = 6
    num_shards: int | None = None
    metadata: str | None = None

    def __post_init__(self) -> None:
        _check_int("image_size", self.image_size, *IMAGE_SIZE_RANGE)
        _check_int("min_size", self.min_size, *MIN_SIZE_RANGE)
        if self.fit not in FIT_MODES:
            raise ValueError(f"fit must be one of {', '.join(FIT_MODES)}, got {self.fit!r}")
        background = tuple(self.background) if isinstance(self.background, Sequence) else None
        if (
            background is None
            or len(background) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in background)
        ):
            raise ValueError(f"background must be three integers in 0..255 (an RGB colour), got {self.background!r}")
        object.__setattr__(self, "background", background)
        _check_int("dedupe_threshold", self.dedupe_threshold, *DEDUPE_THRESHOLD_RANGE)
        if self.num_shards is not None:
            _check_int("num_shards", self.num_shards, *NUM_SHARDS_RANGE)
        if self.metadata is not None:
            path = os.fspath(self.metadata)
            if not path.lower().endswith((".csv", ".json")):
                raise ValueError(f"metadata must name a .csv or .json file, got {path!r}")
            object.__setattr__(self, "metadata", path)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["background"] = list(self.background)
        return data


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")


@dataclass(frozen=True)
class DroppedFile:
    """A source file that did not make it into the dataset, and why."""

    source_path: str
    category: str  # "corrupt" | "not_image" | "too_small" | "duplicate"
    reason: str
    duplicate_of: str | None = None  # for duplicates: the kept file it duplicates
    distance: int | None = None  # for duplicates: pHash Hamming distance (0 for byte-identical files)


@dataclass
class IngestReport:
    """What `ingest` did: counts, the kept files in id order and every dropped file with its reason."""

    source_dir: str
    out_dir: str
    config: IngestConfig
    seen: int = 0
    kept_files: list[str] = field(default_factory=list)  # source paths; the index is the image id
    dropped_files: list[DroppedFile] = field(default_factory=list)
    metadata_path: str | None = None
    metadata_rows: int = 0
    metadata_matched: int = 0  # kept images that received metadata
    metadata_unmatched: list[str] = field(default_factory=list)  # sidecar keys that matched no file
    shards: list[str] = field(default_factory=list)
    fingerprint: str | None = None

    def _count(self, category: str) -> int:
        return sum(1 for dropped in self.dropped_files if dropped.category == category)

    @property
    def kept(self) -> int:
        return len(self.kept_files)

    @property
    def skipped_corrupt(self) -> int:
        return self._count(CATEGORY_CORRUPT)

    @property
    def skipped_not_image(self) -> int:
        return self._count(CATEGORY_NOT_IMAGE)

    @property
    def skipped_too_small(self) -> int:
        return self._count(CATEGORY_TOO_SMALL)

    @property
    def dropped_duplicate(self) -> int:
        return self._count(CATEGORY_DUPLICATE)

    def counts(self) -> dict[str, int]:
        return {
            "seen": self.seen,
            "kept": self.kept,
            "skipped_corrupt": self.skipped_corrupt,
            "skipped_not_image": self.skipped_not_image,
            "skipped_too_small": self.skipped_too_small,
            "dropped_duplicate": self.dropped_duplicate,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "format_version": DATASET_FORMAT_VERSION,
            "source_dir": self.source_dir,
            "out_dir": self.out_dir,
            "config": self.config.to_dict(),
            "counts": self.counts(),
            "kept": [{"id": index, "source_path": path} for index, path in enumerate(self.kept_files)],
            "dropped": [
                {key: value for key, value in dataclasses.asdict(dropped).items() if value is not None}
                for dropped in self.dropped_files
            ],
            "metadata": {
                "path": self.metadata_path,
                "rows": self.metadata_rows,
                "matched": self.metadata_matched,
                "unmatched": list(self.metadata_unmatched),
            },
            "shards": list(self.shards),
            "fingerprint": self.fingerprint,
        }

    def summary(self) -> str:
        config = self.config
        parts = [
            f"Kept {self.kept} of {self.seen} files from {self.source_dir} as "
            f"{config.image_size}x{config.image_size} ({config.fit}) in {self.out_dir}"
            f" ({len(self.shards)} shard{'s' if len(self.shards) != 1 else ''})."
        ]
        skipped = []
        if self.skipped_corrupt:
            skipped.append(f"{self.skipped_corrupt} corrupt or unreadable")
        if self.skipped_not_image:
            skipped.append(f"{self.skipped_not_image} not an image")
        if self.skipped_too_small:
            skipped.append(f"{self.skipped_too_small} smaller than {config.min_size} px")
        if self.dropped_duplicate:
            skipped.append(f"{self.dropped_duplicate} duplicate{'s' if self.dropped_duplicate != 1 else ''}")
        if skipped:
            parts.append("Skipped: " + ", ".join(skipped) + f" (details in {REPORT_NAME}).")
        if self.metadata_path:
            text = f"Metadata from {self.metadata_path}: {self.metadata_matched} of {self.kept} images matched"
            if self.metadata_unmatched:
                text += f", {len(self.metadata_unmatched)} rows matched no file"
            parts.append(text + ".")
        return " ".join(parts)


# --------------------------------------------------------------------------------------------------
# Pure image helpers


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """Convert any Pillow image to 8-bit RGB, compositing transparency onto `background`.

    High bit-depth greyscale (I;16, I, F) is rescaled to 0..255 rather than clipped.
    """
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        gray = high_depth_to_uint8(np.asarray(image), mode)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA")
    if has_alpha or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if mode == "RGB":
        return image
    return image.convert("RGB")


def high_depth_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16-bit, 32-bit integer or float greyscale array to uint8 (65535 -> 255, 32768 -> 128)."""
    values = values.astype(np.float64)
    if mode.startswith("I;16"):
        scale = 65535.0
    else:
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if mode == "F" and low >= 0.0 and high <= 1.0:
            scale = 1.0
        elif low >= 0.0 and high <= 255.0:
            scale = 255.0
        elif low >= 0.0 and high <= 65535.0:
            # Mode "I" from 16-bit PNG/TIFF data: treat as 16 bit.
            scale = 65535.0
        else:
            values = values - low
            scale = max(high - low, 1e-12)
    return np.clip(np.round(values * (255.0 / scale)), 0, 255).astype(np.uint8)


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    """CMYK to sRGB through the embedded ICC profile when there is one, else Pillow's naive formula."""
    profile = image.info.get("icc_profile")
    if profile:
        try:
            return ImageCms.profileToProfile(
                image,
                ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
        except (ImageCms.PyCMSError, OSError, ValueError) as error:
            logger.debug("ICC conversion failed (%s); using the naive CMYK formula", error)
    return image.convert("RGB")


def fit_square(
    image: Image.Image, size: int, fit: str = "crop", background: tuple[int, int, int] = (0, 0, 0)
) -> Image.Image:
    """Centre-crop (fit="crop") or letterbox (fit="pad") an RGB image to a size x size square (LANCZOS)."""
    width, height = image.size
    if fit == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return image.resize(
            (size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side), reducing_gap=3.0
        )
    if fit != "pad":
        raise ValueError(f"fit must be one of {', '.join(FIT_MODES)}, got {fit!r}")
    scale = size / max(width, height)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    resized = image.resize((new_width, new_height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), tuple(background))
    canvas.paste(resized, ((size - new_width) // 2, (size - new_height) // 2))
    return canvas


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    matrix = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * x + 1) * k / (2 * n))
    matrix[0] /= np.sqrt(2.0)
    return matrix


_DCT_32 = _dct_matrix(32)


def perceptual_hash(image: Image.Image) -> int:
    """64-bit DCT perceptual hash: 32x32 greyscale, 2-D DCT, low 8x8 block thresholded at its AC median."""
    gray = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    coefficients = (_DCT_32 @ gray @ _DCT_32.T)[:8, :8].ravel()
    median = np.median(coefficients[1:])  # the DC term would dominate the median, so leave it out
    value = 0
    for bit in np.flatnonzero(coefficients > median):
        value |= 1 << int(bit)
    return value


def hamming_distance(first: int, second: int) -> int:
    return (first ^ second).bit_count()


# --------------------------------------------------------------------------------------------------
# Metadata sidecar


def read_metadata(path: str) -> dict[str, dict[str, str | None]]:
    """Read a CSV or JSON metadata sidecar into {file key: {title, culture, material, source, license}}.

    CSV: a header row with a `file` or `file_name` column. JSON: a list of objects with `file` (or
    `file_name`), or an object keyed by file name. Keys are relative paths or bare file names.
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"metadata file {path} does not exist; fix the path or leave it out")
    with tf.io.gfile.GFile(path, "rb") as handle:
        text = handle.read().decode("utf-8-sig")
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        columns = {name.strip().lower(): name for name in (reader.fieldnames or []) if name}
        key_column = columns.get("file") or columns.get("file_name")
        if key_column is None:
            raise ValueError(
                f"metadata file {path} has no 'file' or 'file_name' column "
                f"(columns: {', '.join(columns) or 'none'}); add a header column naming each image"
            )
        for row in reader:
            normalized = {name.strip().lower(): value for name, value in row.items() if isinstance(name, str)}
            rows.append((row.get(key_column) or "", normalized))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"metadata file {path} is not valid JSON ({error}); fix or remove it") from None
        if isinstance(data, dict):
            for key, value in data.items():
                if not isinstance(value, dict):
                    raise ValueError(f"metadata file {path}: entry {key!r} must be an object with title, culture, ...")
                rows.append((key, {str(name).lower(): item for name, item in value.items()}))
        elif isinstance(data, list):
            for position, value in enumerate(data):
                if not isinstance(value, dict):
                    raise ValueError(f"metadata file {path}: item {position} must be an object")
                normalized = {str(name).lower(): item for name, item in value.items()}
                rows.append((normalized.get("file") or normalized.get("file_name") or "", normalized))
        else:
            raise ValueError(
                f"metadata file {path} must hold a list of objects with 'file' or an object keyed by file name"
            )

    entries: dict[str, dict[str, str | None]] = {}
    for raw_key, values in rows:
        key = _normalize_key(str(raw_key))
        if not key:
            logger.warning("metadata file %s: skipping a row without a file name", path)
            continue
        if key in entries:
            logger.warning("metadata file %s: %s appears more than once; the last row wins", path, key)
        entries[key] = {name: _clean_value(values.get(name)) for name in METADATA_FIELDS}
    return entries


def _normalize_key(key: str) -> str:
    key = key.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key


def _clean_value(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _empty_metadata() -> dict[str, str | None]:
    return dict.fromkeys(METADATA_FIELDS)


def _match_metadata(
    entries: dict[str, dict[str, str | None]], relative_paths: Iterable[str]
) -> tuple[dict[str, dict[str, str | None]], list[str]]:
    """Match sidecar keys to files: by relative path first, then by bare file name."""
    matched: dict[str, dict[str, str | None]] = {}
    used: set[str] = set()
    for relative in relative_paths:
        for key in (relative, posixpath.basename(relative)):
            if key in entries:
                matched[relative] = entries[key]
                used.add(key)
                break
    unmatched = sorted(key for key in entries if key not in used)
    return matched, unmatched


# --------------------------------------------------------------------------------------------------
# Paths


def _is_remote(path: str) -> bool:
    return "://" in path


def _join(base: str, *parts: str) -> str:
    if _is_remote(base):
        return "/".join([base.rstrip("/"), *parts])
    return os.path.join(base, *parts)


def _canonical(path: str) -> str:
    return path.rstrip("/") if _is_remote(path) else os.path.normcase(os.path.abspath(path))


def _dataset_artifacts(data_dir: str) -> list[str]:
    return [_join(data_dir, name) for name in (MANIFEST_NAME, REPORT_NAME, SHARD_DIR)]


def _holds_dataset(directory: str) -> bool:
    try:
        with tf.io.gfile.GFile(_join(directory, MANIFEST_NAME), "rb") as handle:
            return json.loads(handle.read()).get("format") == DATASET_FORMAT
    except (tf.errors.OpError, ValueError, AttributeError):
        return False


def _list_files(source_dir: str, exclude: Sequence[str]) -> list[tuple[str, str]]:
    """All non-hidden files under source_dir as sorted (relative posix path, full path) pairs.

    Skips `exclude` and the files of any Masquerade dataset found inside source_dir.
    """
    excluded = [_canonical(path) for path in exclude]
    root = source_dir.rstrip("/") if _is_remote(source_dir) else source_dir
    separator = "/" if _is_remote(source_dir) else os.sep
    files = []
    for directory, _, names in tf.io.gfile.walk(root):
        directory = directory.rstrip("/") if _is_remote(directory) else directory
        if MANIFEST_NAME in names and _holds_dataset(directory):
            excluded += [_canonical(path) for path in _dataset_artifacts(directory)]
        for name in names:
            name = name.rstrip("/")
            full = _join(directory, name)
            if _is_remote(root):
                relative = full[len(root) :].lstrip("/")
            else:
                relative = os.path.relpath(full, root).replace(os.sep, "/")
            if any(part.startswith(".") for part in relative.split("/")):
                continue
            canonical = _canonical(full)
            if any(canonical == other or canonical.startswith(other + separator) for other in excluded):
                continue
            files.append((relative, full))
    files.sort()
    return files


def _find_metadata(source_dir: str, configured: str | None) -> str | None:
    if configured is not None:
        if not tf.io.gfile.exists(configured):
            raise FileNotFoundError(f"metadata file {configured} does not exist; fix the path or leave it out")
        return configured
    found = [_join(source_dir, name) for name in METADATA_SIDECARS if tf.io.gfile.exists(_join(source_dir, name))]
    if len(found) > 1:
        logger.warning("both %s exist; using %s", " and ".join(METADATA_SIDECARS), found[0])
    return found[0] if found else None


# --------------------------------------------------------------------------------------------------
# Decoding one file


@dataclass
class _Decoded:
    image: Image.Image  # RGB, upright, possibly reduced by JPEG draft decoding
    original_size: tuple[int, int]  # (width, height) at full resolution after EXIF rotation


def _decode(data: bytes, relative: str, config: IngestConfig) -> _Decoded | DroppedFile:
    extension = posixpath.splitext(relative)[1].lower()
    try:
        image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError:
        if extension in IMAGE_EXTENSIONS:
            reason = "empty file" if not data else f"cannot identify image data although the name ends in {extension}"
            return DroppedFile(relative, CATEGORY_CORRUPT, reason)
        return DroppedFile(relative, CATEGORY_NOT_IMAGE, f"not an image (supported: {SUPPORTED_FORMATS_TEXT})")
    except _DECODE_ERRORS as error:
        return DroppedFile(relative, CATEGORY_CORRUPT, f"cannot open: {error}")

    with image:
        try:
            width, height = image.size
            if min(width, height) < config.min_size:
                return DroppedFile(
                    relative,
                    CATEGORY_TOO_SMALL,
                    f"{width}x{height} px is smaller than min_size {config.min_size} px on the shorter side",
                )
            if image.format in ("JPEG", "MPO"):
                # Let libjpeg decode at a reduced scale that still leaves at least 2x the target size.
                image.draft(None, (2 * config.image_size, 2 * config.image_size))
            image.load()
            upright = ImageOps.exif_transpose(image)
            if upright.size != image.size:  # EXIF orientations 5..8 swap width and height
                width, height = height, width
            rgb = to_rgb(upright, config.background)
            rgb.load()
        except _DECODE_ERRORS as error:
            return DroppedFile(relative, CATEGORY_CORRUPT, f"cannot decode: {error}")
    return _Decoded(rgb, (width, height))


# --------------------------------------------------------------------------------------------------
# Ingest


class _ShardWriter:
    """Round-robin TFRecord writers under temporary names, opened only when they receive an example."""

    def __init__(self, shard_dir: str, num_shards: int, token: str):
        self.shard_dir = shard_dir
        self.num_shards = num_shards
        self.token = token
        self.writers: dict[int, tf.io.TFRecordWriter] = {}

    def temp_path(self, index: int) -> str:
        return _join(self.shard_dir, f".tmp-{self.token}-{index:05d}.tfrecord")

    def write(self, image_id: int, record: bytes) -> None:
        index = image_id % self.num_shards
        if index not in self.writers:
            self.writers[index] = tf.io.TFRecordWriter(self.temp_path(index))
        self.writers[index].write(record)

    def close(self) -> list[int]:
        for writer in self.writers.values():
            writer.close()
        return sorted(self.writers)

    def discard(self) -> None:
        for index in self.close():
            path = self.temp_path(index)
            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)


def shard_name(index: int, count: int) -> str:
    return f"{SHARD_DIR}/train-{index:05d}-of-{count:05d}.tfrecord"


def _example(png: bytes, image_id: int) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
        "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[image_id])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _write_json_atomic(path: str, payload: dict[str, Any], token: str) -> None:
    temp = f"{path}.tmp-{token}"
    with tf.io.gfile.GFile(temp, "w") as handle:
        handle.write(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    tf.io.gfile.rename(temp, path, overwrite=True)


def dataset_fingerprint(sha256s: Iterable[str]) -> str:
    """sha256 over the sorted source-file sha256 hex digests, one per line."""
    return hashlib.sha256("\n".join(sorted(sha256s)).encode("ascii")).hexdigest()


def ingest(
    source_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: IngestConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> IngestReport:
    """Turn a folder of images (searched recursively) into TFRecord shards, manifest.json and report.json.

    Files are processed in sorted relative-path order; of two duplicates the first one is kept.
    Raises ValueError when out_dir already holds a dataset (unless overwrite) or nothing is readable.
    """
    config = config or IngestConfig()
    source_dir, out_dir = os.fspath(source_dir), os.fspath(out_dir)
    if not tf.io.gfile.isdir(source_dir):
        raise FileNotFoundError(
            f"source folder {source_dir} does not exist or is not a folder; pass a folder of images"
        )
    manifest_path = _join(out_dir, MANIFEST_NAME)
    if tf.io.gfile.exists(manifest_path) and not overwrite:
        raise ValueError(
            f"{out_dir} already holds a dataset ({MANIFEST_NAME}); pass overwrite=True (--overwrite) "
            "to replace it or choose another output folder"
        )

    metadata_path = _find_metadata(source_dir, config.metadata)
    metadata_entries = read_metadata(metadata_path) if metadata_path else {}
    # The output may live inside the source folder (even be it): skip what ingest itself writes.
    excluded = _dataset_artifacts(out_dir)
    excluded += [metadata_path] if metadata_path else []
    files = _list_files(source_dir, excluded)
    if not files:
        raise ValueError(f"no readable images in {source_dir} (0 files seen); add {SUPPORTED_FORMATS_TEXT} files to it")
    metadata_by_file, unmatched = _match_metadata(metadata_entries, (relative for relative, _ in files))

    report = IngestReport(
        source_dir=source_dir,
        out_dir=out_dir,
        config=config,
        metadata_path=metadata_path,
        metadata_rows=len(metadata_entries),
        metadata_unmatched=unmatched,
    )
    num_shards = config.num_shards or max(1, math.ceil(len(files) / IMAGES_PER_SHARD))
    token = uuid.uuid4().hex[:12]
    shard_dir = _join(out_dir, SHARD_DIR)
    tf.io.gfile.makedirs(shard_dir)
    writer = _ShardWriter(shard_dir, num_shards, token)

    images: list[dict[str, Any]] = []
    kept_by_sha: dict[str, str] = {}
    hashes = np.zeros(len(files), dtype=np.uint64)  # perceptual hashes of the kept images, in id order
    try:
        for relative, full in tqdm(files, desc="ingest", unit="file", disable=not progress):
            report.seen += 1
            try:
                with tf.io.gfile.GFile(full, "rb") as handle:
                    data = handle.read()
            except tf.errors.OpError as error:
                report.dropped_files.append(DroppedFile(relative, CATEGORY_CORRUPT, f"cannot read: {error.message}"))
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in kept_by_sha:
                report.dropped_files.append(
                    DroppedFile(relative, CATEGORY_DUPLICATE, "exact duplicate (same sha256)", kept_by_sha[digest], 0)
                )
                continue

            decoded = _decode(data, relative, config)
            if isinstance(decoded, DroppedFile):
                report.dropped_files.append(decoded)
                continue

            image_hash = perceptual_hash(decoded.image)
            if config.dedupe_threshold >= 0 and report.kept_files:
                distances = np.bitwise_count(hashes[: len(report.kept_files)] ^ np.uint64(image_hash))
                nearest = int(np.argmin(distances))
                distance = int(distances[nearest])
                if distance <= config.dedupe_threshold:
                    report.dropped_files.append(
                        DroppedFile(
                            relative,
                            CATEGORY_DUPLICATE,
                            f"near duplicate (perceptual hash distance {distance} <= {config.dedupe_threshold})",
                            report.kept_files[nearest],
                            distance,
                        )
                    )
                    continue

            square = fit_square(decoded.image, config.image_size, config.fit, config.background)
            image_id = len(report.kept_files)
            writer.write(image_id, _example(_encode_png(square), image_id))
            hashes[image_id] = np.uint64(image_hash)
            kept_by_sha[digest] = relative
            report.kept_files.append(relative)
            images.append(
                {
                    "id": image_id,
                    "source_path": relative,
                    "sha256": digest,
                    "original_size": list(decoded.original_size),
                    "metadata": dict(metadata_by_file.get(relative) or _empty_metadata()),
                }
            )
    except BaseException:
        writer.discard()
        raise

    used = writer.close()
    if not images:
        writer.discard()
        counts = report.counts()
        seen_text = ", ".join(
            f"{counts[key]} {label}"
            for key, label in (
                ("skipped_not_image", "not an image"),
                ("skipped_corrupt", "corrupt"),
                ("skipped_too_small", "too small"),
            )
            if counts[key]
        )
        raise ValueError(
            f"no readable images in {source_dir} ({report.seen} files seen: {seen_text}); "
            f"add {SUPPORTED_FORMATS_TEXT} files at least {config.min_size} px on the shorter side"
        )
    if len(used) < num_shards:
        logger.info("only %d images: writing %d shards instead of %d", len(images), len(used), num_shards)

    # Commit: first invalidate any old dataset (manifest goes first, so an interruption leaves no
    # manifest rather than one that points at the wrong shards), then move the new shards into place
    # and write the manifest last.
    if tf.io.gfile.exists(manifest_path):
        tf.io.gfile.remove(manifest_path)
    for name in tf.io.gfile.listdir(shard_dir):
        name = name.rstrip("/")
        stale = name.startswith(".tmp-") and not name.startswith(f".tmp-{token}-")
        if stale or (name.startswith("train-") and name.endswith(".tfrecord")):
            tf.io.gfile.remove(_join(shard_dir, name))
    report.shards = [shard_name(position, len(used)) for position in range(len(used))]
    for position, index in enumerate(used):
        tf.io.gfile.rename(writer.temp_path(index), _join(out_dir, *report.shards[position].split("/")), overwrite=True)
    report.fingerprint = dataset_fingerprint(entry["sha256"] for entry in images)
    report.metadata_matched = sum(1 for entry in images if any(v is not None for v in entry["metadata"].values()))

    manifest = {
        "format": DATASET_FORMAT,
        "format_version": DATASET_FORMAT_VERSION,
        "image_size": config.image_size,
        "count": len(images),
        "fingerprint": report.fingerprint,
        "shards": report.shards,
        "images": images,
    }
    _write_json_atomic(_join(out_dir, REPORT_NAME), report.to_dict(), token)
    _write_json_atomic(manifest_path, manifest, token)
    logger.info("%s", report.summary())
    return report


# --------------------------------------------------------------------------------------------------
# Reader


def load_manifest(data_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check DATA_DIR/manifest.json."""
    data_dir = os.fspath(data_dir)
    path = _join(data_dir, MANIFEST_NAME)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"no dataset in {data_dir} ({MANIFEST_NAME} missing); run the ingest step on an image folder first"
        )
    with tf.io.gfile.GFile(path, "r") as handle:
        try:
            manifest = json.loads(handle.read())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}); re-run ingest") from None
    if not isinstance(manifest, dict) or manifest.get("format") != DATASET_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{path} is not a Masquerade dataset manifest (format {found!r}); point at an ingest output")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > DATASET_FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version!r}; this code reads up to {DATASET_FORMAT_VERSION}, upgrade Masquerade"
        )
    missing = [key for key in ("image_size", "count", "shards", "images") if key not in manifest]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}; re-run ingest")
    return manifest


_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "id": tf.io.FixedLenFeature([], tf.int64),
}


def parse_example(serialized: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """One serialized tf.train.Example -> (uint8 image [image_size, image_size, 3], int64 id)."""
    features = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_png(features["image"], channels=3)
    image = tf.ensure_shape(image, [image_size, image_size, 3])
    return image, features["id"]


def resize_uint8(image: tf.Tensor, resolution: int) -> tf.Tensor:
    """Resize a uint8 HWC (or NHWC) square image: area filter when shrinking, bilinear when enlarging."""
    size = image.shape[-2]
    if size == resolution:
        return image
    method = "area" if size is not None and resolution < size else "bilinear"
    resized = tf.image.resize(image, [resolution, resolution], method=method, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def to_float(image: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def shard_paths(data_dir: str, manifest: dict[str, Any]) -> list[str]:
    return [_join(data_dir, *shard.split("/")) for shard in manifest["shards"]]


def make_dataset(
    data_dir: str | os.PathLike,
    resolution: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    repeat: bool = True,
    cache: bool = True,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    augment_flip: bool = False,
    shuffle_buffer: int = 4096,
) -> tf.data.Dataset:
    """Batches of float32 NHWC images in [-1, 1] at `resolution`, with the remainder dropped.

    batch_size is the global batch size; with an input_context this pipeline produces per-replica
    batches and reads its share of the shards (or of the examples, when there are fewer shards than
    input pipelines). The cache holds uint8 images at `resolution`.
    """
    data_dir = os.fspath(data_dir)
    _check_int("resolution", resolution, *RESOLUTION_RANGE)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    manifest = load_manifest(data_dir)
    image_size = int(manifest["image_size"])
    count = int(manifest["count"])
    if not repeat and count < batch_size:
        raise ValueError(
            f"batch_size {batch_size} is larger than the dataset in {data_dir} ({count} images) and "
            "repeat=False would yield no batch; use batch_size <= count or repeat=True"
        )

    files = shard_paths(data_dir, manifest)
    per_replica_batch = batch_size
    shard_examples = None
    if input_context is not None:
        per_replica_batch = input_context.get_per_replica_batch_size(batch_size)
        pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
        if pipelines > 1:
            if len(files) >= pipelines:
                files = files[pipeline_id::pipelines]
            else:
                shard_examples = (pipelines, pipeline_id)

    dataset = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE if len(files) > 1 else None)
    if shard_examples is not None:
        dataset = dataset.shard(*shard_examples)
    dataset = dataset.map(
        lambda record: resize_uint8(parse_example(record, image_size)[0], resolution),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(max(1, min(shuffle_buffer, count)), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if augment_flip:
        dataset = dataset.map(
            lambda image: tf.image.random_flip_left_right(image, seed=seed),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(per_replica_batch, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def distributed_dataset(
    strategy: tf.distribute.Strategy,
    data_dir: str | os.PathLike,
    resolution: int,
    global_batch_size: int,
    options: tf.distribute.InputOptions | None = None,
    **kwargs: Any,
) -> tf.distribute.DistributedDataset:
    """`make_dataset` distributed over `strategy`: one input pipeline per worker, per-replica batches.

    `options` with `InputReplicationMode.PER_REPLICA` gives every replica its own pipeline and share, as if
    each were a worker of its own (how a one-process run reproduces a multi-worker run exactly).
    """

    def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        return make_dataset(data_dir, resolution, global_batch_size, input_context=input_context, **kwargs)

    return strategy.distribute_datasets_from_function(dataset_fn, options)


def load_images(data_dir: str | os.PathLike, resolution: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All dataset images as uint8 NHWC in manifest id order, with their ids (for indexing and evaluation)."""
    data_dir = os.fspath(data_dir)
    manifest = load_manifest(data_dir)
    image_size = int(manifest["image_size"])
    resolution = image_size if resolution is None else resolution
    _check_int("resolution", resolution, *RESOLUTION_RANGE)
    dataset = tf.data.TFRecordDataset(shard_paths(data_dir, manifest))
    dataset = dataset.map(
        lambda record: _parse_and_resize(record, image_size, resolution), num_parallel_calls=tf.data.AUTOTUNE
    )
    images, ids = [], []
    for batch_images, batch_ids in dataset.batch(256).as_numpy_iterator():
        images.append(batch_images)
        ids.append(batch_ids)
    if not images:
        raise ValueError(f"dataset {data_dir} has no images in its shards; re-run ingest")
    all_images = np.concatenate(images)
    all_ids = np.concatenate(ids)
    if len(all_ids) != int(manifest["count"]):
        raise ValueError(
            f"dataset {data_dir} is incomplete: the manifest lists {manifest['count']} images but the "
            f"shards hold {len(all_ids)}; re-run ingest"
        )
    order = np.argsort(all_ids, kind="stable")
    return all_images[order], all_ids[order]


def _parse_and_resize(record: tf.Tensor, image_size: int, resolution: int) -> tuple[tf.Tensor, tf.Tensor]:
    image, image_id = parse_example(record, image_size)
    return resize_uint8(image, resolution), image_id
