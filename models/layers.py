"""Serializable layers and initialisers shared by the generator and the upscalers (no Lambda layers, so saved
`.keras` files load with `safe_mode=True` once this module is imported)."""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="masquerade")
class DepthToSpace(layers.Layer):
    """Pixel shuffle: (N, H, W, C * r * r) -> (N, H * r, W * r, C), channel order as tf.nn.depth_to_space."""

    def __init__(self, block_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        if int(block_size) < 2:
            raise ValueError(f"block_size must be an integer >= 2, got {block_size!r}")
        self.block_size = int(block_size)

    def call(self, inputs):
        return ops.depth_to_space(inputs, self.block_size, data_format="channels_last")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        r = self.block_size
        return (
            n,
            None if h is None else h * r,
            None if w is None else w * r,
            None if c is None else c // (r * r),
        )

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="masquerade")
class ChannelBias(layers.Layer):
    """A learned bias per channel, shared by every pixel: after a pixel shuffle, a bias inside the convolution would
    be one per sub-pixel position, a constant period-2 pattern; this one cannot be."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, inputs):
        return inputs + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="masquerade")
class ICNR(keras.initializers.Initializer):
    """Sub-pixel convolution initialiser without checkerboard (Aitken et al. 2017, "Checkerboard artifact free
    sub-pixel convolution"): one kernel per output channel, repeated for every one of the scale^2 sub-pixel
    positions, so before training the pixel shuffle equals a nearest-neighbour upsampling.

    The base kernel is He-normal, or truncated normal with `stddev` when given (DCGAN's 0.02).
    Channel order follows depth_to_space: channel (i * scale + j) * C + c lands at sub-pixel (i, j), colour c.
    """

    def __init__(self, scale: int = 2, seed: int | None = None, stddev: float | None = None):
        self.scale = int(scale)
        self.seed = seed
        self.stddev = stddev

    def __call__(self, shape, dtype=None):
        kh, kw, c_in, c_out = shape
        positions = self.scale * self.scale
        if c_out % positions:
            raise ValueError(f"ICNR needs output channels divisible by scale^2 = {positions}, got {c_out}")
        base = (keras.initializers.HeNormal(seed=self.seed) if self.stddev is None
                else keras.initializers.TruncatedNormal(stddev=self.stddev, seed=self.seed))
        return ops.tile(base((kh, kw, c_in, c_out // positions), dtype=dtype), (1, 1, 1, positions))

    def get_config(self):
        config = {"scale": self.scale, "seed": self.seed}
        return config if self.stddev is None else {**config, "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="masquerade")
class BalancedSubpixelConvolution(layers.Layer):
    """A 'same' convolution to scale^2 sub-pixel positions whose positions answer a flat input alike.

    A pixel shuffle after a free convolution can paint a period-`scale` pattern on flat regions as soon as the
    positions' kernels sum to different gains. Sugawara et al. (2018, "Super-resolution using convolutional
    neural networks without any checkerboard artifacts") show that equal gains (the steady-state response of
    every polyphase component) is the condition for none. The kernel here is projected onto that condition at
    every call: each position's kernel loses the difference between its gain and the positions' mean gain,
    spread evenly over its taps. Edges may still differ between positions, which is the finest octave a nearest
    enlargement cannot draw. Channel order follows depth_to_space, as ICNR's.
    """

    def __init__(self, filters: int, kernel_size: int = 3, scale: int = 2, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.scale = int(filters), int(kernel_size), int(scale)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or ICNR(self.scale))

    def build(self, input_shape):
        shape = (self.kernel_size, self.kernel_size, input_shape[-1], self.filters * self.scale**2)
        self.kernel = self.add_weight(shape=shape, initializer=self.kernel_initializer, name="kernel")

    def balanced_kernel(self):
        size, channels = self.kernel_size, self.kernel.shape[2]
        positions = ops.reshape(self.kernel, (size, size, channels, self.scale**2, self.filters))
        gains = ops.sum(positions, axis=(0, 1), keepdims=True)
        excess = gains - ops.mean(gains, axis=3, keepdims=True)
        return ops.reshape(positions - excess / (size * size), self.kernel.shape)

    def call(self, inputs):
        return ops.conv(inputs, ops.cast(self.balanced_kernel(), inputs.dtype), padding="same")

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters * self.scale**2)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "scale": self.scale, "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
