"""The LiteRT runtime: conversion, parity with Keras, a piece without TensorFlow, and the fallbacks to TensorFlow."""

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import make_bundle

from installation.app import Piece
from installation.config import DEFAULT_MODEL, RuntimeConfig
from models import bundle as bundles
from models.bundle import BundleError, load_bundle
from models.render import Renderer

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "SDL_VIDEODRIVER": "dummy"}
MAX_LEVELS = 2  # LiteRT frames may differ from Keras frames by this many levels of 255, no more


def vivid(generator, seed=0):
    """He-initialised kernels: an untrained generator renders near-flat grey, too little signal for parity."""
    rng = np.random.default_rng(seed)
    for layer in generator.layers:
        weights = layer.get_weights()
        if not weights or weights[0].ndim < 2:
            continue
        fan_in = weights[0].size / weights[0].shape[-1]
        weights[0] = rng.normal(0.0, np.sqrt(2.0 / fan_in), weights[0].shape).astype(np.float32)
        layer.set_weights(weights)
    return generator


@pytest.fixture(scope="module")
def fresh_bundle(tmp_path_factory):
    """A tiny bundle made now (resize-convolution generator, real-time upscaler), converted by the CLI command."""
    from models import dcgan
    from training.__main__ import main as training_main

    path = make_bundle(tmp_path_factory.mktemp("litert") / "fresh")
    generator = vivid(dcgan.generator(64, 100, 0.0625, "resize"))
    bundles.save_model(path, "generator.keras", generator)
    assert load_bundle(path, backend="auto").backend == "tf"  # not converted yet: TensorFlow, as before
    assert training_main(["convert-litert", "--model", str(path)]) == 0
    return path


def latents(count, seed=1):
    return np.random.default_rng(seed).standard_normal((count, 100)).astype(np.float32)


def test_convert_writes_tflite_files_recorded_in_the_manifest(fresh_bundle):
    manifest = bundles.read_manifest(fresh_bundle)
    for section, name in (("generator", "generator.tflite"), ("upscaler", "upscaler.tflite")):
        entry = manifest[section]["litert"]
        assert entry["file"] == name and (fresh_bundle / name).is_file()
        assert entry["batch_sizes"] == [1, 2, 3, 4, 8]
        assert entry["source_sha256"] == bundles.feats.file_sha256(fresh_bundle / manifest[section]["file"])
    loaded = load_bundle(fresh_bundle, backend="auto")
    assert loaded.backend == "litert" and loaded.generator is None and loaded.has_upscaler
    assert loaded.litert.batch_sizes == (1, 2, 3, 4, 8)


@pytest.mark.parametrize("bundle_dir", ["default", "fresh"])
def test_litert_frames_match_keras_frames(bundle_dir, fresh_bundle):
    path = DEFAULT_MODEL if bundle_dir == "default" else fresh_bundle
    keras_renderer = Renderer(load_bundle(path, backend="tf", with_index=False))
    litert_renderer = Renderer(load_bundle(path, backend="litert", with_index=False))
    assert litert_renderer.backend.name == "litert" and keras_renderer.backend.name == "tf"
    z = latents(13)  # batches of 8, 4 and 1: three signatures
    for upscale in (True, False):
        expected, got = keras_renderer.render(z, upscale), litert_renderer.render(z, upscale)
        assert got.shape == expected.shape and got.dtype == np.uint8
        assert expected.std() > 20  # real pictures, not flat grey
        difference = np.abs(got.astype(int) - expected.astype(int))
        assert difference.max() <= MAX_LEVELS, f"{bundle_dir}, upscale={upscale}: {difference.max()} levels"
    assert np.array_equal(litert_renderer.render(z[5:8]), litert_renderer.render(z)[5:8])  # batching never matters


def test_litert_caption_features_match_tensorflow_on_the_default_bundle():
    from installation.provenance import ProvenanceIndex
    from models.litert import LiteRTFeatures

    index = ProvenanceIndex.load(DEFAULT_MODEL)
    on_litert, on_tf = index.load_extractor(backend="litert"), index.load_extractor(backend="tf")
    assert isinstance(on_litert, LiteRTFeatures) and not isinstance(on_tf, LiteRTFeatures)
    renderer = Renderer(load_bundle(DEFAULT_MODEL, backend="litert", with_index=False))
    for upscale in (True, False):  # 256 px frames (box-averaged to 64) and 64 px frames
        frames = renderer.render(latents(4, seed=5), upscale)
        got, expected = on_litert.extract(frames), on_tf.extract(frames)
        for layer in ("early", "late"):
            cosine = np.sum(got[layer] * expected[layer], axis=1)
            assert cosine.min() > 0.9999, (upscale, layer, cosine)
            assert [row[0].id for row in map(lambda v: index.query(v, layer, 1), got[layer])] == \
                [row[0].id for row in map(lambda v: index.query(v, layer, 1), expected[layer])]


