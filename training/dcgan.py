"""DCGAN training: a custom loop under `strategy.run`, checkpointed, resumable, observable."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from models import dcgan
from training import data
from training.augment import diff_augment, parse_policy
from training.cluster import StopAgreement, WorkerPlaces, role_from_environment
from training.precision import agree_on_finite, check_precision, dtype_policy, wrap_optimizer
from training.runs import (
    CHECKPOINT_DIR,
    LoopKeeper,
    StopSignals,
    image_grid,
    publish_samples,
    run_path,
    to_uint8,
)
from training.strategy import StrategyConfig, check_global_batch, make_strategy

log = logging.getLogger(__name__)


LOSSES = ("bce", "hinge")


@dataclass(frozen=True)
class DCGANConfig:
    data: str
    out: str
    resolution: int = 128  # new pieces; 64 stays supported
    width_multiplier: float = 1.0
    latent_dim: int = dcgan.LATENT_DIM
    steps: int = 10_000
    batch_size: int = 64
    learning_rate: float = 2e-4
    beta1: float = 0.5
    label_smoothing: float = 0.0
    # Generator updates per discriminator update; the classic DCGAN code runs two so that D's loss does not
    # collapse to zero (a D far ahead of G is where mode collapse starts).
    generator_updates: int = 1
    init_from: str | None = None  # warm start: the networks (not the optimizers or step) of another run
    # The classic DCGAN is the default of every option below (transposed, bce, no augmentation, no EMA...), so a
    # run without them reproduces the seed's network; the recipes in training/recipes name the refinements.
    upsampling: str = "transposed"  # or "resize": nearest resize + 3x3 conv, no checkerboard by construction
    loss: str = "bce"  # or "hinge" (Lim & Ye 2017; with spectral normalisation, as SN-GAN and BigGAN train)
    spectral_norm: bool = False  # spectral normalisation of every discriminator layer (replaces its batch norm)
    minibatch_stddev: bool = False  # the discriminator sees each batch's variety (Karras et al. 2018)
    augment: str = "none"  # DiffAugment policy on real and generated images alike: e.g. "color,translation,cutout"
    flip: bool = False  # mirror real images at random (the collection's masks are roughly symmetric)
    ema_decay: float = 0.0  # exponential moving average of G's weights, exported instead of the raw ones; 0 = off
    r1_gamma: float = 0.0  # R1 gradient penalty on real images (Mescheder et al. 2018); 0 = off
    discriminator_learning_rate: float | None = None  # default: learning_rate (TTUR when different)
    mixed_precision: str = "none"  # or mixed_float16 (GPUs, with loss scaling) or mixed_bfloat16 (TPUs)
    steps_per_loop: int = 10
    checkpoint_every: int = 500
    sample_every: int = 500
    log_every: int = 50
    keep_checkpoints: int = 3
    seed: int = 0
    strategy: str = "auto"
    tpu: str | None = None
    tpu_zone: str | None = None
    tpu_project: str | None = None

    def __post_init__(self):
        dcgan.check_resolution(self.resolution)
        dcgan.check_width(self.width_multiplier)
        ranges = {
            "latent_dim": (1, 4096), "steps": (1, 10**9), "batch_size": (1, 65536), "steps_per_loop": (1, 10_000),
            "checkpoint_every": (1, 10**9), "sample_every": (1, 10**9), "log_every": (1, 10**9),
            "keep_checkpoints": (1, 1000), "generator_updates": (1, 10),
        }
        dcgan.check_upsampling(self.upsampling)
        parse_policy(self.augment)
        check_precision(self.mixed_precision)
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} is unknown; choose one of {', '.join(LOSSES)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay {self.ema_decay} is outside the allowed range [0, 1)")
        if not 0 <= self.r1_gamma <= 1000:
            raise ValueError(f"r1_gamma {self.r1_gamma} is outside the allowed range 0..1000")
        if self.discriminator_learning_rate is not None and not 0 < self.discriminator_learning_rate <= 1:
            raise ValueError(
                f"discriminator_learning_rate {self.discriminator_learning_rate} is outside the allowed range (0, 1]"
            )
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} {value} is outside the allowed range {low}..{high}")
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"learning_rate {self.learning_rate} is outside the allowed range (0, 1]")
        if not 0 <= self.beta1 < 1:
            raise ValueError(f"beta1 {self.beta1} is outside the allowed range [0, 1)")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing {self.label_smoothing} is outside the allowed range [0, 0.5)")
        StrategyConfig(self.strategy, self.tpu, self.tpu_zone, self.tpu_project)

    @property
    def strategy_config(self) -> StrategyConfig:
        return StrategyConfig(self.strategy, self.tpu, self.tpu_zone, self.tpu_project)


def sample_noise(count: int, latent_dim: int, seed: int) -> np.ndarray:
    """The fixed noise behind every sample grid, so grids from step to step are comparable."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def build_generator(config: DCGANConfig) -> keras.Model:
    return dcgan.generator(config.resolution, config.latent_dim, config.width_multiplier, config.upsampling)


