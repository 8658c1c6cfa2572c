"""Provenance captions: which dataset images a generated frame is closest to, and how novel it is.

The pieces, from data to screen:
- `ProvenanceIndex.load(bundle_dir)` memory-maps BUNDLE/index/ (built by `python -m training index`).
- `Captioner(index, extractor).caption_for(frame, layer)` runs extractor -> cosine top-k -> `Caption`.
- `ProvenanceWorker` does that on its own thread at a few Hz, newest frame wins, so the display never waits.
- `CaptionOverlay` decides which caption is on screen and for how long; `draw_caption` paints it with pygame.

Novelty is 1 - the best cosine similarity, and is put in context against the dataset itself: for every dataset
image, the similarity of its own nearest other image (calibration.json). "More novel than 80%" means the frame's
best match is weaker than 80% of those within-dataset nearest-neighbour pairs.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
PLACEMENTS = ("bottom-left", "bottom-right", "top-left", "top-right", "bottom-center")
LABEL_PRESETS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "en": MappingProxyType({
        "similar_to": "closest to",
        "similarity": "similarity",  # the one-line text for OSC feedback and logs (operators), not the screen
        "novelty": "novelty",
        "untitled": "Untitled",
        # What visitors read: the resemblance in words, judged against the collection's own closest pairs.
        "resemblance_copy": "almost a copy of it",
        "resemblance_strong": "a strong resemblance",
        "resemblance_clear": "a clear resemblance",
        "resemblance_faint": "a faint resemblance",
        "resemblance_none": "like nothing in the collection",
    }),
    "fr": MappingProxyType({
        "similar_to": "le plus proche de",
        "similarity": "similarité",
        "novelty": "nouveauté",
        "untitled": "Sans titre",
        "resemblance_copy": "presque une copie",
        "resemblance_strong": "une forte ressemblance",
        "resemblance_clear": "une ressemblance nette",
        "resemblance_faint": "une ressemblance lointaine",
        "resemblance_none": "rien de semblable dans la collection",
    }),
})
# (upper bound of "more novel than X% of the collection's own closest pairs", label): a frame closer to its
# match than 95% of the collection's images are to theirs is nearly a copy; one beyond all of them is new.
RESEMBLANCE_BANDS = ((5.0, "resemblance_copy"), (35.0, "resemblance_strong"), (75.0, "resemblance_clear"),
                     (99.0, "resemblance_faint"))
# Without a calibration curve: bands of the raw cosine similarity instead.
SIMILARITY_BANDS = ((0.98, "resemblance_copy"), (0.93, "resemblance_strong"), (0.85, "resemblance_clear"),
                    (0.7, "resemblance_faint"))
REFERENCE_HEIGHT = 1080  # caption sizes are given for a screen this many pixels high and scale with it


# --------------------------------------------------------------------------------------------------
# The index


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


# --------------------------------------------------------------------------------------------------
# Captions


@dataclass(frozen=True)
class Caption:
    title: str
    attributes: str  # "culture · material", or the file name when the image has no metadata
    similarity: float  # best cosine similarity
    novelty: float  # 1 - similarity
    percentile: float | None  # more novel than this % of the dataset's own nearest-neighbour pairs
    neighbours: tuple[Neighbour, ...]
    layer: str = "late"

    @property
    def best(self) -> Neighbour:
        return self.neighbours[0]

    def lines(self, labels: Mapping[str, str]) -> list[str]:
        """What visitors read: "closest to", the title, culture and material, and the resemblance in words."""
        lines = [labels["similar_to"], self.title]
        if self.attributes:
            lines.append(self.attributes)
        lines.append(labels[self.resemblance])
        return lines

    @property
    def resemblance(self) -> str:
        """The label key of how closely the frame resembles its best match (resemblance_copy ... _none)."""
        if self.percentile is not None:
            return next((key for limit, key in RESEMBLANCE_BANDS if self.percentile <= limit), "resemblance_none")
        return next((key for limit, key in SIMILARITY_BANDS if self.similarity >= limit), "resemblance_none")

    def text(self, labels: Mapping[str, str] = LABEL_PRESETS["en"]) -> str:
        """One line, for OSC feedback and logs."""
        attributes = f" ({self.attributes})" if self.attributes else ""
        return (f"{labels['similar_to']}: {self.title}{attributes}; {labels['similarity']} {self.similarity:.2f}, "
                f"{labels['novelty']} {self.novelty:.2f}")


def describe(record: Mapping, untitled: str = LABEL_PRESETS["en"]["untitled"]) -> tuple[str, str]:
    """(title, attributes) for a record: attributes are culture · material, or the file name without metadata."""
    file_name = record.get("file") or ""
    parts = [record[name] for name in ("culture", "material") if record.get(name)]
    title = record.get("title") or ""
    if parts:
        return title or file_name or untitled, " · ".join(parts)
    if title:
        return title, file_name
    return file_name or untitled, ""


class Captioner:
    """extractor -> query -> Caption, for one index."""

    def __init__(self, index: ProvenanceIndex, extractor: FeatureExtractor, k: int = 5):
        if not 1 <= k <= 256:
            raise ValueError(f"k {k} is outside the allowed range 1..256")
        index.check_extractor(extractor)
        self.index, self.extractor, self.k = index, extractor, k

    def caption_for(self, frame: np.ndarray, layer: str = "late") -> Caption:
        """One uint8 (H, W, 3) frame -> its Caption at `layer` ("early" or "late")."""
        vector = self.extractor.extract(np.asarray(frame))[self.index.check_layer(layer)][0]
        neighbours = tuple(self.index.query(vector, layer, self.k))
        return self.caption_from(neighbours, layer)

    def caption_from(self, neighbours: Sequence[Neighbour], layer: str) -> Caption:
        best = neighbours[0]
        novelty, percentile = self.index.novelty(best.similarity, layer)
        title, attributes = describe(best.record)
        return Caption(title, attributes, best.similarity, novelty, percentile, tuple(neighbours), layer)


def open_captioner(bundle_dir, manifest: dict | None = None, k: int = 5, vgg_weights=None, backend: str = "tf",
                   threads: int = 0) -> Captioner | None:
    """The captioner for a bundle, or None (with one warning) when it has no index, or no extractor this machine
    can run (no LiteRT conversion of it and no TensorFlow): captions are then off. backend: see load_extractor."""
    index = ProvenanceIndex.load(bundle_dir, manifest)
    if index is None:
        log.warning("bundle %s has no provenance index; captions are off (build one with "
                    "`python -m training index --model %s --data DATASET`)", bundle_dir, bundle_dir)
        return None
    try:
        extractor = index.load_extractor(vgg_weights, backend, threads)
    except NoLiteRTModels as error:
        log.warning("%s; captions are off", error)
        return None
    return Captioner(index, extractor, k)


# --------------------------------------------------------------------------------------------------
# Off the display thread


class ProvenanceWorker:
    """Captions the newest submitted frame at most `rate_hz` times a second, on a daemon thread.

    One slot, latest wins: `submit` replaces a frame not yet taken (never a queue) and never blocks beyond a
    brief lock; `latest()` returns the newest caption. Errors are counted and logged at most once per
    `error_log_interval` seconds; the worker keeps going. Submitted frames must not be modified afterwards.
    """

    def __init__(self, caption_for: Callable[[np.ndarray, str], Caption], rate_hz: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, name: str = "provenance",
                 error_log_interval: float = 30.0):
        if not 0.01 <= rate_hz <= 120:
            raise ValueError(f"rate_hz {rate_hz} is outside the allowed range 0.01..120")
        self.caption_for = caption_for
        self.interval = 1.0 / rate_hz
        self.clock = clock
        self.name = name
        self.error_log_interval = error_log_interval
        self.condition = threading.Condition()
        self.stopping = threading.Event()
        self.pending: tuple[np.ndarray, str] | None = None
        self.caption: Caption | None = None
        self.published_at: float | None = None
        self.thread: threading.Thread | None = None
        self.captions = self.failures = self.replaced = 0
        self.latency = 0.0  # smoothed seconds per caption
        self.last_error: str | None = None
        self.last_error_logged = -math.inf
        self.errors_since_log = 0

    def start(self) -> ProvenanceWorker:
        self.stopping.clear()
        self.thread = threading.Thread(target=self.loop, name=self.name, daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self.stopping.set()
        with self.condition:
            self.condition.notify_all()
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def submit(self, frame: np.ndarray, layer: str = "late") -> None:
        with self.condition:
            if self.pending is not None:
                self.replaced += 1
            self.pending = (frame, layer)
            self.condition.notify()

    def latest(self) -> Caption | None:
        with self.condition:
            return self.caption

    def take(self) -> tuple[np.ndarray, str] | None:
        with self.condition:
            while not self.stopping.is_set() and self.pending is None:
                self.condition.wait(0.25)
            taken, self.pending = self.pending, None
            return None if self.stopping.is_set() else taken

    def loop(self) -> None:
        while not self.stopping.is_set():
            taken = self.take()
            if taken is None:
                continue
            began = self.clock()
            try:
                caption = self.caption_for(*taken)
            except Exception as error:  # noqa: BLE001 - one bad frame must not end captions; it is reported
                self.report(error)
            else:
                seconds = self.clock() - began
                self.latency = seconds if self.captions == 0 else 0.8 * self.latency + 0.2 * seconds
                with self.condition:
                    self.caption, self.published_at = caption, self.clock()
                    self.captions += 1
            # Hold the rate: newer frames replace the pending one meanwhile, so the next look-up is the newest.
            self.stopping.wait(max(0.0, began + self.interval - self.clock()))

    def report(self, error: Exception) -> None:
        self.failures += 1
        self.errors_since_log += 1
        self.last_error = f"{type(error).__name__}: {error}"
        now = self.clock()
        if now - self.last_error_logged >= self.error_log_interval:
            log.error("provenance look-up failed (%d since last report): %s", self.errors_since_log, self.last_error)
            self.last_error_logged, self.errors_since_log = now, 0


# --------------------------------------------------------------------------------------------------
# On screen


@dataclass(frozen=True)
class CaptionStyle:
    """How captions look. Sizes are line heights and edges in pixels as drawn; `at_height` scales a style given
    for a REFERENCE_HEIGHT screen to another. labels override the `language` preset's wording key by key."""

    placement: str = "bottom-left"
    font_path: str | None = None  # None: pygame's default font
    size: int = 36  # height of the title's line in pixels
    body_size: int = 24  # height of the other lines
    duration: float = 10.0  # seconds a caption stays, fades included; math.inf keeps it up
    fade: float = 1.0  # seconds of fade in and of fade out
    show_thumbnails: bool = True
    k: int = 5  # neighbours looked up, and thumbnails shown
    thumbnail_size: int = 112
    margin: int = 32
    language: str = "en"
    labels: Mapping[str, str] | None = None
    text_color: tuple[int, int, int] = (240, 236, 228)
    background: tuple[int, int, int, int] = (0, 0, 0, 160)

    def __post_init__(self):
        if self.placement not in PLACEMENTS:
            raise ValueError(f"caption placement {self.placement!r} is not one of {', '.join(PLACEMENTS)}")
        if self.font_path is not None and not Path(self.font_path).expanduser().is_file():
            raise FileNotFoundError(f"caption font {self.font_path} does not exist; give a .ttf/.otf file or none")
        for name in ("size", "body_size"):
            if not 6 <= getattr(self, name) <= 400:
                raise ValueError(f"caption {name} {getattr(self, name)} is outside the allowed range 6..400")
        if not self.duration > 0:
            raise ValueError(f"caption duration {self.duration} must be positive (math.inf keeps captions up)")
        if not 0 <= self.fade <= self.duration / 2:
            raise ValueError(f"caption fade {self.fade} must be in 0..duration/2 ({self.duration / 2})")
        if not 1 <= self.k <= 24:
            raise ValueError(f"caption k {self.k} is outside the allowed range 1..24")
        if not 8 <= self.thumbnail_size <= 1024:
            raise ValueError(f"thumbnail_size {self.thumbnail_size} is outside the allowed range 8..1024")
        if self.language not in LABEL_PRESETS:
            raise ValueError(f"caption language {self.language!r} is not one of {', '.join(LABEL_PRESETS)}")
        unknown = set(self.labels or {}) - set(LABEL_PRESETS["en"])
        if unknown:
            raise ValueError(f"unknown caption labels {sorted(unknown)}; known: {', '.join(LABEL_PRESETS['en'])}")
        merged = {**LABEL_PRESETS[self.language], **(self.labels or {})}
        object.__setattr__(self, "labels", MappingProxyType(merged))

    def __hash__(self):
        return hash((self.placement, self.font_path, self.size, self.body_size, self.duration, self.fade,
                     self.show_thumbnails, self.k, self.thumbnail_size, self.margin, self.language,
                     tuple(sorted(self.labels.items())), self.text_color, self.background))

    def at_height(self, screen_height: int) -> CaptionStyle:
        """This style, given for a REFERENCE_HEIGHT screen, in pixels for a screen `screen_height` high: a caption
        takes the same share of a 720p, 1080p or 4K screen."""
        scale = screen_height / REFERENCE_HEIGHT
        return dataclasses.replace(self, size=max(6, round(self.size * scale)),
                                   body_size=max(6, round(self.body_size * scale)),
                                   thumbnail_size=max(8, round(self.thumbnail_size * scale)),
                                   margin=round(self.margin * scale), labels=dict(self.labels))


