"""The quality command's figures on cases whose answer is known."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from training import quality

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """160 procedural masks at 64 px, as uint8 NHWC."""
    from training import synthetic

    folder = synthetic.generate_collection(tmp_path_factory.mktemp("quality") / "masks", count=160, size=64,
                                           seed=11, progress=False)
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("*.png"))])


def test_two_halves_of_one_collection_score_as_the_yardstick(collection):
    report = quality.quality_report(collection[:80], collection[80:], seed=3)
    generated, baseline = report["generated"], report["real_vs_real"]
    assert report["collection_images"] == 80 and report["size"] == 64
    assert generated["log_spectral_distance"] < 0.1
    assert 0.7 < generated["checkerboard_ratio"] < 1.4
    assert 0.8 < generated["high_frequency_ratio"] < 1.25
    assert generated["swd"] < 2.0 * baseline["swd"] + 5
    assert generated["near_identical_pairs"] == 0
    assert set(generated["swd_per_level"]) == {"64", "32", "16"}
    assert max(abs(value) for value in generated["spectrum_bands"].values()) < 0.15


def test_a_blurred_copy_loses_its_high_frequencies(collection):
    blurred = np.stack([cv2.GaussianBlur(image, (0, 0), 1.5) for image in collection[:80]])
    figures = quality.quality_report(blurred, collection[80:], seed=3)["generated"]
    assert figures["high_frequency_ratio"] < 0.3
    assert figures["log_spectral_distance"] > 0.3
    bands = list(figures["spectrum_bands"].values())
    assert len(bands) == 6 and abs(bands[0]) < 0.15 and bands[-1] < bands[2] < -0.3  # the loss grows with frequency


def test_an_injected_period_two_pattern_raises_the_checkerboard_ratio(collection):
    rows, columns = np.indices((64, 64))
    pattern = np.where((rows + columns) % 2 == 0, 6, -6)[..., None]
    hatched = np.clip(collection[:80].astype(int) + pattern, 0, 255).astype(np.uint8)
    figures = quality.quality_report(hatched, collection[80:], seed=3)["generated"]
    assert figures["checkerboard_ratio"] > 1.5


def test_copies_count_as_memorised_and_repeats_as_near_identical(collection):
    copies = np.concatenate([collection[:40], collection[:40]])  # every image twice
    report = quality.quality_report(copies, collection, seed=3)
    assert report["generated"]["near_identical_pairs"] >= 40
    assert report["generated"]["memorisation_share"] > 0.2
    assert report["real_vs_real"]["memorisation_share"] < 0.2


def test_the_same_seed_gives_the_same_numbers_and_another_seed_other_projections(collection):
    first = quality.quality_report(collection[:80], collection[80:], seed=5)
    again = quality.quality_report(collection[:80], collection[80:], seed=5)
    other = quality.quality_report(collection[:80], collection[80:], seed=6)
    assert first == again
    assert first["generated"]["swd"] != other["generated"]["swd"]
    # The table lists the pyramid levels finest first, also from a report read back from JSON.
    table = quality.format_table(json.loads(json.dumps(first, sort_keys=True)))
    bands = table[-1].split(" | ")
    assert bands[0].startswith("| spectrum, log10 generated/real by band of Nyquist (0-0.125, 0.125-0.25,")
    assert bands[1] == " / ".join(f"{value:+.2f}" for value in first["generated"]["spectrum_bands"].values())
    row = table[-2]
    sizes = [int(part.split(":")[0]) for part in row.split(" | ")[1].split(" / ")]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) > 2


def test_the_spectrum_summed_a_few_images_at_a_time_is_the_whole_batch_spectrum(collection):
    """power_spectra works in chunks to bound its memory; the chunks change nothing but the rounding."""
    whole = quality.power_spectra(collection, chunk=len(collection))
    assert whole.shape == collection.shape[1:3]
    for chunk in (1, 7, 64):
        np.testing.assert_allclose(quality.power_spectra(collection, chunk=chunk), whole, rtol=1e-9, atol=0)


def test_patches_sampled_image_by_image_are_those_of_the_whole_pyramids(collection):
    """swd_figures samples each image's pyramid and drops it (bounded memory); the patches are exactly those the
    same positions pick from the stacked pyramids of the whole batch, at every level."""
    rng = np.random.default_rng(4)
    images = collection[:12]
    sizes = quality.pyramid_sizes(*images.shape[1:3])
    positions = [quality.patch_positions(len(images), height, width, rng) for height, width in sizes]
    pyramids = [quality.image_pyramid(image) for image in images]
    assert [level.shape[:2] for level in pyramids[0]] == sizes and len(sizes) > 2
    for level_index, (patches, (tops, lefts, size)) in enumerate(
            zip(quality.pyramid_patches(images, positions), positions, strict=True)):
        whole = np.stack([pyramid[level_index] for pyramid in pyramids])
        offsets = np.arange(size)
        expected = whole[np.arange(len(images))[:, None, None, None], tops[..., None, None] + offsets[:, None],
                         lefts[..., None, None] + offsets[None, :]].reshape(len(patches), -1)
        np.testing.assert_array_equal(patches, expected)


def test_the_command_measures_a_bundle_and_records_it(tiny_dataset, tmp_path):
    from conftest import make_bundle

    bundle_dir = make_bundle(tmp_path / "bundle")
    report_path = tmp_path / "quality.json"
    result = subprocess.run(
        [sys.executable, "-m", "training", "quality", "--model", str(bundle_dir), "--data", str(tiny_dataset),
         "--samples", "32", "--collection", "48", "--out", str(report_path), "--record"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| checkerboard ratio" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["samples"] == 32 and report["collection_images"] == 48 and report["reference_images"] == 24
    assert "against 24 collection images (the other 24 of 48 are the yardstick" in result.stdout
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["quality"]["generator"]["generated"] == report["generated"]
    bad = subprocess.run([sys.executable, "-m", "training", "quality", "--run", str(tmp_path), "--record"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "needs --model" in bad.stderr and "Traceback" not in bad.stderr


def test_display_size_figures_stand_beside_bicubic_of_the_same_frames(tiny_dataset, tmp_path):
    """At display size the upscaler is judged against what bicubic makes of the very same generator frames."""
    from conftest import make_bundle

    bundle_dir = make_bundle(tmp_path / "bundle")  # an untrained upscaler: plain bilinear enlargement
    report_path = tmp_path / "display.json"
    result = subprocess.run(
        [sys.executable, "-m", "training", "quality", "--model", str(bundle_dir), "--data", str(tiny_dataset),
         "--samples", "16", "--collection", "16", "--display", "--out", str(report_path), "--record"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| figure | generated | same frames, bicubic | real vs real |" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["size"] == 256 and report["display"] is True
    upscaled, bicubic = report["generated"], report["bicubic"]
    # Two smooth enlargements of the same frames: alike, and neither holds the collection's fine detail.
    difference = abs(upscaled["high_frequency_ratio"] - bicubic["high_frequency_ratio"])
    assert difference < 0.5 * bicubic["high_frequency_ratio"] + 0.05
    assert upscaled["swd"] != bicubic["swd"]
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["quality"]["display"]["bicubic"] == bicubic


def figures(swd, **overrides):
    """Generator figures that meet every target, changed where given."""
    return {"swd": swd, "log_spectral_distance": 0.05, "checkerboard_ratio": 1.0, "high_frequency_ratio": 1.0,
            "near_identical_pairs": 0, "memorisation_share": 0.0, **overrides}


def test_the_chosen_checkpoint_meets_the_targets_before_it_lowers_the_swd():
    assert quality.target_misses(figures(40.0)) == []
    assert quality.target_misses(figures(40.0, checkerboard_ratio=1.98, high_frequency_ratio=0.7)) == [
        "checkerboard_ratio", "high_frequency_ratio"]
    # A lower SWD does not buy a missed checkerboard target; among checkpoints that meet every target it decides.
    steps = {2000: figures(45.0), 2250: figures(30.0, checkerboard_ratio=1.98), 2500: figures(47.4)}
    assert quality.choose_checkpoint(steps) == 2000
    # When none meets them all, the fewest misses wins, then the SWD; equal figures go to the later step.
    steps = {2000: figures(30.0, checkerboard_ratio=1.5, log_spectral_distance=0.09),
             2250: figures(50.0, checkerboard_ratio=1.3), 2500: figures(50.0, checkerboard_ratio=1.3)}
    assert quality.choose_checkpoint(steps) == 2500
    with pytest.raises(ValueError, match="no checkpoints"):
        quality.choose_checkpoint({})


def test_display_targets_judge_the_upscaled_frames_against_bicubic_enlargement():
    def report(swd, bicubic_swd=100.0, **overrides):
        generated = {"swd": swd, "log_spectral_distance": 0.2, "checkerboard_ratio": 1.0,
                     "high_frequency_ratio": 0.6, **overrides}
        return {"generated": generated, "bicubic": {"swd": bicubic_swd}}

    assert quality.display_target_misses(report(60.0)) == []
    # The SWD target is relative: 40% below the same frames enlarged by bicubic interpolation.
    assert quality.display_target_misses(report(61.0)) == ["swd_share_of_bicubic"]
    assert quality.display_target_misses(report(61.0, bicubic_swd=110.0)) == []
    assert quality.display_target_misses(report(50.0, log_spectral_distance=0.72, checkerboard_ratio=1.7,
                                                high_frequency_ratio=0.23)) == [
        "log_spectral_distance", "checkerboard_ratio", "high_frequency_ratio"]


def test_choose_step_measures_each_checkpoint_and_prints_the_chosen_one(tiny_dataset, tmp_path):
    run, choice_path = tmp_path / "run", tmp_path / "choice.json"
    trained = subprocess.run(
        [sys.executable, "-m", "training", "dcgan", "--data", str(tiny_dataset), "--out", str(run), "--resolution",
         "64", "--width-multiplier", "0.0625", "--batch-size", "8", "--steps-per-loop", "2", "--steps", "4",
         "--checkpoint-every", "2", "--strategy", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    result = subprocess.run(
        [sys.executable, "-m", "training", "choose-step", str(run), "--steps", "2", "4", "--samples", "16",
         "--collection", "32", "--out", str(choice_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    choice = json.loads(choice_path.read_text())
    generated = {int(step): report["generated"] for step, report in choice["reports"].items()}
    assert sorted(generated) == [2, 4]
    assert result.stdout.strip() == str(choice["chosen_step"]) == str(quality.choose_checkpoint(generated))
    assert "| step | SWD x1e3 |" in result.stderr and f"chosen: step {choice['chosen_step']}" in result.stderr
    # The same step measured alone gives the same figures: the choice measures what the quality command does.
    alone = subprocess.run(
        [sys.executable, "-m", "training", "quality", "--run", str(run), "--step", "2", "--samples", "16",
         "--collection", "32", "--out", str(tmp_path / "alone.json")], cwd=ROOT, capture_output=True, text=True,
        timeout=300)
    assert alone.returncode == 0, alone.stderr
    assert json.loads((tmp_path / "alone.json").read_text())["generated"] == generated[2]
    missing = subprocess.run([sys.executable, "-m", "training", "choose-step", str(run), "--steps", "2", "2"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "must be distinct" in missing.stderr and "Traceback" not in missing.stderr
