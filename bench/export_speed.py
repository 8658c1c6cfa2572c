"""Frames per second of a 512 x 512 loop export, against real time (30 fps) and against cv2.VideoWriter (mp4v).

cv2.VideoWriter with the mp4v fourcc is what popular live GAN tools write video with. Two comparisons, in one run:

  encoder only  the same pre-rendered 512 x 512 frames written (a) through our ffmpeg pipe (libx264, CRF 18,
                a few presets, the export's default first) and (b) through cv2.VideoWriter mp4v; the quality of
                each file is reported as PSNR against the frames that went in (decoded by the bundled ffmpeg),
                since a fast encoder that throws detail away is no bargain.
  end to end    `export_loop` (walk -> Renderer.render -> fit -> writer thread -> ffmpeg) for two bundles, and
                the same render + fit loop written synchronously through cv2.VideoWriter for the first.

Bundles: untrained, with He-initialised generator kernels. (DCGAN's own N(0, 0.02) initialisation renders a
flat grey that x264 encodes far faster than any real piece; He weights give textured, moving frames, a
pessimistic stand-in for a trained model. The network's speed does not depend on the weight values.)
  64px+x4   the training defaults, i.e. what the live piece runs: DCGAN 64 px (width 1.0) + real-time x4
            upscaler (16 filters, 3 layers) -> 256 px, resized to 512 with INTER_CUBIC by the export
  128px+x4  DCGAN 128 px (width 0.25) + the same upscaler -> 512 px natively

Wall-clock rates need an otherwise idle machine; the CPU ms/frame column (and the ceiling it implies, cores x
frames / CPU seconds) holds on a busy one. 1x real time on 2 cores needs at most 67 ms of CPU per frame.

    python bench/export_speed.py [--frames 150] [--presets faster,medium,veryfast]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from installation import video as exporter  # noqa: E402
from installation.latent import WalkConfig, loop_times, walk_batch  # noqa: E402
from models import bundle, dcgan, srgan  # noqa: E402
from models.render import Renderer  # noqa: E402
from tests.support import he_initialise  # noqa: E402

SIZE = 512
FPS = 30.0
BUNDLES = {"64px+x4": (64, 1.0), "128px+x4": (128, 0.25)}
DEFAULT_PRESET = next(f.default for f in dataclasses.fields(exporter.ExportConfig) if f.name == "preset")


def make_bundle(path: Path, resolution: int, width_multiplier: float) -> Path:
    generator = dcgan.generator(resolution, width_multiplier=width_multiplier)
    he_initialise(generator)
    bundle.save_model(path, "generator.keras", generator)
    bundle.update_manifest(path, "generator", {"file": "generator.keras", "architecture": "dcgan",
                                               "resolution": resolution, "latent_dim": 100,
                                               "width_multiplier": width_multiplier, "steps": 0})
    upscaler = srgan.realtime_upscaler()
    bundle.save_model(path, "upscaler.keras", upscaler)
    bundle.update_manifest(path, "upscaler", {"file": "upscaler.keras", "architecture": "realtime", "scale": 4,
                                              "input_size": resolution, "output_size": resolution * 4})
    return path


def decode(path: Path) -> np.ndarray:
    raw = subprocess.run([exporter.ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, SIZE, SIZE, 3)


def psnr(decoded: np.ndarray, original: np.ndarray) -> float:
    """Luma PSNR (BT.709 weights): both encoders subsample chroma 4:2:0, which would dominate an RGB PSNR."""
    if len(decoded) != len(original):
        return float("nan")
    weights = np.array([0.2126, 0.7152, 0.0722])
    mse = np.mean((decoded.astype(np.float64) @ weights - original.astype(np.float64) @ weights) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def write_ffmpeg(frames: np.ndarray, path: Path, preset: str) -> None:
    config = exporter.ExportConfig(out=path, seconds=len(frames) / FPS, fps=FPS, width=SIZE, height=SIZE,
                                   preset=preset, progress=False)
    sink = exporter.FfmpegSink(config, exporter.ffmpeg_exe())
    try:
        for frame in frames:
            sink.write(frame)
        sink.finish()
    except BaseException:
        sink.stop()
        sink.discard()
        raise


def open_mp4v(path: Path) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (SIZE, SIZE))
    if not writer.isOpened():
        raise RuntimeError("cv2.VideoWriter could not open an mp4v writer")
    return writer


def write_mp4v(frames: np.ndarray, path: Path) -> None:
    writer = open_mp4v(path)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def measure(function, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its finished children) of one call.

    CPU time is the figure that survives a busy machine: 1x real time on 2 cores needs at most
    2 / 30 s = 67 ms of CPU per frame, render and encode together, if both cores are kept busy.
    """
    before, children_before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    function(*args)
    wall = time.perf_counter() - started
    after, children_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(b, field) - getattr(a, field) for a, b in ((before, after), (children_before, children_after))
              for field in ("ru_utime", "ru_stime"))
    return wall, cpu


