"""A procedural collection of carved-mask images: deterministic test data and the demo GAN's training set.

Each seed is first turned into a design (every shape in normalized 0..1 image coordinates plus small
low-resolution noise fields), and only then rasterized at twice the requested size and area-downsampled.
The random stream never depends on the size, so one seed gives the same composition at any resolution.

    materials.py   silhouettes, materials, patterns and pigments
    cultures.py    invented workshops (names checked against real peoples and places) and their leanings
    geometry.py    splines, ellipses and strokes in normalized coordinates
    design.py      Traits, Layout and Design: what one mask is, before any pixel
    mask.py        design_mask(seed): the named steps, in their fixed order
    features.py    the carved face's parts, one step each
    finish.py      surface specks, raffia and the backdrop
    render.py      a Design to pixels; render_mask(seed, size)
    collection.py  the folder of masks and metadata.csv, the contact sheet, the CLI
"""

from training.synthetic.collection import (
    IMAGE_FORMATS,
    METADATA_COLUMNS,
    contact_sheet,
    generate_collection,
    image_seed,
    main,
)
from training.synthetic.materials import MATERIALS, PATTERNS, SILHOUETTES
from training.synthetic.render import LICENSE, MAX_SIZE, MIN_SIZE, SOURCE, render_mask

__all__ = [
    "IMAGE_FORMATS", "LICENSE", "MATERIALS", "MAX_SIZE", "METADATA_COLUMNS", "MIN_SIZE", "PATTERNS", "SILHOUETTES",
    "SOURCE", "contact_sheet", "generate_collection", "image_seed", "main", "render_mask",
]
