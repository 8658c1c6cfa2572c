"""One seed -> one Design: the named steps that make every random choice of a mask, in their fixed order.

The random stream never depends on the output size, so one seed gives the same composition at any
resolution; the masks are frontal and near-symmetric (the left half is designed, mirrored, then jittered).
Reordering the steps, or the draws inside one, changes every mask of the collection.
"""

from __future__ import annotations

import math

import numpy as np

from training.synthetic.cultures import CULTURES, lean
from training.synthetic.design import Design, Layout, Traits, catalogue_title
from training.synthetic.features import (
    add_brows,
    add_crest,
    add_eyes,
    add_face,
    add_helmet,
    add_horns,
    add_mouth,
    add_nose,
    add_plank_board,
    add_scars,
    paint_face_pattern,
    place_eyes,
)
from training.synthetic.finish import add_raffia, add_specks, choose_backdrop
from training.synthetic.materials import MATERIAL_PARAMS, MATERIALS, PATTERNS, SILHOUETTES


def design_mask(seed: int) -> Design:
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    traits = choose_traits(rng)
    layout = lay_out(rng, traits)
    design = choose_light_and_material(rng, traits, layout)
    add_face(rng, design, traits, layout)
    if traits.silhouette == "plank":
        add_plank_board(rng, design, traits, layout)
    if traits.silhouette == "helmet":
        add_helmet(rng, design, layout)
    if traits.has_horns:
        add_horns(rng, design, layout)
    if traits.has_crest:
        add_crest(rng, design, layout)
    place_eyes(rng, traits, layout)
    add_brows(rng, design, traits, layout)
    add_eyes(rng, design, traits, layout)
    add_nose(rng, design, traits, layout)
    add_mouth(rng, design, traits, layout)
    if traits.has_scars:
        add_scars(rng, design, layout)
    if traits.pattern != "none" and traits.silhouette != "plank":
        paint_face_pattern(rng, design, traits, layout)
    add_specks(rng, design, traits, layout)
    if traits.raffia_kind != "none":
        add_raffia(rng, design, traits, layout)
    choose_backdrop(rng, design, traits)
    design.title = catalogue_title(traits.silhouette, design.features, traits.pattern, traits.material, rng)
    return design


def choose_traits(rng: np.random.Generator) -> Traits:
    """The workshop, then what its leanings make of this mask: silhouette, material, pattern, features."""
    culture = CULTURES[int(rng.integers(len(CULTURES)))]
    silhouette = lean(rng, SILHOUETTES, culture.silhouette)
    material = lean(rng, MATERIALS, culture.material)
    pattern = lean(rng, PATTERNS, culture.pattern, 0.5)
    if silhouette == "plank" and pattern == "none":
        pattern = ("stripes", "zigzags", "checks", "checks")[int(rng.integers(4))]
    has_horns = silhouette != "plank" and rng.random() < culture.horn_p
    has_crest = not has_horns and silhouette != "plank" and rng.random() < culture.crest_p
    raffia_kind = ("chin", "ruff", "ruff")[int(rng.integers(3))] if rng.random() < culture.raffia_p else "none"
    has_scars = rng.random() < culture.scar_p
    eyes = ("slit", "round", "almond", "slit", "almond")[int(rng.integers(5))]
    mouth = ("open rectangular", "open oval", "pursed")[int(rng.integers(3))]
    return Traits(culture.name, silhouette, material, pattern, has_horns, has_crest, raffia_kind, has_scars, eyes,
                  mouth)


def lay_out(rng: np.random.Generator, traits: Traits) -> Layout:
    """The face's proportions for its silhouette, scaled so face and headdress fit, centred with a slight tilt."""
    silhouette = traits.silhouette
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
    horn_h = rng.uniform(0.14, 0.24) if traits.has_horns else 0.0
    crest_h = rng.uniform(0.08, 0.15) if traits.has_crest else 0.0
    above = max(board_h, horn_h, crest_h)
    total = above + height
    if total > 0.86:
        k = 0.86 / total
        height, half_w, board_h, horn_h, crest_h, above = (v * k for v in (height, half_w, board_h, horn_h,
                                                                           crest_h, above))
        total = 0.86
    cx = 0.5 + rng.normal(0, 0.006)
    low_bias = 0.03 if traits.raffia_kind == "chin" else 0.0
    y0 = (1 - total) / 2 + above - low_bias + rng.normal(0, 0.01)
    angle = rng.normal(0, 0.025)
    return Layout(cx=cx, y0=y0, height=height, half_w=half_w, board_h=board_h, horn_h=horn_h, crest_h=crest_h,
                  above=above, angle=angle)


def choose_light_and_material(rng: np.random.Generator, traits: Traits, layout: Layout) -> Design:
    """The key light, the material's tinted albedo and sheen, and the noise fields its grain and wear come from."""
    lx, ly = rng.uniform(-0.4, 0.4), rng.uniform(-0.75, -0.35)
    lz = 0.75
    norm = math.sqrt(lx * lx + ly * ly + lz * lz)
    light = (lx / norm, ly / norm, lz / norm)
    spot = (0.5 + lx * 0.4, 0.3 + rng.uniform(-0.1, 0.1))
    albedo_base, grain, spec, shin, ambient = MATERIAL_PARAMS[traits.material]
    tint = rng.normal(0, 0.02, 3) + rng.normal(0, 0.08)
    albedo = tuple(float(np.clip(c * (1 + t), 0.02, 0.95)) for c, t in zip(albedo_base, tint, strict=True))
    wood_base = tuple(float(c) for c in np.clip(np.array(MATERIAL_PARAMS["dark wood"][0]) *
                                                 (1 + rng.normal(0, 0.1, 3)), 0.02, 0.6))

    design = Design(silhouette=traits.silhouette, material=traits.material, pattern=traits.pattern, features=[],
                    culture=traits.culture, title="", angle=layout.angle, light=light, spot=spot, albedo=albedo,
                    wood_base=wood_base, grain=grain, specular=spec, shininess=shin, ambient=ambient)
    design.grain_freq = float(rng.uniform(5, 11))
    design.grain_warp = rng.random((6, 24), dtype=np.float32)
    design.grain_fine = rng.random((128, 64), dtype=np.float32)
    design.surface_noise = rng.random((24, 24), dtype=np.float32)
    design.speck_noise = rng.random((64, 64), dtype=np.float32)
    design.kaolin_wear = float(rng.uniform(0.1, 0.35))
    return design
