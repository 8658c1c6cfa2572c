"""Seeded latents: the keyframes of a walk, drift-noise knots and offset directions, each a pure function of its seed.

Every latent is drawn from ``SeedSequence`` entropy built from the seed, an index and a stream tag, so the same
seed gives the same picture on every machine and at any frame rate. Draws are cached; callers get copies.
"""

from __future__ import annotations

import functools
from numbers import Integral

import numpy as np

from installation.latent.settings import check_latent_dim, check_seed

KEYFRAME_STREAM = 0  # the public keyframe sequence; drift octave k uses stream DRIFT_STREAM + k
DRIFT_STREAM = 2
DIRECTION_STREAM = 0x64697200  # "dir"; offset directions, apart from keyframes and drift octaves.


@functools.lru_cache(maxsize=1024)
def _cached_stream(seed: int, index: int, latent_dim: int, stream: int) -> np.ndarray:
    # Stream 0 is the public keyframe sequence; others are tagged with a trailing non-zero word because
    # SeedSequence treats trailing zero words as absent.
    if stream == KEYFRAME_STREAM:
        entropy = [seed, index] if index >= 0 else [seed, -index, 1]
    else:
        entropy = [seed, index, stream]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    z = rng.standard_normal(latent_dim).astype(np.float32)
    z.flags.writeable = False
    return z


def keyframe(seed: int, index: int, latent_dim: int) -> np.ndarray:
    """The seeded keyframe latent: ``default_rng(SeedSequence([seed, index])).standard_normal(latent_dim)``.

    Returned as float32 (drawn in float64, then cast). Negative indices (walking an endless path backwards)
    use ``SeedSequence([seed, -index, 1])``, a separate stream.
    """
    seed = check_seed(seed)
    latent_dim = check_latent_dim(latent_dim)
    if isinstance(index, bool) or not isinstance(index, Integral):
        raise ValueError(f"keyframe index must be an integer, got {index!r}")
    return _cached_stream(seed, int(index), latent_dim, KEYFRAME_STREAM).copy()


def offset_direction(seed: int, latent_dim: int) -> np.ndarray:
    """A seeded unit vector (float32) for `Walker.set_offset`: controllers name a direction by a number."""
    seed = check_seed(seed)
    latent_dim = check_latent_dim(latent_dim)
    z = _cached_stream(seed, 0, latent_dim, DIRECTION_STREAM).astype(np.float64)
    return (z / np.linalg.norm(z)).astype(np.float32)


def gather(seed: int, latent_dim: int, indices: np.ndarray, stream: int) -> np.ndarray:
    """Float64 latents of ``stream`` for integer lattice ``indices`` (any shape) -> ``indices.shape + (D,)``."""
    unique, inverse = np.unique(indices, return_inverse=True)
    table = np.stack([_cached_stream(seed, int(i), latent_dim, stream) for i in unique]).astype(np.float64)
    return table[inverse.reshape(indices.shape)]
