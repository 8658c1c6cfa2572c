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


COLOUR_TAGS = "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"


def fit_filter(config: ExportConfig, source_size: tuple[int, int]) -> str:
    """The ffmpeg filter that fits `source_size` frames to the output as `fit_frame` does (the display's
    `place` geometry), converting to the codec's pixel format before the bars are added.

    Fitting inside ffmpeg spares the pipe and the colour conversion the bars: at 1920x1080 from a 512 px
    render that is a quarter of the export's CPU (bench/README.md, "Export at 1080p").
    """
    from installation.display import place

    placement = place(source_size, (config.width, config.height), config.fit)
    source_x, source_y, source_w, source_h = placement.source
    target_x, target_y, target_w, target_h = placement.target
    steps = []
    if (source_w, source_h) != tuple(source_size):
        steps.append(f"crop={source_w}:{source_h}:{source_x}:{source_y}")
    flags = "area" if target_w * target_h < source_w * source_h else "bicubic"
    steps.append(f"scale={target_w}:{target_h}:flags={flags}:out_color_matrix=bt709:out_range=tv")
    steps.append(f"format={PIXEL_FORMATS[config.codec]}")
    if (target_w, target_h) != (config.width, config.height):
        steps.append(f"pad={config.width}:{config.height}:{target_x}:{target_y}:color=black")
    return ",".join([*steps, COLOUR_TAGS])


def ffmpeg_command(ffmpeg: str, config: ExportConfig, target: Path,
                   source_size: tuple[int, int] | None = None) -> list[str]:
    """ffmpeg reading raw rgb24 frames on stdin and writing `target` with the configured codec.

    `source_size`: the frames come at this size and ffmpeg fits them to the output (see `fit_filter`);
    None: they come fitted already.
    """
    frame_rate = rate(config.fps)
    width, height = source_size or (config.width, config.height)
    # Convert with the BT.709 matrix and tag it so, so players show the colours that were rendered.
    colour = fit_filter(config, source_size) if source_size else \
        f"scale=out_color_matrix=bt709:out_range=tv,{COLOUR_TAGS}"
    command = [ffmpeg, "-hide_banner", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-framerate", frame_rate, "-i", "pipe:0", "-an", "-vf", colour,
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
