"""Ingest of a messy image folder into TFRecord shards, and the tf.data reader (real files, no mocks)."""

import csv
import hashlib
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from training.curation import fit_square, hamming_distance, perceptual_hash, to_rgb
from training.data import distributed_dataset, load_images, load_manifest, make_dataset
from training.ingest import IngestConfig, ingest
from training.metadata import read_metadata

# MirroredStrategy needs two devices; split the CPU before TensorFlow initializes its runtime. If another
# test module already initialized it, keep whatever it configured and skip the test if it is not enough.
try:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
except RuntimeError:
    pass

IMAGE_SIZE = 64
CONFIG = IngestConfig(image_size=IMAGE_SIZE, min_size=32)


def blocky(seed: int, width: int, height: int, block: int = 8) -> np.ndarray:
    """A random pattern of flat colour blocks: distinct per seed under the perceptual hash, JPEG-friendly."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (-(-height // block), -(-width // block), 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, block, axis=0), block, axis=1)[:height, :width]


def jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def write(path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def save(path, image: Image.Image, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)


def build_source(root) -> dict:
    """A folder of every kind of file an artist's archive may hold. Returns expected pixel data."""
    expected = {}
    save(root / "a_blocks.jpg", Image.fromarray(blocky(1, 96, 80)), quality=95)

    palette_rgb = blocky(2, 64, 64, block=16)  # 16 blocks: at most 16 colours, exact in a palette
    save(root / "b_palette.png", Image.fromarray(palette_rgb).quantize(colors=64, method=Image.Quantize.MAXCOVERAGE))
    expected["b_palette.png"] = palette_rgb

    write(root / "broken.jpg", np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes())

    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[..., :3] = blocky(4, 64, 64)
    rgba[..., 3] = 255
    rgba[:, :32, 3] = 0  # left half fully transparent (over bright colours that must not show)
    save(root / "c_rgba.png", Image.fromarray(rgba, "RGBA"))
    expected["c_rgba.png"] = np.concatenate([np.zeros((64, 32, 3), np.uint8), rgba[:, 32:, :3]], axis=1)

    gray16 = np.zeros((64, 64), dtype=np.uint16)
    gray16[:, 16:32] = 32768
    gray16[:, 32:48] = 65535
    gray16[:, 48:] = np.repeat(np.random.default_rng(5).integers(0, 65536, (4, 1), dtype=np.uint16), 16, 0)
    gray16[:32, :16] = 65535
    save(root / "d_gray16.png", Image.fromarray(gray16))
    expected["d_gray16.png"] = gray16

    cmyk_source = blocky(6, 64, 64, block=16)
    save(root / "e_cmyk.jpg", Image.fromarray(cmyk_source).convert("CMYK"), quality=95)
    expected["e_cmyk.jpg"] = cmyk_source

    stored = blocky(7, 96, 64)  # stored landscape 96x64, displayed portrait 64x96
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    save(root / "f_rotated.jpg", Image.fromarray(stored), quality=95, subsampling=0, exif=exif)
    expected["f_rotated.jpg"] = np.rot90(stored, k=-1)[16:80]  # upright, then centre square

    save(root / "nested" / "deeper" / "i_print.tiff", Image.fromarray(blocky(8, 80, 100)))
    save(root / "nested" / "deeper" / "mystery.bin", Image.fromarray(blocky(9, 64, 64)), format="PNG")
    save(root / "nested" / "g_photo.webp", Image.fromarray(blocky(10, 100, 70)), quality=90)
    save(root / "nested" / "h_scan.bmp", Image.fromarray(blocky(11, 72, 72)))
    save(root / "nested" / "tiny.png", Image.fromarray(blocky(12, 24, 24)))
    good_jpeg = jpeg_bytes(Image.fromarray(blocky(13, 128, 128)))
    write(root / "nested" / "truncated.jpg", good_jpeg[: len(good_jpeg) // 2])
    write(root / "nested" / "z_copy.png", (root / "b_palette.png").read_bytes())
    near = Image.open(root / "a_blocks.jpg").convert("RGB").resize((90, 75), Image.Resampling.BICUBIC)
    save(root / "nested" / "z_near.jpg", near, quality=50)
    (root / "notes.txt").write_text("studio notes, not an image\n")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: ignored entirely

    with open(root / "metadata.csv", "w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["file_name", "title", "culture", "material", "source", "license", "notes"])
        rows.writerow(["a_blocks.jpg", "Mask I", "Venetian", "papier-mache", "studio", "CC-BY-4.0", "x"])
        rows.writerow(["nested/g_photo.webp", "Mask II", "", "wood", "museum scan", "CC0", ""])
        rows.writerow(["h_scan.bmp", "Mask III", "Noh", "", "", "", ""])  # bare file name
        rows.writerow(["missing.jpg", "Lost mask", "", "", "", "", ""])
    return expected


EXPECTED_KEPT = [
    "a_blocks.jpg",
    "b_palette.png",
    "c_rgba.png",
    "d_gray16.png",
    "e_cmyk.jpg",
    "f_rotated.jpg",
    "nested/deeper/i_print.tiff",
    "nested/deeper/mystery.bin",
    "nested/g_photo.webp",
    "nested/h_scan.bmp",
]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    source = tmp_path_factory.mktemp("source")
    expected = build_source(source)
    out = tmp_path_factory.mktemp("dataset")
    report = ingest(source, out, CONFIG, progress=False)
    return source, out, report, expected


def test_report_counts_and_reasons(ingested):
    source, out, report, _ = ingested
    assert report.counts() == {
        "seen": 16,
        "kept": 10,
        "skipped_corrupt": 2,
        "skipped_unreadable": 0,
        "skipped_not_image": 1,
        "skipped_too_small": 1,
        "skipped_too_large": 0,
        "skipped_animated": 0,
        "skipped_special": 0,
        "skipped_link": 0,
        "dropped_duplicate": 2,
    }
    assert report.kept_files == EXPECTED_KEPT
    dropped = {item.source_path: item for item in report.dropped_files}
    assert {path: item.category for path, item in dropped.items()} == {
        "broken.jpg": "corrupt",
        "nested/truncated.jpg": "corrupt",
        "notes.txt": "not_image",
        "nested/tiny.png": "too_small",
        "nested/z_copy.png": "duplicate",
        "nested/z_near.jpg": "duplicate",
    }
    assert "truncated" in dropped["nested/truncated.jpg"].reason.lower()
    assert "24x24" in dropped["nested/tiny.png"].reason
    assert dropped["nested/z_copy.png"].duplicate_of == "b_palette.png"
    assert dropped["nested/z_copy.png"].distance == 0
    assert dropped["nested/z_near.jpg"].duplicate_of == "a_blocks.jpg"
    assert "near duplicate" in dropped["nested/z_near.jpg"].reason

    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report.to_dict()))
    assert on_disk["counts"]["kept"] == 10
    assert on_disk["metadata"]["unmatched"] == ["missing.jpg"]
    summary = report.summary()
    assert "Kept 10 of 16 files" in summary and "2 duplicates" in summary


def test_manifest_entries(ingested):
    source, out, report, _ = ingested
    manifest = load_manifest(out)
    assert manifest["format"] == "masquerade-dataset" and manifest["format_version"] == 1
    assert manifest["image_size"] == IMAGE_SIZE and manifest["count"] == 10
    assert [entry["id"] for entry in manifest["images"]] == list(range(10))
    assert [entry["source_path"] for entry in manifest["images"]] == EXPECTED_KEPT
    for entry in manifest["images"]:
        assert entry["sha256"] == hashlib.sha256((source / entry["source_path"]).read_bytes()).hexdigest()
    sizes = {entry["source_path"]: entry["original_size"] for entry in manifest["images"]}
    assert sizes["a_blocks.jpg"] == [96, 80]
    assert sizes["f_rotated.jpg"] == [64, 96]  # EXIF orientation 6 swaps width and height
    assert sizes["nested/deeper/i_print.tiff"] == [80, 100]
    expected_fingerprint = hashlib.sha256(
        "\n".join(sorted(entry["sha256"] for entry in manifest["images"])).encode()
    ).hexdigest()
    assert manifest["fingerprint"] == expected_fingerprint == report.fingerprint
    assert manifest["shards"] == ["shards/train-00000-of-00001.tfrecord"]
    assert sorted(os.listdir(out / "shards")) == ["train-00000-of-00001.tfrecord"]  # no temp files left

    metadata = {entry["source_path"]: entry["metadata"] for entry in manifest["images"]}
    assert metadata["a_blocks.jpg"] == {
        "title": "Mask I",
        "culture": "Venetian",
        "material": "papier-mache",
        "source": "studio",
        "license": "CC-BY-4.0",
    }
    assert metadata["nested/g_photo.webp"] == {
        "title": "Mask II",
        "culture": None,
        "material": "wood",
        "source": "museum scan",
        "license": "CC0",
    }
    assert metadata["nested/h_scan.bmp"]["title"] == "Mask III"  # matched on the bare file name
    assert metadata["b_palette.png"] == dict.fromkeys(["title", "culture", "material", "source", "license"])
    assert report.metadata_matched == 3


def test_pixels_are_converted_correctly(ingested):
    _, out, _, expected = ingested
    images, ids = load_images(out)
    assert images.dtype == np.uint8 and images.shape == (10, IMAGE_SIZE, IMAGE_SIZE, 3)
    np.testing.assert_array_equal(ids, np.arange(10))
    by_path = dict(zip(EXPECTED_KEPT, images, strict=True))

    np.testing.assert_array_equal(by_path["b_palette.png"], expected["b_palette.png"])
    # Transparent pixels are composited onto the (black) background, opaque ones kept.
    np.testing.assert_array_equal(by_path["c_rgba.png"], expected["c_rgba.png"])

    gray = by_path["d_gray16.png"]
    assert np.all(gray[..., 0] == gray[..., 1]) and np.all(gray[..., 0] == gray[..., 2])
    assert np.all(gray[:, :16, 0][32:] == 0)
    assert np.all(gray[:32, :16, 0] == 255)
    assert np.all(gray[:, 16:32, 0] == 128)  # 32768 / 257 = 127.5 -> 128, not clipped to 255
    assert np.all(gray[:, 32:48, 0] == 255)
    np.testing.assert_array_equal(gray[:, 48:, 0], np.round(expected["d_gray16.png"][:, 48:] / 257).astype(np.uint8))

    cmyk_error = np.abs(by_path["e_cmyk.jpg"].astype(int) - expected["e_cmyk.jpg"]).mean()
    assert cmyk_error < 6, cmyk_error

    upright = expected["f_rotated.jpg"].astype(int)
    rotated_error = np.abs(by_path["f_rotated.jpg"].astype(int) - upright).mean()
    unrotated_error = np.abs(by_path["f_rotated.jpg"].astype(int) - np.rot90(upright, k=1)).mean()
    assert rotated_error < 6 < unrotated_error, (rotated_error, unrotated_error)

    half = load_images(out, resolution=32)[0]
    assert half.shape == (10, 32, 32, 3) and half.dtype == np.uint8


def test_reader_batches(ingested):
    _, out, _, _ = ingested
    dataset = make_dataset(out, 32, 4, shuffle=True, repeat=False, seed=1, augment_flip=True)
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == 2  # 10 images, batches of 4, remainder dropped
    for batch in batches:
        assert batch.shape == (4, 32, 32, 3) and batch.dtype == np.float32
        assert batch.min() >= -1.0 and batch.max() <= 1.0
    assert dataset.element_spec.shape.as_list() == [4, 32, 32, 3]

    full = make_dataset(out, IMAGE_SIZE, 3, shuffle=False, repeat=True, cache=False)
    first = next(iter(full)).numpy()
    images, _ = load_images(out)
    np.testing.assert_allclose(first, images[:3] / 127.5 - 1.0, atol=1e-6)

    with pytest.raises(ValueError, match="batch_size 11 is larger than the dataset"):
        make_dataset(out, 32, 11, repeat=False)
    with pytest.raises(ValueError, match=r"resolution must be an integer in 4\.\.4096"):
        make_dataset(out, 2, 4)


def pipeline_images(data_dir, pipeline_id: int) -> np.ndarray:
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2)
    dataset = make_dataset(data_dir, 16, 4, shuffle=False, repeat=False, input_context=context)
    batches = list(dataset.as_numpy_iterator())
    assert batches and all(batch.shape == (2, 16, 16, 3) for batch in batches)  # per-replica batch size
    return np.concatenate(batches)


