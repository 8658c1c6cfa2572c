"""What turns latents into uint8 frames for the one render path: LiteRT (the kiosk) or TensorFlow (by option).

Both backends do the same arithmetic (generator, upscaler, round to 0..255) and take one chunk of latents
whose size is one of `batch_sizes` (None: any). `models.render.Renderer` chunks, checks and warms them up.
TensorFlow is imported only when its backend is built, so a kiosk on LiteRT never loads it.
"""

from __future__ import annotations

import numpy as np

from models import litert as litert_models
from models.bundle import Bundle


class LiteRTBackend:
    """The bundle's .tflite generator (and upscaler) through LiteRT's XNNPACK delegate."""

    name = "litert"

    def __init__(self, bundle: Bundle):
        self.models = bundle.litert
        self.batch_sizes = self.models.batch_sizes
        self.has_upscaler = self.models.upscaler is not None

    def run(self, latents: np.ndarray, upscale: bool) -> np.ndarray:
        images = self.models.generator.run(latents=latents)["images"]
        if upscale and self.has_upscaler:
            return self.models.upscaler.run(images=images)["frames"]
        return litert_models.to_uint8(images)


class TensorFlowBackend:
    """The bundle's Keras models in compiled graphs, one per pipeline (with and without the upscaler)."""

    name = "tf"
    batch_sizes = None

    def __init__(self, bundle: Bundle):
        import tensorflow as tf

        signature = [tf.TensorSpec([None, bundle.latent_dim], tf.float32)]
        generator, upscaler = bundle.generator, bundle.upscaler

        def to_uint8(images):
            return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)

        @tf.function(input_signature=signature, reduce_retracing=True)
        def generate(latents):
            return to_uint8(generator(latents, training=False))

        self.graphs = {False: generate}
        if upscaler is not None:

            @tf.function(input_signature=signature, reduce_retracing=True)
            def generate_and_upscale(latents):
                return to_uint8(upscaler(generator(latents, training=False), training=False))

            self.graphs[True] = generate_and_upscale
        self.has_upscaler = upscaler is not None

    def run(self, latents: np.ndarray, upscale: bool) -> np.ndarray:
        return self.graphs[bool(upscale) and self.has_upscaler](latents).numpy()


def for_bundle(bundle: Bundle) -> LiteRTBackend | TensorFlowBackend:
    """The backend the bundle was loaded for (models.bundle.load_bundle's `backend`)."""
    return LiteRTBackend(bundle) if bundle.backend == "litert" else TensorFlowBackend(bundle)
