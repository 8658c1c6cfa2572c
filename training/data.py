"""Reading a dataset for training: its manifest, and its shards as tf.data pipelines of images.

The format (file names, features) is in training/dataset_format.py; training/ingest/ writes it. All file
access goes through `tf.io.gfile`, so the dataset may live under a `gs://` path.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import tensorflow as tf

from training.dataset_format import (
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    MANIFEST_NAME,
    METADATA_FIELDS,
    REPORT_NAME,
    RESOLUTION_RANGE,
    REVIEW_SHEET_NAME,
    SHARD_DIR,
    check_int,
    dataset_artifacts,
    dataset_fingerprint,
    join_path,
    parse_example,
    shard_name,
)
from training.ingest import (
    DroppedFile,
    IngestConfig,
    IngestInterrupted,
    IngestReport,
    ReviewPair,
    ingest,
)

# The format's names stay reachable as data.X; ingest (training/ingest/) once lived here, and callers written
# then still reach it as data.ingest and data.IngestConfig.
__all__ = [
    "DATASET_FORMAT", "DATASET_FORMAT_VERSION", "MANIFEST_NAME", "METADATA_FIELDS", "REPORT_NAME",
    "RESOLUTION_RANGE", "REVIEW_SHEET_NAME", "SHARD_DIR", "DroppedFile", "IngestConfig", "IngestInterrupted",
    "IngestReport", "ReviewPair", "dataset_artifacts", "dataset_fingerprint", "distributed_dataset", "ingest",
    "load_images", "load_manifest", "make_dataset", "parse_example", "resize_uint8", "shard_name", "shard_paths",
    "to_float",
]


def load_manifest(data_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check DATA_DIR/manifest.json."""
    data_dir = os.fspath(data_dir)
    path = join_path(data_dir, MANIFEST_NAME)
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
    return [join_path(data_dir, *shard.split("/")) for shard in manifest["shards"]]


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
    check_int("resolution", resolution, *RESOLUTION_RANGE)
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
    check_int("resolution", resolution, *RESOLUTION_RANGE)
    dataset = tf.data.TFRecordDataset(shard_paths(data_dir, manifest))
    dataset = dataset.map(
        lambda record: _parse_and_resize(record, image_size, resolution), num_parallel_calls=tf.data.AUTOTUNE
    )
    batches, ids = [], []
    for batch_images, batch_ids in dataset.batch(256).as_numpy_iterator():
        batches.append(batch_images)
        ids.append(batch_ids)
    if not batches:
        raise ValueError(f"dataset {data_dir} has no images in its shards; re-run ingest")
    # At most two copies of the collection at once (11,000 images at 512 px are 8.6 GB each): the batches are
    # dropped once joined, and the join is reordered only when the shards are out of id order.
    all_images = np.concatenate(batches)
    batches.clear()
    all_ids = np.concatenate(ids)
    if len(all_ids) != int(manifest["count"]):
        raise ValueError(
            f"dataset {data_dir} is incomplete: the manifest lists {manifest['count']} images but the "
            f"shards hold {len(all_ids)}; re-run ingest"
        )
    order = np.argsort(all_ids, kind="stable")
    if np.array_equal(order, np.arange(len(order))):
        return all_images, all_ids
    return all_images[order], all_ids[order]


def _parse_and_resize(record: tf.Tensor, image_size: int, resolution: int) -> tuple[tf.Tensor, tf.Tensor]:
    image, image_id = parse_example(record, image_size)
    return resize_uint8(image, resolution), image_id