def test_input_context_shards_examples_and_files(ingested, tmp_path):
    source, out, _, _ = ingested
    # One shard, two pipelines: examples are split between the pipelines.
    first, second = pipeline_images(out, 0), pipeline_images(out, 1)
    assert len(first) == len(second) == 4
    assert not any(np.array_equal(a, b) for a in first for b in second)

    two_shards = tmp_path / "two_shards"
    report = ingest(source, two_shards, IngestConfig(image_size=IMAGE_SIZE, min_size=32, num_shards=2), progress=False)
    assert report.shards == ["shards/train-00000-of-00002.tfrecord", "shards/train-00001-of-00002.tfrecord"]
    first, second = pipeline_images(two_shards, 0), pipeline_images(two_shards, 1)
    assert not any(np.array_equal(a, b) for a in first for b in second)


def test_mirrored_strategy_per_replica_batches(ingested):
    _, out, _, _ = ingested
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("TensorFlow was initialized before two logical CPUs could be configured")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    dataset = distributed_dataset(strategy, out, 16, 4, seed=3)
    batch = next(iter(dataset))
    parts = [part.numpy() for part in strategy.experimental_local_results(batch)]
    assert len(parts) == 2
    assert all(part.shape == (2, 16, 16, 3) and part.dtype == np.float32 for part in parts)
    assert not np.array_equal(parts[0], parts[1])


