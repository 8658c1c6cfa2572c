"""SRGAN training end to end: optimisation, perceptual losses, resume across stages, export, evaluation."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_bundle

from training.__main__ import main
from training.export import export_upscaler, restore_upscaler
from training.srgan import (
    SRGANConfig,
    SRGANTrainer,
    build_upscaler,
    pair_dataset,
    periodic_pattern,
    read_images_by_id,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = {"num_filters": 8, "num_layers": 2, "hr_size": 64, "batch_size": 4, "holdout": 8, "discriminator_filters": 8,
        "discriminator_dense_units": 16, "steps_per_loop": 2, "strategy": "cpu"}
FLAGS = [token for name, value in TINY.items() for token in ("--" + name.replace("_", "-"), str(value))]


def upscale_in_a_fresh_process(bundle, tmp_path):
    """The bundle's upscaler loaded in safe mode in a new process, applied to tmp_path/probe.npy."""
    script = (
        "import sys, numpy as np; from pathlib import Path; from models.bundle import load_model\n"
        "model = load_model(Path(sys.argv[1]) / 'upscaler.keras')\n"
        "np.save(sys.argv[2], np.asarray(model(np.load(sys.argv[3]), training=False)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script, str(bundle), str(tmp_path / "out.npy"),
                             str(tmp_path / "probe.npy")], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return np.load(tmp_path / "out.npy")

def tiny_config(data, out, **overrides) -> SRGANConfig:
    return SRGANConfig(data=str(data), out=str(out), **{**TINY, **overrides})


def checkpoint_value(run: Path, key: str) -> int:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    return int(reader.get_tensor(key))


def iterations(run: Path, optimizer: str) -> int:
    return checkpoint_value(run, f"{optimizer}/_iterations/.ATTRIBUTES/VARIABLE_VALUE")


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def trained_run(tiny_dataset, tmp_path_factory):
    """Two pixel-loss steps through the CLI: enough to move the zero-initialised output layer."""
    run = tmp_path_factory.mktemp("srgan") / "run"
    assert main(["srgan", "--data", str(tiny_dataset), "--out", str(run), *FLAGS, "--pretrain-steps", "2",
                 "--gan-steps", "0", "--content-loss", "pixel", "--learning-rate", "0.01"]) == 0
    return run


def test_pixel_pretraining_lowers_the_loss_on_a_fixed_batch(tiny_dataset, tmp_path):
    # SRResNet starts far from the target (the real-time model starts at plain upsampling), so 30 steps show.
    trainer = SRGANTrainer(tiny_config(tiny_dataset, tmp_path / "run", architecture="srresnet", num_res_blocks=1,
                                       pretrain_steps=30, gan_steps=0, learning_rate=2e-3, content_loss="pixel"))
    lr, hr = next(iter(pair_dataset(trainer.config)))
    assert lr.shape == (4, 16, 16, 3) and hr.shape == (4, 64, 64, 3)
    assert float(tf.reduce_min(hr)) >= -1 and float(tf.reduce_max(hr)) <= 1

    def loss():
        return float(tf.reduce_mean(tf.abs(trainer.upscaler(lr, training=False) - hr)))

    before = loss()
    fixed = trainer.strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors((lr, hr)).repeat())
    pixel_loss, _ = trainer.pretrain_steps(iter(fixed), tf.constant(30))
    after = loss()
    assert after < 0.65 * before, (before, after)
    assert abs(float(pixel_loss) - after) < 0.2 * before
    assert int(trainer.step) == 30 and int(trainer.generator_optimizer.iterations) == 30


def test_pairs_never_show_the_held_out_images(tiny_dataset, tmp_path):
    config = tiny_config(tiny_dataset, tmp_path / "run", holdout=8)
    # hr_size equals the stored size, so every HR target is a whole training image, maybe flipped.
    seen = np.concatenate([hr for _, hr in pair_dataset(config).take(20).as_numpy_iterator()])
    seen = np.rint((seen + 1) * 127.5).astype(np.uint8)
    held_out = read_images_by_id(str(tiny_dataset), range(40, 48))
    candidates = np.concatenate([held_out, held_out[:, :, ::-1]])
    assert not any(np.array_equal(image, candidate) for image in seen for candidate in candidates)
    training = read_images_by_id(str(tiny_dataset), range(40))
    matched = {index for image in seen for index, candidate in enumerate(training)
               if np.array_equal(image, candidate) or np.array_equal(image[:, ::-1], candidate)}
    assert len(matched) > 30  # 80 draws from the 40 training images


