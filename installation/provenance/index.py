"""The provenance index of a bundle: unit feature rows per layer, records, thumbnails and the calibration.

`ProvenanceIndex.load(bundle_dir)` memory-maps BUNDLE/index/ (built by `python -m training index`); `query` gives
the dataset images closest to a frame's feature row; `novelty` puts the best similarity in context against the
dataset itself: for every dataset image, the similarity of its own nearest other image (calibration.json).
"More novel than 80%" means the frame's best match is weaker than 80% of those within-dataset nearest pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from models import bundle as bundle_format
from models import index_format as feats
from models.litert import NoLiteRTModels
from models.manifest import error_lines

if TYPE_CHECKING:
    from models.features import FeatureExtractor

log = logging.getLogger(__name__)

DEFAULT_FLOAT32_BUDGET = 1 << 30  # bytes of float32 copies kept in memory for fast look-ups (all layers together)
SCORE_BLOCK = 16384


@dataclass(frozen=True)
class Neighbour:
    id: int  # dataset image id
    similarity: float  # cosine similarity, -1..1
    record: Mapping  # id, sha256, file, title, culture, material, source, license
    row: int  # row in the index (for thumbnails)


class ProvenanceIndex:
    """A bundle's provenance index: unit feature rows per layer, records, thumbnails and calibration."""

    def __init__(self, path: Path, info: dict, features: Mapping[str, np.ndarray], ids: np.ndarray,
                 records: list[dict], thumbs, calibration: dict,
                 float32_budget: int = DEFAULT_FLOAT32_BUDGET, discriminator: Path | None = None,
                 checked: bundle_format.IndexFiles | None = None):
        self.path = Path(path)
        self.discriminator = discriminator  # the bundle's discriminator file, checked by the bundle loader
        self.checked = checked  # the loader's view of the index files, with the extractor's LiteRT conversion
        self.info = info
        self.stored = dict(features)  # float16, usually memory-mapped
        self.ids = ids
        self.records = records
        self.thumbs = thumbs  # feats.Thumbnails, or a uint8 (N, t, t, 3) array for format 1 indexes
        self.calibration = calibration
        # float16 -> float32 conversion costs more than the dot products, so small indexes keep a float32 copy.
        self.dense: dict[str, np.ndarray] = {}
        budget = float32_budget
        for layer, stored in self.stored.items():
            if stored.size * 4 <= budget:
                self.dense[layer] = np.ascontiguousarray(stored, dtype=np.float32)
                budget -= stored.size * 4
        self.calibration_curves = {layer: _increasing(calibration.get(layer, {}).get("percentiles"))
                                   for layer in feats.LAYERS}

    @classmethod
    def load(cls, bundle_dir, manifest: dict | None = None, *,
             float32_budget: int = DEFAULT_FLOAT32_BUDGET) -> ProvenanceIndex | None:
        """The bundle's index, or None when the bundle has none (the caller warns once and turns captions off).

        The bundle loader (models.bundle.read_index) checks the files first: inside the bundle, in the index's
        formats, consistent with the manifest. Raises ValueError when the index does not belong to this bundle
        (extractor or dataset fingerprint differ from the manifest, discriminator replaced) and FileNotFoundError
        when the manifest lists a missing index.
        """
        checked = bundle_format.read_index(bundle_dir, manifest)
        if checked is None:
            if (Path(bundle_dir) / feats.INDEX_DIR / feats.INDEX_INFO).is_file():
                log.debug("%s exists but the manifest lists no index; ignoring it", Path(bundle_dir) / feats.INDEX_DIR)
            return None
        files, info = checked.files, dict(checked.info)
        stored = {layer: np.load(files[layer], mmap_mode="r") for layer in feats.LAYERS}
        ids = np.load(files["ids"])
        thumbs = feats.load_thumbnails(checked.folder, {key: path.name for key, path in files.items()})
        records = bundle_format.read_json(files["records"], "rebuild the index")
        calibration = bundle_format.read_json(files["calibration"], "rebuild the index")
        if not isinstance(records, list) or len(records) != int(info["count"]) or not isinstance(calibration, dict):
            raise ValueError(f"the index in {checked.folder} is inconsistent (arrays and records disagree); rebuild "
                             f"it with `python -m training index --model {bundle_dir} --data DATASET`")
        return cls(checked.folder, info, stored, ids, records, thumbs, calibration, float32_budget,
                   discriminator=checked.discriminator, checked=checked)

    @property
    def extractor_name(self) -> str:
        return self.info["extractor"]["name"]

    @property
    def dims(self) -> dict[str, int]:
        return {layer: int(self.stored[layer].shape[1]) for layer in feats.LAYERS}

    def __len__(self) -> int:
        return len(self.ids)

    def load_extractor(self, vgg_weights=None, backend: str = "tf", threads: int = 0) -> FeatureExtractor:
        """The extractor the index was built with (the bundle's discriminator, or VGG16 from a local file).

        backend "litert" runs its LiteRT conversion; "auto" too when the bundle has one, else TensorFlow. Raises
        NoLiteRTModels when LiteRT is asked for (or TensorFlow is not installed) and the bundle has no conversion.
        """
        if backend != "tf" and self.checked is not None:
            try:
                extractor = bundle_format.open_index_features(self.checked, threads)
                self.check_extractor(extractor)
                return extractor
            except (bundle_format.BundleError, FileNotFoundError) as error:
                if backend == "litert" or not bundle_format.tensorflow_available():
                    raise
                (log.info if isinstance(error, NoLiteRTModels) else log.warning)(
                    "%s: captions use the TensorFlow extractor", "; ".join(error_lines(error)))
        from models import features

        described = self.info["extractor"]
        invariance = features.Invariance.from_description(described.get("invariance"))
        if described["name"] == "discriminator":
            if self.discriminator is None:
                raise ValueError(f"the index in {self.path} names no discriminator file; rebuild the index")
            model = bundle_format.load_model(self.discriminator)
            extractor = features.build_extractor("discriminator", discriminator=model, invariance=invariance)
            if dict(extractor.dims) != self.dims:
                raise bundle_format.BundleError(
                    f"{self.discriminator} gives features of {dict(extractor.dims)} but {self.path / feats.INDEX_INFO} "
                    f"says dims {self.dims}; rebuild the index with `python -m training index`")
        else:
            extractor = features.build_extractor("vgg16", vgg_weights=vgg_weights,
                                                 input_size=described["input_size"], invariance=invariance)
            expected = described.get("weights_sha256")
            if expected and feats.file_sha256(extractor.weights_path) != expected:
                raise ValueError(f"{extractor.weights_path} is not the VGG16 weights file the index was built with")
        self.check_extractor(extractor)
        return extractor

    def check_extractor(self, extractor: FeatureExtractor) -> None:
        if extractor.name != self.extractor_name or dict(extractor.dims) != self.dims:
            raise ValueError(
                f"extractor {extractor.name!r} {extractor.dims} does not match the index, built with "
                f"{self.extractor_name!r} {self.dims}: rebuild the index with `python -m training index`, or "
                "use the index's own extractor (ProvenanceIndex.load_extractor)"
            )

    def check_layer(self, layer: str) -> str:
        if layer not in feats.LAYERS:
            raise ValueError(f"layer {layer!r} is not one of {', '.join(feats.LAYERS)}")
        return layer

    def scores(self, vectors: np.ndarray, layer: str) -> np.ndarray:
        """Cosine similarities of unit query rows (M, d) (or one (d,)) to every index row -> (M, N) or (N,)."""
        vectors = np.asarray(vectors, np.float32)
        dense = self.dense.get(self.check_layer(layer))
        if dense is not None:
            # One query is memory-bound: einsum's single-threaded SIMD loop matches threaded BLAS on an idle
            # machine, is several times faster when the render thread holds the other core, and leaves it be.
            return np.einsum("nd,d->n", dense, vectors) if vectors.ndim == 1 else vectors @ dense.T
        stored = self.stored[layer]
        out = np.empty((len(stored),) if vectors.ndim == 1 else (len(vectors), len(stored)), np.float32)
        for start in range(0, len(stored), SCORE_BLOCK):
            block = np.asarray(stored[start : start + SCORE_BLOCK], np.float32)
            if vectors.ndim == 1:
                out[start : start + len(block)] = np.einsum("nd,d->n", block, vectors)
            else:
                out[:, start : start + len(block)] = vectors @ block.T
        return out

    def top_k(self, vectors: np.ndarray, layer: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, similarities), each (M, k), best first, for unit query rows (M, d)."""
        vectors = np.atleast_2d(vectors)
        scores = self.scores(vectors, layer)
        k = max(1, min(int(k), scores.shape[1]))
        cut = scores.shape[1] - k
        rows = np.argpartition(scores, cut, axis=1)[:, cut:] if cut > 0 else np.tile(np.arange(k), (len(scores), 1))
        # float16 storage can put a unit row's self-similarity a hair above 1.
        picked = np.clip(np.take_along_axis(scores, rows, axis=1), -1.0, 1.0)
        order = np.argsort(-picked, axis=1, kind="stable")
        return np.take_along_axis(rows, order, axis=1), np.take_along_axis(picked, order, axis=1)

    def query(self, features_row: np.ndarray, layer: str, k: int = 5) -> list[Neighbour]:
        """The k dataset images closest to one unit feature row at `layer`, best first."""
        features_row = np.asarray(features_row, np.float32).reshape(-1)
        rows, similarities = self.top_k(features_row, layer, k)
        return [self.neighbour(int(row), float(similarity)) for row, similarity in zip(rows[0], similarities[0],
                                                                                        strict=True)]

    def neighbour(self, row: int, similarity: float) -> Neighbour:
        return Neighbour(int(self.ids[row]), similarity, MappingProxyType(self.records[row]), row)

    def novelty(self, best_similarity: float, layer: str) -> tuple[float, float | None]:
        """(1 - best similarity, X) where the frame is more novel than X% of the dataset's own nearest pairs."""
        curve = self.calibration_curves[self.check_layer(layer)]
        novelty = 1.0 - float(best_similarity)
        if curve is None:
            return novelty, None
        below = float(np.interp(best_similarity, curve, np.arange(101, dtype=np.float64)))
        return novelty, round(100.0 - below, 1)

    def memorisation_percentile(self, fallback: float) -> float:
        """The percentile the index calibrated its memorisation flag at (older indexes: `fallback`)."""
        calibrated = self.calibration.get("memorisation") or {}
        return float(calibrated.get("percentile", fallback))

    def memorisation_threshold(self, layer: str, fallback_percent: float) -> float | None:
        """The similarity above which a frame counts as a copy at `layer`: the calibrated threshold (any-layer rule,
        at most 5% of distinct collection images flagged), or the `fallback_percent` percentile of older indexes."""
        calibrated = (self.calibration.get("memorisation") or {}).get("thresholds") or {}
        if self.check_layer(layer) in calibrated:
            return float(calibrated[layer])
        return self.nn_percentile(fallback_percent, layer)

    def nn_percentile(self, percent: float, layer: str) -> float | None:
        """The dataset's own nearest-neighbour similarity at `percent` (e.g. 95 -> the memorisation threshold)."""
        values = self.calibration.get(self.check_layer(layer), {}).get("percentiles")
        return None if values is None else float(np.interp(percent, np.arange(101), values))

    def thumbnails(self, rows: Sequence[int]) -> np.ndarray:
        return np.asarray(self.thumbs[np.asarray(rows, np.int64)], np.uint8)


def _increasing(values) -> np.ndarray | None:
    """A calibration curve made strictly increasing (np.interp needs it; ties get a negligible slope)."""
    if not values:
        return None
    curve = np.maximum.accumulate(np.asarray(values, np.float64))
    return curve + np.arange(len(curve)) * 1e-9

