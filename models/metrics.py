"""Image-quality metrics for super-resolution: PSNR and SSIM on RGB or on the BT.601 luma (Y) channel.

Pure numpy. Images are uint8 or float arrays shaped HxW, HxWxC or NxHxWxC with values in [0, data_range];
for a batch the result is the mean of the per-image values. `shave` crops that many pixels from every border
first (the SR convention is shave = scale).
"""

from __future__ import annotations

import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _as_nhwc(image, name: str) -> np.ndarray:
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        return array[None, :, :, None]
    if array.ndim == 3:
        return array[None]
    if array.ndim == 4:
        return array
    raise ValueError(f"{name} must be shaped HxW, HxWxC or NxHxWxC, got shape {array.shape}")


def _prepare(a, b, shave: int) -> tuple[np.ndarray, np.ndarray]:
    a4, b4 = _as_nhwc(a, "a"), _as_nhwc(b, "b")
    if a4.shape != b4.shape:
        raise ValueError(f"images must have the same shape, got {np.shape(a)} and {np.shape(b)}")
    if shave < 0:
        raise ValueError(f"shave must be >= 0, got {shave}")
    if shave:
        if min(a4.shape[1:3]) <= 2 * shave:
            raise ValueError(f"shave={shave} leaves nothing of a {a4.shape[1]}x{a4.shape[2]} image")
        a4 = a4[:, shave:-shave, shave:-shave]
        b4 = b4[:, shave:-shave, shave:-shave]
    return a4, b4


def psnr(a, b, data_range: float = 255, shave: int = 0) -> float:
    """Peak signal-to-noise ratio in dB; `inf` for identical images (a batch with any identical pair too)."""
    a4, b4 = _prepare(a, b, shave)
    mse = np.mean((a4 - b4) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(float(data_range) ** 2 / mse)
    return float(np.mean(values))


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    weights = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return weights / weights.sum()


def _filter_valid(images: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of NHWC images over H and W (like MATLAB filter2(..., 'valid'))."""
    taps = len(weights)
    height, width = images.shape[1] - taps + 1, images.shape[2] - taps + 1
    rows = sum(w * images[:, k : k + height] for k, w in enumerate(weights))
    return sum(w * rows[:, :, k : k + width] for k, w in enumerate(weights))


def ssim(a, b, data_range: float = 255, shave: int = 0) -> float:
    """Mean structural similarity (Wang et al. 2004): 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03.

    Local statistics are taken only where the window fits (no padding), per channel; the result is the mean
    over positions, channels and images.
    """
    a4, b4 = _prepare(a, b, shave)
    if min(a4.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(
            f"ssim needs images at least {SSIM_WINDOW}x{SSIM_WINDOW} after shaving, "
            f"got {a4.shape[1]}x{a4.shape[2]}"
        )
    weights = _gaussian_window()
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_a = _filter_valid(a4, weights)
    mu_b = _filter_valid(b4, weights)
    var_a = _filter_valid(a4 * a4, weights) - mu_a**2
    var_b = _filter_valid(b4 * b4, weights) - mu_b**2
    cov = _filter_valid(a4 * b4, weights) - mu_a * mu_b
    numerator = (2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2)
    denominator = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(numerator / denominator))


def rgb_to_y(image, data_range: float = 255) -> np.ndarray:
    """ITU-R BT.601 luma as in SR papers (MATLAB rgb2ycbcr): Y in [16, 235] on a 0..255 scale.

    `image` is (..., H, W, 3) RGB in [0, data_range]; the result is float64 (not rounded to integers, unlike
    MATLAB on uint8) and drops the channel axis: (..., H, W).
    """
    array = np.asarray(image, dtype=np.float64)
    if array.ndim < 3 or array.shape[-1] != 3:
        raise ValueError(f"rgb_to_y expects RGB images shaped (..., H, W, 3), got shape {array.shape}")
    rgb = array / float(data_range)
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])


def psnr_y(a, b, data_range: float = 255, shave: int = 0) -> float:
    """PSNR on the BT.601 Y channel (0..255 scale), the usual SR benchmark number."""
    return psnr(rgb_to_y(a, data_range)[..., None], rgb_to_y(b, data_range)[..., None], 255, shave)


def ssim_y(a, b, data_range: float = 255, shave: int = 0) -> float:
    """SSIM on the BT.601 Y channel (0..255 scale)."""
    return ssim(rgb_to_y(a, data_range)[..., None], rgb_to_y(b, data_range)[..., None], 255, shave)


def small_vectors(images, size: int = 32) -> np.ndarray:
    """uint8 NHWC images -> float64 (N, size * size * C) rows in [0, 1], area-resized to size x size px."""
    import cv2

    small = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) for image in np.asarray(images)])
    return small.reshape(len(small), -1).astype(np.float64) / 255.0


def pairwise_rms_distances(images, size: int = 32) -> np.ndarray:
    """RMS pixel distance (0..1) between every pair of uint8 images, compared at `size` px so that texture
    noise counts less than form and colour; returns the condensed upper triangle (i < j)."""
    array = np.asarray(images)
    if array.ndim != 4 or len(array) < 2:
        raise ValueError(f"pairwise distances need a batch of at least 2 NHWC images, got shape {array.shape}")
    flat = small_vectors(array, size)
    squared = np.sum(flat**2, axis=1)
    gram = flat @ flat.T
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * gram, 0.0) / flat.shape[1])
    upper = np.triu_indices(len(flat), k=1)
    return distances[upper]
