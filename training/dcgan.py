"""DCGAN training: the networks, the adversarial step and the sample grid; training.controller runs the loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from models import dcgan
from training import data
from training.augment import diff_augment, parse_policy
from training.controller import ControllerConfig, Phase, Trainer, make_optimizer, moving_average
from training.options import check_options, option, to_flat_dict
from training.precision import PRECISIONS, agree_on_finite, check_precision, dtype_policy
from training.quality import COMPARE_SIZE
from training.runs import CHECKPOINT_DIR, image_grid, publish_samples, run_path, to_uint8
from training.spectral_loss import checkerboard_excess, spectral_distance
from training.standing_statistics import standing_statistics
from training.strategy import nest_strategy

log = logging.getLogger(__name__)


LOSSES = ("bce", "hinge")
MODE_SEEKING_DISTANCES = ("pixels", "detail")


@dataclass(frozen=True)
class DCGANConfig(ControllerConfig):
    """A DCGAN training run. The classic DCGAN is the default of every option (transposed, bce, no augmentation,
    no EMA...), so a run without them reproduces the seed's network; the recipes in training/recipes name the
    refinements."""

    data: str = option(help="Dataset folder written by `python -m training ingest` (local or gs://).")
    out: str = option(help="Run folder for the config, checkpoints, samples and TensorBoard logs.")
    resolution: int = option(128, "Side of the generated images in pixels (128 for new pieces; 64 stays supported).",
                             choices=dcgan.SUPPORTED_RESOLUTIONS)
    width_multiplier: float = option(1.0, "Scales every layer's filter count; small values make tiny test models.",
                                     range="0.01..4")
    latent_dim: int = option(dcgan.LATENT_DIM, "Length of the noise vector the generator turns into an image.",
                             range="1..4096")
    steps: int = option(10_000, "Training steps to reach (a resumed run may raise it).", range=f"1..{10**9}")
    batch_size: int = option(64, "Global batch: images per step over all replicas (a multiple of the replicas).",
                             range="1..65536")
    learning_rate: float = option(2e-4, "Adam learning rate of the generator (and of D unless set apart).",
                                  range="(0, 1]")
    beta1: float = option(0.5, "Adam's first-moment decay; DCGAN's 0.5 keeps the adversarial game stable.",
                          range="[0, 1)")
    label_smoothing: float = option(0.0, "One-sided label smoothing: D's target for real images is 1 minus this.",
                                    range="[0, 0.5)")
    # The classic DCGAN code runs two so that D's loss does not collapse to zero (a D far ahead of G is where mode
    # collapse starts).
    generator_updates: int = option(1, "Generator updates per discriminator update.", range="1..10")
    init_from: str | None = option(None, "Warm start: take the networks (not the optimizers or step) of this run.")
    upsampling: str = option("transposed", "Generator upsampling: transposed convolutions, or nearest resize + 3x3 "
                             "conv (resize: no checkerboard by construction).", choices=dcgan.UPSAMPLING_KINDS)
    rgb_upsampling: str | None = option(None, "The last stage's own up-sampling, e.g. subpixel after resize stages "
                                        "(unset: --upsampling).", choices=dcgan.UPSAMPLING_KINDS)
    loss: str = option("bce", "Adversarial loss: bce (DCGAN) or hinge (with spectral norm, as SN-GAN and BigGAN "
                       "train).", choices=LOSSES)
    spectral_norm: bool = option(False, "Spectral normalisation of every discriminator layer (replaces its batch "
                                 "norm).")
    top_block: bool = option(False, "One more convolution block at the full resolution before the RGB layer (more "
                             "power in the finest octave).")
    minibatch_stddev: bool = option(False, "Let the discriminator see each batch's variety (Karras et al. 2018).")
    augment: str = option("none", "DiffAugment policy on real and generated images alike, e.g. "
                          "color,translation,cutout (none: off).")
    flip: bool = option(False, "Mirror real images at random (the collection's masks are roughly symmetric).")
    ema_decay: float = option(0.0, "Decay of an exponential moving average of G's weights, exported instead of the "
                              "raw ones (0: off).", range="[0, 1)")
    r1_gamma: float = option(0.0, "Weight of the R1 gradient penalty on real images (Mescheder et al. 2018; 0: off).",
                             range="0..1000")
    mode_seeking: float = option(0.0, "Weight of the mode-seeking term (Mao et al. 2019): G is rewarded for turning "
                                 "distinct latents into distinct images, seen at 32 px (0: off).", range="0..100")
    mode_seeking_distance: str = option("pixels", "What mode seeking compares: pixels (the 32 px images) or detail "
                                        "(the 32 px images less their 8 px blur, so a colour cast or another "
                                        "background earns nothing).", choices=MODE_SEEKING_DISTANCES)
    mode_seeking_bound: float = option(0.0, "Mode seeking stops rewarding a pair once its 32 px images are this far "
                                       "apart (mean absolute difference, images in [-1, 1]; 0: unbounded, as in "
                                       "MSGAN).", range="0..2")
    spectral_weight: float = option(0.0, "Weight of the spectral term (Durall et al. 2020): the mean absolute log "
                                    "ratio of each batch's radial power spectrum to the real batch's, so the "
                                    "finest octave is neither short nor in excess (0: off).", range="0..100")
    checkerboard_weight: float = option(0.0, "Weight of the checkerboard term: the log of each batch's checkerboard "
                                        "ratio (power at periods 2 and 4 against the real batch's, as the quality "
                                        "command measures it) where it exceeds 1 (0: off).", range="0..100")
    discriminator_learning_rate: float | None = option(None, "The discriminator's own learning rate (TTUR); "
                                                       "unset, it is --learning-rate.", range="(0, 1]")
    mixed_precision: str = option("none", "Compute precision: mixed_float16 on GPUs (with loss scaling), "
                                  "mixed_bfloat16 on TPUs.", choices=PRECISIONS)

    def __post_init__(self):
        nest_strategy(self)
        dcgan.check_resolution(self.resolution)
        dcgan.check_width(self.width_multiplier)
        dcgan.check_upsampling(self.upsampling)
        parse_policy(self.augment)
        check_precision(self.mixed_precision)
        check_options(self)


def sample_noise(count: int, latent_dim: int, seed: int) -> np.ndarray:
    """The fixed noise behind every sample grid, so grids from step to step are comparable."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def mode_seeking_term(latent: tf.Tensor, images: tf.Tensor, weight: float, distance: str = "pixels",
                      bound: float = 0.0) -> tf.Tensor:
    """Per example, weight / (image distance / latent distance) to the batch's previous example (MSGAN).

    The images are compared at 32 px, where the quality report counts near-identical samples, so that the generator
    cannot buy distance with pixel noise. With distance "detail" the 8 px blur is taken away first: the cheapest
    distances, a colour cast or a different background, then earn nothing and variety has to come from the mask's
    features. The reciprocal grows without bound as two images merge: the push falls on the pairs that are
    collapsing. With a bound (Yang et al. 2019 clip the ratio the same way) pairs farther apart than it earn nothing
    at all, so the generator is not paid for more variety of colour and layout than the collection has.
    """
    factor = max(1, images.shape[1] // COMPARE_SIZE)
    pooled = tf.cast(tf.nn.avg_pool2d(images, factor, factor, "VALID"), tf.float32)
    if distance == "detail":
        blurred = tf.nn.avg_pool2d(pooled, 4, 4, "VALID")
        pooled = pooled - tf.image.resize(blurred, tf.shape(pooled)[1:3], method="bilinear")
    image_distance = tf.reduce_mean(tf.abs(pooled - tf.roll(pooled, 1, axis=0)), axis=[1, 2, 3])
    if bound:
        image_distance = tf.minimum(image_distance, bound)
    latent_distance = tf.reduce_mean(tf.abs(latent - tf.roll(latent, 1, axis=0)), axis=1)
    # A replica with a single example has no pair: its term is zero rather than weight / epsilon.
    paired = tf.cast(tf.shape(latent)[0] > 1, tf.float32)
    return paired * weight / (image_distance / (latent_distance + 1e-5) + 1e-5)


def build_generator(config: DCGANConfig) -> keras.Model:
    """The same construction restore and export use, from the options config.json stores."""
    return dcgan.generator_from_config(to_flat_dict(config))


class DCGANTrainer(Trainer):
    name = "dcgan"

    def __init__(self, config: DCGANConfig, strategy: tf.distribute.Strategy | None = None):
        super().__init__(config, strategy)
        image_size = data.load_manifest(config.data)["image_size"]
        if image_size < config.resolution:
            raise ValueError(
                f"dataset {config.data} holds {image_size} px images, smaller than --resolution "
                f"{config.resolution}; re-ingest with --image-size {config.resolution} or more"
            )
        self.augment_policy = parse_policy(config.augment)
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
            self.generator_optimizer = make_optimizer(
                config.learning_rate, config.beta1, self.generator.trainable_variables, config.mixed_precision
            )
            self.discriminator_optimizer = make_optimizer(
                config.discriminator_learning_rate or config.learning_rate, config.beta1,
                self.discriminator.trainable_variables, config.mixed_precision,
            )
            # Created in the strategy scope, the generator gives each replica its own stream.
            self.noise = tf.random.Generator.from_seed(config.seed)
        self.attach(
            generator=self.generator,
            discriminator=self.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            noise=self.noise,
            **({"average_generator": self.average_generator} if self.average_generator is not None else {}),
        )
        self.fixed_noise = sample_noise(64, config.latent_dim, config.seed + 1)
        self.sample_copy: keras.Model | None = None  # built at the first sample grid of a run with an average
        self.train_steps = self.loop(self.replica_step, 4, self.after_step)

    def phases(self) -> list[Phase]:
        return [Phase(self.config.steps, self.train_steps, ("d_loss", "g_loss", "d_real", "d_fake"),
                      {"d": "d_loss", "g": "g_loss"})]

    def restore(self) -> int:
        """Resume at the saved step; a new run with --init-from takes that run's networks (not its optimizers)."""
        if self.config.init_from and tf.train.latest_checkpoint(str(self.places.restore_dir)) is None:
            source = tf.train.latest_checkpoint(str(run_path(self.config.init_from, CHECKPOINT_DIR)))
            if source is None:
                raise FileNotFoundError(f"--init-from {self.config.init_from} holds no checkpoint to start from")
            networks = tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator)
            networks.restore(source).expect_partial().assert_existing_objects_matched()
            log.info("networks initialised from %s; optimizers and step start fresh", source)
            return int(self.step)
        return super().restore()

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

    def generator_objective(self, adversarial_loss, latent, fake_images, real_images):
        """G's averaged loss, the same in every G update: the adversarial term, plus mode seeking and the
        spectral and checkerboard terms (this replica's batch against its real batch) when on."""
        config = self.config
        loss = self.average(adversarial_loss)
        if config.mode_seeking:
            loss += self.average(mode_seeking_term(latent, fake_images, config.mode_seeking,
                                                   config.mode_seeking_distance, config.mode_seeking_bound))
        if config.spectral_weight:
            term = config.spectral_weight * spectral_distance(fake_images, real_images)
            loss += self.average(tf.fill(tf.shape(latent)[:1], term))
        if config.checkerboard_weight:
            term = config.checkerboard_weight * checkerboard_excess(fake_images, real_images)
            loss += self.average(tf.fill(tf.shape(latent)[:1], term))
        return loss

    def apply(self, optimizer, loss, tape, variables):
        """One optimizer update; under float16 the loss is scaled first and overflowing steps are skipped."""
        gradients = tape.gradient(loss, variables)
        if self.config.mixed_precision == "mixed_float16":
            gradients = agree_on_finite(gradients)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))

    def replica_step(self, real_images):
        """One simultaneous D and G update on this replica's share of the global batch."""
        config = self.config
        batch = tf.shape(real_images)[0]
        latent = self.noise.normal([batch, config.latent_dim])
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake_images = self.generator(latent, training=True)
            real_logits = self.discriminator(self.discriminator_input(real_images), training=True)
            fake_logits = self.discriminator(self.discriminator_input(fake_images), training=True)
            discriminator_loss, adversarial_loss = self.losses(real_logits, fake_logits)
            discriminator_loss = self.average(discriminator_loss)
            generator_loss = self.generator_objective(adversarial_loss, latent, fake_images, real_images)
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
            self.generator_only_step(real_images)
        real_score = self.average(tf.sigmoid(real_logits))
        fake_score = self.average(tf.sigmoid(fake_logits))
        return discriminator_loss, generator_loss, real_score, fake_score

    def generator_only_step(self, real_images):
        """One more generator update on fresh noise against the just-updated discriminator."""
        latent = self.noise.normal([tf.shape(real_images)[0], self.config.latent_dim])
        with tf.GradientTape() as tape:
            fake_images = self.generator(latent, training=True)
            fake_logits = self.discriminator(self.discriminator_input(fake_images), training=True)
            adversarial_loss = self.losses(tf.zeros_like(fake_logits), fake_logits)[1]
            loss = self.generator_objective(adversarial_loss, latent, fake_images, real_images)
            scaled_loss = self.generator_optimizer.scale_loss(loss)
        self.apply(self.generator_optimizer, scaled_loss, tape, self.generator.trainable_variables)

    def after_step(self):
        """Per step, in cross-replica context: one set of batch-norm statistics, and the weight average."""
        if self.strategy.num_replicas_in_sync > 1:
            self.synchronise_statistics()
        if self.average_generator is not None:
            # A warm-up, so that the first steps' weights are not frozen into the average.
            step = tf.cast(self.step, tf.float32)
            moving_average(self.average_generator, self.generator,
                           tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step)))

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
        """The fixed latents through what export writes: the average gets standing statistics, on a copy."""
        shown = self.exported_generator
        if self.average_generator is not None:
            # One copy for the whole run, outside the strategy: re-estimating its statistics leaves the
            # checkpointed average as it is.
            if self.sample_copy is None:
                self.sample_copy = build_generator(self.config)
            shown = self.sample_copy
            shown.set_weights(self.average_generator.get_weights())
            standing_statistics(shown, self.config.latent_dim, self.config.batch_size, seed=self.config.seed)
        return to_uint8(shown(self.fixed_noise, training=False))

    def input_for(self, start_step: int):
        """The seeded data order from its start: a resumed DCGAN run does not skip what it saw."""
        return self.dataset()

    def save_samples(self, step: int, writer) -> str | Path:
        return publish_samples(self.run_dir, step, image_grid(self.samples(), columns=8), writer)
