"""Helpers shared by several test files and the benches (imported as `support` in tests, `tests.support` in bench/)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

import keras
import numpy as np


def he_initialise(model: keras.Model, seed: int = 0) -> None:
    """Give every kernel He-normal weights, in place.

    An untrained DCGAN (N(0, 0.02) kernels) renders an almost flat grey (127..128): too little signal to tell
    frames, seams and seeds apart through a lossy codec, and far cheaper to encode than a trained piece. He
    weights render textured, moving frames; the network's speed does not depend on the weight values.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights or weights[0].ndim < 2:
            continue
        kernel = weights[0]
        if isinstance(layer, keras.layers.Conv2DTranspose):  # (kh, kw, out, in), stride 2
            fan_in = kernel.shape[0] * kernel.shape[1] * kernel.shape[3] / 4
        else:
            fan_in = kernel.size / kernel.shape[-1]
        weights[0] = rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32)
        layer.set_weights(weights)


@contextlib.contextmanager
def killed_on_exit(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """The child process, killed and reaped when the block leaves while it still runs (a failed assertion
    must not leave a long export or a piece running behind the test)."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
