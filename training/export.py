"""Export trained networks from a run folder into a model bundle: each as a Keras model and its LiteRT conversion."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import tensorflow as tf

from models import bundle, dcgan
from training import data
from training.runs import CHECKPOINT_DIR, CONFIG_FILE, is_file, read_text, run_path
from training.srgan import build_upscaler

log = logging.getLogger(__name__)


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
        raise FileNotFoundError(f"{run_dir} holds no checkpoint at step {step}")
    return str(path)


def checkpoint_step(checkpoint: str) -> int:
    return int(checkpoint.rsplit("-", 1)[-1])


def restore_generator(run_dir: str | Path, step: int | None = None):
    """Rebuild the generator a DCGAN run describes and load its latest weights (or those saved at `step`)."""
    config = read_run_config(run_dir)
    generator = dcgan.generator(
        config["resolution"], config["latent_dim"], config["width_multiplier"], config.get("upsampling", "transposed")
    )
    checkpoint = latest_checkpoint(run_dir) if step is None else checkpoint_at(run_dir, step)
    step = tf.Variable(0, dtype=tf.int64)
    # With a weight average in the run, that average is the generator to show (see DCGANTrainer).
    role = "average_generator" if config.get("ema_decay") else "generator"
    tf.train.Checkpoint(**{role: generator}, step=step).restore(checkpoint).expect_partial()
    return generator, config, int(step.numpy())


def dataset_section(data_dir: str) -> dict:
    manifest = data.load_manifest(data_dir)
    return {"fingerprint": manifest["fingerprint"], "count": manifest["count"], "image_size": manifest["image_size"]}


def export_generator(run_dir: str | Path, bundle_dir: str | Path) -> dict:
    from training import litert

    generator, config, step = restore_generator(run_dir)
    saved = bundle.save_model(bundle_dir, "generator.keras", generator)
    info = {
        "file": "generator.keras",
        "architecture": "dcgan",
        "upsampling": config.get("upsampling", "transposed"),
        "weights": "exponential moving average" if config.get("ema_decay") else "final",
        "resolution": config["resolution"],
        "latent_dim": config["latent_dim"],
        "width_multiplier": config["width_multiplier"],
        "steps": step,
        "training_config": config,
        "litert": litert.convert_generator(bundle_dir, generator, saved),
    }
    bundle.update_manifest(bundle_dir, "generator", info)
    try:
        manifest = bundle.update_manifest(bundle_dir, "dataset", dataset_section(config["data"]))
    except FileNotFoundError:
        log.warning("dataset %s is not reachable; the bundle's dataset fingerprint is left as it was", config["data"])
        manifest = bundle.read_manifest(bundle_dir)
    log.info("exported generator at step %d to %s", step, bundle_dir)
    return manifest


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


def export_upscaler(run_dir: str | Path, bundle_dir: str | Path, data_dir: str | None = None) -> dict:
    """Write a run's upscaler into a bundle and record it, with held-out metrics when the dataset is reachable.

    input_size is the bundle generator's resolution when the bundle has a generator (that is what the upscaler
    will see), else the run's LR crop size.
    """
    from training import litert
    from training.evaluate import evaluate_upscaler

    upscaler, config, step = restore_upscaler(run_dir)
    manifest_path = Path(bundle_dir) / bundle.MANIFEST
    existing = bundle.read_manifest(bundle_dir) if manifest_path.is_file() else {}
    generator = existing.get("generator")
    input_size = int(generator["resolution"]) if generator else config["hr_size"] // config["scale"]
    output_size = input_size * config["scale"]
    explicit_data = data_dir is not None
    data_dir = data_dir or config["data"]
    try:
        metrics = evaluate_upscaler(upscaler, data_dir, scale=config["scale"], output_size=output_size,
                                    count=config["holdout"] or 32)
        # False when the run held nothing out and the numbers come from training images.
        metrics["held_out"] = config["holdout"] >= metrics["count"]
    except FileNotFoundError:
        if explicit_data:
            raise
        log.warning("dataset %s is not reachable; the upscaler is exported without metrics", data_dir)
        metrics = {}
    saved = bundle.save_model(bundle_dir, "upscaler.keras", upscaler)
    info = {
        "file": "upscaler.keras",
        "architecture": config["architecture"],
        "scale": config["scale"],
        "input_size": input_size,
        "output_size": output_size,
        "steps": step,
        "training_config": config,
        "metrics": metrics,
        "litert": litert.convert_upscaler(bundle_dir, upscaler, input_size, saved),
    }
    manifest = bundle.update_manifest(bundle_dir, "upscaler", info)
    if "dataset" not in manifest:
        try:
            manifest = bundle.update_manifest(bundle_dir, "dataset", dataset_section(config["data"]))
        except FileNotFoundError:
            log.warning("dataset %s is not reachable; the bundle records no dataset fingerprint", config["data"])
    log.info("exported upscaler at step %d to %s", step, bundle_dir)
    return manifest
