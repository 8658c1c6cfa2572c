"""Atomic file writes: a reader (a kiosk, a resumed run, a second process) never sees half a file.

Everything that publishes a file for others to read writes it under a temporary name in the same folder and
renames it into place; a crash leaves the old file, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

PUBLISHED_MODE = 0o644  # mkstemp makes 0600; a kiosk may read what a curator wrote as another user


def write_bytes_atomic(path: Path, content: bytes, mode: int = PUBLISHED_MODE) -> None:
    """Write `content` to `path` through a temporary file in the same folder and one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as indented, key-sorted JSON, atomically."""
    write_bytes_atomic(path, json_bytes(data))
