"""IngestReport: what an ingest run kept, dropped and flagged, as report.json and as a one-paragraph summary."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from training.dataset_format import DATASET_FORMAT_VERSION, REPORT_NAME
from training.ingest.config import (
    CATEGORY_CORRUPT,
    CATEGORY_DUPLICATE,
    CATEGORY_NOT_IMAGE,
    CATEGORY_TOO_LARGE,
    CATEGORY_TOO_SMALL,
    COUNTED,
    MAX_FILE_BYTES,
    DroppedFile,
    IngestConfig,
    ReviewPair,
)

REPORT_FORMAT = "masquerade-ingest-report"


@dataclass
class IngestReport:
    """What `ingest` did: counts, the kept files in id order and every dropped file with its reason."""

    source_dir: str
    out_dir: str
    config: IngestConfig
    seen: int = 0
    kept_files: list[str] = field(default_factory=list)  # source paths; the index is the image id
    dropped_files: list[DroppedFile] = field(default_factory=list)
    review_pairs: list[ReviewPair] = field(default_factory=list)
    review_sheet: str | None = None  # file name of the contact sheet of review_pairs, in out_dir
    notes: list[dict[str, str]] = field(default_factory=list)  # {"source_path", "note"} about kept files
    escaped_names: list[str] = field(default_factory=list)  # names that were not UTF-8, as reported
    cut_by_crop: int = 0  # kept images whose object reaches past the square that was cut out
    no_background: int = 0  # with fit "object": non-square images without a plain background (centre crop)
    metadata_path: str | None = None
    metadata_rows: int = 0
    metadata_matched: int = 0  # kept images that received metadata
    metadata_unmatched: list[str] = field(default_factory=list)  # sidecar keys that matched no file
    shards: list[str] = field(default_factory=list)
    fingerprint: str | None = None

    def _count(self, category: str) -> int:
        return sum(1 for dropped in self.dropped_files if dropped.category == category)

    @property
    def kept(self) -> int:
        return len(self.kept_files)

    @property
    def skipped_corrupt(self) -> int:
        return self._count(CATEGORY_CORRUPT)

    @property
    def skipped_not_image(self) -> int:
        return self._count(CATEGORY_NOT_IMAGE)

    @property
    def skipped_too_small(self) -> int:
        return self._count(CATEGORY_TOO_SMALL)

    @property
    def dropped_duplicate(self) -> int:
        return self._count(CATEGORY_DUPLICATE)

    def counts(self) -> dict[str, int]:
        return {"seen": self.seen, "kept": self.kept, **{key: self._count(category) for key, category, _ in COUNTED}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "format_version": DATASET_FORMAT_VERSION,
            "source_dir": self.source_dir,
            "out_dir": self.out_dir,
            "config": self.config.to_dict(),
            "counts": self.counts(),
            "fit": {"mode": self.config.fit, "cut_by_crop": self.cut_by_crop, "no_background": self.no_background},
            "kept": [{"id": index, "source_path": path} for index, path in enumerate(self.kept_files)],
            "dropped": [
                {key: value for key, value in dataclasses.asdict(dropped).items() if value is not None}
                for dropped in self.dropped_files
            ],
            "review_pairs": [dataclasses.asdict(pair) for pair in self.review_pairs],
            "review_sheet": self.review_sheet,
            "notes": list(self.notes),
            "escaped_names": list(self.escaped_names),
            "metadata": {
                "path": self.metadata_path,
                "rows": self.metadata_rows,
                "matched": self.metadata_matched,
                "unmatched": list(self.metadata_unmatched),
            },
            "shards": list(self.shards),
            "fingerprint": self.fingerprint,
        }

    def summary(self) -> str:
        config = self.config
        parts = [
            f"Kept {self.kept} of {self.seen} files from {self.source_dir} as "
            f"{config.image_size}x{config.image_size} ({config.fit}) in {self.out_dir}"
            f" ({len(self.shards)} shard{'s' if len(self.shards) != 1 else ''})."
        ]
        skipped = [f"{count} {words}" for count, words in self._skipped_counts() if count]
        if skipped:
            parts.append("Skipped: " + ", ".join(skipped) + f" (details in {REPORT_NAME}).")
        if self.cut_by_crop:
            parts.append(
                f"The centre crop cut into the object of {self.cut_by_crop} of {self.kept} images; "
                "--fit object keeps objects whole."
            )
        if self.no_background:
            parts.append(f"{self.no_background} images had no plain background to find the object on: centre-cropped.")
        if self.review_pairs:
            where = f", sheet {self.review_sheet}" if self.review_sheet else ""
            count = len(self.review_pairs)
            parts.append(f"{count} near-duplicate pairs to review (review_pairs in {REPORT_NAME}{where}).")
        if self.escaped_names:
            parts.append(f"{len(self.escaped_names)} file names were not UTF-8 and are listed with \\x escapes.")
        if self.metadata_path:
            text = f"Metadata from {self.metadata_path}: {self.metadata_matched} of {self.kept} images matched"
            if self.metadata_unmatched:
                text += f", {len(self.metadata_unmatched)} rows matched no file"
            parts.append(text + ".")
        return " ".join(parts)

    def _skipped_counts(self) -> list[tuple[int, str]]:
        config = self.config
        words = {
            CATEGORY_TOO_SMALL: f"smaller than {config.min_size} px",
            CATEGORY_TOO_LARGE: f"over {config.max_megapixels} megapixels or {MAX_FILE_BYTES // 2**20} MiB",
            CATEGORY_DUPLICATE: "duplicate" + ("s" if self.dropped_duplicate != 1 else ""),
        }
        return [(self._count(category), words.get(category, text)) for _, category, text in COUNTED]
