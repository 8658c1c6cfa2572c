"""The training controller both trainers share, in the manner of orbit's Controller.

A trainer supplies only what is its own: its networks (built in the strategy's scope), the per-replica step of
each phase, its input pipeline and its sample images. The controller owns the rest, so every trainer behaves
alike: the optimisers' conventions, the step counter, the checkpoint and its manager, resume at the exact saved
step, the loop that runs `steps_per_loop` steps in one graph call and then does the periodic actions (TensorBoard
scalars every `log_every`, samples every `sample_every`, a checkpoint every `checkpoint_every`, and on SIGINT or
SIGTERM a checkpoint and a stop), and the final checkpoint and samples.

With several workers only the chief writes the run folder; the others save into a temporary folder (see
training.cluster), and every decision that leads to a save is the same on every worker, because a save is a
collective there.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from training.cluster import StopAgreement, WorkerPlaces, role_from_environment
from training.options import option
from training.precision import wrap_optimizer
from training.runs import StopSignals, TrainingInterrupted, progress_kwargs, run_path
from training.strategy import StrategyConfig, check_global_batch, make_strategy, strategy_option

log = logging.getLogger(__name__)


EVERY = f"1..{10**9}"


@dataclass(frozen=True, kw_only=True)
class ControllerConfig:
    """The controller's options, the base of every trainer config (stored flat in config.json like the rest).

    Keyword-only, so a trainer config's own required fields (data, out) still come first.
    """

    steps_per_loop: int = option(10, "Steps run in one graph call between reports (Python overhead per loop).",
                                 range="1..10000")
    checkpoint_every: int = option(500, "Save a checkpoint every this many steps.", range=EVERY)
    sample_every: int = option(500, "Write samples every this many steps.", range=EVERY)
    log_every: int = option(50, "Write TensorBoard scalars every this many steps.", range=EVERY)
    keep_checkpoints: int = option(3, "How many of the latest checkpoints to keep.", range="1..1000")
    seed: int = option(0, "Seed of the initial weights, the data order and the noise: it names the run.")
    strategy: StrategyConfig = strategy_option()


@dataclass(frozen=True)
class Phase:
    """A stretch of steps run by one graph function (made by `Trainer.loop`): the steps below `end`.

    A loop never crosses `end`. `steps(iterator, count)` returns one value per name in `metrics`; `losses` maps a
    progress-bar label to the metric it shows, and a non-finite one stops the run. `announce` is logged when the
    phase begins.
    """

    end: int
    steps: Callable
    metrics: tuple[str, ...]
    losses: dict[str, str]
    announce: str | None = None


def make_optimizer(learning_rate, beta1: float, variables, precision: str = "none") -> keras.Optimizer:
    """Adam (a LossScaleOptimizer around it under float16), built on `variables` so that a checkpoint restores
    its slots at once rather than on first use. Call it in the strategy's scope."""
    optimizer = wrap_optimizer(keras.optimizers.Adam(learning_rate, beta_1=beta1), precision)
    optimizer.build(variables)
    return optimizer


def replica_mean(per_example: tf.Tensor, global_batch_size: int) -> tf.Tensor:
    """The per-replica share of the global mean.

    Each replica divides by the *global* batch: the optimizer sums gradients across replicas, so the sum of
    these per-replica means is the mean over the whole global batch.
    """
    return tf.nn.compute_average_loss(tf.reshape(per_example, [-1]), global_batch_size=global_batch_size)


def moving_average(average: keras.Model, model: keras.Model, decay) -> None:
    """average <- decay * average + (1 - decay) * weights, for every weight of `model`.

    Runs in cross-replica context: mirrored weights are identical on every replica after the update, and
    assigning a mirrored variable there updates every copy.
    """
    for averaged, weight in zip(average.weights, model.weights, strict=True):
        averaged.assign(decay * averaged + (1.0 - decay) * tf.convert_to_tensor(weight))


def crossed(previous: int, current: int, every: int) -> bool:
    """True when a multiple of `every` lies in (previous, current]."""
    return current // every > previous // every


