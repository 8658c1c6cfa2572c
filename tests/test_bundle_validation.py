"""The bundle loader on broken and hostile bundles on disk: one clear line naming the field and the file.

Each case copies a real bundle (the tiny one the tests build, or the committed default for its index), breaks
it the way a careless copy or a hostile file would, and checks the loader, the live piece and `--check`.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from conftest import make_bundle

from models import bundle
from models.manifest import BundleError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "assets" / "models" / "default"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "SDL_VIDEODRIVER": "dummy"}


def edit(bundle_dir: Path, change, name: str = bundle.MANIFEST) -> Path:
    """Apply `change` to a JSON file of the bundle as written on disk (no validation on the way)."""
    path = bundle_dir / name
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def tiny_copy(tiny_bundle, tmp_path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    return target


@pytest.fixture
def default_copy(tmp_path) -> Path:
    """The committed bundle with its index, minus the models the index checks do not need."""
    target = tmp_path / "default"
    shutil.copytree(DEFAULT, target, ignore=shutil.ignore_patterns("generator.keras", "upscaler.keras", "*.png"))
    return target


def run_piece(*args):
    return subprocess.run([sys.executable, "run_installation.py", "--no-osc", "--frames", "5", *args], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=180)


def run_check(*args):
    return subprocess.run([sys.executable, "run_installation.py", "--check", "--no-osc", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=180)


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


# --------------------------------------------------------------------------------------------------
# The manifest against the models it names


@pytest.mark.parametrize("section, field, value, message", [
    ("generator", "latent_dim", 64, "generator.latent_dim is 64 but {bundle}/generator.keras takes latents of shape "
                                    "(100,)"),
    ("generator", "resolution", 128, "generator.resolution is 128 but {bundle}/generator.keras makes 64x64 images"),
    ("upscaler", "scale", 2, "upscaler.scale is 2 but {bundle}/upscaler.keras turns 64 px frames into 256x256 (x4)"),
    ("upscaler", "input_size", 32, "upscaler.input_size is 32 but the generator makes 64 px images"),
])
def test_a_manifest_that_disagrees_with_its_models_is_refused(tiny_copy, section, field, value, message):
    def change(manifest):
        manifest[section][field] = value
        manifest[section].pop("output_size", None)

    edit(tiny_copy, change)
    with pytest.raises(BundleError) as raised:
        bundle.load_bundle(tiny_copy)
    resolved = tiny_copy.resolve()
    assert raised.value.problems == (f"{tiny_copy / bundle.MANIFEST}: {message.format(bundle=resolved)}",)


def test_the_piece_refuses_a_mismatched_bundle_with_one_line_and_exit_2(tiny_copy):
    edit(tiny_copy, lambda manifest: manifest["generator"].update(latent_dim=64))
    result = run_piece("--model", str(tiny_copy))
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1 and "generator.latent_dim is 64 but" in lines[0] and "(100,)" in lines[0], result.stderr
    assert str(tiny_copy / bundle.MANIFEST) in lines[0]


def test_check_names_the_field_and_both_values_not_in_user_code(tiny_copy):
    edit(tiny_copy, lambda manifest: manifest["generator"].update(resolution=128))
    result = run_check("--model", str(tiny_copy))
    assert result.returncode == 1
    assert "in user code" not in result.stdout
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL  bundle")]
    assert len(failed) == 1 and "generator.resolution is 128 but" in failed[0] and "makes 64x64 images" in failed[0]


def test_index_dims_are_checked_against_the_manifest_and_the_arrays(default_copy):
    assert bundle.read_index(default_copy).files["early"].name == "early.npy"
    edit(default_copy, lambda manifest: manifest["index"]["dims"].update(early=200))
    with pytest.raises(BundleError, match=r"index\.dims\.early is 200 but .*index\.json says 256"):
        bundle.read_index(default_copy)

    edit(default_copy, lambda manifest: manifest["index"]["dims"].update(early=256))
    edit(default_copy, lambda info: info["dims"].update(late=64), "index/index.json")
    with pytest.raises(BundleError, match=r"late\.npy holds float16 \(2791, 256\) but index\.json says dims\.late = "
                                          r"64"):
        bundle.read_index(default_copy)


# --------------------------------------------------------------------------------------------------
# Paths: only files inside the bundle, only the bundle's formats


@pytest.fixture
def neighbour(tiny_bundle, tmp_path) -> Path:
    """A second bundle beside the first: what an escaping path would reach."""
    target = tmp_path / "other"
    shutil.copytree(tiny_bundle, target)
    return target


@pytest.mark.parametrize("name, message", [
    ("../other/generator.keras", "points outside the bundle folder"),
    ("{other}/generator.keras", "must be a path relative to the bundle folder"),
    ("generator.h5", "is not a .keras file"),
    ("sub\\..\\..\\other\\generator.keras", "must be a path relative to the bundle folder"),
])
def test_model_files_outside_the_bundle_or_in_other_formats_are_refused(tiny_copy, neighbour, name, message):
    shutil.copy(tiny_copy / "generator.keras", tiny_copy / "generator.h5")
    edit(tiny_copy, lambda manifest: manifest["generator"].update(file=name.format(other=neighbour)))
    with pytest.raises(BundleError, match=rf"generator\.file = .* {message}"):
        bundle.load_bundle(tiny_copy)


def test_a_symlink_out_of_the_bundle_is_refused(tiny_copy, neighbour):
    (tiny_copy / "upscaler.keras").unlink()
    (tiny_copy / "upscaler.keras").symlink_to(neighbour / "upscaler.keras")
    with pytest.raises(BundleError, match=r"upscaler\.file = 'upscaler\.keras' leads to .*/other/upscaler\.keras, "
                                          r"outside the bundle folder"):
        bundle.load_bundle(tiny_copy)
    (tiny_copy / "upscaler.keras").unlink()
    (tiny_copy / "upscaler.keras").symlink_to("upscaler.keras")  # a loop
    with pytest.raises(BundleError, match=r"upscaler\.file = 'upscaler\.keras' (cannot be resolved|leads to)"):
        bundle.load_bundle(tiny_copy)


def test_a_symlink_inside_the_bundle_is_followed(tiny_copy):
    (tiny_copy / "models").mkdir()
    (tiny_copy / "generator.keras").rename(tiny_copy / "models" / "generator.keras")
    (tiny_copy / "generator.keras").symlink_to(Path("models") / "generator.keras")
    assert bundle.load_bundle(tiny_copy).latent_dim == 100


@pytest.mark.parametrize("change, message", [
    (lambda m, i: m["index"].update(path="../../../../etc"), r"index\.path = '\.\./\.\./\.\./\.\./etc' points outside"),
    (lambda m, i: m["index"].update(path="/etc"), r"index\.path = '/etc' must be a path relative"),
    (lambda m, i: i["files"].update(early="../../../other/early.npy"), r"files\.early = .* points outside"),
    (lambda m, i: i["files"].update(records="records.pkl"), r"files\.records = 'records\.pkl' is not a \.json file"),
    (lambda m, i: i["discriminator"].update(file="../d.keras"), r"discriminator\.file = .* points outside"),
    (lambda m, i: i["discriminator"].update(file="discriminator.h5"), r"discriminator\.file = .* is not a \.keras"),
])
def test_index_files_outside_the_bundle_or_in_other_formats_are_refused(default_copy, change, message):
    manifest = json.loads((default_copy / bundle.MANIFEST).read_text())
    info = json.loads((default_copy / "index" / "index.json").read_text())
    change(manifest, info)
    (default_copy / bundle.MANIFEST).write_text(json.dumps(manifest))
    (default_copy / "index" / "index.json").write_text(json.dumps(info))
    with pytest.raises(BundleError, match=message):
        bundle.read_index(default_copy)


def test_an_index_folder_symlinked_out_of_the_bundle_is_refused(default_copy, tmp_path):
    shutil.move(default_copy / "index", tmp_path / "elsewhere")
    (default_copy / "index").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(BundleError, match=r"index\.path = 'index' leads to .*/elsewhere, outside the bundle folder"):
        bundle.read_index(default_copy)


def test_a_pickled_index_array_is_refused(default_copy):
    import numpy as np

    np.save(default_copy / "index" / "ids.npy", np.array([{"x": 1}] * 2791, dtype=object), allow_pickle=True)
    with pytest.raises(BundleError, match=r"ids\.npy holds Python objects"):
        bundle.read_index(default_copy)


def test_models_load_in_safe_mode_only_and_need_a_keras_without_known_bypasses(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(BundleError, match=r"lambda\.keras could not be loaded"):
        bundle.load_model(tmp_path / "lambda.keras")
    for old in ("3.3.3", "3.10.0", "3.11.2", "2.15.0"):
        with pytest.raises(BundleError, match=rf"Keras {old} is older than 3\.11\.3"):
            bundle.check_keras_version(old)
    for fixed in ("3.11.3", "3.12.0", "4.0.0.dev20260101"):
        bundle.check_keras_version(fixed)
    bundle.check_keras_version()  # the installed release


def test_pyproject_requires_a_keras_with_the_safe_mode_fixes():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"keras>=3.11.3"' in text


# --------------------------------------------------------------------------------------------------
# The manifest's schema


@pytest.mark.parametrize("change, lines", [
    (lambda m: m.update(format_version="99"), ["format_version must be a whole number, not '99'"]),
    (lambda m: m.update(format_version=99), ["has format_version 99; this Masquerade reads up to 1"]),
    (lambda m: m.update(generator=[1, 2]), ["generator must be an object ({...}), not list [1, 2]"]),
    (lambda m: m["generator"].pop("file"), ["generator.file is missing"]),
    (lambda m: m["generator"].update(latent_dim="abc"), ["generator.latent_dim must be a whole number, not 'abc'"]),
    (lambda m: m["generator"].update(latent_dim=True), ["generator.latent_dim must be a whole number, not True"]),
    (lambda m: m["generator"].update(resolution=-64), ["generator.resolution = -64 is outside the allowed range"]),
    (lambda m: (m["generator"].update(latent_dim="abc", resolution=None), m["upscaler"].update(scale=[4])),
     ["generator.resolution is missing", "generator.latent_dim must be a whole number, not 'abc'",
      "upscaler.scale must be a whole number, not [4]"]),
])
def test_malformed_manifest_fields_are_one_line_each_naming_field_and_file(tiny_copy, change, lines):
    path = edit(tiny_copy, change)
    with pytest.raises(BundleError) as raised:
        bundle.read_manifest(tiny_copy)
    assert len(raised.value.problems) == len(lines)
    for problem, expected in zip(raised.value.problems, lines, strict=True):
        assert problem.startswith(f"{path}") and expected in problem, problem


def test_the_piece_and_check_report_a_malformed_manifest_without_a_traceback(tiny_copy):
    path = edit(tiny_copy, lambda m: (m["generator"].update(latent_dim="abc"), m.update(upscaler=[1, 2])))
    result = run_piece("--model", str(tiny_copy))
    assert result.returncode == 2
    assert error_lines(result) == [f"error: {path}: generator.latent_dim must be a whole number, not 'abc'",
                                   f"error: {path}: upscaler must be an object ({{...}}), not list [1, 2]"]
    result = run_check("--model", str(tiny_copy))
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL  bundle")]
    assert failed == [f"FAIL  bundle    {path}: generator.latent_dim must be a whole number, not 'abc'",
                      f"FAIL  bundle    {path}: upscaler must be an object ({{...}}), not list [1, 2]"]


def test_training_cannot_write_a_manifest_that_would_not_load(tiny_copy):
    before = (tiny_copy / bundle.MANIFEST).read_text()
    with pytest.raises(BundleError, match=r"generator\.file = '\.\./x\.keras' points outside"):
        bundle.update_manifest(tiny_copy, "generator", {"file": "../x.keras", "resolution": 64, "latent_dim": 100})
    assert (tiny_copy / bundle.MANIFEST).read_text() == before


# --------------------------------------------------------------------------------------------------
# Damaged files and wrong paths


def test_a_truncated_model_is_called_truncated_and_named(tiny_copy):
    generator = tiny_copy / "generator.keras"
    generator.write_bytes(generator.read_bytes()[: generator.stat().st_size // 2])
    with pytest.raises(BundleError, match=rf"{generator} is corrupt or truncated \(\d+ bytes"):
        bundle.load_bundle(tiny_copy)
    result = run_piece("--model", str(tiny_copy))
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1 and "generator.keras is corrupt or truncated" in lines[0]
    assert "not found" not in result.stderr.lower()


def test_a_model_with_a_damaged_member_is_called_corrupt(tiny_copy):
    upscaler = tiny_copy / "upscaler.keras"
    data = bytearray(upscaler.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(byte ^ 0xFF for byte in data[middle : middle + 64])
    upscaler.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"upscaler\.keras is corrupt or truncated"):
        bundle.load_bundle(tiny_copy)


def test_a_file_given_as_the_bundle_is_called_a_file(tmp_path):
    with pytest.raises(BundleError, match="model bundle /etc/hostname is a file, not a bundle folder"):
        bundle.load_bundle("/etc/hostname")
    result = run_piece("--model", "/etc/hostname")
    assert result.returncode == 2
    assert error_lines(result) == ["error: model bundle /etc/hostname is a file, not a bundle folder (pass the folder "
                                   "holding manifest.json)"]


def test_a_healthy_bundle_still_loads_with_its_index(tmp_path):
    loaded = bundle.load_bundle(DEFAULT)
    assert loaded.spec.generator.latent_dim == loaded.latent_dim == 100
    assert loaded.index is not None and loaded.index.info["count"] == 2791
    assert make_bundle(tmp_path / "fresh", with_upscaler=False).is_dir()
    assert bundle.load_bundle(tmp_path / "fresh").upscaler is None


def test_export_and_inspection_read_bundles_through_the_same_checks(tiny_copy, neighbour, tmp_path):
    path = edit(tiny_copy, lambda m: m["upscaler"].update(file="../other/upscaler.keras"))
    expected = f"error: {path}: upscaler.file = '../other/upscaler.keras' points outside the bundle folder ('..' is " \
               "not allowed)"
    export = subprocess.run([sys.executable, "run_installation.py", "export", "--model", str(tiny_copy), "--out",
                             str(tmp_path / "loop.mp4"), "--seconds", "1", "--no-progress"], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=180)
    assert export.returncode == 2 and error_lines(export) == [expected]
    inspection = subprocess.run([sys.executable, "-m", "studio.inspection", "--model", str(tiny_copy), "--out",
                                 str(tmp_path / "report")], cwd=ROOT, env=ENV, capture_output=True, text=True,
                                timeout=180)
    assert inspection.returncode == 2 and error_lines(inspection) == [expected]
    assert not (tmp_path / "loop.mp4").exists() and not (tmp_path / "report").exists()


def test_a_zip_bomb_named_keras_is_refused_before_it_is_unpacked(tiny_copy, monkeypatch):
    monkeypatch.setattr(bundle, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(BundleError, match=r"generator\.keras unpacks to \d+ bytes, more than any Masquerade model"):
        bundle.load_bundle(tiny_copy)


def test_a_manifest_that_is_not_a_regular_file_is_named(tiny_copy):
    (tiny_copy / bundle.MANIFEST).unlink()
    os.mkfifo(tiny_copy / bundle.MANIFEST)
    with pytest.raises(BundleError, match=r"manifest\.json is not a regular file"):
        bundle.read_manifest(tiny_copy)


def test_an_extractor_whose_features_disagree_with_the_index_is_named_by_check(tmp_path):
    from models import dcgan, features

    copy = tmp_path / "default"
    shutil.copytree(DEFAULT, copy, ignore=shutil.ignore_patterns("*.png"))
    bundle.save_model(copy, "discriminator.keras", dcgan.discriminator(64, 0.125))  # half the channels
    digest = features.file_sha256(copy / "discriminator.keras")
    edit(copy, lambda manifest: manifest["index"]["extractor"].update(weights_sha256=digest))
    edit(copy, lambda info: info["extractor"].update(weights_sha256=digest), "index/index.json")
    result = run_check("--model", str(copy))
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL  bundle")]
    assert len(failed) == 1, result.stdout
    assert f"{copy.resolve() / 'discriminator.keras'} gives features of {{'early': 128, 'late': 64}}" in failed[0]
    assert "says dims {'early': 256, 'late': 256}" in failed[0]
