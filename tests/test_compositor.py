"""The compositor: which frame of a render goes on screen, how it is mixed, and the overlays in their one order."""

import numpy as np
import pygame
import pytest
from PIL import Image

from installation.compositor import (
    MAX_SMEAR,
    Compositor,
    Overlays,
    cross_fade,
    draw_overlays,
    draw_webcam_preview,
    pick_frame,
)
from installation.provenance import Caption, CaptionOverlay, CaptionStyle, Neighbour
from installation.worker import FrameResult

GREEN = (0, 200, 0)
FILL = (90, 60, 30)


def result_at(*times: float) -> FrameResult:
    frames = np.stack([np.full((4, 4, 3), index, np.uint8) for index in range(len(times))])
    return FrameResult(0, np.array(times), frames, 0.01, 0.0, 1)


def test_pick_frame_shows_a_batch_frame_by_frame_as_its_times_arrive():
    result = result_at(1.0, 1.1, 1.2)
    assert [pick_frame(result, t) for t in (0.5, 1.0, 1.05, 1.1, 1.15, 9.0)] == [0, 0, 0, 1, 1, 2]


def test_cross_fade_weights_the_new_frame_by_alpha_and_passes_it_through_when_it_cannot_fade():
    previous, current = np.full((2, 2, 3), 200, np.uint8), np.full((2, 2, 3), 100, np.uint8)
    assert np.array_equal(cross_fade(previous, current, 0.25), np.full((2, 2, 3), 175, np.uint8))
    assert cross_fade(previous, current, 1.0) is current
    assert cross_fade(None, current, 0.5) is current
    assert cross_fade(np.zeros((3, 3, 3), np.uint8), current, 0.5) is current  # another size: no cross-fade


def test_the_crossfade_runs_only_while_renders_come_slower_than_the_display():
    shown, target = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 240, np.uint8)
    interval = 1 / 30
    fading = Compositor(fade_between_renders=True)
    # A render every 0.2 s at 30 fps: the new picture comes in over the gap, a sixth of the way one frame in.
    assert np.array_equal(fading.mix(target, shown, 0.0, 0.0, 0.2, interval), np.full((2, 2, 3), 40, np.uint8))
    assert fading.mix(target, shown, 0.0, 0.2, 0.2, interval) is target  # the gap is over: the render itself
    assert fading.mix(target, shown, 0.0, 0.0, 1.2 * interval, interval) is target  # renders keep up: no fade
    assert Compositor(fade_between_renders=False).mix(target, shown, 0.0, 0.0, 0.2, interval) is target


def test_the_trail_reaches_a_still_picture_exactly_and_never_freezes():
    first, still = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)
    compositor = Compositor(fade_between_renders=False)
    assert np.array_equal(compositor.mix(first, None, 0.5, 0.0, 1.0, 1.0), first)
    assert np.array_equal(compositor.mix(still, first, 0.5, 0.0, 1.0, 1.0), np.full((2, 2, 3), 128, np.uint8))
    for _ in range(200):
        picture = compositor.mix(still, None, MAX_SMEAR, 0.0, 1.0, 1.0)
    assert np.array_equal(picture, still)  # a uint8 trail would stop a few levels short of it

    frozen = Compositor(fade_between_renders=False)
    frozen.mix(first, None, 1.0, 0.0, 1.0, 1.0)
    assert frozen.mix(still, None, 1.0, 0.0, 1.0, 1.0).max() > 0  # a `trail` of 1 is held to MAX_SMEAR
    frozen.mix(still, None, 0.0, 0.0, 1.0, 1.0)
    assert frozen.trail is None  # the trail ends when the control goes back to 0
    frozen.mix(still, None, 0.5, 0.0, 1.0, 1.0)
    frozen.reset_trail()
    assert np.array_equal(frozen.mix(first, None, 0.5, 0.0, 1.0, 1.0), first)  # after a reset: the render as is


def caption_overlay(now: float) -> CaptionOverlay:
    neighbour = Neighbour(3, 0.9, {"title": "A long title that makes the caption panel wide"}, 0)
    caption = Caption("A long title that makes the caption panel wide", "culture · material", 0.9, 0.1, 40.0,
                      (neighbour,))
    overlay = CaptionOverlay(CaptionStyle(placement="top-left", show_thumbnails=False))
    assert overlay.update(caption, now - 5.0)  # half-way through its ten seconds: fully visible
    return overlay


def test_overlays_are_drawn_caption_then_preview_then_text():
    pygame.font.init()
    screen = pygame.Surface((1920, 1080))
    screen.fill(FILL)
    preview = np.zeros((120, 160, 3), np.uint8)
    preview[:] = GREEN
    overlays = Overlays(caption=caption_overlay(100.0), preview=preview, preview_corner="top-left",
                        text=("30.0 fps  render  12.0 ms", "keyframe 2  seed 7  loop"))
    draw_overlays(screen, overlays, 100.0)
    # At 1080 lines the preview is 320 x 240 from (18, 18), the caption panel starts at (32, 32), the text's
    # backdrop covers the top left up to about y = 62.
    assert screen.get_at((300, 120))[:3] == GREEN  # the preview covers the caption panel
    assert screen.get_at((20, 40))[:3] != GREEN  # the frame-rate text covers the preview
    assert screen.get_at((500, 120))[:3] != FILL  # the caption panel is there beside the preview
    assert screen.get_at((1000, 700))[:3] == FILL  # and nothing else is drawn

    alone = pygame.Surface((1920, 1080))
    alone.fill(FILL)
    draw_overlays(alone, Overlays(preview=preview, preview_corner="top-left"), 100.0)
    assert alone.get_at((20, 40))[:3] == GREEN  # without text, that corner is the preview's


@pytest.mark.parametrize("corner, inside, outside", [("bottom-right", (1800, 1000), (100, 100)),
                                                     ("top-left", (100, 100), (1800, 1000))])
def test_the_webcam_preview_goes_to_its_configured_corner(corner, inside, outside):
    screen = pygame.Surface((1920, 1080))
    screen.fill(FILL)
    rect = draw_webcam_preview(screen, np.full((120, 160, 3), GREEN, np.uint8), corner)
    assert rect.width == 320  # 320 px wide at 1080 lines
    assert screen.get_at(inside)[:3] == GREEN and screen.get_at(outside)[:3] == FILL


def test_show_puts_the_picture_and_the_text_on_the_real_display(tmp_path):
    from installation.display import Display

    display = Display(windowed=True, size=(320, 240))
    try:
        picture = np.full((64, 64, 3), FILL, np.uint8)
        Compositor(fade_between_renders=False).show(display, picture, Overlays(text=("12.0 fps",)), 0.0)
        shot = np.asarray(Image.open(display.screenshot(tmp_path / "screen.png")).convert("RGB")).astype(int)
    finally:
        display.close()
    assert abs(shot[120, 160] - FILL).max() <= 4  # the picture, letterboxed in the middle
    assert shot[4:30, 4:60].max() > 200  # white text in the top left, over the black bar
