"""Captions: which dataset images a generated frame is closest to, in words visitors read.

`Captioner(index, extractor).caption_for(frame, layer)` runs extractor -> cosine top-k -> `Caption`;
`open_captioner` builds the one for a bundle (or none, with one warning, when captions cannot run).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from installation.provenance.index import Neighbour, ProvenanceIndex
from models.litert import NoLiteRTModels

if TYPE_CHECKING:
    from models.features import FeatureExtractor

log = logging.getLogger(__name__)

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
