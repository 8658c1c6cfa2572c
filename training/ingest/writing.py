"""Writing a dataset: round-robin shards under temporary names, atomic file writes, and clean interruption."""

from __future__ import annotations

import io
import json
import signal
from typing import Any

import tensorflow as tf
from PIL import Image

from training.dataset_format import MANIFEST_NAME, REPORT_NAME, REVIEW_SHEET_NAME, join_path
from training.ingest.config import IngestInterrupted
from training.signals import HandledSignals


class ShardWriter:
    """Round-robin TFRecord writers under temporary names, opened only when they receive an example."""

    def __init__(self, shard_dir: str, num_shards: int, token: str):
        self.shard_dir = shard_dir
        self.num_shards = num_shards
        self.token = token
        self.writers: dict[int, tf.io.TFRecordWriter] = {}

    def temp_path(self, index: int) -> str:
        return join_path(self.shard_dir, f".tmp-{self.token}-{index:05d}.tfrecord")

    def write(self, image_id: int, record: bytes) -> None:
        index = image_id % self.num_shards
        if index not in self.writers:
            self.writers[index] = tf.io.TFRecordWriter(self.temp_path(index))
        self.writers[index].write(record)

    def close(self) -> list[int]:
        for writer in self.writers.values():
            writer.close()
        return sorted(self.writers)

    def discard(self) -> None:
        for index in self.close():
            path = self.temp_path(index)
            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
        self.writers.clear()


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_atomic(path: str, payload: bytes, token: str) -> None:
    """Write `payload` to `path` under a temporary name, then rename it into place.

    Not models.files.write_bytes_atomic: a dataset may live in a `gs://` bucket, which only tf.io.gfile
    reaches, and the temporary carries this run's token so `remove_temporaries` can sweep what an interrupted
    run left (in the output folder, beside the shards).
    """
    temp = f"{path}.tmp-{token}"
    with tf.io.gfile.GFile(temp, "wb") as handle:
        handle.write(payload)
    tf.io.gfile.rename(temp, path, overwrite=True)


def json_bytes(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def remove_temporaries(out_dir: str, shard_dir: str, token: str | None = None) -> int:
    """Remove ingest's temporary files from out_dir: this run's (token) or, with None, any run's."""
    marker = f".tmp-{token}" if token else ".tmp-"
    prefixes = {shard_dir: (marker,), out_dir: tuple(f"{name}{marker}" for name in (MANIFEST_NAME, REPORT_NAME,
                                                                                   REVIEW_SHEET_NAME))}
    removed = 0
    for folder, starts in prefixes.items():
        if not tf.io.gfile.isdir(folder):
            continue
        for name in tf.io.gfile.listdir(folder):
            if name.rstrip("/").startswith(starts):
                tf.io.gfile.remove(join_path(folder, name.rstrip("/")))
                removed += 1
    return removed


class StopOnSignals(HandledSignals):
    """SIGINT, SIGTERM and SIGHUP raise IngestInterrupted in the main thread, so the temporary files are
    removed on the way out; further signals are ignored while that happens."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

    def handle(self, signum, frame):
        for other in self.previous:
            signal.signal(other, signal.SIG_IGN)
        raise IngestInterrupted(signum)
