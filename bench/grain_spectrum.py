"""Where a bundle's display frames carry grain: log10 of their power over the collection's at the frequencies the
checkerboard ratio adds up (period 2 and 4, along an axis and diagonally), so a failing ratio names its pattern.

    python bench/grain_spectrum.py BUNDLE [...] --data DATASET_AT_DISPLAY_SIZE [--frames 96] [--images 200]

Frames come through the one render path, upscaled; the same frames enlarged by bicubic are the baseline row of
each bundle (they carry the generator's pattern without the upscaler's). 0 means the collection's power; +1 is
ten times it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from models.bundle import load_bundle  # noqa: E402
from models.render import Renderer  # noqa: E402
from training import quality  # noqa: E402
from training.quality_cli import collection_images, latents  # noqa: E402

# Offsets from the centre of an fft-shifted spectrum, in units of size / period.
FREQUENCIES = {"p2 axis": [(2, 0), (0, 2)], "p2 diagonal": [(2, 2)], "p4 axis": [(4, 0), (0, 4)],
               "p4 diagonal": [(4, 4), (-4, 4)], "p2 x p4": [(4, 2), (2, 4)]}


def log_ratios(spectrum: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """log10 power of `spectrum` over `reference` summed at each named frequency."""
    size = spectrum.shape[0]
    centre = size // 2

    def power(image_spectrum, points):
        return sum(image_spectrum[(centre + (size // a if a else 0)) % size, (centre + (size // b if b else 0)) % size]
                   for a, b in points)

    return {name: float(np.log10(power(spectrum, points) / power(reference, points)))
            for name, points in FREQUENCIES.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--data", required=True, help="dataset rendered at the display size")
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    renderers = {path: Renderer(load_bundle(path, with_upscaler=True), max_batch=16) for path in args.bundles}
    noise = {path: latents(args.frames, renderer.bundle.latent_dim, 0) for path, renderer in renderers.items()}
    size = next(iter(renderers.values())).output_size(upscale=True)
    reference = quality.power_spectra(collection_images(args.data, size, args.images, 0))
    print("log10 power over the collection's:", " | ".join(FREQUENCIES))
    for path, renderer in renderers.items():
        frames = renderer.render(noise[path], upscale=True)
        bicubic = np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_CUBIC)
                            for frame in renderer.render(noise[path], upscale=False)])
        for label, images in ((path, frames), ("  same frames, bicubic", bicubic)):
            ratios = log_ratios(quality.power_spectra(images), reference)
            print(f"{label}: " + " | ".join(f"{value:+.2f}" for value in ratios.values()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
