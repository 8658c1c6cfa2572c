"""The ingest run: each source file read, checked, deduplicated, framed and written; then the dataset committed."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import posixpath
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from training import sources
from training.curation import fine_distance, fine_thumbnail, frame_square, perceptual_hash, render_square, review_sheet
from training.dataset_format import (
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    MANIFEST_NAME,
    METADATA_FIELDS,
    REPORT_NAME,
    REVIEW_SHEET_NAME,
    SHARD_DIR,
    dataset_artifacts,
    dataset_fingerprint,
    encode_example,
    join_path,
    shard_name,
)
from training.ingest.config import (
    CATEGORY_CORRUPT,
    CATEGORY_DUPLICATE,
    COUNTED,
    IMAGES_PER_SHARD,
    DroppedFile,
    IngestConfig,
    ReviewPair,
)
from training.ingest.reading import (
    DECODE_ERRORS,
    SUPPORTED_FORMATS_TEXT,
    Decoded,
    decode,
    list_sources,
    misnamed,
    read_entry,
)
from training.ingest.report import IngestReport
from training.ingest.writing import ShardWriter, StopOnSignals, encode_png, json_bytes, remove_temporaries, write_atomic
from training.metadata import find_metadata, match_metadata, read_metadata

logger = logging.getLogger("training.ingest")  # one logger name for the whole run, as before the split

# Near-duplicate candidates compared finely per image: the nearest by hash distance.
_NEAREST_CANDIDATES = 16
REVIEW_SHEET_MAX_PAIRS = 48


class NearDuplicates:
    """Perceptual hashes and fine thumbnails of the kept images; a candidate is confirmed finely."""

    def __init__(self, config: IngestConfig, capacity: int):
        self.config = config
        self.hashes = np.zeros(capacity, dtype=np.uint64)
        self.thumbnails: list[np.ndarray] = []

    def nearest(self, image_hash: int, thumbnail: np.ndarray) -> tuple[int, int, float] | None:
        """(kept id, hash distance, pixel RMS) of the finest match among the hash candidates, or None."""
        count = len(self.thumbnails)
        if self.config.dedupe_threshold < 0 or count == 0:
            return None
        distances = np.bitwise_count(self.hashes[:count] ^ np.uint64(image_hash))
        candidates = np.flatnonzero(distances <= self.config.dedupe_threshold)
        if candidates.size == 0:
            return None
        candidates = candidates[np.argsort(distances[candidates], kind="stable")[:_NEAREST_CANDIDATES]]
        scored = [(fine_distance(self.thumbnails[index], thumbnail), int(index)) for index in candidates]
        pixel_rms, index = min(scored)
        return index, int(distances[index]), pixel_rms

    def add(self, image_hash: int, thumbnail: np.ndarray) -> None:
        self.hashes[len(self.thumbnails)] = np.uint64(image_hash)
        self.thumbnails.append(thumbnail)

    def borderline(self, pixel_rms: float) -> bool:
        """Within a factor of two of the limit either way: the pairs worth a human look."""
        limit = self.config.dedupe_pixel_rms
        return limit / 2 <= pixel_rms <= 2 * limit


def ingest(
    source_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: IngestConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> IngestReport:
    """Turn a folder of images (searched recursively) into TFRecord shards, manifest.json and report.json.

    Files are processed in sorted relative-path order; of two duplicates the first one is kept.
    Raises ValueError when out_dir already holds a dataset (unless overwrite) or nothing is readable,
    IngestInterrupted when a signal stopped it (its temporary files removed).
    """
    config = config or IngestConfig()
    source_dir, out_dir = os.fspath(source_dir), os.fspath(out_dir)
    if not tf.io.gfile.isdir(source_dir):
        raise FileNotFoundError(
            f"source folder {source_dir} does not exist or is not a folder; pass a folder of images"
        )
    manifest_path = join_path(out_dir, MANIFEST_NAME)
    if tf.io.gfile.exists(manifest_path) and not overwrite:
        raise ValueError(
            f"{out_dir} already holds a dataset ({MANIFEST_NAME}); pass overwrite=True (--overwrite) "
            "to replace it or choose another output folder"
        )

    metadata_path = find_metadata(source_dir, config.metadata)
    metadata_entries = read_metadata(metadata_path) if metadata_path else {}
    # The output may live inside the source folder (even be it): skip what ingest itself writes.
    excluded = dataset_artifacts(out_dir) + ([metadata_path] if metadata_path else [])
    entries = list_sources(source_dir, excluded)
    if not entries:
        raise ValueError(f"no readable images in {source_dir} (0 files seen); add {SUPPORTED_FORMATS_TEXT} files to it")
    readable = (entry.relative for entry in entries if entry.category is None)
    metadata_by_file, unmatched = match_metadata(metadata_entries, readable)

    report = IngestReport(
        source_dir=source_dir,
        out_dir=out_dir,
        config=config,
        metadata_path=metadata_path,
        metadata_rows=len(metadata_entries),
        metadata_unmatched=unmatched,
        escaped_names=[entry.relative for entry in entries if entry.escaped],
    )
    num_shards = config.num_shards or max(1, math.ceil(len(entries) / IMAGES_PER_SHARD))
    token = uuid.uuid4().hex[:12]
    shard_dir = join_path(out_dir, SHARD_DIR)
    tf.io.gfile.makedirs(shard_dir)
    stale = remove_temporaries(out_dir, shard_dir)
    if stale:
        logger.info("removed %d temporary files an interrupted ingest left in %s", stale, out_dir)
    writer = ShardWriter(shard_dir, num_shards, token)
    with StopOnSignals():
        try:
            images = _convert(entries, config, report, metadata_by_file, writer, progress)
            _commit(report, images, writer, num_shards, token, {entry.relative: entry for entry in entries})
        except BaseException:
            writer.discard()
            remove_temporaries(out_dir, shard_dir, token)
            raise
    logger.info("%s", report.summary())
    return report


def _convert(
    entries: Sequence[sources.SourceEntry],
    config: IngestConfig,
    report: IngestReport,
    metadata_by_file: dict[str, dict[str, str | None]],
    writer: ShardWriter,
    progress: bool,
) -> list[dict[str, Any]]:
    """Read, check, frame and write every entry; returns the manifest's image entries."""
    images: list[dict[str, Any]] = []
    kept_by_sha: dict[str, str] = {}
    near = NearDuplicates(config, len(entries))
    for entry in tqdm(entries, desc="ingest", unit="file", disable=not progress):
        report.seen += 1
        if entry.category is not None:
            report.dropped_files.append(DroppedFile(entry.relative, entry.category, entry.reason or entry.category))
            continue
        data = read_entry(entry)
        if isinstance(data, DroppedFile):
            report.dropped_files.append(data)
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in kept_by_sha:
            report.dropped_files.append(
                DroppedFile(entry.relative, CATEGORY_DUPLICATE, "exact duplicate (same sha256)", kept_by_sha[digest], 0)
            )
            continue
        decoded = decode(data, entry.relative, config)
        del data
        if isinstance(decoded, DroppedFile):
            report.dropped_files.append(decoded)
            continue

        image_hash = perceptual_hash(decoded.image)
        thumbnail = fine_thumbnail(decoded.image)
        match = near.nearest(image_hash, thumbnail)
        if match is not None:
            index, distance, pixel_rms = match
            duplicate = pixel_rms <= config.dedupe_pixel_rms
            if near.borderline(pixel_rms):
                report.review_pairs.append(
                    ReviewPair(report.kept_files[index], entry.relative, distance, round(pixel_rms, 4), duplicate)
                )
            if duplicate:
                reason = (
                    f"near duplicate (perceptual hash distance {distance} <= {config.dedupe_threshold}, "
                    f"pixel RMS {pixel_rms:.3f} <= {config.dedupe_pixel_rms})"
                )
                report.dropped_files.append(
                    DroppedFile(entry.relative, CATEGORY_DUPLICATE, reason, report.kept_files[index], distance,
                                round(pixel_rms, 4))
                )
                continue

        try:
            framing = frame_square(decoded.image, config.fit, config.background)
            png = encode_png(render_square(decoded.image, framing, config.image_size))
        except DECODE_ERRORS as error:
            report.dropped_files.append(DroppedFile(entry.relative, CATEGORY_CORRUPT, f"cannot convert: {error}"))
            continue
        if framing.cut:
            report.cut_by_crop += 1
            report.notes.append({"source_path": entry.relative, "note": "the centre crop cuts into the object"})
        if config.fit == "object" and framing.found is None and decoded.image.width != decoded.image.height:
            report.no_background += 1
            report.notes.append(
                {"source_path": entry.relative, "note": "no plain background to find the object on: centre crop"}
            )
        extension = posixpath.splitext(entry.relative)[1].lower()
        if misnamed(extension, decoded.format):
            report.notes.append({"source_path": entry.relative, "note": f"{decoded.format} image named {extension}"})
        image_id = len(report.kept_files)
        writer.write(image_id, encode_example(png, image_id))
        near.add(image_hash, thumbnail)
        kept_by_sha[digest] = entry.relative
        report.kept_files.append(entry.relative)
        images.append(
            {
                "id": image_id,
                "source_path": entry.relative,
                "sha256": digest,
                "original_size": list(decoded.original_size),
                "metadata": dict(metadata_by_file.get(entry.relative) or dict.fromkeys(METADATA_FIELDS)),
            }
        )
    return images


