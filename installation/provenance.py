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
        "similarity": "similarity",
        "novelty": "novelty",
        "more_novel_than": "more novel than {percent}% of the collection's own closest pairs",
        "untitled": "Untitled",
    }),
    "fr": MappingProxyType({
        "similar_to": "le plus proche de",
        "similarity": "similarité",
        "novelty": "nouveauté",
        "more_novel_than": "plus nouveau que {percent} % des paires les plus proches de la collection",
        "untitled": "Sans titre",
    }),
})


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
                 records: list[dict], thumbs: np.ndarray, calibration: dict,
                 float32_budget: int = DEFAULT_FLOAT32_BUDGET, discriminator: Path | None = None,
                 checked: bundle_format.IndexFiles | None = None):
        self.path = Path(path)
        self.discriminator = discriminator  # the bundle's discriminator file, checked by the bundle loader
        self.checked = checked  # the loader's view of the index files, with the extractor's LiteRT conversion
        self.info = info
        self.stored = dict(features)  # float16, usually memory-mapped
        self.ids = ids
        self.records = records
        self.thumbs = thumbs
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
        thumbs = np.load(files["thumbs"], mmap_mode="r")
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
        if described["name"] == "discriminator":
            if self.discriminator is None:
                raise ValueError(f"the index in {self.path} names no discriminator file; rebuild the index")
            model = bundle_format.load_model(self.discriminator)
            extractor = features.build_extractor("discriminator", discriminator=model)
            if dict(extractor.dims) != self.dims:
                raise bundle_format.BundleError(
                    f"{self.discriminator} gives features of {dict(extractor.dims)} but {self.path / feats.INDEX_INFO} "
                    f"says dims {self.dims}; rebuild the index with `python -m training index`")
        else:
            extractor = features.build_extractor("vgg16", vgg_weights=vgg_weights,
                                                 input_size=described["input_size"])
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

    def nn_percentile(self, percent: float, layer: str) -> float | None:
        """The dataset's own nearest-neighbour similarity at `percent` (e.g. 95 -> the memorisation threshold)."""
        values = self.calibration.get(self.check_layer(layer), {}).get("percentiles")
        return None if values is None else float(np.interp(percent, np.arange(101), values))

    def thumbnails(self, rows: Sequence[int]) -> np.ndarray:
        return np.asarray(self.thumbs[np.asarray(rows, np.int64)])


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
        scores = f"{labels['similarity']} {self.similarity:.2f} · {labels['novelty']} {self.novelty:.2f}"
        lines = [labels["similar_to"], self.title]
        if self.attributes:
            lines.append(self.attributes)
        lines.append(scores)
        if self.percentile is not None:
            lines.append(labels["more_novel_than"].format(percent=f"{self.percentile:.0f}"))
        return lines

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
    """How captions look. labels override the `language` preset's wording key by key."""

    placement: str = "bottom-left"
    font_path: str | None = None  # None: pygame's default font
    size: int = 24  # title size in pixels; other lines are 3/4 of it
    duration: float = 10.0  # seconds a caption stays, fades included; math.inf keeps it up
    fade: float = 1.0  # seconds of fade in and of fade out
    show_thumbnails: bool = True
    k: int = 5  # neighbours looked up, and thumbnails shown
    thumbnail_size: int = 56
    margin: int = 24
    language: str = "en"
    labels: Mapping[str, str] | None = None
    text_color: tuple[int, int, int] = (240, 236, 228)
    background: tuple[int, int, int, int] = (0, 0, 0, 150)

    def __post_init__(self):
        if self.placement not in PLACEMENTS:
            raise ValueError(f"caption placement {self.placement!r} is not one of {', '.join(PLACEMENTS)}")
        if self.font_path is not None and not Path(self.font_path).expanduser().is_file():
            raise FileNotFoundError(f"caption font {self.font_path} does not exist; give a .ttf/.otf file or none")
        if not 8 <= self.size <= 200:
            raise ValueError(f"caption size {self.size} is outside the allowed range 8..200")
        if not self.duration > 0:
            raise ValueError(f"caption duration {self.duration} must be positive (math.inf keeps captions up)")
        if not 0 <= self.fade <= self.duration / 2:
            raise ValueError(f"caption fade {self.fade} must be in 0..duration/2 ({self.duration / 2})")
        if not 1 <= self.k <= 24:
            raise ValueError(f"caption k {self.k} is outside the allowed range 1..24")
        if not 8 <= self.thumbnail_size <= 512:
            raise ValueError(f"thumbnail_size {self.thumbnail_size} is outside the allowed range 8..512")
        if self.language not in LABEL_PRESETS:
            raise ValueError(f"caption language {self.language!r} is not one of {', '.join(LABEL_PRESETS)}")
        unknown = set(self.labels or {}) - set(LABEL_PRESETS["en"])
        if unknown:
            raise ValueError(f"unknown caption labels {sorted(unknown)}; known: {', '.join(LABEL_PRESETS['en'])}")
        merged = {**LABEL_PRESETS[self.language], **(self.labels or {})}
        object.__setattr__(self, "labels", MappingProxyType(merged))

    def __hash__(self):
        return hash((self.placement, self.font_path, self.size, self.duration, self.fade, self.show_thumbnails,
                     self.k, self.thumbnail_size, self.margin, self.language, tuple(sorted(self.labels.items())),
                     self.text_color, self.background))


