"""The one render path: latents -> generator -> upscaler -> uint8 RGB frames.

The live loop, the video export, the inspection tool and the tests all call `Renderer.render`, so what
a curator exports is exactly what the gallery shows.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from models.bundle import Bundle


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """[-1, 1] float -> [0, 255] uint8, rounded, inside the graph (cheaper than in numpy)."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


class Renderer:
    """Compiled generator (+ upscaler) graphs for one bundle; thread-safe to call from one worker at a time."""

    def __init__(self, bundle: Bundle, max_batch: int = 8):
        if max_batch < 1:
            raise ValueError(f"max_batch {max_batch} must be at least 1")
        self.bundle = bundle
        self.max_batch = max_batch
        self.latent_dim = bundle.latent_dim
        signature = [tf.TensorSpec([None, self.latent_dim], tf.float32)]
        generator, upscaler = bundle.generator, bundle.upscaler

        @tf.function(input_signature=signature, reduce_retracing=True)
        def generate(latents):
            return to_uint8(generator(latents, training=False))

        self.graphs = {False: generate}
        if upscaler is not None:

            @tf.function(input_signature=signature, reduce_retracing=True)
            def generate_and_upscale(latents):
                return to_uint8(upscaler(generator(latents, training=False), training=False))

            self.graphs[True] = generate_and_upscale

    @property
    def has_upscaler(self) -> bool:
        return True in self.graphs

    def output_size(self, upscale: bool = True) -> int:
        scale = self.bundle.upscale_factor if upscale and self.has_upscaler else 1
        return self.bundle.resolution * scale

    def render(self, latents, upscale: bool = True) -> np.ndarray:
        """(N, latent_dim) latents -> (N, size, size, 3) uint8 frames; `upscale` is ignored without an upscaler."""
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim == 1:
            latents = latents[None]
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(f"latents of shape {latents.shape} do not match latent_dim {self.latent_dim}")
        graph = self.graphs[bool(upscale) and self.has_upscaler]
        chunks = [graph(latents[start : start + self.max_batch]).numpy()
                  for start in range(0, len(latents), self.max_batch)]
        if not chunks:
            size = self.output_size(upscale)
            return np.zeros((0, size, size, 3), np.uint8)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def warm_up(self) -> None:
        """Trace both graphs now, so the first visible frame does not stall."""
        for upscale in self.graphs:
            self.render(np.zeros((1, self.latent_dim), np.float32), upscale=upscale)
