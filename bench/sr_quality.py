"""Display-size quality of x4 upscalers on perfect inputs: held-out collection images at 4x the input size,
area-downsampled, upscaled, and compared with the originals by the quality command's own figures (spectra and
sliced Wasserstein distance), beside bicubic and beside two halves of the originals.

    python bench/sr_quality.py RUN_OR_BUNDLE_UPSCALER [...] --data DATASET_AT_512 [--count 64]

Each argument is an SRGAN run folder (its exported weights: the average when the run keeps one), an
`upscaler.keras`, or RUN@STEP for one checkpoint. Perfect inputs isolate the upscaler from the generator; the
quality command's `--display` measures both together on a bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models import metrics  # noqa: E402
from training import data  # noqa: E402
from training import quality as figures_of  # noqa: E402
from training.checkpoints import read_run_config  # noqa: E402
from training.evaluate import load_upscaler  # noqa: E402
from training.runs import to_uint8  # noqa: E402
from training.srgan import bicubic_upscale, build_upscaler, holdout_ids, read_images_by_id  # noqa: E402

SCALE = 4


def figures(images: np.ndarray, originals: np.ndarray) -> dict:
    found = {**figures_of.spectral_figures(images, originals),
             "swd": figures_of.swd_figures(images, originals, 0)["swd"]}
    return {name: round(float(value), 4) for name, value in found.items()}


def load(source: str):
    if "@" not in source:
        return load_upscaler(source)[0]
    run, step = source.split("@")
    config = read_run_config(run)
    model = build_upscaler(config)
    key = "ema_upscaler" if config.get("ema_decay", 0) else "upscaler"
    tf.train.Checkpoint(**{key: model}).restore(f"{run}/checkpoints/ckpt-{step}").expect_partial()
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", required=True, help="a dataset ingested at the output size (e.g. 512)")
    parser.add_argument("--count", type=int, default=64, help="held-out images (default 64)")
    args = parser.parse_args(argv)
    manifest = data.load_manifest(args.data)
    originals = read_images_by_id(args.data, holdout_ids(manifest, args.count))
    size = originals.shape[1] // SCALE
    inputs = data.to_float(np.asarray(data.resize_uint8(tf.constant(originals), size))).numpy()
    half = len(originals) // 2
    print(f"{len(originals)} held-out images of {args.data}, {size} -> {size * SCALE} px")
    print("real half vs real half", json.dumps(figures(originals[:half], originals[half:])))
    bicubic = to_uint8(bicubic_upscale(inputs, SCALE))
    print("bicubic", json.dumps({**figures(bicubic, originals),
                                 "psnr_y": round(metrics.psnr_y(bicubic, originals, shave=SCALE), 2)}))
    for source in args.models:
        model = load(source)
        upscaled = to_uint8(np.concatenate([np.asarray(model(inputs[i:i + 8], training=False))
                                            for i in range(0, len(inputs), 8)]))
        print(source, json.dumps({**figures(upscaled, originals),
                                  "psnr_y": round(metrics.psnr_y(upscaled, originals, shave=SCALE), 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