class DCGANTrainer:
    def __init__(self, config: DCGANConfig, strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.run_dir = run_path(config.out)  # a local Path, or a gs:// URL
        self.strategy = strategy or make_strategy(config.strategy_config)
        check_global_batch(config.batch_size, self.strategy)
        image_size = data.load_manifest(config.data)["image_size"]
        if image_size < config.resolution:
            raise ValueError(
                f"dataset {config.data} holds {image_size} px images, smaller than --resolution "
                f"{config.resolution}; re-ingest with --image-size {config.resolution} or more"
            )
        self.augment_policy = parse_policy(config.augment)
        # With several workers only the chief writes the run folder; the others save into a temporary folder.
        self.chief = self.strategy.extended.should_checkpoint
        self.places = WorkerPlaces(self.run_dir, self.chief)
        multiworker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self.stop_agreement = StopAgreement(self.strategy, multiworker and role_from_environment().workers > 1)
        # The seed names the whole run: initial weights here, data order and noise below. (Several workers would
        # agree anyway, since the chief's initial values are broadcast; a one-process rerun needs the seed.)
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope(), dtype_policy(config.mixed_precision):
            self.generator = build_generator(config)
            self.discriminator = dcgan.discriminator(
                config.resolution, config.width_multiplier, config.spectral_norm, config.minibatch_stddev
            )
            # The averaged generator is what export writes when ema_decay > 0 (Karras et al.; Yazici et al. 2019):
            # the raw weights wander around the equilibrium, their average sits nearer it.
            self.average_generator = build_generator(config) if config.ema_decay else None
            if self.average_generator is not None:
                self.average_generator.set_weights(self.generator.get_weights())
            self.generator_optimizer = wrap_optimizer(
                keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1), config.mixed_precision
            )
            self.discriminator_optimizer = wrap_optimizer(
                keras.optimizers.Adam(config.discriminator_learning_rate or config.learning_rate, beta_1=config.beta1),
                config.mixed_precision,
            )
            # Built now so a checkpoint restores their slots immediately rather than on first use.
            self.generator_optimizer.build(self.generator.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            # Created in the strategy scope, the generator gives each replica its own stream.
            self.noise = tf.random.Generator.from_seed(config.seed)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(
            step=self.step,
            generator=self.generator,
            discriminator=self.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            noise=self.noise,
            **({"average_generator": self.average_generator} if self.average_generator is not None else {}),
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.places.checkpoint_dir, max_to_keep=config.keep_checkpoints if self.chief else 1
        )
        self.fixed_noise = sample_noise(64, config.latent_dim, config.seed + 1)
        self.train_steps = tf.function(self.train_steps_fn)

    def restore(self) -> int:
        latest = tf.train.latest_checkpoint(str(self.places.restore_dir))
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            log.info("resumed from %s at step %d", latest, int(self.step))
        elif self.config.init_from:
            source = tf.train.latest_checkpoint(str(run_path(self.config.init_from, CHECKPOINT_DIR)))
            if source is None:
                raise FileNotFoundError(f"--init-from {self.config.init_from} holds no checkpoint to start from")
            networks = tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator)
            networks.restore(source).expect_partial().assert_existing_objects_matched()
            log.info("networks initialised from %s; optimizers and step start fresh", source)
        return int(self.step)

    def discriminator_input(self, images):
        return diff_augment(images, self.augment_policy, self.noise)

    def losses(self, real_logits, fake_logits):
        """Per-example discriminator and generator losses for the configured objective."""
        if self.config.loss == "hinge":
            discriminator_loss = tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)
            return discriminator_loss, -fake_logits
        real_target = tf.fill(tf.shape(real_logits), 1.0 - self.config.label_smoothing)
        real_loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=real_target, logits=real_logits)
        fake_loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits), logits=fake_logits)
        generator_loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits), logits=fake_logits)
        return real_loss + fake_loss, generator_loss

    def r1_penalty(self, real_images):
        """gamma/2 * |grad_x D(x)|^2 on real images, per example."""
        with tf.GradientTape() as tape:
            tape.watch(real_images)
            total = tf.reduce_sum(self.discriminator(self.discriminator_input(real_images), training=True))
        gradients = tape.gradient(total, real_images)
        return 0.5 * self.config.r1_gamma * tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3])

    def apply(self, optimizer, loss, tape, variables):
        """One optimizer update; under float16 the loss is scaled first and overflowing steps are skipped."""
        gradients = tape.gradient(loss, variables)
        if self.config.mixed_precision == "mixed_float16":
            gradients = agree_on_finite(gradients)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))

    def average(self, per_example):
        # Each replica divides by the *global* batch: the optimizer sums gradients across replicas,
        # so the sum of these per-replica means is the mean over the whole global batch.
        return tf.nn.compute_average_loss(tf.reshape(per_example, [-1]), global_batch_size=self.config.batch_size)

    def replica_step(self, real_images):
        """One simultaneous D and G update on this replica's share of the global batch."""
        config = self.config
        batch = tf.shape(real_images)[0]
        latent = self.noise.normal([batch, config.latent_dim])
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake_images = self.generator(latent, training=True)
            real_logits = self.discriminator(self.discriminator_input(real_images), training=True)
            fake_logits = self.discriminator(self.discriminator_input(fake_images), training=True)
            discriminator_loss, generator_loss = self.losses(real_logits, fake_logits)
            discriminator_loss = self.average(discriminator_loss)
            generator_loss = self.average(generator_loss)
            penalised = discriminator_loss
            if config.r1_gamma:
                penalised = penalised + self.average(self.r1_penalty(real_images))
            # scale_loss is the identity unless the optimizer is a LossScaleOptimizer (float16).
            scaled_discriminator_loss = self.discriminator_optimizer.scale_loss(penalised)
            scaled_generator_loss = self.generator_optimizer.scale_loss(generator_loss)
        self.apply(self.discriminator_optimizer, scaled_discriminator_loss, discriminator_tape,
                   self.discriminator.trainable_variables)
        self.apply(self.generator_optimizer, scaled_generator_loss, generator_tape, self.generator.trainable_variables)
        for _ in range(config.generator_updates - 1):
            self.generator_only_step(batch)
        real_score = self.average(tf.sigmoid(real_logits))
        fake_score = self.average(tf.sigmoid(fake_logits))
        return discriminator_loss, generator_loss, real_score, fake_score

    def generator_only_step(self, batch):
        """One more generator update on fresh noise against the just-updated discriminator."""
        latent = self.noise.normal([batch, self.config.latent_dim])
        with tf.GradientTape() as tape:
            fake_images = self.generator(latent, training=True)
            fake_logits = self.discriminator(self.discriminator_input(fake_images), training=True)
            loss = self.average(self.losses(tf.zeros_like(fake_logits), fake_logits)[1])
            scaled_loss = self.generator_optimizer.scale_loss(loss)
        self.apply(self.generator_optimizer, scaled_loss, tape, self.generator.trainable_variables)

    def update_average(self):
        """average <- decay * average + (1 - decay) * weights, with a warm-up so early steps are not frozen in.

        Runs in cross-replica context: the generator's mirrored weights are identical on every replica after
        the update, and assigning a mirrored variable there updates every copy.
        """
        step = tf.cast(self.step, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for average, weight in zip(self.average_generator.weights, self.generator.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * tf.convert_to_tensor(weight))

    def synchronise_statistics(self):
        """Average the batch-norm moving statistics over the replicas (one all-reduce for all of them).

        Each replica updates them from its own share of the batch, so without this every worker would hold
        different ones and the exported generator would describe the chief's share only.
        """
        variables = self.generator.non_trainable_weights + self.discriminator.non_trainable_weights
        if not variables:
            return

        def local_values():
            return tf.concat([tf.reshape(tf.convert_to_tensor(variable), [-1]) for variable in variables], axis=0)

        mean = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, self.strategy.run(local_values), axis=None)
        offset = 0
        for variable in variables:
            size = int(np.prod(variable.shape))
            variable.assign(tf.reshape(mean[offset : offset + size], variable.shape))
            offset += size

    def train_steps_fn(self, iterator, count):
        """`count` steps in one graph call: Python overhead paid once per loop, not once per step."""
        metrics = (tf.constant(0.0),) * 4
        for _ in tf.range(count):
            per_replica = self.strategy.run(self.replica_step, args=(next(iterator),))
            metrics = tuple(
                self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in per_replica
            )
            if self.strategy.num_replicas_in_sync > 1:
                self.synchronise_statistics()
            if self.average_generator is not None:
                self.update_average()
            self.step.assign_add(1)
        return metrics

    def dataset(self, options: tf.distribute.InputOptions | None = None):
        """Each worker reads its own share of the shards (see data.make_dataset); per-replica batches."""
        return data.distributed_dataset(
            self.strategy, self.config.data, self.config.resolution, self.config.batch_size, seed=self.config.seed,
            augment_flip=self.config.flip, options=options,
        )

    @property
    def exported_generator(self) -> keras.Model:
        """The network export writes: the weight average when there is one."""
        return self.average_generator if self.average_generator is not None else self.generator

    def samples(self) -> np.ndarray:
        return to_uint8(self.exported_generator(self.fixed_noise, training=False))

    def save_samples(self, step: int, writer) -> str | Path | None:
        if not self.chief:
            return None
        return publish_samples(self.run_dir, step, image_grid(self.samples(), columns=8), writer)

    def close(self) -> None:
        """Delete what a worker other than the chief wrote (its checkpoints); the chief's run folder stays."""
        self.places.cleanup()

    def train(self) -> dict:
        try:
            return self.train_loop()
        finally:
            self.close()

    def train_loop(self) -> dict:
        config = self.config
        start = self.restore()
        iterator = iter(self.dataset())
        writer = tf.summary.create_file_writer(str(run_path(self.run_dir, "logs"))) if self.chief \
            else tf.summary.create_noop_writer()
        metrics = {}
        step = start
        with StopSignals() as stop, writer.as_default():
            keeper = LoopKeeper(self, "dcgan", config.steps, start, writer, stop, "with a lower --learning-rate",
                                agree=self.stop_agreement)
            while step < config.steps:
                count = min(config.steps_per_loop, config.steps - step)
                began = time.perf_counter()
                values = self.train_steps(iterator, tf.constant(count))
                d_loss, g_loss, real_score, fake_score = (float(v) for v in values)
                elapsed = time.perf_counter() - began
                previous, step = step, int(self.step)
                metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_real": real_score, "d_fake": fake_score,
                           "steps_per_second": count / elapsed}
                keeper.after(previous, step, metrics, {"d": d_loss, "g": g_loss})
            keeper.finish(step)
        return {"step": step, **metrics}
