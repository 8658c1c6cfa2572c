"""The model bundle: one self-describing folder that is the whole deployment of a piece.

Layout and manifest fields are documented in docs/CONVENTIONS.md. Training writes sections of the manifest one at
a time (generator, upscaler, index); every tool reads a bundle through `load_bundle` (or `read_manifest`,
`read_index` and `load_model` for one part), which check the manifest's schema (models.manifest), keep every file
inside the bundle folder and in the bundle's own formats, load Keras models in safe mode only, and check the
manifest against the loaded models and the index files. A bundle is data from elsewhere: nothing in it is trusted.

Two backends read the same bundle: "tf" loads the Keras models (studio tools, GPU hosts), "litert" opens their
LiteRT conversions (the kiosk) and never imports Keras or TensorFlow; "auto" takes LiteRT when the bundle has it
and falls back to TensorFlow, with one warning, when its LiteRT files are missing, stale or damaged.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models import index_format as feats
from models import litert as litert_models
from models.files import write_json_atomic
from models.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MODEL_SUFFIX,
    SECTIONS,
    BundleError,
    Fields,
    LiteRTSpec,
    Manifest,
    check_relative_path,
    parse_manifest,
)

if TYPE_CHECKING:
    import keras

__all__ = ["FORMAT", "FORMAT_VERSION", "SECTIONS", "BundleError", "Bundle", "IndexFiles", "load_bundle",
           "read_manifest", "read_index", "read_json", "inside", "load_model", "model_path", "update_manifest",
           "save_model", "write_json_atomic", "BACKENDS", "tensorflow_available"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
OPTIONAL_INDEX_FILES = ("thumb_offsets",)
MAX_JSON_BYTES = 64 << 20  # a manifest or index.json is a few kB; refuse to parse a file that is not one
MAX_MODEL_BYTES = 4 << 30  # unpacked size of a .keras archive; the largest upscaler is tens of MB
# The first Keras release with every published safe_mode bypass fixed: CVE-2025-1550 (3.9),
# CVE-2025-8747 and CVE-2025-9906 (3.11.0), CVE-2025-9905, HDF5 weights ignoring safe_mode (3.11.3).
SAFE_KERAS = (3, 11, 3)
BACKENDS = ("auto", "litert", "tf")
TRAIN_INSTALL = "pip install -e '.[train]'"
INDEX_SUFFIXES = {"early": ".npy", "late": ".npy", "ids": ".npy", "thumbs": ".npy", "thumb_offsets": ".npy",
                  "records": ".json",
                  "calibration": ".json"}


@dataclass(frozen=True)
class IndexFiles:
    """A bundle's provenance index as checked on disk: where each file is, and what index.json says."""

    folder: Path
    info: Mapping
    files: Mapping[str, Path]  # INDEX_SUFFIXES key -> resolved path inside the bundle
    discriminator: Path | None  # the extractor's weights, when the index was built with the bundle's discriminator
    litert: LiteRTSpec | None = None  # the extractor's LiteRT conversion, as the manifest lists it
    root: Path | None = None  # the bundle folder


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict
    generator: keras.Model | None  # None with the LiteRT backend
    upscaler: keras.Model | None
    spec: Manifest | None = None
    index: IndexFiles | None = None
    backend: str = "tf"  # what renders: "tf" (the Keras models) or "litert" (the models in `litert`)
    litert: litert_models.LiteRTModels | None = None
    threads: int = 0  # LiteRT threads (0: one per core), also for the feature extractor opened with the index

    @property
    def has_upscaler(self) -> bool:
        return self.upscaler is not None or (self.litert is not None and self.litert.upscaler is not None)

    @property
    def resolution(self) -> int:
        return int(self.manifest["generator"]["resolution"])

    @property
    def latent_dim(self) -> int:
        return int(self.manifest["generator"]["latent_dim"])

    @property
    def upscale_factor(self) -> int:
        return int(self.manifest["upscaler"]["scale"]) if self.has_upscaler else 1


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------------
# Paths: everything a manifest names lies inside the bundle folder


def bundle_folder(bundle_dir: str | os.PathLike) -> Path:
    path = Path(bundle_dir)
    if not path.exists():
        raise FileNotFoundError(f"model bundle {bundle_dir} does not exist (expected a folder holding {MANIFEST})")
    if not path.is_dir():
        raise BundleError(f"model bundle {bundle_dir} is a file, not a bundle folder (pass the folder holding "
                          f"{MANIFEST})")
    return path


