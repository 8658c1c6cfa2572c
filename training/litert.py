"""Convert a bundle's Keras models to LiteRT (.tflite) files for the runtime, and record them in the manifest.

Export, export-sr and index call these after writing their Keras model; `python -m training convert-litert
--model BUNDLE` converts a bundle made before, without retraining. Each file has one fixed-shape signature per
batch size (models.litert.RENDER_BATCH_SIZES), named batch_N, with the tensor names models.litert documents.
The conversion goes through a Keras export archive (a SavedModel whose endpoints are the signatures), because
TFLiteConverter keeps the weights only of models tracked that way.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import tensorflow as tf

from models import bundle
from models import features as feats
from models import litert as litert_models
from models.files import write_bytes_atomic
from models.srgan import ClipToRange

log = logging.getLogger(__name__)

GENERATOR_FILE = "generator.tflite"
UPSCALER_FILE = "upscaler.tflite"
FEATURES_FILE = "features.tflite"


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """[-1, 1] float -> [0, 255] uint8, rounded; the same arithmetic as models.render's TF backend."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def convert(model: keras.Model, body: Callable, input_name: str, input_shape: Sequence[int],
            batch_sizes: Sequence[int]) -> bytes:
    """A .tflite flatbuffer with one signature batch_N per batch size: body({input_name: x}) -> {name: tensor}."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    keys = []
    for batch in batch_sizes:
        key = litert_models.signature_key(batch)
        archive.add_endpoint(key, body, input_signature=[tf.TensorSpec([batch, *input_shape], tf.float32,
                                                                       name=input_name)])
        keys.append(key)
    folder = tempfile.mkdtemp(prefix="masquerade-litert-")
    try:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=keys)
        return converter.convert()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def record(file_name: str, batch_sizes: Sequence[int], source_sha256: str) -> dict:
    """What a manifest section's "litert" entry says: source_sha256 is the Keras file's sha256, or for the
    feature extractor models.litert.extractor_fingerprint of the index's extractor description."""
    return {"file": file_name, "batch_sizes": sorted(batch_sizes), "source_sha256": source_sha256,
            "converter": f"TensorFlow {tf.__version__}"}


def convert_generator(bundle_dir: str | Path, generator: keras.Model, source: Path,
                      batch_sizes: Sequence[int] = litert_models.RENDER_BATCH_SIZES) -> dict:
    """generator.tflite: latents -> images in [-1, 1]; returns the manifest's generator.litert entry."""
    latent_dim = int(generator.inputs[0].shape[-1])

    def body(latents):
        return {"images": generator(latents, training=False)}

    converted = convert(generator, body, "latents", (latent_dim,), batch_sizes)
    write_bytes_atomic(Path(bundle_dir) / GENERATOR_FILE, converted)
    return record(GENERATOR_FILE, batch_sizes, feats.file_sha256(source))


def without_final_clip(model: keras.Model) -> keras.Model:
    """The model minus a last ClipToRange(-1, 1): to_uint8 clips to 0..255 anyway, so the same frames come out
    with two passes fewer over every full-size frame (its straight-through form is a subtraction and an addition)."""
    last = model.layers[-1]
    if isinstance(last, ClipToRange) and (last.minimum, last.maximum) == (-1.0, 1.0) and len(model.outputs) == 1:
        return keras.Model(model.inputs, last.input, name=f"{model.name}_unclipped")
    return model


def convert_upscaler(bundle_dir: str | Path, upscaler: keras.Model, input_size: int, source: Path,
                     batch_sizes: Sequence[int] = litert_models.RENDER_BATCH_SIZES) -> dict:
    """upscaler.tflite: generator images in [-1, 1] -> uint8 frames, rounded inside the graph."""
    unclipped = without_final_clip(upscaler)

    def body(images):
        return {"frames": to_uint8(unclipped(images, training=False))}

    write_bytes_atomic(Path(bundle_dir) / UPSCALER_FILE,
                       convert(unclipped, body, "images", (input_size, input_size, 3), batch_sizes))
    return record(UPSCALER_FILE, batch_sizes, feats.file_sha256(source))


def convert_extractor(bundle_dir: str | Path, extractor: feats.FeatureExtractor, described: dict,
                      batch_sizes: Sequence[int] = litert_models.FEATURE_BATCH_SIZES) -> dict:
    """features.tflite: float pixels at the extractor's input size -> early and late unit rows.

    described: the index's description of this extractor (index.json's "extractor"), which the runtime checks the
    conversion against.

    The resize from the frame's size to the input size stays outside (models.litert.area_resize): TensorFlow's
    antialiased resize has no LiteRT kernel, and a frame's size depends on whether the upscaler is on.
    """
    size = extractor.input_size

    def body(pixels):
        early, late = extractor._features(pixels)
        return {"early": early, "late": late}

    write_bytes_atomic(Path(bundle_dir) / FEATURES_FILE,
                       convert(extractor.trunk, body, "pixels", (size, size, 3), batch_sizes))
    return record(FEATURES_FILE, batch_sizes, litert_models.extractor_fingerprint(described))


def convert_bundle(bundle_dir: str | Path, vgg_weights: str | None = None) -> dict:
    """Convert every model the runtime uses (generator, upscaler, the index's extractor) and record them.

    Returns the manifest as written. Models are read through the bundle loader's checks, in safe mode.
    """
    root = Path(bundle_dir)
    loaded = bundle.load_bundle(root, backend="tf")
    manifest = loaded.manifest
    generator_file = bundle.model_path(root, "generator", manifest)
    section = dict(manifest["generator"])
    section["litert"] = convert_generator(root, loaded.generator, generator_file)
    manifest = bundle.update_manifest(root, "generator", section)
    log.info("converted %s", generator_file.name)
    if loaded.upscaler is not None:
        upscaler_file = bundle.model_path(root, "upscaler", manifest)
        section = dict(manifest["upscaler"])
        section["litert"] = convert_upscaler(root, loaded.upscaler, loaded.resolution, upscaler_file)
        manifest = bundle.update_manifest(root, "upscaler", section)
        log.info("converted %s", upscaler_file.name)
    if loaded.index is not None:
        manifest = convert_index_extractor(root, manifest, loaded.index, vgg_weights)
    return manifest


def convert_index_extractor(root: Path, manifest: dict, index: bundle.IndexFiles, vgg_weights=None) -> dict:
    """features.tflite for the extractor the index was built with, recorded in the manifest's index section."""
    described = index.info["extractor"]
    invariance = feats.Invariance.from_description(described.get("invariance"))
    if described["name"] == "discriminator":
        extractor = feats.build_extractor("discriminator", discriminator=bundle.load_model(index.discriminator),
                                          invariance=invariance)
    else:
        try:
            extractor = feats.build_extractor("vgg16", vgg_weights=vgg_weights, input_size=described["input_size"],
                                              invariance=invariance)
        except FileNotFoundError as error:
            log.warning("the index's VGG16 extractor is not converted (%s); captions will need TensorFlow", error)
            return manifest
    if dict(extractor.dims) != dict(index.info.get("dims") or {}):
        raise bundle.BundleError(f"{root}: the index's extractor gives features of {dict(extractor.dims)}, not the "
                                 f"index's {index.info.get('dims')}; rebuild the index")
    section = dict(manifest["index"])
    section["litert"] = convert_extractor(root, extractor, described)
    log.info("converted the %s feature extractor", described["name"])
    return bundle.update_manifest(root, "index", section)
