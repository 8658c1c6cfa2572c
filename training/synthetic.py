"""A procedural collection of carved-mask images: deterministic test data and the demo GAN's training set.

Each seed is first turned into a design (every shape in normalized 0..1 image coordinates plus small
low-resolution noise fields), and only then rasterized at twice the requested size and area-downsampled.
The random stream never depends on the size, so one seed gives the same composition at any resolution.

The masks are frontal and near-symmetric: the left half is designed, mirrored, then jittered slightly.
Cultures are invented names built from syllables (checked against a list of real peoples and places) so
the collection never attributes a made-up object to a real community.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from models.grid import image_grid

logger = logging.getLogger(__name__)

MIN_SIZE = 16
MAX_SIZE = 1024
SILHOUETTES = ("oval", "elongated", "heart", "helmet", "plank")
MATERIALS = ("dark wood", "light wood", "bronze", "terracotta", "iron", "wood with white kaolin")
PATTERNS = ("none", "stripes", "dots", "zigzags", "checks")
IMAGE_FORMATS = ("png", "jpg")
SOURCE = "Masquerade procedural collection"
LICENSE = "CC0-1.0"
METADATA_COLUMNS = ("file", "title", "culture", "material", "source", "license")

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel precision keeps small renders faithful to large ones.
_ONE = 1 << _SHIFT
_CONTACT_SHEET_MAX = 64

# Shapes are ("poly", pts), ("line", pts, width, closed) or ("circle", center, radius), all normalized.
Shape = tuple


# ----------------------------------------------------------------------------------------------------------
# Geometry helpers (pure, normalized coordinates)
# ----------------------------------------------------------------------------------------------------------


def _catmull_rom_closed(points: np.ndarray, samples: int = 8) -> np.ndarray:
    """Samples a closed uniform Catmull-Rom spline through `points` (N x 2)."""
    p1 = points
    p0 = np.roll(points, 1, axis=0)
    p2 = np.roll(points, -1, axis=0)
    p3 = np.roll(points, -2, axis=0)
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[None, :, None]
    t2, t3 = t * t, t * t * t
    a, b, c, d = (x[:, None, :] for x in (p0, p1, p2, p3))
    out = 0.5 * (2 * b + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t2 + (-a + 3 * b - 3 * c + d) * t3)
    return out.reshape(-1, 2)


def _bezier(p0, p1, p2, n: int = 16) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def _ellipse(cx: float, cy: float, ax: float, ay: float, angle: float = 0.0, n: int = 32) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    x, y = ax * np.cos(t), ay * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _almond(cx: float, cy: float, w: float, h_top: float, h_bottom: float, angle: float) -> np.ndarray:
    """A lens with pointed corners: the parabola y = h (1 - (2x/w)^2) above and below."""
    t = np.linspace(0.0, 2 * math.pi, 28, endpoint=False)
    x = 0.5 * w * np.cos(t)
    s = np.sin(t)
    y = np.where(s < 0, h_top, h_bottom) * s * np.abs(s)
    c, sn = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - sn * y, cy + sn * x + c * y], axis=1)


def _band(pts, width: float) -> np.ndarray | None:
    """An open polyline of constant `width` as a polygon, when one direction is monotonic; else None.

    Filled polygons have exact anti-aliased widths at every resolution, unlike cv2's thick lines.
    """
    p = np.asarray(pts, dtype=np.float64)
    axis = next((a for a in (0, 1) if np.all(np.diff(p[:, a]) > 0) or np.all(np.diff(p[:, a]) < 0)), None)
    if axis is None:
        return None
    d = np.diff(p, axis=0)
    seg_cos = np.abs(d[:, axis]) / (np.linalg.norm(d, axis=1) + 1e-12)
    vertex_cos = np.concatenate([seg_cos[:1], (seg_cos[:-1] + seg_cos[1:]) / 2, seg_cos[-1:]])
    offset = np.zeros_like(p)
    offset[:, 1 - axis] = 0.5 * width / np.maximum(vertex_cos, 0.3)
    return np.concatenate([p - offset, (p + offset)[::-1]], axis=0)


def _mirror(pts: np.ndarray, cx: float) -> np.ndarray:
    out = np.array(pts, dtype=np.float64, copy=True)
    out[..., 0] = 2 * cx - out[..., 0]
    return out


def _tapered_stroke(center: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """Polygon around a centerline whose width goes linearly from w0 to w1."""
    d = np.gradient(center, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    w = np.linspace(w0, w1, len(center))[:, None] * 0.5
    return np.concatenate([center + normal * w, (center - normal * w)[::-1]], axis=0)


# ----------------------------------------------------------------------------------------------------------
# Invented cultures
# ----------------------------------------------------------------------------------------------------------

# Real peoples, mask traditions, places and a few unfortunate words that a syllable generator could stumble
# on; names containing any of these (or equal to the short ones) are rejected.
_REAL_NAMES = frozenset(
    """
    akan akye anyi ashanti asante attie baga bamana bambara bamileke bamum bassa baule baoule bembe benin bete
    biombo bobo bozo bwa chamba chewa chokwe ciwara dan dogon edo efik ejagham ekoi epa ewe fang fante fon
    fulani ga gelede grebo guro hausa hemba ibibio idoma ife igala igbo ijaw ijo jukun kalabari kete kifwebe
    kongo kota kpelle kran kuba kuyu kwele lega lele loma luba lulua lunda luvale mahongwe makonde makua
    mambila mangbetu marka mbole mende mossi mumuye nimba nkanu ngbaka nuna nupe ogoni oron pende poro punu
    salampasu sande senufo shona songye suku tabwa teke tikar tiv toma tsogo tsonga tusyan urhobo vili wee
    winiama yaka yaure yombe yoruba zande zulu xhosa sotho tswana ndebele kikuyu kamba maasai masai swahili
    sukuma nyamwezi yao lozi bemba tonga ngoni mbunda kuba bushoong kasai kwango kwilu sepik
    togo mali ghana kenya congo gabon niger nigeria sudan chad benue kano lagos accra dakar bamako
    malawi zambia angola uganda rwanda burundi tanzania somalia ethiopia eritrea liberia guinea gambia
    kaveri kumasi ibadan kinshasa lubumbashi zaire volta kasai lomami luri lur
    vudu vodu vodun juju zina kafir kike paki dago rape dope pope nude homo pedo bimbo mambo gomba wolo wollo boma mata
    """.split()
)
_ONSETS = ("k", "t", "m", "n", "b", "d", "s", "l", "v", "z", "r", "w", "y", "g", "p", "f", "h", "nd", "mb", "ts")
_VOWELS = ("a", "e", "i", "o", "u", "a", "o")
_CULTURE_FORMS = (
    "{} style", "{} style", "{} workshop", "Upper {} style", "Lower {} style",
    "{} valley style", "{} coast style", "{} highlands style", "{} river style",
)


def _invent_name(rng: np.random.Generator) -> str:
    while True:
        syllables = int(rng.choice([2, 3, 3]))
        parts = [_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))] for _ in range(syllables)]
        if any(x == y for x, y in zip(parts, parts[1:], strict=False)):
            continue  # reduplicated syllables ("Gaga") read as baby talk
        name = "".join(parts)
        if rng.random() < 0.3:
            name += "n" if rng.random() < 0.5 else "ri"
        low = name.lower()
        if low in _REAL_NAMES or any(len(r) >= 4 and r in low for r in _REAL_NAMES):
            continue
        return name.capitalize()


@dataclass(frozen=True)
class _Culture:
    """An invented workshop: a name and the leanings that make its objects recognisably related."""

    name: str
    silhouette: np.ndarray
    material: np.ndarray
    pattern: np.ndarray
    horn_p: float
    crest_p: float
    raffia_p: float
    scar_p: float


def _make_cultures(count: int = 24, seed: int = 20240611) -> tuple[_Culture, ...]:
    rng = np.random.default_rng(seed)
    used: set[str] = set()
    cultures = []
    while len(cultures) < count:
        base = _invent_name(rng)
        if base in used:
            continue
        used.add(base)
        form = _CULTURE_FORMS[rng.integers(len(_CULTURE_FORMS))]
        cultures.append(
            _Culture(
                name=form.format(base),
                silhouette=rng.dirichlet(np.full(len(SILHOUETTES), 0.6)),
                material=rng.dirichlet(np.full(len(MATERIALS), 0.5)),
                pattern=rng.dirichlet(np.full(len(PATTERNS), 0.7)),
                horn_p=float(rng.uniform(0.05, 0.6)),
                crest_p=float(rng.uniform(0.1, 0.6)),
                raffia_p=float(rng.uniform(0.1, 0.7)),
                scar_p=float(rng.uniform(0.2, 0.8)),
            )
        )
    return tuple(cultures)


_CULTURES = _make_cultures()


def _lean(rng: np.random.Generator, options: Sequence[str], preference: np.ndarray, weight: float = 0.55) -> str:
    """Picks from the culture's preference with probability `weight`, otherwise uniformly."""
    p = weight * preference + (1 - weight) / len(options)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