def inside(root: Path, relative: str, field: str, named_in: Path, base: Path | None = None) -> Path:
    """`base / relative` (base defaults to root) resolved, symlinks included, refused unless it stays inside the
    resolved `root`; `field` and `named_in` say where the name came from."""
    try:
        resolved = ((root if base is None else base) / relative).resolve()
        resolved_root = root.resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise BundleError(f"{named_in}: {field} = {relative!r} cannot be resolved ({error})") from None
    if not resolved.is_relative_to(resolved_root):
        raise BundleError(f"{named_in}: {field} = {relative!r} leads to {resolved}, outside the bundle folder "
                          f"{resolved_root}")
    return resolved


def read_json(path: Path, what: str) -> Any:
    if path.exists() and not path.is_file():
        raise BundleError(f"{path} is not a regular file: {what}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {what}")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise BundleError(f"{path} is {path.stat().st_size} bytes, too large for a {path.name}; re-export the bundle")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise BundleError(f"{path} is not valid JSON ({detail}); re-export the bundle") from None


def open_manifest(bundle_dir: str | os.PathLike) -> tuple[dict, Manifest]:
    """The manifest as written (a dict, for the fields tools only report) and as checked (a Manifest)."""
    root = bundle_folder(bundle_dir)
    path = root / MANIFEST
    if path.is_symlink() or path.exists():
        inside(root, MANIFEST, "manifest", path)
    raw = read_json(path, f"{bundle_dir} is not a model bundle")
    return raw, parse_manifest(raw, path, feats.INDEX_DIR)


def read_manifest(bundle_dir: str | os.PathLike) -> dict:
    """The bundle's manifest after its schema checks; raises BundleError with one line per problem."""
    return open_manifest(bundle_dir)[0]


def update_manifest(bundle_dir: str | os.PathLike, section: str, info: dict) -> dict:
    """Replace one section of the manifest, keeping the others; refuses to write a manifest that would not load."""
    if section not in SECTIONS:
        raise ValueError(f"unknown bundle section {section!r}; choose one of {SECTIONS}")
    path = Path(bundle_dir) / MANIFEST
    if path.is_file():
        manifest = read_manifest(bundle_dir)
    else:
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "created": now_iso()}
    manifest[section] = info
    manifest["updated"] = now_iso()
    parse_manifest(json.loads(json.dumps(manifest)), path, feats.INDEX_DIR)
    write_json_atomic(path, manifest)
    return manifest


def model_path(bundle_dir: str | os.PathLike, section: str, manifest: dict | None = None) -> Path:
    """Where the model a manifest section ("generator", "upscaler") names lies, checked to be inside the bundle."""
    root = bundle_folder(bundle_dir)
    manifest = read_manifest(root) if manifest is None else manifest
    return inside(root, manifest[section]["file"], f"{section}.file", root / MANIFEST)


# --------------------------------------------------------------------------------------------------
# Models: .keras archives only, in safe mode only


def tensorflow_available() -> bool:
    """Whether TensorFlow is installed (looked up without importing it: the runtime profile has none)."""
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def check_keras_version(version: str | None = None) -> None:
    """Refuse to deserialise bundle models with a Keras whose safe mode is known to be bypassable."""
    if version is None:
        import keras

        version = keras.__version__
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    if match is None or tuple(int(part) for part in match.groups()) < SAFE_KERAS:
        wanted = ".".join(map(str, SAFE_KERAS))
        raise BundleError(f"Keras {version} is older than {wanted}, the first release whose safe mode has no known "
                          f"bypass; models are not loaded with it: pip install 'keras>={wanted}'")