def line(name: str, frames: int, timing: tuple[float, float], extra: str = "") -> str:
    """Measured rate, and the CPU-bound ceiling: what the CPU per frame allows if every core were ours."""
    wall, cpu = timing
    fps = frames / wall
    ceiling = (os.cpu_count() or 1) * frames / cpu / FPS
    return (f"  {name:<44} {fps:6.1f} frames/s {fps / FPS:5.2f}x real time | {1000 * cpu / frames:5.1f} ms CPU/frame, "
            f"ceiling {ceiling:5.2f}x{extra}")


def render_frames(renderer, walk, times) -> np.ndarray:
    return np.stack([exporter.fit_frame(frame, SIZE, SIZE, "letterbox")
                     for start in range(0, len(times), 8)
                     for frame in renderer.render(walk_batch(walk, times[start:start + 8]))])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames per measurement (default 150 = 5 s)")
    parser.add_argument("--presets", default=f"{DEFAULT_PRESET},medium,veryfast",
                        help=f"x264 presets to measure; the first is used end to end (default: the export's "
                             f"default {DEFAULT_PRESET}, then medium and veryfast)")
    args = parser.parse_args()
    presets = list(dict.fromkeys(args.presets.split(",")))
    import tensorflow as tf

    print(f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}), TensorFlow {tf.__version__}, "
          f"OpenCV {cv2.__version__}, {SIZE}x{SIZE} at {FPS:g} fps, {args.frames} frames per measurement")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        renderers = {}
        for name, (resolution, width) in BUNDLES.items():
            renderers[name] = Renderer(bundle.load_bundle(make_bundle(scratch / name, resolution, width)), max_batch=8)
        live = next(iter(renderers))
        walk = WalkConfig(mode="loop", seed=0, latent_dim=100, loop_keyframes=8)
        times = loop_times(walk, args.frames / FPS, FPS)
        for renderer in renderers.values():
            # Every batch size the measurements use (8 and the remainder) once, so first-call costs stay out.
            for count in {8, len(times) % 8 or 8}:
                renderer.render(walk_batch(walk, times[:count]))

        print("render only (Renderer.render in batches of 8, fit to 512x512):")
        rendered = {}
        for name, renderer in renderers.items():
            timing = measure(lambda n=name, r=renderer: rendered.__setitem__(n, render_frames(r, walk, times)))
            print(line(name, len(times), timing))
        frames = rendered.pop(live)
        rendered.clear()

        print(f"encoder only (the same pre-rendered {live} frames; PSNR on luma against them):")
        runs = [("cv2.VideoWriter mp4v", scratch / "mp4v.mp4", write_mp4v, ())]
        runs += [(f"ffmpeg pipe libx264 CRF 18 {preset}", scratch / f"x264-{preset}.mp4", write_ffmpeg, (preset,))
                 for preset in presets]
        timings = {}
        for name, path, writer, extra in runs:
            timings[name] = measure(writer, frames, path, *extra)
            quality = f"  PSNR {psnr(decode(path), frames):5.1f} dB {path.stat().st_size / 1024:6.0f} KiB"
            print(line(name, len(frames), timings[name], quality))
        del frames

        print("end to end (walk -> render -> fit -> encode):")
        cases = [(name, presets[0]) for name in renderers] + [(live, preset) for preset in presets[1:]]
        for name, preset in cases:
            config = exporter.ExportConfig(out=scratch / f"{name}-{preset}.mp4", seconds=args.frames / FPS,
                                           fps=FPS, width=SIZE, height=SIZE, preset=preset, progress=False)
            timings[name, preset] = measure(exporter.export_loop, config, renderers[name], walk)
            print(line(f"export_loop {name} (libx264 {preset})", len(times), timings[name, preset]))

        def render_to_mp4v() -> None:
            writer = open_mp4v(scratch / "e2e-mp4v.mp4")
            for start in range(0, len(times), 8):
                for frame in renderers[live].render(walk_batch(walk, times[start:start + 8])):
                    writer.write(cv2.cvtColor(exporter.fit_frame(frame, SIZE, SIZE, "letterbox"), cv2.COLOR_RGB2BGR))
            writer.release()

        timings["mp4v loop"] = measure(render_to_mp4v)
        print(line(f"render loop -> cv2.VideoWriter mp4v {live}", len(times), timings["mp4v loop"]))
        ratio = timings[live, presets[0]][0] / timings["mp4v loop"][0]
        print(f"  export_loop {live} ({presets[0]}) takes {ratio:.2f}x the wall time of the mp4v loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
