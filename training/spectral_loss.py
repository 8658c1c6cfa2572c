"""The generator's spectral term: its batch's radial power spectrum held to the real batch's (Durall et al. 2020).

Up-sampling layers leave the finest octave of a generator's spectrum short or in excess; the discriminator barely
sees it, and the quality command's log-spectral distance does. This is the same measurement, differentiable: grey,
Hann-windowed images, the azimuthal average of their power over the radii training.quality.radial_profile uses.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training.quality import LUMA, hann_window, radial_bins

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


def batch_radial_spectrum(images: tf.Tensor) -> tf.Tensor:
    """(radii,) mean radial power profile of a batch of NHWC images in [-1, 1], as training.quality measures it."""
    images = tf.cast(images, tf.float32)
    height, width = int(images.shape[1]), int(images.shape[2])
    luma = tf.reduce_sum(images * tf.constant(LUMA), axis=-1)
    window = tf.constant(hann_window(height, width), tf.float32)
    centred = (luma - tf.reduce_mean(luma, axis=[1, 2], keepdims=True)) * window
    power = tf.square(tf.abs(tf.signal.fft2d(tf.complex(centred, tf.zeros_like(centred)))))
    shifted = tf.signal.fftshift(tf.reduce_mean(power, axis=0))
    return tf.linalg.matvec(tf.constant(radial_averager(height, width)), tf.reshape(shifted, [-1]), transpose_a=True)


def spectral_distance(generated: tf.Tensor, real: tf.Tensor) -> tf.Tensor:
    """Mean absolute natural-log ratio of the generated batch's radial spectrum to the real batch's (a constant)."""
    real_profile = tf.stop_gradient(batch_radial_spectrum(real))
    generated_profile = batch_radial_spectrum(generated)
    return tf.reduce_mean(tf.abs(tf.math.log(generated_profile + SPECTRUM_FLOOR)
                                 - tf.math.log(real_profile + SPECTRUM_FLOOR)))
