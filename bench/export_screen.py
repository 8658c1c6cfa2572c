"""Real time of a screen-sized export of a real bundle: ffmpeg fitting the frames against Python fitting them.

`run_installation.py export` at 1920x1080 renders 512 px frames (the flagship) and fits them to the screen.
Fitting in Python (`fit_frame`, then 6 MB of RGB per frame through the pipe, then ffmpeg's colour conversion
of bars included) is the baseline, run in the same process on the same frames; the export fits inside ffmpeg
(`fit_filter`: crop, scale, convert, then pad) unless it draws captions. Both run the one render path.

    python bench/export_screen.py [--model assets/models/default] [--width 1920 --height 1080] [--seconds 10]
                                  [--presets veryfast,faster]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.export_speed import measure  # noqa: E402
from installation import video as exporter  # noqa: E402
from installation.latent import WalkConfig, loop_times, walk_batch  # noqa: E402
from models.bundle import load_bundle  # noqa: E402
from models.render import Renderer  # noqa: E402

DEFAULT_PRESET = next(f.default for f in dataclasses.fields(exporter.ExportConfig) if f.name == "preset")


def fit_in_python(config: exporter.ExportConfig, renderer: Renderer, walk: WalkConfig) -> None:
    """The baseline: every frame fitted to the screen in Python, then piped whole."""
    times = loop_times(walk, config.seconds, config.fps)
    sink = exporter.FfmpegSink(config, exporter.ffmpeg_exe())
    writer = exporter.FrameWriter(sink, lambda index, frame: exporter.fit_frame(frame, config.width, config.height,
                                                                               config.fit))
    for start in range(0, len(times), config.batch):
        writer.put(renderer.render(walk_batch(walk, times[start:start + config.batch])))
    writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="assets/models/default")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--presets", default=f"{DEFAULT_PRESET},faster")
    args = parser.parse_args()
    bundle = load_bundle(args.model)
    renderer = Renderer(bundle, max_batch=8)
    walk = WalkConfig(mode="loop", seed=0, latent_dim=bundle.latent_dim, loop_keyframes=8)
    renderer.render(walk_batch(walk, loop_times(walk, 1.0, args.fps)[:8]))  # first-call costs out of the figures
    print(f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}); {args.model} renders "
          f"{renderer.output_size()} px; {args.width}x{args.height}, {args.seconds:g} s at {args.fps:g} fps")
    with tempfile.TemporaryDirectory() as scratch:
        for preset in dict.fromkeys(args.presets.split(",")):
            timings = {}
            for name, run in (("fit in Python (baseline)", fit_in_python), ("fit in ffmpeg (export)", None)):
                config = exporter.ExportConfig(out=Path(scratch) / f"{preset}-{bool(run)}.mp4", seconds=args.seconds,
                                               fps=args.fps, width=args.width, height=args.height, preset=preset,
                                               progress=False)
                timings[name] = measure(run or exporter.export_loop, config, renderer, walk)
                wall, cpu = timings[name]
                print(f"  libx264 {preset:<9} {name:<26} {args.seconds / wall:5.2f}x real time, "
                      f"{1000 * cpu / (args.seconds * args.fps):5.1f} ms CPU/frame, "
                      f"{config.out.stat().st_size / 1e6:4.1f} MB")
            baseline, ours = timings.values()
            print(f"  libx264 {preset}: fitting in ffmpeg takes {ours[0] / baseline[0]:.2f}x the wall time and "
                  f"{ours[1] / baseline[1]:.2f}x the CPU of fitting in Python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
