"""Images/s of Masquerade's DCGAN training step vs a keras-io style `Model.fit` + `train_step` DCGAN.

Both train the same networks (models.dcgan at the same width) on the same ingested data, in the same
process, one after the other, interleaved over several rounds so machine noise hits both alike.

    python bench/train_throughput.py [--resolution 64] [--width 0.25] [--batch-size 64] [--steps 40]

With --workers N it measures multi-worker training instead: the same global batch trained by one local
worker and by N local workers (MultiWorkerMirroredStrategy, started by training.launch, gRPC on localhost),
images/s as the chief times its steps after a warm-up.

    python bench/train_throughput.py --workers 2 [--batch-size 64] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models import dcgan  # noqa: E402
from training import data, synthetic  # noqa: E402
from training.dcgan import DCGANConfig, DCGANTrainer  # noqa: E402


class KerasIoGAN(keras.Model):
    """The keras-io DCGAN recipe: D on concatenated real+fake with noisy labels, then G on fresh noise."""

    def __init__(self, generator, discriminator, latent_dim):
        super().__init__()
        self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        latent = tf.random.normal((batch_size, self.latent_dim))
        generated = self.generator(latent)
        combined = tf.concat([generated, real_images], axis=0)
        labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * tf.random.uniform(tf.shape(labels))
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights, strict=True))
        latent = tf.random.normal((batch_size, self.latent_dim))
        misleading = tf.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(misleading, self.discriminator(self.generator(latent)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))
        return {"d_loss": d_loss, "g_loss": g_loss}


def make_dataset_dir(root: Path, resolution: int) -> Path:
    synthetic.generate_collection(root / "images", count=256, size=resolution, seed=1, progress=False)
    config = data.IngestConfig(image_size=resolution, min_size=16, dedupe_threshold=-1)
    data.ingest(root / "images", root / "dataset", config, progress=False)
    return root / "dataset"


def time_ours(trainer: DCGANTrainer, iterator, steps: int, steps_per_loop: int) -> float:
    began = time.perf_counter()
    for _ in range(steps // steps_per_loop):
        values = trainer.train_steps(iterator, tf.constant(steps_per_loop))
    float(values[0])
    return time.perf_counter() - began


def time_keras_io(gan: KerasIoGAN, dataset, steps: int) -> float:
    began = time.perf_counter()
    gan.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return time.perf_counter() - began


def worker(args) -> int:
    """One cluster member (TF_CONFIG from the launcher): time rounds of steps; the chief writes the figure."""
    config = DCGANConfig(data=args.worker_of, out=str(Path(args.figure).parent / "run"), resolution=args.resolution,
                         width_multiplier=args.width, batch_size=args.batch_size, strategy="multiworker",
                         steps_per_loop=args.steps_per_loop)
    trainer = DCGANTrainer(config)
    try:
        iterator = iter(trainer.dataset())
        time_ours(trainer, iterator, args.steps_per_loop, args.steps_per_loop)  # warm-up: tracing, connections
        cpu_began = time.process_time()
        rates = [args.steps * args.batch_size / time_ours(trainer, iterator, args.steps, args.steps_per_loop)
                 for _ in range(args.rounds)]
        cpu_seconds = time.process_time() - cpu_began
    finally:
        trainer.close()
    # Every worker reports its CPU time (all its threads): on a shared machine the wall-clock rate depends on
    # how much of the CPU the other jobs leave, CPU time per image does much less.
    index = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0)
    figure = {"rates": rates, "cpu_seconds": cpu_seconds, "images": args.rounds * args.steps * args.batch_size}
    Path(f"{args.figure}.{index}").write_text(json.dumps(figure))
    return 0


def multiworker(args) -> int:
    from training.launch import LaunchConfig, launch

    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        dataset_dir = make_dataset_dir(Path(scratch), args.resolution)
        for workers in (1, args.workers):
            figure = Path(scratch) / f"figure-{workers}.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--worker-of", str(dataset_dir),
                       "--figure", str(figure), "--resolution", str(args.resolution), "--width", str(args.width),
                       "--batch-size", str(args.batch_size), "--steps", str(args.steps),
                       "--rounds", str(args.rounds), "--steps-per-loop", str(args.steps_per_loop)]
            status = launch(command, LaunchConfig(workers, Path(scratch) / f"logs-{workers}"))
            if status != 0:
                print(f"error: the {workers}-worker run failed (status {status})", file=sys.stderr)
                return 1
            reports = [json.loads(Path(f"{figure}.{index}").read_text()) for index in range(workers)]
            cpu_ms = 1000 * sum(report["cpu_seconds"] for report in reports) / reports[0]["images"]
            figures[workers] = (reports[0]["rates"], cpu_ms)
    one, many = (float(np.median(figures[workers][0])) for workers in (1, args.workers))
    print(f"DCGAN {args.resolution}px width {args.width}, global batch {args.batch_size}, {os.cpu_count()} CPU "
          f"cores, load average {os.getloadavg()[0]:.1f}, median of {args.rounds} rounds x {args.steps} steps")
    for workers in (1, args.workers):
        rates, cpu_ms = figures[workers]
        rounds = ", ".join(f"{value:.0f}" for value in rates)
        print(f"  {workers} local worker(s) : {float(np.median(rates)):8.1f} images/s  (rounds: {rounds}); "
              f"{cpu_ms:.2f} CPU ms/image over all workers")
    print(f"  {args.workers} workers / 1 worker : {many / one:8.2f}x images/s, "
          f"{figures[args.workers][1] / figures[1][1]:.2f}x CPU per image")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps-per-loop", type=int, default=10)
    parser.add_argument("--workers", type=int, default=0, help="compare 1 and N local workers instead")
    parser.add_argument("--worker-of", help=argparse.SUPPRESS)  # internal: run as a cluster member on this dataset
    parser.add_argument("--figure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_of:
        return worker(args)
    if args.workers:
        if args.workers < 2:
            parser.error("--workers needs 2 or more (it compares against one worker)")
        return multiworker(args)

    with tempfile.TemporaryDirectory() as scratch:
        dataset_dir = make_dataset_dir(Path(scratch), args.resolution)
        config = DCGANConfig(data=str(dataset_dir), out=str(Path(scratch) / "run"), resolution=args.resolution,
                             width_multiplier=args.width, batch_size=args.batch_size, strategy="cpu",
                             steps_per_loop=args.steps_per_loop)
        trainer = DCGANTrainer(config)
        ours_iterator = iter(trainer.dataset())

        gan = KerasIoGAN(dcgan.generator(args.resolution, width_multiplier=args.width),
                         dcgan.discriminator(args.resolution, width_multiplier=args.width), dcgan.LATENT_DIM)
        gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
        baseline_data = data.make_dataset(str(dataset_dir), args.resolution, args.batch_size, seed=0)

        time_ours(trainer, ours_iterator, args.steps_per_loop, args.steps_per_loop)  # warm-up: tracing
        time_keras_io(gan, baseline_data, 2)
        ours, baseline = [], []
        for _ in range(args.rounds):
            ours.append(args.steps * args.batch_size / time_ours(trainer, ours_iterator, args.steps,
                                                                   args.steps_per_loop))
            baseline.append(args.steps * args.batch_size / time_keras_io(gan, baseline_data, args.steps))
    ours_rate, baseline_rate = float(np.median(ours)), float(np.median(baseline))
    print(f"DCGAN {args.resolution}px width {args.width} batch {args.batch_size}, {os.cpu_count()} CPU cores, "
          f"median of {args.rounds} rounds x {args.steps} steps")
    print(f"  masquerade training step : {ours_rate:8.1f} images/s  (rounds: {', '.join(f'{v:.0f}' for v in ours)})")
    print(f"  keras-io Model.fit       : {baseline_rate:8.1f} images/s  "
          f"(rounds: {', '.join(f'{v:.0f}' for v in baseline)})")
    print(f"  ratio                    : {ours_rate / baseline_rate:8.2f}x  (target >= 1.2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