# ----------------------------------------------------------------------------------------------------------
# Design: every random choice, independent of the output size
# ----------------------------------------------------------------------------------------------------------

_MATERIAL_PARAMS = {
    # albedo RGB 0..1, grain contrast, specular strength, shininess, ambient
    "dark wood": ((0.25, 0.16, 0.10), 0.16, 0.18, 18.0, 0.42),
    "light wood": ((0.68, 0.50, 0.32), 0.10, 0.06, 10.0, 0.36),
    "bronze": ((0.46, 0.31, 0.16), 0.0, 0.50, 24.0, 0.32),
    "terracotta": ((0.62, 0.36, 0.24), 0.0, 0.03, 8.0, 0.38),
    "iron": ((0.22, 0.21, 0.20), 0.0, 0.28, 14.0, 0.40),
    "wood with white kaolin": ((0.86, 0.84, 0.78), 0.0, 0.04, 8.0, 0.36),
}
_PIGMENTS = {
    "white": (0.88, 0.86, 0.80),
    "red": (0.58, 0.20, 0.12),
    "black": (0.08, 0.07, 0.06),
    "ochre": (0.78, 0.56, 0.22),
    "indigo": (0.18, 0.22, 0.36),
}


@dataclass
class _Design:
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


def _face_outline(rng: np.random.Generator, family: str, cx: float, y0: float, half_w: float, height: float):
    """Right-half control points of the face (from top center to chin), mirrored and jittered."""
    controls = {
        "oval": [(0, 0), (0.55, 0.025), (0.88, 0.17), (1.0, 0.42), (0.93, 0.66), (0.68, 0.88), (0.3, 0.985), (0, 1)],
        "elongated": [(0, 0), (0.6, 0.02), (0.93, 0.14), (1.0, 0.36), (0.9, 0.62), (0.6, 0.86), (0.22, 0.985),
                      (0, 1.01)],
        "heart": [(0, 0.1), (0.32, 0.0), (0.75, 0.045), (0.99, 0.2), (0.97, 0.42), (0.78, 0.7), (0.4, 0.92),
                  (0, 1.0)],
        "helmet": [(0, 0), (0.52, 0.02), (0.87, 0.14), (1.0, 0.38), (1.02, 0.66), (0.99, 0.9), (0.86, 1.0),
                   (0.4, 1.02), (0, 1.02)],
        "plank": [(0, 0), (0.62, 0.0), (0.95, 0.12), (1.0, 0.4), (0.92, 0.68), (0.64, 0.9), (0.28, 0.99), (0, 1)],
    }[family]
    right = np.array(controls, dtype=np.float64)
    right[1:-1, 0] *= 1 + rng.normal(0, 0.04, len(right) - 2)
    right[1:-1, 1] += rng.normal(0, 0.012, len(right) - 2)
    left = right[-2:0:-1].copy()
    left[:, 0] *= -1
    left += rng.normal(0, 0.008, left.shape)  # the carver's hand: the two halves never quite match
    loop = np.concatenate([right, left], axis=0)
    loop[:, 0] = cx + loop[:, 0] * half_w
    loop[:, 1] = y0 + loop[:, 1] * height
    return _catmull_rom_closed(loop, 8)


def _pattern_shapes(kind: str, box: tuple[float, float, float, float], cx: float, period: float,
                    orientation: str) -> list[Shape]:
    """Pattern shapes covering `box` (x0, y0, x1, y1), laid out symmetrically about x = cx."""
    x0, y0, x1, y1 = box
    shapes: list[Shape] = []
    half = max(cx - x0, x1 - cx) + period
    n = int(math.ceil(half / period)) + 1
    rows = int(math.ceil((y1 - y0) / period)) + 1
    if kind == "stripes":
        w = period * 0.45
        if orientation == "vertical":
            for i in range(-n, n + 1):
                x = cx + i * period
                shapes.append(("line", np.array([[x, y0], [x, y1]]), w, False))
        elif orientation == "chevron":
            for j in range(-1, rows + n):
                y = y0 + j * period
                pts = np.array([[cx - half, y - half * 0.5], [cx, y], [cx + half, y - half * 0.5]])
                shapes.append(("line", pts, w, False))
        else:
            for j in range(rows):
                y = y0 + (j + 0.5) * period
                shapes.append(("line", np.array([[cx - half, y], [cx + half, y]]), w, False))
    elif kind == "dots":
        r = period * 0.2
        for j in range(rows):
            offset = 0.5 * (j % 2)  # alternate rows sit between the dots above, still symmetric about cx
            for i in range(-n - 1, n + 1):
                shapes.append(("circle", (cx + (i + offset) * period, y0 + (j + 0.5) * period), r))
    elif kind == "zigzags":
        xs = cx + np.arange(-n, n + 1) * period * 0.5
        for j in range(rows):
            y = y0 + (j + 0.5) * period
            ys = y + np.where(np.abs(np.arange(-n, n + 1)) % 2 == 0, -0.22, 0.22) * period
            shapes.append(("line", np.stack([xs, ys], axis=1), period * 0.2, False))
    elif kind == "checks":
        for j in range(rows):
            for i in range(-n, n + 1):
                if (i + j) % 2:
                    continue
                xa = cx + (i - 0.5) * period
                ya = y0 + j * period
                shapes.append(("poly", np.array([[xa, ya], [xa + period, ya], [xa + period, ya + period],
                                                 [xa, ya + period]])))
    return shapes


