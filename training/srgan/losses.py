"""SRGAN losses, per example (each replica averages them over the global batch): pixel, content, adversarial,
the grid-locked pattern terms, and the shrink consistency and grain of unpaired frames."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training.quality import LUMA


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


def batch_pattern(images: tf.Tensor, period: int) -> tf.Tensor:
    """periodic_pattern averaged over the batch: (period^2, ..., channels).

    GAN samples have no original, so their pattern cannot be matched per example; but a pattern an upscaler
    prints into every frame at the same phase survives the batch average, where content (and a real image's own
    texture) averages out.
    """
    return tf.reduce_mean(periodic_pattern(images, period), axis=0)


def shrink_consistency(upscaled: tf.Tensor, small: tf.Tensor) -> tf.Tensor:
    """Per-example mean L1 between `upscaled` shrunk back to `small`'s size and `small` itself.

    An upscaled GAN frame has no original to match, but its own input is what it must still be when shrunk back
    (the downsampling consistency of unpaired super-resolution): the adversarial terms may add texture, not move
    the frame's shapes. The shrink is the antialiased bicubic one that makes the training pairs, unclipped so that
    saturated pixels still pass a gradient.
    """
    size = tf.shape(small)[1:3]
    shrunk = tf.image.resize(upscaled, size, method="bicubic", antialias=True)
    return per_example_mean(tf.abs(shrunk - small))


# The checkerboard figure's frequencies (training.quality.checkerboard_power), in cycles per pixel along y and x:
# period 2 or 4 along each axis, or constant along one. Each is listed once: f and -f carry the same power.
GRAIN_FREQUENCIES = ((0.0, 0.5), (0.5, 0.0), (0.5, 0.5), (0.0, 0.25), (0.25, 0.0), (0.25, 0.25), (0.25, -0.25),
                     (0.5, 0.25), (0.25, 0.5))
GRAIN_WINDOW = 8
GRAIN_STRIDE = 4
# Power below half an 8-bit step's (images in [-1, 1]) cannot show on a screen, so an excess there costs nothing.
GRAIN_FLOOR = (1.0 / 255.0) ** 2


def grain_kernels(window: int = GRAIN_WINDOW) -> np.ndarray:
    """(window, window, 1, 2F) cosine and sine filters, Hann-windowed, one pair per GRAIN_FREQUENCIES entry.

    The window sums to 2, so a sinusoid of amplitude a off the Nyquist axes has local power a^2.
    """
    taper = np.hanning(window + 2)[1:-1]
    taper = np.outer(taper, taper)
    taper *= 2.0 / taper.sum()
    rows, columns = np.indices((window, window))
    phases = [2 * np.pi * (fy * rows + fx * columns) for fy, fx in GRAIN_FREQUENCIES]
    kernels = [taper * wave(phase) for phase in phases for wave in (np.cos, np.sin)]
    return np.stack(kernels, axis=-1)[:, :, None, :].astype(np.float32)


def local_grain_power(images: tf.Tensor) -> tf.Tensor:
    """(N, F) power of each image's luma at each GRAIN_FREQUENCIES entry, measured in GRAIN_WINDOW windows and
    averaged over them.

    Power, not a signed pattern: a one-pixel checkerboard whose phase follows the content (and so averages out of
    batch_pattern) still counts in full, window by window.
    """
    luma = tf.reduce_sum(images * tf.constant(LUMA, images.dtype), axis=-1, keepdims=True)
    responses = tf.nn.conv2d(luma, tf.constant(grain_kernels(), images.dtype), GRAIN_STRIDE, "VALID")
    squares = tf.reduce_mean(tf.square(responses), axis=[1, 2])
    cosine, sine = squares[:, 0::2], squares[:, 1::2]
    return cosine + sine


def grain_excess(upscaled: tf.Tensor, real: tf.Tensor) -> tf.Tensor:
    """Mean over GRAIN_FREQUENCIES of how far (natural log) the batch's power exceeds the real batch's there.

    Unpaired frames have no original to match, but the collection's own power at the checkerboard frequencies is
    a ceiling: above it is grain (the one-pixel pattern the adversarial terms print into GAN frames, which the
    antialiased shrink of shrink_consistency cannot see). One-sided: less power than the collection costs
    nothing, so the term never asks for grain, and a log ratio, so a faint excess and a strong one pull alike.
    """
    upscaled_power = tf.reduce_mean(local_grain_power(upscaled), axis=0)
    real_power = tf.stop_gradient(tf.reduce_mean(local_grain_power(real), axis=0))
    return tf.reduce_mean(tf.nn.relu(tf.math.log(upscaled_power + GRAIN_FLOOR) - tf.math.log(real_power + GRAIN_FLOOR)))


def feature_matching(features: list[tf.Tensor]) -> tf.Tensor:
    """Per-example mean L1 between the fake and real halves of each feature map, averaged over the maps.

    The real half is a constant target: this loss trains the upscaler, never the discriminator.
    """
    halves = [tf.split(both, 2) for both in features]
    return feature_distance([fake for _, fake in halves], [real for real, _ in halves], l1=True)


def pixel_loss(kind: str, sr: tf.Tensor, hr: tf.Tensor) -> tf.Tensor:
    """Mean absolute (`l1`) or squared (`mse`) difference."""
    difference = sr - hr
    return per_example_mean(tf.abs(difference) if kind == "l1" else tf.square(difference))


def cross_entropy(logits: tf.Tensor, label: float) -> tf.Tensor:
    """Sigmoid cross-entropy of every logit (per patch, or one) against `label`, averaged per example."""
    return per_example_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label),
                                                                    logits=logits))


def adversarial_losses(gan_loss: str, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-example (discriminator, generator) losses of `gan_loss` (bce, hinge or ragan); logits may be per patch."""
    if gan_loss == "hinge":
        return (per_example_mean(tf.nn.relu(1.0 - real_logits)) + per_example_mean(tf.nn.relu(1.0 + fake_logits)),
                -per_example_mean(fake_logits))
    if gan_loss == "ragan":
        # The batch averages are per replica: each replica compares its reals with its own fakes.
        real_relative = real_logits - tf.reduce_mean(fake_logits, axis=0, keepdims=True)
        fake_relative = fake_logits - tf.reduce_mean(real_logits, axis=0, keepdims=True)
        return (cross_entropy(real_relative, 1.0) + cross_entropy(fake_relative, 0.0),
                cross_entropy(real_relative, 0.0) + cross_entropy(fake_relative, 1.0))
    return cross_entropy(real_logits, 1.0) + cross_entropy(fake_logits, 0.0), cross_entropy(fake_logits, 1.0)


def feature_distance(sr_features: list[tf.Tensor], hr_features: list[tf.Tensor], l1: bool) -> tf.Tensor:
    """Sum of per-example feature MSEs, or (`l1`) the mean over the maps of their L1 distances (as pix2pixHD)."""
    hr_features = [tf.stop_gradient(features) for features in hr_features]
    if l1:
        return tf.add_n([per_example_mean(tf.abs(s - h)) for s, h in zip(sr_features, hr_features, strict=True)]
                        ) / len(sr_features)
    return tf.add_n([per_example_mean(tf.square(s - h)) for s, h in zip(sr_features, hr_features, strict=True)])
