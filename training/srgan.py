"""SRGAN upscaler training: pixel-loss pretraining, then adversarial fine-tuning, checkpointed and resumable.

Pairs come from the ingested dataset: a random `hr_size` crop of a stored image (randomly flipped) is the
high-resolution target and its bicubic x`scale` reduction is the input. The last `holdout` ids of the dataset
manifest never enter training; `python -m training eval-sr` measures the upscaler on them.

One global step counter covers both stages: steps below `pretrain_steps` minimise an L1 or MSE pixel loss
(stage 1), the next `gan_steps` minimise content loss + `adversarial_weight` x adversarial loss while the
SRGAN discriminator trains alongside (stage 2).

Stage 2 is configurable along the lines of ESRGAN (Wang et al. 2018): `gan_loss` bce (SRGAN), hinge or ragan
(relativistic average); `discriminator` srgan (BN, dense head) or patch (fully convolutional, spectrally
normalised); `content_loss` discriminator (feature matching on the critic's maps), vgg19/vgg16 or pixel, scaled
by `content_weight`; an L1 term (`pixel_weight`); and `ema_decay`, an average of the upscaler's weights that
export writes. `degradation` generator trains on inputs degraded like GAN frames (training.degrade) instead of
clean bicubic reductions. Until its first adversarial step a resumed run may still change the STAGE2_SETTINGS.

GAN artefacts. The upscaler runs on the DCGAN's 64 px output, which has no high-resolution original, so there
is no paired target for it. With `generator_bundle` set, stage 2 adds an unpaired adversarial term: crops of
G(z) are upscaled and shown to the discriminator as fakes beside the paired fakes, against real HR crops. The
content loss still comes only from real pairs, so fidelity is learned from the dataset, while the adversarial
term pushes the upscaled GAN samples towards the look of real HR crops. `generator_fraction` sets how much of
the fake side (for both networks) the GAN samples make up.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from models import bundle, srgan
from models.bundle import write_json_atomic
from training import data, degrade
from training.runs import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LoopKeeper,
    StopSignals,
    image_grid,
    prepare_run_dir,
    publish_samples,
    to_uint8,
)
from training.strategy import StrategyConfig, check_global_batch, make_strategy

log = logging.getLogger(__name__)

SCALES = (2, 4)
PIXEL_LOSSES = ("l1", "mse")
CONTENT_LOSSES = ("vgg19", "vgg16", "pixel", "discriminator")
# bce: SRGAN's real/fake cross-entropy; hinge: as in SAGAN/BigGAN; ragan: relativistic average (ESRGAN), where D
# judges whether a real crop looks more real than the average fake and the generator gets gradients from both.
GAN_LOSSES = ("bce", "hinge", "ragan")
# bicubic: clean reductions (the classic SR set-up); generator: training.degrade, inputs that look like GAN frames.
DEGRADATIONS = ("bicubic", "generator")
DEGRADE_FIELDS = tuple(field.name for field in dataclasses.fields(degrade.DegradeConfig) if field.name != "scale")
DEFAULT_FILTERS = {"realtime": 16, "srresnet": 64}
# The discriminator layer whose activations the "discriminator" content loss compares: 4x filters at 1/8 size.
DISCRIMINATOR_FEATURE_LAYER = "d5_lrelu"
# Stage lengths a resumed run may extend (on top of runs.RESUMABLE_OVERRIDES).
RESUMABLE_STEPS = ("pretrain_steps", "gan_steps")
# Settings of the adversarial stage alone: a resumed run may still change them while no adversarial step has been
# taken, so one pixel-loss pretraining can serve several stage-2 recipes.
STAGE2_SETTINGS = ("gan_learning_rate", "discriminator_learning_rate", "adversarial_weight", "content_weight",
                   "pixel_weight", "period_weight", "gan_loss", "content_loss", "vgg_layer", "vgg_weights")
SAMPLE_COUNT = 4


@dataclass(frozen=True)
class SRGANConfig:
    """An upscaler training run. `vgg_random_weights` exists for tests only: a VGG content loss without weights."""

    data: str
    out: str
    architecture: str = "realtime"
    num_filters: int | None = None  # None: 16 for realtime, 64 for srresnet
    num_layers: int = 3  # realtime only
    num_res_blocks: int = 16  # srresnet only
    hr_channels: int = 0  # realtime only: channels after the pixel shuffle, mixed by one full-size conv (0: none)
    scale: int = 4
    hr_size: int = 256
    holdout: int = 32
    batch_size: int = 16
    pretrain_steps: int = 10_000
    gan_steps: int = 10_000
    pretrain_loss: str = "l1"
    degradation: str = "bicubic"
    blur_probability: float = degrade.DegradeConfig.blur_probability
    max_blur_sigma: float = degrade.DegradeConfig.max_blur_sigma
    noise_probability: float = degrade.DegradeConfig.noise_probability
    max_noise: float = degrade.DegradeConfig.max_noise
    checkerboard_probability: float = degrade.DegradeConfig.checkerboard_probability
    max_checkerboard: float = degrade.DegradeConfig.max_checkerboard
    jpeg_probability: float = degrade.DegradeConfig.jpeg_probability
    min_jpeg_quality: int = degrade.DegradeConfig.min_jpeg_quality
    learning_rate: float = 1e-4
    gan_learning_rate: float = 1e-4
    discriminator_learning_rate: float = 1e-4
    beta1: float = 0.9
    content_loss: str = "vgg19"
    vgg_weights: str | None = None
    vgg_layer: str = "block5_conv4"
    vgg_random_weights: bool = False
    adversarial_weight: float = 1e-3
    content_weight: float = 1.0
    pixel_weight: float = 0.0  # an L1 term kept alongside in stage 2
    period_weight: float = 0.0  # stage 2: L1 on the grid-locked pattern of period `scale` (see periodic_pattern)
    gan_loss: str = "bce"
    ema_decay: float = 0.0  # > 0: an exponential moving average of the upscaler's weights is what gets exported
    discriminator: str = "srgan"
    discriminator_filters: int = 64
    discriminator_dense_units: int = 1024  # srgan discriminator only
    discriminator_layers: int = 3  # patch discriminator only: stride-2 stages
    generator_bundle: str | None = None
    generator_fraction: float = 0.5
    steps_per_loop: int = 10
    checkpoint_every: int = 1000
    sample_every: int = 1000
    log_every: int = 100
    keep_checkpoints: int = 3
    seed: int = 0
    strategy: str = "auto"
    tpu: str | None = None
    tpu_zone: str | None = None
    tpu_project: str | None = None

    def __post_init__(self):
        if self.architecture not in srgan.UPSCALER_ARCHITECTURES:
            raise ValueError(
                f"architecture {self.architecture!r} is unknown; "
                f"choose one of {', '.join(srgan.UPSCALER_ARCHITECTURES)}"
            )
        if self.num_filters is None:
            object.__setattr__(self, "num_filters", DEFAULT_FILTERS[self.architecture])
        if self.scale not in SCALES:
            raise ValueError(f"scale {self.scale} is not supported; use 4 (or 2)")
        ranges = {
            "num_filters": (1, 1024), "num_layers": (1, 64), "num_res_blocks": (1, 64), "hr_size": (16, 4096),
            "holdout": (0, 10**6), "batch_size": (1, 65536), "pretrain_steps": (0, 10**9), "gan_steps": (0, 10**9),
            "discriminator_filters": (1, 1024), "discriminator_dense_units": (1, 65536),
            "discriminator_layers": (1, 8), "hr_channels": (0, 64),
            "steps_per_loop": (1, 10_000), "checkpoint_every": (1, 10**9), "sample_every": (1, 10**9),
            "log_every": (1, 10**9), "keep_checkpoints": (1, 1000),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} {value} is outside the allowed range {low}..{high}")
        if self.hr_size % 16:
            lower = max(16, self.hr_size // 16 * 16)
            raise ValueError(
                f"hr_size {self.hr_size} must be a multiple of 16 (the discriminator halves it four times, "
                f"and it must divide by the scale); e.g. --hr-size {lower}"
            )
        if self.pretrain_steps + self.gan_steps < 1:
            raise ValueError("pretrain_steps + gan_steps is 0; train for at least one step")
        for name in ("learning_rate", "gan_learning_rate", "discriminator_learning_rate"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} {getattr(self, name)} is outside the allowed range (0, 1]")
        if not 0 <= self.beta1 < 1:
            raise ValueError(f"beta1 {self.beta1} is outside the allowed range [0, 1)")
        if self.pretrain_loss not in PIXEL_LOSSES:
            raise ValueError(
                f"pretrain_loss {self.pretrain_loss!r} is unknown; choose one of {', '.join(PIXEL_LOSSES)}"
            )
        if self.content_loss not in CONTENT_LOSSES:
            raise ValueError(
                f"content_loss {self.content_loss!r} is unknown; choose one of {', '.join(CONTENT_LOSSES)}"
            )
        if self.vgg_weights is not None and not self.content_loss.startswith("vgg"):
            raise ValueError(
                f"vgg_weights is only used with --content-loss vgg19 or vgg16, not {self.content_loss!r}; drop it"
            )
        for name in ("adversarial_weight", "content_weight", "pixel_weight"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} {getattr(self, name)} is outside the allowed range [0, 1]")
        if not 0 <= self.period_weight <= 100:
            raise ValueError(f"period_weight {self.period_weight} is outside the allowed range [0, 100]")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay {self.ema_decay} is outside the allowed range [0, 1)")
        choices = {"gan_loss": GAN_LOSSES, "discriminator": srgan.DISCRIMINATOR_ARCHITECTURES,
                   "degradation": DEGRADATIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r} is unknown; choose one of {', '.join(allowed)}")
        if self.generator_bundle and self.gan_loss != "bce":
            raise ValueError(f"--generator-bundle mixes GAN samples into the bce loss only, not {self.gan_loss!r}")
        if self.hr_channels and self.architecture != "realtime":
            raise ValueError("hr_channels applies to the realtime architecture only; drop --hr-channels")
        _ = self.degrade_config  # validates the degradation ranges
        if not 0 <= self.generator_fraction <= 1:
            raise ValueError(f"generator_fraction {self.generator_fraction} is outside the allowed range [0, 1]")
        StrategyConfig(self.strategy, self.tpu, self.tpu_zone, self.tpu_project)

    @property
    def strategy_config(self) -> StrategyConfig:
        return StrategyConfig(self.strategy, self.tpu, self.tpu_zone, self.tpu_project)

    @property
    def degrade_config(self) -> degrade.DegradeConfig:
        return degrade.DegradeConfig(scale=self.scale, **{name: getattr(self, name) for name in DEGRADE_FIELDS})

    @property
    def lr_size(self) -> int:
        return self.hr_size // self.scale

    @property
    def total_steps(self) -> int:
        return self.pretrain_steps + self.gan_steps


# --------------------------------------------------------------------------------------------------
# Pure helpers shared with evaluation and export.


def build_upscaler(config: SRGANConfig | dict) -> keras.Model:
    """The upscaler a config describes (a run's config.json as a dict works too)."""
    values = dataclasses.asdict(config) if isinstance(config, SRGANConfig) else config
    if values["architecture"] == "realtime":
        kwargs = {"num_filters": values["num_filters"], "num_layers": values["num_layers"],
                  "hr_channels": values.get("hr_channels", 0)}
    else:
        kwargs = {"num_filters": values["num_filters"], "num_res_blocks": values["num_res_blocks"]}
    return srgan.build_upscaler(values["architecture"], scale=values["scale"], **kwargs)


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


def preflight(config: SRGANConfig) -> dict:
    """Check everything outside the config that a run needs, before anything is written. Returns the manifest."""
    manifest = data.load_manifest(config.data)
    image_size, count = int(manifest["image_size"]), int(manifest["count"])
    if image_size < config.hr_size:
        raise ValueError(
            f"dataset {config.data} holds {image_size} px images, smaller than --hr-size {config.hr_size}; "
            f"use --hr-size {image_size // 16 * 16} or less, or re-ingest with --image-size {config.hr_size}"
        )
    if count - config.holdout < 1:
        raise ValueError(
            f"--holdout {config.holdout} leaves no training images in dataset {config.data} ({count} images); "
            f"use --holdout {count - 1} or less"
        )
    if config.gan_steps and config.content_loss.startswith("vgg") and not config.vgg_random_weights:
        path = Path(config.vgg_weights).expanduser() if config.vgg_weights else None
        if not (path or srgan.default_vgg_weights_path(config.content_loss)).is_file():
            # Raises the models' own FileNotFoundError (what is missing, where to put it, the alternatives)
            # before it builds anything.
            srgan.vgg_content_model(config.vgg_weights, config.vgg_layer, config.content_loss)
    if config.generator_bundle:
        generator = bundle.read_manifest(config.generator_bundle).get("generator")
        if generator is None:
            raise ValueError(f"--generator-bundle {config.generator_bundle} has no generator; export one first")
        if int(generator["resolution"]) < config.lr_size:
            raise ValueError(
                f"--generator-bundle makes {generator['resolution']} px images, smaller than the "
                f"{config.lr_size} px LR crops --hr-size {config.hr_size} needs; use --hr-size "
                f"{int(generator['resolution']) * config.scale} or less"
            )
    return manifest


def prepare_srgan_run(config: SRGANConfig, resume: bool, explicit: set[str] = frozenset()) -> SRGANConfig:
    """`runs.prepare_run_dir`, letting a resumed run also extend its stages (`--pretrain-steps`, `--gan-steps`)
    and, before its first adversarial step, change the STAGE2_SETTINGS.

    pretrain_steps may change only while no step on either side of the old and new boundary has been taken,
    so every saved step keeps the stage it was trained in.
    """
    if not resume:
        preflight(config)
        return prepare_run_dir(config.out, config, resume=False, explicit=explicit)
    resolved = prepare_run_dir(config.out, config, resume=True, explicit=explicit)
    overrides = {name: getattr(config, name) for name in RESUMABLE_STEPS if name in explicit}
    saved = int(tf.train.latest_checkpoint(str(Path(config.out) / CHECKPOINT_DIR)).rsplit("-", 1)[-1])
    stage2 = {name: getattr(config, name) for name in STAGE2_SETTINGS
              if name in explicit and getattr(config, name) != getattr(resolved, name)}
    if stage2 and saved > resolved.pretrain_steps:
        flag = "--" + next(iter(stage2)).replace("_", "-")
        raise ValueError(
            f"{config.out} was saved at step {saved}, past pretrain step {resolved.pretrain_steps}: its adversarial "
            f"stage has begun and {flag} can no longer change; start a new run"
        )
    overrides.update(stage2)
    if overrides.get("pretrain_steps", resolved.pretrain_steps) != resolved.pretrain_steps:
        boundary = min(resolved.pretrain_steps, overrides["pretrain_steps"])
        if saved > boundary:
            raise ValueError(
                f"{config.out} was saved at step {saved}, past pretrain step {boundary}; --pretrain-steps can no "
                f"longer change (it is {resolved.pretrain_steps}), extend --gan-steps instead"
            )
    if overrides:
        resolved = dataclasses.replace(resolved, **overrides)
        if stage2:
            preflight(resolved)
        write_json_atomic(Path(config.out) / CONFIG_FILE, dataclasses.asdict(resolved))
    return resolved


# --------------------------------------------------------------------------------------------------
# Input pipeline.


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


# --------------------------------------------------------------------------------------------------
# Trainer.


def per_example_mean(values: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


PERIOD_WINDOW = 8


def periodic_pattern(images: tf.Tensor, period: int, window: int = PERIOD_WINDOW) -> tf.Tensor:
    """The local pattern that repeats every `period` pixels: (N, period^2, H / (period * window), ...) values.

    Each pixel's deviation from the mean of its period x period cell, averaged over window x window cells at
    the same phase. Content averages out; a pattern locked to the pixel grid (the hatching an x`period` pixel
    shuffle prints under adversarial training, and which the checkerboard figure counts) does not. Matching
    this to the target's, under an L1 loss, forbids the hatching without damping other fine detail.
    """
    shape = tf.shape(images)
    cells_y, cells_x = shape[1] // period, shape[2] // period
    cells = tf.reshape(images[:, : cells_y * period, : cells_x * period],
                       [shape[0], cells_y, period, cells_x, period, shape[3]])
    deviation = cells - tf.reduce_mean(cells, axis=[2, 4], keepdims=True)
    phases = tf.reshape(tf.transpose(deviation, [0, 2, 4, 1, 3, 5]),
                        [shape[0] * period * period, cells_y, cells_x, shape[3]])
    local = tf.nn.avg_pool2d(phases, window, window, "VALID")
    return tf.reshape(local, [shape[0], period * period, tf.shape(local)[1], tf.shape(local)[2], shape[3]])


def feature_matching(features: list[tf.Tensor]) -> tf.Tensor:
    """Per-example mean L1 between the fake and real halves of each feature map, averaged over the maps.

    The real half is a constant target: this loss trains the upscaler, never the discriminator.
    """
    distances = []
    for both in features:
        real, fake = tf.split(both, 2)
        distances.append(per_example_mean(tf.abs(fake - tf.stop_gradient(real))))
    return tf.add_n(distances) / len(distances)


def build_discriminator(config: SRGANConfig) -> keras.Model:
    if config.discriminator == "patch":
        return srgan.patch_discriminator(config.discriminator_filters, config.discriminator_layers)
    return srgan.discriminator(
        config.hr_size, filters=config.discriminator_filters, dense_units=config.discriminator_dense_units
    )


class SRGANTrainer:
    def __init__(self, config: SRGANConfig, strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.run_dir = Path(config.out)
        self.manifest = preflight(config)
        self.strategy = strategy or make_strategy(config.strategy_config)
        check_global_batch(config.batch_size, self.strategy)
        with self.strategy.scope():
            self.upscaler = build_upscaler(config)
            self.ema_upscaler = None
            if config.ema_decay:
                self.ema_upscaler = build_upscaler(config)
                self.ema_upscaler.set_weights(self.upscaler.get_weights())
            self.discriminator = build_discriminator(config)
            # The patch critic's logits and its feature maps from one call: feature matching then costs no
            # extra discriminator passes.
            self.critic = None
            if config.discriminator == "patch":
                names = srgan.patch_feature_layers(self.discriminator)
                self.critic = keras.Model(self.discriminator.input,
                                          [self.discriminator.get_layer(name).output for name in names]
                                          + [self.discriminator.output])
            # The generator optimizer counts every step of both stages, so the boundary is an iteration number.
            schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
                [config.pretrain_steps - 1], [config.learning_rate, config.gan_learning_rate]
            )
            self.generator_optimizer = keras.optimizers.Adam(schedule, beta_1=config.beta1)
            self.discriminator_optimizer = keras.optimizers.Adam(
                config.discriminator_learning_rate, beta_1=config.beta1
            )
            # Built now so a checkpoint restores their slots immediately rather than on first use.
            self.generator_optimizer.build(self.upscaler.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            self.content_model = self.make_content_model() if config.gan_steps else None
            self.gan_generator = self.load_gan_generator() if config.generator_bundle else None
            self.noise = tf.random.Generator.from_seed(config.seed)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(
            step=self.step,
            upscaler=self.upscaler,
            discriminator=self.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            noise=self.noise,
            **({"ema_upscaler": self.ema_upscaler} if self.ema_upscaler is not None else {}),
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.run_dir / CHECKPOINT_DIR, max_to_keep=config.keep_checkpoints
        )
        self.pretrain_steps = tf.function(self.pretrain_steps_fn)
        self.gan_steps = tf.function(self.gan_steps_fn)
        self._samples = None

    def make_content_model(self) -> keras.Model | None:
        config = self.config
        if config.content_loss == "pixel":
            return None
        if config.content_loss == "discriminator":
            names = ([DISCRIMINATOR_FEATURE_LAYER] if config.discriminator == "srgan"
                     else srgan.patch_feature_layers(self.discriminator))
            return keras.Model(
                self.discriminator.input, [self.discriminator.get_layer(name).output for name in names]
            )
        return srgan.vgg_content_model(
            config.vgg_weights, config.vgg_layer, config.content_loss, allow_random_weights=config.vgg_random_weights
        )

    def load_gan_generator(self) -> keras.Model:
        generator = bundle.load_bundle(self.config.generator_bundle, with_upscaler=False, with_index=False).generator
        generator.trainable = False
        return generator

    def restore(self) -> int:
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            log.info("resumed from %s at step %d", self.manager.latest_checkpoint, int(self.step))
        return int(self.step)

    def average(self, per_example: tf.Tensor) -> tf.Tensor:
        # Each replica divides by the *global* batch: the optimizer sums gradients across replicas,
        # so the sum of these per-replica means is the mean over the whole global batch.
        return tf.nn.compute_average_loss(tf.reshape(per_example, [-1]), global_batch_size=self.config.batch_size)

    def batch_psnr(self, sr: tf.Tensor, hr: tf.Tensor) -> tf.Tensor:
        return self.average(tf.image.psnr(sr, hr, max_val=2.0))

    def pixel_loss(self, sr: tf.Tensor, hr: tf.Tensor) -> tf.Tensor:
        difference = sr - hr
        return per_example_mean(tf.abs(difference) if self.config.pretrain_loss == "l1" else tf.square(difference))

    def content_loss(self, sr: tf.Tensor, hr: tf.Tensor) -> tf.Tensor:
        """Pixel MSE, VGG feature MSE, or discriminator feature matching (MSE of one SRGAN layer; for the patch
        discriminator the mean L1 over all its layers, as pix2pixHD does)."""
        if self.content_model is None:
            return per_example_mean(tf.square(sr - hr))
        sr_features = tf.nest.flatten(self.content_model(sr, training=False))
        hr_features = [tf.stop_gradient(f) for f in tf.nest.flatten(self.content_model(hr, training=False))]
        if self.config.content_loss == "discriminator" and self.config.discriminator == "patch":
            return tf.add_n([per_example_mean(tf.abs(s - h)) for s, h in zip(sr_features, hr_features, strict=True)]
                            ) / len(sr_features)
        return tf.add_n([per_example_mean(tf.square(s - h)) for s, h in zip(sr_features, hr_features, strict=True)])

    def adversarial_losses(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-example (discriminator, generator) losses of config.gan_loss; logits may be per patch."""
        def cross_entropy(logits, label):
            return per_example_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits)
            )

        if self.config.gan_loss == "hinge":
            return (per_example_mean(tf.nn.relu(1.0 - real_logits)) + per_example_mean(tf.nn.relu(1.0 + fake_logits)),
                    -per_example_mean(fake_logits))
        if self.config.gan_loss == "ragan":
            # The batch averages are per replica: each replica compares its reals with its own fakes.
            real_relative = real_logits - tf.reduce_mean(fake_logits, axis=0, keepdims=True)
            fake_relative = fake_logits - tf.reduce_mean(real_logits, axis=0, keepdims=True)
            return (cross_entropy(real_relative, 1.0) + cross_entropy(fake_relative, 0.0),
                    cross_entropy(real_relative, 0.0) + cross_entropy(fake_relative, 1.0))
        return cross_entropy(real_logits, 1.0) + cross_entropy(fake_logits, 0.0), cross_entropy(fake_logits, 1.0)

    def pretrain_replica_step(self, lr, hr):
        """One pixel-loss update of the upscaler on this replica's share of the global batch."""
        with tf.GradientTape() as tape:
            sr = self.upscaler(lr, training=True)
            loss = self.average(self.pixel_loss(sr, hr))
        gradients = tape.gradient(loss, self.upscaler.trainable_variables)
        self.generator_optimizer.apply_gradients(zip(gradients, self.upscaler.trainable_variables, strict=True))
        return loss, self.batch_psnr(sr, hr)

    def gan_samples(self, count):
        """`count` random LR-sized crops of fresh GAN samples (one crop position per batch)."""
        config = self.config
        latent_dim = self.gan_generator.input_shape[-1]
        images = self.gan_generator(self.noise.normal([count, latent_dim]), training=False)
        room = tf.shape(images)[1] - config.lr_size + 1
        top, left = tf.unstack(self.noise.uniform([2], 0, room, dtype=tf.int32))
        return images[:, top : top + config.lr_size, left : left + config.lr_size, :]

    def gan_replica_step(self, lr, hr):
        """One simultaneous upscaler and discriminator update: weighted content, L1 and adversarial losses."""
        config = self.config

        def cross_entropy(logits, label):
            return tf.reshape(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits), [-1]
            )

        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            sr = self.upscaler(lr, training=True)
            features = None
            if self.critic is not None:
                # One call on reals and fakes together: one batch of work, one spectral-norm update. (The SRGAN
                # discriminator keeps separate calls: its batch normalisation would mix the two.)
                *features, logits = self.critic(tf.concat([hr, sr], 0), training=True)
                real_logits, fake_logits = tf.split(logits, 2)
            else:
                real_logits = self.discriminator(hr, training=True)
                fake_logits = self.discriminator(sr, training=True)
            discriminator_loss, adversarial_loss = self.adversarial_losses(real_logits, fake_logits)
            if self.gan_generator is not None:
                fraction = config.generator_fraction
                gan_sr = self.upscaler(self.gan_samples(tf.shape(lr)[0]), training=True)
                gan_logits = self.discriminator(gan_sr, training=True)
                discriminator_loss = (cross_entropy(real_logits, 1.0) + (1 - fraction) * cross_entropy(fake_logits, 0.0)
                                      + fraction * cross_entropy(gan_logits, 0.0))
                adversarial_loss = (1 - fraction) * adversarial_loss + fraction * cross_entropy(gan_logits, 1.0)
            if features is not None and config.content_loss == "discriminator":
                content = feature_matching(features)
            else:
                content = self.content_loss(sr, hr)
            pixel = per_example_mean(tf.abs(sr - hr))
            generator_loss = config.content_weight * content + config.pixel_weight * pixel
            if config.period_weight:
                difference = periodic_pattern(sr, config.scale) - periodic_pattern(hr, config.scale)
                generator_loss += config.period_weight * per_example_mean(tf.abs(difference))
            generator_loss = self.average(generator_loss + config.adversarial_weight * adversarial_loss)
            discriminator_loss = self.average(discriminator_loss)
        discriminator_gradients = discriminator_tape.gradient(
            discriminator_loss, self.discriminator.trainable_variables
        )
        generator_gradients = generator_tape.gradient(generator_loss, self.upscaler.trainable_variables)
        self.discriminator_optimizer.apply_gradients(
            zip(discriminator_gradients, self.discriminator.trainable_variables, strict=True)
        )
        self.generator_optimizer.apply_gradients(
            zip(generator_gradients, self.upscaler.trainable_variables, strict=True)
        )
        return (generator_loss, discriminator_loss, self.average(content), self.average(adversarial_loss),
                self.batch_psnr(sr, hr))

    def update_ema(self):
        """ema <- decay * ema + (1 - decay) * weights, in cross-replica context so mirrored copies stay equal."""
        decay = self.config.ema_decay
        for average, variable in zip(self.ema_upscaler.weights, self.upscaler.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * variable)

    def run_steps(self, replica_step, iterator, count, outputs):
        """`count` steps in one graph call: Python overhead paid once per loop, not once per step."""
        metrics = (tf.constant(0.0),) * outputs
        for _ in tf.range(count):
            per_replica = self.strategy.run(replica_step, args=next(iterator))
            if self.ema_upscaler is not None:
                self.update_ema()
            metrics = tuple(
                self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in per_replica
            )
        self.step.assign_add(tf.cast(count, tf.int64))
        return metrics

    def pretrain_steps_fn(self, iterator, count):
        return self.run_steps(self.pretrain_replica_step, iterator, count, 2)

    def gan_steps_fn(self, iterator, count):
        return self.run_steps(self.gan_replica_step, iterator, count, 5)

    def dataset(self, start_step: int = 0):
        first = start_step * self.config.batch_size // self.strategy.num_replicas_in_sync
        return self.strategy.distribute_datasets_from_function(
            lambda context: pair_dataset(self.config, context, start=first)
        )

    @property
    def exported_upscaler(self) -> keras.Model:
        """What export and the sample strips use: the weight average when there is one."""
        return self.ema_upscaler if self.ema_upscaler is not None else self.upscaler

    def sample_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Fixed LR/HR pairs for the sample strips: centre crops of the first held-out images."""
        if self._samples is None:
            config = self.config
            ids = holdout_ids(self.manifest, config.holdout)[:SAMPLE_COUNT]
            if not ids:
                ids = sorted(int(image["id"]) for image in self.manifest["images"])[:SAMPLE_COUNT]
            images = read_images_by_id(config.data, ids)
            offset = (images.shape[1] - config.hr_size) // 2
            hr = data.to_float(images[:, offset : offset + config.hr_size, offset : offset + config.hr_size])
            self._samples = (bicubic_downscale(hr, config.scale), hr)
        return self._samples

    def save_samples(self, step: int, writer) -> Path:
        lr, hr = self.sample_pairs()
        sr = self.exported_upscaler(lr, training=False)
        strip = comparison_strip(to_uint8(lr), to_uint8(bicubic_upscale(lr, self.config.scale)), to_uint8(sr),
                                 to_uint8(hr))
        return publish_samples(self.run_dir, step, strip, writer)

    def train(self) -> dict:
        config = self.config
        total = config.total_steps
        start = self.restore()
        iterator = iter(self.dataset(start))
        writer = tf.summary.create_file_writer(str(self.run_dir / "logs"))
        metrics = {}
        step = start
        with StopSignals() as stop, writer.as_default():
            keeper = LoopKeeper(self, "srgan", total, start, writer, stop,
                                "with a lower --learning-rate or --gan-learning-rate")
            while step < total:
                pretraining = step < config.pretrain_steps
                # A loop never crosses the stage boundary: each stage has its own graph.
                count = min(config.steps_per_loop, (config.pretrain_steps if pretraining else total) - step)
                began = time.perf_counter()
                if pretraining:
                    loss, psnr = (float(v) for v in self.pretrain_steps(iterator, tf.constant(count)))
                    metrics = {"pixel_loss": loss, "psnr": psnr}
                else:
                    if step == config.pretrain_steps:
                        log.info("stage 2 (adversarial, %s content loss) from step %d", config.content_loss, step)
                    values = (float(v) for v in self.gan_steps(iterator, tf.constant(count)))
                    metrics = dict(zip(("g_loss", "d_loss", "content_loss", "adversarial_loss", "psnr"), values,
                                       strict=True))
                elapsed = time.perf_counter() - began
                previous, step = step, int(self.step)
                metrics["steps_per_second"] = count / elapsed
                losses = {name: value for name, value in metrics.items() if name not in ("psnr", "steps_per_second")}
                keeper.after(previous, step, metrics, losses)
            keeper.finish(step)
        return {"step": step, **metrics}
