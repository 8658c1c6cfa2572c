"""The refined generator: resize-convolution, weight averaging, differentiable augmentation, hinge/SN/R1 options."""

import json
import subprocess
import sys
from itertools import pairwise

import numpy as np
import pytest
import tensorflow as tf

from models import dcgan
from training.augment import diff_augment, parse_policy
from training.checkpoints import restore_generator
from training.dcgan import DCGANConfig, DCGANTrainer, build_generator, mode_seeking_term
from training.runs import prepare_run_dir
from training.standing_statistics import batch_norm_layers, standing_statistics
from training.strategy import StrategyConfig, mirrored_strategy


def constant_response(upsampling: str) -> np.ndarray:
    """Feed a constant 8x8 feature map through one up-sampling layer with random (non-constant) weights."""
    tf.keras.utils.set_random_seed(4)
    inputs = tf.keras.Input((8, 8, 6))
    outputs = dcgan.upsample(inputs, 4, upsampling, name="probe")
    model = tf.keras.Model(inputs, outputs)
    for weight in model.weights:
        weight.assign(tf.random.normal(weight.shape))
    return np.asarray(model(np.ones((1, 8, 8, 6), np.float32)))[0]


def test_resize_convolution_answers_a_constant_map_with_a_constant_one():
    interior = constant_response("resize")[2:-2, 2:-2]
    assert interior.shape == (12, 12, 4)
    assert np.ptp(interior, axis=(0, 1)).max() < 1e-4


def test_transposed_convolution_paints_a_period_two_pattern_on_a_constant_map():
    interior = constant_response("transposed")[2:-2, 2:-2]
    even, odd = interior[0::2, 0::2], interior[1::2, 1::2]
    assert np.ptp(interior, axis=(0, 1)).max() > 0.1
    assert np.allclose(even[:-1], even[1:], atol=1e-4)  # constant along each parity class: a pure period-2 pattern
    assert not np.allclose(even, odd, atol=1e-2)


def test_subpixel_upsampling_starts_without_a_checkerboard_and_may_learn_the_finest_octave():
    """ICNR makes an untrained sub-pixel stage a nearest enlargement: a constant map stays constant. Unlike
    resize-convolution it is not constant by construction: with other weights the four sub-pixel positions part."""
    tf.keras.utils.set_random_seed(4)
    inputs = tf.keras.Input((8, 8, 6))
    model = tf.keras.Model(inputs, dcgan.upsample(inputs, 4, "subpixel", name="probe", use_bias=True))
    constant = np.ones((1, 8, 8, 6), np.float32)
    untrained = np.asarray(model(constant))[0, 2:-2, 2:-2]
    assert untrained.shape == (12, 12, 4) and np.ptp(untrained, axis=(0, 1)).max() < 1e-5
    for weight in model.weights:
        weight.assign(tf.random.normal(weight.shape))
    trained = np.asarray(model(constant))[0, 2:-2, 2:-2]
    even, odd = trained[0::2, 0::2], trained[1::2, 1::2]
    assert np.allclose(even[:-1], even[1:], atol=1e-4) and not np.allclose(even, odd, atol=1e-2)
    bias = model.get_layer("probe_bias").bias
    assert bias.shape == (4,)  # one bias per channel, shared by the four positions: it cannot paint a pattern


def test_balanced_subpixel_upsampling_answers_any_constant_map_with_a_constant_one_yet_draws_edges():
    """With any weights (not only at initialisation) a flat input stays flat, unlike the free sub-pixel stage;
    an edge, though, may come out sharper than a nearest enlargement can draw it (different positions)."""
    tf.keras.utils.set_random_seed(4)
    inputs = tf.keras.Input((8, 8, 6))
    model = tf.keras.Model(inputs, dcgan.upsample(inputs, 4, "balanced-subpixel", name="probe", use_bias=True))
    for weight in model.weights:
        weight.assign(tf.random.normal(weight.shape))
    for level in (1.0, -2.5):
        flat = np.asarray(model(np.full((1, 8, 8, 6), level, np.float32)))[0, 2:-2, 2:-2]
        assert np.ptp(flat, axis=(0, 1)).max() < 1e-4
    edge = np.zeros((1, 8, 8, 6), np.float32)
    edge[:, :, 4:] = 1.0
    drawn = np.asarray(model(edge))[0]
    assert not np.allclose(drawn[:, 0::2], drawn[:, 1::2], atol=1e-3)  # the two columns of an input pixel differ
    layer = model.get_layer("probe_subpixel_conv")
    gains = np.asarray(layer.balanced_kernel()).reshape(3, 3, 6, 4, 4).sum(axis=(0, 1))
    np.testing.assert_allclose(gains, np.repeat(gains.mean(axis=1, keepdims=True), 4, axis=1), atol=1e-4)


