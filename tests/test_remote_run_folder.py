"""A run folder given as a URL (gs:// on a TPU VM): config, checkpoints, samples, summaries and export go through
tf.io.gfile. Tested on TensorFlow's in-memory ram:// file system, which takes the same URL path."""

import dataclasses
import json

import tensorflow as tf

from training.dcgan import DCGANConfig, DCGANTrainer
from training.export import export_generator, latest_checkpoint
from training.runs import prepare_run_dir


def test_a_url_run_folder_trains_resumes_and_exports(tiny_dataset, tmp_path):
    out = f"ram://{tmp_path.name}/runs/masks"
    config = DCGANConfig(data=str(tiny_dataset), out=out, resolution=64, width_multiplier=0.0625, batch_size=8, steps=2,
                         steps_per_loop=2, strategy="cpu", sample_every=2)
    config = prepare_run_dir(out, config, resume=False)
    assert DCGANTrainer(config).train()["step"] == 2
    assert sorted(tf.io.gfile.listdir(out)) == ["checkpoints", "config.json", "logs", "samples"]
    assert tf.io.gfile.listdir(f"{out}/samples") == ["step_00000002.png"]

    resumed = prepare_run_dir(out, dataclasses.replace(config, steps=4), resume=True, explicit={"steps"})
    assert resumed.steps == 4 and DCGANTrainer(resumed).train()["step"] == 4
    assert latest_checkpoint(out) == f"{out}/checkpoints/ckpt-4"
    with tf.io.gfile.GFile(f"{out}/config.json") as stream:
        assert json.load(stream)["steps"] == 4
    manifest = export_generator(out, tmp_path / "bundle")
    assert manifest["generator"]["steps"] == 4 and (tmp_path / "bundle" / "generator.keras").is_file()
