"""SRGAN generators, discriminator, serialization and the VGG content model."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from models import srgan


def tiny_srresnet(scale=4):
    return srgan.srresnet(num_res_blocks=1, num_filters=8, scale=scale)


def tiny_realtime(scale=4, **kwargs):
    return srgan.realtime_upscaler(num_filters=8, num_layers=2, scale=scale, **kwargs)


def random_images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype("float32")


def randomize_weights(model, seed=0, std=0.1):
    """Gives every weight, zero-initialised ones and BN statistics too, a random value (variances > 0)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.normal(0.0, std, variable.shape)
        if "moving_variance" in variable.path:
            value = 1.0 + np.abs(value)
        variable.assign(value.astype("float32"))


@pytest.fixture(scope="module")
def generators():
    models = {"srresnet": tiny_srresnet(), "realtime": tiny_realtime()}
    # Large random weights push outputs past [-1, 1] before the final tanh / clip, so the range check bites.
    for model in models.values():
        randomize_weights(model, std=0.5)
    return models


@pytest.mark.parametrize("architecture", ["srresnet", "realtime"])
@pytest.mark.parametrize("size", [64, 128])
def test_generator_output_shape_and_range(generators, architecture, size):
    lr = random_images((2, size, size, 3))
    sr = keras.ops.convert_to_numpy(generators[architecture](lr, training=False))
    assert sr.shape == (2, 4 * size, 4 * size, 3)
    assert sr.dtype == np.float32
    assert sr.min() >= -1.0 and sr.max() <= 1.0
    assert np.isfinite(sr).all() and sr.std() > 0.01


@pytest.mark.parametrize("architecture", ["srresnet", "realtime"])
def test_generator_accepts_non_square_sizes(generators, architecture):
    sr = generators[architecture](random_images((1, 24, 40, 3)), training=False)
    assert tuple(sr.shape) == (1, 96, 160, 3)


@pytest.mark.parametrize("architecture", ["srresnet", "realtime"])
def test_inference_function_traces_once_for_all_sizes(generators, architecture):
    upscale = srgan.inference_function(generators[architecture])
    for shape in [(1, 16, 16, 3), (3, 12, 20, 3)]:
        assert tuple(upscale(random_images(shape)).shape) == (shape[0], shape[1] * 4, shape[2] * 4, 3)
    assert upscale.experimental_get_tracing_count() == 1


def test_scale_two_models():
    assert tuple(tiny_srresnet(scale=2)(random_images((1, 10, 12, 3))).shape) == (1, 20, 24, 3)
    assert tuple(tiny_realtime(scale=2)(random_images((1, 10, 12, 3))).shape) == (1, 20, 24, 3)


@pytest.mark.parametrize("scale", [1, 3, 8])
def test_srresnet_rejects_unsupported_scale(scale):
    with pytest.raises(ValueError, match=f"got {scale}"):
        srgan.srresnet(num_res_blocks=1, num_filters=8, scale=scale)


def test_realtime_rejects_unknown_upsample():
    with pytest.raises(ValueError, match="'area'"):
        srgan.realtime_upscaler(residual_upsample="area")


def test_untrained_realtime_equals_plain_upsampling():
    lr = random_images((1, 8, 8, 3)) * 0.5
    sr = keras.ops.convert_to_numpy(tiny_realtime(residual_upsample="nearest")(lr))
    np.testing.assert_allclose(sr, lr.repeat(4, axis=1).repeat(4, axis=2), atol=1e-6)


def test_depth_to_space_matches_tensorflow():
    x = random_images((2, 3, 5, 12))
    ours = keras.ops.convert_to_numpy(srgan.DepthToSpace(2)(x))
    np.testing.assert_array_equal(ours, tf.nn.depth_to_space(x, 2).numpy())


