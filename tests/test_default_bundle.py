"""The bundled default model: loads in safe mode, renders, is diverse, and its index finds its own collection."""

import json
from pathlib import Path

import numpy as np
import pytest

from installation.latent import keyframe
from installation.provenance import open_captioner
from models.bundle import load_bundle
from models.features import load_thumbnails
from models.render import Renderer
from studio.model_card import measure_diversity
from training import synthetic
from training.quality import display_target_misses, target_misses

DEFAULT = Path(__file__).resolve().parents[1] / "assets" / "models" / "default"


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(DEFAULT)


@pytest.fixture(scope="module")
def renderer(bundle):
    return Renderer(bundle)


def test_manifest_is_complete_and_consistent_with_the_files(bundle):
    manifest = bundle.manifest
    for section in ("generator", "upscaler", "index", "dataset"):
        assert section in manifest, section
    for section in ("generator", "upscaler"):
        assert (DEFAULT / manifest[section]["file"]).is_file()
    generator, upscaler, index = manifest["generator"], manifest["upscaler"], manifest["index"]
    # The 512 px flagship (issue 15): a 128 px generator and the x4 upscaler.
    assert generator["resolution"] == 128 and generator["latent_dim"] == 100 and generator["steps"] > 0
    assert upscaler["scale"] == 4 and upscaler["input_size"] == 128 and upscaler["output_size"] == 512
    assert upscaler["metrics"]["psnr_y"] > upscaler["metrics"]["bicubic_psnr_y"]
    assert index["dataset"]["fingerprint"] == manifest["dataset"]["fingerprint"]
    early = np.load(DEFAULT / "index" / "early.npy", mmap_mode="r")
    late = np.load(DEFAULT / "index" / "late.npy", mmap_mode="r")
    assert early.dtype == late.dtype == np.float16
    assert len(early) == len(late) == index["count"] == manifest["dataset"]["count"]
    records = json.loads((DEFAULT / "index" / "records.json").read_text())
    assert len(records) == index["count"]
    # Thumbnails stored at least as large as the captions draw them on a 1080-line screen (96 px and up).
    thumbnails = load_thumbnails(DEFAULT / "index", index["files"])
    assert index["thumb_size"] >= 112 and len(thumbnails) == index["count"]
    assert thumbnails[[0, index["count"] - 1]].shape == (2, index["thumb_size"], index["thumb_size"], 3)
    assert (DEFAULT / "MODEL_CARD.md").is_file() and (DEFAULT / "sample_grid.png").is_file()
    assert (DEFAULT / "MODEL_CARD.md").read_text().splitlines()[0] == "# Model card: default"
    size = sum(path.stat().st_size for path in DEFAULT.rglob("*") if path.is_file())
    assert size <= 40 * 2**20, f"bundle is {size / 2**20:.1f} MB"  # the flagship's budget (issue 15)


@pytest.mark.xfail(strict=True, reason="issue 14 is open: the bundled default's generator misses the 128 px "
                   "log-spectral target (0.107 > 0.07); drop this mark when a bundle that meets both is published")
def test_its_recorded_quality_meets_the_generator_and_display_targets(bundle):
    """The figures the model card quotes, read from the manifest: issue 14's targets at 128 px and at 512 px."""
    quality = bundle.manifest["quality"]
    generator, display = quality["generator"], quality["display"]
    assert generator["size"] == 128 and display["size"] == 512 and display["display"]
    assert target_misses(generator["generated"]) == [], generator["generated"]
    assert display_target_misses(display) == [], display["generated"]
    upscaler = bundle.manifest["upscaler"]["metrics"]
    assert upscaler["psnr_y"] > upscaler["bicubic_psnr_y"]


def test_it_renders_through_the_real_render_path(renderer):
    latents = np.stack([keyframe(0, index, 100) for index in range(4)])
    frames = renderer.render(latents)
    assert frames.shape == (4, 512, 512, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, renderer.render(latents))
    assert frames.std() > 20  # a picture, not a flat field


@pytest.fixture(scope="module")
def diversity(renderer):
    return measure_diversity(renderer, count=64)


def test_samples_are_diverse_and_never_near_identical(diversity):
    # Measured on the committed bundle (MODEL_CARD.md): mean pairwise RMS 0.242 vs 0.013 for near-duplicates
    # (18.7x); the closest of the 2016 pairs is at 0.054, over four times the near-duplicate distance.
    assert diversity.ratio > 10, diversity
    assert diversity.close_pairs == 0, diversity
    assert diversity.min_pairwise > 2 * diversity.near_duplicate, diversity


def test_the_index_finds_its_own_collection(bundle):
    captioner = open_captioner(DEFAULT, bundle.manifest)
    records = json.loads((DEFAULT / "index" / "records.json").read_text())
    hits = 0
    for row in range(0, len(records), max(1, len(records) // 20)):
        record = records[row] if isinstance(records, list) else records[str(row)]
        number = int(Path(record["file"]).stem.split("_")[-1])
        image, metadata = synthetic.render_mask(synthetic.image_seed(1, number), 256)
        caption = captioner.caption_for(image, "late")
        hits += caption.best.id == record["id"]
        assert caption.title == metadata["title"] or caption.best.id != record["id"]
    assert hits >= 19, f"{hits} of 20 regenerated collection images retrieved themselves first"