def _design_mask(seed: int) -> _Design:
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    culture = _CULTURES[int(rng.integers(len(_CULTURES)))]
    silhouette = _lean(rng, SILHOUETTES, culture.silhouette)
    material = _lean(rng, MATERIALS, culture.material)
    pattern = _lean(rng, PATTERNS, culture.pattern, 0.5)
    if silhouette == "plank" and pattern == "none":
        pattern = ("stripes", "zigzags", "checks", "checks")[int(rng.integers(4))]
    has_horns = silhouette != "plank" and rng.random() < culture.horn_p
    has_crest = not has_horns and silhouette != "plank" and rng.random() < culture.crest_p
    raffia_kind = ("chin", "ruff", "ruff")[int(rng.integers(3))] if rng.random() < culture.raffia_p else "none"
    has_scars = rng.random() < culture.scar_p
    eyes = ("slit", "round", "almond", "slit", "almond")[int(rng.integers(5))]
    mouth = ("open rectangular", "open oval", "pursed")[int(rng.integers(3))]
    features: list[str] = []

    # --- layout -------------------------------------------------------------------------------------------
    if silhouette == "oval":
        height, ratio = rng.uniform(0.5, 0.6), rng.uniform(0.34, 0.4)
    elif silhouette == "elongated":
        height, ratio = rng.uniform(0.6, 0.7), rng.uniform(0.22, 0.27)
    elif silhouette == "heart":
        height, ratio = rng.uniform(0.52, 0.6), rng.uniform(0.36, 0.42)
    elif silhouette == "helmet":
        height, ratio = rng.uniform(0.5, 0.58), rng.uniform(0.44, 0.52)
    else:
        height, ratio = rng.uniform(0.3, 0.36), rng.uniform(0.4, 0.47)
    half_w = height * ratio
    board_h = rng.uniform(0.34, 0.44) if silhouette == "plank" else 0.0
    horn_h = rng.uniform(0.14, 0.24) if has_horns else 0.0
    crest_h = rng.uniform(0.08, 0.15) if has_crest else 0.0
    above = max(board_h, horn_h, crest_h)
    total = above + height
    if total > 0.86:
        k = 0.86 / total
        height, half_w, board_h, horn_h, crest_h, above = (v * k for v in (height, half_w, board_h, horn_h,
                                                                           crest_h, above))
        total = 0.86
    cx = 0.5 + rng.normal(0, 0.006)
    low_bias = 0.03 if raffia_kind == "chin" else 0.0
    y0 = (1 - total) / 2 + above - low_bias + rng.normal(0, 0.01)
    angle = rng.normal(0, 0.025)

    # --- lighting and material ------------------------------------------------------------------------------
    lx, ly = rng.uniform(-0.4, 0.4), rng.uniform(-0.75, -0.35)
    lz = 0.75
    norm = math.sqrt(lx * lx + ly * ly + lz * lz)
    light = (lx / norm, ly / norm, lz / norm)
    spot = (0.5 + lx * 0.4, 0.3 + rng.uniform(-0.1, 0.1))
    albedo_base, grain, spec, shin, ambient = _MATERIAL_PARAMS[material]
    tint = rng.normal(0, 0.02, 3) + rng.normal(0, 0.08)
    albedo = tuple(float(np.clip(c * (1 + t), 0.02, 0.95)) for c, t in zip(albedo_base, tint, strict=True))
    wood_base = tuple(float(c) for c in np.clip(np.array(_MATERIAL_PARAMS["dark wood"][0]) *
                                                 (1 + rng.normal(0, 0.1, 3)), 0.02, 0.6))

    design = _Design(silhouette=silhouette, material=material, pattern=pattern, features=features,
                     culture=culture.name, title="", angle=angle, light=light, spot=spot, albedo=albedo,
                     wood_base=wood_base, grain=grain, specular=spec, shininess=shin, ambient=ambient)
    design.grain_freq = float(rng.uniform(5, 11))
    design.grain_warp = rng.random((6, 24), dtype=np.float32)
    design.grain_fine = rng.random((128, 64), dtype=np.float32)
    design.surface_noise = rng.random((24, 24), dtype=np.float32)
    design.speck_noise = rng.random((64, 64), dtype=np.float32)
    design.kaolin_wear = float(rng.uniform(0.1, 0.35))

    # --- silhouette parts -----------------------------------------------------------------------------------
    outline = _face_outline(rng, silhouette, cx, y0, half_w, height)
    face_top = float(outline[:, 1].min())
    dome_h = half_w * rng.uniform(0.22, 0.38)
    design.parts.append(([("poly", outline)], 0.03, 0.02))
    design.dome = (cx, y0 + 0.5 * height, half_w * 1.08, height * 0.56, dome_h)
    region_forehead = None

    if silhouette == "plank":
        bw = half_w * rng.uniform(0.55, 1.0)
        top = y0 - board_h
        corner = bw * rng.uniform(0.0, 0.5)
        board = np.array([[cx - bw, y0 + 0.15 * height], [cx - bw, top + corner], [cx - bw + corner, top],
                          [cx + bw - corner, top], [cx + bw, top + corner], [cx + bw, y0 + 0.15 * height]])
        board += rng.normal(0, 0.002, board.shape)
        board_shapes: list[Shape] = [("poly", board)]
        if rng.random() < 0.6:  # a crescent or disc finial on top of the board
            r = bw * rng.uniform(0.5, 0.8)
            disc = _ellipse(cx, top - r * 0.2, r, r * 0.75)
            board_shapes.append(("poly", disc))
        design.parts.append((board_shapes, 0.012, 0.012))
        features.append("rectangular panel")
        period = bw * 2 / rng.choice([4, 5, 6, 7])
        pat = _pattern_shapes(pattern, (cx - bw, top, cx + bw, y0), cx, period,
                              ("horizontal", "chevron", "vertical")[int(rng.integers(3))])
        color = _pick_pigment(rng, material)
        design.paint.append((board_shapes, pat, color, float(rng.uniform(0.8, 0.95))))
        # carved horizontal dividers across the plank
        for k in range(int(rng.integers(0, 3))):
            yk = top + board_h * (0.3 + 0.35 * k) + rng.normal(0, 0.01)
            design.incisions.append(("line", np.array([[cx - bw, yk], [cx + bw, yk]]), 0.008, False))

    if silhouette == "helmet":
        inner = _ellipse(cx, y0 + 0.63 * height, half_w * 0.74, height * 0.36)
        design.relief.append(([("poly", inner)], 0.02, 0.012))
        for side in (-1, 1):
            ear = _ellipse(cx + side * half_w * 1.0, y0 + 0.55 * height, half_w * 0.12, height * 0.09)
            design.parts.append(([("poly", ear)], 0.015, 0.01))
        region_forehead = (cx - half_w, face_top, cx + half_w, y0 + 0.3 * height)
        if rng.random() < 0.6:  # a carved coiffure band on the dome
            yb = y0 + height * rng.uniform(0.22, 0.3)
            band = np.array([[cx - half_w * 1.2, yb], [cx + half_w * 1.2, yb]])
            design.relief.append(([("line", band, height * 0.04, False)], 0.012, 0.006))
            features.append("coiffure band")

    if has_horns:
        kind = ("upright", "outward", "lyre")[int(rng.integers(3))]
        base = (cx + half_w * rng.uniform(0.45, 0.7), y0 + height * rng.uniform(0.08, 0.16))
        tip_y = y0 - horn_h
        if kind == "upright":
            ctrl = (base[0] + half_w * rng.uniform(0.3, 0.7), base[1] - horn_h * 0.7)
            tip = (base[0] + half_w * rng.uniform(-0.15, 0.25), tip_y)
        elif kind == "outward":
            ctrl = (base[0] + half_w * rng.uniform(0.9, 1.3), base[1] - horn_h * 0.1)
            tip = (base[0] + half_w * rng.uniform(0.7, 1.0), tip_y + horn_h * 0.15)
        else:
            ctrl = (base[0] + half_w * rng.uniform(0.8, 1.1), base[1] - horn_h * 0.9)
            tip = (base[0] + half_w * rng.uniform(0.0, 0.3), tip_y)
        tip = (min(tip[0], 0.96), tip[1])
        center = _bezier(base, ctrl, tip, 24)
        horn = _tapered_stroke(center, half_w * rng.uniform(0.28, 0.42), half_w * 0.03)
        horns = [("poly", horn), ("poly", _mirror(horn, cx) + rng.normal(0, 0.003, 2))]
        design.parts.append((horns, 0.04, 0.0))
        if rng.random() < 0.6:  # ringed horns
            for t in np.linspace(0.15, 0.7, int(rng.integers(3, 6))):
                i = int(t * (len(center) - 1))
                d = center[min(i + 1, len(center) - 1)] - center[max(i - 1, 0)]
                nrm = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9) * half_w * 0.2 * (1 - t)
                ring = np.array([center[i] - nrm, center[i] + nrm])
                design.incisions.append(("line", ring, 0.005, False))
                design.incisions.append(("line", _mirror(ring, cx), 0.005, False))
        features.append("horns")

    if has_crest:
        kind = ("comb", "crescent", "lobes", "tiers")[int(rng.integers(4))]
        crest: list[Shape] = []
        if kind == "comb":
            cw = half_w * rng.uniform(0.12, 0.2)
            teeth = int(rng.integers(3, 6))
            ys = np.linspace(face_top + 0.05 * height, face_top - crest_h, teeth * 2 + 1)
            xs = cx + np.where(np.arange(len(ys)) % 2 == 0, cw, cw * 0.55)
            right = np.stack([xs, ys], axis=1)
            crest.append(("poly", np.concatenate([right, _mirror(right, cx)[::-1]], axis=0)))
        elif kind == "crescent":
            cyc = face_top + 0.12 * height
            outer = _ellipse(cx, cyc, half_w * 1.05, 0.12 * height + crest_h, 0.0, 48)
            inner = _ellipse(cx, cyc + crest_h * 0.35, half_w * 0.8, 0.12 * height + crest_h * 0.45, 0.0, 48)
            top_o = outer[outer[:, 1] <= cyc + 1e-9]
            top_i = inner[inner[:, 1] <= cyc + 1e-9]
            top_o = top_o[np.argsort(top_o[:, 0])]
            top_i = top_i[np.argsort(-top_i[:, 0])]
            crest.append(("poly", np.concatenate([top_o, top_i], axis=0)))
        elif kind == "lobes":
            r = half_w * rng.uniform(0.32, 0.42)
            crest.append(("circle", (cx, face_top - crest_h + r), r))
            for side in (-1, 1):
                crest.append(("circle", (cx + side * half_w * 0.55, face_top - crest_h * 0.45 + r * 0.8), r * 0.8))
        else:
            levels = int(rng.integers(2, 4))
            for k in range(levels):
                w = half_w * (0.75 - 0.2 * k)
                yk = face_top + 0.06 * height - crest_h * (k + 1) / levels
                crest.append(("poly", _ellipse(cx, yk + crest_h / levels * 0.5, w, crest_h / levels * 0.62)))
        design.parts.append((crest, 0.025, 0.01))
        features.append("crest")

    # --- facial features (designed on the left, mirrored, then jittered) ----------------------------------
    eye_line = {"oval": 0.41, "elongated": 0.37, "heart": 0.4, "helmet": 0.6, "plank": 0.42}[silhouette]
    ey = y0 + height * (eye_line + rng.uniform(-0.03, 0.03))
    ex = half_w * rng.uniform(0.36, 0.48)
    if silhouette == "helmet":
        ex *= 0.8
    jitter = rng.normal(0, 0.004, (2, 2))
    eye_w = half_w * rng.uniform(0.28, 0.38) * (0.8 if silhouette == "helmet" else 1.0)
    slant = rng.uniform(-0.3, 0.05)

    if silhouette == "heart":  # concave heart-shaped face plane under the brows
        ctrl = np.array([[0, 0.3], [0.4, 0.25], [0.85, 0.33], [0.82, 0.55], [0.5, 0.78], [0, 0.88]])
        left = ctrl[-2:0:-1].copy()
        left[:, 0] *= -1
        loop = np.concatenate([ctrl, left])
        loop[:, 0] = cx + loop[:, 0] * half_w
        loop[:, 1] = y0 + loop[:, 1] * height
        face_plane = [("poly", _catmull_rom_closed(loop, 6))]
        design.relief.append((face_plane, -dome_h * 0.55, 0.02))
        if rng.random() < 0.4:  # the concave plane whitened with kaolin
            design.paint.append((face_plane, face_plane, _pick_pigment(rng, material, solid=True), 0.9))
            features.append("painted face plane")
    elif rng.random() < 0.65:  # brow ridges
        for side, jit in ((-1, jitter[0]), (1, jitter[1])):
            brow = _bezier((cx + side * ex * 0.1, ey - eye_w * 0.55), (cx + side * ex * 0.9, ey - eye_w * 0.9),
                           (cx + side * ex * 1.7, ey - eye_w * 0.3), 12) + jit
            design.relief.append(([("line", brow, eye_w * 0.22, False)], half_w * 0.05, 0.01))

    for side, jit in ((-1, jitter[0]), (1, jitter[1])):
        ecx, ecy = cx + side * ex + jit[0], ey + jit[1]
        tilt = slant * side * -1
        if eyes == "slit":
            design.relief.append(([("poly", _almond(ecx, ecy, eye_w * 1.25, eye_w * 0.35, eye_w * 0.3, tilt))],
                                  half_w * 0.06, 0.008))
            design.holes.append(("poly", _almond(ecx, ecy, eye_w, eye_w * 0.09, eye_w * 0.09, tilt)))
        elif eyes == "round":
            r = eye_w * rng.uniform(0.28, 0.38)
            design.relief.append(([("circle", (ecx, ecy), r * 1.8)], half_w * 0.07, 0.006))
            design.holes.append(("circle", (ecx, ecy), r))
        else:
            design.relief.append(([("poly", _almond(ecx, ecy, eye_w * 1.2, eye_w * 0.35, eye_w * 0.3, tilt))],
                                  -half_w * 0.03, 0.008))
            design.holes.append(("poly", _almond(ecx, ecy, eye_w, eye_w * 0.22, eye_w * 0.16, tilt)))
    features.append({"slit": "slit eyes", "round": "round eye holes", "almond": "almond eyes"}[eyes])
    if silhouette != "heart" and rng.random() < 0.25:  # pigment rubbed around the eyes
        surround = [("poly", _ellipse(cx + side * ex, ey, eye_w * 0.8, eye_w * 0.55, side * slant * -0.5))
                    for side in (-1, 1)]
        design.paint.append((surround, surround, _pick_pigment(rng, material, solid=True), 0.85))
        features.append("painted eye surrounds")

    # nose: a vertical bar with flared nostrils
    nose_top = ey - eye_w * (0.9 if silhouette == "heart" else 0.2)
    nose_bottom = y0 + height * (eye_line + rng.uniform(0.2, 0.27))
    if silhouette == "helmet":
        nose_bottom = y0 + height * (eye_line + 0.17)
    wt, wb = half_w * rng.uniform(0.06, 0.1), half_w * rng.uniform(0.17, 0.27)
    nose = np.array([[cx - wt / 2, nose_top], [cx + wt / 2, nose_top], [cx + wt * 0.7, nose_bottom - wb * 0.8],
                     [cx + wb / 2, nose_bottom - wb * 0.15], [cx + wb * 0.35, nose_bottom],
                     [cx - wb * 0.35, nose_bottom], [cx - wb / 2, nose_bottom - wb * 0.15],
                     [cx - wt * 0.7, nose_bottom - wb * 0.8]])
    design.relief.append(([("poly", nose)], half_w * rng.uniform(0.1, 0.16), 0.006))
    for side in (-1, 1):
        design.incisions.append(("circle", (cx + side * wb * 0.22, nose_bottom - wb * 0.1), wb * 0.09))
    features.append("ridged nose")

    # mouth
    room = (y0 + height * 0.93) - nose_bottom
    my = nose_bottom + room * rng.uniform(0.4, 0.55)
    mw = half_w * rng.uniform(0.32, 0.5) * (0.75 if silhouette == "elongated" else 1.0)
    if mouth == "open rectangular":
        mh = room * rng.uniform(0.25, 0.4)
        rect = np.array([[cx - mw / 2, my - mh / 2], [cx + mw / 2, my - mh / 2], [cx + mw / 2, my + mh / 2],
                         [cx - mw / 2, my + mh / 2]])
        lips = np.array([[cx - mw * 0.62, my - mh * 0.75], [cx + mw * 0.62, my - mh * 0.75],
                         [cx + mw * 0.62, my + mh * 0.75], [cx - mw * 0.62, my + mh * 0.75]])
        design.relief.append(([("poly", lips)], half_w * 0.07, 0.006))
        design.holes.append(("poly", rect))
        if rng.random() < 0.6:
            n_teeth = int(rng.integers(3, 7))
            tw = mw / n_teeth
            for k in range(n_teeth):
                xa = cx - mw / 2 + k * tw
                tooth = np.array([[xa + tw * 0.12, my - mh / 2], [xa + tw * 0.88, my - mh / 2],
                                  [xa + tw * 0.8, my - mh * 0.1], [xa + tw * 0.2, my - mh * 0.1]])
                design.teeth.append(("poly", tooth))
            features.append("teeth")
    elif mouth == "open oval":
        mh = room * rng.uniform(0.3, 0.45)
        design.relief.append(([("poly", _ellipse(cx, my, mw * 0.62, mh * 0.8))], half_w * 0.08, 0.006))
        design.holes.append(("poly", _ellipse(cx, my, mw * 0.45, mh * 0.5)))
    else:
        mh = room * rng.uniform(0.3, 0.45)
        design.relief.append(([("poly", _ellipse(cx, my, mw * 0.4, mh * 0.55))], half_w * 0.14, 0.008))
        design.incisions.append(("line", np.array([[cx - mw * 0.28, my], [cx + mw * 0.28, my]]), 0.006, False))
    features.append(f"{mouth} mouth")

    # scarification: incised cheek lines, a forehead line of keloid bumps or chevrons
    if has_scars:
        kind = ("cheek lines", "forehead bumps", "forehead chevrons", "cheek lines")[int(rng.integers(4))]
        if kind == "cheek lines":
            n_lines = int(rng.integers(2, 5))
            ang = rng.choice([0.0, 0.5, 1.4]) + rng.normal(0, 0.08)
            length = half_w * rng.uniform(0.18, 0.28)
            ccx, ccy = cx - half_w * 0.55, ey + height * rng.uniform(0.1, 0.16)
            for k in range(n_lines):
                off = (k - (n_lines - 1) / 2) * half_w * 0.07
                d = np.array([math.cos(ang), math.sin(ang)]) * length / 2
                o = np.array([-math.sin(ang), math.cos(ang)]) * off
                seg = np.array([[ccx, ccy] + o - d, [ccx, ccy] + o + d])
                design.incisions.append(("line", seg, 0.006, False))
                design.incisions.append(("line", _mirror(seg, cx) + jitter[1] * 0.5, 0.006,
                                         False))
            features.append("cheek scarification")
        elif kind == "forehead bumps":
            for yk in np.linspace(face_top + height * 0.08, ey - eye_w * 0.7, int(rng.integers(4, 8))):
                design.relief.append(([("circle", (cx, yk), half_w * 0.045)], half_w * 0.06, 0.004))
            features.append("forehead scarification")
        else:
            for k in range(int(rng.integers(2, 4))):
                yk = face_top + height * (0.1 + 0.06 * k)
                chev = np.array([[cx - half_w * 0.25, yk + height * 0.05], [cx, yk], [cx + half_w * 0.25,
                                                                                    yk + height * 0.05]])
                design.incisions.append(("line", chev, 0.006, False))
            features.append("forehead scarification")

    # painted patterns on the face (the plank panel was painted above)
    if pattern != "none" and silhouette != "plank":
        region_kind = ("forehead", "cheeks", "full")[int(rng.integers(3))]
        if region_kind == "full" and pattern in ("checks", "zigzags"):
            region_kind = "forehead"
        if region_kind == "forehead":
            box = region_forehead or (cx - half_w, face_top, cx + half_w, ey - eye_w * 0.9)
            region = [("poly", np.array([[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]]))]
        elif region_kind == "cheeks":
            box = (cx - half_w, ey + eye_w * 0.5, cx + half_w, my)
            r_ch = half_w * 0.28
            region = [("circle", (cx + s * half_w * 0.56, ey + (my - ey) * 0.45), r_ch) for s in (-1, 1)]
        else:
            box = (cx - half_w, face_top, cx + half_w, y0 + height)
            region = [("poly", outline)]
        period = half_w * rng.uniform(0.14, 0.24)
        orient = ("horizontal", "vertical", "chevron")[int(rng.integers(3))]
        pat = _pattern_shapes(pattern, box, cx, period, orient)
        design.paint.append((region, pat, _pick_pigment(rng, material), float(rng.uniform(0.7, 0.92))))

    # --- surface specks: patina on bronze, rust on iron, grit on clay -----------------------------------
    n_specks = 70
    pos = rng.random((n_specks, 2))
    radii = rng.uniform(0.0015, 0.006, n_specks)
    if material in ("bronze", "iron", "terracotta"):
        color = {"bronze": (0.30, 0.52, 0.42), "iron": (0.48, 0.25, 0.12), "terracotta": (0.82, 0.66, 0.50)}[material]
        sx = cx - half_w * 1.1 + pos[:, 0] * half_w * 2.2
        sy = face_top - above + pos[:, 1] * (height + above)
        shapes = [("circle", (float(x), float(y)), float(r)) for x, y, r in zip(sx, sy, radii, strict=True)]
        design.specks.append((shapes, color, 0.8))

    # --- raffia behind the mask -------------------------------------------------------------------------
    if raffia_kind != "none":
        straw = np.array(((0.78, 0.66, 0.42), (0.55, 0.40, 0.22), (0.25, 0.17, 0.10), (0.62, 0.30, 0.16))[
            int(rng.choice(4, p=[0.5, 0.25, 0.15, 0.1]))])
        n_strands = 180
        outline_pts = outline
        if raffia_kind == "chin":
            lower = outline_pts[outline_pts[:, 1] > y0 + height * 0.62]
        else:
            lower = outline_pts[outline_pts[:, 1] > y0 + height * 0.12]
        idx = rng.integers(0, len(lower), n_strands)
        anchors = lower[idx] + rng.normal(0, 0.004, (n_strands, 2))
        dirs = anchors - np.array([cx, y0 + height * 0.45])
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        gravity = np.array([0.0, 1.0])
        lengths = rng.uniform(0.12, 0.3, n_strands) * (1.4 if raffia_kind == "chin" else 1.0)
        sway = rng.normal(0, 0.03, n_strands)
        shades = rng.uniform(0.6, 1.15, n_strands)
        t = np.linspace(0, 1, 6)[None, :, None]
        mix = 0.35 if raffia_kind == "ruff" else 0.85
        direction = (1 - mix) * dirs + mix * gravity
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        bend = np.stack([sway, np.zeros(n_strands)], axis=1)
        strands = (anchors[:, None, :] + direction[:, None, :] * lengths[:, None, None] * t
                   + bend[:, None, :] * t**2 + gravity * (t**2 * lengths[:, None, None] * 0.3))
        bins = np.clip(((shades - 0.6) / 0.55 * 5).astype(int), 0, 4)
        for b in range(5):
            sel = strands[bins == b]
            if len(sel):
                design.raffia.append((sel, tuple(float(c) for c in np.clip(straw * (0.65 + 0.12 * b), 0, 1))))
        features.append("raffia fringe" if raffia_kind == "chin" else "raffia ruff")

    # --- background ------------------------------------------------------------------------------------------
    dark_material = material in ("dark wood", "iron")
    bg_kind = ["studio grey", "gradient", "dark cloth"][int(rng.choice(3, p=[0.45, 0.35, 0.2] if dark_material
                                                                      else [0.3, 0.3, 0.4]))]
    design.background = bg_kind
    if bg_kind == "studio grey":
        g = rng.uniform(0.55, 0.85) if dark_material else rng.uniform(0.35, 0.82)
        warm = rng.normal(0, 0.015)
        design.bg_colors = ((g + warm, g, g - warm),)
        design.vignette = float(rng.uniform(0.1, 0.25))
    elif bg_kind == "gradient":
        g1 = rng.uniform(0.45, 0.85)
        g2 = g1 * rng.uniform(0.35, 0.7)
        hue = rng.normal(0, 0.03, 3)
        design.bg_colors = (tuple(np.clip(g1 + hue, 0, 1)), tuple(np.clip(g2 + hue, 0, 1)))
        design.vignette = float(rng.uniform(0.1, 0.3))
    else:
        cloths = ((0.35, 0.08, 0.07), (0.10, 0.12, 0.22), (0.09, 0.08, 0.07), (0.22, 0.14, 0.08), (0.09, 0.16, 0.12),
                  (0.42, 0.38, 0.32))
        design.bg_colors = (cloths[int(rng.integers(len(cloths)))],)
        design.vignette = float(rng.uniform(0.45, 0.7))
    design.bg_noise = rng.random((8, 8), dtype=np.float32)
    design.bg_weave = rng.random((48, 48), dtype=np.float32)
    design.shadow = (-light[0] * 0.035, -light[1] * 0.03, 0.02, float(rng.uniform(0.25, 0.5)))

    design.title = _title(silhouette, features, pattern, material, rng)
    return design