def _commit(
    report: IngestReport,
    images: list[dict[str, Any]],
    writer: ShardWriter,
    num_shards: int,
    token: str,
    entries: dict[str, sources.SourceEntry],
) -> None:
    """Move the new shards into place and write the review sheet, report.json and manifest.json (last)."""
    config, out_dir = report.config, report.out_dir
    used = writer.close()
    if not images:
        counts = report.counts()
        seen_text = ", ".join(
            f"{counts[key]} {words}"
            for key, _, words in sorted(COUNTED, key=lambda item: item[0] != "skipped_not_image")
            if counts[key]
        )
        raise ValueError(
            f"no readable images in {report.source_dir} ({report.seen} files seen: {seen_text}); "
            f"add {SUPPORTED_FORMATS_TEXT} files at least {config.min_size} px on the shorter side"
        )
    if len(used) < num_shards:
        logger.info("only %d images: writing %d shards instead of %d", len(images), len(used), num_shards)

    # First invalidate any old dataset (the manifest goes first, so an interruption leaves no manifest
    # rather than one that points at the wrong shards), then move the new shards into place and write
    # the manifest last.
    manifest_path = join_path(out_dir, MANIFEST_NAME)
    if tf.io.gfile.exists(manifest_path):
        tf.io.gfile.remove(manifest_path)
    shard_dir = join_path(out_dir, SHARD_DIR)
    for name in tf.io.gfile.listdir(shard_dir):
        name = name.rstrip("/")
        if name.startswith("train-") and name.endswith(".tfrecord"):
            tf.io.gfile.remove(join_path(shard_dir, name))
    report.shards = [shard_name(position, len(used)) for position in range(len(used))]
    for position, index in enumerate(used):
        final = join_path(out_dir, *report.shards[position].split("/"))
        tf.io.gfile.rename(writer.temp_path(index), final, overwrite=True)
    writer.writers.clear()
    report.fingerprint = dataset_fingerprint(entry["sha256"] for entry in images)
    report.metadata_matched = sum(1 for entry in images if any(v is not None for v in entry["metadata"].values()))

    sheet_path = join_path(out_dir, REVIEW_SHEET_NAME)
    if report.review_pairs:
        sheet = _review_sheet(report.review_pairs[:REVIEW_SHEET_MAX_PAIRS], entries, config)
        write_atomic(sheet_path, encode_png(sheet), token)
        report.review_sheet = REVIEW_SHEET_NAME
    elif tf.io.gfile.exists(sheet_path):
        tf.io.gfile.remove(sheet_path)  # an older dataset's sheet would describe other pairs

    manifest = {
        "format": DATASET_FORMAT,
        "format_version": DATASET_FORMAT_VERSION,
        "image_size": config.image_size,
        "count": len(images),
        "fingerprint": report.fingerprint,
        "shards": report.shards,
        "images": images,
    }
    write_atomic(join_path(out_dir, REPORT_NAME), json_bytes(report.to_dict()), token)
    write_atomic(manifest_path, json_bytes(manifest), token)


def _review_sheet(
    pairs: Sequence[ReviewPair], entries: dict[str, sources.SourceEntry], config: IngestConfig
) -> Image.Image:
    """The review pairs side by side, decoded again from the source (only these few images)."""

    def preview(relative: str) -> Image.Image:
        data = read_entry(entries[relative])
        decoded = decode(data, relative, config) if isinstance(data, bytes) else data
        return decoded.image if isinstance(decoded, Decoded) else Image.new("RGB", (8, 8), (128, 0, 0))

    rows = []
    for pair in pairs:
        verdict = "dropped" if pair.dropped else "kept both"
        caption = f"hash {pair.distance}, rms {pair.pixel_rms:.3f}: {verdict}"
        rows.append((preview(pair.kept), pair.kept, preview(pair.other), pair.other, caption))
    return review_sheet(rows)