def check_archive(path: Path) -> None:
    """A .keras file is a zip archive; say plainly when it is cut short or damaged, rather than 'not found'."""
    size = path.stat().st_size
    damaged = f"{path} is corrupt or truncated ({size} bytes"
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
            if unpacked > MAX_MODEL_BYTES:
                raise BundleError(f"{path} unpacks to {unpacked} bytes, more than any Masquerade model "
                                  f"({MAX_MODEL_BYTES}); it is not a bundle model")
            bad_member = archive.testzip()
    except BundleError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise BundleError(f"{damaged}: not a complete .keras archive, {error}); copy or re-export it") from None
    if bad_member is not None:
        raise BundleError(f"{damaged}: {bad_member} inside it fails its checksum); copy or re-export it")


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a bundle model in safe mode (no Lambda layers, no arbitrary code), from a .keras archive only."""
    if not tensorflow_available():
        raise BundleError(f"{Path(path).name} is a Keras model and TensorFlow is not installed: {TRAIN_INSTALL} "
                          "brings it (or use a bundle with LiteRT files)")
    import keras

    import models.dcgan  # noqa: F401  (registers the custom layers of the generator and discriminator)
    import models.srgan  # noqa: F401  (registers the custom layers the upscalers use)

    check_keras_version()
    path = Path(path)
    if path.suffix.lower() != MODEL_SUFFIX:
        raise BundleError(f"{path} is not a {MODEL_SUFFIX} file; bundle models load only from Keras archives")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the bundle; re-export it")
    if not path.is_file():
        raise BundleError(f"{path} is not a regular file; re-export it")
    check_archive(path)
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except (ValueError, OSError, KeyError, TypeError, AttributeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BundleError(
            f"{path} could not be loaded ({first_line[:200]}); the file is corrupt or not a Keras model"
        ) from None


def check_generator(model: keras.Model, resolution: int, latent_dim: int, file: Path, manifest: Path) -> list[str]:
    """The manifest's latent_dim and resolution against what the generator really takes and makes."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return [f"{file} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; a generator has one each"]
    problems = []
    takes, makes = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(takes) != 2 or takes[1] != latent_dim:
        problems.append(f"{manifest}: generator.latent_dim is {latent_dim} but {file} takes latents of shape "
                        f"{takes[1:]}")
    if len(makes) != 4 or makes[3] != 3:
        problems.append(f"{file} makes outputs of shape {makes[1:]}, not RGB images")
    elif makes[1:3] != (resolution, resolution):
        problems.append(f"{manifest}: generator.resolution is {resolution} but {file} makes {makes[1]}x{makes[2]} "
                        "images")
    return problems


def check_upscaler(model: keras.Model, resolution: int, spec, file: Path, manifest: Path) -> list[str]:
    """The manifest's scale and sizes against what the upscaler makes of one generator frame."""
    import keras

    problems = []
    if spec.input_size is not None and spec.input_size != resolution:
        problems.append(f"{manifest}: upscaler.input_size is {spec.input_size} but the generator makes "
                        f"{resolution} px images")
    try:
        made = tuple(model.compute_output_spec(keras.KerasTensor((1, resolution, resolution, 3))).shape)
    except Exception as error:  # noqa: BLE001 - any failure here means the model cannot take these frames
        detail = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        return [*problems, f"{file} cannot take the generator's {resolution} px frames ({detail})"]
    if len(made) != 4 or made[3] != 3:
        problems.append(f"{file} makes outputs of shape {made[1:]}, not RGB images")
    elif made[1:3] != (resolution * spec.scale,) * 2:
        problems.append(f"{manifest}: upscaler.scale is {spec.scale} but {file} turns {resolution} px frames into "
                        f"{made[1]}x{made[2]} (x{made[1] / resolution:g})")
    return problems


