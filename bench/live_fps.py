"""Sustained frame rate of the whole live pipeline on each backend vs a naive `model.predict`-per-frame loop.

Pipeline: walk -> generator -> real-time upscaler -> screen surface (SDL dummy video driver), the real
`installation.app.Piece` loop with its render worker, once on LiteRT (the bundle's .tflite files, XNNPACK) and
once on TensorFlow (`tf.function` graphs of the Keras models). The naive loop calls `predict` on the generator
and then the upscaler for every frame and blits the result, as simple live GAN scripts do. All run in this
process on the same untrained networks of the sizes the default bundle uses (speed does not depend on the
weights). Render ms/frame is measured with both backends called in turn, round by round, so machine noise hits
both alike: at batch 1 (a steered frame) and batch 3 (the live loop's render-ahead batch).

    python bench/live_fps.py [--seconds 10]
    python bench/live_fps.py --bundle assets/models/default [--seconds 20 --json FILE]
    python bench/live_fps.py --ndi [--seconds 8 --rounds 3]

With --bundle: that trained bundle end to end at its display size, as the piece runs it (LiteRT, captions on),
against the naive loop on the same bundle; --json writes the figures for the model card (studio.model_card
--frame-rate FILE).

With --ndi: the 512 px pipeline with NDI output off and on, in alternating rounds, while an NDI receiver in
another process (found through 127.0.0.1) pulls the frames, so that the sender really encodes every frame.
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

from installation.app import Piece  # noqa: E402
from installation.config import (
    RuntimeConfig,  # noqa: E402
    walk_config,  # noqa: E402
)
from installation.display import Display  # noqa: E402
from installation.latent import Walker  # noqa: E402
from models import bundle as bundles  # noqa: E402
from models import dcgan, srgan  # noqa: E402
from models.files import write_json_atomic  # noqa: E402
from models.render import Renderer  # noqa: E402
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


def run_pipeline(bundle_dir: Path, size: int, seconds: float, ndi: bool = False, backend: str = "auto",
                 captions: bool = False) -> dict:
    config = RuntimeConfig(model=str(bundle_dir), windowed=True, width=size, height=size, fps=60.0,
                           frames=0, stats_every=3600.0, ndi=ndi, ndi_name=NDI_NAME, captions=captions,
                           backend=backend)
    piece = Piece.from_config(config, display=Display(windowed=True, size=(size, size)))
    piece.renderer.warm_up()
    began, cpu_began = time.monotonic(), time.process_time()
    timer = threading.Timer(seconds, piece.request_stop)
    timer.start()
    piece.run()
    elapsed, cpu = time.monotonic() - began, time.process_time() - cpu_began
    piece.display.close()
    sender = piece.ndi.output or piece.ndi.last_output
    return {"displayed_fps": piece.frames_shown / elapsed, "new_frames_per_s": piece.new_frames / elapsed,
            "render_ms": piece_latency(piece), "cpu_ms_per_frame": 1000 * cpu / max(piece.frames_shown, 1),
            "sender_ms_per_frame": 1000 * sender.cpu_seconds / max(sender.sent, 1) if sender else 0.0}


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
        now = time.monotonic()
        walker.advance(now)
        z = walker.latents_at([now])
        image = loaded.upscaler.predict(loaded.generator.predict(z, verbose=0), verbose=0)[0]
        frame = np.clip((image + 1) * 127.5, 0, 255).astype(np.uint8)
        display.show(frame)
        pygame.event.pump()
        frames += 1
    display.close()
    return {"displayed_fps": frames / (time.monotonic() - began)}


NDI_NAME = "Masquerade bench"
# Counts the frames an NDI receiver gets from the bench's source, from the first frame on, until stdin closes.
RECEIVER = """
import sys, threading, time, NDIlib as ndi
ndi.initialize()
finder = ndi.find_create_v2(ndi.FindCreate(show_local_sources=True, p_extra_ips="127.0.0.1"))
source = None
while source is None:
    ndi.find_wait_for_sources(finder, 500)
    source = next((s for s in ndi.find_get_current_sources(finder) if s.ndi_name.endswith(f"({sys.argv[1]})")), None)
