"""Ingest: an artist's image folder -> TFRecord shards, manifest.json, report.json (and a review sheet).

`python -m training ingest FOLDER --out DATASET` runs `ingest`. The dataset format is in
training/dataset_format.py and docs/CONVENTIONS.md ("Dataset on disk"); output goes through `tf.io.gfile`,
so it may be a `gs://` path. Every file that is not kept is reported with its reason; the run goes on.

    config.py    IngestConfig, the limits, and the categories of a dropped file
    reading.py   listing the source folder, reading and decoding each file
    writing.py   shards under temporary names, atomic writes through gfile, clean interruption
    report.py    IngestReport: report.json and the summary line
    pipeline.py  the run itself: convert every file, drop duplicates, commit the dataset
"""

from training.ingest.config import (
    CATEGORY_ANIMATED,
    CATEGORY_CORRUPT,
    CATEGORY_DUPLICATE,
    CATEGORY_LINK,
    CATEGORY_NOT_IMAGE,
    CATEGORY_SPECIAL,
    CATEGORY_TOO_LARGE,
    CATEGORY_TOO_SMALL,
    CATEGORY_UNREADABLE,
    DEDUPE_PIXEL_RMS_RANGE,
    DEDUPE_THRESHOLD_RANGE,
    IMAGE_SIZE_RANGE,
    IMAGES_PER_SHARD,
    MAX_FILE_BYTES,
    MAX_MEGAPIXELS_RANGE,
    MIN_SIZE_RANGE,
    NUM_SHARDS_RANGE,
    DroppedFile,
    IngestConfig,
    IngestInterrupted,
    ReviewPair,
)
from training.ingest.pipeline import REVIEW_SHEET_MAX_PAIRS, ingest
from training.ingest.reading import IMAGE_EXTENSIONS, SUPPORTED_FORMATS, SUPPORTED_FORMATS_TEXT
from training.ingest.report import REPORT_FORMAT, IngestReport

__all__ = [
    "CATEGORY_ANIMATED", "CATEGORY_CORRUPT", "CATEGORY_DUPLICATE", "CATEGORY_LINK", "CATEGORY_NOT_IMAGE",
    "CATEGORY_SPECIAL", "CATEGORY_TOO_LARGE", "CATEGORY_TOO_SMALL", "CATEGORY_UNREADABLE", "DEDUPE_PIXEL_RMS_RANGE",
    "DEDUPE_THRESHOLD_RANGE", "IMAGE_EXTENSIONS", "IMAGE_SIZE_RANGE", "IMAGES_PER_SHARD", "MAX_FILE_BYTES",
    "MAX_MEGAPIXELS_RANGE", "MIN_SIZE_RANGE", "NUM_SHARDS_RANGE", "REPORT_FORMAT", "REVIEW_SHEET_MAX_PAIRS",
    "SUPPORTED_FORMATS", "SUPPORTED_FORMATS_TEXT", "DroppedFile", "IngestConfig", "IngestInterrupted",
    "IngestReport", "ReviewPair", "ingest",
]
