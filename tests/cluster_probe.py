"""A worker program for the multi-worker tests: the real DCGANTrainer, one step at a time, every weight dumped.

Run by the launcher as a cluster member (TF_CONFIG from the launcher), or imported by a test and called
with a one-process strategy, so both runs can be compared weight by weight after every step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY = {"resolution": 64, "width_multiplier": 0.0625, "batch_size": 8, "steps_per_loop": 1, "ema_decay": 0.9,
        "seed": 3}


def all_weights(trainer) -> list[np.ndarray]:
    """Generator, discriminator and averaged generator weights (batch-norm statistics included)."""
    models = [trainer.generator, trainer.discriminator, trainer.average_generator]
    return [np.asarray(weight.numpy()) for model in models for weight in model.weights]


def train_and_dump(config, strategy, dump_dir: Path, name: str, steps: int, options=None) -> None:
    """`steps` single-step calls of the trainer's own step; after each, every weight and the losses to a file."""
    import tensorflow as tf

    from training.dcgan import DCGANTrainer

    trainer = DCGANTrainer(config, strategy=strategy)
    try:
        iterator = iter(trainer.dataset(options))
        dump_dir.mkdir(parents=True, exist_ok=True)
        for step in range(1, steps + 1):
            d_loss, g_loss, *_ = (float(value) for value in trainer.train_steps(iterator, tf.constant(1)))
            arrays = {f"w{index}": weight for index, weight in enumerate(all_weights(trainer))}
            np.savez(dump_dir / f"{name}-step{step}.npz", losses=np.array([d_loss, g_loss]), **arrays)
    finally:
        trainer.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dump", required=True)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()

    from training.cluster import role_from_environment
    from training.dcgan import DCGANConfig

    role = role_from_environment()
    config = DCGANConfig(data=args.data, out=args.out, strategy="multiworker", steps=args.steps, **TINY)
    train_and_dump(config, None, Path(args.dump), f"worker{role.task_index}", args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
