"""Image features for provenance look-ups: two layers per extractor, each pooled to one unit vector per image.

Pooling, the same for every extractor:
- "early" (texture, colour, coarse layout): the first convolution block's map, averaged over a GRID x GRID grid
  of equal cells (adaptive average pooling; area resampling when the map size is not a multiple of GRID),
  flattened cell by cell -> channels * GRID**2 numbers. Two images score high when they look alike at a glance.
- "late" (motif): global average pooling of the last convolution block -> channels numbers, layout-free.
Each vector is then L2-normalised, so the dot product of two rows is their cosine similarity.

Every extractor takes uint8 NHWC frames of any square size, resizes them to its own input size inside the
graph, and returns float32 (N, dim) arrays per layer. Nothing here downloads anything.

Invariance: a copy of a training image that the generator mirrored or moved by a pixel or two is still a copy,
but a convolutional trunk's features change with both (a stride-16 layer samples a shifted image at another
phase). With `Invariance`, each image's pooled features are summed over views of it (itself and its mirror
image, each at a few sub-cell offsets, after a light anti-aliasing blur) before normalising, so a mirrored copy
has exactly the original's features and a shifted copy nearly so. The index records the invariance it was
built with, and look-ups use the same.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from models.index_format import (  # noqa: F401  (re-exported: the studio reads the index format here)
    DISCRIMINATOR_FILE,
    EXTRACTORS,
    INDEX_DIR,
    INDEX_FILES,
    INDEX_FORMAT,
    INDEX_FORMAT_VERSION,
    INDEX_INFO,
    LAYERS,
    THUMBNAIL_QUALITY,
    Thumbnails,
    file_sha256,
    frame_batch,
    load_thumbnails,
    nearest_other_similarity,
    similarity_percentiles,
    write_thumbnails,
)

EARLY_GRID = 4
VGG_LAYERS = ("block1_pool", "block5_pool")
VGG_DEFAULT_SIZE = 224
_DOWN_BLOCK = re.compile(r"^down(\d+)_lrelu$")


def grid_pool(feature_map: tf.Tensor, grid: int) -> tf.Tensor:
    """(N, H, W, C) -> (N, grid * grid * C): the mean of each of grid x grid equal cells, row-major."""
    height, width = feature_map.shape[1], feature_map.shape[2]
    if height == grid and width == grid:
        pooled = feature_map
    elif height is not None and width is not None and height % grid == 0 and width % grid == 0:
        cell = (height // grid, width // grid)
        pooled = tf.nn.avg_pool2d(feature_map, cell, cell, "VALID")
    else:
        pooled = tf.image.resize(feature_map, (grid, grid), method="area", antialias=True)
    return tf.reshape(pooled, (-1, grid * grid * pooled.shape[-1]))


def l2_normalize(vectors: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(tf.cast(vectors, tf.float32), axis=-1, epsilon=1e-12)


def resize_frames(images: tf.Tensor, size: int) -> tf.Tensor:
    """uint8 NHWC -> float32 NHWC in [0, 255] at size x size: area filter when shrinking, bilinear when enlarging."""
    pixels = tf.cast(images, tf.float32)
    height, width = images.shape[1], images.shape[2]
    if height == size and width == size:
        return pixels
    shrinking = height is not None and width is not None and min(height, width) > size
    return tf.image.resize(pixels, (size, size), method="area" if shrinking else "bilinear", antialias=True)


@dataclass(frozen=True)
class Invariance:
    """Which views of an image its features are summed over (see the module docstring)."""

    mirror: bool = False
    shift: int = 0  # views at (+-shift, +-shift) pixels of the extractor's input, edge-replicated; 0 = none
    blur_sigma: float = 0.0  # Gaussian anti-aliasing before the trunk, in input pixels; 0 = none

    def __post_init__(self):
        if not 0 <= self.shift <= 8:
            raise ValueError(f"invariance shift {self.shift} is outside the allowed range 0..8")
        if not 0 <= self.blur_sigma <= 4:
            raise ValueError(f"invariance blur_sigma {self.blur_sigma} is outside the allowed range 0..4")

    @classmethod
    def from_description(cls, described) -> Invariance:
        """What an index recorded; an index without the field was built without invariance."""
        if not isinstance(described, dict):
            return cls()
        return cls(bool(described.get("mirror", False)), int(described.get("shift", 0)),
                   float(described.get("blur_sigma", 0.0)))

    def offsets(self) -> list[tuple[int, int]]:
        step = self.shift
        return [(0, 0)] if not step else [(-step, -step), (-step, step), (step, -step), (step, step)]

    def views(self, pixels: tf.Tensor) -> tf.Tensor:
        """(N, H, W, C) -> (V * N, H, W, C): every view of every image, view-major."""
        if self.blur_sigma:
            pixels = gaussian_blur(pixels, self.blur_sigma)
        oriented = [pixels, pixels[:, :, ::-1]] if self.mirror else [pixels]
        views = []
        for image in oriented:
            for dy, dx in self.offsets():
                views.append(shifted(image, dy, dx))
        return tf.concat(views, axis=0) if len(views) > 1 else views[0]

    @property
    def count(self) -> int:
        return (2 if self.mirror else 1) * len(self.offsets())


INVARIANT = Invariance(mirror=True, shift=1, blur_sigma=1.0)  # what new indexes use


def gaussian_blur(pixels: tf.Tensor, sigma: float) -> tf.Tensor:
    radius = max(1, int(round(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = tf.constant(taps / taps.sum(), tf.float32)
    channels = pixels.shape[-1]
    padded = tf.pad(pixels, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    rows = tf.tile(tf.reshape(taps, (-1, 1, 1, 1)), (1, 1, channels, 1))
    columns = tf.tile(tf.reshape(taps, (1, -1, 1, 1)), (1, 1, channels, 1))
    blurred = tf.nn.depthwise_conv2d(padded, rows, (1, 1, 1, 1), "VALID")
    return tf.nn.depthwise_conv2d(blurred, columns, (1, 1, 1, 1), "VALID")


def shifted(pixels: tf.Tensor, dy: int, dx: int) -> tf.Tensor:
    """Move the picture by (dy, dx) pixels, repeating the edge into the space it leaves."""
    if not dy and not dx:
        return pixels
    pad = max(abs(dy), abs(dx))
    height, width = pixels.shape[1], pixels.shape[2]
    padded = tf.pad(pixels, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
    return padded[:, pad - dy : pad - dy + height, pad - dx : pad - dx + width]


class FeatureExtractor:
    """A frozen two-output trunk (early map, late map) with the pooling above; call `extract`."""

    layers = LAYERS

    def __init__(self, name: str, trunk: keras.Model, input_size: int, preprocess, batch_size: int,
                 early_grid: int = EARLY_GRID, details: dict | None = None, invariance: Invariance = Invariance()):
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size} must be at least 1")
        if not 1 <= early_grid <= 8:
            raise ValueError(f"early_grid {early_grid} is outside the allowed range 1..8")
        self.name = name
        self.trunk = trunk
        self.input_size = int(input_size)
        self.preprocess = preprocess  # float32 [0, 255] RGB -> what the trunk expects
        self.batch_size = int(batch_size)
        self.early_grid = int(early_grid)
        self.details = dict(details or {})
        self.invariance = invariance
        early_channels = int(trunk.outputs[0].shape[-1])
        late_channels = int(trunk.outputs[1].shape[-1])
        self.dims = {"early": early_channels * self.early_grid**2, "late": late_channels}
        self._graph = tf.function(self._features, reduce_retracing=True)

    def _features(self, images: tf.Tensor):
        views = self.invariance.views(resize_frames(images, self.input_size))
        early, late = self.trunk(self.preprocess(views), training=False)
        early = grid_pool(tf.cast(early, tf.float32), self.early_grid)
        late = tf.reduce_mean(tf.cast(late, tf.float32), axis=(1, 2))
        count = self.invariance.count
        early = tf.reduce_sum(tf.reshape(early, (count, -1, early.shape[-1])), axis=0)
        late = tf.reduce_sum(tf.reshape(late, (count, -1, late.shape[-1])), axis=0)
        return l2_normalize(early), l2_normalize(late)

    def extract(self, images) -> dict[str, np.ndarray]:
        """uint8 (N, H, W, 3) frames (or one (H, W, 3)) -> {"early": (N, d1), "late": (N, d2)}, float32 unit rows."""
        images = frame_batch(images)
        chunks = {layer: [] for layer in LAYERS}
        for start in range(0, len(images), self.batch_size):
            early, late = self._graph(tf.constant(images[start : start + self.batch_size]))
            chunks["early"].append(early.numpy())
            chunks["late"].append(late.numpy())
        if not len(images):
            return {layer: np.zeros((0, self.dims[layer]), np.float32) for layer in LAYERS}
        return {layer: np.concatenate(parts) for layer, parts in chunks.items()}

    def describe(self) -> dict:
        """What the index manifest records about this extractor."""
        return {
            "name": self.name,
            "layers": list(LAYERS),
            "dims": dict(self.dims),
            "input_size": self.input_size,
            "pooling": {"early": f"{self.early_grid}x{self.early_grid} average grid, L2-normalised",
                        "late": "global average pool, L2-normalised"},
            "invariance": dataclasses.asdict(self.invariance),
            **self.details,
        }


def _discriminator_trunk(discriminator: keras.Model) -> tuple[keras.Model, str, str]:
    blocks = sorted((int(match.group(1)), layer.name) for layer in discriminator.layers
                    if (match := _DOWN_BLOCK.match(layer.name)))
    if not blocks or blocks[0][0] != 0:
        raise ValueError(
            f"model {discriminator.name!r} has no down0_lrelu layer: pass a Masquerade DCGAN discriminator "
            "(models.dcgan.discriminator)"
        )
    early, late = blocks[0][1], blocks[-1][1]
    trunk = keras.Model(discriminator.inputs, [discriminator.get_layer(early).output,
                                               discriminator.get_layer(late).output], name="discriminator_features")
    trunk.trainable = False
    return trunk, early, late


def _to_unit_range(pixels: tf.Tensor) -> tf.Tensor:
    return pixels / 127.5 - 1.0


class DiscriminatorFeatures(FeatureExtractor):
    """Our own DCGAN discriminator: early = down0_lrelu, late = the last downN_lrelu. Works offline."""

    def __init__(self, discriminator_model: keras.Model, batch_size: int = 64, early_grid: int = EARLY_GRID,
                 invariance: Invariance = Invariance()):
        trunk, early, late = _discriminator_trunk(discriminator_model)
        size = discriminator_model.inputs[0].shape[1]
        if size is None:
            raise ValueError("the discriminator must have a fixed input size (models.dcgan.discriminator does)")
        super().__init__("discriminator", trunk, size, _to_unit_range, batch_size, early_grid,
                         {"source_layers": {"early": early, "late": late}}, invariance)
        self.discriminator = discriminator_model


def vgg16_weights_path(weights_path: str | os.PathLike | None = None) -> Path:
    from models.srgan import default_vgg_weights_path

    return default_vgg_weights_path("vgg16") if weights_path is None else Path(weights_path).expanduser()


class VGG16Features(FeatureExtractor):
    """ImageNet VGG16 at block1_pool (early) and block5_pool (late), weights from a local file only.

    weights_path: the Keras no-top .h5 file; None looks in the Keras cache. Missing -> FileNotFoundError.
    allow_random_weights: skip loading (benchmarks and shape tests; the features then mean little).
    input_size: frames are resized to this (224 as trained; any multiple of 32 from 32 up works).
    """

    def __init__(self, weights_path: str | os.PathLike | None = None, allow_random_weights: bool = False,
                 input_size: int = VGG_DEFAULT_SIZE, batch_size: int = 8, early_grid: int = EARLY_GRID,
                 invariance: Invariance = Invariance()):
        from models.srgan import VggPreprocess

        if not isinstance(input_size, int) or input_size < 32 or input_size % 32:
            raise ValueError(f"input_size {input_size!r} must be a multiple of 32 from 32 up (224 as trained)")
        path = None
        if weights_path is not None or not allow_random_weights:
            path = vgg16_weights_path(weights_path)
            if not path.is_file():
                raise FileNotFoundError(
                    f"VGG16 ImageNet weights not found at {path}; put "
                    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 there (or pass --vgg-weights PATH), "
                    "or use --extractor discriminator, which works offline"
                )
        vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(input_size, input_size, 3))
        if path is not None:
            vgg.load_weights(str(path))
        trunk = keras.Model(vgg.inputs, [vgg.get_layer(name).output for name in VGG_LAYERS], name="vgg16_features")
        trunk.trainable = False
        caffe = VggPreprocess(name="vgg_preprocess")
        super().__init__("vgg16", trunk, input_size, lambda pixels: caffe(_to_unit_range(pixels)), batch_size,
                         early_grid, {"source_layers": dict(zip(LAYERS, VGG_LAYERS, strict=True)),
                                      "weights": None if path is None else path.name}, invariance)
        self.weights_path = path


def build_extractor(name: str, *, discriminator: keras.Model | None = None,
                    vgg_weights: str | os.PathLike | None = None, allow_random_weights: bool = False,
                    input_size: int | None = None, batch_size: int | None = None,
                    invariance: Invariance = Invariance()) -> FeatureExtractor:
    """The extractor called `name` ("discriminator" needs the discriminator model; "vgg16" its weights file)."""
    options = {"invariance": invariance} if batch_size is None else {"batch_size": batch_size, "invariance": invariance}
    if name == "discriminator":
        if discriminator is None:
            raise ValueError("the discriminator extractor needs a discriminator: pass --run DCGAN_RUN "
                             "(or use a bundle that already holds discriminator.keras)")
        return DiscriminatorFeatures(discriminator, **options)
    if name == "vgg16":
        return VGG16Features(vgg_weights, allow_random_weights=allow_random_weights,
                             input_size=input_size or VGG_DEFAULT_SIZE, **options)
    raise ValueError(f"unknown feature extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")
