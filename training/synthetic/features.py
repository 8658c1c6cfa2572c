"""The carved face, one step per part: outline and dome, plank board, helmet, horns, crest, eyes, nose, mouth,
scarification and painted pattern.

Each step draws its random numbers in a fixed order and appends shapes to the Design; the order of the steps
(training/synthetic/mask.py) is part of the collection's definition, since it fixes the random stream.
"""

from __future__ import annotations

import math

import numpy as np

from training.synthetic.design import Design, Layout, Traits
from training.synthetic.geometry import (
    Shape,
    almond,
    bezier,
    catmull_rom_closed,
    ellipse,
    mirror,
    tapered_stroke,
)
from training.synthetic.materials import pick_pigment


def face_outline(rng: np.random.Generator, family: str, cx: float, y0: float, half_w: float, height: float):
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
    return catmull_rom_closed(loop, 8)


def pattern_shapes(kind: str, box: tuple[float, float, float, float], cx: float, period: float,
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


def add_face(rng: np.random.Generator, design: Design, traits: Traits, layout: Layout) -> None:
    """The face's outline as the first solid part, and the dome that rounds it."""
    cx, y0, height, half_w = layout.cx, layout.y0, layout.height, layout.half_w
    outline = face_outline(rng, traits.silhouette, cx, y0, half_w, height)
    layout.outline = outline
    layout.face_top = float(outline[:, 1].min())
    layout.dome_h = dome_h = half_w * rng.uniform(0.22, 0.38)
    design.parts.append(([("poly", outline)], 0.03, 0.02))
    design.dome = (cx, y0 + 0.5 * height, half_w * 1.08, height * 0.56, dome_h)


def add_plank_board(rng: np.random.Generator, design: Design, traits: Traits, layout: Layout) -> None:
    """A plank mask's painted board above the face, with its finial and carved dividers."""
    cx, y0, height, half_w, board_h = layout.cx, layout.y0, layout.height, layout.half_w, layout.board_h
    pattern, material, features = traits.pattern, traits.material, design.features
    bw = half_w * rng.uniform(0.55, 1.0)
    top = y0 - board_h
    corner = bw * rng.uniform(0.0, 0.5)
    board = np.array([[cx - bw, y0 + 0.15 * height], [cx - bw, top + corner], [cx - bw + corner, top],
                      [cx + bw - corner, top], [cx + bw, top + corner], [cx + bw, y0 + 0.15 * height]])
    board += rng.normal(0, 0.002, board.shape)
    board_shapes: list[Shape] = [("poly", board)]
    if rng.random() < 0.6:  # a crescent or disc finial on top of the board
        r = bw * rng.uniform(0.5, 0.8)
        disc = ellipse(cx, top - r * 0.2, r, r * 0.75)
        board_shapes.append(("poly", disc))
    design.parts.append((board_shapes, 0.012, 0.012))
    features.append("rectangular panel")
    period = bw * 2 / rng.choice([4, 5, 6, 7])
    pat = pattern_shapes(pattern, (cx - bw, top, cx + bw, y0), cx, period,
                         ("horizontal", "chevron", "vertical")[int(rng.integers(3))])
    color = pick_pigment(rng, material)
    design.paint.append((board_shapes, pat, color, float(rng.uniform(0.8, 0.95))))
    # carved horizontal dividers across the plank
    for k in range(int(rng.integers(0, 3))):
        yk = top + board_h * (0.3 + 0.35 * k) + rng.normal(0, 0.01)
        design.incisions.append(("line", np.array([[cx - bw, yk], [cx + bw, yk]]), 0.008, False))


def add_helmet(rng: np.random.Generator, design: Design, layout: Layout) -> None:
    """A helmet mask's inner face, ears and (often) a carved coiffure band."""
    cx, y0, height, half_w = layout.cx, layout.y0, layout.height, layout.half_w
    inner = ellipse(cx, y0 + 0.63 * height, half_w * 0.74, height * 0.36)
    design.relief.append(([("poly", inner)], 0.02, 0.012))
    for side in (-1, 1):
        ear = ellipse(cx + side * half_w * 1.0, y0 + 0.55 * height, half_w * 0.12, height * 0.09)
        design.parts.append(([("poly", ear)], 0.015, 0.01))
    layout.region_forehead = (cx - half_w, layout.face_top, cx + half_w, y0 + 0.3 * height)
    if rng.random() < 0.6:  # a carved coiffure band on the dome
        yb = y0 + height * rng.uniform(0.22, 0.3)
        band = np.array([[cx - half_w * 1.2, yb], [cx + half_w * 1.2, yb]])
        design.relief.append(([("line", band, height * 0.04, False)], 0.012, 0.006))
        design.features.append("coiffure band")


def add_horns(rng: np.random.Generator, design: Design, layout: Layout) -> None:
    """A mirrored pair of horns (upright, outward or lyre), often ringed."""
    cx, y0, height, half_w, horn_h = layout.cx, layout.y0, layout.height, layout.half_w, layout.horn_h
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
    center = bezier(base, ctrl, tip, 24)
    horn = tapered_stroke(center, half_w * rng.uniform(0.28, 0.42), half_w * 0.03)
    horns = [("poly", horn), ("poly", mirror(horn, cx) + rng.normal(0, 0.003, 2))]
    design.parts.append((horns, 0.04, 0.0))
    if rng.random() < 0.6:  # ringed horns
        for t in np.linspace(0.15, 0.7, int(rng.integers(3, 6))):
            i = int(t * (len(center) - 1))
            d = center[min(i + 1, len(center) - 1)] - center[max(i - 1, 0)]
            nrm = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9) * half_w * 0.2 * (1 - t)
            ring = np.array([center[i] - nrm, center[i] + nrm])
            design.incisions.append(("line", ring, 0.005, False))
            design.incisions.append(("line", mirror(ring, cx), 0.005, False))
    design.features.append("horns")


