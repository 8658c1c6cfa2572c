"""The DCGAN (Radford et al. 2015) at 64 and 128 px, as used for the African-mask work, and its refinements.

Generator: latent -> dense 4x4xC -> stride-2 up-sampling stages halving the filters -> tanh RGB.
Discriminator: 5x5 stride-2 convolutions doubling the filters from 64 -> one logit.
Everything is NHWC. `width_multiplier` scales every filter count, giving CPU-sized variants.

Up-sampling is either the classic 5x5 transposed convolution or a nearest-neighbour resize followed by a 3x3
convolution (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"): a transposed convolution whose
kernel size is not a multiple of its stride overlaps unevenly, which paints a period-2 pattern into every frame;
resize-convolution treats every output pixel alike, so it cannot. A nearest-neighbour enlargement followed by
linear filters has no power at all at the new Nyquist frequency, though, and the collection has: the last stage
may instead be a sub-pixel convolution (Shi et al. 2016) initialised as a nearest enlargement (ICNR, Aitken et
al. 2017), which starts without a checkerboard and may learn the finest octave; the balanced kind keeps every
sub-pixel position's gain equal (Sugawara et al. 2018), so flat regions cannot take a checkerboard either.
The discriminator may add spectral normalisation (Miyato et al. 2018) and a minibatch standard-deviation feature
(Karras et al. 2018), which lets it see a batch's lack of variety and so pushes the generator away from
repeating one face.
"""

from __future__ import annotations

import keras
from keras import layers

from models.layers import ICNR, BalancedSubpixelConvolution, ChannelBias, DepthToSpace

SUPPORTED_RESOLUTIONS = (64, 128)
UPSAMPLING_KINDS = ("transposed", "resize", "subpixel", "balanced-subpixel")
LATENT_DIM = 100
BATCH_NORM = {"momentum": 0.9, "epsilon": 1e-5}


WEIGHT_STDDEV = 0.02


def weight_init() -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(mean=0.0, stddev=WEIGHT_STDDEV)


def check_resolution(resolution: int) -> int:
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(f"resolution {resolution} is not supported; choose one of {SUPPORTED_RESOLUTIONS}")
    return resolution


def check_width(width_multiplier: float) -> float:
    if not 0.01 <= width_multiplier <= 4.0:
        raise ValueError(f"width_multiplier {width_multiplier} is outside the allowed range 0.01..4")
    return width_multiplier


def rgb_stage_upsampling(upsampling: str, rgb_upsampling: str | None = None) -> str:
    """The last stage's up-sampling: its own when given, else the other stages'."""
    return check_upsampling(rgb_upsampling or upsampling)


def check_upsampling(upsampling: str) -> str:
    if upsampling not in UPSAMPLING_KINDS:
        raise ValueError(f"upsampling {upsampling!r} is not supported; choose one of {', '.join(UPSAMPLING_KINDS)}")
    return upsampling


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


def upsample(x, filters: int, upsampling: str, name: str, use_bias: bool = False):
    """Double the spatial size: a 5x5 transposed convolution, a nearest resize then a 3x3 convolution, or a 3x3
    convolution to four sub-pixel positions then a pixel shuffle (ICNR-initialised, bias shared by the positions;
    balanced-subpixel: the positions' kernels keep equal gains, so a flat input stays flat)."""
    if upsampling == "subpixel":
        x = layers.Conv2D(
            filters * 4, 3, padding="same", use_bias=False, kernel_initializer=ICNR(2, stddev=WEIGHT_STDDEV),
            name=f"{name}_subpixel_conv",
        )(x)
    elif upsampling == "balanced-subpixel":
        x = BalancedSubpixelConvolution(
            filters, 3, 2, kernel_initializer=ICNR(2, stddev=WEIGHT_STDDEV), name=f"{name}_subpixel_conv"
        )(x)
    if upsampling in ("subpixel", "balanced-subpixel"):
        x = DepthToSpace(2, name=f"{name}_shuffle")(x)
        return ChannelBias(name=f"{name}_bias")(x) if use_bias else x
    if upsampling == "transposed":
        return layers.Conv2DTranspose(
            filters, 5, strides=2, padding="same", use_bias=use_bias, kernel_initializer=weight_init(),
            name=f"{name}_deconv",
        )(x)
    x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
    return layers.Conv2D(
        filters, 3, padding="same", use_bias=use_bias, kernel_initializer=weight_init(), name=f"{name}_conv"
    )(x)