def test_images_come_in_id_order_from_any_number_of_shards(ingested, tmp_path):
    source, out, _, _ = ingested
    ingest(source, tmp_path / "three", IngestConfig(image_size=IMAGE_SIZE, min_size=32, num_shards=3), progress=False)
    one_shard, three_shards = load_images(out), load_images(tmp_path / "three")
    np.testing.assert_array_equal(three_shards[1], np.arange(10))
    np.testing.assert_array_equal(three_shards[0], one_shard[0])


def test_overwrite_refused_then_allowed(ingested, tmp_path):
    source, _, _, _ = ingested
    out = tmp_path / "dataset"
    ingest(source, out, IngestConfig(image_size=IMAGE_SIZE, min_size=32, num_shards=3), progress=False)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="already holds a dataset.*overwrite=True"):
        ingest(source, out, CONFIG, progress=False)
    assert (out / "manifest.json").read_bytes() == before
    report = ingest(source, out, CONFIG, overwrite=True, progress=False)
    assert report.kept == 10
    assert sorted(os.listdir(out / "shards")) == ["train-00000-of-00001.tfrecord"]
    assert load_manifest(out)["shards"] == ["shards/train-00000-of-00001.tfrecord"]


def test_empty_and_unreadable_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no readable images in .*empty \(0 files seen\)"):
        ingest(empty, tmp_path / "out", progress=False)
    junk = tmp_path / "junk"
    write(junk / "readme.txt", b"hello")
    write(junk / "bad.png", b"not a png at all")
    with pytest.raises(ValueError, match=r"\(2 files seen: 1 not an image, 1 corrupt\); add JPEG"):
        ingest(junk, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert os.listdir(tmp_path / "out" / "shards") == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest(tmp_path / "nowhere", tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="no dataset in"):
        load_manifest(tmp_path / "junk")


def test_pad_fit_white_background_and_json_metadata(tmp_path):
    source = tmp_path / "source"
    wide = np.zeros((32, 64, 4), dtype=np.uint8)
    wide[..., :3] = blocky(20, 64, 32)
    wide[..., 3] = 255
    wide[:, :8, 3] = 0
    save(source / "wide.png", Image.fromarray(wide, "RGBA"))
    save(source / "other.png", Image.fromarray(blocky(21, 64, 64)))
    (source / "metadata.json").write_text(json.dumps({"wide.png": {"title": "Wide", "License": "CC0"}}))
    config = IngestConfig(image_size=32, min_size=16, fit="pad", background=(255, 255, 255))
    report = ingest(source, tmp_path / "out", config, progress=False)
    assert report.kept_files == ["other.png", "wide.png"] and report.seen == 2
    images, _ = load_images(tmp_path / "out")
    wide_out = images[1]
    assert np.all(wide_out[:8] == 255) and np.all(wide_out[-8:] == 255)  # letterbox bars
    assert wide_out[8:24, :3].min() >= 250  # transparent columns composited onto white
    manifest = load_manifest(tmp_path / "out")
    assert manifest["images"][1]["metadata"]["title"] == "Wide"
    assert manifest["images"][1]["metadata"]["license"] == "CC0"
    assert manifest["images"][1]["original_size"] == [64, 32]


def test_output_inside_source_and_explicit_metadata(tmp_path):
    source = tmp_path / "art"
    save(source / "one.png", Image.fromarray(blocky(40, 64, 64)))
    save(source / "two.png", Image.fromarray(blocky(41, 64, 64)))
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("file,title,culture,material,source,license\ntwo.png,Two,,,,\n")
    config = IngestConfig(image_size=32, min_size=16, metadata=str(catalogue))
    for out in (source / "dataset", source):  # a subfolder of the source, then the source folder itself
        first = ingest(source, out, config, progress=False)
        again = ingest(source, out, config, overwrite=True, progress=False)  # its own files are not re-read
        for report in (first, again):
            assert report.seen == 2 and report.kept_files == ["one.png", "two.png"], report.to_dict()
        assert load_manifest(out)["images"][1]["metadata"]["title"] == "Two"
    with pytest.raises(FileNotFoundError, match="metadata file .*missing.json does not exist"):
        ingest(source, tmp_path / "x", IngestConfig(metadata=str(tmp_path / "missing.json")), progress=False)


def test_large_jpeg_is_decoded_at_reduced_scale_but_reports_full_size(tmp_path):
    stored = np.zeros((480, 640, 3), dtype=np.uint8)
    stored[:, :320] = (220, 30, 30)  # left half red
    stored[:, 320:] = (30, 30, 220)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise for display: the left edge becomes the bottom
    save(tmp_path / "src" / "big.jpg", Image.fromarray(stored), quality=90, exif=exif)
    ingest(tmp_path / "src", tmp_path / "out", IngestConfig(image_size=32, min_size=16), progress=False)
    assert load_manifest(tmp_path / "out")["images"][0]["original_size"] == [480, 640]
    image = load_images(tmp_path / "out")[0][0].astype(int)
    assert np.abs(image[:12] - (30, 30, 220)).max() < 20  # top: blue
    assert np.abs(image[-12:] - (220, 30, 30)).max() < 20  # bottom: red


def test_metadata_formats(tmp_path):
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([{"file": "./a/b.png", "title": "B", "year": 1900}]))
    assert read_metadata(str(listing)) == {
        "a/b.png": {"title": "B", "culture": None, "material": None, "source": None, "license": None}
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("name,title\nx.png,X\n")
    with pytest.raises(ValueError, match="no 'file' or 'file_name' column"):
        read_metadata(str(bad))


def test_conversion_helpers():
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    palette.info["transparency"] = 1
    assert to_rgb(palette, (0, 0, 255)).getpixel((0, 0)) == (0, 0, 255)
    la = Image.new("LA", (2, 2), (200, 128))
    assert to_rgb(la, (0, 0, 0)).getpixel((0, 0)) == (100, 100, 100)
    assert to_rgb(Image.new("1", (2, 2), 1)).getpixel((0, 0)) == (255, 255, 255)
    square = fit_square(Image.fromarray(blocky(30, 40, 20)), 16, "crop")
    assert square.size == (16, 16)
    base = Image.fromarray(blocky(31, 64, 64))
    assert hamming_distance(perceptual_hash(base), perceptual_hash(base.resize((60, 60)))) <= 2
    assert hamming_distance(perceptual_hash(base), perceptual_hash(Image.fromarray(blocky(32, 64, 64)))) > 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 8}, r"image_size must be an integer in 16\.\.2048, got 8"),
        ({"image_size": 4096}, r"image_size must be an integer in 16\.\.2048"),
        ({"image_size": 64.0}, r"image_size must be an integer"),
        ({"min_size": 0}, r"min_size must be an integer in 1\.\."),
        ({"fit": "stretch"}, r"fit must be one of crop, pad, object, got 'stretch'"),
        ({"background": (300, 0, 0)}, r"background must be three integers in 0\.\.255"),
        ({"background": (0, 0)}, r"background must be three integers"),
        ({"dedupe_threshold": -2}, r"dedupe_threshold must be an integer in -1\.\.64"),
        ({"dedupe_threshold": 65}, r"dedupe_threshold must be an integer in -1\.\.64"),
        ({"num_shards": 0}, r"num_shards must be an integer in 1\.\.10000"),
        ({"dedupe_pixel_rms": -0.1}, r"dedupe_pixel_rms must be a number in 0\.0\.\.1\.0, got -0\.1"),
        ({"dedupe_pixel_rms": "low"}, r"dedupe_pixel_rms must be a number"),
        ({"max_megapixels": 0}, r"max_megapixels must be an integer in 1\.\.1000, got 0"),
        ({"metadata": "meta.xlsx"}, r"metadata must name a \.csv or \.json file"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IngestConfig(**kwargs)


def test_config_accepts_lists_and_serializes():
    config = IngestConfig(background=[255, 255, 255], dedupe_threshold=-1, num_shards=4)
    assert config.background == (255, 255, 255)
    assert json.loads(json.dumps(config.to_dict()))["background"] == [255, 255, 255]
