"""The provenance index's format on disk and its numpy helpers: what the runtime reads without TensorFlow.

The extractors that write these features live in models.features (TensorFlow, studio side); models.litert runs
the same features from a bundle's LiteRT file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

LAYERS = ("early", "late")
EXTRACTORS = ("discriminator", "vgg16")

# ----------------------------------------------------------------------------------------------------
# The provenance index on disk (written by training.index, read by installation.provenance).
#
# BUNDLE/index/
#   index.json        what the manifest's "index" section records, plus the discriminator's sha256
#   early.npy         float16 (N, d_early) unit rows, memory-mappable
#   late.npy          float16 (N, d_late)
#   ids.npy           int64 (N,) dataset ids, row order
#   records.json      per row: id, sha256, file, title, culture, material, source, license
#   thumbs_jpeg.npy   uint8 (bytes,): each row's t x t thumbnail as a JPEG, back to back (format version 2;
#   thumbs_offsets.npy  int64 (N + 1,): row i's JPEG is bytes offsets[i]:offsets[i + 1]; version 1 stored raw
#                     uint8 (N, t, t, 3) in thumbs.npy, 49 KB a row at 128 px against about 4 KB as JPEG)
#   calibration.json  per layer: each image's best cosine similarity to any OTHER image, as percentiles 0..100

INDEX_DIR = "index"
INDEX_INFO = "index.json"
INDEX_FORMAT = "masquerade-index"
INDEX_FORMAT_VERSION = 2
INDEX_FILES = {"early": "early.npy", "late": "late.npy", "ids": "ids.npy", "records": "records.json",
               "thumbs": "thumbs_jpeg.npy", "thumb_offsets": "thumbs_offsets.npy", "calibration": "calibration.json"}
THUMBNAIL_QUALITY = 90


class Thumbnails:
    """An index's thumbnails by row, as uint8 (t, t, 3) images, decoded from their JPEGs when asked for: a
    caption needs a handful at a time, never all of them."""

    def __init__(self, encoded: np.ndarray, offsets: np.ndarray):
        self.encoded, self.offsets = encoded, np.asarray(offsets, np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def image(self, row: int) -> np.ndarray:
        import io

        from PIL import Image

        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        with Image.open(io.BytesIO(self.encoded[start:end].tobytes())) as image:
            return np.asarray(image.convert("RGB"))

    def __getitem__(self, rows) -> np.ndarray:
        """One row -> (t, t, 3); a sequence or array of rows -> (k, t, t, 3)."""
        if np.ndim(rows) == 0:
            return self.image(int(rows))
        return np.stack([self.image(int(row)) for row in np.asarray(rows, np.int64).reshape(-1)])


def load_thumbnails(index_dir: Path, files: dict):
    """An index's thumbnails: Thumbnails (JPEG, format 2) or a memory-mapped uint8 (N, t, t, 3) array (format 1);
    both index by row or by an array of rows."""
    if "thumb_offsets" in files:
        encoded = np.load(index_dir / files["thumbs"], mmap_mode="r")
        return Thumbnails(encoded, np.load(index_dir / files["thumb_offsets"]))
    return np.load(index_dir / files["thumbs"], mmap_mode="r")


def write_thumbnails(index_dir: Path, files: dict, images) -> None:
    """Encode uint8 (N, t, t, 3) thumbnails (an array or a memory map) as the JPEG pair that Thumbnails reads."""
    import io

    from PIL import Image

    offsets, chunks = [0], []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
        chunks.append(buffer.getvalue())
        offsets.append(offsets[-1] + len(chunks[-1]))
    np.save(index_dir / files["thumbs"], np.frombuffer(b"".join(chunks), np.uint8))
    np.save(index_dir / files["thumb_offsets"], np.asarray(offsets, np.int64))


DISCRIMINATOR_FILE = "discriminator.keras"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def nearest_other_similarity(features: np.ndarray, block_rows: int = 2048, block_columns: int = 8192) -> np.ndarray:
    """For each unit row, the best cosine similarity to any other row: float32 (N,), -1 where N == 1.

    Works block by block in float32, so a float16 memory map of 100k rows never becomes one float32 matrix.
    """
    count = len(features)
    best = np.full(count, -1.0, np.float32)
    for row_start in range(0, count, block_rows):
        rows = np.asarray(features[row_start : row_start + block_rows], np.float32)
        for column_start in range(0, count, block_columns):
            columns = np.asarray(features[column_start : column_start + block_columns], np.float32)
            scores = rows @ columns.T
            # A row's similarity to itself is not a neighbour: mask the diagonal where the blocks overlap.
            overlap = np.arange(max(row_start, column_start), min(row_start + len(rows), column_start + len(columns)))
            scores[overlap - row_start, overlap - column_start] = -np.inf
            rows_best = best[row_start : row_start + len(rows)]
            np.maximum(rows_best, scores.max(axis=1), out=rows_best)
    return best


def similarity_percentiles(values: np.ndarray) -> list[float]:
    """Percentiles 0, 1, ..., 100 of a set of similarities (the calibration curve)."""
    return [round(float(value), 6) for value in np.percentile(np.asarray(values, np.float64), np.arange(101))]


def frame_batch(images) -> np.ndarray:
    """uint8 NHWC RGB frames (one HWC frame becomes a batch of one), or ValueError naming what was given."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images of shape {images.shape} are not NHWC RGB frames")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 in 0..255, got {images.dtype}")
    return images
