"""The offline loop export: real renderer, real bundled ffmpeg for encoding and for decoding the result."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_until
from PIL import Image
from support import he_initialise, killed_on_exit

from installation import app
from installation import video as exporter
from installation.config import RuntimeConfig, walk_config
from installation.latent import loop_times, walk_batch
from models.bundle import load_bundle, save_model
from models.render import Renderer

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
FFMPEG = exporter.ffmpeg_exe()


@pytest.fixture(scope="module")
def vivid_bundle(tiny_bundle, tmp_path_factory):
    """tiny_bundle with He-initialised generator kernels: the untrained original renders an almost flat grey
    (127..128), too little signal to tell frames, seams and seeds apart through a lossy codec."""
    path = tmp_path_factory.mktemp("vivid") / "bundle"
    shutil.copytree(tiny_bundle, path)
    generator = load_bundle(path, with_upscaler=False).generator
    he_initialise(generator)
    save_model(path, "generator.keras", generator)
    return path


@pytest.fixture(scope="module")
def renderer(vivid_bundle):
    return Renderer(load_bundle(vivid_bundle), max_batch=8)


def walk_for(bundle, **settings):
    """The WalkConfig the export builds: the live piece's settings with mode forced to loop."""
    return walk_config(RuntimeConfig(model=str(bundle), mode="loop", **settings), 100)


def probe(path: Path) -> str:
    return subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def decode(path: Path, width: int, height: int) -> np.ndarray:
    """Every frame of a video as (N, H, W, 3) uint8 RGB, decoded by the bundled ffmpeg through a pipe."""
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
                         capture_output=True, check=True).stdout
    frame_bytes = width * height * 3
    assert len(raw) % frame_bytes == 0
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def run_export(capsys, *args) -> tuple[int, str]:
    """The CLI in-process, through run_installation's dispatcher; returns (exit code, stderr)."""
    code = app.main(["export", "--no-progress", *map(str, args)])
    return code, capsys.readouterr().err


def reference(renderer, walk, times, width, height, fit="letterbox") -> np.ndarray:
    frames = renderer.render(walk_batch(walk, times))
    return np.stack([exporter.fit_frame(frame, width, height, fit) for frame in frames])


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def luma(frames: np.ndarray) -> np.ndarray:
    """BT.709 luma: 4:2:0 keeps it at full resolution, so the test fixture's pixel-sized colour noise (which
    chroma subsampling smears) does not hide whether the right frame was encoded."""
    return frames.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])


def test_h264_loop_frames_match_render_and_close_seamlessly(vivid_bundle, renderer, tmp_path, capsys):
    settings = tmp_path / "piece.toml"
    settings.write_text('[walk]\neasing = "cosine"\ntruncation = 0.8\nseconds_per_keyframe = 3.0\n')
    out = tmp_path / "loop.mp4"
    code, err = run_export(capsys, "--model", vivid_bundle, "--config", settings, "--out", out, "--seconds", 2,
                           "--fps", 12, "--width", 96, "--height", 64, "--keyframes", 4, "--seed", 5, "--crf", 4,
                           "--preset", "veryfast", "--contact-sheet")
    assert code == 0, err
    info = probe(out)
    assert "Video: h264" in info and "yuv420p" in info and "12 fps" in info and "96x64" in info
    frames = decode(out, 96, 64)
    assert len(frames) == 24  # exactly seconds x fps
    walk = walk_for(vivid_bundle, seed=5, loop_keyframes=4, easing="cosine", truncation=0.8,
                    seconds_per_keyframe=3.0)
    times = loop_times(walk, 2, 12)
    expected = luma(reference(renderer, walk, times[[0, 13]], 96, 64))
    decoded = luma(frames)
    assert mean_abs(decoded[0], expected[0]) < 6
    assert mean_abs(decoded[13], expected[1]) < 6
    assert mean_abs(decoded[0], expected[0]) < mean_abs(decoded[0], expected[1]) / 2  # the right frame, not any
    assert frames[:, :, :8].max() <= 20  # letterbox bars (64 px square centred in 96 px) stay black
    steps = [mean_abs(decoded[i + 1], decoded[i]) for i in range(len(decoded) - 1)]
    assert max(steps) > 3  # the walk moves: the seam check below is not vacuous
    assert mean_abs(decoded[-1], decoded[0]) <= 1.5 * np.percentile(steps, 95)
    sheet = np.asarray(Image.open(tmp_path / "loop.contact.png"))
    assert sheet.shape == (2 * (64 + 4) + 4, 2 * (96 + 4) + 4, 3)  # 4 keyframes in a 2 x 2 grid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.contact.png", "loop.mp4", "piece.toml"]


