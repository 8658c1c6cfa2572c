"""The model bundle: one self-describing folder that is the whole deployment of a piece.

Layout and manifest fields are documented in docs/CONVENTIONS.md. Training writes sections of the
manifest one at a time (generator, upscaler, index); the runtime loads the whole thing in safe mode.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

FORMAT = "masquerade-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SECTIONS = ("generator", "upscaler", "index", "dataset", "quality")


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict
    generator: keras.Model
    upscaler: keras.Model | None

    @property
    def resolution(self) -> int:
        return int(self.manifest["generator"]["resolution"])

    @property
    def latent_dim(self) -> int:
        return int(self.manifest["generator"]["latent_dim"])

    @property
    def upscale_factor(self) -> int:
        return int(self.manifest["upscaler"]["scale"]) if self.upscaler is not None else 1


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON under a temporary name and rename it into place, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, 0o644)  # mkstemp makes 0600; a kiosk may read the bundle as another user
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_manifest(bundle_dir: str | os.PathLike) -> dict:
    path = Path(bundle_dir) / MANIFEST
    if not Path(bundle_dir).is_dir():
        raise FileNotFoundError(f"model bundle {bundle_dir} does not exist (expected a folder holding {MANIFEST})")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {bundle_dir} is not a model bundle")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); re-export the bundle") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a Masquerade bundle manifest (format must be {FORMAT!r})")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {manifest.get('format_version')}; this Masquerade reads up to "
            f"{FORMAT_VERSION}: upgrade Masquerade"
        )
    return manifest


def update_manifest(bundle_dir: str | os.PathLike, section: str, info: dict) -> dict:
    """Replace one section of the manifest, keeping the others."""
    if section not in SECTIONS:
        raise ValueError(f"unknown bundle section {section!r}; choose one of {SECTIONS}")
    path = Path(bundle_dir) / MANIFEST
    if path.is_file():
        manifest = read_manifest(bundle_dir)
    else:
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "created": now_iso()}
    manifest[section] = info
    manifest["updated"] = now_iso()
    write_json_atomic(path, manifest)
    return manifest


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


def load_model(path: Path) -> keras.Model:
    """Load a bundle model in safe mode (no Lambda layers, no arbitrary code)."""
    import models.dcgan  # noqa: F401  (registers the discriminator's custom layer)
    import models.srgan  # noqa: F401  (registers the custom layers the upscalers use)

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the bundle; re-export it")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except (ValueError, OSError, KeyError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{path} could not be loaded ({first_line}); the file is corrupt or not a Keras model"
        ) from None


def load_bundle(bundle_dir: str | os.PathLike, *, with_upscaler: bool = True) -> Bundle:
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    if "generator" not in manifest:
        raise ValueError(f"{bundle_dir / MANIFEST} has no generator; run `python -m training export` first")
    generator = load_model(bundle_dir / manifest["generator"]["file"])
    upscaler = None
    if with_upscaler and "upscaler" in manifest:
        upscaler = load_model(bundle_dir / manifest["upscaler"]["file"])
    return Bundle(path=bundle_dir, manifest=manifest, generator=generator, upscaler=upscaler)
