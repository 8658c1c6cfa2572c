"""A bundle's LiteRT models: the runtime's inference without TensorFlow (XNNPACK on the CPU).

Export converts each Keras model the runtime uses into a .tflite file beside it (training.litert), with one
fixed-shape signature per batch size ("batch_1", "batch_3", ...): fixed shapes let XNNPACK plan every buffer
once. The files hold data only (flatbuffers, no code), and this module imports neither TensorFlow nor Keras, so
the kiosk that runs them never loads TensorFlow's LLVM next to the display's Mesa.

Signatures, by role:
  generator  latents float32 (B, latent_dim)        -> images float32 (B, R, R, 3) in [-1, 1]
  upscaler   images  float32 (B, R, R, 3) in [-1, 1] -> frames uint8   (B, sR, sR, 3)
  features   pixels  float32 (B, S, S, 3) in 0..255  -> early, late float32 (B, d) unit rows
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.index_format import frame_batch
from models.manifest import BundleError

SIGNATURE_PREFIX = "batch_"
RENDER_BATCH_SIZES = (1, 2, 3, 4, 8)  # the live worker asks for render_ahead + 1 (3 by default); export for 8
FEATURE_BATCH_SIZES = (1,)  # captions look up one frame at a time
CONVERT_HINT = "convert it again with `python -m training convert-litert --model BUNDLE`"


class NoLiteRTModels(FileNotFoundError):
    """The bundle holds no LiteRT conversion (made before there was one): the TensorFlow backend is expected."""


def extractor_fingerprint(described) -> str:
    """What a feature extractor's conversion is checked against: the index's description of its extractor (name,
    layers, invariance, input size and the sha256 of its weights), hashed."""
    return hashlib.sha256(json.dumps(described, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def convert_hint(bundle_dir) -> str:
    return CONVERT_HINT.replace("BUNDLE", str(bundle_dir))


def signature_key(batch: int) -> str:
    return f"{SIGNATURE_PREFIX}{batch}"


def available() -> bool:
    """Whether the LiteRT runtime is installed (looked up without importing it)."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def thread_count(threads: int) -> int:
    """Threads for LiteRT's CPU kernels: 0 means one per core."""
    return threads if threads > 0 else max(1, os.cpu_count() or 1)


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(error).__name__


