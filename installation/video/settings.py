"""What an export is asked to write: the validated `ExportConfig`, the codecs and limits it allows, and the error
an export raises for a reason the user can act on."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

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


class ExportError(RuntimeError):
    """An export failed for a reason the user can act on (full disk, missing encoder); the message says which."""


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
    # "veryfast" keeps a 1920x1080 export of the 512 px flagship at real time on 2 cores (1.1x, against "faster"
    # 0.8x) for 0.2 dB of luma PSNR at CRF 18 and files 1 % larger (bench/export_screen.py, bench/README.md);
    # "medium" or "slow" make smaller files when time is free.
    preset: str = "veryfast"
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
