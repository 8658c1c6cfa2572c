"""What every training run shares: the run folder, its resolved config, stop signals, sample images (the loop
that uses them is training.controller)."""

from __future__ import annotations

import io
import json
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.files import json_bytes, write_bytes_atomic
from models.grid import image_grid  # noqa: F401  (the trainers' sample grids: one grid for the project)
from training.options import from_flat_dict, to_flat_dict
from training.signals import HandledSignals

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
# Fields a resumed run may change: how long it runs and how often it reports. Everything else is the run.
RESUMABLE_OVERRIDES = ("steps", "checkpoint_every", "sample_every", "log_every")


class TrainingInterrupted(Exception):
    """Raised after a checkpoint was saved because SIGINT or SIGTERM asked the run to stop."""

    def __init__(self, step: int, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved")
        self.step = step
        self.signum = signum


def config_differences(stored: dict, wanted: dict, ignore=RESUMABLE_OVERRIDES) -> list[str]:
    keys = sorted((set(stored) | set(wanted)) - set(ignore))
    return [f"{key}: {stored.get(key)!r} -> {wanted.get(key)!r}" for key in keys if stored.get(key) != wanted.get(key)]


def is_remote(path: str | Path) -> bool:
    return "://" in str(path)


def run_path(run_dir: str | Path, *parts: str) -> str | Path:
    """A path in a run folder: a Path on local disk, a URL string on gs:// (pathlib would fold its '//')."""
    if is_remote(run_dir):
        return "/".join([str(run_dir).rstrip("/"), *parts])
    return Path(run_dir, *parts)


def read_text(path: str | Path) -> str:
    if is_remote(path):
        import tensorflow as tf

        with tf.io.gfile.GFile(str(path), "r") as stream:
            return stream.read()
    return Path(path).read_text(encoding="utf-8")


def is_file(path: str | Path) -> bool:
    if is_remote(path):
        import tensorflow as tf

        return tf.io.gfile.exists(str(path)) and not tf.io.gfile.isdir(str(path))
    return Path(path).is_file()


def write_bytes(path: str | Path, payload: bytes) -> None:
    """Write a whole file: renamed into place locally; on object stores one upload is already all-or-nothing."""
    if is_remote(path):
        import tensorflow as tf

        tf.io.gfile.makedirs(str(path).rsplit("/", 1)[0])
        if tf.io.gfile.exists(str(path)):
            tf.io.gfile.remove(str(path))  # not every file system truncates on overwrite (TensorFlow's ram://)
        with tf.io.gfile.GFile(str(path), "wb") as stream:
            stream.write(payload)
        return
    write_bytes_atomic(Path(path), payload)


def has_checkpoint(run_dir: str | Path) -> bool:
    return is_file(run_path(run_dir, CHECKPOINT_DIR, "checkpoint"))


def prepare_run_dir(
    run_dir: str | Path, config: Any, resume: bool, explicit: set[str] = frozenset(), write: bool = True
) -> Any:
    """Create or reopen a run folder and return the config the run must use.

    A fresh run refuses a folder that already holds a run (nothing already saved is touched). A resumed
    run takes the stored config, overriding only the fields in RESUMABLE_OVERRIDES the user gave explicitly.
    With `write=False` (a worker that is not the chief) the folder is only read. The folder may be a gs:// URL.
    """
    wanted = to_flat_dict(config)
    stored_path = run_path(run_dir, CONFIG_FILE)
    if resume:
        if not is_file(stored_path) or not has_checkpoint(run_dir):
            raise ValueError(f"{run_dir} holds no checkpoint to resume; drop --resume to start a new run there")
        stored = json.loads(read_text(stored_path))
        overrides = {key: wanted[key] for key in RESUMABLE_OVERRIDES if key in explicit and key in stored}
        config = from_flat_dict(type(config), {**stored, **overrides})
    elif is_file(stored_path):
        stored = json.loads(read_text(stored_path))
        differences = config_differences(stored, wanted)
        if differences:
            raise ValueError(
                f"{run_dir} already holds a run with a different config ({'; '.join(differences[:3])}); "
                "choose a new --out, or pass --resume to continue that run"
            )
        if has_checkpoint(run_dir):
            raise ValueError(f"{run_dir} already holds a run with checkpoints; pass --resume to continue it")
    if write:
        write_config(run_dir, config)
    return config


def write_config(run_dir: str | Path, config: Any) -> None:
    """The run's resolved config as config.json (flat keys: see training.options)."""
    write_bytes(run_path(run_dir, CONFIG_FILE), json_bytes(to_flat_dict(config)))


class StopSignals(HandledSignals):
    """Turn SIGINT/SIGTERM into a flag the loop checks, so it can checkpoint before exiting."""

    def __init__(self):
        super().__init__()
        self.signum: int | None = None

    def handle(self, signum, frame):
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None


def to_uint8(images) -> np.ndarray:
    """Float images in [-1, 1] -> uint8 in [0, 255], rounding rather than truncating."""
    array = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((array + 1.0) * 127.5), 0, 255).astype(np.uint8)


def save_png(array: np.ndarray, path: str | Path) -> str | Path:
    encoded = io.BytesIO()
    Image.fromarray(array).save(encoded, format="PNG")
    write_bytes(path, encoded.getvalue())
    return path


def publish_samples(run_dir: str | Path, step: int, image: np.ndarray, writer) -> str | Path:
    """A run's sample image at a step: a PNG under run/samples/ and an image in TensorBoard."""
    import tensorflow as tf

    path = save_png(image, run_path(run_dir, "samples", f"step_{step:08d}.png"))
    with writer.as_default():
        tf.summary.image("samples", image[None], step=step)
    return path


def progress_kwargs() -> dict:
    """tqdm settings: lively on a terminal, a line every 30 s in a log file."""
    interactive = sys.stderr.isatty()
    return {"dynamic_ncols": True, "mininterval": 0.5 if interactive else 30.0, "file": sys.stderr}
