"""The generator's spectral terms: its batch's power spectrum held to the real batch's (Durall et al. 2020).

Up-sampling layers leave the finest octave of a generator's spectrum short or in excess; the discriminator barely
sees it, and the quality command's log-spectral distance does. This is the same measurement, differentiable: grey,
Hann-windowed images, the azimuthal average of their power over the radii training.quality.radial_profile uses.
The radial average dilutes single frequencies, so the checkerboard (power at periods 2 and 4, which a sub-pixel
stage can print while the radial profile stays right) has its own term, measured as the quality command's
checkerboard ratio is.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training.quality import LUMA, checkerboard_frequencies, hann_window, radial_bins

# Power is compared in natural log units above this floor (images in [-1, 1]), so empty radii cost nothing.
SPECTRUM_FLOOR = 1e-8


def radial_averager(height: int, width: int) -> np.ndarray:
    """(height * width, radii) weights: a flattened fft-shifted spectrum times these is its radial profile."""
    radius, limit = radial_bins(height, width)
    flat = radius.ravel()
    weights = np.zeros((flat.size, limit), np.float32)
    inside = (flat >= 1) & (flat <= limit)
    weights[np.flatnonzero(inside), flat[inside] - 1] = 1.0
    return weights / np.maximum(weights.sum(axis=0, keepdims=True), 1.0)


def batch_power_spectrum(images: tf.Tensor) -> tf.Tensor:
    """(height, width) mean fft-shifted power spectrum of a batch of NHWC images in [-1, 1], grey and
    Hann-windowed as training.quality.power_spectra measures it."""
    images = tf.cast(images, tf.float32)
    height, width = int(images.shape[1]), int(images.shape[2])
    luma = tf.reduce_sum(images * tf.constant(LUMA), axis=-1)
    window = tf.constant(hann_window(height, width), tf.float32)
    centred = (luma - tf.reduce_mean(luma, axis=[1, 2], keepdims=True)) * window
    power = tf.square(tf.abs(tf.signal.fft2d(tf.complex(centred, tf.zeros_like(centred)))))
    return tf.signal.fftshift(tf.reduce_mean(power, axis=0))


def batch_radial_spectrum(images: tf.Tensor) -> tf.Tensor:
    """(radii,) mean radial power profile of a batch of NHWC images in [-1, 1], as training.quality measures it."""
    height, width = int(images.shape[1]), int(images.shape[2])
    return tf.linalg.matvec(tf.constant(radial_averager(height, width)),
                            tf.reshape(batch_power_spectrum(images), [-1]), transpose_a=True)


def batch_checkerboard_power(images: tf.Tensor) -> tf.Tensor:
    """The batch's power at the checkerboard frequencies (training.quality.checkerboard_power), summed."""
    indices = tf.constant(checkerboard_frequencies(int(images.shape[1])), tf.int32)
    return tf.reduce_sum(tf.gather_nd(batch_power_spectrum(images), indices))


def checkerboard_excess(generated: tf.Tensor, real: tf.Tensor) -> tf.Tensor:
    """The natural log of the batch checkerboard ratio (generated over real, a constant) where it exceeds 1.

    One-sided: a generator with less power there than the collection pays nothing, so the term never asks for a
    pattern, only removes one."""
    real_power = tf.stop_gradient(batch_checkerboard_power(real))
    return tf.nn.relu(tf.math.log(batch_checkerboard_power(generated) + SPECTRUM_FLOOR)
                      - tf.math.log(real_power + SPECTRUM_FLOOR))


def spectral_distance(generated: tf.Tensor, real: tf.Tensor) -> tf.Tensor:
    """Mean absolute natural-log ratio of the generated batch's radial spectrum to the real batch's (a constant)."""
    real_profile = tf.stop_gradient(batch_radial_spectrum(real))
    generated_profile = batch_radial_spectrum(generated)
    return tf.reduce_mean(tf.abs(tf.math.log(generated_profile + SPECTRUM_FLOOR)
                                 - tf.math.log(real_profile + SPECTRUM_FLOOR)))
