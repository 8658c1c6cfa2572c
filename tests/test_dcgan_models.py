"""The classic DCGAN networks: sizes, NHWC channel order, ranges, initialisation."""

import numpy as np
import pytest

from models import dcgan


@pytest.mark.parametrize("resolution, top", [(64, 512), (128, 1024)])
def test_generator_follows_the_classic_architecture(resolution, top):
    generator = dcgan.generator(resolution)
    assert generator.input_shape == (None, 100)
    assert generator.output_shape == (None, resolution, resolution, 3)
    assert generator.get_layer("to_4x4").output.shape[1:] == (4, 4, top)
    deconvs = [layer for layer in generator.layers if "Conv2DTranspose" in type(layer).__name__]
    assert [layer.kernel_size for layer in deconvs] == [(5, 5)] * len(deconvs)
    assert [layer.strides for layer in deconvs] == [(2, 2)] * len(deconvs)
    assert [layer.filters for layer in deconvs] == [top // 2**i for i in range(1, len(deconvs))] + [3]
    norms = [layer for layer in generator.layers if "BatchNormalization" in type(layer).__name__]
    assert all(layer.momentum == 0.9 and layer.epsilon == 1e-5 for layer in norms)


@pytest.mark.parametrize("resolution", [64, 128])
def test_discriminator_doubles_filters_and_skips_first_batch_norm(resolution):
    discriminator = dcgan.discriminator(resolution)
    convs = [layer for layer in discriminator.layers if type(layer).__name__ == "Conv2D"]
    assert [layer.filters for layer in convs] == [64 * 2**i for i in range(len(convs))]
    assert all(layer.strides == (2, 2) and layer.kernel_size == (5, 5) for layer in convs)
    assert discriminator.get_layer("down0_conv").use_bias
    with pytest.raises(ValueError):
        discriminator.get_layer("down0_bn")
    assert discriminator.get_layer("down1_bn") is not None
    assert discriminator.output_shape == (None, 1)
    assert discriminator.get_layer("down0_lrelu").negative_slope == pytest.approx(0.2)


def test_weights_are_truncated_normal_with_std_002():
    kernel = dcgan.generator(64, width_multiplier=0.25).get_layer("up1_deconv").kernel.numpy()
    assert abs(kernel.std() - 0.02 * 0.88) < 0.004  # a normal truncated at 2 sigma has std 0.88 sigma
    assert np.abs(kernel).max() <= 0.04 + 1e-6


def test_output_is_nhwc_in_range_and_channels_are_distinct():
    generator = dcgan.generator(64, width_multiplier=0.125)
    images = generator(np.random.default_rng(0).standard_normal((2, 100)).astype("float32"), training=False)
    images = np.asarray(images)
    assert images.shape == (2, 64, 64, 3)
    assert images.min() >= -1 and images.max() <= 1
    # NHWC: the last axis is colour. An NCHW mix-up would make a 64-long channel axis or 3-pixel images.
    discriminator = dcgan.discriminator(64, width_multiplier=0.125)
    assert discriminator.input_shape == (None, 64, 64, 3)
    with pytest.raises(ValueError):
        discriminator(np.zeros((1, 3, 64, 64), "float32"))


def test_width_multiplier_shrinks_every_layer():
    small = dcgan.generator(64, width_multiplier=0.25)
    full = dcgan.generator(64)
    assert small.count_params() < full.count_params() / 10
    assert dcgan.generator_filters(64, 0.25) == [128, 64, 32, 16, 3]


@pytest.mark.parametrize("resolution", [32, 96, 256])
def test_unsupported_resolution_is_a_clear_error(resolution):
    with pytest.raises(ValueError, match=f"resolution {resolution} is not supported"):
        dcgan.generator(resolution)
