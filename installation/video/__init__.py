"""Offline export of one seamless loop: walk -> `Renderer.render` -> fit to W x H -> ffmpeg (or PNG files).

The export walks the live piece's path in loop mode: K seeded keyframes, the piece's easing and truncation,
frame ``i`` of ``n = round(seconds * fps)`` at walk time ``i / n * K * seconds_per_keyframe`` (see
`latent.loop_times`). The frame after the last is the first, so the file plays as an endless loop.
``seconds`` sets the speed: one loop of K keyframes spans exactly ``seconds``, so each keyframe-to-keyframe
glide lasts ``seconds / K`` (the configured ``seconds_per_keyframe`` only scales walk time and cancels out).

Frames are rendered in batches and streamed to the bundled ffmpeg as raw RGB on its stdin from a writer
thread (rendering and encoding overlap; memory stays flat whatever the length). The file is written under a
hidden temporary name in the destination folder and renamed into place only after ffmpeg exited cleanly,
so a crash, Ctrl-C or full disk never leaves a truncated file under the final name.

Exit status: 0 written (a contact sheet that could not be written is reported on stderr; the video is kept),
2 refused or failed with one line saying why (nothing left behind), 128 + N stopped by signal N (SIGINT,
SIGTERM, SIGHUP; nothing left behind).

    python run_installation.py export --out loop.mp4 --seconds 60 --fps 30 --size 512 --keyframes 8 --seed 3

Modules, in the order a frame meets them:
  settings   ExportConfig (validated), codecs and limits, ExportError
  loop       export_loop: the keyframe pass (captions, contact sheet) and the frame loop on the one render path
  finishing  fit_frame (the display's letterbox / fill), draw_caption, the keyframe contact sheet
  writers    refusals before rendering, ffmpeg and PNG-folder sinks, the writer thread, partial-file clean-up
  ffmpeg     the bundled binary, its encoders, the encoding command line
  cli        flags -> configs -> one export, exit status (also `python -m installation.video`)
"""

from installation.video.cli import STOP_SIGNALS, ExportInterrupted, main, parse_args, resolve
from installation.video.ffmpeg import available_encoders, check_encoder, ffmpeg_command, ffmpeg_exe, rate
from installation.video.finishing import contact_sheet, contact_tile_size, draw_caption, fit_frame
from installation.video.loop import ExportResult, export_loop, keyframe_pass, keyframe_times, load_captioner
from installation.video.settings import (
    CODECS,
    FITS,
    PRESETS,
    ExportConfig,
    ExportError,
    check_even,
)
from installation.video.writers import (
    STALE_PARTIAL_SECONDS,
    FfmpegSink,
    FrameWriter,
    PngSink,
    check_output,
    partial_prefix,
    remove_stale_partials,
    write_png_atomic,
)

__all__ = [
    "CODECS", "FITS", "PRESETS", "STALE_PARTIAL_SECONDS", "STOP_SIGNALS",
    "ExportConfig", "ExportError", "ExportInterrupted", "ExportResult", "FfmpegSink", "FrameWriter", "PngSink",
    "available_encoders", "check_encoder", "check_even", "check_output", "contact_sheet", "contact_tile_size",
    "draw_caption", "export_loop", "ffmpeg_command", "ffmpeg_exe", "fit_frame", "keyframe_pass", "keyframe_times",
    "load_captioner", "main", "parse_args", "partial_prefix", "rate", "remove_stale_partials", "resolve",
    "write_png_atomic",
]