receiver = ndi.recv_create_v3(ndi.RecvCreateV3(color_format=ndi.RECV_COLOR_FORMAT_UYVY_BGRA))
ndi.recv_connect(receiver, source)
print("connected", flush=True)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
frames, first = 0, None
while not done.is_set():
    kind, video, _, _ = ndi.recv_capture_v2(receiver, 200)
    if kind == ndi.FRAME_TYPE_VIDEO:
        frames += 1
        first = first or time.monotonic()
        ndi.recv_free_video_v2(receiver, video)
print(frames, frames / max(time.monotonic() - (first or time.monotonic()), 1e-9), flush=True)
"""


def run_with_receiver(bundle_dir: Path, size: int, seconds: float) -> dict:
    """The pipeline with NDI on while a receiver process pulls the frames."""
    import subprocess

    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, NDI_NAME], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    result = run_pipeline(bundle_dir, size, seconds, ndi=True)
    received, rate = receiver.communicate("", timeout=30)[0].split()[-2:]
    return {**result, "received": int(received), "received_fps": float(rate)}


def ndi_send_cost(size: int, seconds: float) -> dict:
    """CPU of the whole NDI send path (the sender thread and libndi's own threads), alone in this process:
    60 frames a second of a 512 px picture offered to an NdiOutput while the receiver process pulls them."""
    import subprocess

    from installation.ndi import NdiOutput

    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, NDI_NAME], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    output = NdiOutput(NDI_NAME, 60.0).start()
    frames = [np.random.default_rng(index).integers(0, 256, (size, size, 3), np.uint8) for index in range(8)]
    receiver.stdout.readline()  # "connected"
    began, cpu_began, index = time.monotonic(), time.process_time(), 0
    while time.monotonic() - began < seconds:
        output.offer(frames[index % len(frames)])
        index += 1
        time.sleep(max(0.0, began + index / 60 - time.monotonic()))
    cpu, elapsed = time.process_time() - cpu_began, time.monotonic() - began
    output.stop()
    receiver.communicate("", timeout=30)
    return {"cpu_ms_per_frame": 1000 * cpu / max(output.sent, 1), "sent_fps": output.sent / elapsed}


def bench_ndi(seconds: float, rounds: int) -> int:
    size, (resolution, width) = 512, CASES[512]
    print(f"{os.cpu_count()} CPU cores, {seconds:.0f} s per run, {rounds} rounds of NDI off / on, "
          f"{size}x{size} ({resolution} px generator x4), display target 60 fps")
    off, on = [], []
    with tempfile.TemporaryDirectory() as scratch:
        bundle_dir = make_bundle(Path(scratch) / "b512", resolution, width)
        run_pipeline(bundle_dir, size, 2.0)  # warm caches and the first NDI start-up out of the figures
        for round_index in range(rounds):
            if round_index % 2:  # alternate which goes first, so a drift in the machine's load favours neither
                on.append(run_with_receiver(bundle_dir, size, seconds))
                off.append(run_pipeline(bundle_dir, size, seconds))
            else:
                off.append(run_pipeline(bundle_dir, size, seconds))
                on.append(run_with_receiver(bundle_dir, size, seconds))
            print(f"  round {round_index + 1}: off {off[-1]['displayed_fps']:5.1f} displayed/s "
                  f"({off[-1]['new_frames_per_s']:5.1f} new), on {on[-1]['displayed_fps']:5.1f} displayed/s "
                  f"({on[-1]['new_frames_per_s']:5.1f} new), receiver got {on[-1]['received_fps']:5.1f} frames/s; "
                  f"CPU {off[-1]['cpu_ms_per_frame']:.1f} / {on[-1]['cpu_ms_per_frame']:.1f} ms per frame")
    displayed_off = float(np.median([run["displayed_fps"] for run in off]))
    displayed_on = float(np.median([run["displayed_fps"] for run in on]))
    new_off = float(np.median([run["new_frames_per_s"] for run in off]))
    new_on = float(np.median([run["new_frames_per_s"] for run in on]))
    received = float(np.median([run["received_fps"] for run in on]))
    cpu_off = float(np.median([run["cpu_ms_per_frame"] for run in off]))
    cpu_on = float(np.median([run["cpu_ms_per_frame"] for run in on]))
    print(f"median displayed/s: off {displayed_off:.1f}, on {displayed_on:.1f} "
          f"(cost {100 * (1 - displayed_on / displayed_off):.1f}%, target < 10%)")
    print(f"median new frames/s: off {new_off:.1f}, on {new_on:.1f} (cost {100 * (1 - new_on / new_off):.1f}%)")
    print(f"median frames/s received over NDI: {received:.1f}")
    # The frame rates share two cores with whatever else runs; the piece's own CPU time per displayed frame is
    # the steadier figure: what NDI adds, against the 16.7 ms a frame has at the 60 fps target.
    sender = float(np.median([run["sender_ms_per_frame"] for run in on]))
    print(f"median CPU ms per displayed frame (this process, all threads): off {cpu_off:.2f}, on {cpu_on:.2f} "
          "(on renders more new frames: not NDI's cost alone)")
    print(f"median CPU ms per frame in the NDI sender thread (RGB->RGBX and the send call): {sender:.2f} "
          f"= {100 * sender / (1000 / 60):.1f}% of a 60 fps frame")
    alone = ndi_send_cost(size, seconds)
    print(f"NDI send path alone (sender thread + libndi's threads, receiver connected): "
          f"{alone['cpu_ms_per_frame']:.2f} CPU ms per frame at {alone['sent_fps']:.1f} frames/s "
          f"= {100 * alone['cpu_ms_per_frame'] / (1000 / 60):.1f}% of one core's 60 fps frame")
    return 0


def bench_bundle(bundle_dir: Path, seconds: float, json_out: str | None) -> int:
    """A trained bundle end to end at its display size: new frames a second on screen, and the naive loop's rate."""
    loaded = bundles.load_bundle(bundle_dir, with_index=False)
    size = loaded.resolution * loaded.upscale_factor
    print(f"{os.cpu_count()} CPU cores, {seconds:.0f} s per run, display target 60 fps, {bundle_dir}: "
          f"{loaded.resolution} px generator -> {size} px, load average {os.getloadavg()[0]:.1f}")
    ours = run_pipeline(bundle_dir, size, seconds, captions="index" in loaded.manifest)
    naive = run_naive(bundle_dir, size, seconds)
    figures = {"bundle": str(bundle_dir), "size": size, "seconds": seconds, "cpu_cores": os.cpu_count(),
               "load_average": round(os.getloadavg()[0], 2), "new_frames_per_s": round(ours["new_frames_per_s"], 1),
               "displayed_fps": round(ours["displayed_fps"], 1), "render_ms_batch_1": round(ours["render_ms"], 2),
               "captions": "index" in loaded.manifest, "naive_fps": round(naive["displayed_fps"], 1)}
    print(f"  piece : {figures['new_frames_per_s']:6.1f} new frames/s, {figures['displayed_fps']:6.1f} displayed/s "
          f"(target >= 30 new frames/s); render {figures['render_ms_batch_1']:.2f} ms per frame at batch 1")
    print(f"  naive : {figures['naive_fps']:6.1f} frames/s (model.predict per frame)")
    print(f"  ratio : {figures['new_frames_per_s'] / figures['naive_fps']:6.2f}x")
    if json_out:
        write_json_atomic(Path(json_out), figures)
        print(f"figures written to {json_out}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bundle", help="a trained bundle, measured end to end at its display size")
    parser.add_argument("--json", help="with --bundle: write the figures to this JSON file")
    parser.add_argument("--ndi", action="store_true", help="measure what NDI output costs the 512 px live loop")
    parser.add_argument("--rounds", type=int, default=3, help="alternating off/on rounds with --ndi")
    args = parser.parse_args(argv)
    if args.bundle:
        return bench_bundle(Path(args.bundle), args.seconds, args.json)
    if args.ndi:
        return bench_ndi(args.seconds, args.rounds)
    print(f"{os.cpu_count()} CPU cores, {args.seconds:.0f} s per run, display target 60 fps")
    with tempfile.TemporaryDirectory() as scratch:
        for size, (resolution, width) in CASES.items():
            bundle_dir = make_bundle(Path(scratch) / f"b{size}", resolution, width)
            latency = render_ms(bundle_dir)
            runs = {backend: run_pipeline(bundle_dir, size, args.seconds, backend=backend)
                    for backend in ("litert", "tf")}
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