def test_png_sequence_is_exact_and_deterministic_by_seed(vivid_bundle, renderer, tmp_path, capsys):
    common = ["--model", vivid_bundle, "--seconds", 2, "--fps", 12, "--width", 96, "--height", 64, "--fit", "fill"]
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        code, err = run_export(capsys, *common, "--seed", seed, "--out", tmp_path / name)
        assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(24)]
    sequences = {name: np.stack([np.asarray(Image.open(tmp_path / name / f)) for f in names]) for name in "abc"}
    assert sequences["a"].shape == (24, 64, 96, 3)
    assert np.array_equal(sequences["a"], sequences["b"])
    assert mean_abs(sequences["a"], sequences["c"]) > 5
    walk = walk_for(vivid_bundle, seed=1)
    expected = reference(renderer, walk, loop_times(walk, 2, 12)[:1], 96, 64, fit="fill")
    assert np.array_equal(sequences["a"][0], expected[0])


def test_prores_mov(vivid_bundle, tmp_path, capsys):
    out = tmp_path / "loop.mov"
    code, err = run_export(capsys, "--model", vivid_bundle, "--out", out, "--seconds", 1, "--fps", 12,
                           "--size", 64)
    assert code == 0, err
    info = probe(out)
    assert "Video: prores" in info and "yuv422p10le" in info and "12 fps" in info
    assert len(decode(out, 64, 64)) == 12


@pytest.mark.skipif("libx265" not in exporter.available_encoders(FFMPEG), reason="bundled ffmpeg lacks libx265")
def test_hevc_mp4_is_tagged_for_apple_players(vivid_bundle, tmp_path, capsys):
    out = tmp_path / "loop.mp4"
    code, err = run_export(capsys, "--model", vivid_bundle, "--out", out, "--seconds", 1, "--fps", 12,
                           "--size", 64, "--codec", "hevc", "--preset", "ultrafast")
    assert code == 0, err
    info = probe(out)
    assert "Video: hevc" in info and "hvc1" in info and "yuv420p" in info
    assert len(decode(out, 64, 64)) == 12


def test_refuses_to_overwrite_unless_asked(vivid_bundle, tmp_path, capsys):
    out = tmp_path / "loop.mp4"
    out.write_bytes(b"keep me")
    args = ["--model", vivid_bundle, "--out", out, "--seconds", 1, "--fps", 12, "--size", 64]
    code, err = run_export(capsys, *args)
    assert code == 2 and err.strip().splitlines() == [f"error: {out} already exists; pass --overwrite to replace it"]
    assert out.read_bytes() == b"keep me"
    code, err = run_export(capsys, *args, "--overwrite")
    assert code == 0, err
    assert len(decode(out, 64, 64)) == 12
    assert [p.name for p in tmp_path.iterdir()] == ["loop.mp4"]


