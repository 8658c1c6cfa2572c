"""Shared test set-up: quiet TensorFlow, headless pygame, two logical CPUs for MirroredStrategy tests."""

import os
import time

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def pytest_configure(config):
    """Two logical CPU devices, set before TensorFlow initialises, so MirroredStrategy replicates in tests."""
    from training.strategy import use_logical_cpus

    use_logical_cpus(2)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """48 procedural masks ingested at 64 px through the real pipeline: the dataset most tests train on."""
    from training import data, synthetic

    root = tmp_path_factory.mktemp("tiny_dataset")
    synthetic.generate_collection(root / "images", count=48, size=64, seed=7, progress=False)
    data.ingest(root / "images", root / "dataset", data.IngestConfig(image_size=64, min_size=32), progress=False)
    return root / "dataset"


def make_bundle(path, resolution=64, with_upscaler=True):
    """A tiny untrained bundle written through the real bundle code (generator + real-time upscaler)."""
    from models import bundle, dcgan, srgan

    generator = dcgan.generator(resolution, width_multiplier=0.0625)
    bundle.save_model(path, "generator.keras", generator)
    bundle.update_manifest(path, "generator", {"file": "generator.keras", "architecture": "dcgan",
                                               "resolution": resolution, "latent_dim": 100,
                                               "width_multiplier": 0.0625, "steps": 0})
    if with_upscaler:
        upscaler = srgan.realtime_upscaler(num_filters=8, num_layers=2)
        bundle.save_model(path, "upscaler.keras", upscaler)
        bundle.update_manifest(path, "upscaler", {"file": "upscaler.keras", "architecture": "realtime", "scale": 4,
                                                  "input_size": resolution, "output_size": resolution * 4})
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def wait_until(predicate, timeout: float = 2.0, interval: float = 0.005) -> bool:
    """Poll `predicate` until it holds or `timeout` passes; threads and sockets under test need a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
