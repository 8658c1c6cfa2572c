"""Offline export of one seamless loop: walk -> `Renderer.render` -> fit to W x H -> ffmpeg (or PNG files).

The export walks the live piece's path in loop mode: K seeded keyframes, the piece's easing and truncation,
frame ``i`` of ``n = round(seconds * fps)`` at walk time ``i / n * K * seconds_per_keyframe`` (see
`latent.loop_times`). The frame after the last is the first, so the file plays as an endless loop.
``seconds`` sets the speed: one loop of K keyframes spans exactly ``seconds``, so each keyframe-to-keyframe
glide lasts ``seconds / K`` (the configured ``seconds_per_keyframe`` only scales walk time and cancels out).

Frames are rendered in batches and streamed to the bundled ffmpeg as raw RGB on its stdin from a writer
thread (rendering and encoding overlap; memory stays flat whatever the length). The file is written under a
hidden temporary name in the destination folder and renamed into place only after ffmpeg exited cleanly,
so a crash, Ctrl-C or full disk never leaves a truncated file under the final name. Temporary names carry
the writing process's id (`.loop.mp4.partial-<pid>-<random>`); an export that was killed outright (SIGKILL, a
power cut) leaves one behind, and the next export to the same name removes it once its process is gone.

Exit status: 0 written (a contact sheet that could not be written is reported on stderr; the video is kept),
2 refused or failed with one line saying why (nothing left behind), 128 + N stopped by signal N (SIGINT,
SIGTERM, SIGHUP; nothing left behind).

    python run_installation.py export --out loop.mp4 --seconds 60 --fps 30 --size 512 --keyframes 8 --seed 3
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import functools
import logging
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from installation import config as runtime_config
from installation.latent import WalkConfig, loop_period, loop_times, walk_batch
from models.manifest import error_lines

log = logging.getLogger(__name__)

CODECS = ("h264", "hevc", "prores", "png")
FITS = ("letterbox", "fill")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# ffmpeg encoder, pixel format and the file extensions each codec writes.
ENCODERS = {"h264": "libx264", "hevc": "libx265", "prores": "prores_ks"}
PIXEL_FORMATS = {"h264": "yuv420p", "hevc": "yuv420p", "prores": "yuv422p10le", "png": "rgb24"}
EXTENSIONS = {"h264": (".mp4", ".mov", ".mkv"), "hevc": (".mp4", ".mov", ".mkv"), "prores": (".mov",), "png": ("",)}
MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
DEFAULT_CODEC_FOR = {".mp4": "h264", ".mkv": "h264", ".mov": "prores", "": "png"}
MAX_SECONDS = 86400.0
MIN_FPS, MAX_FPS = 1.0, 240.0
MIN_SIZE, MAX_SIZE = 16, 8192
MAX_BATCH = 256
BITRATE_PATTERN = re.compile(r"^[1-9][0-9]*(\.[0-9]+)?[kKmM]?$")
CONTACT_TILE_MAX = 256
CONTACT_SHEET_MAX = 4096
# Read once at import (os.umask can only be read by setting it, which is not thread-safe later on).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class ExportError(RuntimeError):
    """An export failed for a reason the user can act on (full disk, missing encoder); the message says which."""


class ExportInterrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived during an export (raised by the CLI's signal handler)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _check_number(name: str, value, low: float, high: float, *, integer: bool = False, low_open: bool = False):
    kind = int if integer else (int, float)
    bracket = "(" if low_open else "["
    message = f"{name} = {value!r} must be {'an integer' if integer else 'a number'} in {bracket}{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(message)
    if not math.isfinite(value) or not low <= value <= high or (low_open and value == low):
        raise ValueError(message)


@dataclass(frozen=True)
class ExportConfig:
    """How to write the loop. The path through latent space is the `WalkConfig` passed beside it.

    width / height: output size; None means the renderer's native size. crf / bitrate: at most one
    (h264 / hevc only); neither gives CRF 18. batch: frames rendered per call.
    """

    out: Path
    seconds: float = 60.0
    fps: float = 30.0
    width: int | None = None
    height: int | None = None
    codec: str = "h264"
    crf: int | None = None
    bitrate: str | None = None
    # "faster" encodes these loops at the same luma PSNR as "medium" (40.1 vs 40.2 dB at CRF 18, files 2 %
    # larger) for 56 % of the CPU (bench/export_speed.py); "medium" or "slow" make smaller files when time is free.
    preset: str = "faster"
    fit: str = "letterbox"
    upscale: bool = True
    overwrite: bool = False
    contact_sheet: bool = False
    captions: bool = False
    progress: bool = True
    batch: int = 8

    def __post_init__(self):
        object.__setattr__(self, "out", Path(self.out))
        _check_number("seconds", self.seconds, 0.0, MAX_SECONDS, low_open=True)
        _check_number("fps", self.fps, MIN_FPS, MAX_FPS)
        if round(self.seconds * self.fps) < 1:
            raise ValueError(f"seconds * fps = {self.seconds} * {self.fps} must give at least 1 frame")
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), MIN_SIZE, MAX_SIZE, integer=True)
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r} is not one of {', '.join(CODECS)}")
        if self.fit not in FITS:
            raise ValueError(f"fit {self.fit!r} is not one of {', '.join(FITS)}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset {self.preset!r} is not one of {', '.join(PRESETS)}")
        _check_number("batch", self.batch, 1, MAX_BATCH, integer=True)
        if self.crf is not None and self.bitrate is not None:
            raise ValueError("give either crf or bitrate, not both")
        if self.crf is not None:
            _check_number("crf", self.crf, 0, 51, integer=True)
        if self.bitrate is not None and not BITRATE_PATTERN.match(str(self.bitrate)):
            raise ValueError(f"bitrate {self.bitrate!r} must be a number of bits/s with an optional k or M, e.g. 8M")
        if (self.crf is not None or self.bitrate is not None) and self.codec not in ("h264", "hevc"):
            raise ValueError(f"crf and bitrate apply to h264 and hevc, not to codec {self.codec!r}")
        suffix = self.out.suffix.lower()
        if suffix not in EXTENSIONS[self.codec]:
            if self.codec == "png":
                raise ValueError(f"codec png writes a folder of PNG files: give --out without an extension, "
                                 f"got {self.out}")
            raise ValueError(f"codec {self.codec} writes {' / '.join(EXTENSIONS[self.codec])} files, got {self.out}")
        if self.width is not None and self.height is not None:
            check_even(self.codec, self.width, self.height)

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def contact_sheet_path(self) -> Path:
        return self.out.with_name(f"{self.out.stem if self.out.suffix else self.out.name}.contact.png")

    def sized(self, native: int) -> ExportConfig:
        """This configuration with missing width / height set to the renderer's native size (then checked)."""
        return dataclasses.replace(self, width=self.width or native, height=self.height or native)