def caption_alpha(age_seconds: float, duration: float, fade: float) -> float:
    """0..1 opacity: fade in over `fade`, hold, fade out over the last `fade` seconds of `duration`."""
    if age_seconds < 0 or age_seconds >= duration:
        return 0.0
    if fade <= 0:
        return 1.0
    return max(0.0, min(1.0, age_seconds / fade, (duration - age_seconds) / fade))


@functools.lru_cache(maxsize=16)
def _font(path: str | None, height: int):
    """A font whose lines are `height` pixels high (pygame's sizes are nominal: its default font's "24" draws
    17-pixel lines)."""
    import pygame

    if not pygame.font.get_init():
        pygame.font.init()
    probe = pygame.font.Font(path, height)
    size = max(1, round(height * height / max(1, probe.get_height())))
    font = pygame.font.Font(path, size)
    while font.get_height() < height:
        size += 1
        font = pygame.font.Font(path, size)
    return font


def wrap(text: str, font, width: int) -> list[str]:
    """`text` broken at spaces into lines no wider than `width` pixels (a single overlong word is cut)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.size(candidate)[0] <= width:
            lines[-1] = candidate
            continue
        while font.size(word)[0] > width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and font.size(word[:cut] + "…")[0] > width:
                cut -= 1
            word = word[:cut] + "…"
        lines.append(word)
    return lines or [""]


@dataclass
class _Panel:
    key: tuple | None = None
    surface: object = None
    held: tuple = ()  # the caption and thumbnails of `key`, kept alive so that their ids stay theirs


_panel_cache = _Panel()


def render_panel(caption: Caption, style: CaptionStyle, thumbnails=None, max_size: tuple[int, int] | None = None):
    """The caption as an opaque-alpha pygame Surface (text lines over a translucent box, then thumbnails), no
    wider or taller than `max_size`: long lines wrap, thumbnails that do not fit are left out, never cut."""
    import pygame

    title_font, body_font = _font(style.font_path, style.size), _font(style.font_path, style.body_size)
    pad, gap = max(4, style.body_size // 2), max(2, style.body_size // 6)
    max_width, max_height = max_size or (1 << 15, 1 << 15)
    text_width = max(1, max_width - 2 * pad)
    rendered = []
    for index, line in enumerate(caption.lines(style.labels)):
        font = title_font if index == 1 else body_font
        rendered += [font.render(part, True, style.text_color) for part in wrap(line, font, text_width)]
    thumbs = []
    side = thumbnail_side(style, thumbnails)
    text_height = sum(text.get_height() + gap for text in rendered) + 2 * pad
    fits = max(0, (text_width + gap) // (side + gap))
    if style.show_thumbnails and thumbnails is not None and text_height + side + gap <= max_height:
        for thumb in list(thumbnails)[: min(style.k, fits)]:
            thumb = np.ascontiguousarray(thumb, np.uint8)
            image = pygame.image.frombuffer(thumb.tobytes(), (thumb.shape[1], thumb.shape[0]), "RGB")
            thumbs.append(pygame.transform.smoothscale(image, (side, side)) if side != thumb.shape[0] else image)
    strip = len(thumbs) * side + max(0, len(thumbs) - 1) * gap
    width = min(max_width, max([text.get_width() for text in rendered] + [strip]) + 2 * pad)
    height = min(max_height, text_height + (side + gap if thumbs else 0))
    panel = pygame.Surface((width, height), pygame.SRCALPHA)
    panel.fill(style.background)
    y = pad
    for text in rendered:
        panel.blit(text, (pad, y))
        y += text.get_height() + gap
    for index, thumb in enumerate(thumbs):
        panel.blit(thumb, (pad + index * (side + gap), y))
    return panel


def thumbnail_side(style: CaptionStyle, thumbnails=None) -> int:
    """The side thumbnails are drawn at: the style's, but at most what the index stores (enlarged ones would only
    be blurred; `python -m training index --thumb-size` stores larger ones)."""
    stored = None if thumbnails is None else int(np.asarray(thumbnails).shape[1])
    return min(style.thumbnail_size, stored or style.thumbnail_size)


def panel_position(placement: str, panel_size: tuple[int, int], surface_size: tuple[int, int], margin: int):
    width, height = panel_size
    screen_w, screen_h = surface_size
    x = {"left": margin, "right": screen_w - width - margin, "center": (screen_w - width) // 2}[placement.split("-")[1]]
    y = margin if placement.startswith("top") else screen_h - height - margin
    return x, y


def draw_caption(surface, caption: Caption | None, style: CaptionStyle, age_seconds: float, thumbnails=None):
    """Paint `caption` onto a pygame Surface, faded by its age; returns the Rect drawn, or None when invisible.

    thumbnails: uint8 (k, t, t, 3) images of the neighbours (ProvenanceIndex.thumbnails), or None.
    The panel stays inside the surface, `style.margin` from its edges, and is rendered once per caption and
    reused while only its opacity changes.
    """
    alpha = caption_alpha(age_seconds, style.duration, style.fade)
    if caption is None or alpha <= 0:
        return None
    cache = _panel_cache
    surface_size = surface.get_size()
    key = (id(caption), style, id(thumbnails), surface_size)
    if cache.key != key:
        room = (max(1, surface_size[0] - 2 * style.margin), max(1, surface_size[1] - 2 * style.margin))
        cache.surface, cache.key = render_panel(caption, style, thumbnails, room), key
        cache.held = (caption, thumbnails)
    panel = cache.surface
    panel.set_alpha(round(255 * alpha))
    position = panel_position(style.placement, panel.get_size(), surface_size, style.margin)
    return surface.blit(panel, position)


@dataclass
class CaptionOverlay:
    """Which caption is on screen and since when: a caption starts when the closest dataset image changes,
    shows for `style.duration` seconds (fading in and out) and then stays hidden until the next change."""

    style: CaptionStyle = field(default_factory=CaptionStyle)
    index: ProvenanceIndex | None = None  # for thumbnails
    caption: Caption | None = None
    since: float = -math.inf
    thumbnails: np.ndarray | None = None
    scaled: tuple[int, CaptionStyle] | None = None  # (screen height, style in its pixels)

    def update(self, caption: Caption | None, now: float) -> bool:
        """Take the worker's newest caption; True when a new one starts (e.g. to send it over OSC)."""
        if caption is None or caption is self.caption:
            return False
        starts = self.caption is None or caption.best.id != self.caption.best.id
        if starts:
            self.since = now
        self.caption = caption
        if self.index is not None and self.style.show_thumbnails:
            self.thumbnails = self.index.thumbnails([n.row for n in caption.neighbours[: self.style.k]])
        return starts

    def draw(self, surface, now: float):
        """Draw at sizes for this surface's height (the style is given for a REFERENCE_HEIGHT screen)."""
        height = surface.get_height()
        if self.scaled is None or self.scaled[0] != height:
            self.scaled = (height, self.style.at_height(height))
        return draw_caption(surface, self.caption, self.scaled[1], now - self.since, self.thumbnails)
