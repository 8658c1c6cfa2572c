"""The vocabulary of the collection: silhouettes, materials and patterns, and the colours each material takes."""

from __future__ import annotations

import numpy as np

SILHOUETTES = ("oval", "elongated", "heart", "helmet", "plank")
MATERIALS = ("dark wood", "light wood", "bronze", "terracotta", "iron", "wood with white kaolin")
PATTERNS = ("none", "stripes", "dots", "zigzags", "checks")

MATERIAL_PARAMS = {
    # albedo RGB 0..1, grain contrast, specular strength, shininess, ambient
    "dark wood": ((0.25, 0.16, 0.10), 0.16, 0.18, 18.0, 0.42),
    "light wood": ((0.68, 0.50, 0.32), 0.10, 0.06, 10.0, 0.36),
    "bronze": ((0.46, 0.31, 0.16), 0.0, 0.50, 24.0, 0.32),
    "terracotta": ((0.62, 0.36, 0.24), 0.0, 0.03, 8.0, 0.38),
    "iron": ((0.22, 0.21, 0.20), 0.0, 0.28, 14.0, 0.40),
    "wood with white kaolin": ((0.86, 0.84, 0.78), 0.0, 0.04, 8.0, 0.36),
}
PIGMENTS = {
    "white": (0.88, 0.86, 0.80),
    "red": (0.58, 0.20, 0.12),
    "black": (0.08, 0.07, 0.06),
    "ochre": (0.78, 0.56, 0.22),
    "indigo": (0.18, 0.22, 0.36),
}


def pick_pigment(rng: np.random.Generator, material: str, solid: bool = False) -> tuple[float, float, float]:
    if solid:  # large painted fields: kaolin white on dark surfaces, red or black on pale ones
        names = ("red", "black") if material in ("wood with white kaolin", "light wood") else ("white", "white", "red")
    elif material in ("dark wood", "iron", "bronze"):
        names = ("white", "white", "red", "ochre")
    elif material == "wood with white kaolin":
        names = ("black", "black", "red", "indigo")
    else:
        names = ("black", "white", "red", "black")
    return PIGMENTS[names[int(rng.integers(len(names)))]]
