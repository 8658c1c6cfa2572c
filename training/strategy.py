"""Choose a tf.distribute strategy by name: the same training code runs on a laptop, GPUs, hosts or TPUs."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

import tensorflow as tf

from training.options import check_options, option

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "cpu", "mirrored", "multiworker", "tpu")


@dataclass(frozen=True)
class StrategyConfig:
    """Where a run computes; every trainer config holds one (stored flat in config.json: strategy, tpu, ...)."""

    name: str = option("auto", "Where to train: auto picks a named TPU, a TF_CONFIG cluster, the GPUs, else the CPU.",
                       choices=STRATEGIES, key="strategy")
    tpu: str | None = option(None, "TPU name or grpc:// address for --strategy tpu; unset, $TPU_NAME names it.")
    tpu_zone: str | None = option(None, "Cloud zone of the TPU, when its name alone does not find it.")
    tpu_project: str | None = option(None, "Cloud project of the TPU, when its name alone does not find it.")

    def __post_init__(self):
        check_options(self)


def strategy_option():
    """The `strategy` field every trainer config holds: a StrategyConfig, offered as --strategy, --tpu, ..."""
    return option(help="Where to train (see StrategyConfig).", nested=StrategyConfig, default_factory=StrategyConfig)


def nest_strategy(config) -> None:
    """Let callers write `strategy="cpu"` for `strategy=StrategyConfig("cpu")`."""
    if isinstance(config.strategy, str):
        object.__setattr__(config, "strategy", StrategyConfig(config.strategy))


def make_strategy(config: StrategyConfig) -> tf.distribute.Strategy:
    builders = {
        "auto": auto_strategy,
        "cpu": lambda _: tf.distribute.OneDeviceStrategy("/cpu:0"),
        "mirrored": mirrored_strategy,
        "multiworker": multiworker_strategy,
        "tpu": tpu_strategy,
    }
    strategy = builders[config.name](config)
    log.info("strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    return strategy


def auto_strategy(config: StrategyConfig) -> tf.distribute.Strategy:
    """TPU when one is named, several workers when TF_CONFIG says so, all GPUs when present, else the CPU."""
    if config.tpu or os.environ.get("TPU_NAME"):
        return tpu_strategy(config)
    if len(tf_config_workers()) > 1:
        return multiworker_strategy(config)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if len(gpus) == 1:
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def mirrored_strategy(config: StrategyConfig) -> tf.distribute.Strategy:
    """All GPUs; without GPUs, all logical CPU devices (how tests and CPU-only hosts exercise replication)."""
    gpus = tf.config.list_logical_devices("GPU")
    devices = [device.name for device in (gpus or tf.config.list_logical_devices("CPU"))]
    if gpus:
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())


def tf_config_workers() -> list[str]:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return []
    try:
        return list(json.loads(raw).get("cluster", {}).get("worker", []))
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}); see docs/distributed.md") from None


def multiworker_strategy(config: StrategyConfig) -> tf.distribute.Strategy:
    if not tf_config_workers():
        raise ValueError(
            "strategy 'multiworker' needs TF_CONFIG with a cluster.worker list and a task entry on every host "
            "(python -m training launch sets it for local workers; see docs/distributed.md)"
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def tpu_strategy(config: StrategyConfig) -> tf.distribute.Strategy:
    name = config.tpu or os.environ.get("TPU_NAME") or ""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=name, zone=config.tpu_zone, project=config.tpu_project
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, OSError, tf.errors.OpError, ImportError) as error:
        where = name or "(local TPU)"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"TPU {where} is unreachable ({reason}); check --tpu, --tpu-zone and --tpu-project, "
            "or use --strategy cpu"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def check_global_batch(global_batch_size: int, strategy: tf.distribute.Strategy) -> int:
    replicas = strategy.num_replicas_in_sync
    if global_batch_size < 1 or global_batch_size % replicas:
        lower = max(replicas, global_batch_size // replicas * replicas)
        raise ValueError(
            f"global batch size {global_batch_size} is not divisible by the {replicas} replicas; "
            f"use a multiple of {replicas}, e.g. --batch-size {lower}"
        )
    return global_batch_size // replicas


def use_logical_cpus(count: int) -> None:
    """Split the host CPU into `count` logical devices (before TensorFlow initialises), for replication on CPU."""
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) < count:
            raise