# --------------------------------------------------------------------------------------------------
# The provenance index: index.json, .npy arrays and .json records inside the bundle


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file, from its header alone (nothing is loaded, nothing unpickled)."""
    try:
        with open(path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(stream)
    except (ValueError, OSError, EOFError) as error:
        raise BundleError(f"{path} is not a readable .npy array ({str(error)[:120]}); rebuild the index") from None
    if dtype.hasobject:
        raise BundleError(f"{path} holds Python objects, not numbers; rebuild the index")
    return tuple(shape), dtype


def read_index(bundle_dir: str | os.PathLike, manifest: dict | None = None) -> IndexFiles | None:
    """The bundle's index files, checked against the manifest, or None when the manifest lists no index.

    Raises BundleError (a ValueError) when the index does not belong to this bundle or disagrees with itself,
    FileNotFoundError when the manifest lists an index that is not there.
    """
    root = bundle_folder(bundle_dir)
    manifest_path = root / MANIFEST
    raw = read_manifest(root) if manifest is None else manifest
    parsed = parse_manifest(raw, manifest_path, feats.INDEX_DIR)
    spec = parsed.index
    if spec is None:
        return None
    rebuild = f"rebuild it with `python -m training index --model {bundle_dir} --data DATASET`"
    folder = inside(root, spec.path, "index.path", manifest_path)
    info_path = inside(root, feats.INDEX_INFO, "index.path", manifest_path, base=folder)
    if not info_path.is_file():
        raise FileNotFoundError(f"the manifest lists a provenance index but {info_path} is missing; {rebuild}")
    info = read_json(info_path, rebuild)
    if not isinstance(info, dict) or info.get("format") != feats.INDEX_FORMAT or \
            not isinstance(info.get("format_version"), int) or info["format_version"] > feats.INDEX_FORMAT_VERSION:
        raise BundleError(f"{info_path} is not a provenance index this Masquerade reads; {rebuild}")
    built, listed = info.get("extractor"), raw["index"].get("extractor")
    built, listed = (built if isinstance(built, dict) else {}), (listed if isinstance(listed, dict) else {})
    if built.get("name") != listed.get("name") or built.get("weights_sha256") != listed.get("weights_sha256"):
        raise BundleError(
            f"the index in {folder} was built with the {built.get('name')!r} extractor but the bundle manifest "
            f"lists {listed.get('name')!r} (or other weights); {rebuild}"
        )
    indexed = (info.get("dataset") if isinstance(info.get("dataset"), dict) else {}).get("fingerprint")
    trained = parsed.dataset_fingerprint
    if trained is not None and indexed != trained:
        raise BundleError(
            f"the index in {folder} describes dataset {str(indexed)[:12]} but the bundle was made from "
            f"{trained[:12]}; {rebuild} (the dataset the generator was trained on)"
        )
    files, count, dims = index_layout(root, info, info_path)
    discriminator = discriminator_file(root, info, info_path, built, rebuild) if built.get("name") == "discriminator" \
        else None
    problems = []
    for key, listed_value, built_value in [("count", spec.count, count),
                                           *((f"dims.{layer}", (spec.dims or {}).get(layer), dims[layer])
                                             for layer in feats.LAYERS)]:
        if listed_value is not None and listed_value != built_value:
            problems.append(f"{manifest_path}: index.{key} is {listed_value} but {info_path} says {built_value}")
    problems += check_index_arrays(files, count, dims, info.get("thumb_size"))
    if problems:
        raise BundleError([*problems[:-1], f"{problems[-1]}; {rebuild}"])
    return IndexFiles(folder, info, files, discriminator, spec.litert, root)


def open_index_features(index: IndexFiles, threads: int = 0) -> litert_models.LiteRTFeatures:
    """The index's extractor from its LiteRT file, its outputs checked against the index's dims.

    Raises NoLiteRTModels when the bundle lists none, BundleError or FileNotFoundError when it is damaged or stale.
    """
    hint = litert_models.convert_hint(index.root)
    if index.litert is None:
        raise litert_models.NoLiteRTModels(f"{index.root}: the index's feature extractor has no LiteRT model; {hint}")
    path = litert_path(index.root, index.litert, "index", f"feature extractor (weights, layers or invariance) "
                       f"than {feats.INDEX_INFO}", litert_models.extractor_fingerprint(index.info.get("extractor")))
    dims = index.info.get("dims") or {}
    model = litert_models.LiteRTModel(path, threads)
    try:
        return litert_models.LiteRTFeatures(model, index.info["extractor"]["name"],
                                            {layer: int(dims[layer]) for layer in feats.LAYERS})
    except BundleError as error:
        raise BundleError([*error.problems[:-1], f"{error.problems[-1]}; {hint}"]) from None


def index_layout(root: Path, info: dict, info_path: Path) -> tuple[dict[str, Path], int, dict[str, int]]:
    """index.json's files (each inside the bundle, in its own format), row count and feature dims."""
    problems: list[str] = []
    fields = Fields(info.get("files"), "files", info_path, problems)
    count = Fields(info, "", info_path, problems).integer("count", (0, 1 << 40))
    dim_fields = Fields(info.get("dims"), "dims", info_path, problems)
    dims = {layer: dim_fields.integer(layer, (1, 1 << 20)) for layer in feats.LAYERS}
    # Format 1 stored raw thumbnails in one array; format 2 stores JPEGs and their offsets.
    relative = {key: fields.text(key, required=key not in OPTIONAL_INDEX_FILES) for key in INDEX_SUFFIXES}
    relative = {key: check_relative_path(value, f"files.{key}", info_path, problems, INDEX_SUFFIXES[key])
                for key, value in relative.items() if value is not None}
    if problems:
        raise BundleError(problems)
    folder = info_path.parent
    files = {}
    for key, name in relative.items():
        path = inside(root, name, f"files.{key}", info_path, base=folder)
        if not path.is_file():
            raise FileNotFoundError(f"{info_path} lists files.{key} = {name!r} but {path} is missing or not a "
                                    "regular file; rebuild the index")
        files[key] = path
    return files, count, dims