class LiteRTModel:
    """One .tflite file opened by the LiteRT interpreter (XNNPACK delegate), one runner per batch size.

    An interpreter is not re-entrant: calls are serialised by a lock (the render worker and the caption worker
    each own a different model, so the lock is never contended in the piece).
    """

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        self.path = Path(path)
        if not available():
            raise BundleError("LiteRT is not installed (pip install ai-edge-litert), so "
                              f"{self.path.name} cannot run; use --backend tf")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} is missing; {CONVERT_HINT}")
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=thread_count(threads))
            signatures = self.interpreter.get_signature_list()
            self.runners = {}
            for key in signatures:
                if key.startswith(SIGNATURE_PREFIX) and key[len(SIGNATURE_PREFIX):].isdigit():
                    self.runners[int(key[len(SIGNATURE_PREFIX):])] = self.interpreter.get_signature_runner(key)
        except (ValueError, RuntimeError) as error:
            raise BundleError(f"{self.path} is corrupt or not a LiteRT model ({first_line(error)}); "
                              f"{CONVERT_HINT}") from None
        if not self.runners:
            raise BundleError(f"{self.path} has no batch_N signatures ({sorted(signatures)}); {CONVERT_HINT}")
        self.lock = threading.Lock()

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        return tuple(sorted(self.runners))

    def inputs(self, batch: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        return {name: (tuple(int(n) for n in detail["shape"]), np.dtype(detail["dtype"]))
                for name, detail in self.runners[batch].get_input_details().items()}

    def outputs(self, batch: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        return {name: (tuple(int(n) for n in detail["shape"]), np.dtype(detail["dtype"]))
                for name, detail in self.runners[batch].get_output_details().items()}

    def run(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run the signature whose batch size is the inputs' first dimension (one of `batch_sizes`)."""
        batch = len(next(iter(inputs.values())))
        runner = self.runners.get(batch)
        if runner is None:
            raise ValueError(f"{self.path.name} has no signature for batch {batch}; it has {self.batch_sizes}")
        with self.lock:
            return runner(**inputs)


def describe_tensors(tensors: dict) -> str:
    return ", ".join(f"{name} {dtype} {shape}" for name, (shape, dtype) in sorted(tensors.items())) or "none"


def check_signatures(model: LiteRTModel, role: str, inputs: dict, outputs: dict) -> list[str]:
    """Every signature's input and output shapes and dtypes against what the manifest says the model does.

    `inputs`/`outputs` map a tensor name to (shape without the batch dimension, dtype); the first mismatch is
    reported.
    """
    for batch in model.batch_sizes:
        for kind, expected, actual in (("input", inputs, model.inputs(batch)),
                                       ("output", outputs, model.outputs(batch))):
            wanted = {name: ((batch, *shape), np.dtype(dtype)) for name, (shape, dtype) in expected.items()}
            if actual != wanted:
                return [f"{model.path}: the {role}'s batch_{batch} {kind}s are {describe_tensors(actual)}, but the "
                        f"manifest describes {describe_tensors(wanted)}"]
    return []


@dataclass(frozen=True)
class LiteRTModels:
    """The render models of a bundle opened for LiteRT (the feature extractor is opened with the index)."""

    generator: LiteRTModel
    upscaler: LiteRTModel | None

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """Batch sizes every model on the render path takes."""
        sizes = set(self.generator.batch_sizes)
        if self.upscaler is not None:
            sizes &= set(self.upscaler.batch_sizes)
        return tuple(sorted(sizes))


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float -> [0, 255] uint8, rounded half to even like the TensorFlow path."""
    return np.clip(np.round((images + 1.0) * 127.5), 0.0, 255.0).astype(np.uint8)


def plan_batches(count: int, sizes: Sequence[int] | None, max_batch: int) -> list[int]:
    """Chunk `count` frames into batches the models take: the largest allowed size each time.

    sizes None means any size (TensorFlow); otherwise a chunk is one of `sizes`, which must hold 1.
    """
    if sizes is None:
        return [min(max_batch, count - start) for start in range(0, count, max_batch)]
    allowed = [size for size in sorted(sizes, reverse=True) if size <= max_batch] or [min(sizes)]
    plan, left = [], count
    while left > 0:
        size = next((size for size in allowed if size <= left), allowed[-1])
        if size > left:
            raise ValueError(f"cannot split {count} frames into batches of {sorted(sizes)}")
        plan.append(size)
        left -= size
    return plan


# --------------------------------------------------------------------------------------------------
# Provenance features from a LiteRT file


def area_resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """float32 (N, H, W, 3) in 0..255 -> (N, size, size, 3), as models.features.resize_frames does in TensorFlow:
    an exact box mean when shrinking by a whole factor, OpenCV area (shrinking) or bilinear (enlarging) otherwise."""
    height, width = pixels.shape[1:3]
    if height == size and width == size:
        return pixels
    if height % size == 0 and width % size == 0:
        fy, fx = height // size, width // size
        return pixels.reshape(len(pixels), size, fy, size, fx, 3).mean(axis=(2, 4), dtype=np.float32)
    import cv2

    interpolation = cv2.INTER_AREA if min(height, width) > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(frame, (size, size), interpolation=interpolation) for frame in pixels])


class LiteRTFeatures:
    """The index's extractor from its LiteRT file: same `extract` and `dims` as models.features.FeatureExtractor."""

    layers = ("early", "late")

    def __init__(self, model: LiteRTModel, name: str, dims: dict[str, int]):
        shape = model.inputs(model.batch_sizes[0]).get("pixels", ((),))[0]
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
            raise BundleError(f"{model.path}: the feature extractor takes {shape}, not square RGB pixels")
        problems = check_signatures(model, "feature extractor", {"pixels": (shape[1:], np.float32)},
                                    {layer: ((dims[layer],), np.float32) for layer in self.layers})
        if problems:
            raise BundleError(problems)
        self.model, self.name, self.dims = model, name, dict(dims)
        self.input_size = int(shape[1])

    def extract(self, images) -> dict[str, np.ndarray]:
        """uint8 (N, H, W, 3) frames (or one (H, W, 3)) -> {"early": (N, d1), "late": (N, d2)}, float32 unit rows."""
        images = frame_batch(images)
        chunks = {layer: [] for layer in self.layers}
        start = 0
        for batch in plan_batches(len(images), self.model.batch_sizes, max(self.model.batch_sizes)):
            pixels = area_resize(images[start:start + batch].astype(np.float32), self.input_size)
            outputs = self.model.run(pixels=np.ascontiguousarray(pixels, np.float32))
            for layer in self.layers:
                chunks[layer].append(outputs[layer])
            start += batch
        if not len(images):
            return {layer: np.zeros((0, self.dims[layer]), np.float32) for layer in self.layers}
        return {layer: np.concatenate(parts) for layer, parts in chunks.items()}
