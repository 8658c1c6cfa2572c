"""Image-quality figures for generated frames against a collection, without any downloaded network.

Every figure is a comparison of two image sets (uint8 NHWC, the same size): the generator's frames against the
collection, and, as the yardstick, one half of the collection against the other half. A figure near the
yardstick's is "as good as real" for that figure.

- Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, "Progressive Growing of GANs"):
  how close the local statistics of texture (finest level) up to form (coarsest level) are. Reported x1e3.
- Spectra (Durall et al. 2020, "Watch your Up-Convolution"): grey images, Hann-windowed, power spectra
  averaged over images. Log-spectral distance: RMS of log10 of the ratio of the radially averaged spectra.
  Checkerboard ratio: power at the period-2 and period-4 frequencies, where transposed convolutions paint
  their pattern. High-frequency ratio: power in the top third of radial frequencies. Both generated / real.
  Spectrum by band: the mean log10 ratio in bands of the radius as a fraction of Nyquist, which says where the
  log-spectral distance comes from (a generator short of its finest octave shows it in the last band).
- Diversity: pairs of samples closer than 0.05 RMS at 32 px (near-identical faces).
- Memorisation: share of samples closer to a training image than the collection's own nearest neighbours
  are to each other at their 5th percentile (RMS at 32 px).

Pure numpy (cv2 for resizing); deterministic for a given seed.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.metrics import pairwise_rms_distances, small_vectors

PYRAMID_MIN_SIZE = 16
PATCH_SIZE = 7
PATCHES_PER_IMAGE = 64
PROJECTIONS = 512
PROJECTION_REPEATS = 4
NEAR_IDENTICAL_RMS = 0.05
DIVERSITY_SAMPLES = 128
COMPARE_SIZE = 32
# Images per Fourier transform batch in power_spectra: about 200 MB of float64 work at 512 px.
SPECTRUM_CHUNK = 64
# BT.601 luma weights: every spectral figure, and the training terms that mirror them, look at this grey.
LUMA = (0.299, 0.587, 0.114)


def grey(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float64 NHW luma in [0, 1] (BT.601)."""
    array = np.asarray(images, dtype=np.float64) / 255.0
    return array @ np.array(LUMA)


def hann_window(height: int, width: int) -> np.ndarray:
    """The 2-D Hann window the spectra are taken through, so the image's borders add no false high frequencies."""
    return np.outer(np.hanning(height), np.hanning(width))


def power_spectra(images: np.ndarray, chunk: int = SPECTRUM_CHUNK) -> np.ndarray:
    """The mean 2-D power spectrum (fft-shifted, DC at the centre) of Hann-windowed grey images.

    Summed `chunk` images at a time: a thousand 512 px images as one float64 batch, with its transform, would
    need some 15 GB, and the quality command has to run beside a live piece on a modest machine."""
    images = np.asarray(images)
    window = hann_window(images.shape[1], images.shape[2])
    total = np.zeros(images.shape[1:3])
    for start in range(0, len(images), chunk):
        luma = grey(images[start : start + chunk])
        centred = (luma - luma.mean(axis=(1, 2), keepdims=True)) * window
        total += (np.abs(np.fft.fft2(centred)) ** 2).sum(axis=0)
    return np.fft.fftshift(total / len(images))


