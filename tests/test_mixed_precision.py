"""Mixed precision as a DCGAN option: low-precision layers, float32 variables, images and losses; loss scaling
for float16."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.dcgan import DCGANConfig, DCGANTrainer
from training.export import restore_generator
from training.runs import prepare_run_dir


def tiny(tiny_dataset, run, precision):
    config = DCGANConfig(data=str(tiny_dataset), out=str(run), resolution=64, width_multiplier=0.0625, batch_size=8,
                         steps=2, steps_per_loop=2, strategy="cpu", mixed_precision=precision)
    return prepare_run_dir(run, config, resume=False)


@pytest.mark.parametrize("precision, compute", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")])
def test_mixed_precision_trains_a_few_steps_with_finite_losses(tiny_dataset, tmp_path, precision, compute):
    trainer = DCGANTrainer(tiny(tiny_dataset, tmp_path / "run", precision))
    assert keras.mixed_precision.dtype_policy().name == "float32", "the global policy is left as it was"
    convolutions = [layer for layer in trainer.generator.layers + trainer.discriminator.layers
                    if isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose)]
    assert {layer.compute_dtype for layer in convolutions[:-1]} == {compute}
    assert {variable.dtype for variable in trainer.generator.weights + trainer.discriminator.weights} == {"float32"}
    noise = tf.random.normal([2, trainer.config.latent_dim])
    images = trainer.generator(noise, training=False)
    assert images.dtype == tf.float32 and trainer.discriminator(images, training=False).dtype == tf.float32
    scaled = isinstance(trainer.generator_optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")

    result = trainer.train()
    assert result["step"] == 2
    assert np.isfinite(result["d_loss"]) and np.isfinite(result["g_loss"])
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    names = [name for name, _ in tf.train.list_variables(checkpoint)]
    assert any("dynamic_scale" in name for name in names) == scaled
    # The run exports as an ordinary float32 generator.
    generator, _, step = restore_generator(tmp_path / "run")
    assert step == 2 and generator.compute_dtype == "float32"
    np.testing.assert_allclose(generator.get_layer("project").kernel.numpy(),
                               trainer.generator.get_layer("project").kernel.numpy())


def test_an_unknown_precision_is_named(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="mixed_precision 'float8' is unknown; choose one of none, mixed_float16"):
        DCGANConfig(data=str(tiny_dataset), out=str(tmp_path), resolution=64, mixed_precision="float8")