def discriminator_file(root: Path, info: dict, info_path: Path, built: dict, rebuild: str) -> Path:
    described = info.get("discriminator") if isinstance(info.get("discriminator"), dict) else {}
    problems: list[str] = []
    name = check_relative_path(described.get("file") or feats.DISCRIMINATOR_FILE, "discriminator.file", info_path,
                               problems, MODEL_SUFFIX)
    if name is None:
        raise BundleError(problems)
    path = inside(root, name, "discriminator.file", info_path)
    if not path.is_file():
        raise FileNotFoundError(f"the index was built with the bundle's discriminator but {path} is missing; {rebuild}")
    expected = built.get("weights_sha256")
    if expected and feats.file_sha256(path) != expected:
        raise BundleError(f"{path} is not the discriminator the index was built with; {rebuild}")
    return path


def check_index_arrays(files: dict[str, Path], count: int, dims: dict[str, int], thumb_size) -> list[str]:
    """Each .npy array's shape and dtype from its header, against index.json's count and dims."""
    problems = []
    for layer in feats.LAYERS:
        shape, dtype = npy_header(files[layer])
        if shape != (count, dims[layer]) or dtype.kind != "f":
            problems.append(f"{files[layer]} holds {dtype} {shape} but index.json says dims.{layer} = "
                            f"{dims[layer]} over count = {count} rows")
    shape, dtype = npy_header(files["ids"])
    if shape != (count,) or dtype.kind not in "iu":
        problems.append(f"{files['ids']} holds {dtype} {shape}, not {count} integer ids")
    if "thumb_offsets" in files:
        encoded_shape, encoded_dtype = npy_header(files["thumbs"])
        shape, dtype = npy_header(files["thumb_offsets"])
        if len(encoded_shape) != 1 or encoded_dtype != np.uint8:
            problems.append(f"{files['thumbs']} holds {encoded_dtype} {encoded_shape}, not JPEG bytes")
        if shape != (count + 1,) or dtype.kind not in "iu":
            problems.append(f"{files['thumb_offsets']} holds {dtype} {shape}, not {count + 1} offsets")
        return problems
    shape, dtype = npy_header(files["thumbs"])
    size = thumb_size if isinstance(thumb_size, int) and not isinstance(thumb_size, bool) else None
    if len(shape) != 4 or shape[0] != count or shape[3] != 3 or dtype != np.uint8 or \
            (size is not None and shape[1:3] != (size, size)):
        problems.append(f"{files['thumbs']} holds {dtype} {shape}, not {count} uint8 RGB thumbnails")
    return problems


# --------------------------------------------------------------------------------------------------
# The whole bundle


