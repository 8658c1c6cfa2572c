"""The dataset on disk: its file names, shard naming, one record's features and the fingerprint.

What ingest (training/ingest/) writes and the tf.data reader (training/data.py) reads, stated once so the two
sides cannot drift. The format is described in docs/CONVENTIONS.md ("Dataset on disk"). Paths may be local or
a `gs://` URL, joined with `join_path`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

import tensorflow as tf

DATASET_FORMAT = "masquerade-dataset"
DATASET_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.json"
REVIEW_SHEET_NAME = "review_pairs.png"
SHARD_DIR = "shards"
METADATA_FIELDS = ("title", "culture", "material", "source", "license")
RESOLUTION_RANGE = (4, 4096)

_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "id": tf.io.FixedLenFeature([], tf.int64),
}


def check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def is_remote(path: str) -> bool:
    return "://" in path


def join_path(base: str, *parts: str) -> str:
    """os.path.join for local folders; "/" for URLs, whatever the local separator."""
    if is_remote(base):
        return "/".join([base.rstrip("/"), *parts])
    return os.path.join(base, *parts)


def dataset_artifacts(data_dir: str) -> list[str]:
    """The paths a dataset consists of: what ingest writes and never reads back as source images."""
    return [join_path(data_dir, name) for name in (MANIFEST_NAME, REPORT_NAME, REVIEW_SHEET_NAME, SHARD_DIR)]


def shard_name(index: int, count: int) -> str:
    return f"{SHARD_DIR}/train-{index:05d}-of-{count:05d}.tfrecord"


def dataset_fingerprint(sha256s: Iterable[str]) -> str:
    """sha256 over the sorted source-file sha256 hex digests, one per line."""
    return hashlib.sha256("\n".join(sorted(sha256s)).encode("ascii")).hexdigest()


def encode_example(png: bytes, image_id: int) -> bytes:
    """One image as the serialized tf.train.Example a shard holds: its PNG bytes and its id."""
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
        "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[image_id])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_example(serialized: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """One serialized tf.train.Example -> (uint8 image [image_size, image_size, 3], int64 id)."""
    features = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_png(features["image"], channels=3)
    image = tf.ensure_shape(image, [image_size, image_size, 3])
    return image, features["id"]
