"""The one render path: latents -> generator -> upscaler -> uint8 RGB frames.

The live loop, the video export, the inspection tool and the tests all call `Renderer.render`, so what
a curator exports is exactly what the gallery shows. The backend (LiteRT or TensorFlow, models.backends)
is the one the bundle was loaded with.
"""

from __future__ import annotations

import numpy as np

from models import backends
from models.bundle import Bundle
from models.litert import plan_batches


class Renderer:
    """The bundle's generator (+ upscaler) on its backend; thread-safe to call from one worker at a time."""

    def __init__(self, bundle: Bundle, max_batch: int = 8):
        if max_batch < 1:
            raise ValueError(f"max_batch {max_batch} must be at least 1")
        self.bundle = bundle
        self.max_batch = max_batch
        self.latent_dim = bundle.latent_dim
        self.backend = backends.for_bundle(bundle)

    @property
    def has_upscaler(self) -> bool:
        return self.backend.has_upscaler

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
        upscale = bool(upscale) and self.has_upscaler
        chunks, start = [], 0
        for batch in plan_batches(len(latents), self.backend.batch_sizes, self.max_batch):
            chunks.append(self.backend.run(np.ascontiguousarray(latents[start:start + batch]), upscale))
            start += batch
        if not chunks:
            size = self.output_size(upscale)
            return np.zeros((0, size, size, 3), np.uint8)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def warm_up(self) -> None:
        """Run every pipeline once at the batch sizes the live loop uses, so the first visible frame does not stall."""
        pipelines = (False, True) if self.has_upscaler else (False,)
        for upscale in pipelines:
            self.render(np.zeros((1, self.latent_dim), np.float32), upscale=upscale)