def _pick_pigment(rng: np.random.Generator, material: str, solid: bool = False) -> tuple[float, float, float]:
    if solid:  # large painted fields: kaolin white on dark surfaces, red or black on pale ones
        names = ("red", "black") if material in ("wood with white kaolin", "light wood") else ("white", "white", "red")
    elif material in ("dark wood", "iron", "bronze"):
        names = ("white", "white", "red", "ochre")
    elif material == "wood with white kaolin":
        names = ("black", "black", "red", "indigo")
    else:
        names = ("black", "white", "red", "black")
    return _PIGMENTS[names[int(rng.integers(len(names)))]]


def _title(silhouette: str, features: list[str], pattern: str, material: str, rng: np.random.Generator) -> str:
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


# ----------------------------------------------------------------------------------------------------------
# Rasterization
# ----------------------------------------------------------------------------------------------------------


class _Canvas:
    """Maps normalized coordinates (rotated about the image center) to fixed-point pixels of a window.

    The window (`origin`, `shape`) lets the object be rendered in its bounding box only.
    """

    def __init__(self, size: int, angle: float, origin: tuple[int, int] = (0, 0),
                 shape: tuple[int, int] | None = None):
        self.size = size
        self.origin = origin
        self.shape = shape or (size, size)
        self._c, self._s = math.cos(angle), math.sin(angle)

    def window(self, x0: int, y0: int, x1: int, y1: int) -> _Canvas:
        angle = math.atan2(self._s, self._c)
        return _Canvas(self.size, angle, (x0, y0), (y1 - y0, x1 - x0))

    def px(self, pts) -> np.ndarray:
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2) - 0.5
        x = (self._c * p[:, 0] - self._s * p[:, 1] + 0.5) * self.size - self.origin[0]
        y = (self._s * p[:, 0] + self._c * p[:, 1] + 0.5) * self.size - self.origin[1]
        return np.round(np.stack([x, y], axis=1) * _ONE).astype(np.int32)

    def width(self, w: float) -> tuple[int, float]:
        """cv2 thickness and opacity that together cover exactly `w` (normalized) across the line.

        Anti-aliased cv2 lines only come in widths of about 1.3, 3.35, 5.4, 7.5, ... pixels (thickness 1, 2,
        3, 5, 7, ...), so the next wider one is drawn with its opacity lowered to keep the painted weight, and
        thin strands keep the same presence at every resolution.
        """
        px = w * self.size
        k = max(0, math.ceil((px - 1.31) / 2.04))
        thickness = (1, 2)[k] if k < 2 else 2 * k - 1
        return thickness, min(1.0, px / (1.31 + 2.04 * k))

    def draw(self, layer: np.ndarray, shapes: Sequence[Shape], value=255) -> np.ndarray:
        for s in shapes:
            if s[0] == "poly":  # one call per polygon: a shared call would XOR the overlaps
                cv2.fillPoly(layer, [self.px(s[1])], value, cv2.LINE_AA, _SHIFT)
            elif s[0] == "line":
                band = None if s[3] else _band(s[1], s[2])
                if band is not None:
                    cv2.fillPoly(layer, [self.px(band)], value, cv2.LINE_AA, _SHIFT)
                else:
                    thickness, weight = self.width(s[2])
                    cv2.polylines(layer, [self.px(s[1])], bool(s[3]), value * weight, thickness, cv2.LINE_AA,
                                  _SHIFT)
            else:
                center = tuple(int(v) for v in self.px(s[1])[0])
                radius = max(1, int(round(s[2] * self.size * _ONE)))
                cv2.circle(layer, center, radius, value, -1, cv2.LINE_AA, _SHIFT)
        return layer

    def mask(self, shapes: Sequence[Shape]) -> np.ndarray:
        layer = np.zeros(self.shape, np.uint8)
        return self.draw(layer, shapes).astype(np.float32) * (1 / 255.0)


