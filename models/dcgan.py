"""The classic DCGAN (Radford et al. 2015) at 64 and 128 px, as used for the African-mask work.

Generator: latent -> dense 4x4xC -> 5x5 stride-2 transposed convolutions halving the filters -> tanh RGB.
Discriminator: 5x5 stride-2 convolutions doubling the filters from 64 -> one logit.
Everything is NHWC. `width_multiplier` scales every filter count, giving CPU-sized variants.
"""

from __future__ import annotations

import keras
from keras import layers

SUPPORTED_RESOLUTIONS = (64, 128)
LATENT_DIM = 100
BATCH_NORM = {"momentum": 0.9, "epsilon": 1e-5}


def weight_init() -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(mean=0.0, stddev=0.02)


def check_resolution(resolution: int) -> int:
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(f"resolution {resolution} is not supported; choose one of {SUPPORTED_RESOLUTIONS}")
    return resolution


def check_width(width_multiplier: float) -> float:
    if not 0.01 <= width_multiplier <= 4.0:
        raise ValueError(f"width_multiplier {width_multiplier} is outside the allowed range 0.01..4")
    return width_multiplier


def scaled(filters: int, width_multiplier: float) -> int:
    return max(4, int(round(filters * width_multiplier)))


def generator_filters(resolution: int, width_multiplier: float = 1.0) -> list[int]:
    """Filters at 4x4 and after each up-sampling stage, the last being RGB."""
    check_resolution(resolution)
    top = 512 if resolution == 64 else 1024
    stages = 4 if resolution == 64 else 5
    filters = [scaled(top // 2**i, width_multiplier) for i in range(stages)]
    return filters + [3]


def discriminator_filters(resolution: int, width_multiplier: float = 1.0) -> list[int]:
    check_resolution(resolution)
    stages = 4 if resolution == 64 else 5
    return [scaled(64 * 2**i, width_multiplier) for i in range(stages)]


def upsample_block(x, filters: int, name: str):
    x = layers.Conv2DTranspose(
        filters, 5, strides=2, padding="same", use_bias=False, kernel_initializer=weight_init(), name=f"{name}_deconv"
    )(x)
    x = layers.BatchNormalization(**BATCH_NORM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def downsample_block(x, filters: int, name: str, batch_norm: bool = True):
    x = layers.Conv2D(
        filters, 5, strides=2, padding="same", use_bias=not batch_norm, kernel_initializer=weight_init(),
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(**BATCH_NORM, name=f"{name}_bn")(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(x)


def generator(resolution: int = 64, latent_dim: int = LATENT_DIM, width_multiplier: float = 1.0) -> keras.Model:
    """(batch, latent_dim) float32 -> (batch, resolution, resolution, 3) in [-1, 1]."""
    check_width(width_multiplier)
    if not 1 <= latent_dim <= 4096:
        raise ValueError(f"latent_dim {latent_dim} is outside the allowed range 1..4096")
    filters = generator_filters(resolution, width_multiplier)
    latent = keras.Input(shape=(latent_dim,), name="latent")
    x = layers.Dense(4 * 4 * filters[0], use_bias=False, kernel_initializer=weight_init(), name="project")(latent)
    x = layers.Reshape((4, 4, filters[0]), name="to_4x4")(x)
    x = layers.BatchNormalization(**BATCH_NORM, name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    for index, count in enumerate(filters[1:-1], start=1):
        x = upsample_block(x, count, name=f"up{index}")
    x = layers.Conv2DTranspose(
        3, 5, strides=2, padding="same", kernel_initializer=weight_init(), name="to_rgb"
    )(x)
    image = layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.Model(latent, image, name=f"dcgan_generator_{resolution}")


def discriminator(resolution: int = 64, width_multiplier: float = 1.0) -> keras.Model:
    """(batch, resolution, resolution, 3) in [-1, 1] -> (batch, 1) logit."""
    check_width(width_multiplier)
    filters = discriminator_filters(resolution, width_multiplier)
    image = keras.Input(shape=(resolution, resolution, 3), name="image")
    x = image
    for index, count in enumerate(filters):
        x = downsample_block(x, count, name=f"down{index}", batch_norm=index > 0)
    x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, kernel_initializer=weight_init(), name="logit", dtype="float32")(x)
    return keras.Model(image, logit, name=f"dcgan_discriminator_{resolution}")