@pytest.mark.parametrize("rgb_upsampling", ["subpixel", "balanced-subpixel"])
def test_a_subpixel_rgb_stage_after_resize_stages_saves_loads_and_converts(tmp_path, rgb_upsampling):
    from models.litert import LiteRTModel
    from training.litert import convert_generator

    model = dcgan.generator(64, 16, 0.0625, "resize", rgb_upsampling=rgb_upsampling)
    names = {layer.name for layer in model.layers}
    assert {"up1_resize", "to_rgb_subpixel_conv", "to_rgb_shuffle", "to_rgb_bias"} <= names
    assert "to_rgb_resize" not in names
    for weight in model.weights:
        weight.assign(weight + tf.random.normal(weight.shape, stddev=0.01))
    latents = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    path = tmp_path / "generator.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(latents)), np.asarray(model(latents)), atol=1e-6)
    assert dcgan.generator_from_config({"resolution": 64, "latent_dim": 16, "width_multiplier": 0.0625,
                                        "upsampling": "resize", "rgb_upsampling": rgb_upsampling}).count_params() \
        == model.count_params()
    converted = convert_generator(tmp_path, model, path, batch_sizes=(3,))
    images = LiteRTModel(tmp_path / converted["file"]).run(latents=latents)["images"]
    np.testing.assert_allclose(images, np.asarray(model(latents)), atol=2e-5)


def test_every_generator_keeps_the_contract():
    for upsampling in dcgan.UPSAMPLING_KINDS:
        for resolution in (64, 128):
            for top_block in (False, True):
                model = dcgan.generator(resolution, 100, 0.0625, upsampling, top_block)
                images = np.asarray(model(np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)))
                assert images.shape == (2, resolution, resolution, 3)
                assert images.min() >= -1 and images.max() <= 1
                names = {layer.name for layer in model.layers}
                top = "top_shuffle" if "subpixel" in upsampling else {"resize": "top_resize",
                                                                       "transposed": "top_deconv"}[upsampling]
                assert ({top, "top_bn", "to_rgb_conv"} <= names
                        if top_block else not any(name.startswith("top") for name in names))
    with pytest.raises(ValueError, match="upsampling 'bilinear-ish' is not supported"):
        dcgan.generator(64, 100, 0.0625, "bilinear-ish")


def test_augmentation_is_differentiable_and_the_same_function_for_real_and_generated_batches():
    policy = parse_policy("color,translation,cutout")
    images = tf.random.stateless_uniform((4, 32, 32, 3), (1, 2), -1, 1)
    first = diff_augment(images, policy, tf.random.Generator.from_seed(9))
    second = diff_augment(images, policy, tf.random.Generator.from_seed(9))
    np.testing.assert_array_equal(first, second)  # one function of (images, random stream), whatever the batch is
    assert not np.allclose(first, images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        augmented = diff_augment(images, policy, tf.random.Generator.from_seed(9))
        total = tf.reduce_sum(augmented * tf.random.stateless_normal(augmented.shape, (3, 4)))
    gradient = tape.gradient(total, images)
    assert gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0
    assert diff_augment(images, parse_policy("none"), tf.random.Generator.from_seed(9)) is images
    with pytest.raises(ValueError, match="augmentation 'rotate' is unknown"):
        parse_policy("color,rotate")


def test_translation_shifts_content_and_cutout_blanks_a_square():
    image = tf.reshape(tf.range(16 * 16, dtype=tf.float32) + 1.0, (1, 16, 16, 1))
    from training.augment import cutout, translation

    shifted = np.asarray(translation(image, tf.random.Generator.from_seed(2), ratio=0.25))[0, ..., 0]
    original = np.asarray(image)[0, ..., 0]
    offsets = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
               if np.array_equal(np.roll(original, (dy, dx), axis=(0, 1))[4:-4, 4:-4], shifted[4:-4, 4:-4])]
    assert len(offsets) == 1
    blanked = np.asarray(cutout(image, tf.random.Generator.from_seed(2), ratio=0.5))[0, ..., 0]
    assert 0 < (blanked == 0).sum() <= 64


