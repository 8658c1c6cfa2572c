"""What surrounds the carving: specks on its surface, raffia behind it, and the backdrop it is shot against."""

from __future__ import annotations

import numpy as np

from training.synthetic.design import Design, Layout, Traits


def add_specks(rng: np.random.Generator, design: Design, traits: Traits, layout: Layout) -> None:
    """Surface specks: patina on bronze, rust on iron, grit on clay (drawn for every material, kept for these)."""
    cx, height, half_w, face_top, above = layout.cx, layout.height, layout.half_w, layout.face_top, layout.above
    material = traits.material
    n_specks = 70
    pos = rng.random((n_specks, 2))
    radii = rng.uniform(0.0015, 0.006, n_specks)
    if material in ("bronze", "iron", "terracotta"):
        color = {"bronze": (0.30, 0.52, 0.42), "iron": (0.48, 0.25, 0.12), "terracotta": (0.82, 0.66, 0.50)}[material]
        sx = cx - half_w * 1.1 + pos[:, 0] * half_w * 2.2
        sy = face_top - above + pos[:, 1] * (height + above)
        shapes = [("circle", (float(x), float(y)), float(r)) for x, y, r in zip(sx, sy, radii, strict=True)]
        design.specks.append((shapes, color, 0.8))


def add_raffia(rng: np.random.Generator, design: Design, traits: Traits, layout: Layout) -> None:
    """Strands of raffia hanging from the chin (a fringe) or from all round the face (a ruff)."""
    cx, y0, height, raffia_kind = layout.cx, layout.y0, layout.height, traits.raffia_kind
    straw = np.array(((0.78, 0.66, 0.42), (0.55, 0.40, 0.22), (0.25, 0.17, 0.10), (0.62, 0.30, 0.16))[
        int(rng.choice(4, p=[0.5, 0.25, 0.15, 0.1]))])
    n_strands = 180
    outline_pts = layout.outline
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
    design.features.append("raffia fringe" if raffia_kind == "chin" else "raffia ruff")


def choose_backdrop(rng: np.random.Generator, design: Design, traits: Traits) -> None:
    """Studio grey, a gradient or dark cloth (dark objects lean towards light grounds), and the cast shadow."""
    dark_material = traits.material in ("dark wood", "iron")
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
    light = design.light
    design.shadow = (-light[0] * 0.035, -light[1] * 0.03, 0.02, float(rng.uniform(0.25, 0.5)))
