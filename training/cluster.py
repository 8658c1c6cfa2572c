"""A worker's place in a multi-worker cluster: who writes the run folder, where the others write, when all stop.

With MultiWorkerMirroredStrategy every worker runs the same program. Only the chief writes the run folder
(checkpoints, TensorBoard summaries, sample images, the resolved config). A checkpoint save is a collective
(every worker must take part, or the chief waits forever), so the other workers save too, into a private
temporary folder that they delete when they finish. Decisions that lead to a collective, such as stopping on
SIGTERM, must be the same on every worker: `StopAgreement` all-reduces each worker's stop flag once per loop.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from training.runs import CHECKPOINT_DIR, run_path


@dataclass(frozen=True)
class Role:
    """This process's task in TF_CONFIG; a process without TF_CONFIG is a cluster of one, and its chief."""

    task_type: str | None = None
    task_index: int = 0
    workers: int = 1
    chief_task: bool = False  # the cluster names a "chief" task (then worker 0 is an ordinary worker)

    @property
    def chief(self) -> bool:
        # TensorFlow's rule: the "chief" task when the cluster names one, else worker 0.
        if self.task_type in (None, "chief"):
            return True
        return self.task_type == "worker" and self.task_index == 0 and not self.chief_task

    @property
    def name(self) -> str:
        return "single process" if self.task_type is None else f"{self.task_type} {self.task_index}"


def role_from_environment(environ=os.environ) -> Role:
    """Read TF_CONFIG without starting TensorFlow (the trainer checks the run folder before the strategy exists)."""
    raw = environ.get("TF_CONFIG")
    if not raw:
        return Role()
    try:
        config = json.loads(raw)
        cluster, task = config.get("cluster", {}), config.get("task", {})
        workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
        task_type, task_index = task.get("type"), int(task.get("index", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"TF_CONFIG is not valid ({error}); see docs/distributed.md") from None
    if workers < 2:
        return Role()
    if task_type not in ("chief", "worker"):
        raise ValueError(f"TF_CONFIG task type {task_type!r} is not supported; use 'worker' (or 'chief')")
    return Role(task_type, task_index, workers, bool(cluster.get("chief")))


class WorkerPlaces:
    """Where this worker writes: the run folder for the chief, a private temporary folder for the others."""

    def __init__(self, run_dir: str | Path, chief: bool):  # run_dir: a local folder or a gs:// URL
        self.run_dir = run_dir
        self.chief = chief
        self.scratch = None if chief else Path(tempfile.mkdtemp(prefix="masquerade-worker-"))

    @property
    def checkpoint_dir(self) -> str | Path:
        """Where this worker's CheckpointManager saves."""
        return run_path(self.run_dir, CHECKPOINT_DIR) if self.chief else self.scratch / CHECKPOINT_DIR

    @property
    def restore_dir(self) -> str | Path:
        """Where every worker restores from: the chief's checkpoints (the run folder must be shared by the hosts)."""
        return run_path(self.run_dir, CHECKPOINT_DIR)

    def cleanup(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


class StopAgreement:
    """Every worker learns, at the same loop boundary, whether any worker was asked to stop.

    A worker that received SIGTERM cannot save alone: the save is a collective. One small all-reduce of the
    flags per loop makes all workers stop (and save) after the same step. For one-worker strategies it is
    the local flag and costs nothing.
    """

    def __init__(self, strategy, multiworker: bool):
        import tensorflow as tf

        self.strategy = strategy
        self.multiworker = multiworker
        self.count = tf.function(self._count)

    def _count(self, flag):
        import tensorflow as tf

        per_replica = self.strategy.run(lambda value: tf.cast(value, tf.int32), args=(flag,))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def __call__(self, requested: bool) -> bool:
        if not self.multiworker:
            return requested
        import tensorflow as tf

        return int(self.count(tf.constant(requested))) > 0


@contextmanager
def worker_failures(role: Role):
    """In a cluster, a peer that vanished surfaces as a collective error: say so in one line (ConnectionError)."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.AbortedError) as error:
        if role.workers < 2:
            raise
        lost = sorted({int(task) for task in re.findall(r"/job:worker/replica:\d+/task:(\d+)", str(error.message))})
        peers = f"worker {', '.join(map(str, lost))}" if lost else "the other workers"
        raise ConnectionError(
            f"{role.name} lost contact with {peers} ({type(error).__name__}); "
            "restart all workers with --resume to continue from the last checkpoint"
        ) from None