HIDE_TENSORFLOW = textwrap.dedent("""
    import importlib.machinery
    import sys


    class WithoutTensorFlow(importlib.machinery.PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
                return None
            return super().find_spec(name, path, target)


    sys.meta_path = [WithoutTensorFlow if finder is importlib.machinery.PathFinder else finder
                     for finder in sys.meta_path]
""")
PROBE = textwrap.dedent("""
    import sys
    from pathlib import Path

    from installation.app import main
    from installation.provenance import open_captioner
    from models.render import Renderer
    from models.bundle import load_bundle
    from models.litert import LiteRTFeatures

    out = Path(sys.argv[1])
    common = ["--model", sys.argv[2], "--no-osc"]
    assert main(["--check", *common]) == 0
    assert main([*common, "--windowed", "--width", "256", "--height", "256", "--frames", "40",
                                  "--screenshot", str(out / "shot.png")]) == 0
    assert main(["export", "--model", sys.argv[2], "--out", str(out / "loop.mp4"), "--seconds", "1",
                                  "--fps", "6", "--size", "128", "--keyframes", "2", "--captions",
                                  "--no-progress"]) == 0
    bundle = load_bundle(sys.argv[2], backend="auto")
    captioner = open_captioner(bundle.path, bundle.manifest, backend="auto")
    assert isinstance(captioner.extractor, LiteRTFeatures)
    caption = captioner.caption_for(Renderer(bundle).render([[0.0] * bundle.latent_dim])[0])
    print("caption:", caption.text())
    print("backend:", bundle.backend)
    if sys.argv[3] == "hidden":
        from training.__main__ import main as training_main

        assert training_main(["convert-litert", "--model", sys.argv[2]]) == 2
    print("imported:", sorted(name for name in ("tensorflow", "keras") if name in sys.modules))
""")


@pytest.mark.parametrize("tensorflow", ["installed", "hidden"])
def test_the_piece_export_and_captions_run_without_importing_tensorflow(tmp_path, tensorflow):
    env = ENV
    if tensorflow == "hidden":  # the runtime install: TensorFlow and Keras cannot be found, in child processes too
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "sitecustomize.py").write_text(HIDE_TENSORFLOW)
        env = {**ENV, "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}"}
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path), DEFAULT_MODEL, tensorflow], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imported: []" in result.stdout, result.stdout
    assert "backend: litert" in result.stdout and "caption: closest to:" in result.stdout
    assert "renders 512 px frames with LiteRT" in result.stdout  # --check, and its display probe in a child process:
    assert "a rendered frame shown" in result.stdout
    assert (tmp_path / "shot.png").is_file() and (tmp_path / "loop.mp4").stat().st_size > 1000
    assert "Traceback" not in result.stderr
    if tensorflow == "hidden":
        assert "error: the studio commands need TensorFlow, which the runtime install leaves out: pip install -e " \
            "'.[train]'" in result.stderr


def damaged_copy(source: Path, destination: Path, damage: str) -> Path:
    shutil.copytree(source, destination)
    if damage == "corrupt":
        (destination / "generator.tflite").write_bytes(b"TFL3 this is not a flatbuffer" * 10)
    elif damage == "missing":
        (destination / "upscaler.tflite").unlink()
    elif damage == "stale":
        generator = load_bundle(destination, with_upscaler=False, with_index=False).generator
        bundles.save_model(destination, "generator.keras", vivid(generator, seed=9))
    elif damage == "swapped":
        shutil.copy(destination / "upscaler.tflite", destination / "generator.tflite")
    elif damage == "outside":
        manifest = json.loads((destination / "manifest.json").read_text())
        manifest["generator"]["litert"]["file"] = "../elsewhere.tflite"
        (destination / "manifest.json").write_text(json.dumps(manifest))
    return destination


@pytest.mark.parametrize("damage, named", [("corrupt", "generator.tflite is corrupt or not a LiteRT model"),
                                           ("missing", "upscaler.tflite is missing"),
                                           ("stale", "generator.tflite was converted from another generator.keras"),
                                           ("swapped", "the generator's batch_1 inputs are images float32 (1, 64, 64, "
                                                       "3), but the manifest describes latents float32 (1, 100)")])
def test_a_damaged_litert_bundle_falls_back_to_tensorflow(fresh_bundle, tmp_path, caplog, damage, named):
    damaged = damaged_copy(fresh_bundle, tmp_path / damage, damage)
    with caplog.at_level(logging.WARNING, logger="models.bundle"):
        loaded = load_bundle(damaged, backend="auto")
    assert loaded.backend == "tf" and loaded.generator is not None
    assert named in caplog.text and "using the TensorFlow backend" in caplog.text
    assert Renderer(loaded).render(latents(1)).shape == (1, 256, 256, 3)
    with pytest.raises(BundleError) as refused:  # asked for LiteRT alone: one line, no TensorFlow
        load_bundle(damaged, backend="litert")
    assert len(refused.value.problems) == 1 and named in str(refused.value) and "--backend tf" in str(refused.value)