def check_even(codec: str, width: int, height: int) -> None:
    """Chroma-subsampled formats need even sizes: 4:2:0 both dimensions, 4:2:2 the width."""
    pixel_format = PIXEL_FORMATS[codec]
    odd_width, odd_height = width % 2, height % 2
    if pixel_format.startswith("yuv420") and (odd_width or odd_height):
        raise ValueError(f"size {width}x{height} has an odd side: codec {codec} ({pixel_format}) needs even width "
                         f"and height, e.g. {width + odd_width}x{height + odd_height}")
    if pixel_format.startswith("yuv422") and odd_width:
        raise ValueError(f"width {width} is odd: codec {codec} ({pixel_format}) needs an even width, "
                         f"e.g. {width + 1}")


# --------------------------------------------------------------------------------------------------------
# ffmpeg
# --------------------------------------------------------------------------------------------------------


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (no system ffmpeg needed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=8)
def available_encoders(ffmpeg: str) -> frozenset[str]:
    """Names of the video encoders this ffmpeg build has."""
    listing = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, check=False)
    names = set()
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] == "V":
            names.add(parts[1])
    return frozenset(names)


def check_encoder(codec: str, ffmpeg: str) -> None:
    encoder = ENCODERS.get(codec)
    if encoder is not None and encoder not in available_encoders(ffmpeg):
        raise ExportError(f"codec {codec} needs the ffmpeg encoder {encoder}, which {ffmpeg} does not have; "
                          f"choose another codec ({', '.join(c for c in CODECS if c != codec)})")


