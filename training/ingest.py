"""Ingest: an artist's image folder -> TFRecord shards, manifest.json, report.json (and a review sheet).

The dataset format is in docs/CONVENTIONS.md ("Dataset on disk"). Output goes through `tf.io.gfile`, so it
may be a `gs://` path. A local source folder is listed by `training/sources.py` (links, FIFOs, odd names),
a remote one by gfile. Every file that is not kept is reported with its reason; the run goes on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import posixpath
import signal
import struct
import threading
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from training import sources
from training.curation import (
    FIT_MODES,
    fine_distance,
    fine_thumbnail,
    frame_square,
    perceptual_hash,
    render_square,
    review_sheet,
    to_rgb,
)
from training.data import (
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    MANIFEST_NAME,
    METADATA_FIELDS,
    REPORT_NAME,
    REVIEW_SHEET_NAME,
    SHARD_DIR,
    _check_int,
    _is_remote,
    _join,
    dataset_artifacts,
    dataset_fingerprint,
    shard_name,
)
from training.metadata import _find_metadata, _match_metadata, read_metadata, read_small_file

logger = logging.getLogger(__name__)

REPORT_FORMAT = "masquerade-ingest-report"

# Pillow plugin ids tried when opening a file; anything else counts as "not an image".
# (Multi-picture JPEGs from cameras open through the JPEG plugin and report format "MPO".)
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
SUPPORTED_FORMATS_TEXT = "JPEG, PNG, WebP, BMP, TIFF or GIF"
# Used only to word the reason for a file Pillow cannot identify: with one of these extensions it is
# reported as corrupt, otherwise as not an image. Detection itself is by content.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif"}
)
# Formats Pillow names apart that share extensions.
_FORMAT_FAMILIES = ({"JPEG", "MPO"}, {"BMP", "DIB"})
# Formats whose several frames are an animation (a multi-page TIFF or an MPO's second picture is not).
_ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")

IMAGE_SIZE_RANGE = (16, 2048)
MIN_SIZE_RANGE = (1, 65536)
NUM_SHARDS_RANGE = (1, 10000)
DEDUPE_THRESHOLD_RANGE = (-1, 64)
DEDUPE_PIXEL_RMS_RANGE = (0.0, 1.0)
MAX_MEGAPIXELS_RANGE = (1, 1000)
IMAGES_PER_SHARD = 1000
# Files are read whole into memory; nothing this large is a picture ingest could use.
MAX_FILE_BYTES = 512 * 2**20
# Near-duplicate candidates compared finely per image: the nearest by hash distance.
_NEAREST_CANDIDATES = 16
REVIEW_SHEET_MAX_PAIRS = 48

# Errors Pillow raises for unreadable, truncated or hostile files. struct.error comes from
# malformed binary headers (EXIF, TIFF tags) that some plugins do not wrap.
_DECODE_ERRORS = (OSError, Image.DecompressionBombError, SyntaxError, ValueError, struct.error)

CATEGORY_CORRUPT = "corrupt"
CATEGORY_NOT_IMAGE = "not_image"
CATEGORY_TOO_SMALL = "too_small"
CATEGORY_TOO_LARGE = "too_large"
CATEGORY_ANIMATED = "animated"
CATEGORY_DUPLICATE = "duplicate"
CATEGORY_LINK = sources.CATEGORY_LINK
CATEGORY_SPECIAL = sources.CATEGORY_SPECIAL
CATEGORY_UNREADABLE = sources.CATEGORY_UNREADABLE

# (count key, category, words in the summary); the order of the report and the summary.
_COUNTED = (
    ("skipped_corrupt", CATEGORY_CORRUPT, "corrupt"),
    ("skipped_unreadable", CATEGORY_UNREADABLE, "unreadable"),
    ("skipped_not_image", CATEGORY_NOT_IMAGE, "not an image"),
    ("skipped_too_small", CATEGORY_TOO_SMALL, "too small"),
    ("skipped_too_large", CATEGORY_TOO_LARGE, "too large"),
    ("skipped_animated", CATEGORY_ANIMATED, "animated"),
    ("skipped_special", CATEGORY_SPECIAL, "not a regular file"),
    ("skipped_link", CATEGORY_LINK, "symbolic link not followed"),
    ("dropped_duplicate", CATEGORY_DUPLICATE, "duplicate"),
)


# --------------------------------------------------------------------------------------------------
# Configuration and report


@dataclass(frozen=True)
class IngestConfig:
    """How an image folder becomes a dataset.

    image_size: side of the square training images (16..2048).
    min_size: images whose shorter side (after EXIF rotation) is below this are skipped.
    fit: "crop" takes the centre square; "pad" letterboxes onto `background`; "object" finds the object
        against a plain background and keeps it whole (sliding the square onto it, padding with the
        image's background colour when the object is longer than the image is wide).
    background: RGB used under transparent pixels and for "pad". Black by default, because black is what
        most GAN training sets of cut-out objects look like; pass (255, 255, 255) for white.
    dedupe_threshold: near-duplicate candidates are images whose perceptual hashes differ in at most this
        many of 64 bits; -1 disables near-duplicate removal (byte-identical files are always dropped).
    dedupe_pixel_rms: a candidate is dropped only when its 16x16 greyscale thumbnail differs from the kept
        image's by at most this RMS (share of full scale, 0..1); 1.0 trusts the hash alone.
    max_megapixels: images that would decode to more pixels are reported, not decoded (JPEGs decode at a
        reduced scale first, so only that scale counts).
    num_shards: TFRecord shard count; None picks about one shard per 1000 files.
    metadata: path of a CSV or JSON sidecar with per-file title, culture, material, source, license.
        None looks for metadata.csv / metadata.json at the root of the source folder.
    """

    image_size: int = 256
    min_size: int = 64
    fit: str = "crop"
    background: tuple[int, int, int] = (0, 0, 0)
    dedupe_threshold: int = 6
    dedupe_pixel_rms: float = 0.025
    max_megapixels: int = 64
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
        low, high = DEDUPE_PIXEL_RMS_RANGE
        rms = self.dedupe_pixel_rms
        if isinstance(rms, bool) or not isinstance(rms, int | float) or not low <= rms <= high:
            raise ValueError(f"dedupe_pixel_rms must be a number in {low}..{high}, got {rms!r}")
        object.__setattr__(self, "dedupe_pixel_rms", float(rms))
        _check_int("max_megapixels", self.max_megapixels, *MAX_MEGAPIXELS_RANGE)
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


@dataclass(frozen=True)
class DroppedFile:
    """A source file that did not make it into the dataset, and why."""

    source_path: str
    category: str  # one of the CATEGORY_* values
    reason: str
    duplicate_of: str | None = None  # for duplicates: the kept file it duplicates
    distance: int | None = None  # for duplicates: pHash Hamming distance (0 for byte-identical files)
    pixel_rms: float | None = None  # for near duplicates: the fine comparison that confirmed it


@dataclass(frozen=True)
class ReviewPair:
    """Two images the near-duplicate filter was unsure about, for the artist to look at."""

    kept: str
    other: str
    distance: int  # perceptual hash distance
    pixel_rms: float  # fine comparison
    dropped: bool  # whether `other` was dropped as a duplicate of `kept`


class IngestInterrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP stopped ingest; its temporary files were removed."""

    def __init__(self, signum: int):
        super().__init__(f"ingest stopped by {signal.Signals(signum).name}; temporary files removed, run it again")
        self.signum = signum


@dataclass
class IngestReport:
    """What `ingest` did: counts, the kept files in id order and every dropped file with its reason."""

    source_dir: str
    out_dir: str
    config: IngestConfig
    seen: int = 0
    kept_files: list[str] = field(default_factory=list)  # source paths; the index is the image id
    dropped_files: list[DroppedFile] = field(default_factory=list)
    review_pairs: list[ReviewPair] = field(default_factory=list)
    review_sheet: str | None = None  # file name of the contact sheet of review_pairs, in out_dir
    notes: list[dict[str, str]] = field(default_factory=list)  # {"source_path", "note"} about kept files
    escaped_names: list[str] = field(default_factory=list)  # names that were not UTF-8, as reported
    cut_by_crop: int = 0  # kept images whose object reaches past the square that was cut out
    no_background: int = 0  # with fit "object": non-square images without a plain background (centre crop)
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
        return {"seen": self.seen, "kept": self.kept, **{key: self._count(category) for key, category, _ in _COUNTED}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "format_version": DATASET_FORMAT_VERSION,
            "source_dir": self.source_dir,
            "out_dir": self.out_dir,
            "config": self.config.to_dict(),
            "counts": self.counts(),
            "fit": {"mode": self.config.fit, "cut_by_crop": self.cut_by_crop, "no_background": self.no_background},
            "kept": [{"id": index, "source_path": path} for index, path in enumerate(self.kept_files)],
            "dropped": [
                {key: value for key, value in dataclasses.asdict(dropped).items() if value is not None}
                for dropped in self.dropped_files
            ],
            "review_pairs": [dataclasses.asdict(pair) for pair in self.review_pairs],
            "review_sheet": self.review_sheet,
            "notes": list(self.notes),
            "escaped_names": list(self.escaped_names),
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
        skipped = [f"{count} {words}" for count, words in self._skipped_counts() if count]
        if skipped:
            parts.append("Skipped: " + ", ".join(skipped) + f" (details in {REPORT_NAME}).")
        if self.cut_by_crop:
            parts.append(
                f"The centre crop cut into the object of {self.cut_by_crop} of {self.kept} images; "
                "--fit object keeps objects whole."
            )
        if self.no_background:
            parts.append(f"{self.no_background} images had no plain background to find the object on: centre-cropped.")
        if self.review_pairs:
            where = f", sheet {self.review_sheet}" if self.review_sheet else ""
            count = len(self.review_pairs)
            parts.append(f"{count} near-duplicate pairs to review (review_pairs in {REPORT_NAME}{where}).")
        if self.escaped_names:
            parts.append(f"{len(self.escaped_names)} file names were not UTF-8 and are listed with \\x escapes.")
        if self.metadata_path:
            text = f"Metadata from {self.metadata_path}: {self.metadata_matched} of {self.kept} images matched"
            if self.metadata_unmatched:
                text += f", {len(self.metadata_unmatched)} rows matched no file"
            parts.append(text + ".")
        return " ".join(parts)

    def _skipped_counts(self) -> list[tuple[int, str]]:
        config = self.config
        words = {
            CATEGORY_TOO_SMALL: f"smaller than {config.min_size} px",
            CATEGORY_TOO_LARGE: f"over {config.max_megapixels} megapixels or {MAX_FILE_BYTES // 2**20} MiB",
            CATEGORY_DUPLICATE: "duplicate" + ("s" if self.dropped_duplicate != 1 else ""),
        }
        return [(self._count(category), words.get(category, text)) for _, category, text in _COUNTED]


# --------------------------------------------------------------------------------------------------
# Listing and reading


def _canonical(path: str) -> str:
    return path.rstrip("/") if _is_remote(path) else os.path.normcase(os.path.abspath(path))


def _holds_dataset(directory: str) -> bool:
    try:
        data = read_small_file(_join(directory, MANIFEST_NAME), 256 * 2**20)
        return json.loads(data).get("format") == DATASET_FORMAT
    except (tf.errors.OpError, OSError, ValueError, AttributeError):
        return False


def _list_sources(source_dir: str, exclude: Sequence[str]) -> list[sources.SourceEntry]:
    """Every non-hidden name under source_dir, sorted, without `exclude` and any Masquerade dataset inside."""
    if _is_remote(source_dir):
        entries = _list_remote(source_dir)
    else:
        entries = sources.walk_local(source_dir)
    excluded = [_canonical(path) for path in exclude]
    for entry in entries:
        if entry.category is None and posixpath.basename(entry.relative) == MANIFEST_NAME:
            folder = posixpath.dirname(entry.path) if _is_remote(entry.path) else os.path.dirname(entry.path)
            if _holds_dataset(folder):
                excluded += [_canonical(path) for path in dataset_artifacts(folder)]
    separator = "/" if _is_remote(source_dir) else os.sep

    def wanted(entry: sources.SourceEntry) -> bool:
        canonical = _canonical(entry.path)
        return not any(canonical == other or canonical.startswith(other + separator) for other in excluded)

    return [entry for entry in entries if wanted(entry)]


def _list_remote(source_dir: str) -> list[sources.SourceEntry]:
    """Object stores have no links or special files: gfile's walk is enough."""
    root = source_dir.rstrip("/")
    entries = []
    for directory, _, names in tf.io.gfile.walk(root):
        for name in names:
            full = _join(directory.rstrip("/"), name.rstrip("/"))
            relative = full[len(root) :].lstrip("/")
            if not any(part.startswith(".") for part in relative.split("/")):
                entries.append(sources.SourceEntry(relative, full))
    entries.sort(key=lambda entry: entry.relative)
    return entries


def _read(entry: sources.SourceEntry) -> bytes | DroppedFile:
    try:
        if _is_remote(entry.path):
            with tf.io.gfile.GFile(entry.path, "rb") as handle:
                return handle.read()
        return sources.read_regular_file(entry.path, MAX_FILE_BYTES)
    except sources.NotRegularFile as error:
        return DroppedFile(entry.relative, CATEGORY_SPECIAL, str(error))
    except sources.FileTooLarge as error:
        return DroppedFile(entry.relative, CATEGORY_TOO_LARGE, str(error))
    except OSError as error:
        return DroppedFile(entry.relative, CATEGORY_UNREADABLE, f"cannot read: {error.strerror or error}")
    except tf.errors.OpError as error:
        return DroppedFile(entry.relative, CATEGORY_UNREADABLE, f"cannot read: {error.message}")


# --------------------------------------------------------------------------------------------------
# Decoding one file


@dataclass
class _Decoded:
    image: Image.Image  # RGB, upright, possibly reduced by JPEG draft decoding
    original_size: tuple[int, int]  # (width, height) at full resolution after EXIF rotation
    format: str


def _named(extension: str, image_format: str) -> str:
    """' named .jpg' when an image extension belongs to another format than the content's, else ''."""
    registered = Image.registered_extensions().get(extension)
    family = next((group for group in _FORMAT_FAMILIES if image_format in group), {image_format})
    return f" named {extension}" if extension in IMAGE_EXTENSIONS and registered not in family else ""


def _decode(data: bytes, relative: str, config: IngestConfig) -> _Decoded | DroppedFile:
    extension = posixpath.splitext(relative)[1].lower()
    with warnings.catch_warnings():
        # Over 89 megapixels Pillow warns; the pixel limit below decides instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
        except UnidentifiedImageError:
            if extension not in IMAGE_EXTENSIONS:
                return DroppedFile(relative, CATEGORY_NOT_IMAGE, f"not an image (supported: {SUPPORTED_FORMATS_TEXT})")
            reason = f"cannot identify image data although the name ends in {extension}" if data else "empty file"
            return DroppedFile(relative, CATEGORY_CORRUPT, reason)
        except Image.DecompressionBombError as error:
            reason = f"over Pillow's decompression-bomb limit ({error}); not decoded"
            return DroppedFile(relative, CATEGORY_TOO_LARGE, reason)
        except _DECODE_ERRORS as error:
            return DroppedFile(relative, CATEGORY_CORRUPT, f"cannot open: {error}")
        with image:
            return _decode_opened(image, relative, extension, config)


def _decode_opened(image: Image.Image, relative: str, extension: str, config: IngestConfig) -> _Decoded | DroppedFile:
    try:
        image_format = image.format or "?"
        if image_format in _ANIMATED_FORMATS and getattr(image, "is_animated", False):
            return DroppedFile(
                relative,
                CATEGORY_ANIMATED,
                f"animated {image_format} with {image.n_frames} frames{_named(extension, image_format)}: "
                "animations are not ingested; save the frame you want as a still image",
            )
        width, height = image.size
        if min(width, height) < config.min_size:
            return DroppedFile(
                relative,
                CATEGORY_TOO_SMALL,
                f"{width}x{height} px is smaller than min_size {config.min_size} px on the shorter side",
            )
        if image_format in ("JPEG", "MPO"):
            # Let libjpeg decode at a reduced scale that still leaves at least 2x the target size.
            image.draft(None, (2 * config.image_size, 2 * config.image_size))
        decoded_pixels = image.size[0] * image.size[1]
        if decoded_pixels > config.max_megapixels * 1_000_000:
            return DroppedFile(
                relative,
                CATEGORY_TOO_LARGE,
                f"{width}x{height} px ({decoded_pixels / 1e6:.1f} megapixels) is over max_megapixels "
                f"{config.max_megapixels}; not decoded (scale it down or raise --max-megapixels)",
            )
        image.load()
        upright = ImageOps.exif_transpose(image)
        if upright.size != image.size:  # EXIF orientations 5..8 swap width and height
            width, height = height, width
        rgb = to_rgb(upright, config.background)
        rgb.load()
    except _DECODE_ERRORS as error:
        return DroppedFile(relative, CATEGORY_CORRUPT, f"cannot decode: {error}")
    return _Decoded(rgb, (width, height), image_format)


# --------------------------------------------------------------------------------------------------
# Writing


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
        self.writers.clear()


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


def _write_atomic(path: str, payload: bytes, token: str) -> None:
    temp = f"{path}.tmp-{token}"
    with tf.io.gfile.GFile(temp, "wb") as handle:
        handle.write(payload)
    tf.io.gfile.rename(temp, path, overwrite=True)


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _remove_temporaries(out_dir: str, shard_dir: str, token: str | None = None) -> int:
    """Remove ingest's temporary files from out_dir: this run's (token) or, with None, any run's."""
    marker = f".tmp-{token}" if token else ".tmp-"
    prefixes = {shard_dir: (marker,), out_dir: tuple(f"{name}{marker}" for name in (MANIFEST_NAME, REPORT_NAME,
                                                                                   REVIEW_SHEET_NAME))}
    removed = 0
    for folder, starts in prefixes.items():
        if not tf.io.gfile.isdir(folder):
            continue
        for name in tf.io.gfile.listdir(folder):
            if name.rstrip("/").startswith(starts):
                tf.io.gfile.remove(_join(folder, name.rstrip("/")))
                removed += 1
    return removed


class _StopOnSignals:
    """SIGINT, SIGTERM and SIGHUP raise IngestInterrupted in the main thread, so the temporary files are
    removed on the way out; further signals are ignored while that happens."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __init__(self):
        self.previous: dict[int, Any] = {}

    def _raise(self, signum, frame):
        for other in self.previous:
            signal.signal(other, signal.SIG_IGN)
        raise IngestInterrupted(signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._raise)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


# --------------------------------------------------------------------------------------------------
# Near duplicates


class _NearDuplicates:
    """Perceptual hashes and fine thumbnails of the kept images; a candidate is confirmed finely."""

    def __init__(self, config: IngestConfig, capacity: int):
        self.config = config
        self.hashes = np.zeros(capacity, dtype=np.uint64)
        self.thumbnails: list[np.ndarray] = []

    def nearest(self, image_hash: int, thumbnail: np.ndarray) -> tuple[int, int, float] | None:
        """(kept id, hash distance, pixel RMS) of the finest match among the hash candidates, or None."""
        count = len(self.thumbnails)
        if self.config.dedupe_threshold < 0 or count == 0:
            return None
        distances = np.bitwise_count(self.hashes[:count] ^ np.uint64(image_hash))
        candidates = np.flatnonzero(distances <= self.config.dedupe_threshold)
        if candidates.size == 0:
            return None
        candidates = candidates[np.argsort(distances[candidates], kind="stable")[:_NEAREST_CANDIDATES]]
        scored = [(fine_distance(self.thumbnails[index], thumbnail), int(index)) for index in candidates]
        pixel_rms, index = min(scored)
        return index, int(distances[index]), pixel_rms

    def add(self, image_hash: int, thumbnail: np.ndarray) -> None:
        self.hashes[len(self.thumbnails)] = np.uint64(image_hash)
        self.thumbnails.append(thumbnail)

    def borderline(self, pixel_rms: float) -> bool:
        """Within a factor of two of the limit either way: the pairs worth a human look."""
        limit = self.config.dedupe_pixel_rms
        return limit / 2 <= pixel_rms <= 2 * limit


# --------------------------------------------------------------------------------------------------
# Ingest


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
    Raises ValueError when out_dir already holds a dataset (unless overwrite) or nothing is readable,
    IngestInterrupted when a signal stopped it (its temporary files removed).
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
    excluded = dataset_artifacts(out_dir) + ([metadata_path] if metadata_path else [])
    entries = _list_sources(source_dir, excluded)
    if not entries:
        raise ValueError(f"no readable images in {source_dir} (0 files seen); add {SUPPORTED_FORMATS_TEXT} files to it")
    readable = (entry.relative for entry in entries if entry.category is None)
    metadata_by_file, unmatched = _match_metadata(metadata_entries, readable)

    report = IngestReport(
        source_dir=source_dir,
        out_dir=out_dir,
        config=config,
        metadata_path=metadata_path,
        metadata_rows=len(metadata_entries),
        metadata_unmatched=unmatched,
        escaped_names=[entry.relative for entry in entries if entry.escaped],
    )
    num_shards = config.num_shards or max(1, math.ceil(len(entries) / IMAGES_PER_SHARD))
    token = uuid.uuid4().hex[:12]
    shard_dir = _join(out_dir, SHARD_DIR)
    tf.io.gfile.makedirs(shard_dir)
    stale = _remove_temporaries(out_dir, shard_dir)
    if stale:
        logger.info("removed %d temporary files an interrupted ingest left in %s", stale, out_dir)
    writer = _ShardWriter(shard_dir, num_shards, token)
    with _StopOnSignals():
        try:
            images = _convert(entries, config, report, metadata_by_file, writer, progress)
            _commit(report, images, writer, num_shards, token, {entry.relative: entry for entry in entries})
        except BaseException:
            writer.discard()
            _remove_temporaries(out_dir, shard_dir, token)
            raise
    logger.info("%s", report.summary())
    return report


def _convert(
    entries: Sequence[sources.SourceEntry],
    config: IngestConfig,
    report: IngestReport,
    metadata_by_file: dict[str, dict[str, str | None]],
    writer: _ShardWriter,
    progress: bool,
) -> list[dict[str, Any]]:
    """Read, check, frame and write every entry; returns the manifest's image entries."""
    images: list[dict[str, Any]] = []
    kept_by_sha: dict[str, str] = {}
    near = _NearDuplicates(config, len(entries))
    for entry in tqdm(entries, desc="ingest", unit="file", disable=not progress):
        report.seen += 1
        if entry.category is not None:
            report.dropped_files.append(DroppedFile(entry.relative, entry.category, entry.reason or entry.category))
            continue
        data = _read(entry)
        if isinstance(data, DroppedFile):
            report.dropped_files.append(data)
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in kept_by_sha:
            report.dropped_files.append(
                DroppedFile(entry.relative, CATEGORY_DUPLICATE, "exact duplicate (same sha256)", kept_by_sha[digest], 0)
            )
            continue
        decoded = _decode(data, entry.relative, config)
        del data
        if isinstance(decoded, DroppedFile):
            report.dropped_files.append(decoded)
            continue

        image_hash = perceptual_hash(decoded.image)
        thumbnail = fine_thumbnail(decoded.image)
        match = near.nearest(image_hash, thumbnail)
        if match is not None:
            index, distance, pixel_rms = match
            duplicate = pixel_rms <= config.dedupe_pixel_rms
            if near.borderline(pixel_rms):
                report.review_pairs.append(
                    ReviewPair(report.kept_files[index], entry.relative, distance, round(pixel_rms, 4), duplicate)
                )
            if duplicate:
                reason = (
                    f"near duplicate (perceptual hash distance {distance} <= {config.dedupe_threshold}, "
                    f"pixel RMS {pixel_rms:.3f} <= {config.dedupe_pixel_rms})"
                )
                report.dropped_files.append(
                    DroppedFile(entry.relative, CATEGORY_DUPLICATE, reason, report.kept_files[index], distance,
                                round(pixel_rms, 4))
                )
                continue

        try:
            framing = frame_square(decoded.image, config.fit, config.background)
            png = _encode_png(render_square(decoded.image, framing, config.image_size))
        except _DECODE_ERRORS as error:
            report.dropped_files.append(DroppedFile(entry.relative, CATEGORY_CORRUPT, f"cannot convert: {error}"))
            continue
        if framing.cut:
            report.cut_by_crop += 1
            report.notes.append({"source_path": entry.relative, "note": "the centre crop cuts into the object"})
        if config.fit == "object" and framing.found is None and decoded.image.width != decoded.image.height:
            report.no_background += 1
            report.notes.append(
                {"source_path": entry.relative, "note": "no plain background to find the object on: centre crop"}
            )
        extension = posixpath.splitext(entry.relative)[1].lower()
        if _named(extension, decoded.format):
            report.notes.append({"source_path": entry.relative, "note": f"{decoded.format} image named {extension}"})
        image_id = len(report.kept_files)
        writer.write(image_id, _example(png, image_id))
        near.add(image_hash, thumbnail)
        kept_by_sha[digest] = entry.relative
        report.kept_files.append(entry.relative)
        images.append(
            {
                "id": image_id,
                "source_path": entry.relative,
                "sha256": digest,
                "original_size": list(decoded.original_size),
                "metadata": dict(metadata_by_file.get(entry.relative) or dict.fromkeys(METADATA_FIELDS)),
            }
        )
    return images


def _commit(
    report: IngestReport,
    images: list[dict[str, Any]],
    writer: _ShardWriter,
    num_shards: int,
    token: str,
    entries: dict[str, sources.SourceEntry],
) -> None:
    """Move the new shards into place and write the review sheet, report.json and manifest.json (last)."""
    config, out_dir = report.config, report.out_dir
    used = writer.close()
    if not images:
        counts = report.counts()
        seen_text = ", ".join(
            f"{counts[key]} {words}"
            for key, _, words in sorted(_COUNTED, key=lambda item: item[0] != "skipped_not_image")
            if counts[key]
        )
        raise ValueError(
            f"no readable images in {report.source_dir} ({report.seen} files seen: {seen_text}); "
            f"add {SUPPORTED_FORMATS_TEXT} files at least {config.min_size} px on the shorter side"
        )
    if len(used) < num_shards:
        logger.info("only %d images: writing %d shards instead of %d", len(images), len(used), num_shards)

    # First invalidate any old dataset (the manifest goes first, so an interruption leaves no manifest
    # rather than one that points at the wrong shards), then move the new shards into place and write
    # the manifest last.
    manifest_path = _join(out_dir, MANIFEST_NAME)
    if tf.io.gfile.exists(manifest_path):
        tf.io.gfile.remove(manifest_path)
    shard_dir = _join(out_dir, SHARD_DIR)
    for name in tf.io.gfile.listdir(shard_dir):
        name = name.rstrip("/")
        if name.startswith("train-") and name.endswith(".tfrecord"):
            tf.io.gfile.remove(_join(shard_dir, name))
    report.shards = [shard_name(position, len(used)) for position in range(len(used))]
    for position, index in enumerate(used):
        tf.io.gfile.rename(writer.temp_path(index), _join(out_dir, *report.shards[position].split("/")), overwrite=True)
    writer.writers.clear()
    report.fingerprint = dataset_fingerprint(entry["sha256"] for entry in images)
    report.metadata_matched = sum(1 for entry in images if any(v is not None for v in entry["metadata"].values()))

    sheet_path = _join(out_dir, REVIEW_SHEET_NAME)
    if report.review_pairs:
        sheet = _review_sheet(report.review_pairs[:REVIEW_SHEET_MAX_PAIRS], entries, config)
        _write_atomic(sheet_path, _encode_png(sheet), token)
        report.review_sheet = REVIEW_SHEET_NAME
    elif tf.io.gfile.exists(sheet_path):
        tf.io.gfile.remove(sheet_path)  # an older dataset's sheet would describe other pairs

    manifest = {
        "format": DATASET_FORMAT,
        "format_version": DATASET_FORMAT_VERSION,
        "image_size": config.image_size,
        "count": len(images),
        "fingerprint": report.fingerprint,
        "shards": report.shards,
        "images": images,
    }
    _write_atomic(_join(out_dir, REPORT_NAME), _json_bytes(report.to_dict()), token)
    _write_atomic(manifest_path, _json_bytes(manifest), token)


def _review_sheet(
    pairs: Sequence[ReviewPair], entries: dict[str, sources.SourceEntry], config: IngestConfig
) -> Image.Image:
    """The review pairs side by side, decoded again from the source (only these few images)."""

    def preview(relative: str) -> Image.Image:
        data = _read(entries[relative])
        decoded = _decode(data, relative, config) if isinstance(data, bytes) else data
        return decoded.image if isinstance(decoded, _Decoded) else Image.new("RGB", (8, 8), (128, 0, 0))

    rows = []
    for pair in pairs:
        verdict = "dropped" if pair.dropped else "kept both"
        caption = f"hash {pair.distance}, rms {pair.pixel_rms:.3f}: {verdict}"
        rows.append((preview(pair.kept), pair.kept, preview(pair.other), pair.other, caption))
    return review_sheet(rows)