@pytest.mark.parametrize("args, message", [
    (["--width", 95, "--height", 64], "size 95x64 has an odd side"),
    (["--seconds", 0], "seconds = 0.0 must be a number in (0, 86400]"),
    (["--fps", -5], "fps = -5.0 must be a number in [1, 240]"),
    (["--codec", "vp9"], "codec 'vp9' is not one of h264, hevc, prores, png"),
    (["--crf", 70], "crf = 70 must be an integer in [0, 51]"),
    (["--captions"], "captions need a bundle with a provenance index"),
])
def test_bad_input_is_one_clear_line(vivid_bundle, tmp_path, capsys, args, message):
    code, err = run_export(capsys, "--model", vivid_bundle, "--out", tmp_path / "loop.mp4", "--seconds", 1,
                           "--fps", 12, "--size", 64, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_or_missing_folder_is_refused_before_rendering(vivid_bundle, tmp_path, capsys):
    plain_file = tmp_path / "notes.txt"
    plain_file.write_text("a file, not a folder")
    code, err = run_export(capsys, "--model", vivid_bundle, "--out", plain_file / "loop.mp4", "--size", 64)
    assert code == 2 and err.strip() == f"error: output folder {plain_file} is not a folder"
    code, err = run_export(capsys, "--model", vivid_bundle, "--out", tmp_path / "missing" / "loop.mp4")
    assert code == 2 and "does not exist; create it first" in err
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a 0o500 folder is still writable")
        code, err = run_export(capsys, "--model", vivid_bundle, "--out", locked / "loop.mp4", "--size", 64)
        assert code == 2 and f"output folder {locked} is not writable" in err
    finally:
        locked.chmod(0o700)


def test_full_disk_reports_and_removes_the_partial_file(renderer, vivid_bundle, tmp_path):
    """An ffmpeg that dies the way a full disk makes it die: the export says so and leaves nothing behind."""
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n"
                    'if [ "$2" = "-encoders" ]; then echo " V....D libx264   libx264 H.264"; exit 0; fi\n'
                    "head -c 20000 > /dev/null\n"
                    'echo "[out#0/mp4] Error writing trailer: No space left on device" >&2\n'
                    "exit 228\n")
    fake.chmod(0o755)
    exporter.available_encoders.cache_clear()
    out = tmp_path / "videos" / "loop.mp4"
    out.parent.mkdir()
    config = exporter.ExportConfig(out=out, seconds=2, fps=12, width=64, height=64, progress=False)
    with pytest.raises(exporter.ExportError, match=f"no space left on device while writing {out}"):
        exporter.export_loop(config, renderer, walk_for(vivid_bundle), ffmpeg=str(fake))
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_interrupted_export_leaves_no_file(vivid_bundle, tmp_path, signum):
    out = tmp_path / "long.mp4"
    with killed_on_exit(subprocess.Popen(
            [sys.executable, str(ROOT / "run_installation.py"), "export", "--model", str(vivid_bundle), "--out",
             str(out), "--seconds", "3600", "--fps", "12", "--size", "64", "--preset", "ultrafast"],
            cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as process:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".long.mp4.partial-*")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.1)
        time.sleep(1.0)  # let frames flow through ffmpeg
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert f"interrupted by {signal.Signals(signum).name}: export stopped, nothing written" in err.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_fit_frame_letterbox_and_fill():
    frame = np.full((256, 256, 3), 200, np.uint8)
    letterboxed = exporter.fit_frame(frame, 96, 64, "letterbox")
    assert letterboxed.shape == (64, 96, 3)
    assert letterboxed[:, :16].max() == 0 and letterboxed[:, 80:].max() == 0 and letterboxed[:, 16:80].min() == 200
    filled = exporter.fit_frame(frame, 1920, 1080, "fill")
    assert filled.shape == (1080, 1920, 3) and filled.min() == 200
    assert exporter.fit_frame(frame, 256, 256, "fill") is frame


