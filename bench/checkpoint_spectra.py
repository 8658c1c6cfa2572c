"""The spectral and diversity figures of a run's checkpoints, quickly, to see how they move during training.

The quality command measures one checkpoint fully (with SWD and memorisation, about five minutes here); this
screens many: for each step it renders 512 frames of the exported generator (weight average, standing statistics)
and compares them with 1,000 collection images through the quality module's own functions: log-spectral distance,
checkerboard and high-frequency ratios, the spectrum by band of Nyquist, and near-identical pairs among the first
128 frames. The figures differ from the quality command's by the reference set (all 1,000 images, not one half).
With --swd it adds the sliced Wasserstein distance per pyramid level (about a minute more per step here); on 512
frames its values run higher than the quality command's, so compare them only with each other.

    python bench/checkpoint_spectra.py RUN STEP [STEP ...] [--swd]
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


def screen(run: str, step: int, real: np.ndarray | None, swd: bool) -> tuple[str, np.ndarray]:
    frames, data_dir, _ = generated_frames(QualityConfig(run=run, step=step, samples=SAMPLES, seed=SEED))
    if real is None:
        real = collection_images(data_dir, frames.shape[1], COLLECTION, SEED)
    figures = quality.spectral_figures(frames, real)
    pairs = quality.diversity_figures(frames[: quality.DIVERSITY_SAMPLES])["near_identical_pairs"]
    bands = quality.format_bands(figures["spectrum_bands"])
    row = (f"| {step} | {figures['log_spectral_distance']:.3f} | {figures['checkerboard_ratio']:.2f} | "
           f"{figures['high_frequency_ratio']:.2f} | {pairs} | {bands} |")
    if swd:
        distances = quality.swd_figures(frames, real, SEED)
        levels = ", ".join(f"{value:.1f}" for value in distances["swd_per_level"].values())
        row += f" {distances['swd']:.1f} | {levels} |"
    return row, real


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="DCGAN training run folder")
    parser.add_argument("steps", type=int, nargs="+", help="checkpoint steps to screen")
    parser.add_argument("--swd", action="store_true", help="add the sliced Wasserstein distance per level")
    args = parser.parse_args()
    header = (f"| step | LSD | checkerboard | HF ratio | near-identical pairs /{quality.DIVERSITY_SAMPLES} | "
              f"spectrum by band ({', '.join(quality.band_names())}) |")
    if args.swd:
        header += " SWD | SWD per level, finest first |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    real = None
    for step in args.steps:
        row, real = screen(args.run, step, real, args.swd)
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
