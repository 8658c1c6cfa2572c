"""Shared test set-up: quiet TensorFlow, headless pygame, two logical CPUs for MirroredStrategy tests."""

import os

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