def add_crest(rng: np.random.Generator, design: Design, layout: Layout) -> None:
    """A crest on the head: a comb, a crescent, three lobes or stacked tiers."""
    cx, height, half_w, crest_h, face_top = layout.cx, layout.height, layout.half_w, layout.crest_h, layout.face_top
    kind = ("comb", "crescent", "lobes", "tiers")[int(rng.integers(4))]
    crest: list[Shape] = []
    if kind == "comb":
        cw = half_w * rng.uniform(0.12, 0.2)
        teeth = int(rng.integers(3, 6))
        ys = np.linspace(face_top + 0.05 * height, face_top - crest_h, teeth * 2 + 1)
        xs = cx + np.where(np.arange(len(ys)) % 2 == 0, cw, cw * 0.55)
        right = np.stack([xs, ys], axis=1)
        crest.append(("poly", np.concatenate([right, mirror(right, cx)[::-1]], axis=0)))
    elif kind == "crescent":
        cyc = face_top + 0.12 * height
        outer = ellipse(cx, cyc, half_w * 1.05, 0.12 * height + crest_h, 0.0, 48)
        inner = ellipse(cx, cyc + crest_h * 0.35, half_w * 0.8, 0.12 * height + crest_h * 0.45, 0.0, 48)
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
            crest.append(("poly", ellipse(cx, yk + crest_h / levels * 0.5, w, crest_h / levels * 0.62)))
    design.parts.append((crest, 0.025, 0.01))
    design.features.append("crest")


def place_eyes(rng: np.random.Generator, traits: Traits, layout: Layout) -> None:
    """The eye line, spacing, size and slant every later facial feature is placed by."""
    silhouette, y0, height, half_w = traits.silhouette, layout.y0, layout.height, layout.half_w
    layout.eye_line = {"oval": 0.41, "elongated": 0.37, "heart": 0.4, "helmet": 0.6, "plank": 0.42}[silhouette]
    layout.ey = y0 + height * (layout.eye_line + rng.uniform(-0.03, 0.03))
    layout.ex = half_w * rng.uniform(0.36, 0.48)
    if silhouette == "helmet":
        layout.ex *= 0.8
    layout.jitter = rng.normal(0, 0.004, (2, 2))
    layout.eye_w = half_w * rng.uniform(0.28, 0.38) * (0.8 if silhouette == "helmet" else 1.0)
    layout.slant = rng.uniform(-0.3, 0.05)