def rate(fps: float) -> str:
    """fps as an exact ffmpeg rational (29.97 -> 2997/100)."""
    fraction = Fraction(fps).limit_denominator(1001)
    return f"{fraction.numerator}/{fraction.denominator}"


def ffmpeg_command(ffmpeg: str, config: ExportConfig, target: Path) -> list[str]:
    """ffmpeg reading raw rgb24 frames on stdin and writing `target` with the configured codec."""
    frame_rate = rate(config.fps)
    command = [ffmpeg, "-hide_banner", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{config.width}x{config.height}",
               "-framerate", frame_rate, "-i", "pipe:0", "-an",
               # Convert with the BT.709 matrix and tag it so, so players show the colours that were rendered.
               "-vf", "scale=out_color_matrix=bt709:out_range=tv,"
                      "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv",
               "-c:v", ENCODERS[config.codec], "-pix_fmt", PIXEL_FORMATS[config.codec]]
    if config.codec in ("h264", "hevc"):
        command += ["-preset", config.preset]
        if config.bitrate is not None:
            command += ["-b:v", str(config.bitrate)]
        else:
            command += ["-crf", str(18 if config.crf is None else config.crf)]
    if config.codec == "hevc":
        command += ["-tag:v", "hvc1", "-x265-params", "log-level=error"]
    if config.codec == "prores":
        command += ["-profile:v", "2", "-vendor", "apl0"]
    suffix = target.suffix.lower()
    if suffix in (".mp4", ".mov"):
        command += ["-movflags", "+faststart"]
    command += ["-r", frame_rate, "-f", MUXERS[suffix], "-y", str(target)]
    return command


# --------------------------------------------------------------------------------------------------------
# Output checks and frame sinks
# --------------------------------------------------------------------------------------------------------