def test_without_tensorflow_a_damaged_bundle_is_one_clear_line(fresh_bundle, tmp_path, monkeypatch, capsys):
    from installation.app import main

    damaged = damaged_copy(fresh_bundle, tmp_path / "corrupt", "corrupt")
    monkeypatch.setattr(bundles, "tensorflow_available", lambda: False)
    assert main(["--model", str(damaged), "--no-osc", "--frames", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "generator.tflite is corrupt" in lines[0]
    assert "TensorFlow, the other backend, is not installed (pip install -e '.[train]')" in lines[0]
    unconverted = make_bundle(tmp_path / "unconverted", with_upscaler=False)
    assert main(["--model", str(unconverted), "--no-osc", "--frames", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "has no LiteRT models" in lines[0] and "convert-litert" in lines[0]


def test_a_feature_extractor_converted_for_another_index_is_not_used(tmp_path, caplog):
    from installation.provenance import ProvenanceIndex, open_captioner
    from models.litert import LiteRTFeatures

    copy = tmp_path / "default"
    shutil.copytree(DEFAULT_MODEL, copy)
    info_path = copy / "index" / "index.json"
    info = json.loads(info_path.read_text())
    built = info["extractor"].get("invariance") or {}
    info["extractor"]["invariance"] = {**built, "shift": int(built.get("shift", 0)) + 2}  # a differently built index
    info_path.write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING):
        captioner = open_captioner(copy, backend="auto")
    assert not isinstance(captioner.extractor, LiteRTFeatures)
    assert "features.tflite was converted from another feature extractor" in caplog.text
    with pytest.raises(BundleError, match="features.tflite was converted from another feature extractor"):
        ProvenanceIndex.load(copy).load_extractor(backend="litert")


def test_a_bundle_path_outside_the_folder_is_refused(fresh_bundle, tmp_path):
    damaged = damaged_copy(fresh_bundle, tmp_path / "outside", "outside")
    with pytest.raises(BundleError, match="outside the bundle folder"):
        load_bundle(damaged, backend="auto")


def test_the_corrupt_litert_piece_runs_on_tensorflow_from_the_command_line(fresh_bundle, tmp_path):
    damaged = damaged_copy(fresh_bundle, tmp_path / "corrupt", "corrupt")
    result = subprocess.run([sys.executable, "run_installation.py", "--no-osc", "--model", str(damaged), "--frames",
                             "10", "--windowed"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "generator.tflite is corrupt" in result.stderr and "TensorFlow backend" in result.stderr


def test_the_kiosk_fallback_chain_holds_on_litert(fresh_bundle):
    class FlakyUpscaler(Renderer):
        def render(self, latents, upscale=True):
            if upscale:
                raise RuntimeError("injected upscaler failure")
            return super().render(latents, upscale)

    bundle = load_bundle(fresh_bundle, backend="litert")
    piece = Piece.from_config(RuntimeConfig(model=str(fresh_bundle), osc=False, frames=40, stats_every=3600.0),
                              bundle=bundle, renderer=FlakyUpscaler(bundle))
    assert piece.run() == 0
    assert piece.fallback.level == "no-upscaler" and piece.shown.shape == (64, 64, 3)


@pytest.mark.parametrize("edit, message", [
    (lambda entry: entry.update(batch_sizes=[]), "generator.litert.batch_sizes must be a non-empty list"),
    (lambda entry: entry.update(batch_sizes=[1, 0]), "generator.litert.batch_sizes must be a non-empty list"),
    (lambda entry: entry.update(file="generator.keras"), "generator.litert.file = 'generator.keras' is not a .tflite"),
    (lambda entry: entry.update(file="/tmp/x.tflite"), "must be a path relative to the bundle folder"),
])
def test_the_manifest_schema_checks_litert_entries(fresh_bundle, tmp_path, edit, message):
    copy = tmp_path / "copy"
    shutil.copytree(fresh_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest["generator"]["litert"])
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_bundle(copy, backend="auto")


def test_a_training_command_without_tensorflow_names_the_install(monkeypatch, capsys):
    from training.__main__ import main as training_main

    monkeypatch.setattr(bundles, "tensorflow_available", lambda: False)
    assert training_main(["convert-litert", "--model", DEFAULT_MODEL]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: the studio commands need TensorFlow, which the runtime install leaves out: "
                     "pip install -e '.[train]'"]