def add_brows(rng: np.random.Generator, design: Design, traits: Traits, layout: Layout) -> None:
    """A heart mask's concave face plane (sometimes whitened), or on other faces, often, brow ridges."""
    cx, y0, height, half_w = layout.cx, layout.y0, layout.height, layout.half_w
    ey, ex, eye_w, jitter = layout.ey, layout.ex, layout.eye_w, layout.jitter
    if traits.silhouette == "heart":  # concave heart-shaped face plane under the brows
        ctrl = np.array([[0, 0.3], [0.4, 0.25], [0.85, 0.33], [0.82, 0.55], [0.5, 0.78], [0, 0.88]])
        left = ctrl[-2:0:-1].copy()
        left[:, 0] *= -1
        loop = np.concatenate([ctrl, left])
        loop[:, 0] = cx + loop[:, 0] * half_w
        loop[:, 1] = y0 + loop[:, 1] * height
        face_plane = [("poly", catmull_rom_closed(loop, 6))]
        design.relief.append((face_plane, -layout.dome_h * 0.55, 0.02))
        if rng.random() < 0.4:  # the concave plane whitened with kaolin
            design.paint.append((face_plane, face_plane, pick_pigment(rng, traits.material, solid=True), 0.9))
            design.features.append("painted face plane")
    elif rng.random() < 0.65:  # brow ridges
        for side, jit in ((-1, jitter[0]), (1, jitter[1])):
            brow = bezier((cx + side * ex * 0.1, ey - eye_w * 0.55), (cx + side * ex * 0.9, ey - eye_w * 0.9),
                          (cx + side * ex * 1.7, ey - eye_w * 0.3), 12) + jit
            design.relief.append(([("line", brow, eye_w * 0.22, False)], half_w * 0.05, 0.01))


def add_eyes(rng: np.random.Generator, design: Design, traits: Traits, layout: Layout) -> None:
    """The two eyes (slit, round or almond: a raised or sunken rim around a hole), sometimes painted round."""
    cx, half_w, ey, ex, eye_w, slant = layout.cx, layout.half_w, layout.ey, layout.ex, layout.eye_w, layout.slant
    eyes = traits.eyes
    for side, jit in ((-1, layout.jitter[0]), (1, layout.jitter[1])):
        ecx, ecy = cx + side * ex + jit[0], ey + jit[1]
        tilt = slant * side * -1
        if eyes == "slit":
            design.relief.append(([("poly", almond(ecx, ecy, eye_w * 1.25, eye_w * 0.35, eye_w * 0.3, tilt))],
                                  half_w * 0.06, 0.008))
            design.holes.append(("poly", almond(ecx, ecy, eye_w, eye_w * 0.09, eye_w * 0.09, tilt)))
        elif eyes == "round":
            r = eye_w * rng.uniform(0.28, 0.38)
            design.relief.append(([("circle", (ecx, ecy), r * 1.8)], half_w * 0.07, 0.006))
            design.holes.append(("circle", (ecx, ecy), r))
        else:
            design.relief.append(([("poly", almond(ecx, ecy, eye_w * 1.2, eye_w * 0.35, eye_w * 0.3, tilt))],
                                  -half_w * 0.03, 0.008))
            design.holes.append(("poly", almond(ecx, ecy, eye_w, eye_w * 0.22, eye_w * 0.16, tilt)))
    design.features.append({"slit": "slit eyes", "round": "round eye holes", "almond": "almond eyes"}[eyes])
    if traits.silhouette != "heart" and rng.random() < 0.25:  # pigment rubbed around the eyes
        surround = [("poly", ellipse(cx + side * ex, ey, eye_w * 0.8, eye_w * 0.55, side * slant * -0.5))
                    for side in (-1, 1)]
        design.paint.append((surround, surround, pick_pigment(rng, traits.material, solid=True), 0.85))
        design.features.append("painted eye surrounds")


def add_nose(rng: np.random.Generator, design: Design, traits: Traits, layout: Layout) -> None:
    """A vertical bar with flared nostrils, from between the eyes down."""
    cx, y0, height, half_w = layout.cx, layout.y0, layout.height, layout.half_w
    nose_top = layout.ey - layout.eye_w * (0.9 if traits.silhouette == "heart" else 0.2)
    nose_bottom = y0 + height * (layout.eye_line + rng.uniform(0.2, 0.27))
    if traits.silhouette == "helmet":
        nose_bottom = y0 + height * (layout.eye_line + 0.17)
    layout.nose_bottom = nose_bottom
    wt, wb = half_w * rng.uniform(0.06, 0.1), half_w * rng.uniform(0.17, 0.27)
    nose = np.array([[cx - wt / 2, nose_top], [cx + wt / 2, nose_top], [cx + wt * 0.7, nose_bottom - wb * 0.8],
                     [cx + wb / 2, nose_bottom - wb * 0.15], [cx + wb * 0.35, nose_bottom],
                     [cx - wb * 0.35, nose_bottom], [cx - wb / 2, nose_bottom - wb * 0.15],
                     [cx - wt * 0.7, nose_bottom - wb * 0.8]])
    design.relief.append(([("poly", nose)], half_w * rng.uniform(0.1, 0.16), 0.006))
    for side in (-1, 1):
        design.incisions.append(("circle", (cx + side * wb * 0.22, nose_bottom - wb * 0.1), wb * 0.09))
    design.features.append("ridged nose")


