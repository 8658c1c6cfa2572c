"""Sustained frame rate of the whole live pipeline vs a naive `model.predict`-per-frame loop.

Pipeline: walk -> generator -> real-time upscaler -> screen surface (SDL dummy video driver), the real
`installation.app.Piece` loop with its render worker. The naive loop calls `predict` on the generator
and then the upscaler for every frame and blits the result, as simple live GAN scripts do. Both run in
this process on the same untrained networks of the sizes the default bundle uses (speed does not depend
on the weights).

    python bench/live_fps.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
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
from models import bundle as bundles  # noqa: E402
from models import dcgan, srgan  # noqa: E402

CASES = {256: (64, 0.25), 512: (128, 0.125)}  # output size -> (generator resolution, width multiplier)


def make_bundle(path: Path, resolution: int, width: float) -> Path:
    bundles.save_model(path, "generator.keras", dcgan.generator(resolution, width_multiplier=width))
    bundles.update_manifest(path, "generator", {"file": "generator.keras", "architecture": "dcgan",
                                                "resolution": resolution, "latent_dim": 100,
                                                "width_multiplier": width, "steps": 0})
    bundles.save_model(path, "upscaler.keras", srgan.realtime_upscaler())
    bundles.update_manifest(path, "upscaler", {"file": "upscaler.keras", "architecture": "realtime", "scale": 4,
                                               "input_size": resolution, "output_size": resolution * 4})
    return path


def run_pipeline(bundle_dir: Path, size: int, seconds: float) -> dict:
    config = RuntimeConfig(model=str(bundle_dir), windowed=True, width=size, height=size, fps=60.0,
                           frames=0, stats_every=3600.0)
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

    loaded = bundles.load_bundle(bundle_dir)
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
            ours = run_pipeline(bundle_dir, size, args.seconds)
            naive = run_naive(bundle_dir, size, args.seconds)
            target = 30 if size == 256 else 20
            print(f"{size}x{size} ({resolution} px generator x4):")
            print(f"  masquerade : {ours['new_frames_per_s']:6.1f} new frames/s, {ours['displayed_fps']:6.1f} "
                  f"displayed/s, render {ours['render_ms']:.1f} ms/frame (target >= {target} fps)")
            print(f"  naive      : {naive['displayed_fps']:6.1f} frames/s (model.predict per frame)")
            print(f"  ratio      : {ours['new_frames_per_s'] / naive['displayed_fps']:6.2f}x (target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
