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