def tiny_config(tiny_dataset, out, **options):
    return DCGANConfig(data=str(tiny_dataset), out=str(out), resolution=64, width_multiplier=0.0625, batch_size=8,
                       steps=4, steps_per_loop=2, checkpoint_every=2, **options)


VARIANTS = {
    "classic": {},
    "refined": {"upsampling": "resize", "loss": "hinge", "spectral_norm": True, "minibatch_stddev": True,
                "augment": "color,translation,cutout", "flip": True, "ema_decay": 0.9, "r1_gamma": 1.0,
                "top_block": True},
    "kept, balanced sub-pixel RGB stage": {"upsampling": "resize", "rgb_upsampling": "balanced-subpixel",
                                           "minibatch_stddev": True, "augment": "color,translation", "flip": True,
                                           "ema_decay": 0.9},
    "kept, sub-pixel RGB stage, bounded mode seeking": {"upsampling": "resize", "rgb_upsampling": "subpixel",
                                                        "minibatch_stddev": True, "augment": "color,translation",
                                                        "flip": True, "ema_decay": 0.9, "mode_seeking": 1.0,
                                                        "mode_seeking_bound": 0.2, "generator_updates": 2},
    "kept, bounded mode seeking, spectral and checkerboard terms": {
        "upsampling": "resize", "rgb_upsampling": "subpixel", "minibatch_stddev": True, "ema_decay": 0.9,
        "mode_seeking": 1.0, "mode_seeking_bound": 0.2, "spectral_weight": 1.0, "checkerboard_weight": 1.0,
        "generator_updates": 2},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_trains_under_mirrored_strategy_and_resumes(tiny_dataset, tmp_path, variant):
    strategy = mirrored_strategy(StrategyConfig("mirrored"))
    config = prepare_run_dir(tmp_path / "run", tiny_config(tiny_dataset, tmp_path / "run", strategy="mirrored",
                                                           **VARIANTS[variant]), resume=False)
    trainer = DCGANTrainer(config, strategy=strategy)
    d_losses = []
    iterator = iter(trainer.dataset())
    for _ in range(3):
        values = trainer.train_steps(iterator, tf.constant(2))
        d_losses.append(float(values[0]))
        assert all(np.isfinite(float(value)) for value in values)
    assert len(set(np.round(d_losses, 6))) > 1  # D's loss moves
    assert int(trainer.step) == 6
    trainer.manager.save(checkpoint_number=6)
    resumed = DCGANTrainer(config, strategy=strategy)
    assert resumed.restore() == 6
    for saved, restored in zip(trainer.exported_generator.weights, resumed.exported_generator.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))


