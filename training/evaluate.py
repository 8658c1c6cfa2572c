"""Upscaler evaluation on held-out dataset images: PSNR and SSIM (Y channel and RGB) against bicubic.

The evaluation set is the last `count` ids of the dataset manifest, the same ids an SRGAN run holds out of
training (`SRGANConfig.holdout`). Each stored image is resized (area filter) to the model's output size,
or kept at the stored size when that is smaller; that is the HR reference, and its bicubic x`scale`
reduction is the input. Metrics shave `scale` pixels from every border, as SR papers do.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from models import bundle, metrics
from training import data
from training.checkpoints import restore_upscaler
from training.runs import CONFIG_FILE, save_png, to_uint8
from training.srgan.pairs import bicubic_downscale, bicubic_upscale, comparison_strip, holdout_ids, read_images_by_id

log = logging.getLogger(__name__)

DEFAULT_COUNT = 32
SHOW = 4
BATCH = 8


def load_upscaler(model_path: str | Path) -> tuple[keras.Model, dict]:
    """The upscaler of a bundle, or the latest one of an SRGAN run folder, with what evaluation needs to know."""
    path = Path(model_path)
    if (path / bundle.MANIFEST).is_file():
        manifest = bundle.read_manifest(path)
        info = manifest.get("upscaler")
        if info is None:
            raise ValueError(
                f"bundle {path} has no upscaler; add one with `python -m training export-sr RUN --out {path}`"
            )
        training = info.get("training_config") or {}
        model = bundle.load_model(bundle.model_path(path, "upscaler", manifest))
        return model, {"scale": int(info["scale"]), "output_size": int(info["output_size"]),
                       "holdout": training.get("holdout"), "data": training.get("data"), "steps": info.get("steps")}
    if (path / CONFIG_FILE).is_file():
        model, config, step = restore_upscaler(path)
        return model, {"scale": config["scale"], "output_size": config["hr_size"], "holdout": config["holdout"],
                       "data": config["data"], "steps": step}
    raise FileNotFoundError(
        f"{path} is neither a model bundle ({bundle.MANIFEST}) nor an SRGAN run folder ({CONFIG_FILE})"
    )


def upscale(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [keras.ops.convert_to_numpy(model(images[start : start + BATCH], training=False))
         for start in range(0, len(images), BATCH)]
    )


def evaluate_upscaler(model: keras.Model, data_dir: str, *, scale: int, output_size: int,
                      count: int = DEFAULT_COUNT, out: str | Path | None = None) -> dict:
    """PSNR/SSIM of `model` and of bicubic on the last `count` dataset ids; optionally a side-by-side PNG."""
    manifest = data.load_manifest(data_dir)
    image_size = int(manifest["image_size"])
    if count < 1:
        raise ValueError(f"count {count} is outside the allowed range 1..{manifest['count']}")
    ids = holdout_ids(manifest, min(count, int(manifest["count"])))
    size = min(output_size, image_size) // scale * scale
    if size < output_size:
        log.info("dataset images are %d px: evaluating at %d px instead of the model's %d", image_size, size,
                 output_size)
    hr_uint8 = np.asarray(data.resize_uint8(read_images_by_id(data_dir, ids), size))
    lr = np.asarray(bicubic_downscale(data.to_float(hr_uint8), scale))
    sr = to_uint8(upscale(model, lr))
    bicubic = to_uint8(bicubic_upscale(lr, scale))
    result = {"count": len(ids), "eval_size": size, "scale": scale, "first_id": ids[0], "last_id": ids[-1]}
    for name, images in (("", sr), ("bicubic_", bicubic)):
        result[f"{name}psnr_y"] = metrics.psnr_y(images, hr_uint8, shave=scale)
        result[f"{name}ssim_y"] = metrics.ssim_y(images, hr_uint8, shave=scale)
        result[f"{name}psnr_rgb"] = metrics.psnr(images, hr_uint8, shave=scale)
        result[f"{name}ssim_rgb"] = metrics.ssim(images, hr_uint8, shave=scale)
    if out is not None:
        strip = comparison_strip(to_uint8(lr[:SHOW]), bicubic[:SHOW], sr[:SHOW], hr_uint8[:SHOW])
        result["side_by_side"] = str(save_png(strip, Path(out)))
    return result


def evaluate(model_path: str | Path, data_dir: str | None = None, count: int | None = None,
             out: str | Path | None = None) -> dict:
    """`python -m training eval-sr`: load the upscaler of a bundle or run and evaluate it on held-out images."""
    model, info = load_upscaler(model_path)
    data_dir = data_dir or info["data"]
    if not data_dir:
        raise ValueError(f"{model_path} does not record its dataset; pass --data DATASET")
    holdout = info["holdout"]
    if count is None:
        count = holdout or DEFAULT_COUNT
    if holdout is not None and count > holdout:
        log.warning("evaluating %d images but training held out only the last %d: the rest were trained on",
                    count, holdout)
    return evaluate_upscaler(model, data_dir, scale=info["scale"], output_size=info["output_size"], count=count,
                             out=out)


def summary_lines(result: dict) -> list[str]:
    lines = [f"{result['count']} held-out images (ids {result['first_id']}..{result['last_id']}) at "
             f"{result['eval_size']} px, x{result['scale']}"]
    for label, key, unit in (("PSNR-Y", "psnr_y", " dB"), ("SSIM-Y", "ssim_y", ""),
                             ("PSNR-RGB", "psnr_rgb", " dB"), ("SSIM-RGB", "ssim_rgb", "")):
        digits = 2 if unit else 4
        lines.append(f"{label:<9} upscaler {result[key]:.{digits}f}{unit}   "
                     f"bicubic {result['bicubic_' + key]:.{digits}f}{unit}")
    if "side_by_side" in result:
        lines.append(f"side by side (LR | bicubic | SR | HR): {result['side_by_side']}")
    return lines
