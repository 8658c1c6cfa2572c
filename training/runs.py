"""What every training run shares: the run folder, its resolved config, stop signals, sample images."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.bundle import write_json_atomic
from models.grid import image_grid  # noqa: F401  (the trainers' sample grids: one grid for the project)

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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_bytes(payload)
    temporary.replace(path)


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
    wanted = dataclasses.asdict(config)
    stored_path = run_path(run_dir, CONFIG_FILE)
    if resume:
        if not is_file(stored_path) or not has_checkpoint(run_dir):
            raise ValueError(f"{run_dir} holds no checkpoint to resume; drop --resume to start a new run there")
        stored = json.loads(read_text(stored_path))
        overrides = {key: wanted[key] for key in RESUMABLE_OVERRIDES if key in explicit and key in stored}
        config = dataclasses.replace(config, **{**stored, **overrides})
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
    if write and is_remote(run_dir):
        write_bytes(stored_path, (json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True) + "\n").encode())
    elif write:
        write_json_atomic(stored_path, dataclasses.asdict(config))
    return config


class StopSignals:
    """Turn SIGINT/SIGTERM into a flag the loop checks, so it can checkpoint before exiting."""

    def __init__(self):
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def handle(self, signum, frame):
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


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


def crossed(previous: int, current: int, every: int) -> bool:
    """True when a multiple of `every` lies in (previous, current]."""
    return current // every > previous // every


class LoopKeeper:
    """The bookkeeping every training loop does around its chunks of steps: the progress bar, the finite-loss
    check, TensorBoard scalars, sample images, checkpoints, and the checkpoint-then-stop on SIGINT/SIGTERM.

    `trainer` has `config` (log_every, sample_every, checkpoint_every), `manager` (a CheckpointManager),
    `run_dir` and `save_samples(step, writer)`. `agree(requested) -> bool` turns this process's stop request
    into the decision all workers of a cluster share (see training.cluster.StopAgreement); every decision that
    leads to a checkpoint save is the same on every worker, because a save is a collective there.
    """

    def __init__(self, trainer, name: str, total: int, start: int, writer, stop: StopSignals, fix_hint: str,
                 agree=None):
        from tqdm import tqdm

        self.trainer, self.total, self.writer, self.stop, self.fix_hint = trainer, total, writer, stop, fix_hint
        self.agree = agree or (lambda requested: requested)
        self.bar = tqdm(total=total, initial=min(start, total), unit="step", desc=name, **progress_kwargs())

    def after(self, previous: int, step: int, metrics: dict, losses: dict) -> None:
        import numpy as np
        import tensorflow as tf

        config, manager = self.trainer.config, self.trainer.manager
        if not all(np.isfinite(value) for value in losses.values()):
            self.bar.close()
            raise FloatingPointError(
                f"losses became non-finite at step {step} ({losses}); resume from the last checkpoint {self.fix_hint}"
            )
        self.bar.update(step - previous)
        self.bar.set_postfix({name: f"{value:.3f}" for name, value in losses.items()}, refresh=False)
        if crossed(previous, step, config.log_every) or step == self.total:
            for name, value in metrics.items():
                tf.summary.scalar(name, value, step=step)
        if crossed(previous, step, config.sample_every):
            self.trainer.save_samples(step, self.writer)
        if crossed(previous, step, config.checkpoint_every):
            manager.save(checkpoint_number=step)
        if self.agree(self.stop.requested):
            manager.save(checkpoint_number=step)
            self.bar.close()
            # A worker that was not signalled itself stops because another one was (preemption of one host).
            raise TrainingInterrupted(step, self.stop.signum or signal.SIGTERM)

    def finish(self, step: int) -> None:
        """A final checkpoint (unless the last chunk just wrote it) and samples at the last step."""
        manager = self.trainer.manager
        if manager.latest_checkpoint != os.path.join(str(manager.directory), f"ckpt-{step}"):
            manager.save(checkpoint_number=step)
        self.trainer.save_samples(step, self.writer)
        self.bar.close()
        self.writer.flush()
