"""The spectral and diversity figures of a run's checkpoints, quickly, to see how they move during training.

The quality command measures one checkpoint fully (with SWD and memorisation, about five minutes here); this
screens many: for each step it renders 512 frames of the exported generator (weight average, standing statistics)
and compares them with 1,000 collection images through the quality module's own functions: log-spectral distance,
checkerboard and high-frequency ratios, the spectrum by band of Nyquist, and near-identical pairs among the first
128 frames. The figures differ from the quality command's by the reference set (all 1,000 images, not one half).

    python bench/checkpoint_spectra.py RUN STEP [STEP ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from training import quality  # noqa: E402
from training.quality_cli import QualityConfig, collection_images, generated_frames  # noqa: E402

SAMPLES, COLLECTION, SEED = 512, 1000, 0


def screen(run: str, step: int, real: np.ndarray | None) -> tuple[str, np.ndarray]:
    frames, data_dir, _ = generated_frames(QualityConfig(run=run, step=step, samples=SAMPLES, seed=SEED))
    if real is None:
        real = collection_images(data_dir, frames.shape[1], COLLECTION, SEED)
    figures = quality.spectral_figures(frames, real)
    pairs = quality.diversity_figures(frames[: quality.DIVERSITY_SAMPLES])["near_identical_pairs"]
    bands = quality.format_bands(figures["spectrum_bands"])
    return (f"| {step} | {figures['log_spectral_distance']:.3f} | {figures['checkerboard_ratio']:.2f} | "
            f"{figures['high_frequency_ratio']:.2f} | {pairs} | {bands} |"), real


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="DCGAN training run folder")
    parser.add_argument("steps", type=int, nargs="+", help="checkpoint steps to screen")
    args = parser.parse_args()
    print(f"| step | LSD | checkerboard | HF ratio | near-identical pairs /{quality.DIVERSITY_SAMPLES} | "
          f"spectrum by band ({', '.join(quality.band_names())}) |")
    print("|---|---|---|---|---|---|")
    real = None
    for step in args.steps:
        row, real = screen(args.run, step, real)
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
