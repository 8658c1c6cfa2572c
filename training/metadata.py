"""The metadata sidecar (metadata.csv / metadata.json) that names, dates and credits an artist's images."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import posixpath
from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from training.dataset_format import METADATA_FIELDS, is_remote, join_path
from training.sources import read_regular_file

logger = logging.getLogger(__name__)

METADATA_SIDECARS = ("metadata.csv", "metadata.json")
_MAX_METADATA_BYTES = 64 * 2**20


def read_small_file(path: str, max_bytes: int) -> bytes:
    """A local regular file's bytes without blocking on FIFOs (see sources.py), or a remote file's via gfile."""
    if is_remote(path):
        with tf.io.gfile.GFile(path, "rb") as handle:
            return handle.read()
    return read_regular_file(path, max_bytes)


def read_metadata(path: str) -> dict[str, dict[str, str | None]]:
    """Read a CSV or JSON metadata sidecar into {file key: {title, culture, material, source, license}}.

    CSV: a header row with a `file` or `file_name` column. JSON: a list of objects with `file` (or
    `file_name`), or an object keyed by file name. Keys are relative paths or bare file names.
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"metadata file {path} does not exist; fix the path or leave it out")
    try:
        text = read_small_file(path, _MAX_METADATA_BYTES).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"metadata file {path} is not UTF-8 text ({error.reason} at byte {error.start}); "
                         "save it as UTF-8") from None
    except OSError as error:
        raise ValueError(f"metadata file {path} cannot be read: {error}; fix or remove it") from None
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        columns = {name.strip().lower(): name for name in (reader.fieldnames or []) if name}
        key_column = columns.get("file") or columns.get("file_name")
        if key_column is None:
            raise ValueError(
                f"metadata file {path} has no 'file' or 'file_name' column "
                f"(columns: {', '.join(columns) or 'none'}); add a header column naming each image"
            )
        for row in reader:
            normalized = {name.strip().lower(): value for name, value in row.items() if isinstance(name, str)}
            rows.append((row.get(key_column) or "", normalized))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"metadata file {path} is not valid JSON ({error}); fix or remove it") from None
        if isinstance(data, dict):
            for key, value in data.items():
                if not isinstance(value, dict):
                    raise ValueError(f"metadata file {path}: entry {key!r} must be an object with title, culture, ...")
                rows.append((key, {str(name).lower(): item for name, item in value.items()}))
        elif isinstance(data, list):
            for position, value in enumerate(data):
                if not isinstance(value, dict):
                    raise ValueError(f"metadata file {path}: item {position} must be an object")
                normalized = {str(name).lower(): item for name, item in value.items()}
                rows.append((normalized.get("file") or normalized.get("file_name") or "", normalized))
        else:
            raise ValueError(
                f"metadata file {path} must hold a list of objects with 'file' or an object keyed by file name"
            )

    entries: dict[str, dict[str, str | None]] = {}
    for raw_key, values in rows:
        key = _normalize_key(str(raw_key))
        if not key:
            logger.warning("metadata file %s: skipping a row without a file name", path)
            continue
        if key in entries:
            logger.warning("metadata file %s: %s appears more than once; the last row wins", path, key)
        entries[key] = {name: _clean_value(values.get(name)) for name in METADATA_FIELDS}
    return entries


def _normalize_key(key: str) -> str:
    key = key.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key


def _clean_value(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _empty_metadata() -> dict[str, str | None]:
    return dict.fromkeys(METADATA_FIELDS)


def match_metadata(
    entries: dict[str, dict[str, str | None]], relative_paths: Iterable[str]
) -> tuple[dict[str, dict[str, str | None]], list[str]]:
    """Match sidecar keys to files: by relative path first, then by bare file name."""
    matched: dict[str, dict[str, str | None]] = {}
    used: set[str] = set()
    for relative in relative_paths:
        for key in (relative, posixpath.basename(relative)):
            if key in entries:
                matched[relative] = entries[key]
                used.add(key)
                break
    unmatched = sorted(key for key in entries if key not in used)
    return matched, unmatched




def find_metadata(source_dir: str, configured: str | None) -> str | None:
    if configured is not None:
        if not tf.io.gfile.exists(configured):
            raise FileNotFoundError(f"metadata file {configured} does not exist; fix the path or leave it out")
        return configured
    candidates = [join_path(source_dir, name) for name in METADATA_SIDECARS]
    found = [path for path in candidates if tf.io.gfile.exists(path)]
    if len(found) > 1:
        logger.warning("both %s exist; using %s", " and ".join(METADATA_SIDECARS), found[0])
    return found[0] if found else None

