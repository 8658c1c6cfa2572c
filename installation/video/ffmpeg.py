"""The bundled ffmpeg: where it is, which encoders it has, and the command line that encodes raw RGB frames."""

from __future__ import annotations

import functools
import subprocess
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg

from installation.video.settings import CODECS, ENCODERS, MUXERS, PIXEL_FORMATS, ExportConfig, ExportError


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (no system ffmpeg needed)."""
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
