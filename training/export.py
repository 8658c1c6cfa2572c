"""Export trained networks from a run folder into a model bundle: each as a Keras model and its LiteRT conversion."""

from __future__ import annotations

import logging
from pathlib import Path

from models import bundle, dcgan
from training import data, litert
from training.checkpoints import (  # noqa: F401 (re-exported: callers import these from training.export)
    checkpoint_at,
    checkpoint_step,
    latest_checkpoint,
    read_run_config,
    restore_generator,
    restore_upscaler,
)
from training.evaluate import evaluate_upscaler

log = logging.getLogger(__name__)


def dataset_section(data_dir: str) -> dict:
    manifest = data.load_manifest(data_dir)
    return {"fingerprint": manifest["fingerprint"], "count": manifest["count"], "image_size": manifest["image_size"]}


def export_generator(run_dir: str | Path, bundle_dir: str | Path, step: int | None = None) -> dict:
    """Write the run's generator (its latest checkpoint, or the one saved at `step`) into the bundle."""
    generator, config, step = restore_generator(run_dir, step)
    saved = bundle.save_model(bundle_dir, "generator.keras", generator)
    info = {
        "file": "generator.keras",
        "architecture": "dcgan",
        "upsampling": config.get("upsampling", "transposed"),
        "rgb_upsampling": dcgan.rgb_stage_upsampling(config.get("upsampling", "transposed"),
                                                     config.get("rgb_upsampling")),
        "weights": "exponential moving average" if config.get("ema_decay") else "final",
        "batch_norm_statistics": "standing: re-estimated for the averaged weights" if config.get("ema_decay")
        else "moving averages from training",
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


def export_upscaler(run_dir: str | Path, bundle_dir: str | Path, data_dir: str | None = None) -> dict:
    """Write a run's upscaler into a bundle and record it, with held-out metrics when the dataset is reachable.

    input_size is the bundle generator's resolution when the bundle has a generator (that is what the upscaler
    will see), else the run's LR crop size.
    """
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