class Trainer:
    """The base of both trainers: the strategy, the step counter, checkpoints, resume and the training loop.

    A subclass builds its networks and optimisers in `self.strategy.scope()`, then calls `self.attach(...)` with
    the objects its checkpoint holds, and defines `phases()`, `input_for(start_step)` and `save_samples(step,
    writer)`.
    """

    name = "train"
    fix_hint = "with a lower --learning-rate"

    def __init__(self, config, strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.run_dir = run_path(config.out)  # a local Path, or a gs:// URL
        self.strategy = strategy or make_strategy(config.strategy)
        check_global_batch(config.batch_size, self.strategy)
        # With several workers only the chief writes the run folder; the others save into a temporary folder.
        self.chief = self.strategy.extended.should_checkpoint
        self.places = WorkerPlaces(self.run_dir, self.chief)
        multiworker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self.stop_agreement = StopAgreement(self.strategy, multiworker and role_from_environment().workers > 1)

    def attach(self, **checkpointed) -> None:
        """The step counter, the checkpoint of `checkpointed` objects (named as they are saved) and its manager."""
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(step=self.step, **checkpointed)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.places.checkpoint_dir, max_to_keep=self.config.keep_checkpoints if self.chief else 1
        )

    def loop(self, replica_step: Callable, outputs: int, after_step: Callable | None = None) -> Callable:
        """A graph function running `count` steps of `replica_step`: Python overhead paid once per loop, not per
        step. Returns the global sums of the last step's `outputs` per-replica values. `after_step` runs after
        every step in cross-replica context (weight averages, statistics all-reduces)."""

        def run_steps(iterator, count):
            metrics = (tf.constant(0.0),) * outputs
            for _ in tf.range(count):
                batch = next(iterator)
                per_replica = self.strategy.run(replica_step, args=batch if isinstance(batch, tuple) else (batch,))
                metrics = tuple(
                    self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in per_replica
                )
                if after_step is not None:
                    after_step()
                self.step.assign_add(1)
            return metrics

        return tf.function(run_steps)

    def average(self, per_example: tf.Tensor) -> tf.Tensor:
        return replica_mean(per_example, self.config.batch_size)

    def restore(self) -> int:
        """Resume at the latest saved step, if any; returns the step."""
        latest = tf.train.latest_checkpoint(str(self.places.restore_dir))
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            log.info("resumed from %s at step %d", latest, int(self.step))
        return int(self.step)

    def close(self) -> None:
        """Delete what a worker other than the chief wrote (its checkpoints); the chief's run folder stays."""
        self.places.cleanup()

    def train(self) -> dict:
        try:
            return Controller(self).run()
        finally:
            self.close()


class Controller:
    """One run of a trainer's phases from its saved step to the end, with the periodic actions between loops."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.config = trainer.config
        self.phases = trainer.phases()
        self.total = self.phases[-1].end
        self.writer = (tf.summary.create_file_writer(str(run_path(trainer.run_dir, "logs"))) if trainer.chief
                       else tf.summary.create_noop_writer())

    def phase_at(self, step: int) -> tuple[int, Phase]:
        """The phase `step` falls in, and the step that phase begins at."""
        begin = 0
        for phase in self.phases:
            if step < phase.end:
                return begin, phase
            begin = phase.end
        raise ValueError(f"step {step} is past the last phase")

    def run(self) -> dict:
        trainer, config = self.trainer, self.config
        start = trainer.restore()
        iterator = iter(trainer.input_for(start))
        metrics = {}
        step = start
        with StopSignals() as stop, self.writer.as_default():
            bar = tqdm(total=self.total, initial=min(start, self.total), unit="step", desc=trainer.name,
                       **progress_kwargs())
            try:
                while step < self.total:
                    begin, phase = self.phase_at(step)
                    if step == begin and phase.announce:
                        log.info("%s from step %d", phase.announce, step)
                    count = min(config.steps_per_loop, phase.end - step)
                    began = time.perf_counter()
                    values = (float(value) for value in phase.steps(iterator, tf.constant(count)))
                    metrics = dict(zip(phase.metrics, values, strict=True))
                    elapsed = time.perf_counter() - began
                    previous, step = step, int(trainer.step)
                    metrics["steps_per_second"] = count / elapsed
                    losses = {label: metrics[name] for label, name in phase.losses.items()}
                    bar.update(step - previous)
                    bar.set_postfix({label: f"{value:.3f}" for label, value in losses.items()}, refresh=False)
                    self.after(previous, step, metrics, losses, stop)
                self.finish(step)
            finally:
                bar.close()
        return {"step": step, **metrics}

    def after(self, previous: int, step: int, metrics: dict, losses: dict, stop: StopSignals) -> None:
        """The periodic actions after a loop that went from step `previous` to `step`."""
        config, manager = self.config, self.trainer.manager
        if not all(np.isfinite(value) for value in losses.values()):
            raise FloatingPointError(f"losses became non-finite at step {step} ({losses}); resume from the last "
                                     f"checkpoint {self.trainer.fix_hint}")
        if crossed(previous, step, config.log_every) or step == self.total:
            for name, value in metrics.items():
                tf.summary.scalar(name, value, step=step)
        if crossed(previous, step, config.sample_every):
            self.save_samples(step)
        if crossed(previous, step, config.checkpoint_every):
            manager.save(checkpoint_number=step)
        if self.trainer.stop_agreement(stop.requested):
            manager.save(checkpoint_number=step)
            # A worker that was not signalled itself stops because another one was (preemption of one host).
            raise TrainingInterrupted(step, stop.signum or signal.SIGTERM)

    def save_samples(self, step: int) -> str | Path | None:
        return self.trainer.save_samples(step, self.writer) if self.trainer.chief else None

    def finish(self, step: int) -> None:
        """A final checkpoint (unless the last loop just wrote it) and samples at the last step."""
        manager = self.trainer.manager
        if manager.latest_checkpoint != os.path.join(str(manager.directory), f"ckpt-{step}"):
            manager.save(checkpoint_number=step)
        self.save_samples(step)
        self.writer.flush()
