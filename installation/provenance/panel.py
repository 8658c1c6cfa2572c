"""Captions on screen: which caption shows and for how long (`CaptionOverlay`), and the pygame panel it is drawn as.

The installation's compositor (installation/compositor.py) calls `CaptionOverlay.draw` among the other overlays.
pygame is imported where it is drawn with, so that the index and the captioner (used by export and inspection)
stay free of it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from installation.provenance.captioner import LABEL_PRESETS, Caption
from installation.provenance.index import ProvenanceIndex

PLACEMENTS = ("bottom-left", "bottom-right", "top-left", "top-right", "bottom-center")
REFERENCE_HEIGHT = 1080  # caption sizes are given for a screen this many pixels high and scale with it


@dataclass(frozen=True)
class CaptionStyle:
    """How captions look. Sizes are line heights and edges in pixels as drawn; `at_height` scales a style given
    for a REFERENCE_HEIGHT screen to another. labels override the `language` preset's wording key by key."""

    placement: str = "bottom-left"
    font_path: str | None = None  # None: pygame's default font
    size: int = 36  # height of the title's line in pixels
    body_size: int = 24  # height of the other lines
    duration: float = 10.0  # seconds a caption stays, fades included; math.inf keeps it up
    fade: float = 1.0  # seconds of fade in and of fade out
    show_thumbnails: bool = True
    k: int = 5  # neighbours looked up, and thumbnails shown
    thumbnail_size: int = 112
    margin: int = 32
    language: str = "en"
    labels: Mapping[str, str] | None = None
    text_color: tuple[int, int, int] = (240, 236, 228)
    background: tuple[int, int, int, int] = (0, 0, 0, 160)

    def __post_init__(self):
        if self.placement not in PLACEMENTS:
            raise ValueError(f"caption placement {self.placement!r} is not one of {', '.join(PLACEMENTS)}")
        if self.font_path is not None and not Path(self.font_path).expanduser().is_file():
            raise FileNotFoundError(f"caption font {self.font_path} does not exist; give a .ttf/.otf file or none")
        for name in ("size", "body_size"):
            if not 6 <= getattr(self, name) <= 400:
                raise ValueError(f"caption {name} {getattr(self, name)} is outside the allowed range 6..400")
        if not self.duration > 0:
            raise ValueError(f"caption duration {self.duration} must be positive (math.inf keeps captions up)")
        if not 0 <= self.fade <= self.duration / 2:
            raise ValueError(f"caption fade {self.fade} must be in 0..duration/2 ({self.duration / 2})")
        if not 1 <= self.k <= 24:
            raise ValueError(f"caption k {self.k} is outside the allowed range 1..24")
        if not 8 <= self.thumbnail_size <= 1024:
            raise ValueError(f"thumbnail_size {self.thumbnail_size} is outside the allowed range 8..1024")
        if self.language not in LABEL_PRESETS:
            raise ValueError(f"caption language {self.language!r} is not one of {', '.join(LABEL_PRESETS)}")
        unknown = set(self.labels or {}) - set(LABEL_PRESETS["en"])
        if unknown:
            raise ValueError(f"unknown caption labels {sorted(unknown)}; known: {', '.join(LABEL_PRESETS['en'])}")
        merged = {**LABEL_PRESETS[self.language], **(self.labels or {})}
        object.__setattr__(self, "labels", MappingProxyType(merged))

    def __hash__(self):
        return hash((self.placement, self.font_path, self.size, self.body_size, self.duration, self.fade,
                     self.show_thumbnails, self.k, self.thumbnail_size, self.margin, self.language,
                     tuple(sorted(self.labels.items())), self.text_color, self.background))

    def at_height(self, screen_height: int) -> CaptionStyle:
        """This style, given for a REFERENCE_HEIGHT screen, in pixels for a screen `screen_height` high: a caption
        takes the same share of a 720p, 1080p or 4K screen."""
        scale = screen_height / REFERENCE_HEIGHT
        return dataclasses.replace(self, size=max(6, round(self.size * scale)),
                                   body_size=max(6, round(self.body_size * scale)),
                                   thumbnail_size=max(8, round(self.thumbnail_size * scale)),
                                   margin=round(self.margin * scale), labels=dict(self.labels))


def caption_alpha(age_seconds: float, duration: float, fade: float) -> float:
    """0..1 opacity: fade in over `fade`, hold, fade out over the last `fade` seconds of `duration`."""
    if age_seconds < 0 or age_seconds >= duration:
        return 0.0
    if fade <= 0:
        return 1.0
    return max(0.0, min(1.0, age_seconds / fade, (duration - age_seconds) / fade))


@functools.lru_cache(maxsize=16)
def line_font(path: str | None, height: int):
    """A font whose lines are `height` pixels high (pygame's sizes are nominal: its default font's "24" draws
    17-pixel lines)."""
    import pygame

    if not pygame.font.get_init():
        pygame.font.init()
    probe = pygame.font.Font(path, height)
    size = max(1, round(height * height / max(1, probe.get_height())))
    font = pygame.font.Font(path, size)
    while font.get_height() < height:
        size += 1
        font = pygame.font.Font(path, size)
    return font


