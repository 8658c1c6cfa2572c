"""The seamless-loop export: walk -> `Renderer.render` (the one render path) -> finish -> writer thread -> file.

Frame ``i`` of ``n = round(seconds * fps)`` shows walk time ``i / n * K * seconds_per_keyframe`` (see
`latent.loop_times`); the frame after the last is the first, so the file plays as an endless loop.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from installation.latent import WalkConfig, loop_period, loop_times, walk_batch
from installation.provenance import open_captioner
from installation.video.ffmpeg import ffmpeg_exe
from installation.video.finishing import contact_sheet, contact_tile_size, draw_caption, fit_frame
from installation.video.settings import ExportConfig, ExportError, check_even
from installation.video.writers import (
    FfmpegSink,
    FrameWriter,
    PngSink,
    check_output,
    remove_stale_partials,
    write_png_atomic,
)

log = logging.getLogger(__name__)


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
                captioner: Callable[[np.ndarray], str] | None = None) -> ExportResult:
    """Render the seamless loop of `walk` (mode "loop") and write it as `config` says.

    `renderer` is a `models.render.Renderer`. `captioner`: optional callable(frame) -> text (see
    `load_captioner`); it captions the K keyframes, and each frame shows the caption of its nearest keyframe
    (a look-up per frame would flicker, and cost a feature extraction per frame).
    Raises ValueError / FileExistsError / ExportError before anything is written when the output is refused;
    on any failure or interruption nothing is left behind under the final names.
    """
    if walk.mode != "loop":
        raise ValueError(f"the export walks a closed loop: WalkConfig mode must be 'loop', got {walk.mode!r}")
    native = renderer.output_size(config.upscale)
    config = config.sized(native)
    check_even(config.codec, config.width, config.height)
    ffmpeg = ffmpeg or (None if config.codec == "png" else ffmpeg_exe())
    check_output(config, ffmpeg)
    started = time.monotonic()
    remove_stale_partials(config.out)
    if config.contact_sheet:
        remove_stale_partials(config.contact_sheet_path)
    times = loop_times(walk, config.seconds, config.fps)
    captions, sheet = keyframe_pass(config, renderer, walk, captioner)

    rendered_size = (native, native)
    # Without captions to draw at the output size, ffmpeg fits the frames itself (cheaper; same geometry).
    fit_in_ffmpeg = captions is None and config.codec != "png" and rendered_size != (config.width, config.height)

    def transform(index: int, frame: np.ndarray) -> np.ndarray:
        if fit_in_ffmpeg:
            return frame
        fitted = fit_frame(frame, config.width, config.height, config.fit)
        if captions is None:
            return fitted
        return draw_caption(fitted, captions[round(index * len(captions) / len(times)) % len(captions)])

    bar = tqdm(total=len(times), unit="frame", desc=config.out.name, disable=not config.progress,
               file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    sink = writer = None
    try:
        sink = PngSink(config) if config.codec == "png" else \
            FfmpegSink(config, ffmpeg, rendered_size if fit_in_ffmpeg else None)
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


def load_captioner(bundle, backend: str = "tf") -> Callable[[np.ndarray], str]:
    """The provenance hook: callable(frame) -> one-line caption, from `installation.provenance.open_captioner`.

    Kept small on purpose: the provenance module owns look-ups; the export only draws the text it returns.
    """
    if "index" not in bundle.manifest:
        raise ValueError("captions need a bundle with a provenance index")
    captioner = open_captioner(bundle.path, bundle.manifest, backend=backend, threads=bundle.threads)
    if captioner is None:
        raise ValueError("captions need a bundle with a provenance index and an extractor this machine can run "
                         "(see the warning above)")
    return lambda frame: captioner.caption_for(frame).text()
