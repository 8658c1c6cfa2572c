"""The provenance index's format on disk and its numpy helpers: what the runtime reads without TensorFlow.

The extractors that write these features live in models.features (TensorFlow, studio side); models.litert runs
the same features from a bundle's LiteRT file.
"""

from __future__ import annotations

import hashlib
import os

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
#   thumbs.npy        uint8 (N, t, t, 3)
#   calibration.json  per layer: each image's best cosine similarity to any OTHER image, as percentiles 0..100

INDEX_DIR = "index"
INDEX_INFO = "index.json"
INDEX_FORMAT = "masquerade-index"
INDEX_FORMAT_VERSION = 1
INDEX_FILES = {"early": "early.npy", "late": "late.npy", "ids": "ids.npy", "records": "records.json",
               "thumbs": "thumbs.npy", "calibration": "calibration.json"}
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
