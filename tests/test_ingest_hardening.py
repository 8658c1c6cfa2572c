"""Ingest against hostile folders, signals and collections that a centre crop or a hash alone would hurt.

The CLI runs as a real subprocess on a real folder: real symbolic links (loops among them), a real FIFO,
file names that are not UTF-8, a 9400x9400 PNG, an animated GIF named .jpg; real signals stop it.
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from training import sources, synthetic
from training.curation import fine_distance, fine_thumbnail, hamming_distance, perceptual_hash
from training.data import load_images, load_manifest
from training.ingest import IngestConfig, ingest
from training.metadata import read_metadata

REPOSITORY = Path(__file__).resolve().parents[1]
BIG_SIDE = 9400


def blocky(seed: int, width: int, height: int, block: int = 8) -> Image.Image:
    """Flat random colour blocks: distinct per seed under the perceptual hash."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (-(-height // block), -(-width // block), 3), dtype=np.uint8)
    return Image.fromarray(np.repeat(np.repeat(small, block, axis=0), block, axis=1)[:height, :width])


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def run_ingest_cli(source: Path, out: Path, *flags: str, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "training", "ingest", str(source), "--out", str(out), *flags]
    return subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def big_black_png(tmp_path_factory) -> bytes:
    """An all-black 9400x9400 PNG: about 100 KB on disk, 265 MB once decoded to RGB."""
    path = tmp_path_factory.mktemp("big") / "big.png"
    Image.new("L", (BIG_SIDE, BIG_SIDE), 0).save(path, optimize=False)
    return path.read_bytes()


