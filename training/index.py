"""The provenance index of a bundle: features of every dataset image at two layers, thumbnails and metadata.

`python -m training index --model BUNDLE --data DATASET [--run DCGAN_RUN] [--extractor discriminator|vgg16]`
writes BUNDLE/index/ (layout in models/features.py) and the manifest's "index" section. The whole folder is
built under a temporary name and renamed into place, so a crash never leaves half an index; `--update`
computes features only for images whose sha256 the index does not hold yet and reuses the rest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from models import bundle, dcgan
from models import features as feats
from models.files import write_json_atomic
from training import data, export, litert, memorisation
from training.runs import progress_kwargs

log = logging.getLogger(__name__)

THUMB_SIZE_RANGE = (8, 256)
READ_BATCH = 64


@dataclass(frozen=True)
class IndexConfig:
    """What `python -m training index` builds.

    bundle: the model bundle to add the index to. data: the dataset the generator was trained on.
    run: the DCGAN run whose discriminator becomes the extractor (saved into the bundle); without it the
        bundle's discriminator.keras is used. vgg_weights: the VGG16 no-top .h5 (default: the Keras cache).
    update: keep the features of images already indexed (matched by sha256) and compute only the new ones.
    """

    bundle: str
    data: str
    run: str | None = None
    extractor: str = "discriminator"
    vgg_weights: str | None = None
    thumb_size: int = 128  # the live captions draw them at 112 px on a 1080-line screen
    update: bool = False
    batch_size: int = 64

    def __post_init__(self):
        if self.extractor not in feats.EXTRACTORS:
            raise ValueError(f"extractor {self.extractor!r} is not one of {', '.join(feats.EXTRACTORS)}")
        low, high = THUMB_SIZE_RANGE
        if not isinstance(self.thumb_size, int) or not low <= self.thumb_size <= high:
            raise ValueError(f"thumb_size {self.thumb_size!r} is outside the allowed range {low}..{high}")
        if not 1 <= self.batch_size <= 4096:
            raise ValueError(f"batch_size {self.batch_size} is outside the allowed range 1..4096")
        if self.run is not None and self.extractor != "discriminator":
            raise ValueError("--run only applies to --extractor discriminator (it provides the discriminator)")
        if self.run is not None and self.update:
            raise ValueError("--run replaces the discriminator, which changes every feature: rebuild the index "
                             "without --update")


# --------------------------------------------------------------------------------------------------
# Extractors


def restore_discriminator(run_dir: str | Path):
    """Rebuild the discriminator a DCGAN run describes and load its latest weights -> (model, info)."""
    config = export.read_run_config(run_dir)
    discriminator = dcgan.discriminator(
        config["resolution"], config["width_multiplier"], config.get("spectral_norm", False),
        config.get("minibatch_stddev", False),
    )
    checkpoint = export.latest_checkpoint(run_dir)
    step = tf.Variable(0, dtype=tf.int64)
    status = tf.train.Checkpoint(discriminator=discriminator, step=step).restore(checkpoint).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        raise ValueError(
            f"{checkpoint} holds no discriminator matching the run's config ({str(error)[:120]})"
        ) from None
    info = {"file": feats.DISCRIMINATOR_FILE, "run": str(run_dir), "steps": int(step.numpy()),
            "resolution": config["resolution"], "width_multiplier": config["width_multiplier"]}
    return discriminator, info


def open_extractor(config: IndexConfig, bundle_dir: Path, previous: dict | None,
                   invariance: feats.Invariance = feats.INVARIANT):
    """-> (extractor, discriminator model to save into the bundle or None, discriminator info or None)."""
    if config.extractor == "vgg16":
        extractor = feats.build_extractor("vgg16", vgg_weights=config.vgg_weights,
                                          batch_size=min(config.batch_size, 16), invariance=invariance)
        return extractor, None, None
    if config.run is not None:
        model, info = restore_discriminator(config.run)
        return feats.build_extractor("discriminator", discriminator=model, batch_size=config.batch_size,
                                     invariance=invariance), model, info
    path = bundle.inside(bundle_dir, feats.DISCRIMINATOR_FILE, "discriminator", bundle_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: pass --run DCGAN_RUN (the run the generator came from) to export its discriminator, "
            "or use --extractor vgg16"
        )
    model = bundle.load_model(path)
    info = dict((previous or {}).get("discriminator") or {"file": feats.DISCRIMINATOR_FILE})
    return feats.build_extractor("discriminator", discriminator=model, batch_size=config.batch_size,
                                 invariance=invariance), None, info


def extractor_identity(extractor: feats.FeatureExtractor, bundle_dir: Path, saving_discriminator: bool) -> dict:
    """The extractor description plus a hash of its weights, so an update never mixes two feature spaces."""
    identity = extractor.describe()
    if extractor.name == "vgg16" and extractor.weights_path is not None:
        identity["weights_sha256"] = feats.file_sha256(extractor.weights_path)
    elif extractor.name == "discriminator" and not saving_discriminator:
        identity["weights_sha256"] = feats.file_sha256(bundle_dir / feats.DISCRIMINATOR_FILE)
    return identity


# --------------------------------------------------------------------------------------------------
# Reading the dataset and an existing index


def iterate_images(data_dir: str, manifest: dict, wanted_ids: np.ndarray | None, batch_size: int):
    """Batches of (uint8 images at the dataset's size, ids), only for `wanted_ids` when given, in shard order."""
    image_size = int(manifest["image_size"])
    dataset = tf.data.TFRecordDataset(data.shard_paths(os.fspath(data_dir), manifest))
    dataset = dataset.map(lambda record: data.parse_example(record, image_size), num_parallel_calls=tf.data.AUTOTUNE)
    if wanted_ids is not None:
        size = int(max(wanted_ids.max(initial=0), max((image["id"] for image in manifest["images"]), default=0))) + 1
        mask = np.zeros(size, bool)
        mask[wanted_ids] = True
        wanted = tf.constant(mask)
        dataset = dataset.filter(lambda image, image_id: tf.gather(wanted, tf.clip_by_value(image_id, 0, size - 1)))
    return dataset.batch(batch_size).prefetch(2).as_numpy_iterator()


def copy_sample(data_dir: str, manifest: dict, count: int) -> np.ndarray:
    """Up to memorisation.COPIES dataset images, chosen evenly, for checking that the flag catches copies."""
    ids = np.asarray([image["id"] for image in manifest["images"]], np.int64)
    chosen = ids[np.linspace(0, len(ids) - 1, min(memorisation.COPIES, count)).astype(int)]
    batches = [batch for batch, _ in iterate_images(data_dir, manifest, np.unique(chosen), READ_BATCH)]
    return np.concatenate(batches) if batches else np.zeros((0, 1, 1, 3), np.uint8)


def record_for(image: dict) -> dict:
    metadata = image.get("metadata") or {}
    record = {"id": int(image["id"]), "sha256": image["sha256"], "file": Path(image["source_path"]).name}
    record.update({name: metadata.get(name) for name in data.METADATA_FIELDS})
    return record


def read_existing(index_dir: Path) -> dict | None:
    """The index already in the bundle (memory-mapped), or None when there is none."""
    info_path = index_dir / feats.INDEX_INFO
    if not info_path.is_file():
        return None
    info = json.loads(info_path.read_text(encoding="utf-8"))
    records = json.loads((index_dir / feats.INDEX_FILES["records"]).read_text(encoding="utf-8"))
    files = info.get("files", feats.INDEX_FILES)
    arrays = {name: np.load(index_dir / files[name], mmap_mode="r") for name in feats.LAYERS}
    return {"info": info, "records": records, "thumbs": feats.load_thumbnails(index_dir, files), **arrays}


def check_update(existing: dict, extractor: feats.FeatureExtractor, identity: dict, thumb_size: int) -> None:
    info = existing["info"]
    built = info.get("extractor", {})
    if built.get("name") != extractor.name:
        raise ValueError(
            f"the index was built with the {built.get('name')!r} extractor, not {extractor.name!r}: pass "
            f"--extractor {built.get('name')} to update it, or drop --update to rebuild it"
        )
    if built.get("dims") != identity["dims"] or built.get("weights_sha256") != identity.get("weights_sha256"):
        raise ValueError(
            f"the {extractor.name} extractor differs from the one the index was built with (weights or layer sizes "
            "changed): drop --update to rebuild the index"
        )
    if int(info.get("thumb_size", -1)) != thumb_size:
        raise ValueError(f"the index holds {info.get('thumb_size')} px thumbnails: pass --thumb-size "
                         f"{info.get('thumb_size')} with --update, or drop --update to rebuild")


# --------------------------------------------------------------------------------------------------
# Building


def make_thumbnails(images: np.ndarray, size: int) -> np.ndarray:
    resized = tf.image.resize(tf.cast(images, tf.float32), (size, size), method="area", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8).numpy()


def replace_directory(temporary: Path, final: Path) -> None:
    """Swap a finished folder into place; the old one is removed only after the new one is there."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
        os.replace(temporary, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temporary, final)


def build_index(config: IndexConfig, progress: bool = True) -> dict:
    """Write BUNDLE/index/ and the manifest's "index" section; returns that section plus `computed`/`reused`."""
    bundle_dir = Path(config.bundle)
    manifest = bundle.read_manifest(bundle_dir)
    dataset = data.load_manifest(config.data)
    fingerprint = dataset["fingerprint"]
    trained_on = (manifest.get("dataset") or {}).get("fingerprint")
    if trained_on is not None and trained_on != fingerprint and not config.update:
        raise ValueError(
            f"{config.data} (fingerprint {fingerprint[:12]}) is not the dataset this bundle was made from "
            f"({trained_on[:12]}): pass that dataset, or --update to extend the index with the images added since"
        )
    index_dir = bundle_dir / feats.INDEX_DIR
    existing = read_existing(index_dir) if config.update else None
    if config.update and existing is None:
        log.info("%s holds no index yet: building it in full", bundle_dir)
    built_with = existing["info"].get("extractor", {}).get("name") if existing else None
    if built_with is not None and built_with != config.extractor:
        raise ValueError(
            f"the index was built with the {built_with!r} extractor, not {config.extractor!r}: pass "
            f"--extractor {built_with} to update it, or drop --update to rebuild it"
        )
    previous_info = existing["info"] if existing else manifest.get("index")
    # An update keeps the feature space the index was built in; a new index is mirror- and shift-robust.
    invariance = feats.Invariance.from_description(existing["info"].get("extractor", {}).get("invariance")) \
        if existing else feats.INVARIANT
    extractor, new_discriminator, discriminator_info = open_extractor(config, bundle_dir, previous_info, invariance)
    identity = extractor_identity(extractor, bundle_dir, saving_discriminator=new_discriminator is not None)
    if existing is not None:
        check_update(existing, extractor, identity, config.thumb_size)

    images = sorted(dataset["images"], key=lambda image: int(image["id"]))
    count = len(images)
    if count == 0:
        raise ValueError(f"dataset {config.data} holds no images; re-run ingest")
    reused_rows = {}
    if existing is not None:
        by_sha = {record["sha256"]: row for row, record in enumerate(existing["records"])}
        reused_rows = {row: by_sha[image["sha256"]] for row, image in enumerate(images) if image["sha256"] in by_sha}
        removed = len(by_sha) - len(reused_rows)
        if removed:
            log.info("%d indexed images are no longer in the dataset and are dropped from the index", removed)
    to_compute = [row for row in range(count) if row not in reused_rows]
    row_of_id = {int(image["id"]): row for row, image in enumerate(images)}

    temporary = bundle_dir / f".{feats.INDEX_DIR}.partial-{uuid.uuid4().hex[:8]}"
    temporary.mkdir(parents=True)
    try:
        files = feats.INDEX_FILES
        arrays = {layer: np.lib.format.open_memmap(temporary / files[layer], "w+", np.float16,
                                                   (count, extractor.dims[layer])) for layer in feats.LAYERS}
        # Raw while rows arrive in any order; encoded as JPEG at the end (feats.write_thumbnails).
        raw_thumbs = temporary / ".thumbs-raw.npy"
        arrays["thumbs"] = np.lib.format.open_memmap(raw_thumbs, "w+", np.uint8,
                                                     (count, config.thumb_size, config.thumb_size, 3))
        if reused_rows:
            destination = np.fromiter(reused_rows, np.int64)
            source = np.fromiter(reused_rows.values(), np.int64)
            for start in range(0, len(destination), 4096):
                part = slice(start, start + 4096)
                for name in (*feats.LAYERS, "thumbs"):
                    arrays[name][destination[part]] = existing[name][source[part]]

        if to_compute:
            wanted = np.asarray([images[row]["id"] for row in to_compute], np.int64)
            seen = 0
            bar = tqdm(total=len(to_compute), unit="img", desc="index", disable=not progress, **progress_kwargs())
            for batch, ids in iterate_images(config.data, dataset, wanted if reused_rows else None, READ_BATCH):
                rows = np.asarray([row_of_id[int(image_id)] for image_id in ids], np.int64)
                vectors = extractor.extract(batch)
                for layer in feats.LAYERS:
                    arrays[layer][rows] = vectors[layer].astype(np.float16)
                arrays["thumbs"][rows] = make_thumbnails(batch, config.thumb_size)
                seen += len(rows)
                bar.update(len(rows))
            bar.close()
            if seen != len(to_compute):
                raise ValueError(f"dataset {config.data} is incomplete: expected {len(to_compute)} images to index, "
                                 f"the shards held {seen}; re-run ingest")

        calibration = {"description": "for each dataset image, the best cosine similarity to any other image; "
                                      "percentiles 0..100 of those values", "count": count}
        best = {}
        for layer in feats.LAYERS:
            arrays[layer].flush()
            best[layer] = feats.nearest_other_similarity(arrays[layer]) if count > 1 else np.zeros(0, np.float32)
            calibration[layer] = {"percentiles": feats.similarity_percentiles(best[layer]) if count > 1 else None,
                                  "mean": round(float(best[layer].mean()), 6) if count > 1 else None}
        calibration["memorisation"] = memorisation.calibrate(
            best, extractor, arrays, copy_sample(config.data, dataset, count)) if count > 1 else None
        arrays["thumbs"].flush()
        feats.write_thumbnails(temporary, files, arrays["thumbs"])
        del arrays
        raw_thumbs.unlink()
        np.save(temporary / files["ids"], np.asarray([image["id"] for image in images], np.int64))
        write_json_atomic(temporary / files["records"], [record_for(image) for image in images])
        write_json_atomic(temporary / files["calibration"], calibration)

        if new_discriminator is not None:
            bundle.save_model(bundle_dir, feats.DISCRIMINATOR_FILE, new_discriminator)
            identity["weights_sha256"] = feats.file_sha256(bundle_dir / feats.DISCRIMINATOR_FILE)
        created = existing["info"].get("created") if existing else None
        info = {
            "format": feats.INDEX_FORMAT, "format_version": feats.INDEX_FORMAT_VERSION, "path": feats.INDEX_DIR,
            "extractor": identity, "layers": list(feats.LAYERS), "dims": dict(extractor.dims), "count": count,
            "dataset": {"fingerprint": fingerprint, "count": int(dataset["count"])},
            "files": dict(files), "thumb_size": config.thumb_size, "created": created or bundle.now_iso(),
            "updated": bundle.now_iso(), "discriminator": discriminator_info,
            "calibration": {layer: {"p50": _percentile(calibration[layer], 50),
                                    "p95": _percentile(calibration[layer], 95)} for layer in feats.LAYERS},
        }
        write_json_atomic(temporary / feats.INDEX_INFO, info)
        existing = None  # release the old memory maps before the old folder goes
        replace_directory(temporary, index_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise

    if trained_on != fingerprint:
        bundle.update_manifest(bundle_dir, "dataset", export.dataset_section(config.data))
    bundle.update_manifest(bundle_dir, "index", {**info, **convert_extractor(bundle_dir, extractor, info["extractor"])})
    log.info("indexed %d images (%d computed, %d reused) with the %s extractor into %s", count, len(to_compute),
             len(reused_rows), extractor.name, index_dir)
    return {**info, "computed": len(to_compute), "reused": len(reused_rows)}


def convert_extractor(bundle_dir: Path, extractor: feats.FeatureExtractor, described: dict) -> dict:
    """{"litert": ...} for the manifest's index section: the extractor converted for the runtime, when its
    weights are a file (the bundle's discriminator, or a VGG16 weights file); {} for untrained test weights."""
    if extractor.name != "discriminator" and extractor.weights_path is None:
        return {}
    return {"litert": litert.convert_extractor(bundle_dir, extractor, described)}


def _percentile(layer_calibration: dict, percent: int) -> float | None:
    values = layer_calibration.get("percentiles")
    return None if values is None else values[percent]
