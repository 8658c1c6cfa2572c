"""Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

A discriminator trained on a few thousand images memorises them and its gradients stop teaching the generator.
Augmenting only the real images would teach the generator to draw augmented images; DiffAugment applies the same
random transformations to real and generated batches alike, inside the graph, so gradients flow back through
them to the generator. Each function takes NHWC images in [-1, 1] and a `tf.random.Generator`.
"""

from __future__ import annotations

import tensorflow as tf

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """'color,translation,cutout' -> the names, checked; '' or 'none' -> no augmentation."""
    if policy.strip().lower() in ("", "none"):
        return ()
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"augmentation {unknown[0]!r} is unknown; choose from {', '.join(POLICIES)} or 'none'")
    return names


def color(images: tf.Tensor, noise: tf.random.Generator) -> tf.Tensor:
    """Random brightness, saturation and contrast per image."""
    batch = tf.shape(images)[0]
    brightness = noise.uniform([batch, 1, 1, 1], -0.5, 0.5)
    images = images + brightness
    mean_colour = tf.reduce_mean(images, axis=3, keepdims=True)
    images = (images - mean_colour) * noise.uniform([batch, 1, 1, 1], 0.0, 2.0) + mean_colour
    mean_all = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean_all) * noise.uniform([batch, 1, 1, 1], 0.5, 1.5) + mean_all


def translation(images: tf.Tensor, noise: tf.random.Generator, ratio: float = 0.125) -> tf.Tensor:
    """Shift each image by up to `ratio` of its size, filling with zeros (mid-grey in [-1, 1])."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    pad_y = tf.cast(tf.cast(height, tf.float32) * ratio + 0.5, tf.int32)
    pad_x = tf.cast(tf.cast(width, tf.float32) * ratio + 0.5, tf.int32)
    shift_y = noise.uniform([batch, 1], -pad_y, pad_y + 1, dtype=tf.int32)
    shift_x = noise.uniform([batch, 1], -pad_x, pad_x + 1, dtype=tf.int32)
    padded = tf.pad(images, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]])
    rows = tf.range(height)[None, :] + pad_y - shift_y
    columns = tf.range(width)[None, :] + pad_x - shift_x
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, columns, axis=2, batch_dims=1)


def cutout(images: tf.Tensor, noise: tf.random.Generator, ratio: float = 0.5) -> tf.Tensor:
    """Blank one square of `ratio` of the image size at a random place in each image."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    size_y = tf.cast(tf.cast(height, tf.float32) * ratio + 0.5, tf.int32)
    size_x = tf.cast(tf.cast(width, tf.float32) * ratio + 0.5, tf.int32)
    top = noise.uniform([batch, 1, 1], 0, height + 1 - size_y % 2, dtype=tf.int32) - size_y // 2
    left = noise.uniform([batch, 1, 1], 0, width + 1 - size_x % 2, dtype=tf.int32) - size_x // 2
    rows = tf.range(height)[None, :, None]
    columns = tf.range(width)[None, None, :]
    inside = (rows >= top) & (rows < top + size_y) & (columns >= left) & (columns < left + size_x)
    return images * tf.cast(~inside, images.dtype)[..., None]


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(images: tf.Tensor, policy: tuple[str, ...], noise: tf.random.Generator) -> tf.Tensor:
    """Apply each named augmentation in order; the identity when `policy` is empty."""
    for name in policy:
        images = AUGMENTATIONS[name](images, noise)
    return images