def test_export_config_names_the_bad_value():
    with pytest.raises(ValueError, match=r"bitrate 'fast' must be a number of bits/s"):
        exporter.ExportConfig(out="a.mp4", bitrate="fast")
    with pytest.raises(ValueError, match="give either crf or bitrate"):
        exporter.ExportConfig(out="a.mp4", crf=18, bitrate="8M")
    with pytest.raises(ValueError, match="codec prores writes .mov files"):
        exporter.ExportConfig(out="a.mp4", codec="prores")
    with pytest.raises(ValueError, match="width 63 is odd"):
        exporter.ExportConfig(out="a.mov", codec="prores", width=63, height=64)
    assert exporter.ExportConfig(out="a.mov", codec="prores", width=64, height=63).height == 63
    assert exporter.ExportConfig(out="frames", codec="png", width=63, height=63).frames == 1800
    assert exporter.rate(29.97) == "2997/100" and exporter.rate(30) == "30/1"


def test_captions_hold_the_nearest_keyframes_caption(renderer, vivid_bundle, tmp_path):
    """The caption hook with a stand-in captioner: one look-up per keyframe, drawn in a band at the bottom."""
    walk = walk_for(vivid_bundle, loop_keyframes=2)
    texts = iter(["a", "WWWWWWWWWWWW"])
    seen = []

    def captioner(frame):
        seen.append(frame.shape)
        return next(texts)

    plain, captioned = tmp_path / "plain", tmp_path / "captioned"
    for out, hook in ((plain, None), (captioned, captioner)):
        config = exporter.ExportConfig(out=out, codec="png", seconds=1, fps=12, width=96, height=96, progress=False)
        exporter.export_loop(config, renderer, walk, captioner=hook)
    assert seen == [(256, 256, 3), (256, 256, 3)]  # the K keyframes, at render size

    def read(folder, index):
        return np.asarray(Image.open(folder / f"frame_{index:06d}.png")).astype(int)

    def text_pixels(index):
        return int((read(captioned, index)[80:] >= 150).all(axis=-1).sum())  # the band darkens the rest to <= 102

    for index in (0, 5):
        changed = np.nonzero(np.any(read(plain, index) != read(captioned, index), axis=(1, 2)))[0]
        assert changed.min() > 70 and changed.max() == 95  # only a band at the bottom
    # Frames 0..2 and 9..11 are nearest keyframe 0 (caption "a"), frames 3..8 keyframe 1 (the long one).
    assert 0 < text_pixels(0) < text_pixels(6) / 4 and 0 < text_pixels(11) < text_pixels(5) / 4


def test_partials_of_killed_exports_are_removed_by_the_next_export(vivid_bundle, renderer, tmp_path):
    """SIGKILL leaves the hidden partial file behind; the next export to that name removes it, and only what
    is ours and abandoned: a partial whose writer still runs, fresh old-style ones and other files stay."""
    out = tmp_path / "long.mp4"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run_installation.py"), "export", "--model", str(vivid_bundle), "--out",
         str(out), "--seconds", "3600", "--fps", "12", "--size", "64", "--preset", "ultrafast", "--no-progress"],
        cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: list(tmp_path.glob(".long.mp4.partial-*")), timeout=120)
    finally:
        process.kill()
        process.wait()
    (killed,) = tmp_path.glob(".long.mp4.partial-*")
    assert killed.name.startswith(f".long.mp4.partial-{process.pid}-")
    # The killed export's ffmpeg runs on for a moment (its own session) and, on a busy machine, may only then
    # open its output, re-creating a partial removed before that; a real next export comes long after.
    assert wait_until(lambda: not processes_naming(killed.name), timeout=60)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        running = tmp_path / f".long.mp4.partial-{sleeper.pid}-abc123.mp4"
        fresh_legacy = tmp_path / ".long.mp4.partial-k2j4h5g6.mp4"
        old_legacy = tmp_path / ".long.mp4.partial-zz9yy8xx.mp4"
        dead_folder = tmp_path / f".long.mp4.partial-{process.pid}-qwerty12.mp4"
        unrelated = [tmp_path / ".long.mp4.notes", tmp_path / ".other.mp4.partial-1-abc.mp4"]
        for path in [running, fresh_legacy, old_legacy, *unrelated]:
            path.write_bytes(b"x")
        dead_folder.mkdir()
        (dead_folder / "frame_000000.png").write_bytes(b"x")
        stale = time.time() - exporter.STALE_PARTIAL_SECONDS - 60
        os.utime(old_legacy, (stale, stale))
        config = exporter.ExportConfig(out=out, seconds=1, fps=12, width=64, height=64, progress=False)
        exporter.export_loop(config, renderer, walk_for(vivid_bundle))
        left = {path.name for path in tmp_path.iterdir()}
    finally:
        sleeper.kill()
        sleeper.wait()
    assert left == {"long.mp4", running.name, fresh_legacy.name, *(path.name for path in unrelated)}
    assert len(decode(out, 64, 64)) == 12