def save_model(bundle_dir: str | os.PathLike, file_name: str, model: keras.Model) -> Path:
    """Save a model in Keras format under a temporary name, then rename: an old bundle file survives a crash."""
    target = Path(bundle_dir) / file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.stem}.partial.keras")
    try:
        model.save(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def litert_path(root: Path, spec: LiteRTSpec, section: str, source: str, source_sha256: str | None) -> Path:
    """Where a section's LiteRT file lies (inside the bundle), refused when it was converted from another model:
    `source` names what it was converted from, `source_sha256` is that source's hash now (None: not checked)."""
    path = inside(root, spec.file, f"{section}.litert.file", root / MANIFEST)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; {litert_models.convert_hint(root)}")
    if spec.source_sha256 and source_sha256 is not None and source_sha256 != spec.source_sha256:
        raise BundleError(f"{path} was converted from another {source} than the bundle holds now; "
                          f"{litert_models.convert_hint(root)}")
    return path


def keras_source(root: Path, section: str, manifest: dict) -> tuple[str, str | None]:
    """(name, sha256) of the Keras model a section's LiteRT file was converted from; no hash when it is absent."""
    path = model_path(root, section, manifest)
    return path.name, feats.file_sha256(path) if path.is_file() else None


def open_litert(root: Path, manifest: dict, spec: Manifest, with_upscaler: bool,
                threads: int) -> litert_models.LiteRTModels:
    """The bundle's LiteRT render models, their signatures checked against the manifest.

    Raises FileNotFoundError when the bundle has no LiteRT conversion, BundleError when it is damaged or stale.
    """
    generator_spec = spec.generator
    upscaler_spec = spec.upscaler if with_upscaler else None
    missing = [name for name, section in (("generator", generator_spec), ("upscaler", upscaler_spec))
               if section is not None and section.litert is None]
    if missing:
        raise litert_models.NoLiteRTModels(f"{root} has no LiteRT models ({' and '.join(missing)}); "
                                f"{litert_models.convert_hint(root)}")
    resolution, latent_dim = generator_spec.resolution, generator_spec.latent_dim
    generator = litert_models.LiteRTModel(
        litert_path(root, generator_spec.litert, "generator", *keras_source(root, "generator", manifest)), threads)
    problems = litert_models.check_signatures(generator, "generator", {"latents": ((latent_dim,), np.float32)},
                                              {"images": ((resolution, resolution, 3), np.float32)})
    upscaler = None
    if upscaler_spec is not None:
        upscaler = litert_models.LiteRTModel(
            litert_path(root, upscaler_spec.litert, "upscaler", *keras_source(root, "upscaler", manifest)), threads)
        size = resolution * upscaler_spec.scale
        problems += litert_models.check_signatures(upscaler, "upscaler",
                                                   {"images": ((resolution, resolution, 3), np.float32)},
                                                   {"frames": ((size, size, 3), np.uint8)})
    if problems:
        raise BundleError([*problems[:-1], f"{problems[-1]}; "
                           f"{litert_models.convert_hint(root)}"])
    models = litert_models.LiteRTModels(generator, upscaler)
    if not models.batch_sizes or models.batch_sizes[0] != 1:
        raise BundleError(f"{root}: the LiteRT generator and upscaler share no batch_1 signature; "
                          f"{litert_models.convert_hint(root)}")
    return models


def choose_backend(backend: str, root: Path, manifest: dict, spec: Manifest, with_upscaler: bool,
                   threads: int) -> litert_models.LiteRTModels | None:
    """The LiteRT models when `backend` takes them, None for TensorFlow; one BundleError line when neither runs."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "tf":
        return None
    try:
        return open_litert(root, manifest, spec, with_upscaler, threads)
    except (BundleError, FileNotFoundError) as error:
        reason = "; ".join(error.problems) if isinstance(error, BundleError) else str(error)
        if backend == "litert":
            raise BundleError(f"{reason} (or run with --backend tf)") from None
        if not tensorflow_available():
            raise BundleError(f"{reason}; TensorFlow, the other backend, is not installed ({TRAIN_INSTALL})") \
                from None
        report = log.info if isinstance(error, litert_models.NoLiteRTModels) else log.warning
        report("%s: using the TensorFlow backend", reason)
        return None


def load_bundle(bundle_dir: str | os.PathLike, *, with_upscaler: bool = True, with_index: bool = True,
                backend: str = "tf", threads: int = 0) -> Bundle:
    """The whole bundle, checked: schema, paths, models against the manifest, and the index files.

    backend: "tf" loads the Keras models; "litert" the LiteRT files (threads: 0 = one per core); "auto" LiteRT
    when the bundle has it, else TensorFlow. The Bundle says which it got.
    """
    root = bundle_folder(bundle_dir)
    manifest, spec = open_manifest(root)
    if spec.generator is None:
        raise BundleError(f"{spec.path} has no generator; run `python -m training export` first")
    litert = choose_backend(backend, root, manifest, spec, with_upscaler, threads)
    if litert is not None:
        index = read_index(root, manifest) if with_index else None
        return Bundle(path=Path(bundle_dir), manifest=manifest, generator=None, upscaler=None, spec=spec,
                      index=index, backend="litert", litert=litert, threads=threads)
    generator_file = model_path(root, "generator", manifest)
    generator = load_model(generator_file)
    problems = check_generator(generator, spec.generator.resolution, spec.generator.latent_dim, generator_file,
                               spec.path)
    upscaler = None
    if with_upscaler and spec.upscaler is not None:
        upscaler_file = model_path(root, "upscaler", manifest)
        upscaler = load_model(upscaler_file)
        if not problems:
            problems += check_upscaler(upscaler, spec.generator.resolution, spec.upscaler, upscaler_file, spec.path)
    if problems:
        raise BundleError(problems)
    index = read_index(root, manifest) if with_index else None
    return Bundle(path=Path(bundle_dir), manifest=manifest, generator=generator, upscaler=upscaler, spec=spec,
                  index=index, backend="tf", threads=threads)