def test_export_writes_the_averaged_weights(tiny_dataset, tmp_path):
    run, bundle_dir = tmp_path / "run", tmp_path / "bundle"
    config = prepare_run_dir(run, tiny_config(tiny_dataset, run, strategy="cpu", upsampling="resize",
                                              ema_decay=0.5), resume=False)
    trainer = DCGANTrainer(config)
    trainer.train()
    raw = [np.asarray(weight) for weight in trainer.generator.weights]
    averaged = [np.asarray(weight) for weight in trainer.average_generator.weights]
    assert any(not np.allclose(a, b) for a, b in zip(raw, averaged, strict=True))
    result = subprocess.run([sys.executable, "-m", "training", "export", str(run), "--out", str(bundle_dir)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["generator"]["upsampling"] == manifest["generator"]["rgb_upsampling"] == "resize"
    assert manifest["generator"]["weights"] == "exponential moving average"
    assert manifest["generator"]["training_config"]["ema_decay"] == 0.5
    assert manifest["generator"]["batch_norm_statistics"].startswith("standing")
    exported = tf.keras.models.load_model(bundle_dir / "generator.keras", compile=False, safe_mode=True)
    # The learned weights are the average; the batch-norm statistics are re-estimated for those weights.
    standing = build_generator(config)
    standing.set_weights(averaged)
    standing_statistics(standing, config.latent_dim, config.batch_size, seed=config.seed)
    names = [weight.path for weight in trainer.average_generator.weights]
    for name, weight, average, expected in zip(names, exported.weights, averaged, standing.weights, strict=True):
        np.testing.assert_allclose(np.asarray(weight), np.asarray(expected), rtol=1e-5, atol=1e-6, err_msg=name)
        if "moving" not in name:
            np.testing.assert_allclose(np.asarray(weight), average, rtol=1e-6, atol=1e-7, err_msg=name)
    assert any("moving" in name and not np.allclose(np.asarray(weight), average)
               for name, weight, average in zip(names, exported.weights, averaged, strict=True))
    # The quality command's --raw-weights reads the raw generator, to measure what the average adds.
    raw_generator, _, _ = restore_generator(run, weights="raw")
    for weight, expected in zip(raw_generator.weights, raw, strict=True):
        np.testing.assert_array_equal(np.asarray(weight), expected)
    with pytest.raises(ValueError, match="weights 'ema' is not one of exported, raw"):
        restore_generator(run, weights="ema")
    # An earlier checkpoint, the one a quality sweep preferred, exports by its step; a missing one is one line.
    earlier = subprocess.run([sys.executable, "-m", "training", "export", str(run), "--out", str(tmp_path / "early"),
                              "--step", "2"], capture_output=True, text=True, timeout=300)
    assert earlier.returncode == 0, earlier.stderr
    assert json.loads((tmp_path / "early" / "manifest.json").read_text())["generator"]["steps"] == 2
    missing = subprocess.run([sys.executable, "-m", "training", "export", str(run), "--out", str(tmp_path / "none"),
                              "--step", "3"], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"error: {run} holds no checkpoint at step 3 (it keeps: 2, 4)" in missing.stderr
    assert not (tmp_path / "none").exists()


def test_standing_statistics_make_inference_normalise_like_training(tmp_path):
    """Garbage moving statistics are replaced by what batches of the current weights produce: in inference mode
    the generator then draws frames like its training-mode self, and the same seed gives the same figures."""
    generator = dcgan.generator(64, 16, 0.0625, "resize")
    latents = np.random.default_rng(5).standard_normal((256, 16)).astype(np.float32)
    for layer in batch_norm_layers(generator):
        layer.moving_mean.assign(np.full(layer.moving_mean.shape, 3.0, np.float32))
        layer.moving_variance.assign(np.full(layer.moving_variance.shape, 40.0, np.float32))
    training_mode = np.asarray(generator(latents, training=True))
    stale = np.asarray(generator(latents, training=False))
    standing_statistics(generator, 16, batch_size=64, batches=16, seed=1)
    fresh = np.asarray(generator(latents, training=False))
    assert abs(fresh.std() - training_mode.std()) < 0.1 * training_mode.std() < abs(stale.std() - training_mode.std())
    assert np.abs(fresh - training_mode).mean() < 0.25 * np.abs(stale - training_mode).mean()
    first = [np.asarray(layer.moving_variance) for layer in batch_norm_layers(generator)]
    standing_statistics(generator, 16, batch_size=64, batches=16, seed=1)
    for before, layer in zip(first, batch_norm_layers(generator), strict=True):
        np.testing.assert_array_equal(before, np.asarray(layer.moving_variance))


def test_options_are_validated_with_the_allowed_values(tiny_dataset, tmp_path):
    for options, message in [({"loss": "wasserstein"}, "loss 'wasserstein' is unknown"),
                             ({"ema_decay": 1.0}, r"ema_decay 1.0 is outside the allowed range \[0, 1\)"),
                             ({"augment": "zoom"}, "augmentation 'zoom' is unknown"),
                             ({"upsampling": "pixelshuffle"}, "upsampling 'pixelshuffle' is not supported"),
                             ({"rgb_upsampling": "bilinear"}, "rgb_upsampling 'bilinear' is unknown"),
                             ({"mode_seeking": -1.0}, r"mode_seeking -1.0 is outside the allowed range 0..100"),
                             ({"mode_seeking_distance": "features"},
                              "mode_seeking_distance 'features' is unknown; choose one of pixels, detail"),
                             ({"mode_seeking_bound": 3.0},
                              r"mode_seeking_bound 3.0 is outside the allowed range 0..2"),
                             ({"spectral_weight": -0.5},
                              r"spectral_weight -0.5 is outside the allowed range 0..100"),
                             ({"checkerboard_weight": 101.0},
                              r"checkerboard_weight 101.0 is outside the allowed range 0..100")]:
        with pytest.raises(ValueError, match=message):
            tiny_config(tiny_dataset, tmp_path, **options)


def test_mode_seeking_pushes_merging_images_apart_and_ignores_pixel_noise():
    rng = np.random.default_rng(5)
    latent = tf.constant(rng.standard_normal((4, 100)), tf.float32)
    distinct = rng.uniform(-1, 1, (4, 128, 128, 3)).astype(np.float32)
    near_twins = np.repeat(distinct[:1], 4, axis=0) + rng.normal(0, 0.01, (4, 128, 128, 3)).astype(np.float32)
    apart, merging = (np.asarray(mode_seeking_term(latent, tf.constant(images), 1.0))
                      for images in (distinct, near_twins))
    assert merging.min() > 20 * apart.max()
    np.testing.assert_allclose(np.asarray(mode_seeking_term(latent, tf.constant(distinct), 2.5)), 2.5 * apart,
                               rtol=1e-5)

    # One gradient step on the term moves near twins apart, as seen at 32 px.
    images = tf.Variable(near_twins)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(mode_seeking_term(latent, images, 1.0))
    images.assign_sub(0.05 * tf.sign(tape.gradient(total, images)))
    assert np.asarray(mode_seeking_term(latent, images, 1.0)).max() < 0.5 * merging.min()

    # A period-2 pattern vanishes at 32 px, so it cannot buy distance.
    checkerboard = np.indices((128, 128)).sum(axis=0) % 2 * 0.5 - 0.25
    patterned = near_twins + (checkerboard * np.arange(4)[:, None, None])[..., None].astype(np.float32)
    np.testing.assert_allclose(np.asarray(mode_seeking_term(latent, tf.constant(patterned), 1.0)), merging,
                               rtol=1e-3)
    # A replica holding one example has no pair and no term.
    assert float(mode_seeking_term(latent[:1], tf.constant(distinct[:1]), 1.0)[0]) == 0.0


def test_mode_seeking_on_detail_gives_nothing_for_a_colour_cast_or_a_background():
    rng = np.random.default_rng(6)
    latent = tf.constant(rng.standard_normal((4, 100)), tf.float32)
    mask = rng.uniform(-0.5, 0.5, (1, 128, 128, 3)).astype(np.float32)
    # The same mask under four casts and on four smooth backgrounds: far apart as pixels, one mask in detail.
    casts = mask + np.linspace(-0.4, 0.4, 4, dtype=np.float32)[:, None, None, None]
    ramp = np.broadcast_to(np.linspace(-1, 1, 128, dtype=np.float32)[:, None, None], (128, 128, 1))
    backgrounds = mask + 0.3 * np.stack([ramp, -ramp, ramp.transpose(1, 0, 2), -ramp.transpose(1, 0, 2)])
    distinct = rng.uniform(-0.5, 0.5, (4, 128, 128, 3)).astype(np.float32)
    twins = np.repeat(mask, 4, axis=0) + rng.normal(0, 0.01, (4, 128, 128, 3)).astype(np.float32)

    def term(images, distance):
        return np.asarray(mode_seeking_term(latent, tf.constant(images), 1.0, distance))

    for varied in (casts, backgrounds):
        assert term(varied, "pixels").max() < 0.5 * term(twins, "pixels").min()
        assert term(varied, "detail").min() > 3 * term(distinct, "detail").max()
    # Different masks stay apart in detail; twins stay merged.
    assert term(twins, "detail").min() > 10 * term(distinct, "detail").max()


def test_a_bounded_mode_seeking_term_pushes_only_pairs_closer_than_its_bound():
    rng = np.random.default_rng(7)
    latent = tf.constant(rng.standard_normal((4, 100)), tf.float32)
    mask = rng.uniform(-0.5, 0.5, (1, 128, 128, 3)).astype(np.float32)
    # Consecutive frames 0.04 apart (near twins) or 0.4 apart (as far as a typical pair of collection images).
    twins = mask + np.array([0.0, 0.04, 0.0, 0.04], np.float32)[:, None, None, None]
    apart = mask + np.array([0.0, 0.4, 0.0, 0.4], np.float32)[:, None, None, None]

    def gradient(images, bound):
        images = tf.Variable(images)
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(mode_seeking_term(latent, images, 1.0, bound=bound))
        return np.abs(np.asarray(tape.gradient(total, images))).sum()

    assert gradient(apart, 0.2) == 0.0 < gradient(apart, 0.0)
    np.testing.assert_allclose(gradient(twins, 0.2), gradient(twins, 0.0), rtol=1e-5)
    # Up to the bound the term is MSGAN's; past it, a constant.
    np.testing.assert_allclose(np.asarray(mode_seeking_term(latent, tf.constant(twins), 1.0, bound=0.2)),
                               np.asarray(mode_seeking_term(latent, tf.constant(twins), 1.0)), rtol=1e-6)


def test_the_spectral_term_measures_what_the_quality_command_measures_and_lifts_a_short_octave():
    """batch_radial_spectrum is training.quality's radial profile (images in [-1, 1] rather than [0, 1], so 4x the
    power); spectral_distance is zero for the same batch, grows with blur, and its gradient on a blurred batch
    puts power back into the finest octave."""
    from training import quality
    from training.spectral_loss import batch_radial_spectrum, spectral_distance

    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (8, 8, 8, 3))
    sharp = np.clip(tf.image.resize(coarse, [32, 32], method="bicubic").numpy()
                    + rng.normal(0, 12, (8, 32, 32, 3)), 0, 255).astype(np.uint8)
    real = tf.constant(sharp.astype(np.float32) / 127.5 - 1.0)
    expected = quality.radial_profile(quality.power_spectra(sharp))
    np.testing.assert_allclose(batch_radial_spectrum(real).numpy(), 4 * expected, rtol=1e-3)

    blurred = tf.nn.avg_pool2d(real, 3, 1, "SAME")
    more_blurred = tf.nn.avg_pool2d(blurred, 3, 1, "SAME")
    assert float(spectral_distance(real, real)) == 0.0
    assert 0 < float(spectral_distance(blurred, real)) < float(spectral_distance(more_blurred, real))

    images = tf.Variable(blurred)
    with tf.GradientTape() as tape:
        distance = spectral_distance(images, real)
    images.assign_sub(0.05 * tape.gradient(distance, images))
    finest = slice(10, None)
    assert float(spectral_distance(images, real)) < float(distance)
    assert (batch_radial_spectrum(images).numpy()[finest].sum()
            > batch_radial_spectrum(blurred).numpy()[finest].sum())


def test_the_checkerboard_term_is_the_quality_commands_ratio_and_only_removes_a_pattern():
    """batch_checkerboard_power is training.quality's checkerboard power (4x, images in [-1, 1]); the term is the
    log of the checkerboard ratio where it exceeds 1, zero for the same batch or a smoother one, and its gradient on
    a batch with a period-2 pattern takes the pattern out."""
    from training import quality
    from training.spectral_loss import batch_checkerboard_power, checkerboard_excess

    rng = np.random.default_rng(1)
    coarse = rng.uniform(0, 255, (8, 8, 8, 3))
    smooth = tf.image.resize(coarse, [32, 32], method="bicubic").numpy() + rng.normal(0, 6, (8, 32, 32, 3))
    real_uint8 = np.clip(smooth, 0, 255).astype(np.uint8)
    pattern = 24.0 * (np.indices((32, 32)).sum(axis=0) % 2)  # a one-pixel checkerboard, 0 or 24
    patterned_uint8 = np.clip(smooth + pattern[None, :, :, None], 0, 255).astype(np.uint8)
    real, patterned = (tf.constant(images.astype(np.float32) / 127.5 - 1.0)
                       for images in (real_uint8, patterned_uint8))
    expected = quality.checkerboard_power(quality.power_spectra(real_uint8))
    np.testing.assert_allclose(float(batch_checkerboard_power(real)), 4 * expected, rtol=1e-3)

    ratio = quality.spectral_figures(patterned_uint8, real_uint8)["checkerboard_ratio"]
    assert ratio > 1.5
    np.testing.assert_allclose(float(checkerboard_excess(patterned, real)), np.log(ratio), rtol=1e-3)
    assert float(checkerboard_excess(real, real)) == 0.0
    assert float(checkerboard_excess(tf.nn.avg_pool2d(real, 3, 1, "SAME"), real)) == 0.0  # less power: no cost

    images, excesses = tf.Variable(patterned), []
    for _ in range(10):
        with tf.GradientTape() as tape:
            excess = checkerboard_excess(images, real)
        step = tape.gradient(excess, images)
        images.assign_sub(0.02 * step / tf.reduce_max(tf.abs(step)))
        excesses.append(float(excess))
    assert all(later < earlier for earlier, later in pairwise(excesses))
    assert float(checkerboard_excess(images, real)) < 0.5 * excesses[0]