def processes_naming(text: str) -> list[int]:
    """Ids of the running processes whose command line contains `text` (read from /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def can_mount_tmpfs(path: Path) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)], capture_output=True)
    return mounted.returncode == 0


def test_a_full_disk_at_the_contact_sheet_keeps_the_video(vivid_bundle, tmp_path, capsys):
    """A real full file system (a small tmpfs, filled up) with room for the video but not for the sheet: the
    export used to exit 2 although the video was written. Now the video stays, the sheet failure is one
    warning line, the exit is 0, and no partial file is left."""
    args = ("--model", vivid_bundle, "--seconds", "0.1", "--fps", "10", "--size", "256", "--contact-sheet",
            "--preset", "ultrafast")
    (tmp_path / "dry").mkdir()
    code, err = run_export(capsys, *args, "--out", tmp_path / "dry" / "loop.mp4")
    assert code == 0, err
    video_size = (tmp_path / "dry" / "loop.mp4").stat().st_size
    sheet_size = (tmp_path / "dry" / "loop.contact.png").stat().st_size
    disk = tmp_path / "disk"
    if not can_mount_tmpfs(disk):
        pytest.skip("needs root and tmpfs to make a real full disk")
    try:
        room = 2 * video_size + 256 * 1024  # the video and its faststart rewrite, and some slack
        assert sheet_size > room - video_size, "the contact sheet must not fit in the room left"
        filler_size = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - room
        (disk / "filler").write_bytes(bytes(filler_size))
        code, err = run_export(capsys, *args, "--out", disk / "loop.mp4")
        assert code == 0, err
        assert "warning: contact sheet not written (no space left on device" in err
        assert "Traceback" not in err
        assert len(decode(disk / "loop.mp4", 256, 256)) == 1
        assert sorted(path.name for path in disk.iterdir()) == ["filler", "loop.mp4"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize("fit, width, height", [("fill", 48, 96), ("letterbox", 128, 48), ("fill", 160, 90)])
def test_ffmpeg_fits_frames_as_the_display_does(vivid_bundle, renderer, tmp_path, capsys, fit, width, height):
    """Without captions ffmpeg crops, scales and pads; the decoded video matches `fit_frame`'s geometry."""
    out = tmp_path / "fit.mp4"
    code, err = run_export(capsys, "--model", vivid_bundle, "--out", out, "--seconds", 1, "--fps", 6,
                           "--width", width, "--height", height, "--keyframes", 3, "--seed", 2, "--crf", 4,
                           "--fit", fit, "--preset", "veryfast")
    assert code == 0, err
    frames = decode(out, width, height)
    walk = walk_for(vivid_bundle, seed=2, loop_keyframes=3)
    times = loop_times(walk, 1, 6)
    expected = luma(reference(renderer, walk, times[[0, 3]], width, height, fit))
    decoded = luma(frames)
    assert mean_abs(decoded[0], expected[0]) < 6 and mean_abs(decoded[3], expected[1]) < 6
    assert mean_abs(decoded[0], expected[0]) < mean_abs(decoded[0], expected[1]) / 2
    bars = expected[0] < 1
    assert (decoded[0][bars] <= 20).all() if bars.any() else fit == "fill"
