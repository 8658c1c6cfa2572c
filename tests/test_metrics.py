"""PSNR, SSIM and BT.601 luma, checked against closed forms and a brute-force reference."""

import math

import numpy as np
import pytest

from models import metrics


def texture(shape=(32, 40, 3), seed=0):
    """A smooth-ish random uint8 image (so SSIM is not dominated by pure noise)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 215, shape)
    smooth = (base + np.roll(base, 1, axis=0) + np.roll(base, 1, axis=1) + np.roll(base, 1, axis=(0, 1))) / 4
    return np.round(smooth).astype(np.uint8)


def brute_force_ssim(a, b, data_range=255.0):
    """Wang et al. SSIM with an explicit 11x11 Gaussian window at every valid position (single channel)."""
    offsets = np.arange(11) - 5.0
    g = np.exp(-(offsets**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            mu_a, mu_b = (window * pa).sum(), (window * pb).sum()
            var_a = (window * (pa - mu_a) ** 2).sum()
            var_b = (window * (pb - mu_b) ** 2).sum()
            cov = (window * (pa - mu_a) * (pb - mu_b)).sum()
            values.append(
                ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
            )
    return float(np.mean(values))


def test_identical_images():
    image = texture()
    assert metrics.psnr(image, image) == math.inf
    assert metrics.ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert metrics.psnr_y(image, image) == math.inf
    assert metrics.ssim_y(image, image) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_uniform_error():
    image = texture()
    brighter = image.astype(np.int16) + 5
    assert metrics.psnr(image, brighter) == pytest.approx(20 * math.log10(255 / 5), abs=1e-9)
    assert metrics.psnr(image / 255.0, brighter / 255.0, data_range=1.0) == pytest.approx(
        20 * math.log10(255 / 5), abs=1e-9
    )


def test_psnr_batch_is_mean_of_images():
    a = texture(seed=1)
    batch_a = np.stack([a, a])
    batch_b = np.stack([a.astype(np.int16) + 5, a.astype(np.int16) + 10])
    expected = (20 * math.log10(255 / 5) + 20 * math.log10(255 / 10)) / 2
    assert metrics.psnr(batch_a, batch_b) == pytest.approx(expected)


def test_shave_ignores_borders():
    a = texture()
    b = a.copy()
    b[:4] = 0
    b[:, -4:] = 255
    assert metrics.psnr(a, b, shave=4) == math.inf
    assert metrics.ssim(a, b, shave=4) == pytest.approx(1.0)
    assert metrics.psnr(a, b) < 30


def test_ssim_matches_brute_force_reference():
    a = texture((24, 26), seed=2)
    b = np.clip(a + np.random.default_rng(3).normal(0, 12, a.shape), 0, 255)
    assert metrics.ssim(a, b) == pytest.approx(brute_force_ssim(a, b), rel=1e-10)


def test_ssim_rgb_is_mean_over_channels():
    a = texture((20, 22, 3), seed=4)
    b = np.clip(a + np.random.default_rng(5).normal(0, 20, a.shape), 0, 255)
    per_channel = [brute_force_ssim(a[..., c], b[..., c]) for c in range(3)]
    assert metrics.ssim(a, b) == pytest.approx(np.mean(per_channel), rel=1e-10)


def test_ssim_symmetric_and_decreasing_with_noise():
    a = texture(seed=6)
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 1, a.shape)
    scores = [metrics.ssim(a, np.clip(a + sigma * noise, 0, 255)) for sigma in (2, 8, 20, 50)]
    assert all(x > y for x, y in zip(scores, scores[1:], strict=False))
    b = np.clip(a + 8 * noise, 0, 255)
    assert metrics.ssim(a, b) == pytest.approx(metrics.ssim(b, a), rel=1e-12)


def test_ssim_of_constant_offset_is_luminance_term():
    # b = a + c keeps variance and covariance equal, so SSIM reduces to the mean luminance term.
    a = texture((20, 24), seed=8).astype(np.float64)
    offset = 30.0
    offsets = np.arange(11) - 5.0
    g = np.exp(-(offsets**2) / (2 * 1.5**2))
    g /= g.sum()
    rows, cols = a.shape[0] - 10, a.shape[1] - 10
    mu = np.array([[g @ a[i : i + 11, j : j + 11] @ g for j in range(cols)] for i in range(rows)])
    c1 = (0.01 * 255) ** 2
    luminance = (2 * mu * (mu + offset) + c1) / (mu**2 + (mu + offset) ** 2 + c1)
    assert metrics.ssim(a, a + offset) == pytest.approx(luminance.mean(), rel=1e-9)


def test_rgb_to_y_bt601_range():
    corners = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    y = metrics.rgb_to_y(corners)
    assert y.shape == (1, 3)
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16 + 65.481], atol=1e-3)
    np.testing.assert_allclose(metrics.rgb_to_y(corners / 255.0, data_range=1.0), y)


def test_psnr_y_of_uniform_grey_shift():
    a = texture(seed=9)
    b = a.astype(np.int16) + 10
    # A grey shift of 10 moves Y by 10 * 219 / 255.
    assert metrics.psnr_y(a, b) == pytest.approx(20 * math.log10(255 / (10 * 219 / 255)), abs=1e-9)


def test_batched_y_metrics():
    a = np.stack([texture(seed=10), texture(seed=11)])
    b = np.clip(a + np.random.default_rng(12).normal(0, 5, a.shape), 0, 255)
    per_image = [metrics.ssim_y(a[i], b[i]) for i in range(2)]
    assert metrics.ssim_y(a, b) == pytest.approx(np.mean(per_image))


def test_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="RGB"):
        metrics.rgb_to_y(np.zeros((8, 8)))


def test_matches_scikit_image_if_available():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    a = texture(seed=13)
    b = np.clip(a + np.random.default_rng(14).normal(0, 10, a.shape), 0, 255).astype(np.uint8)
    reference = skimage_metrics.structural_similarity(
        a, b, data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert metrics.ssim(a, b) == pytest.approx(reference, rel=1e-6)
    assert metrics.psnr(a, b) == pytest.approx(skimage_metrics.peak_signal_noise_ratio(a, b, data_range=255))
