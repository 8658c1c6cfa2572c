"""Low-resolution training inputs degraded the way a GAN generator's frames are, after Real-ESRGAN.

The upscaler runs on a generator's 128 px frames, not on clean bicubic reductions: they are soft, a little noisy,
and carry the faint period-2/period-4 checkerboard of transposed convolutions. Training on clean reductions
teaches the upscaler to magnify those faults; training on inputs degraded like them teaches it to clean them
(Wang et al. 2021, "Real-ESRGAN", does the same for photographs).

One pass per example, each stage drawn with its own probability:
  blur (isotropic or anisotropic Gaussian, at HR) -> resampling (bilinear | bicubic | area) -> noise (Gaussian,
  colour or grey, or Poisson-like: its spread grows with brightness) -> checkerboard (period 2 or 4) -> JPEG.

Everything is pure TensorFlow on one HWC float image in [-1, 1] and usable inside tf.data. Randomness comes only
from stateless ops keyed by an explicit seed (shape [2]), so the same seed always gives the same input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

RESAMPLING = ("bilinear", "bicubic", "area")
CHECKERBOARD_PERIODS = (2, 4)
MIN_BLUR_SIGMA = 0.2
# Stages, each with its own sub-seed: the order of this tuple fixes which sub-seed a stage gets.
_STAGES = ("blur", "resample", "noise", "checkerboard", "jpeg")


@dataclass(frozen=True)
class DegradeConfig:
    """Probabilities and strengths of each stage. Sigmas and amplitudes are in [-1, 1] pixel units."""

    scale: int = 4
    blur_probability: float = 0.5
    max_blur_sigma: float = 3.0  # HR pixels; 3.0 at x4 is 0.75 LR pixels
    noise_probability: float = 0.4
    max_noise: float = 0.04
    checkerboard_probability: float = 0.3
    max_checkerboard: float = 0.04
    jpeg_probability: float = 0.3
    min_jpeg_quality: int = 60

    def __post_init__(self):
        if self.scale < 1:
            raise ValueError(f"scale {self.scale} is outside the allowed range 1..")
        for name in ("blur_probability", "noise_probability", "checkerboard_probability", "jpeg_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} {getattr(self, name)} is outside the allowed range [0, 1]")
        if not MIN_BLUR_SIGMA <= self.max_blur_sigma <= 10:
            raise ValueError(f"max_blur_sigma {self.max_blur_sigma} is outside the allowed range {MIN_BLUR_SIGMA}..10")
        for name in ("max_noise", "max_checkerboard"):
            if not 0 <= getattr(self, name) <= 0.5:
                raise ValueError(f"{name} {getattr(self, name)} is outside the allowed range [0, 0.5]")
        if not 1 <= self.min_jpeg_quality <= 100:
            raise ValueError(f"min_jpeg_quality {self.min_jpeg_quality} is outside the allowed range 1..100")

    @property
    def kernel_size(self) -> int:
        """Odd blur kernel side covering three sigmas of the widest blur."""
        return 2 * math.ceil(3 * self.max_blur_sigma) + 1


# --------------------------------------------------------------------------------------------------
# The stages, each a pure function of its inputs.


def gaussian_kernel(sigma_x, sigma_y, angle, size: int) -> tf.Tensor:
    """[size, size] Gaussian, normalised to sum 1: sigma_x along `angle` (radians), sigma_y across it."""
    half = (size - 1) / 2
    coordinates = tf.range(size, dtype=tf.float32) - half
    y, x = tf.meshgrid(coordinates, coordinates, indexing="ij")
    cosine, sine = tf.cos(angle), tf.sin(angle)
    along = cosine * x + sine * y
    across = -sine * x + cosine * y
    kernel = tf.exp(-0.5 * (tf.square(along / sigma_x) + tf.square(across / sigma_y)))
    return kernel / tf.reduce_sum(kernel)


def blur(image: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """HWC image convolved with one [k, k] kernel per channel, reflecting at the borders (no dark frame)."""
    size = int(kernel.shape[0])
    pad = size // 2
    padded = tf.pad(image[None], [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    channels = int(image.shape[-1])
    filters = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(padded, filters, strides=[1, 1, 1, 1], padding="VALID")[0]


def downsample(image: tf.Tensor, scale: int, method) -> tf.Tensor:
    """HWC image to 1/scale size with RESAMPLING[method] (antialiased); `method` may be a tensor."""
    size = tf.shape(image)[:2] // scale

    def resize(name):
        return lambda: tf.image.resize(image, size, method=name, antialias=True)

    return tf.switch_case(tf.cast(method, tf.int32), [resize(name) for name in RESAMPLING])


def gaussian_noise(image: tf.Tensor, seed, sigma, grey) -> tf.Tensor:
    """Adds zero-mean Gaussian noise of std `sigma`; the same value in every channel when `grey`."""
    shape = tf.shape(image)
    colour = tf.random.stateless_normal(shape, seed)
    mono = tf.random.stateless_normal(tf.concat([shape[:2], [1]], 0), seed)
    return image + sigma * tf.where(grey, mono * tf.ones_like(colour), colour)


def poisson_noise(image: tf.Tensor, seed, sigma) -> tf.Tensor:
    """Shot-like noise: Gaussian whose std grows with the square root of brightness (`sigma` at white)."""
    brightness = tf.clip_by_value((image + 1.0) / 2.0, 0.0, 1.0)
    return image + sigma * tf.sqrt(brightness) * tf.random.stateless_normal(tf.shape(image), seed)


def checkerboard_pattern(seed, height, width, channels: int, period) -> tf.Tensor:
    """A zero-mean tile of `period` x `period` random values (peak magnitude 1) repeated over the frame.

    What an uneven transposed convolution leaves behind: each output phase gets its own gain.
    """
    tile = tf.random.stateless_normal([4, 4, channels], seed)[:period, :period]
    tile -= tf.reduce_mean(tile, axis=[0, 1], keepdims=True)
    tile /= tf.reduce_max(tf.abs(tile)) + 1e-6
    reps = [height // period + 1, width // period + 1, 1]
    return tf.tile(tile, reps)[:height, :width]


def add_checkerboard(image: tf.Tensor, seed, amplitude, period) -> tf.Tensor:
    shape = tf.shape(image)
    return image + amplitude * checkerboard_pattern(seed, shape[0], shape[1], int(image.shape[-1]), period)


def jpeg(image: tf.Tensor, quality) -> tf.Tensor:
    """JPEG round trip at `quality` (1..100, may be a tensor) of a [-1, 1] image."""
    unit = tf.clip_by_value((image + 1.0) / 2.0, 0.0, 1.0)
    return tf.image.adjust_jpeg_quality(unit, quality) * 2.0 - 1.0


# --------------------------------------------------------------------------------------------------
# The random draw.


def _uniform(seed, low, high):
    return tf.random.stateless_uniform([], seed, low, high)


def _chance(seed, probability: float):
    return tf.random.stateless_uniform([], seed) < probability


def degrade(hr: tf.Tensor, seed, config: DegradeConfig) -> tf.Tensor:
    """HR image (HWC float in [-1, 1], sides divisible by the scale) -> degraded LR image, clipped to [-1, 1]."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    seeds = dict(zip(_STAGES, tf.unstack(tf.random.experimental.stateless_split(seed, len(_STAGES))), strict=True))
    draws = {name: tf.unstack(tf.random.experimental.stateless_split(seeds[name], 6)) for name in _STAGES}
    image = hr
    channels = int(hr.shape[-1])

    b = draws["blur"]
    sigma_x = _uniform(b[1], MIN_BLUR_SIGMA, config.max_blur_sigma)
    isotropic = _chance(b[2], 0.5)
    sigma_y = tf.where(isotropic, sigma_x, _uniform(b[3], MIN_BLUR_SIGMA, config.max_blur_sigma))
    angle = _uniform(b[4], 0.0, math.pi)
    kernel = gaussian_kernel(sigma_x, sigma_y, angle, config.kernel_size)
    image = tf.cond(_chance(b[0], config.blur_probability), lambda: blur(image, kernel), lambda: image)

    method = tf.random.stateless_uniform([], draws["resample"][0], 0, len(RESAMPLING), dtype=tf.int32)
    image = downsample(image, config.scale, method)

    n = draws["noise"]
    sigma = _uniform(n[1], 0.0, config.max_noise)
    noisy = tf.where(
        _chance(n[2], 0.5),
        poisson_noise(image, n[3], sigma),
        gaussian_noise(image, n[4], sigma, _chance(n[5], 0.3)),
    )
    image = tf.where(_chance(n[0], config.noise_probability), noisy, image)

    c = draws["checkerboard"]
    amplitude = _uniform(c[1], 0.0, config.max_checkerboard)
    period = tf.gather(tf.constant(CHECKERBOARD_PERIODS), tf.random.stateless_uniform([], c[2], 0, 2, tf.int32))
    shape = tf.shape(image)
    pattern = checkerboard_pattern(c[3], shape[0], shape[1], channels, period)
    image = tf.where(_chance(c[0], config.checkerboard_probability), image + amplitude * pattern, image)

    image = tf.clip_by_value(image, -1.0, 1.0)
    j = draws["jpeg"]
    quality = tf.random.stateless_uniform([], j[1], config.min_jpeg_quality, 101, dtype=tf.int32)
    image = tf.cond(_chance(j[0], config.jpeg_probability), lambda: jpeg(image, quality), lambda: image)
    return tf.ensure_shape(tf.clip_by_value(image, -1.0, 1.0), [None, None, channels])


def example_seed(seed: int, index) -> tf.Tensor:
    """The seed of example `index` in a run seeded `seed`: one independent stream per example."""
    return tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)])
