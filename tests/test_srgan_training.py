"""SRGAN training end to end: optimisation, perceptual losses, resume across stages, export, evaluation."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_bundle

from training.__main__ import main
from training.export import export_upscaler, restore_upscaler
from training.srgan import SRGANConfig, SRGANTrainer, pair_dataset, read_images_by_id

ROOT = Path(__file__).resolve().parents[1]
TINY = {"num_filters": 8, "num_layers": 2, "hr_size": 64, "batch_size": 4, "holdout": 8, "discriminator_filters": 8,
        "discriminator_dense_units": 16, "steps_per_loop": 2, "strategy": "cpu"}
FLAGS = [token for name, value in TINY.items() for token in ("--" + name.replace("_", "-"), str(value))]


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
    script = (
        "import sys, numpy as np; from pathlib import Path; from models.bundle import load_model\n"
        "model = load_model(Path(sys.argv[1]) / 'upscaler.keras')\n"
        "np.save(sys.argv[2], np.asarray(model(np.load(sys.argv[3]), training=False)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script, str(bundle), str(tmp_path / "out.npy"),
                             str(tmp_path / "probe.npy")], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    reloaded = np.load(tmp_path / "out.npy")
    assert reloaded.shape == (2, 96, 80, 3)
    np.testing.assert_allclose(reloaded, expected, rtol=0, atol=1e-6)


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