def test_adversarial_stage_trains_both_networks(tiny_dataset, tiny_bundle, tmp_path):
    # VGG content loss (untrained weights), with upscaled GAN samples mixed into the fakes; the
    # "discriminator" content loss runs in the resume test below.
    trainer = SRGANTrainer(tiny_config(tiny_dataset, tmp_path / "run", pretrain_steps=0, gan_steps=2,
                                       content_loss="vgg19", vgg_layer="block2_conv2", vgg_random_weights=True,
                                       generator_bundle=str(tiny_bundle)))
    assert trainer.gan_generator is not None and trainer.content_model.name == "vgg19_content"
    before = [variable.numpy().copy() for variable in trainer.discriminator.trainable_variables]
    result = trainer.train()
    assert result["step"] == 2
    assert all(np.isfinite(result[name]) for name in ("g_loss", "d_loss", "content_loss", "adversarial_loss"))
    assert int(trainer.discriminator_optimizer.iterations) == 2
    assert int(trainer.generator_optimizer.iterations) == 2
    after = trainer.discriminator.trainable_variables
    assert any(not np.allclose(old, new.numpy()) for old, new in zip(before, after, strict=True))
    assert (tmp_path / "run" / "samples" / "step_00000002.png").is_file()


def test_ragan_with_a_patch_critic_learns_from_upscaled_gan_samples_too(tiny_dataset, tiny_bundle, tmp_path):
    """Generator samples join the relativistic loss: with every fake a GAN sample the losses still move."""
    config = tiny_config(tiny_dataset, tmp_path / "run", pretrain_steps=0, gan_steps=3, gan_loss="ragan",
                         discriminator="patch", content_loss="discriminator", generator_bundle=str(tiny_bundle),
                         generator_fraction=1.0)
    trainer = SRGANTrainer(config)
    assert trainer.gan_generator is not None and trainer.critic is not None
    lr = tf.zeros([2, config.lr_size, config.lr_size, 3])
    hr = tf.zeros([2, config.hr_size, config.hr_size, 3])
    before_g = [variable.numpy().copy() for variable in trainer.upscaler.trainable_variables]
    before_d = [variable.numpy().copy() for variable in trainer.discriminator.trainable_variables]
    results = [trainer.gan_replica_step(lr, hr) for _ in range(3)]
    assert all(np.isfinite(float(value)) for result in results for value in result[:4])
    assert float(results[0][1]) != float(results[-1][1])  # D's loss moves
    for before, model in ((before_g, trainer.upscaler), (before_d, trainer.discriminator)):
        assert any(not np.allclose(old, new.numpy()) for old, new in zip(before, model.trainable_variables,
                                                                           strict=True))


