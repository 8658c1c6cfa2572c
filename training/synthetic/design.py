"""A mask's design: every random choice made for one seed, in normalized units, before any pixel exists.

`Traits` are the catalogue-level choices, `Layout` the face's proportions and the landmarks later steps place
their parts by, `Design` everything rendering needs. training/synthetic/mask.py fills them in, step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.synthetic.geometry import Shape


@dataclass(frozen=True)
class Traits:
    """What the catalogue says about a mask: its workshop, shape, material, pattern and features to carve."""

    culture: str
    silhouette: str
    material: str
    pattern: str
    has_horns: bool
    has_crest: bool
    raffia_kind: str  # "none", "chin" or "ruff"
    has_scars: bool
    eyes: str
    mouth: str


@dataclass
class Layout:
    """The face's frame (centre, top, size, what rises above it) and landmarks found as the parts are placed."""

    cx: float
    y0: float
    height: float
    half_w: float
    board_h: float
    horn_h: float
    crest_h: float
    above: float
    angle: float
    outline: np.ndarray | None = None
    face_top: float = 0.0
    dome_h: float = 0.0
    region_forehead: tuple[float, float, float, float] | None = None
    eye_line: float = 0.0
    ey: float = 0.0
    ex: float = 0.0
    eye_w: float = 0.0
    slant: float = 0.0
    jitter: np.ndarray | None = None
    nose_bottom: float = 0.0
    my: float = 0.0  # the mouth's centre line


@dataclass
class Design:
    """Everything one mask needs, in normalized units: rendering it draws no further random numbers."""

    silhouette: str
    material: str
    pattern: str
    features: list[str]
    culture: str
    title: str
    angle: float
    light: tuple[float, float, float]
    spot: tuple[float, float]
    albedo: tuple[float, float, float]
    wood_base: tuple[float, float, float]
    # parts: (shapes, bevel radius, base height); heights and radii are normalized to the image size
    parts: list[tuple[list[Shape], float, float]] = field(default_factory=list)
    dome: tuple[float, float, float, float, float] = (0.5, 0.5, 0.3, 0.3, 0.0)
    relief: list[tuple[list[Shape], float, float]] = field(default_factory=list)  # shapes, height, blur
    incisions: list[Shape] = field(default_factory=list)
    holes: list[Shape] = field(default_factory=list)
    teeth: list[Shape] = field(default_factory=list)
    paint: list[tuple[list[Shape], list[Shape], tuple[float, float, float], float]] = field(default_factory=list)
    specks: list[tuple[list[Shape], tuple[float, float, float], float]] = field(default_factory=list)
    raffia: list[tuple[np.ndarray, tuple[float, float, float]]] = field(default_factory=list)
    raffia_width: float = 0.004
    background: str = "studio grey"
    bg_colors: tuple = ()
    bg_noise: np.ndarray | None = None
    bg_weave: np.ndarray | None = None
    vignette: float = 0.0
    shadow: tuple[float, float, float, float] = (0.0, 0.0, 0.02, 0.3)
    grain: float = 0.0
    grain_freq: float = 30.0
    grain_warp: np.ndarray | None = None
    grain_fine: np.ndarray | None = None
    surface_noise: np.ndarray | None = None
    speck_noise: np.ndarray | None = None
    kaolin_wear: float = 0.0
    specular: float = 0.1
    shininess: float = 10.0
    ambient: float = 0.4


def catalogue_title(silhouette: str, features: list[str], pattern: str, material: str, rng: np.random.Generator) -> str:
    noun = {"oval": "Oval face mask", "elongated": "Elongated face mask", "heart": "Heart-shaped face mask",
            "helmet": "Helmet mask", "plank": "Plank mask"}[silhouette]
    extras = []
    for key, phrase in (("horns", "horns"), ("crest", "a crest"), ("raffia fringe", "raffia"),
                        ("raffia ruff", "a raffia ruff")):
        if key in features:
            extras.append(phrase)
    if silhouette == "plank":
        extras.insert(0, {"checks": "a checkered panel", "stripes": "a striped panel",
                          "zigzags": "a zigzag panel", "dots": "a dotted panel"}[pattern])
    elif pattern != "none" and len(extras) < 2:
        extras.append(f"painted {pattern}")
    if len(extras) < 2:
        for key in ("cheek scarification", "forehead scarification", "slit eyes", "round eye holes", "teeth"):
            if key in features:
                extras.append(key)
                break
    extras = extras[:2]
    if material in ("bronze", "iron", "terracotta") and rng.random() < 0.5:
        noun = f"{material.capitalize()} {noun[0].lower()}{noun[1:]}"
    if not extras:
        return noun
    return noun + " with " + " and ".join(extras)