def caption_alpha(age_seconds: float, duration: float, fade: float) -> float:
    """0..1 opacity: fade in over `fade`, hold, fade out over the last `fade` seconds of `duration`."""
    if age_seconds < 0 or age_seconds >= duration:
        return 0.0
    if fade <= 0:
        return 1.0
    return max(0.0, min(1.0, age_seconds / fade, (duration - age_seconds) / fade))


@functools.lru_cache(maxsize=16)
def _font(path: str | None, size: int):
    import pygame

    if not pygame.font.get_init():
        pygame.font.init()
    return pygame.font.Font(path, size)


@dataclass
class _Panel:
    caption: Caption | None = None
    style: CaptionStyle | None = None
    thumbnails: object = None
    surface: object = None


_panel_cache = _Panel()


def render_panel(caption: Caption, style: CaptionStyle, thumbnails=None):
    """The caption as an opaque-alpha pygame Surface (text lines over a translucent box, then thumbnails)."""
    import pygame

    title_font = _font(style.font_path, style.size)
    small_font = _font(style.font_path, max(8, round(style.size * 0.75)))
    lines = caption.lines(style.labels)
    rendered = [(small_font if index != 1 else title_font).render(line, True, style.text_color)
                for index, line in enumerate(lines)]
    thumbs = []
    if style.show_thumbnails and thumbnails is not None:
        for thumb in list(thumbnails)[: style.k]:
            thumb = np.ascontiguousarray(thumb, np.uint8)
            image = pygame.image.frombuffer(thumb.tobytes(), (thumb.shape[1], thumb.shape[0]), "RGB")
            thumbs.append(pygame.transform.smoothscale(image, (style.thumbnail_size, style.thumbnail_size)))
    pad, gap = max(6, style.size // 3), max(2, style.size // 8)
    strip = len(thumbs) * style.thumbnail_size + max(0, len(thumbs) - 1) * gap
    width = max([text.get_width() for text in rendered] + [strip]) + 2 * pad
    height = sum(text.get_height() + gap for text in rendered) + (style.thumbnail_size + gap if thumbs else 0) + 2 * pad
    panel = pygame.Surface((width, height), pygame.SRCALPHA)
    panel.fill(style.background)
    y = pad
    for text in rendered:
        panel.blit(text, (pad, y))
        y += text.get_height() + gap
    for index, thumb in enumerate(thumbs):
        panel.blit(thumb, (pad + index * (style.thumbnail_size + gap), y + gap // 2))
    return panel


def panel_position(placement: str, panel_size: tuple[int, int], surface_size: tuple[int, int], margin: int):
    width, height = panel_size
    screen_w, screen_h = surface_size
    x = {"left": margin, "right": screen_w - width - margin, "center": (screen_w - width) // 2}[placement.split("-")[1]]
    y = margin if placement.startswith("top") else screen_h - height - margin
    return x, y


def draw_caption(surface, caption: Caption | None, style: CaptionStyle, age_seconds: float, thumbnails=None):
    """Paint `caption` onto a pygame Surface, faded by its age; returns the Rect drawn, or None when invisible.

    thumbnails: uint8 (k, t, t, 3) images of the neighbours (ProvenanceIndex.thumbnails), or None.
    The panel is rendered once per caption and reused while only its opacity changes.
    """
    alpha = caption_alpha(age_seconds, style.duration, style.fade)
    if caption is None or alpha <= 0:
        return None
    cache = _panel_cache
    if cache.caption is not caption or cache.style != style or cache.thumbnails is not thumbnails:
        cache.surface = render_panel(caption, style, thumbnails)
        cache.caption, cache.style, cache.thumbnails = caption, style, thumbnails
    panel = cache.surface
    panel.set_alpha(round(255 * alpha))
    position = panel_position(style.placement, panel.get_size(), surface.get_size(), style.margin)
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
        return draw_caption(surface, self.caption, self.style, now - self.since, self.thumbnails)