def radial_bins(height: int, width: int) -> tuple[np.ndarray, int]:
    """Each frequency's integer radius from the centre of an fft-shifted height x width spectrum, and the last
    radius averaged (the Nyquist: radii beyond it, in the corners, are left out)."""
    rows, columns = np.indices((height, width))
    return np.rint(np.hypot(rows - height // 2, columns - width // 2)).astype(int), min(height, width) // 2


def radial_profile(spectrum: np.ndarray) -> np.ndarray:
    """Azimuthal average of a centred 2-D spectrum over integer radii 1..size/2 (DC left out)."""
    radius, limit = radial_bins(*spectrum.shape)
    sums = np.bincount(radius.ravel(), spectrum.ravel(), minlength=limit + 1)
    counts = np.bincount(radius.ravel(), minlength=limit + 1)
    return sums[1 : limit + 1] / np.maximum(counts[1 : limit + 1], 1)


def checkerboard_frequencies(size: int) -> list[tuple[int, int]]:
    """(row, column) in an fft-shifted size x size spectrum of every frequency whose period is 2 or 4 pixels
    along each axis (or constant along one): where transposed convolutions and pixel shuffles paint their pattern."""
    centre = size // 2
    offsets = sorted({0, size // 4, size // 2, -size // 4})
    return [((centre + row) % size, (centre + column) % size) for row in offsets for column in offsets
            if (row, column) != (0, 0)]


def checkerboard_power(spectrum: np.ndarray) -> float:
    """Power at the checkerboard frequencies of a centred square spectrum."""
    return float(sum(spectrum[row, column] for row, column in checkerboard_frequencies(spectrum.shape[0])))


SPECTRUM_BANDS = ((0, 1 / 8), (1 / 8, 1 / 4), (1 / 4, 1 / 2), (1 / 2, 3 / 4), (3 / 4, 7 / 8), (7 / 8, 1))


def band_name(low: float, high: float) -> str:
    return f"{low:g}-{high:g}"


def band_names() -> list[str]:
    """The SPECTRUM_BANDS keys of a report, lowest band first."""
    return [band_name(low, high) for low, high in SPECTRUM_BANDS]


def format_bands(bands: dict[str, float]) -> str:
    """A report's spectrum_bands as one table cell, lowest band first."""
    return " / ".join(f"{bands[name]:+.2f}" for name in band_names())


def spectrum_bands(log_ratio: np.ndarray) -> dict[str, float]:
    """Mean log10(generated / real) over radii 1..N (N = Nyquist) in each SPECTRUM_BANDS band of r / N."""
    fractions = np.arange(1, len(log_ratio) + 1) / len(log_ratio)
    return {band_name(low, high): float(log_ratio[(fractions > low) & (fractions <= high)].mean())
            for low, high in SPECTRUM_BANDS}


def spectral_figures(generated: np.ndarray, real: np.ndarray) -> dict:
    """Log-spectral distance, checkerboard ratio and high-frequency ratio of `generated` against `real`."""
    generated_spectrum, real_spectrum = power_spectra(generated), power_spectra(real)
    generated_profile, real_profile = radial_profile(generated_spectrum), radial_profile(real_spectrum)
    tiny = 1e-20
    log_ratio = np.log10((generated_profile + tiny) / (real_profile + tiny))
    top_third = slice(int(len(real_profile) * 2 / 3), None)
    checkerboard = checkerboard_power(generated_spectrum) / (checkerboard_power(real_spectrum) + tiny)
    return {
        "log_spectral_distance": float(np.sqrt(np.mean(log_ratio**2))),
        "checkerboard_ratio": float(checkerboard),
        "high_frequency_ratio": float(generated_profile[top_third].sum() / (real_profile[top_third].sum() + tiny)),
        "spectrum_bands": spectrum_bands(log_ratio),
    }


def check_same_size(generated: np.ndarray, real: np.ndarray) -> None:
    if generated.shape[1:] != real.shape[1:]:
        raise ValueError(f"generated images {generated.shape[1:]} and real images {real.shape[1:]} differ in size")


def pyramid_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """(height, width) of each Laplacian-pyramid level, finest first, down to PYRAMID_MIN_SIZE px."""
    sizes = [(height, width)]
    while sizes[-1][0] > PYRAMID_MIN_SIZE:
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    return sizes


def image_pyramid(image: np.ndarray) -> list[np.ndarray]:
    """One uint8 HWC image's float32 Laplacian pyramid, finest level first (the last level is Gaussian)."""
    current = image.astype(np.float32) / 255.0
    levels = []
    for _ in pyramid_sizes(*image.shape[:2])[:-1]:
        smaller = cv2.pyrDown(current)
        levels.append(current - cv2.pyrUp(smaller, dstsize=(current.shape[1], current.shape[0])))
        current = smaller
    return [*levels, current]


def patch_positions(count: int, height: int, width: int, rng: np.random.Generator) -> tuple:
    """Random top-left corners of PATCHES_PER_IMAGE patches in each of `count` images, and the patch side."""
    size = min(PATCH_SIZE, height, width)
    tops = rng.integers(0, height - size + 1, (count, PATCHES_PER_IMAGE))
    lefts = rng.integers(0, width - size + 1, (count, PATCHES_PER_IMAGE))
    return tops, lefts, size


def pyramid_patches(images: np.ndarray, positions: list[tuple]) -> list[np.ndarray]:
    """Per level, the flattened patches at that level's positions, image after image.

    Each image's pyramid is built, sampled and dropped: memory holds the patches (about 40 MB per level for a
    thousand images), not the pyramids (4 GB for a thousand 512 px images, twice over for real against real)."""
    channels = images.shape[3]
    patches = [np.empty((len(images) * PATCHES_PER_IMAGE, size * size * channels), np.float32)
               for _, _, size in positions]
    for index, image in enumerate(images):
        rows_of_image = slice(index * PATCHES_PER_IMAGE, (index + 1) * PATCHES_PER_IMAGE)
        for level, (tops, lefts, size), level_patches in zip(image_pyramid(image), positions, patches, strict=True):
            offsets = np.arange(size)
            rows = tops[index][:, None, None] + offsets[:, None]
            columns = lefts[index][:, None, None] + offsets[None, :]
            level_patches[rows_of_image] = level[rows, columns].reshape(PATCHES_PER_IMAGE, -1)
    return patches


def projection_draws(first_count: int, second_count: int, dimensions: int, rng: np.random.Generator) -> tuple:
    """The random parts of one sliced Wasserstein distance: equal-sized subsets of both sets and unit directions."""
    count = min(first_count, second_count)
    first_order = rng.permutation(first_count)[:count]
    second_order = rng.permutation(second_count)[:count]
    directions = []
    for _ in range(PROJECTION_REPEATS):
        drawn = rng.standard_normal((dimensions, PROJECTIONS))
        directions.append(drawn / np.linalg.norm(drawn, axis=0, keepdims=True))
    return first_order, second_order, directions


def sliced_wasserstein(first: np.ndarray, second: np.ndarray, draws: tuple) -> float:
    """Mean over the drawn unit directions of the 1-D Wasserstein distance of the projected point sets."""
    first_order, second_order, directions = draws
    first, second = first[first_order], second[second_order]
    return float(np.mean([np.mean(np.abs(np.sort(first @ direction, axis=0) - np.sort(second @ direction, axis=0)))
                          for direction in directions]))


def swd_figures(generated: np.ndarray, real: np.ndarray, seed: int) -> dict:
    """SWD x1e3 per pyramid level (finest first, named by its size) and their average.

    Every random draw (patch positions, subsets, directions) is made first, level by level in a fixed order, so
    the figures depend on the seed alone; then each image's pyramid is sampled once."""
    generated, real = np.asarray(generated), np.asarray(real)
    check_same_size(generated, real)
    rng = np.random.default_rng(seed)
    sizes = pyramid_sizes(*generated.shape[1:3])
    generated_positions, real_positions, draws = [], [], []
    for height, width in sizes:
        generated_positions.append(patch_positions(len(generated), height, width, rng))
        real_positions.append(patch_positions(len(real), height, width, rng))
        dimensions = generated_positions[-1][2] ** 2 * generated.shape[3]
        draws.append(projection_draws(len(generated) * PATCHES_PER_IMAGE, len(real) * PATCHES_PER_IMAGE,
                                      dimensions, rng))
    per_level = {}
    levels = zip(sizes, pyramid_patches(generated, generated_positions), pyramid_patches(real, real_positions),
                 draws, strict=True)
    for (height, _), generated_patches, real_patches, level_draws in levels:
        # Normalised per channel by the real patches' statistics, as in Karras et al., so levels compare.
        mean, std = real_patches.mean(axis=0), real_patches.std(axis=0) + 1e-8
        distance = sliced_wasserstein((generated_patches - mean) / std, (real_patches - mean) / std, level_draws)
        per_level[str(height)] = round(distance * 1e3, 3)
    return {"swd_per_level": per_level, "swd": round(float(np.mean(list(per_level.values()))), 3)}


def nearest_distances(queries: np.ndarray, references: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """RMS distance from each query vector to its nearest reference vector."""
    squared = (queries**2).sum(axis=1)[:, None] + (references**2).sum(axis=1)[None, :] - 2 * queries @ references.T
    squared = np.maximum(squared, 0.0)
    if exclude_self:
        np.fill_diagonal(squared, np.inf)
    return np.sqrt(squared.min(axis=1) / queries.shape[1])


def diversity_figures(generated: np.ndarray) -> dict:
    sample = np.asarray(generated)[:DIVERSITY_SAMPLES]
    distances = pairwise_rms_distances(sample, size=COMPARE_SIZE)
    return {"near_identical_pairs": int((distances < NEAR_IDENTICAL_RMS).sum()), "diversity_samples": len(sample)}


def memorisation_share(generated: np.ndarray, training: np.ndarray) -> dict:
    """Share of samples closer to a training image than 95% of training images are to their own neighbour."""
    references = small_vectors(training, COMPARE_SIZE)
    own = nearest_distances(references, references, exclude_self=True)
    threshold = float(np.percentile(own, 5))
    to_training = nearest_distances(small_vectors(generated, COMPARE_SIZE), references)
    return {"memorisation_share": float(np.mean(to_training < threshold)), "memorisation_threshold_rms": threshold}


def compare(generated: np.ndarray, real: np.ndarray, training: np.ndarray, seed: int) -> dict:
    """Every figure for one image set against the real images (and the training images, for memorisation)."""
    check_same_size(generated, real)
    return {
        **swd_figures(generated, real, seed),
        **spectral_figures(generated, real),
        **diversity_figures(generated),
        **memorisation_share(generated, training),
    }


# Issue 14's targets for a generator at its own resolution against its collection: figure -> (low, high).
# The checkerboard ratio moves between neighbouring checkpoints of one run (0.98 to 2.2 here), so a recipe picks its
# checkpoint on these rather than trusting a fixed step count.
GENERATOR_TARGETS = {
    "log_spectral_distance": (0.0, 0.07),
    "checkerboard_ratio": (0.0, 1.2),
    "high_frequency_ratio": (0.8, 1.25),
    "near_identical_pairs": (0, 2),
    "memorisation_share": (0.0, 0.05),
}


def target_misses(figures: dict) -> list[str]:
    """The names of the figures outside GENERATOR_TARGETS, in the order of the targets."""
    return [name for name, (low, high) in GENERATOR_TARGETS.items() if not low <= figures[name] <= high]


# Issue 14's targets for a bundle at the display size (its frames upscaled x4, against the collection rendered at
# that size): figure -> (low, high). "swd_share_of_bicubic" is the frames' SWD over that of the same generator frames
# enlarged by bicubic interpolation: the upscaler must take 40% of it away.
DISPLAY_TARGETS = {
    "swd_share_of_bicubic": (0.0, 0.6),
    "log_spectral_distance": (0.0, 0.35),
    "checkerboard_ratio": (0.0, 1.5),
    "high_frequency_ratio": (0.5, float("inf")),
}


def display_target_misses(report: dict) -> list[str]:
    """The names of a display report's figures (quality_report with a "bicubic" alternative) outside
    DISPLAY_TARGETS."""
    figures = {**report["generated"], "swd_share_of_bicubic": report["generated"]["swd"] / report["bicubic"]["swd"]}
    return [name for name, (low, high) in DISPLAY_TARGETS.items() if not low <= figures[name] <= high]


def choose_checkpoint(figures_by_step: dict[int, dict]) -> int:
    """The step whose frames miss the fewest targets; among those, the lowest SWD; then the later step."""
    if not figures_by_step:
        raise ValueError("no checkpoints to choose from")
    return min(figures_by_step, key=lambda step: (len(target_misses(figures_by_step[step])),
                                                  figures_by_step[step]["swd"], -step))


def quality_report(generated: np.ndarray, collection: np.ndarray, seed: int = 0,
                   alternatives: dict[str, np.ndarray] | None = None) -> dict:
    """Figures for `generated` against the collection, beside the same figures for two halves of the collection.

    The collection is split at random (by seed) into halves A and B; generated frames are compared with A, and
    half B is compared with half A the same way, so both columns measure against the same real images. For
    memorisation the generated frames are looked up in the whole collection (what the generator saw), half B
    in half A. `alternatives` (for example the same frames enlarged by bicubic instead of the upscaler) are
    measured like the generated frames, each in its own column.
    """
    collection = np.asarray(collection)
    if len(collection) < 4:
        raise ValueError(f"the quality report needs at least 4 collection images, got {len(collection)}")
    order = np.random.default_rng(seed).permutation(len(collection))
    half = len(collection) // 2
    first, second = collection[order[:half]], collection[order[half : 2 * half]]
    report = {
        "samples": len(generated),
        "collection_images": 2 * half,
        "reference_images": half,
        "size": int(collection.shape[1]),
        "seed": seed,
        "generated": compare(np.asarray(generated), first, collection, seed),
        "real_vs_real": compare(second, first, first, seed),
    }
    for name, images in (alternatives or {}).items():
        report[name] = compare(np.asarray(images), first, collection, seed)
    return report


def format_table(report: dict) -> list[str]:
    """Markdown rows: each figure for the generated frames beside the real-vs-real yardstick (and any
    alternative rendering of the same frames the report holds, such as bicubic enlargement)."""
    columns = ["generated", *[name for name in ALTERNATIVES if name in report], "real_vs_real"]
    rows = [
        ("sliced Wasserstein distance (x1e3, mean of levels)", "swd", 2),
        ("log-spectral distance", "log_spectral_distance", 3),
        ("checkerboard ratio (period 2 and 4 power)", "checkerboard_ratio", 2),
        ("high-frequency ratio (top third of frequencies)", "high_frequency_ratio", 2),
        (f"near-identical pairs among {report['generated']['diversity_samples']}", "near_identical_pairs", 0),
        ("memorisation share", "memorisation_share", 3),
    ]
    lines = ["| figure | " + " | ".join(COLUMN_TITLES[name] for name in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for label, key, digits in rows:
        lines.append(f"| {label} | " + " | ".join(f"{report[name][key]:.{digits}f}" for name in columns) + " |")
    # Finest level first, also after a JSON round trip has sorted the sizes as text.
    levels = [" / ".join(f"{size}: {value:.1f}" for size, value in
                         sorted(report[name]["swd_per_level"].items(), key=lambda level: -int(level[0])))
              for name in columns]
    lines.append("| SWD per level (px: x1e3) | " + " | ".join(levels) + " |")
    if all("spectrum_bands" in report[name] for name in columns):  # reports written before the bands had none
        bands = [format_bands(report[name]["spectrum_bands"]) for name in columns]
        lines.append(f"| spectrum, log10 generated/real by band of Nyquist ({', '.join(band_names())}) | "
                     + " | ".join(bands) + " |")
    return lines


ALTERNATIVES = ("bicubic",)
COLUMN_TITLES = {"generated": "generated", "bicubic": "same frames, bicubic", "real_vs_real": "real vs real"}
