"""Sustained frame rate of the whole live pipeline on each backend vs a naive `model.predict`-per-frame loop.

Pipeline: walk -> generator -> real-time upscaler -> screen surface (SDL dummy video driver), the real
`installation.app.Piece` loop with its render worker, once on LiteRT (the bundle's .tflite files, XNNPACK) and
once on TensorFlow (`tf.function` graphs of the Keras models). The naive loop calls `predict` on the generator
and then the upscaler for every frame and blits the result, as simple live GAN scripts do. All run in this
process on the same untrained networks of the sizes the default bundle uses (speed does not depend on the
weights). Render ms/frame is measured with both backends called in turn, round by round, so machine noise hits
both alike: at batch 1 (a steered frame) and batch 3 (the live loop's render-ahead batch).

    python bench/live_fps.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from installation.app import Piece, walk_config  # noqa: E402
from installation.config import RuntimeConfig  # noqa: E402
from installation.display import Display  # noqa: E402
from installation.latent import Walker  # noqa: E402
from installation.render import Renderer  # noqa: E402
from models import bundle as bundles  # noqa: E402
from models import dcgan, srgan  # noqa: E402
from training.litert import convert_bundle  # noqa: E402

CASES = {256: (64, 0.25), 512: (128, 0.125)}  # output size -> (generator resolution, width multiplier)


def make_bundle(path: Path, resolution: int, width: float) -> Path:
    bundles.save_model(path, "generator.keras", dcgan.generator(resolution, width_multiplier=width))
    bundles.update_manifest(path, "generator", {"file": "generator.keras", "architecture": "dcgan",
                                                "resolution": resolution, "latent_dim": 100,
                                                "width_multiplier": width, "steps": 0})
    bundles.save_model(path, "upscaler.keras", srgan.realtime_upscaler())
    bundles.update_manifest(path, "upscaler", {"file": "upscaler.keras", "architecture": "realtime", "scale": 4,
                                               "input_size": resolution, "output_size": resolution * 4})
    convert_bundle(path)
    return path


def render_ms(bundle_dir: Path, rounds: int = 40) -> dict:
    """Median ms per frame of each backend's Renderer, at batch 1 and 3, called in turn each round: wall time, and
    CPU time of the whole process (steadier than wall time on a shared machine: waiting for a core is not counted)."""
    renderers = {backend: Renderer(bundles.load_bundle(bundle_dir, backend=backend, with_index=False))
                 for backend in ("litert", "tf")}
    rng = np.random.default_rng(0)
    samples = {}
    for batch in (1, 3):
        latents = rng.standard_normal((batch, 100)).astype(np.float32)
        for renderer in renderers.values():
            for _ in range(3):
                renderer.render(latents)
        for _ in range(rounds):
            for backend, renderer in renderers.items():
                began, cpu = time.perf_counter(), time.process_time()
                renderer.render(latents)
                samples.setdefault(("wall", backend, batch), []).append((time.perf_counter() - began) / batch)
                samples.setdefault(("cpu", backend, batch), []).append((time.process_time() - cpu) / batch)
    return {key: 1000 * statistics.median(values) for key, values in samples.items()}


def run_pipeline(bundle_dir: Path, size: int, seconds: float, backend: str) -> dict:
    config = RuntimeConfig(model=str(bundle_dir), windowed=True, width=size, height=size, fps=60.0,
                           frames=0, stats_every=3600.0, backend=backend)
    piece = Piece(config, display=Display(windowed=True, size=(size, size)))
    piece.renderer.warm_up()
    began = time.monotonic()
    timer = threading.Timer(seconds, piece.request_stop)
    timer.start()
    piece.run()
    elapsed = time.monotonic() - began
    piece.display.close()
    return {"displayed_fps": piece.frames_shown / elapsed, "new_frames_per_s": piece.new_frames / elapsed,
            "render_ms": piece_latency(piece)}


def piece_latency(piece: Piece) -> float:
    latents = np.random.default_rng(0).standard_normal((1, piece.bundle.latent_dim)).astype(np.float32)
    samples = []
    for _ in range(20):
        began = time.perf_counter()
        piece.renderer.render(latents)
        samples.append(time.perf_counter() - began)
    return 1000 * float(np.median(samples))


def run_naive(bundle_dir: Path, size: int, seconds: float) -> dict:
    import pygame

    loaded = bundles.load_bundle(bundle_dir, backend="tf")
    display = Display(windowed=True, size=(size, size))
    walker = Walker(walk_config(RuntimeConfig(model=str(bundle_dir)), loaded.latent_dim))
    frames, began = 0, time.monotonic()
    while time.monotonic() - began < seconds:
        z = walker.advance(time.monotonic()).z[None]
        image = loaded.upscaler.predict(loaded.generator.predict(z, verbose=0), verbose=0)[0]
        frame = np.clip((image + 1) * 127.5, 0, 255).astype(np.uint8)
        display.show(frame)
        pygame.event.pump()
        frames += 1
    display.close()
    return {"displayed_fps": frames / (time.monotonic() - began)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPU cores, {args.seconds:.0f} s per run, display target 60 fps")
    with tempfile.TemporaryDirectory() as scratch:
        for size, (resolution, width) in CASES.items():
            bundle_dir = make_bundle(Path(scratch) / f"b{size}", resolution, width)
            latency = render_ms(bundle_dir)
            runs = {backend: run_pipeline(bundle_dir, size, args.seconds, backend) for backend in ("litert", "tf")}
            naive = run_naive(bundle_dir, size, args.seconds)
            target = 30 if size == 256 else 20
            print(f"{size}x{size} ({resolution} px generator x4), load average {os.getloadavg()[0]:.1f}:")
            for backend, label in (("litert", "LiteRT"), ("tf", "tf.function")):
                ours = runs[backend]
                print(f"  {label:<12}: {ours['new_frames_per_s']:6.1f} new frames/s, {ours['displayed_fps']:6.1f} "
                      f"displayed/s (target >= {target} fps); render ms/frame wall "
                      f"{latency[('wall', backend, 1)]:.2f} at batch 1, {latency[('wall', backend, 3)]:.2f} at "
                      f"batch 3; CPU {latency[('cpu', backend, 1)]:.2f} / {latency[('cpu', backend, 3)]:.2f}")
            for clock in ("wall", "cpu"):
                one, three = (latency[(clock, "tf", batch)] / latency[(clock, "litert", batch)] for batch in (1, 3))
                print(f"  LiteRT/tf {clock:<4}: {one:5.2f}x faster per frame at batch 1, {three:.2f}x at batch 3 "
                      "(target >= 1.5x)")
            print(f"  naive       : {naive['displayed_fps']:6.1f} frames/s (model.predict per frame)")
            print(f"  ratio       : {runs['litert']['new_frames_per_s'] / naive['displayed_fps']:6.2f}x LiteRT, "
                  f"{runs['tf']['new_frames_per_s'] / naive['displayed_fps']:.2f}x tf.function (target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
