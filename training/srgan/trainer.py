"""The SRGAN trainer: the upscaler and discriminator, each stage's step and the sample strips; the loop, the
checkpoints and resume are training.controller's."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from models import bundle, srgan
from training import data
from training.controller import Phase, Trainer, make_optimizer, moving_average
from training.runs import publish_samples, to_uint8
from training.srgan.config import (
    DISCRIMINATOR_FEATURE_LAYER,
    SRGANConfig,
    build_discriminator,
    build_upscaler,
    init_upscaler_weights,
    preflight,
)
from training.srgan.losses import (
    adversarial_losses,
    batch_pattern,
    feature_distance,
    feature_matching,
    grain_excess,
    per_example_mean,
    periodic_pattern,
    pixel_loss,
    shrink_consistency,
)
from training.srgan.pairs import (
    bicubic_downscale,
    bicubic_upscale,
    comparison_strip,
    holdout_ids,
    pair_dataset,
    read_images_by_id,
)

SAMPLE_COUNT = 4
GAN_METRICS = ("g_loss", "d_loss", "content_loss", "adversarial_loss", "psnr")


class SRGANTrainer(Trainer):
    name = "srgan"
    fix_hint = "with a lower --learning-rate or --gan-learning-rate"

    def __init__(self, config: SRGANConfig, strategy: tf.distribute.Strategy | None = None):
        self.manifest = preflight(config)
        super().__init__(config, strategy)
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
            self.generator_optimizer = make_optimizer(schedule, config.beta1, self.upscaler.trainable_variables)
            self.discriminator_optimizer = make_optimizer(
                config.discriminator_learning_rate, config.beta1, self.discriminator.trainable_variables
            )
            self.content_model = self.make_content_model() if config.gan_steps else None
            self.gan_generator = self.load_gan_generator() if config.generator_bundle else None
            self.noise = tf.random.Generator.from_seed(config.seed)
        self.attach(
            upscaler=self.upscaler,
            discriminator=self.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            noise=self.noise,
            **({"ema_upscaler": self.ema_upscaler} if self.ema_upscaler is not None else {}),
        )
        self.pretrain_steps = self.loop(self.pretrain_replica_step, 2, self.after_step)
        self.gan_steps = self.loop(self.gan_replica_step, len(GAN_METRICS), self.after_step)
        self._samples = None

    def restore(self) -> int:
        """Resume at the saved step; a new run with --init-upscaler starts its upscaler (and weight average) from
        that bundle's, as dcgan's --init-from does for its networks."""
        if self.config.init_upscaler and tf.train.latest_checkpoint(str(self.places.restore_dir)) is None:
            weights = init_upscaler_weights(self.config)
            for model in (self.upscaler, self.ema_upscaler):
                if model is not None:
                    model.set_weights(weights)
            return int(self.step)
        return super().restore()

    def phases(self) -> list[Phase]:
        config = self.config
        gan_losses = {name: name for name in GAN_METRICS if name != "psnr"}
        return [
            Phase(config.pretrain_steps, self.pretrain_steps, ("pixel_loss", "psnr"), {"pixel_loss": "pixel_loss"}),
            Phase(config.total_steps, self.gan_steps, GAN_METRICS, gan_losses,
                  announce=f"stage 2 (adversarial, {config.content_loss} content loss)"),
        ]

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

    def batch_psnr(self, sr: tf.Tensor, hr: tf.Tensor) -> tf.Tensor:
        return self.average(tf.image.psnr(sr, hr, max_val=2.0))

    def content_loss(self, sr: tf.Tensor, hr: tf.Tensor) -> tf.Tensor:
        """Pixel MSE, VGG feature MSE, or discriminator feature matching (MSE of one SRGAN layer; for the patch
        discriminator the mean L1 over all its layers, as pix2pixHD does)."""
        if self.content_model is None:
            return per_example_mean(tf.square(sr - hr))
        return feature_distance(tf.nest.flatten(self.content_model(sr, training=False)),
                                tf.nest.flatten(self.content_model(hr, training=False)),
                                l1=self.config.content_loss == "discriminator" and self.config.discriminator == "patch")

    def adversarial_losses(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-example (discriminator, generator) losses of config.gan_loss; logits may be per patch."""
        return adversarial_losses(self.config.gan_loss, real_logits, fake_logits)

    def pretrain_replica_step(self, lr, hr):
        """One pixel-loss update of the upscaler on this replica's share of the global batch."""
        with tf.GradientTape() as tape:
            sr = self.upscaler(lr, training=True)
            loss = self.average(pixel_loss(self.config.pretrain_loss, sr, hr))
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
            unpaired_period = unpaired_consistency = unpaired_grain = 0.0
            if self.gan_generator is not None:
                # The same loss on (reals, upscaled GAN samples), mixed in: for bce this is D's usual sum with
                # the fake term split between the two kinds of fake; for ragan each kind is judged relative to
                # the reals.
                fraction = config.generator_fraction
                gan_lr = self.gan_samples(tf.shape(lr)[0])
                gan_sr = self.upscaler(gan_lr, training=True)
                gan_logits = (self.critic(gan_sr, training=True)[-1] if self.critic is not None
                              else self.discriminator(gan_sr, training=True))
                gan_discriminator_loss, gan_adversarial_loss = self.adversarial_losses(real_logits, gan_logits)
                discriminator_loss = (1 - fraction) * discriminator_loss + fraction * gan_discriminator_loss
                adversarial_loss = (1 - fraction) * adversarial_loss + fraction * gan_adversarial_loss
                if config.generator_period_weight:
                    difference = batch_pattern(gan_sr, config.scale) - batch_pattern(hr, config.scale)
                    unpaired_period = config.generator_period_weight * tf.reduce_mean(tf.abs(difference))
                if config.generator_consistency_weight:
                    unpaired_consistency = (config.generator_consistency_weight
                                            * shrink_consistency(gan_sr, gan_lr))
                if config.generator_grain_weight:
                    unpaired_grain = config.generator_grain_weight * grain_excess(gan_sr, hr)
            if features is not None and config.content_loss == "discriminator":
                content = feature_matching(features)
            else:
                content = self.content_loss(sr, hr)
            pixel = per_example_mean(tf.abs(sr - hr))
            generator_loss = config.content_weight * content + config.pixel_weight * pixel
            if config.period_weight:
                difference = periodic_pattern(sr, config.scale) - periodic_pattern(hr, config.scale)
                generator_loss += config.period_weight * per_example_mean(tf.abs(difference))
            generator_loss = self.average(generator_loss + unpaired_period + unpaired_consistency + unpaired_grain
                                          + config.adversarial_weight * adversarial_loss)
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

    def after_step(self):
        if self.ema_upscaler is not None:
            moving_average(self.ema_upscaler, self.upscaler, self.config.ema_decay)

    def dataset(self, start_step: int = 0):
        first = start_step * self.config.batch_size // self.strategy.num_replicas_in_sync
        return self.strategy.distribute_datasets_from_function(
            lambda context: pair_dataset(self.config, context, start=first)
        )

    def input_for(self, start_step: int):
        """A resumed run draws new examples rather than replaying the first ones (see pair_dataset)."""
        return self.dataset(start_step)

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
