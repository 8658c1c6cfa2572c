"""Mixed precision for the trainers: float16 on GPUs (with loss scaling), bfloat16 on TPUs and recent CPUs/GPUs.

Layers compute in the low precision and keep float32 variables; the networks' last layers (the generator's
tanh, the discriminator's logit) are float32 layers, so images, logits and losses stay float32. float16 has a
narrow exponent: small gradients underflow to zero unless the loss is scaled up first, which Keras's
LossScaleOptimizer does (and skips a step whose gradients overflowed). bfloat16 has float32's exponent and
needs no scaling.
"""

from __future__ import annotations

from contextlib import contextmanager

PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")


def check_precision(name: str) -> str:
    if name not in PRECISIONS:
        raise ValueError(f"mixed_precision {name!r} is unknown; choose one of {', '.join(PRECISIONS)}")
    return name


@contextmanager
def dtype_policy(name: str):
    """Build the networks under `name` (layers capture the policy when created), then restore the global one."""
    import keras

    check_precision(name)
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32" if name == "none" else name)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def wrap_optimizer(optimizer, name: str):
    """A LossScaleOptimizer around `optimizer` for float16; `optimizer` itself otherwise."""
    import keras

    return keras.optimizers.LossScaleOptimizer(optimizer) if name == "mixed_float16" else optimizer


def agree_on_finite(gradients):
    """Make every replica see non-finite gradients when any replica has them.

    LossScaleOptimizer decides per replica whether to apply a step or to lower the scale; with several
    workers a step applied on one and skipped on another would leave the others waiting in the gradient
    all-reduce. One scalar all-reduce makes the decision common: all apply, or all skip.
    """
    import tensorflow as tf

    present = [gradient for gradient in gradients if gradient is not None]
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(gradient)) for gradient in present])
    context = tf.distribute.get_replica_context()
    bad = tf.cast(tf.logical_not(finite), tf.float32)
    if context is not None:
        bad = context.all_reduce(tf.distribute.ReduceOp.SUM, bad)
    poison = tf.where(bad > 0, tf.constant(float("nan")), tf.constant(1.0))
    return [None if gradient is None else gradient * tf.cast(poison, gradient.dtype) for gradient in gradients]