def test_clip_passes_gradient_through():
    x = tf.constant([-2.0, 0.5, 3.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = srgan.ClipToRange()(x)
    np.testing.assert_array_equal(y.numpy(), [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [1.0, 1.0, 1.0])


def test_build_upscaler_dispatch():
    assert set(srgan.UPSCALER_ARCHITECTURES) == {"srresnet", "realtime"}
    model = srgan.build_upscaler("realtime", num_filters=4, num_layers=1, scale=2)
    assert model.name == "realtime_x2"
    with pytest.raises(ValueError, match="'esrgan'"):
        srgan.build_upscaler("esrgan")


@pytest.mark.parametrize("architecture", ["srresnet", "realtime"])
def test_save_and_load_in_safe_mode(tmp_path, architecture):
    model = tiny_srresnet() if architecture == "srresnet" else tiny_realtime(residual_upsample="bicubic")
    randomize_weights(model)
    path = tmp_path / f"{architecture}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    lr = random_images((2, 12, 20, 3), seed=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(lr, training=False)),
        keras.ops.convert_to_numpy(model(lr, training=False)),
        atol=1e-6,
    )


def test_resolve_returns_uint8_frames(generators):
    lr = np.random.default_rng(0).integers(0, 256, (2, 8, 6, 3), dtype=np.uint8)
    sr = srgan.resolve(srgan.inference_function(generators["realtime"]), lr)
    assert sr.shape == (2, 32, 24, 3) and sr.dtype == np.uint8
    assert srgan.resolve(generators["realtime"], lr[0]).shape == (32, 24, 3)


def test_discriminator_logit_shape():
    model = srgan.discriminator(hr_size=32, filters=4, dense_units=8)
    assert tuple(model(random_images((2, 32, 32, 3))).shape) == (2, 1)


def test_discriminator_without_fixed_size_pools():
    model = srgan.discriminator(hr_size=None, filters=4, dense_units=8)
    assert tuple(model(random_images((3, 48, 80, 3))).shape) == (3, 1)


def test_discriminator_rejects_size_not_multiple_of_16():
    with pytest.raises(ValueError, match="100"):
        srgan.discriminator(hr_size=100)


def test_vgg_content_model_with_random_weights():
    model = srgan.vgg_content_model(None, layer="block2_conv2", allow_random_weights=True)
    features = keras.ops.convert_to_numpy(model(random_images((1, 32, 48, 3))))
    assert features.shape == (1, 16, 24, 128)
    assert not model.trainable and not model.trainable_weights


def test_vgg16_variant_layer():
    model = srgan.vgg_content_model(None, layer="block3_conv3", variant="vgg16", allow_random_weights=True)
    assert tuple(model(random_images((1, 32, 32, 3))).shape) == (1, 8, 8, 256)


def test_vgg_missing_weights_names_path_and_alternatives(tmp_path):
    missing = tmp_path / "nowhere" / "vgg19.h5"
    with pytest.raises(FileNotFoundError) as excinfo:
        srgan.vgg_content_model(str(missing))
    message = str(excinfo.value)
    assert str(missing) in message and "\n" not in message
    assert "--content-loss pixel" in message and "--content-loss discriminator" in message


def test_vgg_default_path_is_keras_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    expected = tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert srgan.default_vgg_weights_path() == expected
    with pytest.raises(FileNotFoundError, match="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        srgan.vgg_content_model()


def write_legacy_notop_h5(model, path):
    """Writes weights in the layout of Keras's cached ImageNet files (legacy HDF5, grouped by layer name)."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = names
            for name, value in zip(names, layer.get_weights(), strict=True):
                group.create_dataset(name.decode(), data=value)


def test_vgg_loads_weights_from_legacy_h5_file(tmp_path):
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    randomize_weights(source, seed=3)
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_legacy_notop_h5(source, path)
    model = srgan.vgg_content_model(path, layer="block1_conv1", variant="vgg16")
    kernel = model.get_layer("vgg16_to_block1_conv1").get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(kernel, source.get_layer("block1_conv1").get_weights()[0])


def test_vgg_preprocess_matches_keras_applications():
    rgb = random_images((1, 4, 4, 3))
    ours = keras.ops.convert_to_numpy(srgan.VggPreprocess()(rgb))
    reference = keras.applications.vgg19.preprocess_input((rgb + 1.0) * 127.5)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_vgg_rejects_unknown_layer():
    with pytest.raises(ValueError, match="block9_conv1"):
        srgan.vgg_content_model(None, layer="block9_conv1", allow_random_weights=True)


def test_icnr_shuffle_starts_as_nearest_neighbour_blocks():
    # Before training, every scale x scale block after the pixel shuffle holds one value per channel: no
    # checkerboard to begin with (Aitken et al. 2017).
    model = tiny_realtime(hr_channels=4)
    probe = keras.Model(model.input, model.get_layer("shuffle").output)
    shuffled = keras.ops.convert_to_numpy(probe(random_images((1, 6, 5, 3))))
    assert shuffled.shape == (1, 24, 20, 4)
    blocks = shuffled.reshape(1, 6, 4, 5, 4, 4)
    np.testing.assert_allclose(blocks, np.broadcast_to(blocks[:, :, :1, :, :1], blocks.shape), atol=1e-6)
    assert np.std(blocks[:, :, 0, :, 0]) > 1e-3  # not all zero
    with pytest.raises(ValueError, match="divisible by scale"):
        srgan.ICNR(4)((3, 3, 8, 10))


def test_hr_channels_model_starts_as_plain_upsampling_and_reloads_in_safe_mode(tmp_path):
    model = tiny_realtime(residual_upsample="nearest", hr_channels=4)
    lr = random_images((1, 8, 8, 3)) * 0.5
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(lr)), lr.repeat(4, axis=1).repeat(4, axis=2),
                               atol=1e-6)
    randomize_weights(model)
    model.save(tmp_path / "hr.keras")
    loaded = keras.models.load_model(tmp_path / "hr.keras", safe_mode=True)
    odd = random_images((1, 7, 11, 3), seed=3)
    out = keras.ops.convert_to_numpy(loaded(odd, training=False))
    assert out.shape == (1, 28, 44, 3)
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(model(odd, training=False)), atol=1e-6)
    with pytest.raises(ValueError, match="hr_channels must be a non-negative integer"):
        tiny_realtime(hr_channels=-1)


def test_patch_discriminator_scores_patches_of_any_size():
    keras.utils.set_random_seed(2)
    model = srgan.patch_discriminator(filters=8, num_layers=3)
    for height, width in ((64, 64), (48, 80)):
        logits = keras.ops.convert_to_numpy(model(random_images((2, height, width, 3)), training=False))
        assert logits.shape == (2, height // 8, width // 8, 1)
    assert srgan.patch_feature_layers(model) == ["p0_lrelu", "p1_lrelu", "p2_lrelu", "p3_lrelu"]
    # Spectral normalisation: once its power iteration (one step per training call, from a random vector) has
    # converged, each kernel's largest singular value is about 1. A single call was sometimes 30% off.
    for _ in range(20):
        model(random_images((2, 32, 32, 3)), training=True)
    layer = model.get_layer("p1_conv_sn")
    kernel = keras.ops.convert_to_numpy(layer.kernel).reshape(-1, layer.kernel.shape[-1])
    assert np.linalg.svd(kernel, compute_uv=False)[0] == pytest.approx(1.0, rel=0.05)
