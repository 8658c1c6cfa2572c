"""The degradation pipeline: each stage does what it claims on a known image, and the whole is keyed by its seed."""

import numpy as np
import pytest
import tensorflow as tf

from training import degrade
from training.degrade import DegradeConfig

SIZE = 64


def known_image(size: int = SIZE) -> np.ndarray:
    """A smooth colour ramp with a sharp-edged square and fine stripes: low and high frequencies both present."""
    y, x = np.mgrid[0:size, 0:size].astype("float32") / size
    image = np.stack([x - 0.5, y - 0.5, 0.3 * (x + y) - 0.3], axis=-1)
    image[size // 4 : size // 2, size // 4 : size // 2] += 0.6
    image[:, 3 * size // 4 :, 1] += 0.3 * np.sign(np.sin(np.pi * np.arange(size // 4) / 2.5))
    return np.clip(image, -1, 1).astype("float32")


def smooth_image(size: int = SIZE) -> np.ndarray:
    """Slow colour waves, periodic over the frame: almost no power in the high frequencies."""
    y, x = np.mgrid[0:size, 0:size].astype("float32") * (2 * np.pi / size)
    waves = [np.sin(x + 2 * y), np.cos(2 * x - y), np.sin(x) * np.cos(y)]
    return (np.stack(waves, axis=-1) * 0.8).astype("float32")


def power_spectrum(image, window: bool = True) -> np.ndarray:
    """Power of the grey image; a Hann window keeps the wrap-around edge of the FFT out of the high frequencies."""
    grey = np.asarray(image, "float64").mean(axis=-1)
    grey = grey - grey.mean()
    if window:
        grey = grey * np.outer(np.hanning(grey.shape[0]), np.hanning(grey.shape[1]))
    return np.abs(np.fft.fft2(grey)) ** 2


def high_frequency_power(image) -> float:
    """Power above two thirds of the Nyquist frequency (radially), the measure the quality figures use."""
    spectrum = power_spectrum(image)
    fy = np.fft.fftfreq(spectrum.shape[0])[:, None]
    fx = np.fft.fftfreq(spectrum.shape[1])[None, :]
    return float(spectrum[np.hypot(fx, fy) > 0.5 * 2 / 3].sum())


def test_blur_lowers_high_frequencies_and_keeps_the_mean():
    image = known_image()
    blurred = np.asarray(degrade.blur(tf.constant(image), degrade.gaussian_kernel(2.0, 2.0, 0.0, 13)))
    assert blurred.shape == image.shape
    assert high_frequency_power(blurred) < 0.05 * high_frequency_power(image)
    np.testing.assert_allclose(blurred.mean(axis=(0, 1)), image.mean(axis=(0, 1)), atol=0.02)


def test_anisotropic_kernel_blurs_along_its_angle():
    kernel = np.asarray(degrade.gaussian_kernel(3.0, 1.5, 0.0, 19))
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    offsets = np.arange(19) - 9
    spread_x = (kernel.sum(axis=0) * offsets**2).sum()
    spread_y = (kernel.sum(axis=1) * offsets**2).sum()
    assert spread_x == pytest.approx(9.0, rel=0.05) and spread_y == pytest.approx(2.25, rel=0.05)
    turned = np.asarray(degrade.gaussian_kernel(3.0, 1.5, np.pi / 2, 19))
    np.testing.assert_allclose(turned, kernel.T, atol=1e-6)


@pytest.mark.parametrize("method", range(len(degrade.RESAMPLING)))
def test_downsampling_divides_the_size_with_the_chosen_kernel(method):
    image = known_image()
    small = np.asarray(degrade.downsample(tf.constant(image), 4, tf.constant(method)))
    assert small.shape == (SIZE // 4, SIZE // 4, 3)
    block_means = image.reshape(SIZE // 4, 4, SIZE // 4, 4, 3).mean(axis=(1, 3))
    if degrade.RESAMPLING[method] == "area":
        np.testing.assert_allclose(small, block_means, atol=1e-5)
    else:
        # Bilinear and bicubic reach over the block borders, so they differ from a block average and each other.
        assert np.abs(small - block_means).max() > 0.01
        expected = tf.image.resize(image, (SIZE // 4, SIZE // 4), method=degrade.RESAMPLING[method], antialias=True)
        np.testing.assert_allclose(small, expected, atol=1e-6)


def test_gaussian_noise_raises_high_frequencies_with_the_asked_spread():
    image = smooth_image()
    noisy = np.asarray(degrade.gaussian_noise(tf.constant(image), tf.constant([1, 2]), 0.05, tf.constant(False)))
    assert high_frequency_power(noisy) > 3 * high_frequency_power(image)
    assert np.std(noisy - image) == pytest.approx(0.05, rel=0.1)
    grey = np.asarray(degrade.gaussian_noise(tf.constant(image), tf.constant([1, 2]), 0.05, tf.constant(True)))
    difference = grey - image
    np.testing.assert_allclose(difference[..., 0], difference[..., 2], atol=1e-6)


def test_poisson_noise_grows_with_brightness():
    image = np.full((SIZE, SIZE, 3), -1.0, "float32")
    image[:, SIZE // 2 :] = 1.0
    noisy = np.asarray(degrade.poisson_noise(tf.constant(image), tf.constant([3, 4]), 0.05))
    dark, bright = (noisy - image)[:, : SIZE // 2], (noisy - image)[:, SIZE // 2 :]
    assert np.std(dark) < 1e-6
    assert np.std(bright) == pytest.approx(0.05, rel=0.1)


def blockiness(image: np.ndarray) -> float:
    """Mean step across 8x8 block borders divided by the mean step inside blocks (about 1 for a natural image)."""
    steps = np.abs(np.diff(np.asarray(image, "float64").mean(axis=-1), axis=1))
    columns = np.arange(steps.shape[1])
    border = (columns % 8) == 7
    return float(steps[:, border].mean() / steps[:, ~border].mean())


def test_jpeg_changes_the_image_in_8x8_blocks():
    image = smooth_image()
    compressed = np.asarray(degrade.jpeg(tf.constant(image), tf.constant(10)))
    assert compressed.shape == image.shape and compressed.min() >= -1 and compressed.max() <= 1
    assert blockiness(image) == pytest.approx(1.0, abs=0.1)
    assert blockiness(compressed) > 1.5
    mild = np.asarray(degrade.jpeg(tf.constant(image), tf.constant(95)))
    assert np.abs(mild - image).mean() < np.abs(compressed - image).mean()


@pytest.mark.parametrize("period", degrade.CHECKERBOARD_PERIODS)
def test_checkerboard_raises_the_power_at_its_period(period):
    image = smooth_image()
    patterned = np.asarray(degrade.add_checkerboard(tf.constant(image), tf.constant([5, 6]), 0.03, tf.constant(period)))
    assert np.abs(patterned - image).max() == pytest.approx(0.03, rel=1e-3)

    def channel_power(picture):
        return sum(np.abs(np.fft.fft2(picture[..., c] - picture[..., c].mean())) ** 2 for c in range(3))

    before, after = channel_power(image), channel_power(patterned)
    # The pattern repeats every `period` pixels: its power sits on multiples of SIZE / period.
    step = SIZE // period
    peaks = np.zeros((SIZE, SIZE), bool)
    peaks[::step, ::step] = True
    peaks[0, 0] = False
    assert after[peaks].sum() > 100 * before[peaks].sum()
    assert after[~peaks].sum() == pytest.approx(before[~peaks].sum(), rel=1e-4)


ALL_ON = DegradeConfig(blur_probability=1, noise_probability=1, checkerboard_probability=1, jpeg_probability=1)
ALL_OFF = DegradeConfig(blur_probability=0, noise_probability=0, checkerboard_probability=0, jpeg_probability=0)


def test_degrade_is_deterministic_by_seed():
    image = tf.constant(known_image())
    first = np.asarray(degrade.degrade(image, [7, 1], ALL_ON))
    again = np.asarray(degrade.degrade(image, [7, 1], ALL_ON))
    other = np.asarray(degrade.degrade(image, [7, 2], ALL_ON))
    assert first.shape == (SIZE // 4, SIZE // 4, 3) and first.min() >= -1 and first.max() <= 1
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 1e-3


def test_degrade_in_a_tf_data_pipeline_repeats_exactly():
    image = tf.constant(known_image())
    dataset = tf.data.Dataset.from_tensors(image).repeat(12).enumerate().map(
        lambda index, hr: degrade.degrade(hr, degrade.example_seed(3, index), DegradeConfig()),
        num_parallel_calls=4,
    )
    first = np.stack(list(dataset.as_numpy_iterator()))
    second = np.stack(list(dataset.as_numpy_iterator()))
    np.testing.assert_array_equal(first, second)
    assert len({array.tobytes() for array in first}) == 12


def test_degrade_with_every_stage_off_is_a_plain_resampling():
    image = tf.constant(known_image())
    plain = [np.asarray(degrade.downsample(image, 4, tf.constant(m))) for m in range(len(degrade.RESAMPLING))]
    for seed in range(6):
        off = np.asarray(degrade.degrade(image, [seed, 0], ALL_OFF))
        assert any(np.allclose(off, candidate, atol=1e-6) for candidate in plain)
        on = np.asarray(degrade.degrade(image, [seed, 0], ALL_ON))
        assert all(np.abs(on - candidate).mean() > 1e-3 for candidate in plain)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("noise_probability", 1.5, "noise_probability 1.5 is outside the allowed range [0, 1]"),
        ("max_blur_sigma", 0.1, "max_blur_sigma 0.1 is outside the allowed range 0.2..10"),
        ("min_jpeg_quality", 0, "min_jpeg_quality 0 is outside the allowed range 1..100"),
    ],
)
def test_bad_settings_name_the_value_and_the_range(field, value, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        DegradeConfig(**{field: value})


def test_periodic_pattern_sees_a_grid_locked_checkerboard_but_not_noise():
    from training.srgan import periodic_pattern

    image = tf.constant(known_image())
    hatched = degrade.add_checkerboard(image, tf.constant([5, 6]), 0.03, tf.constant(4))
    noisy = degrade.gaussian_noise(image, tf.constant([7, 8]), 0.015, tf.constant(False))  # as strong as the pattern
    target = periodic_pattern(image[None], 4)
    assert target.shape == (1, 16, 2, 2, 3)

    def penalty(picture):
        return float(tf.reduce_mean(tf.abs(periodic_pattern(picture[None], 4) - target)))

    assert penalty(image) == 0
    assert penalty(hatched) > 0.005 and penalty(hatched) > 3 * penalty(noisy), (penalty(hatched), penalty(noisy))