def wrap(text: str, font, width: int) -> list[str]:
    """`text` broken at spaces into lines no wider than `width` pixels (a single overlong word is cut)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.size(candidate)[0] <= width:
            lines[-1] = candidate
            continue
        while font.size(word)[0] > width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and font.size(word[:cut] + "…")[0] > width:
                cut -= 1
            word = word[:cut] + "…"
        lines.append(word)
    return lines or [""]


@dataclass
class _Panel:
    key: tuple | None = None
    surface: object = None
    held: tuple = ()  # the caption and thumbnails of `key`, kept alive so that their ids stay theirs


_panel_cache = _Panel()


def render_panel(caption: Caption, style: CaptionStyle, thumbnails=None, max_size: tuple[int, int] | None = None):
    """The caption as an opaque-alpha pygame Surface (text lines over a translucent box, then thumbnails), no
    wider or taller than `max_size`: long lines wrap, thumbnails that do not fit are left out, never cut."""
    import pygame

    title_font, body_font = line_font(style.font_path, style.size), line_font(style.font_path, style.body_size)
    pad, gap = max(4, style.body_size // 2), max(2, style.body_size // 6)
    max_width, max_height = max_size or (1 << 15, 1 << 15)
    text_width = max(1, max_width - 2 * pad)
    rendered = []
    for index, line in enumerate(caption.lines(style.labels)):
        font = title_font if index == 1 else body_font
        rendered += [font.render(part, True, style.text_color) for part in wrap(line, font, text_width)]
    thumbs = []
    side = thumbnail_side(style, thumbnails)
    text_height = sum(text.get_height() + gap for text in rendered) + 2 * pad
    fits = max(0, (text_width + gap) // (side + gap))
    if style.show_thumbnails and thumbnails is not None and text_height + side + gap <= max_height:
        for thumb in list(thumbnails)[: min(style.k, fits)]:
            thumb = np.ascontiguousarray(thumb, np.uint8)
            image = pygame.image.frombuffer(thumb.tobytes(), (thumb.shape[1], thumb.shape[0]), "RGB")
            thumbs.append(pygame.transform.smoothscale(image, (side, side)) if side != thumb.shape[0] else image)
    strip = len(thumbs) * side + max(0, len(thumbs) - 1) * gap
    width = min(max_width, max([text.get_width() for text in rendered] + [strip]) + 2 * pad)
    height = min(max_height, text_height + (side + gap if thumbs else 0))
    panel = pygame.Surface((width, height), pygame.SRCALPHA)
    panel.fill(style.background)
    y = pad
    for text in rendered:
        panel.blit(text, (pad, y))
        y += text.get_height() + gap
    for index, thumb in enumerate(thumbs):
        panel.blit(thumb, (pad + index * (side + gap), y))
    return panel


def thumbnail_side(style: CaptionStyle, thumbnails=None) -> int:
    """The side thumbnails are drawn at: the style's, but at most what the index stores (enlarged ones would only
    be blurred; `python -m training index --thumb-size` stores larger ones)."""
    stored = None if thumbnails is None else int(np.asarray(thumbnails).shape[1])
    return min(style.thumbnail_size, stored or style.thumbnail_size)


def panel_position(placement: str, panel_size: tuple[int, int], surface_size: tuple[int, int], margin: int):
    width, height = panel_size
    screen_w, screen_h = surface_size
    x = {"left": margin, "right": screen_w - width - margin, "center": (screen_w - width) // 2}[placement.split("-")[1]]
    y = margin if placement.startswith("top") else screen_h - height - margin
    return x, y


def draw_caption(surface, caption: Caption | None, style: CaptionStyle, age_seconds: float, thumbnails=None):
    """Paint `caption` onto a pygame Surface, faded by its age; returns the Rect drawn, or None when invisible.

    thumbnails: uint8 (k, t, t, 3) images of the neighbours (ProvenanceIndex.thumbnails), or None.
    The panel stays inside the surface, `style.margin` from its edges, and is rendered once per caption and
    reused while only its opacity changes.
    """
    alpha = caption_alpha(age_seconds, style.duration, style.fade)
    if caption is None or alpha <= 0:
        return None
    cache = _panel_cache
    surface_size = surface.get_size()
    key = (id(caption), style, id(thumbnails), surface_size)
    if cache.key != key:
        room = (max(1, surface_size[0] - 2 * style.margin), max(1, surface_size[1] - 2 * style.margin))
        cache.surface, cache.key = render_panel(caption, style, thumbnails, room), key
        cache.held = (caption, thumbnails)
    panel = cache.surface
    panel.set_alpha(round(255 * alpha))
    position = panel_position(style.placement, panel.get_size(), surface_size, style.margin)
    return surface.blit(panel, position)


@dataclass
class CaptionOverlay:
    """Which caption is on screen and since when: a caption starts when the closest dataset image changes,
    shows for `style.duration` seconds (fading in and out) and then stays hidden until the next change."""

    style: CaptionStyle = field(default_factory=CaptionStyle)
    index: ProvenanceIndex | None = None  # for thumbnails
    caption: Caption | None = None
    since: float = -math.inf
    thumbnails: np.ndarray | None = None
    scaled: tuple[int, CaptionStyle] | None = None  # (screen height, style in its pixels)

    def update(self, caption: Caption | None, now: float) -> bool:
        """Take the worker's newest caption; True when a new one starts (e.g. to send it over OSC)."""
        if caption is None or caption is self.caption:
            return False
        starts = self.caption is None or caption.best.id != self.caption.best.id
        if starts:
            self.since = now
        self.caption = caption
        if self.index is not None and self.style.show_thumbnails:
            self.thumbnails = self.index.thumbnails([n.row for n in caption.neighbours[: self.style.k]])
        return starts

    def draw(self, surface, now: float):
        """Draw at sizes for this surface's height (the style is given for a REFERENCE_HEIGHT screen)."""
        height = surface.get_height()
        if self.scaled is None or self.scaled[0] != height:
            self.scaled = (height, self.style.at_height(height))
        return draw_caption(surface, self.caption, self.scaled[1], now - self.since, self.thumbnails)
