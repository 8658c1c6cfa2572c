"""Finding and opening the source files: the folder's listing, each file's bytes, and its decoded picture.

A local folder is listed by training/sources.py (links, FIFOs, odd names), a remote one by gfile. A file that
cannot be used comes back as a DroppedFile with its reason, never as an exception.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from training import sources
from training.curation import to_rgb
from training.dataset_format import DATASET_FORMAT, MANIFEST_NAME, dataset_artifacts, is_remote, join_path
from training.ingest.config import (
    CATEGORY_ANIMATED,
    CATEGORY_CORRUPT,
    CATEGORY_NOT_IMAGE,
    CATEGORY_SPECIAL,
    CATEGORY_TOO_LARGE,
    CATEGORY_TOO_SMALL,
    CATEGORY_UNREADABLE,
    MAX_FILE_BYTES,
    DroppedFile,
    IngestConfig,
)
from training.metadata import read_small_file

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

# Errors Pillow raises for unreadable, truncated or hostile files. struct.error comes from
# malformed binary headers (EXIF, TIFF tags) that some plugins do not wrap.
DECODE_ERRORS = (OSError, Image.DecompressionBombError, SyntaxError, ValueError, struct.error)


def _canonical(path: str) -> str:
    return path.rstrip("/") if is_remote(path) else os.path.normcase(os.path.abspath(path))


def _holds_dataset(directory: str) -> bool:
    try:
        data = read_small_file(join_path(directory, MANIFEST_NAME), 256 * 2**20)
        return json.loads(data).get("format") == DATASET_FORMAT
    except (tf.errors.OpError, OSError, ValueError, AttributeError):
        return False


def list_sources(source_dir: str, exclude: Sequence[str]) -> list[sources.SourceEntry]:
    """Every non-hidden name under source_dir, sorted, without `exclude` and any Masquerade dataset inside."""
    if is_remote(source_dir):
        entries = _list_remote(source_dir)
    else:
        entries = sources.walk_local(source_dir)
    excluded = [_canonical(path) for path in exclude]
    for entry in entries:
        if entry.category is None and posixpath.basename(entry.relative) == MANIFEST_NAME:
            folder = posixpath.dirname(entry.path) if is_remote(entry.path) else os.path.dirname(entry.path)
            if _holds_dataset(folder):
                excluded += [_canonical(path) for path in dataset_artifacts(folder)]
    separator = "/" if is_remote(source_dir) else os.sep

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
            full = join_path(directory.rstrip("/"), name.rstrip("/"))
            relative = full[len(root) :].lstrip("/")
            if not any(part.startswith(".") for part in relative.split("/")):
                entries.append(sources.SourceEntry(relative, full))
    entries.sort(key=lambda entry: entry.relative)
    return entries


def read_entry(entry: sources.SourceEntry) -> bytes | DroppedFile:
    try:
        if is_remote(entry.path):
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


@dataclass
class Decoded:
    image: Image.Image  # RGB, upright, possibly reduced by JPEG draft decoding
    original_size: tuple[int, int]  # (width, height) at full resolution after EXIF rotation
    format: str


def misnamed(extension: str, image_format: str) -> str:
    """' named .jpg' when an image extension belongs to another format than the content's, else ''."""
    registered = Image.registered_extensions().get(extension)
    family = next((group for group in _FORMAT_FAMILIES if image_format in group), {image_format})
    return f" named {extension}" if extension in IMAGE_EXTENSIONS and registered not in family else ""


def decode(data: bytes, relative: str, config: IngestConfig) -> Decoded | DroppedFile:
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
        except DECODE_ERRORS as error:
            return DroppedFile(relative, CATEGORY_CORRUPT, f"cannot open: {error}")
        with image:
            return _decode_opened(image, relative, extension, config)


def _decode_opened(image: Image.Image, relative: str, extension: str, config: IngestConfig) -> Decoded | DroppedFile:
    try:
        image_format = image.format or "?"
        if image_format in _ANIMATED_FORMATS and getattr(image, "is_animated", False):
            return DroppedFile(
                relative,
                CATEGORY_ANIMATED,
                f"animated {image_format} with {image.n_frames} frames{misnamed(extension, image_format)}: "
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
    except DECODE_ERRORS as error:
        return DroppedFile(relative, CATEGORY_CORRUPT, f"cannot decode: {error}")
    return Decoded(rgb, (width, height), image_format)
