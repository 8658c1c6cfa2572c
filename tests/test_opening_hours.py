"""Opening hours in the live piece: on an injected wall clock, the real loop blanks its screen and stops rendering
outside the hours (across midnight and the night the clocks go forward), and an override lasts until the next
change."""

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pygame
import pytest

from installation.app import Piece
from installation.config import RuntimeConfig
from installation.display import Display
from installation.schedule import check_hours
from models.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[1]


def utc(year, month, day, hour, minute=0, second=0) -> float:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).timestamp()


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def running_piece(tiny_bundle, tmp_path):
    """The real Piece on the real display (SDL's dummy driver) in a thread, its wall clock in the test's hands."""
    wall = [utc(2026, 3, 28, 20, 59)]  # 21:59 in Paris, a minute before opening
    config = RuntimeConfig(model=str(tiny_bundle), osc=False, windowed=True, width=96, height=96, fps=30.0,
                           stats_every=3600.0, status_file=str(tmp_path / "status.json"), heartbeat_every=0.5,
                           hours="daily 22:00-04:00", hours_timezone="Europe/Paris")
    display = Display(windowed=True, size=(96, 96))
    piece = Piece.from_config(config, bundle=load_bundle(tiny_bundle), display=display, wall_clock=lambda: wall[0])
    thread = threading.Thread(target=piece.run, daemon=True)
    thread.start()
    yield piece, wall, tmp_path / "status.json"
    piece.request_stop()
    thread.join(10)
    display.close()


def screen(piece) -> np.ndarray:
    return pygame.surfarray.array3d(piece.display.screen)


def renders(piece) -> int:
    return piece.worker.renders if piece.worker is not None else 0


def assert_closed(piece, status_file):
    """Blank screen, and the render count stands still while the loop keeps running."""
    assert wait_until(lambda: piece.closed and piece.shown is piece.closed_picture)
    time.sleep(0.3)  # a render asked for just before closing may still finish
    before, flips = renders(piece), piece.frames_shown
    time.sleep(1.5)
    assert renders(piece) == before, "rendering went on while closed"
    assert piece.frames_shown > flips  # the loop runs (keys, signals) at its closed pace
    assert screen(piece).max() == 0, "the screen is not blank while closed"
    assert wait_until(lambda: json.loads(status_file.read_text())["state"] == "closed")


def assert_open(piece):
    before = renders(piece)
    assert wait_until(lambda: not piece.closed and renders(piece) > before + 5)
    assert wait_until(lambda: screen(piece).max() > 0)


def test_the_piece_closes_and_opens_on_time_across_midnight_and_the_clock_change(running_piece):
    piece, wall, status_file = running_piece
    assert_closed(piece, status_file)
    assert renders(piece) == 0
    wall[0] = utc(2026, 3, 28, 21, 0)  # 22:00 in Paris: open
    assert_open(piece)
    wall[0] = utc(2026, 3, 28, 23, 30)  # past midnight: still Saturday's opening
    assert_open(piece)
    # The clocks go forward at 02:00 (01:00 UTC); closing time is 04:00 summer time, 02:00 UTC.
    wall[0] = utc(2026, 3, 29, 1, 59, 50)
    assert_open(piece)
    wall[0] = utc(2026, 3, 29, 2, 0, 0)
    assert_closed(piece, status_file)
    assert "until Sun 2026-03-29 22:00 Europe/Paris" in piece.hours.describe()


def test_an_override_from_the_controls_lasts_until_the_next_change(running_piece):
    piece, wall, status_file = running_piece
    assert_closed(piece, status_file)
    piece.controls.trigger("open_now", "remote")  # staff open early
    assert_open(piece)
    wall[0] = utc(2026, 3, 28, 21, 0, 1)  # the scheduled opening: the override has ended, open anyway
    assert_open(piece)
    piece.controls.trigger("close_now", "osc")  # closed for a private event until 04:00
    assert_closed(piece, status_file)
    wall[0] = utc(2026, 3, 29, 2, 0, 1)
    assert_closed(piece, status_file)
    wall[0] = utc(2026, 3, 29, 20, 0, 1)  # 22:00 summer time: the schedule opens again
    assert_open(piece)


def test_a_closed_still_and_the_check_line(tmp_path):
    still = tmp_path / "closed.png"
    cv2.imwrite(str(still), np.full((90, 160, 3), (0, 0, 200), np.uint8))  # BGR: red
    config = RuntimeConfig(hours="mon-fri 10:00-18:00", hours_timezone="Europe/Paris", closed_image=str(still))
    line = check_hours(config)
    assert line.startswith(("open (schedule) until", "closed (schedule) until")) and "160x90" in line
    from installation.schedule import closed_picture

    assert closed_picture(str(still))[0, 0].tolist() == [200, 0, 0]
    with pytest.raises(ValueError, match="cannot be read as an image"):
        closed_picture(str(tmp_path / "missing.png"))


def test_check_refuses_a_bad_schedule_with_one_line():
    result = subprocess.run([sys.executable, "run_installation.py", "--check", "--hours", "mon-fri 10:00-25:00"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert result.stderr.strip() == "error: hours: '25:00' is not a time of day (HH:MM, 00:00..24:00)"
