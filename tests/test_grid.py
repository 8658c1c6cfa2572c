"""models.grid.image_grid: the one grid behind sample grids, the synthetic contact sheet and the export's sheet."""

import numpy as np
import pytest

from models.grid import image_grid


def numbered(count: int, height: int = 8, width: int = 10, channels: int = 3) -> np.ndarray:
    """`count` flat images, image i filled with 20 * (i + 1), so every tile can be found again in the grid."""
    return np.stack([np.full((height, width, channels), 20 * (index + 1), np.uint8) for index in range(count)])


def test_tiles_go_row_by_row_with_gaps_between_and_no_empty_columns():
    grid = image_grid(numbered(5), columns=3, gap=2, background=7)
    assert grid.shape == (2 * 8 + 2, 3 * 10 + 2 * 2, 3)
    for index in range(5):
        row, column = divmod(index, 3)
        top, left = row * (8 + 2), column * (10 + 2)
        assert (grid[top:top + 8, left:left + 10] == 20 * (index + 1)).all()
    assert (grid[8:10] == 7).all() and (grid[:, 10:12] == 7).all()  # the gaps between rows and columns
    assert (grid[10:, 24:] == 7).all()  # the missing sixth tile is background
    assert image_grid(numbered(2), columns=8).shape == (8, 2 * 10 + 2, 3)  # columns shrink to the image count


def test_margin_surrounds_the_grid():
    grid = image_grid(numbered(4), columns=2, gap=4, margin=4, background=24)
    assert grid.shape == (2 * (8 + 4) + 4, 2 * (10 + 4) + 4, 3)
    assert (grid[:4] == 24).all() and (grid[-4:] == 24).all() and (grid[:, :4] == 24).all()
    assert (grid[4:12, 4:14] == 20).all() and (grid[16:24, 18:28] == 80).all()


def test_grey_images_give_a_grey_grid():
    grid = image_grid(list(numbered(3, channels=1)[..., 0]), columns=3, gap=1, background=255)
    assert grid.shape == (8, 3 * 10 + 2) and grid.dtype == np.uint8
    assert (grid[:, 10] == 255).all() and (grid[:, 11:21] == 40).all()


def test_labels_are_drawn_inside_their_own_tile_only():
    images = np.full((2, 24, 48, 3), 128, np.uint8)
    plain = image_grid(images, columns=2, gap=4, margin=4)
    labelled = image_grid(images, columns=2, gap=4, margin=4, labels=["#0", ""])
    changed = np.argwhere(np.any(plain != labelled, axis=-1))
    assert len(changed) > 20  # the label shows
    assert changed[:, 0].min() >= 4 and changed[:, 0].max() < 4 + 24
    assert changed[:, 1].min() >= 4 and changed[:, 1].max() < 4 + 48  # the first tile, not the gap or the second
    assert labelled.max() >= 240 and labelled[4:28, 4:52].min() <= 16  # white on a dark outline
    assert (images == 128).all()  # the caller's images are not drawn on


@pytest.mark.parametrize("images, columns, labels, message", [
    ([], 3, None, "at least one image"),
    (numbered(2), 0, None, "columns must be at least 1, got 0"),
    ([np.zeros((8, 10, 3), np.uint8), np.zeros((8, 12, 3), np.uint8)], 2, None, "must share one size"),
    (numbered(2), 2, ["only one"], "1 labels for 2 images"),
])
def test_bad_input_is_named(images, columns, labels, message):
    with pytest.raises(ValueError, match=message):
        image_grid(images, columns, labels=labels)
