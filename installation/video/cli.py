"""`run_installation.py export`: flags -> (RuntimeConfig, ExportConfig) -> one export, one line on success or
failure, and an exit status a script can act on (see the package's docstring)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from installation import config as runtime_config
from installation.video.ffmpeg import ffmpeg_exe
from installation.video.loop import export_loop, load_captioner
from installation.video.settings import (
    CODECS,
    DEFAULT_CODEC_FOR,
    MAX_BATCH,
    MAX_FPS,
    MIN_FPS,
    PRESETS,
    ExportConfig,
    ExportError,
)
from installation.video.writers import check_output
from models.bundle import load_bundle
from models.manifest import error_lines
from models.render import Renderer

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ExportInterrupted(BaseException):
    # A BaseException, as KeyboardInterrupt is: a signal handler raises it wherever the main thread happens to
    # be, and an `except Exception` on the way (a backend fallback, a retry) must not swallow it.
    """SIGINT, SIGTERM or SIGHUP arrived during an export (raised by the CLI's signal handler)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


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
    parser.add_argument("--preset", default=ExportConfig.preset,
                        help=f"x264 / x265 speed preset ({' | '.join(PRESETS)}; default {ExportConfig.preset})")
    parser.add_argument("--batch", type=int, default=8, help=f"frames rendered per call 1..{MAX_BATCH}")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--contact-sheet", action="store_true", help="also write OUT.contact.png of the keyframes")
    parser.add_argument("--captions", action="store_true", help="draw provenance captions (needs a provenance index)")
    parser.add_argument("--backend", choices=("auto", "litert", "tf"),
                        help="inference engine (default auto: LiteRT when the bundle has LiteRT files)")
    parser.add_argument("--threads", type=int, help="LiteRT CPU threads (0 = one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[runtime_config.RuntimeConfig, ExportConfig]:
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
