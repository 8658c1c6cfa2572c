"""Calibrate the provenance index's memorisation flag on the collection itself.

A generated frame is flagged "memorised" when, at any feature layer, it is closer to a training image than the
layer's threshold. The thresholds are set on the collection's own leave-one-out nearest-neighbour similarities
(each image against all the others: exactly how a distinct image the index has never seen would score), at the
lowest common percentile that flags at most MAX_HELD_OUT_SHARE of them under the any-layer rule. The flag is then
checked against what it must catch: training images mirrored, and moved by SHIFT_PIXELS, looked up in the index.
"""

from __future__ import annotations

import numpy as np

from models import features as feats

MAX_HELD_OUT_SHARE = 0.05
SHIFT_PIXELS = 2
COPIES = 256


def joint_thresholds(best: dict[str, np.ndarray]) -> tuple[float, dict[str, float], float]:
    """(percentile, per-layer thresholds, share of images flagged) for the any-layer rule."""
    share = 1.0
    for percentile in np.arange(95.0, 100.0, 0.1):
        thresholds = {layer: float(np.percentile(values, percentile)) for layer, values in best.items()}
        flagged = np.zeros(len(next(iter(best.values()))), bool)
        for layer, values in best.items():
            flagged |= values > thresholds[layer]
        share = float(flagged.mean())
        if share <= MAX_HELD_OUT_SHARE:
            return round(float(percentile), 1), thresholds, share
    return 100.0, {layer: float(values.max()) for layer, values in best.items()}, 0.0


def moved(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images moved by (dy, dx) pixels, the edge repeated into the space they leave."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    height, width = images.shape[1:3]
    return np.ascontiguousarray(padded[:, pad - dy : pad - dy + height, pad - dx : pad - dx + width])


def flagged(vectors: dict[str, np.ndarray], index_rows: dict[str, np.ndarray], thresholds: dict[str, float]):
    """Any-layer flag for each query row against the index rows."""
    result = np.zeros(len(next(iter(vectors.values()))), bool)
    for layer, threshold in thresholds.items():
        best = np.max(vectors[layer] @ np.asarray(index_rows[layer], np.float32).T, axis=1)
        result |= best > threshold
    return result


def calibrate(best: dict[str, np.ndarray], extractor: feats.FeatureExtractor, index_rows: dict[str, np.ndarray],
              sample_images: np.ndarray) -> dict:
    """The memorisation section of calibration.json: the rule, thresholds and what the flag catches."""
    percentile, thresholds, held_out_share = joint_thresholds(best)
    section = {
        "rule": "memorised when any layer's best similarity exceeds that layer's threshold",
        "percentile": percentile,
        "thresholds": {layer: round(value, 6) for layer, value in thresholds.items()},
        "held_out_share": round(held_out_share, 4),
        "copies_checked": len(sample_images),
    }
    if len(sample_images):
        # The index rows are float16 (often memory-mapped): one float32 copy serves every kind of copy.
        index_rows = {layer: np.asarray(index_rows[layer], np.float32) for layer in thresholds}
        mirrored = np.ascontiguousarray(sample_images[:, :, ::-1])
        shifts = {"mirrored": mirrored, "shifted": moved(sample_images, SHIFT_PIXELS, SHIFT_PIXELS),
                  "shifted_horizontally": moved(sample_images, 0, -SHIFT_PIXELS)}
        for name, copies in shifts.items():
            section[f"{name}_caught"] = round(float(flagged(extractor.extract(copies), index_rows, thresholds).mean()),
                                              4)
    return section