def add_mouth(rng: np.random.Generator, design: Design, traits: Traits, layout: Layout) -> None:
    """An open rectangular mouth (often toothed), an open oval or a pursed one, between nose and chin."""
    cx, y0, height, half_w, nose_bottom = layout.cx, layout.y0, layout.height, layout.half_w, layout.nose_bottom
    mouth = traits.mouth
    room = (y0 + height * 0.93) - nose_bottom
    layout.my = my = nose_bottom + room * rng.uniform(0.4, 0.55)
    mw = half_w * rng.uniform(0.32, 0.5) * (0.75 if traits.silhouette == "elongated" else 1.0)
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
            design.features.append("teeth")
    elif mouth == "open oval":
        mh = room * rng.uniform(0.3, 0.45)
        design.relief.append(([("poly", ellipse(cx, my, mw * 0.62, mh * 0.8))], half_w * 0.08, 0.006))
        design.holes.append(("poly", ellipse(cx, my, mw * 0.45, mh * 0.5)))
    else:
        mh = room * rng.uniform(0.3, 0.45)
        design.relief.append(([("poly", ellipse(cx, my, mw * 0.4, mh * 0.55))], half_w * 0.14, 0.008))
        design.incisions.append(("line", np.array([[cx - mw * 0.28, my], [cx + mw * 0.28, my]]), 0.006, False))
    design.features.append(f"{mouth} mouth")


def add_scars(rng: np.random.Generator, design: Design, layout: Layout) -> None:
    """Scarification: incised cheek lines, a forehead line of keloid bumps or chevrons."""
    cx, height, half_w, face_top = layout.cx, layout.height, layout.half_w, layout.face_top
    ey, eye_w, jitter = layout.ey, layout.eye_w, layout.jitter
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
            design.incisions.append(("line", mirror(seg, cx) + jitter[1] * 0.5, 0.006, False))
        design.features.append("cheek scarification")
    elif kind == "forehead bumps":
        for yk in np.linspace(face_top + height * 0.08, ey - eye_w * 0.7, int(rng.integers(4, 8))):
            design.relief.append(([("circle", (cx, yk), half_w * 0.045)], half_w * 0.06, 0.004))
        design.features.append("forehead scarification")
    else:
        for k in range(int(rng.integers(2, 4))):
            yk = face_top + height * (0.1 + 0.06 * k)
            chev = np.array([[cx - half_w * 0.25, yk + height * 0.05], [cx, yk],
                             [cx + half_w * 0.25, yk + height * 0.05]])
            design.incisions.append(("line", chev, 0.006, False))
        design.features.append("forehead scarification")


def paint_face_pattern(rng: np.random.Generator, design: Design, traits: Traits, layout: Layout) -> None:
    """The pattern painted on the forehead, the cheeks or the whole face (a plank's is on its board)."""
    cx, y0, height, half_w, face_top = layout.cx, layout.y0, layout.height, layout.half_w, layout.face_top
    ey, eye_w, my, pattern = layout.ey, layout.eye_w, layout.my, traits.pattern
    region_kind = ("forehead", "cheeks", "full")[int(rng.integers(3))]
    if region_kind == "full" and pattern in ("checks", "zigzags"):
        region_kind = "forehead"
    if region_kind == "forehead":
        box = layout.region_forehead or (cx - half_w, face_top, cx + half_w, ey - eye_w * 0.9)
        region = [("poly", np.array([[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]]))]
    elif region_kind == "cheeks":
        box = (cx - half_w, ey + eye_w * 0.5, cx + half_w, my)
        r_ch = half_w * 0.28
        region = [("circle", (cx + s * half_w * 0.56, ey + (my - ey) * 0.45), r_ch) for s in (-1, 1)]
    else:
        box = (cx - half_w, face_top, cx + half_w, y0 + height)
        region = [("poly", layout.outline)]
    period = half_w * rng.uniform(0.14, 0.24)
    orient = ("horizontal", "vertical", "chevron")[int(rng.integers(3))]
    pat = pattern_shapes(pattern, box, cx, period, orient)
    design.paint.append((region, pat, pick_pigment(rng, traits.material), float(rng.uniform(0.7, 0.92))))