def upsample_block(x, filters: int, name: str, upsampling: str = "transposed"):
    x = upsample(x, filters, upsampling, name)
    x = layers.BatchNormalization(**BATCH_NORM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


@keras.saving.register_keras_serializable(package="masquerade")
class MinibatchStddev(layers.Layer):
    """Append the batch's mean standard deviation as one more feature map (Karras et al. 2018).

    A generator that repeats one face produces batches with little spread; this feature lets the
    discriminator tell, so repetition stops paying. Groups of `group_size` images are compared.
    """

    def __init__(self, group_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def call(self, inputs):
        from keras import ops

        shape = ops.shape(inputs)
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
        # Groups need an equal share of the batch; a batch the group size does not divide is one group each.
        group = ops.where(ops.equal(batch % self.group_size, 0), self.group_size, 1)
        grouped = ops.reshape(inputs, (group, -1, height, width, channels))
        deviation = ops.sqrt(ops.var(grouped, axis=0) + 1e-8)
        feature = ops.mean(deviation, axis=(1, 2, 3), keepdims=True)
        feature = ops.tile(feature, (group, height, width, 1))
        return ops.concatenate([inputs, ops.cast(feature, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


def normalised(layer, spectral_norm: bool):
    return layers.SpectralNormalization(layer, name=f"{layer.name}_sn") if spectral_norm else layer


def downsample_block(x, filters: int, name: str, batch_norm: bool = True, spectral_norm: bool = False):
    batch_norm = batch_norm and not spectral_norm
    convolution = layers.Conv2D(
        filters, 5, strides=2, padding="same", use_bias=not batch_norm, kernel_initializer=weight_init(),
        name=f"{name}_conv",
    )
    x = normalised(convolution, spectral_norm)(x)
    if batch_norm:
        x = layers.BatchNormalization(**BATCH_NORM, name=f"{name}_bn")(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(x)


def generator(
    resolution: int = 64, latent_dim: int = LATENT_DIM, width_multiplier: float = 1.0, upsampling: str = "transposed",
    top_block: bool = False, rgb_upsampling: str | None = None,
) -> keras.Model:
    """(batch, latent_dim) float32 -> (batch, resolution, resolution, 3) in [-1, 1].

    `top_block`: one more block (upsample, batch norm, ReLU) that reaches the full resolution with the previous
    stage's channels, then a 3x3 convolution to RGB there. Without it the last layer enlarges and paints RGB at
    once, so the finest octave has the least power (measured: bench/README.md, "Generator quality").
    `rgb_upsampling`: the last stage's own up-sampling (None: `upsampling`), e.g. "subpixel" after "resize" stages.
    """
    check_width(width_multiplier)
    check_upsampling(upsampling)
    rgb_upsampling = rgb_stage_upsampling(upsampling, rgb_upsampling)
    if not 1 <= latent_dim <= 4096:
        raise ValueError(f"latent_dim {latent_dim} is outside the allowed range 1..4096")
    filters = generator_filters(resolution, width_multiplier)
    latent = keras.Input(shape=(latent_dim,), name="latent")
    x = layers.Dense(4 * 4 * filters[0], use_bias=False, kernel_initializer=weight_init(), name="project")(latent)
    x = layers.Reshape((4, 4, filters[0]), name="to_4x4")(x)
    x = layers.BatchNormalization(**BATCH_NORM, name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    for index, count in enumerate(filters[1:-1], start=1):
        x = upsample_block(x, count, name=f"up{index}", upsampling=upsampling)
    if top_block:
        x = upsample_block(x, filters[-2], name="top", upsampling=rgb_upsampling)
        x = layers.Conv2D(3, 3, padding="same", kernel_initializer=weight_init(), name="to_rgb_conv")(x)
    else:
        x = upsample(x, 3, rgb_upsampling, name="to_rgb", use_bias=True)
    image = layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.Model(latent, image, name=f"dcgan_generator_{resolution}")


def generator_from_config(config: dict) -> keras.Model:
    """The generator a run's config.json (or a bundle manifest's training_config) describes; older runs lack the
    later options, which then take the values those runs were trained with."""
    return generator(
        config["resolution"], config["latent_dim"], config["width_multiplier"], config.get("upsampling", "transposed"),
        config.get("top_block", False), config.get("rgb_upsampling"),
    )


def discriminator(
    resolution: int = 64, width_multiplier: float = 1.0, spectral_norm: bool = False, minibatch_stddev: bool = False
) -> keras.Model:
    """(batch, resolution, resolution, 3) in [-1, 1] -> (batch, 1) logit."""
    check_width(width_multiplier)
    filters = discriminator_filters(resolution, width_multiplier)
    image = keras.Input(shape=(resolution, resolution, 3), name="image")
    x = image
    for index, count in enumerate(filters):
        x = downsample_block(x, count, name=f"down{index}", batch_norm=index > 0, spectral_norm=spectral_norm)
    if minibatch_stddev:
        x = MinibatchStddev(name="minibatch_stddev")(x)
    x = layers.Flatten(name="flatten")(x)
    dense = layers.Dense(1, kernel_initializer=weight_init(), name="logit", dtype="float32")
    logit = normalised(dense, spectral_norm)(x)
    return keras.Model(image, logit, name=f"dcgan_discriminator_{resolution}")
