"""What ingest is asked to do (IngestConfig) and what it can say about a file it does not keep."""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from training import sources
from training.curation import FIT_MODES
from training.dataset_format import check_int

IMAGE_SIZE_RANGE = (16, 2048)
MIN_SIZE_RANGE = (1, 65536)
NUM_SHARDS_RANGE = (1, 10000)
DEDUPE_THRESHOLD_RANGE = (-1, 64)
DEDUPE_PIXEL_RMS_RANGE = (0.0, 1.0)
MAX_MEGAPIXELS_RANGE = (1, 1000)
IMAGES_PER_SHARD = 1000
# Files are read whole into memory; nothing this large is a picture ingest could use.
MAX_FILE_BYTES = 512 * 2**20

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
COUNTED = (
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
        check_int("image_size", self.image_size, *IMAGE_SIZE_RANGE)
        check_int("min_size", self.min_size, *MIN_SIZE_RANGE)
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
        check_int("dedupe_threshold", self.dedupe_threshold, *DEDUPE_THRESHOLD_RANGE)
        low, high = DEDUPE_PIXEL_RMS_RANGE
        rms = self.dedupe_pixel_rms
        if isinstance(rms, bool) or not isinstance(rms, int | float) or not low <= rms <= high:
            raise ValueError(f"dedupe_pixel_rms must be a number in {low}..{high}, got {rms!r}")
        object.__setattr__(self, "dedupe_pixel_rms", float(rms))
        check_int("max_megapixels", self.max_megapixels, *MAX_MEGAPIXELS_RANGE)
        if self.num_shards is not None:
            check_int("num_shards", self.num_shards, *NUM_SHARDS_RANGE)
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


class IngestInterrupted(BaseException):
    # A BaseException, as KeyboardInterrupt is: a signal handler raises it wherever the main thread happens to
    # be, and an `except Exception` on the way (a backend fallback, a retry) must not swallow it.
    """SIGINT, SIGTERM or SIGHUP stopped ingest; its temporary files were removed."""

    def __init__(self, signum: int):
        super().__init__(f"ingest stopped by {signal.Signals(signum).name}; temporary files removed, run it again")
        self.signum = signum