def test_missing_vgg_weights_stop_before_anything_is_written(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["srgan", "--data", str(tiny_dataset), "--out", str(run), *FLAGS, "--content-loss", "vgg19",
                 "--vgg-weights", "/nonexistent.h5"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "/nonexistent.h5" in errors[0]
    assert not (run / "checkpoints").exists() and not (run / "config.json").exists()


def test_resume_continues_at_the_saved_step_across_the_stage_boundary(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["srgan", "--data", str(tiny_dataset), "--out", str(run), *FLAGS, "--pretrain-steps", "2",
                 "--gan-steps", "0", "--content-loss", "discriminator"]) == 0
    assert iterations(run, "generator_optimizer") == 2
    # Stage 1 grows by one step, then stage 2 begins: one pretraining step and one adversarial step.
    assert main(["srgan", "--out", str(run), "--resume", "--pretrain-steps", "3", "--gan-steps", "1"]) == 0
    assert "done: step 4" in capsys.readouterr().out
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-4")
    assert checkpoint_value(run, "step/.ATTRIBUTES/VARIABLE_VALUE") == 4
    assert iterations(run, "generator_optimizer") == 4
    assert iterations(run, "discriminator_optimizer") == 1
    stored = json.loads((run / "config.json").read_text())
    assert (stored["pretrain_steps"], stored["gan_steps"], stored["content_loss"]) == (3, 1, "discriminator")
    # Step 4 was adversarial: moving the boundary now would relabel a trained step.
    assert main(["srgan", "--out", str(run), "--resume", "--pretrain-steps", "5", "--gan-steps", "1"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "--pretrain-steps can no longer change" in errors[0]


def test_export_reloads_in_a_fresh_process_with_identical_outputs(trained_run, tmp_path):
    bundle = tmp_path / "bundle"
    manifest = export_upscaler(trained_run, bundle)
    upscaler = manifest["upscaler"]
    assert (upscaler["architecture"], upscaler["scale"], upscaler["steps"]) == ("realtime", 4, 2)
    assert (upscaler["input_size"], upscaler["output_size"]) == (16, 64)
    assert upscaler["litert"]["file"] == "upscaler.tflite" and (bundle / "upscaler.tflite").is_file()
    assert upscaler["training_config"]["hr_size"] == 64 and manifest["dataset"]["count"] == 48
    scores = upscaler["metrics"]
    assert scores["count"] == 8 and scores["held_out"] and (scores["first_id"], scores["last_id"]) == (40, 47)
    for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "bicubic_psnr_y", "bicubic_ssim_y"):
        assert np.isfinite(scores[key])

    model, _, step = restore_upscaler(trained_run)
    assert step == 2
    probe = np.random.default_rng(5).uniform(-1, 1, (2, 24, 20, 3)).astype("float32")
    np.save(tmp_path / "probe.npy", probe)
    expected = np.asarray(model(probe, training=False))
    assert np.abs(expected - np.asarray(tf.image.resize(probe, (96, 80)))).max() > 1e-4  # trained, not the base
    reloaded = upscale_in_a_fresh_process(bundle, tmp_path)
    assert reloaded.shape == (2, 96, 80, 3)
    np.testing.assert_allclose(reloaded, expected, rtol=0, atol=1e-6)


def test_a_run_started_from_an_exported_upscaler_fine_tunes_it(trained_run, tiny_dataset, tmp_path, capsys):
    """--init-upscaler: the new run's upscaler (and its weight average) begin as the exported one, then train on;
    a resumed run continues from its own checkpoint, not from the exported weights again."""
    exported = tmp_path / "exported"
    export_upscaler(trained_run, exported)
    source, _, _ = restore_upscaler(trained_run)
    probe = np.random.default_rng(7).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")

    def outputs(model):
        return np.asarray(model(probe, training=False))

    trainer = SRGANTrainer(tiny_config(tiny_dataset, tmp_path / "tuned", pretrain_steps=0, gan_steps=2,
                                       content_loss="pixel", ema_decay=0.9, init_upscaler=str(exported)))
    assert trainer.restore() == 0
    for model in (trainer.upscaler, trainer.ema_upscaler):
        np.testing.assert_allclose(outputs(model), outputs(source), rtol=0, atol=1e-6)
    fresh = SRGANTrainer(tiny_config(tiny_dataset, tmp_path / "fresh", pretrain_steps=0, gan_steps=2,
                                     content_loss="pixel"))
    assert np.abs(outputs(fresh.upscaler) - outputs(source)).max() > 1e-4
    assert trainer.train()["step"] == 2
    assert np.abs(outputs(trainer.upscaler) - outputs(source)).max() > 0

    run = tmp_path / "cli"
    assert main(["srgan", "--data", str(tiny_dataset), "--out", str(run), *FLAGS, "--pretrain-steps", "0",
                 "--gan-steps", "1", "--content-loss", "pixel", "--learning-rate", "0.01", "--gan-learning-rate",
                 "0.01", "--init-upscaler", str(exported)]) == 0
    assert json.loads((run / "config.json").read_text())["init_upscaler"] == str(exported)
    after_one_step, _, _ = restore_upscaler(run)
    assert np.abs(outputs(after_one_step) - outputs(source)).max() > 1e-4
    resumed = SRGANTrainer(tiny_config(tiny_dataset, run, pretrain_steps=0, gan_steps=2, content_loss="pixel",
                                       init_upscaler=str(exported)))
    assert resumed.restore() == 1
    np.testing.assert_allclose(outputs(resumed.upscaler), outputs(after_one_step), rtol=0, atol=1e-6)
    capsys.readouterr()


@pytest.mark.parametrize(("flags", "message"), [
    (["--num-filters", "12"], "holds an upscaler built with --num-filters 8, not 12 as this run asks"),
    (["--num-layers", "3"], "holds an upscaler built with --num-layers 2, not 3 as this run asks"),
])
def test_init_upscaler_of_another_network_is_one_clear_line(trained_run, tiny_dataset, tmp_path, capsys, flags,
                                                              message):
    exported = tmp_path / "exported"
    export_upscaler(trained_run, exported)
    run = tmp_path / "run"
    assert main(["srgan", "--data", str(tiny_dataset), "--out", str(run), *FLAGS, *flags, "--content-loss", "pixel",
                 "--init-upscaler", str(exported)]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and message in errors[0], errors
    assert not run.exists()


def test_init_upscaler_that_does_not_record_a_network_field_is_one_clear_line(trained_run, tiny_dataset, tmp_path,
                                                                             capsys):
    """A field the bundle does not record is a mismatch, never assumed; only hr_channels, which bundles written
    before it existed lack, reads as the 0 they were built with."""
    exported = tmp_path / "exported"
    export_upscaler(trained_run, exported)
    manifest_path = exported / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["upscaler"]["training_config"]["num_filters"]
    del manifest["upscaler"]["training_config"]["hr_channels"]
    manifest_path.write_text(json.dumps(manifest))
    run = tmp_path / "run"
    assert main(["srgan", "--data", str(tiny_dataset), "--out", str(run), *FLAGS, "--content-loss", "pixel",
                 "--init-upscaler", str(exported)]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "built with --num-filters (unrecorded), not 8 as this run asks" in errors[0], errors
    assert not run.exists()


def test_init_upscaler_without_an_upscaler_is_one_clear_line(tiny_dataset, tmp_path, capsys):
    generator_only = make_bundle(tmp_path / "bundle", with_upscaler=False)
    run = tmp_path / "run"
    assert main(["srgan", "--data", str(tiny_dataset), "--out", str(run), *FLAGS, "--content-loss", "pixel",
                 "--init-upscaler", str(generator_only)]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "has no upscaler; export one first" in errors[0], errors
    assert not run.exists()


def test_export_into_a_bundle_with_a_generator_takes_its_resolution(trained_run, tmp_path):
    bundle = make_bundle(tmp_path / "bundle", with_upscaler=False)
    manifest = export_upscaler(trained_run, bundle)
    assert (manifest["upscaler"]["input_size"], manifest["upscaler"]["output_size"]) == (64, 256)
    assert manifest["generator"]["resolution"] == 64
    # The dataset holds 64 px images, so the metrics are taken at 64 px rather than at an upsized 256.
    assert manifest["upscaler"]["metrics"]["eval_size"] == 64


def test_eval_sr_prints_metrics_and_writes_the_side_by_side(trained_run, tiny_dataset, tmp_path, capsys):
    # A run folder: its own dataset and hold-out by default.
    assert main(["eval-sr", "--model", str(trained_run)]) == 0
    assert "8 held-out images (ids 40..47) at 64 px, x4" in capsys.readouterr().out
    export_upscaler(trained_run, tmp_path / "bundle")
    picture = tmp_path / "side_by_side.png"
    assert main(["eval-sr", "--model", str(tmp_path / "bundle"), "--data", str(tiny_dataset), "--count", "4",
                 "--out", str(picture)]) == 0
    out = capsys.readouterr().out
    assert "4 held-out images (ids 44..47) at 64 px, x4" in out
    for label in ("PSNR-Y", "SSIM-Y", "PSNR-RGB", "SSIM-RGB"):
        assert any(line.startswith(label) and "bicubic" in line for line in out.splitlines()), out
    from PIL import Image

    assert Image.open(picture).size == (4 * 64 + 3 * 2, 4 * 64 + 3 * 2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["srgan", "--hr-size", "128"], "holds 64 px images, smaller than --hr-size 128"),
        (["srgan", "--scale", "3"], "scale 3 is not supported"),
        (["srgan", "--generator-period-weight", "-1"], "generator_period_weight -1.0 is outside the allowed range"),
        (["srgan", "--generator-consistency-weight", "101"],
         "generator_consistency_weight 101.0 is outside the allowed range"),
        (["srgan", "--generator-grain-weight", "-1"],
         "generator_grain_weight -1.0 is outside the allowed range"),
        (["eval-sr"], "has no upscaler"),
    ],
)
def test_bad_input_is_one_clear_line(tiny_dataset, tmp_path, capsys, args, message):
    if args[0] == "eval-sr":
        args = [*args, "--model", str(make_bundle(tmp_path / "bundle", with_upscaler=False)),
                "--data", str(tiny_dataset)]
    else:
        args = [args[0], "--data", str(tiny_dataset), "--out", str(tmp_path / "run"), *FLAGS, *args[1:]]
    assert main(args) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "run").exists()


# The live recipe: degraded inputs, a full-size conv after an ICNR shuffle, a spectrally normalised patch critic
# with the relativistic average loss, discriminator feature matching, an L1 term, and a weight average.
RECIPE = {"degradation": "generator", "hr_channels": 4, "discriminator": "patch", "discriminator_layers": 2,
          "gan_loss": "ragan", "content_loss": "discriminator", "pixel_weight": 1.0, "content_weight": 0.5,
          "adversarial_weight": 0.01, "period_weight": 1.0, "ema_decay": 0.9}
RECIPE_FLAGS = [token for name, value in RECIPE.items() for token in ("--" + name.replace("_", "-"), str(value))]


@pytest.mark.parametrize("learner", ["discriminator", "upscaler"])
def test_adversarial_recipe_moves_both_losses(tiny_dataset, tmp_path, learner):
    # One network learns (rate 3e-3), the other all but stands still (1e-9), so each one's loss is measured
    # against a fixed opponent on a fixed batch.
    rates = {"gan_learning_rate": 3e-3 if learner == "upscaler" else 1e-9,
             "discriminator_learning_rate": 3e-3 if learner == "discriminator" else 1e-9}
    keras.utils.set_random_seed(0)
    trainer = SRGANTrainer(tiny_config(tiny_dataset, tmp_path / "run", pretrain_steps=0, gan_steps=20, **rates,
                                       **RECIPE))
    lr, hr = next(iter(pair_dataset(trainer.config)))

    def losses():
        """(discriminator loss, upscaler loss) on the fixed batch, as the adversarial step weighs them."""
        sr = trainer.upscaler(lr, training=False)
        real, fake = tf.split(trainer.discriminator(tf.concat([hr, sr], 0), training=False), 2)
        d_loss, adversarial = trainer.adversarial_losses(real, fake)
        period = tf.reduce_mean(tf.abs(periodic_pattern(sr, 4) - periodic_pattern(hr, 4)), axis=[1, 2, 3, 4])
        g_loss = (0.5 * trainer.content_loss(sr, hr) + tf.reduce_mean(tf.abs(sr - hr), axis=[1, 2, 3])
                  + period + 0.01 * adversarial)
        return float(tf.reduce_mean(d_loss)), float(tf.reduce_mean(g_loss))

    trainer.discriminator(tf.concat([hr, hr], 0), training=True)  # the first spectral-norm projection
    d_before, g_before = losses()
    average_before = [variable.numpy().copy() for variable in trainer.ema_upscaler.weights]
    fixed = trainer.strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors((lr, hr)).repeat())
    g_loss, d_loss, *_ = trainer.gan_steps(iter(fixed), tf.constant(20))
    d_after, g_after = losses()
    assert np.isfinite(float(g_loss)) and np.isfinite(float(d_loss))
    assert int(trainer.step) == 20 and int(trainer.discriminator_optimizer.iterations) == 20
    if learner == "discriminator":
        assert d_after < 0.9 * d_before, (d_before, d_after)  # it learns to tell this batch's SR from HR
        return
    assert g_after < 0.97 * g_before, (g_before, g_after)  # small steps: most of the loss is what bilinear misses
    # The weight average follows the upscaler, a step behind.
    for old, average, current in zip(average_before, trainer.ema_upscaler.weights, trainer.upscaler.weights,
                                     strict=True):
        if not np.allclose(old, current.numpy()):
            assert not np.allclose(old, average.numpy())
            assert not np.allclose(average.numpy(), current.numpy())


def test_degraded_pairs_are_deterministic_by_seed(tiny_dataset, tmp_path):
    config = tiny_config(tiny_dataset, tmp_path / "run", **RECIPE)
    first = [lr for lr, _ in pair_dataset(config).take(3).as_numpy_iterator()]
    again = [lr for lr, _ in pair_dataset(config).take(3).as_numpy_iterator()]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    clean = tiny_config(tiny_dataset, tmp_path / "run", **{**RECIPE, "degradation": "bicubic"})
    plain = [lr for lr, _ in pair_dataset(clean).take(3).as_numpy_iterator()]
    assert np.abs(np.stack(first) - np.stack(plain)).mean() > 1e-3
    later = [lr for lr, _ in pair_dataset(config, start=12).take(1).as_numpy_iterator()]
    assert not np.array_equal(later[0], first[0])


def test_recipe_resumes_at_the_exact_step_and_exports_the_average(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["srgan", "--data", str(tiny_dataset), "--out", str(run), *FLAGS, *RECIPE_FLAGS,
                 "--pretrain-steps", "2", "--gan-steps", "2"]) == 0
    assert checkpoint_value(run, "step/.ATTRIBUTES/VARIABLE_VALUE") == 4
    assert (iterations(run, "generator_optimizer"), iterations(run, "discriminator_optimizer")) == (4, 2)
    assert main(["srgan", "--out", str(run), "--resume", "--gan-steps", "4"]) == 0
    assert "done: step 6" in capsys.readouterr().out
    assert checkpoint_value(run, "step/.ATTRIBUTES/VARIABLE_VALUE") == 6
    assert (iterations(run, "generator_optimizer"), iterations(run, "discriminator_optimizer")) == (6, 4)
    stored = json.loads((run / "config.json").read_text())
    assert {name: stored[name] for name in RECIPE} == RECIPE

    bundle = tmp_path / "bundle"
    manifest = export_upscaler(run, bundle)
    assert {name: manifest["upscaler"]["training_config"][name] for name in RECIPE} == RECIPE
    # The export is the weight average, not the last raw weights.
    model, config, _ = restore_upscaler(run)
    raw = build_upscaler(config)
    tf.train.Checkpoint(upscaler=raw).restore(tf.train.latest_checkpoint(str(run / "checkpoints"))).expect_partial()
    averaged = model.get_layer("body0_conv").kernel.numpy()
    assert not np.allclose(averaged, raw.get_layer("body0_conv").kernel.numpy())
    trainer = SRGANTrainer(tiny_config(tiny_dataset, tmp_path / "fresh", **RECIPE))
    trainer.checkpoint.restore(tf.train.latest_checkpoint(str(run / "checkpoints")))
    np.testing.assert_array_equal(averaged, trainer.ema_upscaler.get_layer("body0_conv").kernel.numpy())

    probe = np.random.default_rng(6).uniform(-1, 1, (1, 13, 22, 3)).astype("float32")
    np.save(tmp_path / "probe.npy", probe)
    reloaded = upscale_in_a_fresh_process(bundle, tmp_path)
    assert reloaded.shape == (1, 52, 88, 3)
    np.testing.assert_allclose(reloaded, np.asarray(model(probe, training=False)), rtol=0, atol=1e-6)


def test_adversarial_settings_may_change_until_the_adversarial_stage_begins(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["srgan", "--data", str(tiny_dataset), "--out", str(run), *FLAGS, *RECIPE_FLAGS,
                 "--pretrain-steps", "2", "--gan-steps", "0"]) == 0
    # One pixel-loss pretraining, then the adversarial recipe chosen afterwards.
    assert main(["srgan", "--out", str(run), "--resume", "--gan-steps", "1", "--adversarial-weight", "0.05",
                 "--gan-loss", "hinge"]) == 0
    stored = json.loads((run / "config.json").read_text())
    assert (stored["adversarial_weight"], stored["gan_loss"], stored["pixel_weight"]) == (0.05, "hinge", 1.0)
    assert iterations(run, "discriminator_optimizer") == 1
    capsys.readouterr()
    assert main(["srgan", "--out", str(run), "--resume", "--gan-steps", "2", "--adversarial-weight", "0.1"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "--adversarial-weight can no longer change" in errors[0], errors
    assert json.loads((run / "config.json").read_text())["adversarial_weight"] == 0.05


def test_batch_pattern_keeps_what_every_frame_prints_and_averages_content_out():
    """A grid-locked tile printed into every frame at the same phase survives the batch average; the same tile at
    a random phase in each frame, and the frames' own content, do not."""
    from training.srgan import batch_pattern

    rng = np.random.default_rng(0)
    coarse = rng.uniform(-0.8, 0.8, (16, 12, 12, 3)).astype(np.float32)
    content = tf.image.resize(coarse, [96, 96], method="bicubic") + rng.normal(0, 0.02, (16, 96, 96, 3))
    tile = np.tile(rng.choice([-0.03, 0.03], (4, 4, 1)), (24, 24, 3)).astype(np.float32)
    shared = content + tile
    shifted = content + np.stack([np.roll(tile, rng.integers(0, 4, 2), axis=(0, 1)) for _ in range(16)])

    def strength(images):
        return float(tf.reduce_mean(tf.abs(batch_pattern(tf.cast(images, tf.float32), 4))))

    assert batch_pattern(tf.cast(shared, tf.float32), 4).shape == (16, 3, 3, 3)
    assert strength(shared) > 3 * strength(content), (strength(shared), strength(content))
    assert strength(shared) > 3 * strength(shifted), (strength(shared), strength(shifted))


@pytest.mark.parametrize("term, weight", [("generator_period_weight", 0.0), ("generator_period_weight", 20.0),
                                          ("generator_consistency_weight", 1.0), ("generator_grain_weight", 1.0)])
def test_each_unpaired_term_alone_trains_the_upscaler_on_gan_samples(tiny_dataset, tiny_bundle, tmp_path, term,
                                                                     weight):
    """With every other term at zero, the upscaler moves only when an unpaired term (pattern, consistency, grain)
    is on."""
    config = tiny_config(tiny_dataset, tmp_path / "run", pretrain_steps=0, gan_steps=1, gan_loss="ragan",
                         discriminator="patch", content_loss="pixel", content_weight=0.0, pixel_weight=0.0,
                         adversarial_weight=0.0, generator_bundle=str(tiny_bundle), generator_fraction=0.5,
                         **{term: weight})
    trainer = SRGANTrainer(config)
    # The tiny bundle's untrained generator draws flat grey; a frozen random dense layer draws frames with detail
    # at every frequency instead, so each unpaired term has something to correct.
    latent_dim = trainer.gan_generator.input_shape[-1]
    trainer.gan_generator = keras.Sequential([keras.Input([latent_dim]), keras.layers.Dense(64 * 64 * 3,
                                              activation="tanh"), keras.layers.Reshape([64, 64, 3])])
    lr = tf.random.uniform([2, config.lr_size, config.lr_size, 3], -1, 1, seed=1)
    # Smooth real crops: their power at the checkerboard frequencies is the ceiling grain_excess holds frames to.
    hr = tf.image.resize(tf.random.uniform([2, 4, 4, 3], -1, 1, seed=2), [config.hr_size, config.hr_size],
                         method="bicubic")
    before = [variable.numpy().copy() for variable in trainer.upscaler.trainable_variables]
    generator_loss = float(trainer.gan_replica_step(lr, hr)[0])
    moved = any(not np.allclose(old, new.numpy()) for old, new in zip(before, trainer.upscaler.trainable_variables,
                                                                     strict=True))
    assert np.isfinite(generator_loss)
    assert moved == (weight > 0) and (generator_loss > 0) == (weight > 0), (weight, generator_loss, moved)


def test_shrink_consistency_holds_a_frame_to_its_shapes_not_its_texture():
    """An upscaled frame that shrinks back to its input scores near zero, even with fine texture the shrink
    removes; the same frame moved by a quarter of its detail, or with its shapes blurred, does not."""
    from training.srgan import bicubic_upscale, shrink_consistency

    rng = np.random.default_rng(0)
    small = tf.constant(tf.image.resize(rng.uniform(-0.8, 0.8, (4, 6, 6, 3)), [24, 24], method="bicubic"),
                        tf.float32)
    large = bicubic_upscale(small, 4)
    hatching = 0.05 * (-1.0) ** np.add.outer(np.arange(96), np.arange(96))
    textured = large + tf.constant(hatching[None, :, :, None], tf.float32)
    moved = tf.roll(large, 8, axis=2)
    blurred = bicubic_upscale(tf.image.resize(small, [6, 6], antialias=True), 16)
    scores = {name: float(tf.reduce_mean(shrink_consistency(images, small)))
              for name, images in (("same", large), ("textured", textured), ("moved", moved),
                                   ("blurred", blurred))}
    assert shrink_consistency(large, small).shape == (4,)
    assert scores["same"] < 0.01 and scores["textured"] < 0.01, scores
    assert scores["moved"] > 5 * scores["textured"] and scores["blurred"] > 5 * scores["textured"], scores


def test_grain_excess_sees_a_checkerboard_whose_phase_follows_the_content():
    """A one-pixel checkerboard that flips phase with the content averages out of batch_pattern but not out of
    grain_excess; frames with the collection's power, or less, cost nothing; the filters measure a sinusoid's
    power at its own frequency only."""
    from training.srgan import batch_pattern, grain_excess, local_grain_power
    from training.srgan.losses import GRAIN_FREQUENCIES

    rng = np.random.default_rng(0)
    content = tf.image.resize(rng.uniform(-0.8, 0.8, (16, 12, 12, 3)).astype(np.float32), [96, 96],
                              method="bicubic")
    checkerboard = (-1.0) ** np.add.outer(np.arange(96), np.arange(96))
    phase = np.sign(tf.image.resize(rng.normal(size=(16, 6, 6, 1)), [96, 96], method="nearest").numpy())
    grainy = tf.constant(content + 0.03 * checkerboard[None, :, :, None] * phase, tf.float32)
    aligned = tf.constant(content + 0.03 * checkerboard[None, :, :, None], tf.float32)
    smoother = tf.nn.avg_pool2d(content, 3, 1, "SAME")

    def pattern(images):
        return float(tf.reduce_mean(tf.abs(batch_pattern(images, 4) - batch_pattern(content, 4))))

    assert pattern(grainy) < 0.2 * pattern(aligned), (pattern(grainy), pattern(aligned))
    assert float(grain_excess(grainy, content)) > 0.5
    assert float(grain_excess(grainy, content)) >= float(grain_excess(aligned, content)) > 0.5
    assert float(grain_excess(content, content)) == 0.0
    assert float(grain_excess(smoother, content)) == 0.0
    assert float(grain_excess(content, grainy)) == 0.0

    amplitude = 0.03
    wave = amplitude * np.cos(2 * np.pi * 0.25 * np.arange(96))[None, :, None, None] * np.ones((1, 96, 96, 3))
    power = local_grain_power(tf.constant(wave, tf.float32)).numpy()[0]
    own = GRAIN_FREQUENCIES.index((0.25, 0.0))
    assert power[own] == pytest.approx(amplitude**2, rel=0.01)
    assert np.delete(power, own).max() < 0.01 * amplitude**2