def animated_gif_bytes() -> bytes:
    frames = [blocky(70 + index, 64, 64).convert("P") for index in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def build_hostile_folder(root: Path, outside: Path, big_png: bytes) -> None:
    root.mkdir()
    (root / "nested").mkdir()
    outside.mkdir()
    (root / "a.png").write_bytes(png_bytes(blocky(1, 64, 64)))
    (root / "b.png").write_bytes(png_bytes(blocky(2, 64, 64)))
    (root / "nested" / "c.png").write_bytes(png_bytes(blocky(3, 64, 64)))
    (outside / "o.png").write_bytes(png_bytes(blocky(4, 64, 64)))
    blocky(5, 64, 64).save(root / "still.gif")
    (root / "anim.jpg").write_bytes(animated_gif_bytes())
    (root / "big.png").write_bytes(big_png)
    os.mkfifo(root / "x.jpg")
    # Names that are not UTF-8, as a Latin-1 system writes them: a file and a folder.
    raw_root = os.fsencode(root)
    descriptor = os.open(raw_root + b"/caf\xe9.png", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(descriptor, png_bytes(blocky(6, 64, 64)))
    os.close(descriptor)
    os.mkdir(raw_root + b"/dossier\xff")
    descriptor = os.open(raw_root + b"/dossier\xff/inner.png", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(descriptor, png_bytes(blocky(7, 64, 64)))
    os.close(descriptor)
    # Two loops (one to the source folder itself, one to its parent from below), a folder linked to itself,
    # the same outside folder linked twice, a broken link and a link to a file already there.
    os.symlink(".", root / "loop")
    os.symlink("..", root / "nested" / "back")
    os.symlink(".", root / "nested" / "self")
    os.symlink(outside, root / "outside_again")
    os.symlink(outside, root / "outside_link")
    os.symlink("missing.png", root / "dangling")
    os.symlink("a.png", root / "file_link.png")


def test_cli_survives_a_hostile_folder(tmp_path, big_black_png):
    source, out = tmp_path / "source", tmp_path / "dataset"
    build_hostile_folder(source, tmp_path / "outside", big_black_png)
    result = run_ingest_cli(source, out, "--image-size", "32", "--min-size", "32")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    dropped = {item["source_path"]: item for item in report["dropped"]}
    assert sorted(report_path["source_path"] for report_path in report["kept"]) == [
        "a.png", "b.png", "caf\\xe9.png", "dossier\\xff/inner.png", "nested/c.png", "outside_again/o.png", "still.gif",
    ]
    assert {path: item["category"] for path, item in dropped.items()} == {
        "anim.jpg": "animated",
        "big.png": "too_large",
        "dangling": "link",
        "file_link.png": "duplicate",
        "loop": "link",
        "nested/back": "link",
        "nested/self": "link",
        "outside_link": "link",
        "x.jpg": "special_file",
    }
    # Every real folder is walked once: 16 names, not thousands of loop paths.
    assert report["counts"]["seen"] == 16
    assert report["counts"]["kept"] == 7
    assert "FIFO" in dropped["x.jpg"]["reason"]
    assert "loop" in dropped["loop"]["reason"] and "loop" in dropped["nested/back"]["reason"]
    assert "loop" in dropped["nested/self"]["reason"]
    assert "already included as outside_again" in dropped["outside_link"]["reason"]  # the first in name order
    assert "broken symbolic link to missing.png" in dropped["dangling"]["reason"]
    assert dropped["file_link.png"]["duplicate_of"] == "a.png"
    assert "9400x9400" in dropped["big.png"]["reason"] and "max_megapixels 64" in dropped["big.png"]["reason"]
    assert "animated GIF with 3 frames named .jpg" in dropped["anim.jpg"]["reason"]
    assert sorted(report["escaped_names"]) == ["caf\\xe9.png", "dossier\\xff/inner.png"]

    manifest = load_manifest(out)
    assert "caf\\xe9.png" in [entry["source_path"] for entry in manifest["images"]]
    assert len(load_images(out)[0]) == 7
    summary = result.stdout.strip().splitlines()[-1]
    assert "Kept 7 of 16 files" in summary and "not UTF-8" in summary


def test_a_name_that_becomes_a_fifo_is_refused_without_blocking(tmp_path):
    """Listing and opening are two moments: what was a file may be a FIFO when opened, and must not hang."""
    fifo = tmp_path / "metadata.csv"
    os.mkfifo(fifo)
    outcomes = []

    def read_both():
        for read in (lambda: sources.read_regular_file(str(fifo), 1024), lambda: read_metadata(str(fifo))):
            try:
                read()
            except (OSError, ValueError) as error:
                outcomes.append(str(error))

    reader = threading.Thread(target=read_both, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert outcomes == [
        "a FIFO (named pipe), not a file",
        f"metadata file {fifo} cannot be read: a FIFO (named pipe), not a file; fix or remove it",
    ]


def vm_peak_since_reset() -> int:
    """Peak resident memory (bytes) since the last reset through /proc/self/clear_refs."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def current_resident() -> int:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def test_huge_png_is_reported_without_decoding(tmp_path, big_black_png):
    source = tmp_path / "source"
    source.mkdir()
    (source / "big.png").write_bytes(big_black_png)
    (source / "small.png").write_bytes(png_bytes(blocky(8, 64, 64)))
    config = IngestConfig(image_size=32, min_size=32)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
    except OSError:
        pytest.skip("this kernel does not let a process reset its peak memory")
    before = current_resident()
    report = ingest(source, tmp_path / "out", config, progress=False)
    growth = vm_peak_since_reset() - before
    assert report.kept_files == ["small.png"]
    assert [item.category for item in report.dropped_files] == ["too_large"]
    # Decoding would need 88 MB for the grey pixels and 265 MB for RGB; reading the header needs nothing.
    assert growth < 60 * 2**20, f"peak grew by {growth / 2**20:.0f} MiB"


def test_stale_temporary_files_are_removed_at_start(tmp_path):
    source, out = tmp_path / "source", tmp_path / "out"
    source.mkdir()
    (source / "one.png").write_bytes(png_bytes(blocky(9, 64, 64)))
    (out / "shards").mkdir(parents=True)
    (out / "shards" / ".tmp-0123456789ab-00000.tfrecord").write_bytes(b"left by a killed run")
    (out / "report.json.tmp-0123456789ab").write_text("{")
    ingest(source, out, IngestConfig(image_size=32, min_size=32), progress=False)
    assert sorted(os.listdir(out / "shards")) == ["train-00000-of-00001.tfrecord"]
    assert not [name for name in os.listdir(out) if ".tmp-" in name]


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_ingest_removes_temporary_files(tmp_path, signum, exit_code):
    source, out = tmp_path / "source", tmp_path / "dataset"
    source.mkdir()
    for index in range(400):  # several seconds of work: the signal lands mid-run
        blocky(1000 + index, 192, 192).save(source / f"image_{index:03d}.png", compress_level=1)
    command = [sys.executable, "-m", "training", "ingest", str(source), "--out", str(out), "--image-size", "64"]
    process = subprocess.Popen(command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not any(name.startswith(".tmp-") for name in _listing(out / "shards")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "ingest never started writing"
            time.sleep(0.005)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == exit_code, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    assert last_line == f"ingest stopped by {signal.Signals(signum).name}; temporary files removed, run it again"
    assert _listing(out / "shards") == []
    assert not (out / "manifest.json").exists() and not (out / "report.json").exists()


def _listing(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


# --------------------------------------------------------------------------------------------------
# Curation: near duplicates confirmed, objects kept whole


def tall_mask(seed: int) -> Image.Image:
    """A procedural mask squeezed onto a tall white card, like a museum's photographs of masks."""
    mask, _ = synthetic.render_mask(seed, 128)
    card = Image.new("RGB", (120, 240), (255, 255, 255))
    card.paste(Image.fromarray(mask).resize((96, 228), Image.Resampling.BICUBIC), (12, 6))
    return card


def recompressed_smaller(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.resize((72, 144), Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=50)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def mask_collection(tmp_path_factory) -> Path:
    """Two different masks whose hashes differ in only 4 bits, an exact copy and a smaller JPEG copy."""
    source = tmp_path_factory.mktemp("masks")
    first, second = tall_mask(127), tall_mask(130)
    assert hamming_distance(perceptual_hash(first), perceptual_hash(second)) == 4
    (source / "mask_a.png").write_bytes(png_bytes(first))
    (source / "mask_b.png").write_bytes(png_bytes(second))
    (source / "mask_c_copy.png").write_bytes(png_bytes(first))
    (source / "mask_d_small.jpg").write_bytes(recompressed_smaller(first))
    return source


def test_different_masks_with_close_hashes_are_both_kept(mask_collection, tmp_path):
    report = ingest(mask_collection, tmp_path / "out", IngestConfig(image_size=32, min_size=32), progress=False)
    assert report.kept_files == ["mask_a.png", "mask_b.png"]
    dropped = {item.source_path: item for item in report.dropped_files}
    assert dropped["mask_c_copy.png"].reason == "exact duplicate (same sha256)"
    assert dropped["mask_d_small.jpg"].duplicate_of == "mask_a.png"
    assert dropped["mask_d_small.jpg"].distance <= 6 and dropped["mask_d_small.jpg"].pixel_rms < 0.0125
    # The hash alone (the old filter) takes the second mask for a copy of the first.
    hash_only = IngestConfig(image_size=32, min_size=32, dedupe_pixel_rms=1.0)
    assert ingest(mask_collection, tmp_path / "hash_only", hash_only, progress=False).kept_files == ["mask_a.png"]


def test_borderline_pairs_are_listed_for_review(mask_collection, tmp_path):
    out = tmp_path / "out"
    pixel_rms = fine_distance(fine_thumbnail(tall_mask(127)), fine_thumbnail(tall_mask(130)))
    config = IngestConfig(image_size=32, min_size=32, dedupe_pixel_rms=0.035)  # 0.064 lies in 0.0175..0.07
    report = ingest(mask_collection, out, config, progress=False)
    assert report.kept_files == ["mask_a.png", "mask_b.png"]
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["review_pairs"] == [
        {"kept": "mask_a.png", "other": "mask_b.png", "distance": 4, "pixel_rms": round(pixel_rms, 4), "dropped": False}
    ]
    assert on_disk["review_sheet"] == "review_pairs.png"
    with Image.open(out / "review_pairs.png") as sheet:
        assert sheet.width > 200 and sheet.height > 100
    assert "1 near-duplicate pairs to review" in report.summary()
    # A dataset written again without borderline pairs takes the old sheet away.
    ingest(mask_collection, out, IngestConfig(image_size=32, min_size=32), overwrite=True, progress=False)
    assert not (out / "review_pairs.png").exists()


def tall_object_on_white() -> Image.Image:
    """A dark oval 40 px wide and 260 px tall on a 120x300 white card, red on top, blue at the bottom."""
    card = Image.new("RGB", (120, 300), (255, 255, 255))
    draw = ImageDraw.Draw(card)
    draw.ellipse((40, 20, 80, 280), fill=(70, 45, 30))
    draw.rectangle((50, 20, 70, 40), fill=(230, 20, 20))
    draw.rectangle((50, 260, 70, 280), fill=(20, 20, 230))
    return card


def wide_photo_object_left() -> Image.Image:
    """A 300x120 grey backdrop with a dark object near the left edge: a centred crop would cut it."""
    card = Image.new("RGB", (300, 120), (180, 180, 180))
    ImageDraw.Draw(card).rectangle((10, 15, 100, 105), fill=(40, 60, 20))
    return card


def colour_share(image: np.ndarray, colour: tuple[int, int, int]) -> float:
    return float(np.mean(np.abs(image.astype(int) - colour).max(axis=-1) < 60))


def test_object_fit_keeps_objects_whole_and_crop_reports_cuts(tmp_path):
    source = tmp_path / "photos"
    source.mkdir()
    tall_object_on_white().save(source / "a_tall.png")
    wide_photo_object_left().save(source / "b_wide.png")
    blocky(50, 96, 96).save(source / "c_square.png")
    noise = np.random.default_rng(51).integers(0, 256, (80, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).save(source / "d_busy.png")

    crop = ingest(source, tmp_path / "crop", IngestConfig(image_size=64, min_size=32), progress=False)
    assert crop.cut_by_crop == 2
    assert sorted(note["source_path"] for note in crop.notes) == ["a_tall.png", "b_wide.png"]
    assert "The centre crop cut into the object of 2 of 4 images; --fit object keeps objects whole." in crop.summary()
    cropped = load_images(tmp_path / "crop")[0]
    assert colour_share(cropped[0], (230, 20, 20)) == 0 and colour_share(cropped[0], (20, 20, 230)) == 0

    fitted = ingest(source, tmp_path / "object", IngestConfig(image_size=64, min_size=32, fit="object"), progress=False)
    assert fitted.cut_by_crop == 0 and fitted.no_background == 1
    tall, wide, square, _ = load_images(tmp_path / "object")[0]
    # The whole tall object: its red top and its blue bottom are inside, on the card's own white.
    assert colour_share(tall[:16], (230, 20, 20)) > 0.01 and colour_share(tall[-16:], (20, 20, 230)) > 0.01
    assert np.all(tall[:, :4] >= 250) and np.all(tall[:, -4:] >= 250)
    # The wide photo is not padded: the square slides onto the object and keeps the real backdrop.
    assert colour_share(wide, (40, 60, 20)) > 0.45
    assert np.abs(wide[:, -4:].astype(int) - 180).max() < 8
    np.testing.assert_array_equal(square, cropped[2])  # square images are untouched
    report = json.loads((tmp_path / "object" / "report.json").read_text())
    assert report["fit"] == {"mode": "object", "cut_by_crop": 0, "no_background": 1}