def check_output(config: ExportConfig, ffmpeg: str | None = None) -> None:
    """Everything that can be refused before rendering: existing output, folder, writability, encoder."""
    targets = [config.out] + ([config.contact_sheet_path] if config.contact_sheet else [])
    for target in targets:
        if (target.exists() or target.is_symlink()) and not config.overwrite:
            raise FileExistsError(f"{target} already exists; pass --overwrite to replace it")
        if target.is_dir() and target != config.out:
            raise ValueError(f"{target} is a folder; choose another output name")
    if config.codec == "png":
        if config.out.exists() and not _is_png_sequence(config.out):
            raise ValueError(f"{config.out} exists and is not a PNG sequence folder; refusing to replace it")
    elif config.out.is_dir():
        raise ValueError(f"{config.out} is a folder; give a file name ending in {EXTENSIONS[config.codec][0]}")
    folder = config.out.parent
    if not folder.exists():
        raise FileNotFoundError(f"output folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise ValueError(f"output folder {folder} is not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".masquerade-write-test-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"output folder {folder} is not writable ({error.strerror})") from None
    if config.codec != "png":
        check_encoder(config.codec, ffmpeg or ffmpeg_exe())


def _is_png_sequence(folder: Path) -> bool:
    return folder.is_dir() and all(re.fullmatch(r"frame_\d{6}\.png", p.name) for p in folder.iterdir())


def _publish(temporary: Path, mode: int) -> None:
    """Give a finished temporary (mkstemp makes 0600, mkdtemp 0700) the permissions a normal file would get."""
    os.chmod(temporary, mode & ~_UMASK)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STALE_PARTIAL_SECONDS = 6 * 3600  # a partial nobody has touched for this long is abandoned, whoever owns it


def partial_prefix(target: Path) -> str:
    """Hidden temporary name of `target` while it is written, with this process's id for stale clean-up."""
    return f".{target.name}.partial-{os.getpid()}-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_partials(target: Path, now: float | None = None) -> list[Path]:
    """Remove what killed exports of `target` left behind: only our own temporary names beside it, and only
    when the process that wrote one is gone or it has not been touched for STALE_PARTIAL_SECONDS (names from
    before the id was added, or a recycled id). Returns what was removed."""
    now = time.time() if now is None else now
    pattern = re.compile(rf"\.{re.escape(target.name)}\.partial-(?:(\d+)-)?[A-Za-z0-9_]+"
                         rf"{re.escape(target.suffix)}")
    removed = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink():
            continue
        try:
            idle = now - entry.lstat().st_mtime
        except OSError:
            continue
        owner = match.group(1)
        owner_gone = owner is not None and int(owner) != os.getpid() and not _process_alive(int(owner))
        if not (owner_gone or idle > STALE_PARTIAL_SECONDS):
            continue
        try:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as error:
            log.warning("could not remove %s left by an interrupted export: %s", entry, error)
            continue
        removed.append(entry)
    if removed:
        log.info("removed %d partial file(s) left by interrupted exports of %s", len(removed), target.name)
    return removed


def _disk_full_message(target: Path) -> str:
    return f"no space left on device while writing {target} (the partial file was removed)"


class FfmpegSink:
    """Raw RGB frames into an ffmpeg process writing a hidden temporary file beside the output."""

    def __init__(self, config: ExportConfig, ffmpeg: str):
        self.config = config
        out = config.out
        handle, temporary = tempfile.mkstemp(prefix=partial_prefix(out), suffix=out.suffix, dir=out.parent)
        os.close(handle)
        self.temporary = Path(temporary)
        self.stderr = tempfile.TemporaryFile()
        self.command = ffmpeg_command(ffmpeg, config, self.temporary)
        log.debug("ffmpeg: %s", " ".join(self.command))
        try:
            # Its own session: a terminal's Ctrl-C reaches only us, and we decide how ffmpeg stops.
            self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=self.stderr, start_new_session=True)
        except OSError as error:
            self.discard()
            raise ExportError(f"could not start {ffmpeg}: {error.strerror or error}") from None

    def ffmpeg_said(self) -> str:
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1] if lines else "no message"

    def failure(self, returncode: int | None) -> ExportError:
        said = self.ffmpeg_said()
        if "No space left" in said:
            return ExportError(_disk_full_message(self.config.out))
        return ExportError(f"ffmpeg failed writing {self.config.out} (exit {returncode}): {said}")

    def write(self, frame: np.ndarray) -> None:
        try:
            self.process.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except (BrokenPipeError, ValueError):
            try:
                returncode = self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                returncode = None
            raise self.failure(returncode) from None

    def finish(self) -> None:
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        returncode = self.process.wait()
        if returncode != 0:
            raise self.failure(returncode)
        _publish(self.temporary, 0o666)
        os.replace(self.temporary, self.config.out)
        self.stderr.close()

    def stop(self) -> None:
        """Kill ffmpeg (unblocks a writer stuck on the pipe)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        try:
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def discard(self) -> None:
        self.temporary.unlink(missing_ok=True)
        self.stderr.close()


class PngSink:
    """frame_000000.png ... in a hidden temporary folder, renamed into place when complete."""

    def __init__(self, config: ExportConfig):
        self.config = config
        out = config.out
        self.temporary = Path(tempfile.mkdtemp(prefix=partial_prefix(out), dir=out.parent))
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        from PIL import Image

        path = self.temporary / f"frame_{self.count:06d}.png"
        try:
            Image.fromarray(frame).save(path, compress_level=3)
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise ExportError(_disk_full_message(self.config.out)) from None
            raise ExportError(f"could not write {path.name} for {self.config.out}: {error.strerror or error}") from None
        self.count += 1

    def finish(self) -> None:
        out = self.config.out
        _publish(self.temporary, 0o777)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(self.temporary, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.temporary, out)

    def stop(self) -> None:
        pass

    def discard(self) -> None:
        shutil.rmtree(self.temporary, ignore_errors=True)


class FrameWriter:
    """A thread that fits rendered frames to the output size and feeds them to a sink, one batch queued ahead."""

    _END = object()

    def __init__(self, sink, transform):
        self.sink = sink
        self.transform = transform  # (frame index, rendered frame) -> output frame
        self.written = 0
        self.batches: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            batch = self.batches.get()
            if batch is self._END:
                return
            if self.error is not None or self.stopping.is_set():
                continue  # keep draining so the producer never blocks on a dead writer
            try:
                for frame in batch:
                    if self.stopping.is_set():
                        break
                    self.sink.write(self.transform(self.written, frame))
                    self.written += 1
            except BaseException as error:  # handed to the main thread, which raises it
                self.error = error

    def put(self, batch: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self.batches.put(batch)

    def close(self) -> None:
        """Wait for every queued frame, then finish the sink (rename into place)."""
        self.batches.put(self._END)
        self.thread.join()
        if self.error is not None:
            raise self.error
        self.sink.finish()

    def abort(self) -> None:
        """Stop now and remove every temporary file."""
        self.stopping.set()
        self.sink.stop()
        while True:
            try:
                self.batches.get_nowait()
            except queue.Empty:
                break
        self.batches.put(self._END)
        self.thread.join(timeout=60)
        self.sink.discard()


# --------------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------------


def fit_frame(frame: np.ndarray, width: int, height: int, fit: str) -> np.ndarray:
    """Resize a frame to exactly width x height: letterbox (bars) or fill (crop), the live display's geometry.

    INTER_AREA when shrinking, INTER_CUBIC when enlarging.
    """
    from installation.display import place

    frame_h, frame_w = frame.shape[:2]
    if (frame_w, frame_h) == (width, height):
        return frame
    placement = place((frame_w, frame_h), (width, height), fit)
    sx, sy, sw, sh = placement.source
    tx, ty, tw, th = placement.target
    source = frame[sy:sy + sh, sx:sx + sw]
    if (tw, th) != (sw, sh):
        interpolation = cv2.INTER_AREA if tw * th < sw * sh else cv2.INTER_CUBIC
        source = cv2.resize(source, (tw, th), interpolation=interpolation)
    if (tw, th) == (width, height):
        return np.ascontiguousarray(source)
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[ty:ty + th, tx:tx + tw] = source
    return canvas


def draw_caption(frame: np.ndarray, text: str) -> np.ndarray:
    """A one-line caption on a dark band at the bottom of the frame (Unicode, shrunk or shortened to fit)."""
    from PIL import Image, ImageDraw, ImageFont

    if not text:
        return frame
    height, width = frame.shape[:2]
    size = max(8, round(height / 28))
    font = ImageFont.load_default(size=size)
    margin = max(2, size // 2)
    while size > 8 and font.getlength(text) > width - 2 * margin:
        size -= 1
        font = ImageFont.load_default(size=size)
    while len(text) > 1 and font.getlength(text) > width - 2 * margin:
        text = text[:-2] + "\u2026"
    band = size + 2 * margin
    image = Image.fromarray(frame)
    image.paste(Image.fromarray((frame[height - band:] * 0.4).astype(np.uint8)), (0, height - band))
    ImageDraw.Draw(image).text((margin, height - band + margin), text, font=font, fill=(240, 236, 228))
    return np.asarray(image)


def load_captioner(bundle, backend: str = "tf"):
    """The provenance hook: callable(frame) -> one-line caption, from `installation.provenance.open_captioner`.

    Kept small on purpose: the provenance module owns look-ups; the export only draws the text it returns.
    """
    if "index" not in bundle.manifest:
        raise ValueError("captions need a bundle with a provenance index")
    try:
        from installation.provenance import open_captioner
    except ImportError:
        raise ValueError("captions need a bundle with a provenance index, and installation.provenance "
                         "to read it") from None
    captioner = open_captioner(bundle.path, bundle.manifest, backend=backend, threads=bundle.threads)
    if captioner is None:
        raise ValueError("captions need a bundle with a provenance index and an extractor this machine can run "
                         "(see the warning above)")
    return lambda frame: captioner.caption_for(frame).text()


def contact_tile_size(count: int, width: int, height: int) -> tuple[int, int]:
    """Tile size for `count` frames of width x height: at most 256 px wide, the sheet at most 4096 px wide."""
    columns = math.ceil(math.sqrt(count))
    tile_w = min(width, CONTACT_TILE_MAX, CONTACT_SHEET_MAX // columns)
    return tile_w, max(1, round(height * tile_w / width))


def contact_sheet(tiles: np.ndarray, labels: list[str]) -> np.ndarray:
    """Tile same-sized images in a near-square grid, row by row, with a label in each tile's corner."""
    count, tile_h, tile_w = tiles.shape[:3]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    gap = 4
    sheet = np.full((rows * (tile_h + gap) + gap, columns * (tile_w + gap) + gap, 3), 24, np.uint8)
    for index, (tile, label) in enumerate(zip(tiles, labels, strict=True)):
        tile = tile.copy()
        cv2.putText(tile, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        row, column = divmod(index, columns)
        y, x = gap + row * (tile_h + gap), gap + column * (tile_w + gap)
        sheet[y:y + tile_h, x:x + tile_w] = tile
    return sheet


def write_png_atomic(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    handle, temporary = tempfile.mkstemp(prefix=partial_prefix(path), suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        Image.fromarray(image).save(temporary)
        _publish(Path(temporary), 0o666)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise ExportError(_disk_full_message(path)) from None
        raise


# --------------------------------------------------------------------------------------------------------
# The export
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    path: Path
    frames: int
    width: int
    height: int
    seconds: float  # wall-clock time the export took
    contact_sheet: Path | None = None
    contact_sheet_error: str | None = None  # why an asked-for contact sheet was not written (the video was)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def export_loop(config: ExportConfig, renderer, walk: WalkConfig, *, ffmpeg: str | None = None,
                captioner=None) -> ExportResult:
    """Render the seamless loop of `walk` (mode "loop") and write it as `config` says.

    `renderer` is a `models.render.Renderer`. `captioner`: optional callable(frame) -> text (see
    `load_captioner`); it captions the K keyframes, and each frame shows the caption of its nearest keyframe
    (a look-up per frame would flicker, and cost a feature extraction per frame).
    Raises ValueError / FileExistsError / ExportError before anything is written when the output is refused;
    on any failure or interruption nothing is left behind under the final names.
    """
    if walk.mode != "loop":
        raise ValueError(f"the export walks a closed loop: WalkConfig mode must be 'loop', got {walk.mode!r}")
    config = config.sized(renderer.output_size(config.upscale))
    check_even(config.codec, config.width, config.height)
    ffmpeg = ffmpeg or (None if config.codec == "png" else ffmpeg_exe())
    check_output(config, ffmpeg)
    started = time.monotonic()
    remove_stale_partials(config.out)
    if config.contact_sheet:
        remove_stale_partials(config.contact_sheet_path)
    times = loop_times(walk, config.seconds, config.fps)
    captions, sheet = keyframe_pass(config, renderer, walk, captioner)

    def transform(index: int, frame: np.ndarray) -> np.ndarray:
        fitted = fit_frame(frame, config.width, config.height, config.fit)
        if captions is None:
            return fitted
        return draw_caption(fitted, captions[round(index * len(captions) / len(times)) % len(captions)])

    from tqdm import tqdm

    bar = tqdm(total=len(times), unit="frame", desc=config.out.name, disable=not config.progress,
               file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    sink = writer = None
    try:
        sink = PngSink(config) if config.codec == "png" else FfmpegSink(config, ffmpeg)
        writer = FrameWriter(sink, transform)
        for start in range(0, len(times), config.batch):
            chunk = times[start:start + config.batch]
            writer.put(renderer.render(walk_batch(walk, chunk), upscale=config.upscale))
            bar.update(len(chunk))
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        elif sink is not None:
            sink.stop()
            sink.discard()
        raise
    finally:
        bar.close()
    sheet_error = None
    if sheet is not None:
        # The video is written by now: a sheet that cannot be (full disk) is reported, and the video kept.
        try:
            write_png_atomic(config.contact_sheet_path, sheet)
        except (OSError, ExportError) as error:
            sheet_error = str(error) if isinstance(error, ExportError) else \
                f"could not write {config.contact_sheet_path}: {error.strerror or error}"
            log.warning("contact sheet not written: %s", sheet_error)
    return ExportResult(config.out, len(times), config.width, config.height, time.monotonic() - started,
                        config.contact_sheet_path if sheet is not None and sheet_error is None else None,
                        sheet_error)


def keyframe_times(walk: WalkConfig) -> np.ndarray:
    """Walk times of the loop's K keyframes: i * seconds_per_keyframe."""
    return np.arange(walk.loop_keyframes, dtype=np.float64) * walk.seconds_per_keyframe


def keyframe_pass(config: ExportConfig, renderer, walk: WalkConfig, captioner=None):
    """(captions, contact sheet) from one render of the K keyframes, in batches; each None when not asked for.

    The sheet shows the keyframes as the video does (fitted to its size), labelled with index and video time.
    """
    if captioner is None and not config.contact_sheet:
        return None, None
    times = keyframe_times(walk)
    tile_w, tile_h = contact_tile_size(len(times), config.width, config.height)
    captions, tiles = [], []
    for start in range(0, len(times), config.batch):
        for frame in renderer.render(walk_batch(walk, times[start:start + config.batch]), upscale=config.upscale):
            if captioner is not None:
                captions.append(captioner(frame))
            if config.contact_sheet:
                fitted = fit_frame(frame, config.width, config.height, config.fit)
                tiles.append(fit_frame(fitted, tile_w, tile_h, "fill"))
    sheet = None
    if config.contact_sheet:
        video_seconds = times / loop_period(walk) * config.seconds
        sheet = contact_sheet(np.stack(tiles), [f"#{i}  {t:.2f}s" for i, t in enumerate(video_seconds)])
    return (captions if captioner is not None else None), sheet


# --------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_installation.py export",
        description="Render one seamless loop of the piece offline to a video file or a PNG sequence. "
                    "--seconds sets the speed: the K keyframes of the loop span exactly that long.")
    parser.add_argument("--out", required=True, help="output file (.mp4, .mov, .mkv) or folder (PNG sequence)")
    parser.add_argument("--seconds", type=float, default=60.0, help="loop length in seconds (default 60)")
    parser.add_argument("--fps", type=float, default=30.0, help=f"frame rate {MIN_FPS:g}..{MAX_FPS:g} (default 30)")
    parser.add_argument("--size", type=int, help="square output size (default: the model's render size)")
    parser.add_argument("--width", type=int, help="output width (default --size)")
    parser.add_argument("--height", type=int, help="output height (default --size)")
    parser.add_argument("--fit", help="letterbox (bars) | fill (crop); default from the config")
    parser.add_argument("--keyframes", type=int, help="keyframes in the loop (default: loop_keyframes)")
    parser.add_argument("--seed", type=int, help="seed of the keyframes (default: the config's seed)")
    parser.add_argument("--easing", help="easing between keyframes (default from the config)")
    parser.add_argument("--truncation", type=float, help="truncation 0..2 (default from the config)")
    parser.add_argument("--upscale", action=argparse.BooleanOptionalAction, default=None,
                        help="use the bundle's upscaler (default from the config)")
    parser.add_argument("--config", help="TOML settings file of the live piece (walk, model, fit)")
    parser.add_argument("--model", help="model bundle folder (default from the config)")
    parser.add_argument("--codec", help="h264 | hevc | prores | png (default from --out: .mp4 h264, .mov prores, "
                                        "folder png)")
    quality = parser.add_mutually_exclusive_group()
    quality.add_argument("--crf", type=int, help="h264 / hevc constant quality 0..51 (default 18; lower is better)")
    quality.add_argument("--bitrate", help="h264 / hevc target bitrate instead of CRF, e.g. 8M")
    parser.add_argument("--preset", default="faster",
                        help=f"x264 / x265 speed preset ({' | '.join(PRESETS)}; default faster)")
    parser.add_argument("--batch", type=int, default=8, help=f"frames rendered per call 1..{MAX_BATCH}")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--contact-sheet", action="store_true", help="also write OUT.contact.png of the keyframes")
    parser.add_argument("--captions", action="store_true", help="draw provenance captions (needs a provenance index)")
    parser.add_argument("--backend", choices=("auto", "litert", "tf"),
                        help="inference engine (default auto: LiteRT when the bundle has LiteRT files)")
    parser.add_argument("--threads", type=int, help="LiteRT CPU threads (0 = one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def resolve(args: argparse.Namespace):
    """(RuntimeConfig, ExportConfig) from the flags, the TOML file and the defaults; raises ValueError."""

    values = runtime_config.read_toml(args.config) if args.config else {}
    overrides = {"model": args.model, "seed": args.seed, "loop_keyframes": args.keyframes, "easing": args.easing,
                 "truncation": args.truncation, "upscale": args.upscale, "fit": args.fit, "backend": args.backend,
                 "threads": args.threads}
    values.update({name: value for name, value in overrides.items() if value is not None})
    values["mode"] = "loop"
    runtime = runtime_config.RuntimeConfig(**values)
    out = Path(args.out)
    codec = args.codec
    if codec is None:
        codec = DEFAULT_CODEC_FOR.get(out.suffix.lower())
        if codec is None:
            raise ValueError(f"cannot tell the codec from {out.name}: use .mp4 / .mov / .mkv, a folder name for "
                             f"PNGs, or --codec {' | '.join(CODECS)}")
    export = ExportConfig(out=out, seconds=args.seconds, fps=args.fps, width=args.width or args.size,
                          height=args.height or args.size, codec=codec, crf=args.crf, bitrate=args.bitrate,
                          preset=args.preset, fit=runtime.fit, upscale=runtime.upscale, overwrite=args.overwrite,
                          contact_sheet=args.contact_sheet, captions=args.captions, progress=not args.no_progress,
                          batch=args.batch)
    return runtime, export


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(message)s")

    def on_signal(signum, frame):
        # A second Ctrl-C must not interrupt the clean-up the first one started.
        for other in STOP_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        raise ExportInterrupted(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        runtime, config = resolve(args)
        # Refuse what can be refused before loading the model and rendering anything.
        check_output(config, None if config.codec == "png" else ffmpeg_exe())
        from models.bundle import load_bundle
        from models.render import Renderer

        bundle = load_bundle(runtime.model, with_upscaler=runtime.upscale, backend=runtime.backend,
                             threads=runtime.threads)
        captioner = load_captioner(bundle, runtime.backend) if config.captions else None
        walk = runtime_config.walk_config(runtime, bundle.latent_dim)
        renderer = Renderer(bundle, max_batch=config.batch)
        log.info("exporting %d frames (%g s at %g fps, %d keyframes, seed %d) to %s", config.frames,
                 config.seconds, config.fps, walk.loop_keyframes, walk.seed, config.out)
        result = export_loop(config, renderer, walk, captioner=captioner)
    except ExportInterrupted as interrupt:
        print(f"interrupted by {interrupt}: export stopped, nothing written to {args.out}", file=sys.stderr)
        return 128 + interrupt.signum
    except KeyboardInterrupt:
        print(f"interrupted: export stopped, nothing written to {args.out}", file=sys.stderr)
        return 128 + signal.SIGINT
    except (ValueError, FileNotFoundError, FileExistsError, ExportError) as error:
        for line in error_lines(error):
            print(f"error: {line}", file=sys.stderr)
        return 2
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(f"wrote {result.path}: {result.frames} frames {result.width}x{result.height}, {config.seconds:g} s at "
          f"{config.fps:g} fps, in {result.seconds:.1f} s ({result.frames_per_second:.1f} frames/s)"
          + (f"; contact sheet {result.contact_sheet}" if result.contact_sheet else ""))
    if result.contact_sheet_error:
        print(f"warning: contact sheet not written ({result.contact_sheet_error}); the video is complete",
              file=sys.stderr)
    return 0
