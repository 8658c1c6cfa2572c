"""Rebuild a run's networks from its config.json and checkpoints: what export, evaluation and quality read."""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from models import dcgan
from training.runs import CHECKPOINT_DIR, CONFIG_FILE, is_file, read_text, run_path
from training.srgan.config import build_upscaler
from training.standing_statistics import standing_statistics


def read_run_config(run_dir: str | Path) -> dict:
    path = run_path(run_dir, CONFIG_FILE)
    if not is_file(path):
        raise FileNotFoundError(f"{path} is missing: {run_dir} is not a training run folder")
    return json.loads(read_text(path))


def latest_checkpoint(run_dir: str | Path) -> str:
    checkpoint = tf.train.latest_checkpoint(str(run_path(run_dir, CHECKPOINT_DIR)))
    if checkpoint is None:
        raise FileNotFoundError(f"{run_path(run_dir, CHECKPOINT_DIR)} holds no checkpoint; train first")
    return checkpoint


def checkpoint_at(run_dir: str | Path, step: int) -> str:
    path = Path(run_dir) / CHECKPOINT_DIR / f"ckpt-{step}"
    if not Path(f"{path}.index").is_file():
        kept = sorted(checkpoint_step(index.stem) for index in path.parent.glob("ckpt-*.index"))
        listed = ", ".join(map(str, kept[:12])) + (", ..." if len(kept) > 12 else "") if kept else "none"
        raise FileNotFoundError(f"{run_dir} holds no checkpoint at step {step} (it keeps: {listed})")
    return str(path)


def checkpoint_step(checkpoint: str) -> int:
    return int(checkpoint.rsplit("-", 1)[-1])


def restore_generator(run_dir: str | Path, step: int | None = None, weights: str = "exported"):
    """Rebuild the generator a DCGAN run describes and load its latest weights (or those saved at `step`).

    `weights` "exported": the averaged generator with standing statistics where the run keeps an average (what
    export writes), else the raw one; "raw": the raw generator as trained (to measure what the average adds).
    """
    if weights not in ("exported", "raw"):
        raise ValueError(f"weights {weights!r} is not one of exported, raw")
    config = read_run_config(run_dir)
    generator = dcgan.generator_from_config(config)
    checkpoint = latest_checkpoint(run_dir) if step is None else checkpoint_at(run_dir, step)
    step = tf.Variable(0, dtype=tf.int64)
    # With a weight average in the run, that average is the generator to show (see DCGANTrainer).
    averaged = bool(config.get("ema_decay")) and weights == "exported"
    role = "average_generator" if averaged else "generator"
    tf.train.Checkpoint(**{role: generator}, step=step).restore(checkpoint).expect_partial()
    if averaged:
        # Its batch-norm statistics were averaged from the raw weights' ones: re-estimate them for these weights.
        standing_statistics(generator, config["latent_dim"], config["batch_size"], seed=config.get("seed", 0))
    return generator, config, int(step.numpy())


def restore_upscaler(run_dir: str | Path):
    """Rebuild the upscaler an SRGAN run describes and load its latest weights."""
    config = read_run_config(run_dir)
    if "hr_size" not in config:
        raise ValueError(f"{run_dir} is not an SRGAN run (its config has no hr_size); pass the upscaler's run folder")
    upscaler = build_upscaler(config)
    checkpoint = latest_checkpoint(run_dir)
    step = tf.Variable(0, dtype=tf.int64)
    # A run that keeps a weight average exports the average (what its sample strips show).
    key = "ema_upscaler" if config.get("ema_decay", 0) else "upscaler"
    tf.train.Checkpoint(step=step, **{key: upscaler}).restore(checkpoint).expect_partial()
    return upscaler, config, int(step.numpy())
