"""SRGAN training pairs: bicubic reductions, held-out ids, the (LR, HR) input pipeline and comparison strips.

Evaluation and export use the same reductions and held-out ids as training, so their numbers describe images
the upscaler never saw.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training import data, degrade
from training.runs import image_grid
from training.srgan.config import SRGANConfig


def bicubic_downscale(images: tf.Tensor, scale: int) -> tf.Tensor:
    """Float HWC or NHWC images in [-1, 1] -> bicubic (antialiased) 1/scale size, clipped to [-1, 1]."""
    height, width = tf.shape(images)[-3], tf.shape(images)[-2]
    small = tf.image.resize(images, tf.stack([height // scale, width // scale]), method="bicubic", antialias=True)
    return tf.clip_by_value(small, -1.0, 1.0)


def bicubic_upscale(images: tf.Tensor, scale: int) -> tf.Tensor:
    """The baseline every upscaler must beat: plain bicubic interpolation, clipped to [-1, 1]."""
    height, width = tf.shape(images)[-3], tf.shape(images)[-2]
    large = tf.image.resize(images, tf.stack([height * scale, width * scale]), method="bicubic")
    return tf.clip_by_value(large, -1.0, 1.0)


def holdout_ids(manifest: dict, count: int) -> list[int]:
    """The held-out images: the last `count` ids of the dataset manifest (never trained on)."""
    ids = sorted(int(image["id"]) for image in manifest["images"])
    return ids[len(ids) - count :] if count else []


def read_images_by_id(data_dir: str, ids) -> np.ndarray:
    """uint8 NHWC images at the stored size for `ids`, in that order (one pass over the shards)."""
    manifest = data.load_manifest(data_dir)
    image_size = int(manifest["image_size"])
    wanted = tf.constant(sorted({int(i) for i in ids}) or [-1], tf.int64)

    def is_wanted(record):
        image_id = tf.io.parse_single_example(record, {"id": tf.io.FixedLenFeature([], tf.int64)})["id"]
        return tf.reduce_any(tf.equal(image_id, wanted))

    records = tf.data.TFRecordDataset(data.shard_paths(data_dir, manifest)).filter(is_wanted)
    records = records.map(lambda record: data.parse_example(record, image_size), num_parallel_calls=tf.data.AUTOTUNE)
    found = {int(image_id): image for image, image_id in records.as_numpy_iterator()}
    missing = [int(i) for i in ids if int(i) not in found]
    if missing:
        raise ValueError(f"dataset {data_dir} lacks image ids {missing[:5]}; re-run ingest")
    return np.stack([found[int(i)] for i in ids])


def comparison_strip(lr: np.ndarray, bicubic: np.ndarray, sr: np.ndarray, hr: np.ndarray) -> np.ndarray:
    """One row per image: LR (nearest, at HR size) | bicubic | SR | HR, all uint8 NHWC."""
    scale = hr.shape[1] // lr.shape[1]
    nearest = np.repeat(np.repeat(lr, scale, axis=1), scale, axis=2)
    tiles = np.stack([nearest, bicubic, sr, hr], axis=1).reshape(-1, *hr.shape[1:])
    return image_grid(tiles, columns=4)


def make_pair(image: tf.Tensor, seed, config: SRGANConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 image -> (LR, HR) float pair in [-1, 1]: HR crop, flip, then a bicubic or degraded reduction.

    Every random choice is keyed by `seed` (shape [2]), so an example is the same in every run with that seed.
    """
    crop_seed, flip_seed, degrade_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    hr = tf.image.stateless_random_crop(image, [config.hr_size, config.hr_size, 3], seed=crop_seed)
    hr = data.to_float(tf.image.stateless_random_flip_left_right(hr, seed=flip_seed))
    if config.degradation == "bicubic":
        return bicubic_downscale(hr, config.scale), hr
    return degrade.degrade(hr, degrade_seed, config.degrade_config), hr


def pair_dataset(config: SRGANConfig, input_context: tf.distribute.InputContext | None = None,
                 start: int = 0) -> tf.data.Dataset:
    """Per-replica batches of (LR, HR) pairs from the dataset's training ids (held-out ids filtered out).

    `data.make_dataset` drops the ids, and the hold-out filter needs them, so this reads the shards itself with
    the same sharding rules (shards per input pipeline, else examples). Example n of input pipeline p draws its
    crop and degradation from the seed (config.seed, n * pipelines + p); `start` is the first n, so a resumed
    run draws new examples rather than replaying the first ones.
    """
    manifest = data.load_manifest(config.data)
    image_size, count = int(manifest["image_size"]), int(manifest["count"])
    held_out = tf.constant(holdout_ids(manifest, config.holdout) or [-1], tf.int64)
    files = data.shard_paths(config.data, manifest)
    batch = config.batch_size
    dataset = None
    pipelines, pipeline_id = 1, 0
    if input_context is not None:
        batch = input_context.get_per_replica_batch_size(config.batch_size)
        pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
        if pipelines > 1 and len(files) >= pipelines:
            files = files[pipeline_id::pipelines]
        elif pipelines > 1:
            dataset = tf.data.TFRecordDataset(files).shard(pipelines, pipeline_id)
    if dataset is None:
        dataset = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE if len(files) > 1 else None)
    dataset = dataset.map(lambda record: data.parse_example(record, image_size), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.filter(lambda image, image_id: tf.logical_not(tf.reduce_any(tf.equal(image_id, held_out))))
    dataset = dataset.map(lambda image, image_id: image, num_parallel_calls=tf.data.AUTOTUNE).cache()
    dataset = dataset.shuffle(max(1, min(4096, count)), seed=config.seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.enumerate(start=start).map(
        lambda index, image: make_pair(image, degrade.example_seed(config.seed, index * pipelines + pipeline_id),
                                       config),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

