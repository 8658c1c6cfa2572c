"""DCGAN training end to end: replication, interruption and resume, export and reload."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training.dcgan import DCGANConfig, DCGANTrainer
from training.runs import prepare_run_dir
from training.strategy import StrategyConfig, mirrored_strategy

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--resolution", "64", "--width-multiplier", "0.0625", "--batch-size", "8", "--steps-per-loop", "2"]


def cli(*args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def test_mirrored_strategy_trains_with_distinct_replica_batches(tiny_dataset, tmp_path):
    strategy = mirrored_strategy(StrategyConfig("mirrored"))
    assert strategy.num_replicas_in_sync == 2
    config = DCGANConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), resolution=64, width_multiplier=0.0625,
                         batch_size=8, steps=4, steps_per_loop=2, strategy="mirrored")
    trainer = DCGANTrainer(prepare_run_dir(config.out, config, resume=False), strategy=strategy)
    batch = next(iter(trainer.dataset()))
    first, second = (np.asarray(part) for part in strategy.experimental_local_results(batch))
    assert first.shape == second.shape == (4, 64, 64, 3)
    assert not np.allclose(first, second)
    before = [variable.numpy().copy() for variable in trainer.generator.trainable_variables]
    result = trainer.train()
    assert result["step"] == 4
    assert np.isfinite(result["d_loss"]) and np.isfinite(result["g_loss"])
    after = trainer.generator.trainable_variables
    assert any(not np.allclose(old, new.numpy()) for old, new in zip(before, after, strict=True))
    assert (tmp_path / "run" / "samples" / "step_00000004.png").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["batch_size"] == 8


def optimizer_iterations(checkpoint_path: str) -> int:
    reader = tf.train.load_checkpoint(checkpoint_path)
    return int(reader.get_tensor("generator_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


def test_sigterm_checkpoints_and_resume_continues_at_the_saved_step(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "dcgan", "--data", str(tiny_dataset), "--out", str(run), *TINY,
         "--steps", "100000", "--sample-every", "2", "--checkpoint-every", "100000", "--strategy", "cpu"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not list((run / "samples").glob("step_*.png")) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "checkpoint saved" in stderr and "--resume" in stderr
    saved = tf.train.latest_checkpoint(str(run / "checkpoints"))
    saved_step = int(saved.rsplit("-", 1)[1])
    assert saved_step >= 2 and optimizer_iterations(saved) == saved_step

    result = cli("dcgan", "--out", str(run), "--resume", "--steps", str(saved_step + 4))
    assert result.returncode == 0, result.stderr
    assert f"step {saved_step + 4}" in result.stdout
    final = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert final.endswith(f"ckpt-{saved_step + 4}")
    assert optimizer_iterations(final) == saved_step + 4


def test_export_reloads_in_a_fresh_process_and_is_deterministic(tiny_dataset, tmp_path):
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    assert cli("dcgan", "--data", str(tiny_dataset), "--out", str(run), *TINY, "--steps", "2",
               "--strategy", "cpu").returncode == 0
    exported = cli("export", str(run), "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["generator"]["resolution"] == 64 and manifest["generator"]["steps"] == 2
    assert manifest["dataset"]["count"] == 48
    assert manifest["generator"]["litert"]["file"] == "generator.tflite" and (bundle / "generator.tflite").is_file()
    probe = (
        "import numpy as np; from models.bundle import load_bundle\n"
        f"b = load_bundle({str(bundle)!r})\n"
        "z = np.random.default_rng(3).standard_normal((4, b.latent_dim)).astype('float32')\n"
        "a = np.asarray(b.generator(z, training=False)); c = np.asarray(b.generator(z, training=False))\n"
        "print(a.shape, a.dtype, a.min() >= -1, a.max() <= 1, np.array_equal(a, c), float(a.std()) > 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "(4, 64, 64, 3) float32 True True True True", result.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--resolution", "96"], "resolution 96 is not supported"),
        (["--batch-size", "7", "--strategy", "mirrored", "--logical-cpus", "2"], "not divisible by the 2 replicas"),
        (["--strategy", "tpu", "--tpu", "no-such-tpu"], "TPU no-such-tpu is unreachable"),
        (["--strategy", "gpu-cluster"], "strategy 'gpu-cluster' is unknown"),
    ],
)
def test_bad_training_input_is_one_clear_line(tiny_dataset, tmp_path, extra, message):
    args = ["dcgan", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--steps", "2", *TINY, *extra]
    result = cli(*args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_run_folder_with_another_config_is_refused_and_kept(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    assert cli("dcgan", "--data", str(tiny_dataset), "--out", str(run), *TINY, "--steps", "2",
               "--strategy", "cpu").returncode == 0
    before = sorted(path.name for path in (run / "checkpoints").iterdir())
    result = cli("dcgan", "--data", str(tiny_dataset), "--out", str(run), *TINY, "--steps", "2",
                 "--learning-rate", "0.001", "--strategy", "cpu")
    assert result.returncode == 2
    assert "different config" in result.stderr and "learning_rate" in result.stderr
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == before


def test_empty_data_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("ingest", str(tmp_path / "empty"), "--out", str(tmp_path / "dataset"))
    assert result.returncode == 2
    assert "no readable images" in result.stderr and "Traceback" not in result.stderr


def test_warm_start_takes_the_networks_and_extra_generator_updates_count(tiny_dataset, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert cli("dcgan", "--data", str(tiny_dataset), "--out", str(first), *TINY, "--steps", "2",
               "--strategy", "cpu").returncode == 0
    result = cli("dcgan", "--data", str(tiny_dataset), "--out", str(second), *TINY, "--steps", "2",
                 "--strategy", "cpu", "--init-from", str(first), "--generator-updates", "2")
    assert result.returncode == 0, result.stderr
    assert "networks initialised from" in result.stderr
    final = tf.train.latest_checkpoint(str(second / "checkpoints"))
    assert final.endswith("ckpt-2") and optimizer_iterations(final) == 4  # two generator updates per step
    missing = cli("dcgan", "--data", str(tiny_dataset), "--out", str(tmp_path / "third"), *TINY, "--steps", "2",
                  "--strategy", "cpu", "--init-from", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "holds no checkpoint to start from" in missing.stderr


def cross_entropy(logits, label: float) -> float:
    return float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), label), logits)))


def train_with_one_network_frozen(trainer, frozen_optimizer, real_images, loops=6, steps=4):
    """`loops` x `steps` steps of the real training loop on one fixed real batch, with `frozen_optimizer`'s
    learning rate at 0 meanwhile: only the other network learns."""
    rate = float(frozen_optimizer.learning_rate)
    frozen_optimizer.learning_rate = 0.0
    iterator = iter(trainer.strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(real_images).repeat()))
    for _ in range(loops):
        trainer.train_steps(iterator, tf.constant(steps))
    frozen_optimizer.learning_rate = rate


def test_each_network_lowers_its_loss_while_the_other_is_frozen(tiny_dataset, tmp_path):
    # A GAN's two losses need not fall together, but each network's updates must lower its own loss against a
    # fixed opponent. The losses are computed here, apart from the trainer's loss code, so a build whose
    # optimizer step, learning rate, gradients or loss sign is wrong fails.
    config = DCGANConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), resolution=64, width_multiplier=0.0625,
                         batch_size=8, steps=100, steps_per_loop=4, strategy="cpu", learning_rate=1e-3)
    trainer = DCGANTrainer(prepare_run_dir(config.out, config, resume=False))
    real_images = next(iter(trainer.dataset()))
    latent = tf.random.stateless_normal([8, config.latent_dim], seed=[1, 2])

    def discriminator_loss():
        fake_images = trainer.generator(latent, training=True)
        return (cross_entropy(trainer.discriminator(real_images, training=True), 1.0)
                + cross_entropy(trainer.discriminator(fake_images, training=True), 0.0))

    def generator_loss():
        return cross_entropy(trainer.discriminator(trainer.generator(latent, training=True), training=True), 1.0)

    before = discriminator_loss()
    train_with_one_network_frozen(trainer, trainer.generator_optimizer, real_images)
    after = discriminator_loss()
    assert after < 0.6 * before, (before, after)

    before = generator_loss()
    train_with_one_network_frozen(trainer, trainer.discriminator_optimizer, real_images)
    after = generator_loss()
    assert after < 0.6 * before, (before, after)


DCGAN_CHECKPOINT_OBJECTS = {"step", "generator", "discriminator", "generator_optimizer", "discriminator_optimizer",
                            "noise", "save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_a_run_folder_in_the_flat_config_layout_resumes_at_its_step(tiny_dataset, tmp_path):
    """Run folders written before StrategyConfig was nested store its fields flat; they must resume exactly."""
    run = tmp_path / "run"
    run.mkdir()
    flat = {
        "augment": "none", "batch_size": 8, "beta1": 0.5, "checkpoint_every": 500, "data": str(tiny_dataset),
        "discriminator_learning_rate": None, "ema_decay": 0.0, "flip": False, "generator_updates": 1,
        "init_from": None, "keep_checkpoints": 3, "label_smoothing": 0.0, "latent_dim": 100, "learning_rate": 0.0002,
        "log_every": 50, "loss": "bce", "minibatch_stddev": False, "mixed_precision": "none", "out": str(run),
        "r1_gamma": 0.0, "resolution": 64, "sample_every": 500, "seed": 0, "spectral_norm": False, "steps": 2,
        "steps_per_loop": 2, "strategy": "cpu", "tpu": None, "tpu_project": None, "tpu_zone": None,
        "upsampling": "transposed", "width_multiplier": 0.0625,
    }
    (run / "config.json").write_text(json.dumps(flat, indent=2, sort_keys=True))
    config = DCGANConfig(**{**{key: value for key, value in flat.items() if not key.startswith("tpu")},
                            "strategy": StrategyConfig("cpu")})
    DCGANTrainer(config).train()
    saved = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert {name.split("/")[0] for name, _ in tf.train.list_variables(saved)} == DCGAN_CHECKPOINT_OBJECTS

    result = cli("dcgan", "--out", str(run), "--resume", "--steps", "4")
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stderr and "at step 2" in result.stderr
    final = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert final.endswith("ckpt-4") and optimizer_iterations(final) == 4
    stored = json.loads((run / "config.json").read_text())
    # Options added since are stored with their defaults.
    assert stored == {**flat, "steps": 4, "top_block": False, "rgb_upsampling": None, "mode_seeking": 0.0,
                      "mode_seeking_distance": "pixels", "mode_seeking_bound": 0.0,
                      "spectral_weight": 0.0, "checkerboard_weight": 0.0}
    resolved = prepare_run_dir(run, DCGANConfig(data="", out=str(run)), resume=True)
    assert resolved.strategy == StrategyConfig("cpu") and resolved.steps == 4