def _resize(field_: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if field_.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(field_, (size, size), interpolation=interp)


def _blur(img: np.ndarray, sigma_norm: float, size: int) -> np.ndarray:
    """Gaussian blur with a sigma relative to the image; zero outside, so windows match the full image."""
    sigma = sigma_norm * size
    if sigma < 0.3:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)


def _bevel(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Rounded edge profile: a quarter circle of `radius_px` rising from the part's outline."""
    inside = (mask > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    u = np.minimum(dist / max(radius_px, 1e-3), 1.0)
    return radius_px * np.sqrt(np.clip(1 - (1 - u) ** 2, 0, 1))


def _lerp_(dst: np.ndarray, color, t: np.ndarray) -> None:
    """In place: dst <- dst + (color - dst) * t, with t an H x W weight."""
    dst += (np.asarray(color, np.float32) - dst) * t[..., None]


def _object_window(canvas: _Canvas, design: _Design) -> tuple[int, int, int, int]:
    """Pixel bounding box (x0, y0, x1, y1) of every solid part, padded and clipped to the image."""
    pts = []
    for shapes, _, _ in design.parts:
        for shape in shapes:
            if shape[0] == "circle":
                (x, y), r = shape[1], shape[2]
                pts.append(canvas.px([[x - r, y - r], [x + r, y - r], [x - r, y + r], [x + r, y + r]]))
            else:
                pts.append(canvas.px(shape[1]))
    allpts = np.concatenate(pts) / _ONE
    x0, y0 = np.floor(allpts.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(allpts.max(axis=0)).astype(int) + 3
    s = canvas.size
    return max(0, int(x0)), max(0, int(y0)), min(s, int(x1)), min(s, int(y1))


def _render(design: _Design, size: int) -> np.ndarray:
    s = size
    canvas = _Canvas(s, design.angle)
    coords = (np.arange(s, dtype=np.float32) + 0.5) / s
    xn, yn = coords[None, :], coords[:, None]
    spot_full = np.clip(1.15 - 1.2 * ((xn - design.spot[0]) ** 2 + (yn - design.spot[1]) ** 2), 0.5, 1.15)

    # --- background -----------------------------------------------------------------------------------------
    folds = _resize(design.bg_noise, s)
    if design.background == "dark cloth":
        shade = 0.75 + 0.5 * folds + 0.12 * (_resize(design.bg_weave, s) - 0.5)
    else:
        shade = 0.97 + 0.06 * folds
    r2 = (xn - design.spot[0]) ** 2 + (yn - design.spot[1] - 0.15) ** 2
    shade *= np.clip(1.0 - design.vignette * r2 * 2.2, 0.15, 1.1)
    if design.background == "gradient":
        top, bottom = (np.array(c, np.float32) for c in design.bg_colors)
        t = np.clip(yn * 1.1 - 0.05, 0, 1)[..., None]
        bg = (top * (1 - t) + bottom * t) * shade[..., None]
    else:
        bg = shade[..., None] * np.array(design.bg_colors[0], np.float32)

    # --- the carved object, computed inside its bounding box only ----------------------------------------
    x0, y0, x1, y1 = _object_window(canvas, design)
    win = canvas.window(x0, y0, x1, y1)
    xw, yw = xn[:, x0:x1], yn[y0:y1, :]
    spot = spot_full[y0:y1, x0:x1]
    shape = win.shape
    alpha = np.zeros(shape, np.float32)
    height = np.zeros(shape, np.float32)
    face = None
    for shapes, bevel, base in design.parts:
        m = win.mask(shapes)
        face = m if face is None else face
        h = _bevel(m, bevel * s) + base * s
        np.maximum(height, h * (m > 0.5), out=height)
        np.maximum(alpha, m, out=alpha)
    dcx, dcy, dax, day, dh = design.dome
    q = 1 - ((xw - dcx) / dax) ** 2 - ((yw - dcy) / day) ** 2
    height += face * (dh * s) * np.sqrt(np.clip(q, 0, 1))
    solid = (alpha > 0.5).astype(np.float32)
    # Blurring is linear, so reliefs sharing a blur radius are summed first and blurred once.
    by_blur: dict[float, np.ndarray] = {}
    for shapes, amount, blur in design.relief:
        acc = by_blur.setdefault(blur, np.zeros(shape, np.float32))
        acc += win.mask(shapes) * (amount * s)
    for blur, acc in by_blur.items():
        height += _blur(acc, blur, s) * solid
    incised = win.mask(design.incisions)
    holes = win.mask(design.holes)
    height -= _blur(incised, 0.002, s) * (0.006 * s) + _blur(holes, 0.008, s) * (0.03 * s)

    # --- albedo ------------------------------------------------------------------------------------------------
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) / 8
    surface = _resize(design.surface_noise, s)[y0:y1, x0:x1]
    specks = _resize(design.speck_noise, s)[y0:y1, x0:x1]
    if design.grain > 0:
        warp = _resize(design.grain_warp, s)[y0:y1, x0:x1]
        fine = _resize(design.grain_fine, s)[y0:y1, x0:x1]
        rings = np.sin(2 * math.pi * (design.grain_freq * (xw - 0.5) + 2.5 * warp))
        tone = 1 + design.grain * (0.5 * rings + 0.9 * (fine - 0.5))
    else:
        tone = 0.92 + 0.16 * surface
    albedo = tone[..., None] * np.array(design.albedo, np.float32)
    if design.material == "wood with white kaolin":
        # The pigment rubs off where hands and wear reach: edges, ridges and scattered flecks.
        slope = np.sqrt(gx * gx + gy * gy)
        wear = np.clip((0.6 * slope + 0.5 * specks + 0.3 * surface + 0.5 * incised - 1.1 + design.kaolin_wear)
                       * 5, 0, 1)
        _lerp_(albedo, design.wood_base, wear)
    for region, pattern, color, opacity in design.paint:
        paint = win.mask(pattern) * win.mask(region) * solid
        paint *= opacity * (0.85 + 0.15 * surface)
        _lerp_(albedo, color, paint)
    for shapes, color, opacity in design.specks:
        _lerp_(albedo, color, win.mask(shapes) * opacity)
    if design.material == "bronze":  # green patina collects in the recesses and in mottled patches
        recess = np.clip((_blur(height, 0.02, s) - height) / (0.01 * s), 0, 1)
        mottle = np.clip((surface + 0.4 * specks - 0.85) * 3, 0, 1)
        _lerp_(albedo, (0.25, 0.40, 0.33), np.clip(0.7 * recess + 0.6 * mottle, 0, 0.8))
    elif design.material == "iron":  # rust blooms
        _lerp_(albedo, (0.36, 0.19, 0.10), np.clip((specks + 0.5 * surface - 0.9) * 3, 0, 0.7))

    # --- shading: Lambert plus Blinn highlight on the height field's normals ------------------------------
    inv = 1.0 / np.sqrt(gx * gx + gy * gy + 1)
    lx, ly, lz = design.light
    diffuse = np.clip((lz - gx * lx - gy * ly) * inv, 0, 1)
    hx, hy, hz = lx, ly, lz + 1
    hn = math.sqrt(hx * hx + hy * hy + hz * hz)
    spec = np.clip((hz - gx * hx - gy * hy) * (inv / hn), 0, 1) ** design.shininess * design.specular
    ao = 1 - np.clip((_blur(height, 0.03, s) - height) / (0.02 * s), 0, 0.55)
    light = (design.ambient + (1 - design.ambient) * 1.1 * diffuse) * ao * (1 - 0.55 * incised) * spot
    color = albedo * light[..., None]
    color += (spec * spot)[..., None] * np.array((1.0, 0.96, 0.9), np.float32)

    # openings: the backdrop seen through a dark carved tunnel
    color += (bg[y0:y1, x0:x1] * 0.3 + 0.01 - color) * holes[..., None]
    if design.teeth:
        ivory = np.array(design.albedo, np.float32) * 1.15 * (design.ambient + 0.5)
        _lerp_(color, ivory, win.mask(design.teeth) * holes)

    # --- composite: cast shadow, raffia behind, then the object -----------------------------------------------
    dx, dy, blur, strength = design.shadow
    silhouette = np.zeros((s, s), np.float32)
    silhouette[y0:y1, x0:x1] = alpha
    raffia_a = None
    if design.raffia:
        raffia_mask = np.zeros((s, s), np.uint8)
        raffia_rgb = np.zeros((s, s, 3), np.uint8)
        w, weight = canvas.width(design.raffia_width)
        for strands, rgb in design.raffia:
            polys = list(canvas.px(strands).reshape(len(strands), -1, 2))
            cv2.polylines(raffia_mask, polys, False, 255 * weight, w, cv2.LINE_AA, _SHIFT)
            cv2.polylines(raffia_rgb, polys, False, tuple(c * 255 * weight for c in rgb), w, cv2.LINE_AA, _SHIFT)
        raffia_a = raffia_mask.astype(np.float32) * (1 / 255.0)
        np.maximum(silhouette, raffia_a, out=silhouette)
    m = np.float32([[1, 0, dx * s], [0, 1, dy * s]])
    shadow = cv2.warpAffine(_blur(silhouette, blur, s), m, (s, s))
    out = bg * (1 - strength * shadow)[..., None]
    if raffia_a is not None:
        # The strands were drawn onto black, so their colour layer is already weighted by coverage.
        raffia_lit = raffia_rgb.astype(np.float32) * (1 / 255.0) * (0.7 + 0.4 * spot_full[..., None])
        out = out * (1 - raffia_a[..., None]) + raffia_lit
    view = out[y0:y1, x0:x1]
    view += (color - view) * alpha[..., None]
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------


def _check_size(size: int) -> None:
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise ValueError(f"size must be in {MIN_SIZE}..{MAX_SIZE}, got {size}")


def _check_seed(seed: int) -> None:
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")


def render_mask(seed: int, size: int = 128) -> tuple[np.ndarray, dict]:
    """Renders one mask as uint8 RGB (size x size x 3) with its catalogue metadata."""
    _check_seed(seed)
    _check_size(size)
    design = _design_mask(int(seed))
    big = _render(design, 2 * int(size))
    image = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    metadata = {
        "title": design.title,
        "culture": design.culture,
        "material": design.material,
        "source": SOURCE,
        "license": LICENSE,
        "silhouette": design.silhouette,
        "features": list(design.features),
        "pattern": design.pattern,
    }
    return image, metadata


def image_seed(seed: int, index: int) -> int:
    """The seed of image `index` in the collection generated from `seed`."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def generate_collection(out_dir, count: int, size: int = 128, seed: int = 0, *, image_format: str = "png",
                        progress: bool = True) -> Path:
    """Writes `count` masks (mask_00000.png, ...) and metadata.csv into `out_dir`; returns the folder."""
    if int(count) < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    _check_size(size)
    _check_seed(seed)
    image_format = image_format.lower().lstrip(".")
    if image_format == "jpeg":
        image_format = "jpg"
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 6] if image_format == "png" else [cv2.IMWRITE_JPEG_QUALITY, 95]
    indices = range(int(count))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synthetic masks", unit="img")
    rows = []
    for i in indices:
        image, meta = render_mask(image_seed(seed, i), size)
        name = f"mask_{i:05d}.{image_format}"
        if not cv2.imwrite(str(out / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write {out / name}")
        rows.append({"file": name, **{k: meta[k] for k in METADATA_COLUMNS[1:]}})
    with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(METADATA_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    logger.info("wrote %d synthetic masks to %s", len(rows), out)
    return out


def contact_sheet(images: Sequence[np.ndarray], columns: int, *, gap: int = 2, background: int = 255) -> np.ndarray:
    """Tiles equally sized HxWx3 images into a grid, `gap` pixels apart, on white."""
    return image_grid(images, columns, gap=gap, background=background)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synthetic",
                                     description="Generate the procedural mask collection.")
    parser.add_argument("--out", required=True, help="output folder for images and metadata.csv")
    parser.add_argument("--count", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--size", type=int, default=128, help=f"image side in pixels, {MIN_SIZE}..{MAX_SIZE}")
    parser.add_argument("--seed", type=int, default=0, help="collection seed (default 0)")
    parser.add_argument("--format", default="png", choices=IMAGE_FORMATS, help="image file format")
    parser.add_argument("--contact-sheet", metavar="PNG", help=f"also write a grid of the first "
                        f"{_CONTACT_SHEET_MAX} images to this file")
    parser.add_argument("--columns", type=int, default=8, help="contact sheet columns (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.columns < 1:
            raise ValueError(f"columns must be at least 1, got {args.columns}")
        out = generate_collection(args.out, args.count, args.size, args.seed, image_format=args.format,
                                  progress=not args.quiet)
        if args.contact_sheet:
            files = [out / f"mask_{i:05d}.{args.format}" for i in range(min(args.count, _CONTACT_SHEET_MAX))]
            images = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
            sheet = contact_sheet(images, args.columns)
            Path(args.contact_sheet).parent.mkdir(parents=True, exist_ok=True)
            bgr = cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(args.contact_sheet, bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
                raise OSError(f"could not write {args.contact_sheet}")
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
