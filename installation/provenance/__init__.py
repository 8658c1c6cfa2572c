"""Provenance captions: which dataset images a generated frame is closest to, and how novel it is.

The pieces, from data to screen, one module each:
- `index`: `ProvenanceIndex.load(bundle_dir)` memory-maps BUNDLE/index/ (built by `python -m training index`).
- `captioner`: `Captioner(index, extractor).caption_for(frame, layer)` runs extractor -> cosine top-k -> `Caption`.
- `worker`: `ProvenanceWorker` does that on its own thread at a few Hz, newest frame wins, so the display never waits.
- `panel`: `CaptionOverlay` decides which caption is on screen and for how long; `draw_caption` paints it with pygame.

The names below are the package's public API, importable from `installation.provenance` as before the split.
"""

from installation.provenance.captioner import (
    LABEL_PRESETS,
    RESEMBLANCE_BANDS,
    SIMILARITY_BANDS,
    Caption,
    Captioner,
    describe,
    open_captioner,
)
from installation.provenance.index import DEFAULT_FLOAT32_BUDGET, SCORE_BLOCK, Neighbour, ProvenanceIndex
from installation.provenance.panel import (
    PLACEMENTS,
    REFERENCE_HEIGHT,
    CaptionOverlay,
    CaptionStyle,
    caption_alpha,
    draw_caption,
    line_font,
    panel_position,
    render_panel,
    thumbnail_side,
    wrap,
)
from installation.provenance.worker import ProvenanceWorker

__all__ = [
    "DEFAULT_FLOAT32_BUDGET", "LABEL_PRESETS", "PLACEMENTS", "REFERENCE_HEIGHT", "RESEMBLANCE_BANDS", "SCORE_BLOCK",
    "SIMILARITY_BANDS", "Caption", "CaptionOverlay", "CaptionStyle", "Captioner", "Neighbour", "ProvenanceIndex",
    "ProvenanceWorker", "caption_alpha", "describe", "draw_caption", "line_font", "open_captioner", "panel_position",
    "render_panel", "thumbnail_side", "wrap",
]
