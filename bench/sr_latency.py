"""Milliseconds per frame of the SRGAN upscalers vs OpenCV bicubic, and how close they get to matmul peak.

For each generator (SRResNet at its paper size, the realtime upscaler at its defaults and at the size of the
512 px flagship: 32 filters, 6 layers, 8 full-size channels), each size (64 -> 256,
128 -> 512) and batch (1, 4), the script times two ways of calling the model, interleaved round by round so
machine noise hits both alike:
  eager        model(x, training=False)
  tf.function  models.srgan.inference_function(model): tf.function(jit_compile=False) with a fully dynamic
               input signature, so one trace serves every size (what reduce_retracing would converge to)
  LiteRT       (the real-time upscaler, which the runtime runs) the model converted as export converts it
               (training.litert: fixed-shape signatures, rounding to uint8 inside) and run by LiteRT with
               XNNPACK, one thread per core, as the piece runs it
(model.predict is left out: it builds a dataset per call and is far slower for single frames.)
The baseline is cv2.resize(frame, INTER_CUBIC) on the same frames as uint8, one frame at a time.

Achieved GFLOP/s counts only convolutions, analytically: 2 * H_out * W_out * kh * kw * c_in * c_out each.
The peak is the best float32 tf.linalg.matmul of 2048 x 2048 measured in the same run.
Weights are untrained; the timing does not depend on their values.

    python bench/sr_latency.py [--quick] [--realtime-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models import litert, srgan  # noqa: E402
from training.litert import convert_upscaler  # noqa: E402

SIZES = (64, 128)
BATCHES = (1, 4)
SCALE = 4
# Targets for the realtime upscaler at batch 1 (ms per frame), from the installation's frame budget.
REALTIME_TARGET_MS = {64: 10.0, 128: 30.0}
# The flagship's upscaler shares a 33 ms frame (30 frames/s) with the 128 px generator and the display.
LIVE512 = {"num_filters": 32, "num_layers": 6, "hr_channels": 8}
LIVE512_TARGET_MS = 15.0


def conv_flops(model: keras.Model, height: int, width: int) -> int:
    """FLOPs of every Conv2D for one height x width frame (2 per multiply-add; bias, BN, PReLU left out)."""
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(model.input, [layer.output for layer in convs])
    outputs = probe(np.zeros((1, height, width, 3), "float32"), training=False)
    total = 0
    for layer, output in zip(convs, outputs, strict=True):
        kh, kw, c_in, c_out = layer.kernel.shape
        total += 2 * int(output.shape[1]) * int(output.shape[2]) * kh * kw * c_in * c_out
    return total


def matmul_peak_gflops(runs: int) -> float:
    """Best float32 GFLOP/s of a 2048 x 2048 matmul on this machine right now."""
    n = 2048
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.linalg.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(runs):
        began = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - began)
    return 2 * n**3 / best / 1e9


def time_interleaved(calls: dict, runs: int, warmup: int, budget_s: float) -> dict[str, float]:
    """Median seconds per call of each callable, calling them in turn each round; NAME_cpu: the process's CPU
    seconds per call (steadier than wall time on a shared machine).

    Stops after `runs` rounds, or earlier once `budget_s` is spent and at least three rounds are in.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    cpu_times = {f"{name}_cpu": [] for name in calls}
    began = time.perf_counter()
    for round_index in range(runs):
        for name, call in calls.items():
            start, cpu = time.perf_counter(), time.process_time()
            call()
            times[name].append(time.perf_counter() - start)
            cpu_times[f"{name}_cpu"].append(time.process_time() - cpu)
        if round_index >= 2 and time.perf_counter() - began > budget_s:
            break
    return {name: statistics.median(values) for name, values in {**times, **cpu_times}.items()}


def bicubic(frames: np.ndarray) -> list[np.ndarray]:
    return [
        cv2.resize(frame, (frame.shape[1] * SCALE, frame.shape[0] * SCALE), interpolation=cv2.INTER_CUBIC)
        for frame in frames
    ]


def litert_model(model: keras.Model, size: int) -> litert.LiteRTModel:
    """The upscaler converted as export converts it, for size x size inputs at each batch of BATCHES."""
    scratch = Path(tempfile.mkdtemp(prefix="sr-latency-"))
    source = scratch / "upscaler.keras"
    model.save(source)
    convert_upscaler(scratch, model, size, source, batch_sizes=BATCHES)
    return litert.LiteRTModel(scratch / "upscaler.tflite")  # the folder is left to the system's temp clean-up


def benchmark(name: str, model: keras.Model, runs: int, warmup: int, budget_s: float,
              with_litert: bool = False) -> list[dict]:
    compiled = srgan.inference_function(model)
    rows = []
    rng = np.random.default_rng(0)
    for size in SIZES:
        gflop_per_frame = conv_flops(model, size, size) / 1e9
        lite = litert_model(model, size) if with_litert else None
        for batch in BATCHES:
            frames = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
            x = tf.constant(frames.astype("float32") / 127.5 - 1.0)
            calls = {
                "eager": lambda x=x: model(x, training=False).numpy(),
                "tf.function": lambda x=x: compiled(x).numpy(),
                "bicubic": lambda frames=frames: bicubic(frames),
            }
            if lite is not None:
                pixels = x.numpy()
                calls["litert"] = lambda pixels=pixels, lite=lite: lite.run(images=pixels)["frames"]
            seconds = time_interleaved(calls, runs, warmup, budget_s)
            rows.append(
                {
                    "model": name,
                    "size": size,
                    "batch": batch,
                    "gflop_per_frame": gflop_per_frame,
                    **{f"{mode}_ms": 1e3 * seconds[mode] / batch for mode in seconds},
                }
            )
            print(f"  measured {name} {size}->{size * SCALE} batch {batch}", file=sys.stderr, flush=True)
    return rows


def print_table(rows: list[dict], peak: float) -> None:
    header = (
        f"{'model':<10} {'in->out':>9} {'batch':>5} {'GFLOP/fr':>9} {'eager ms/fr':>11} {'tf.fn ms/fr':>11} "
        f"{'tf.fn/eager':>11} {'GFLOP/s':>8} {'% peak':>7} {'bicubic ms/fr':>13} {'x bicubic':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        best_ms = min(row["eager_ms"], row["tf.function_ms"])
        gflops = row["gflop_per_frame"] / (best_ms / 1e3)
        print(
            f"{row['model']:<10} {row['size']:>4}->{row['size'] * SCALE:<4} {row['batch']:>5} "
            f"{row['gflop_per_frame']:>9.3f} {row['eager_ms']:>11.2f} {row['tf.function_ms']:>11.2f} "
            f"{row['tf.function_ms'] / row['eager_ms']:>11.2f} {gflops:>8.1f} {100 * gflops / peak:>6.1f}% "
            f"{row['bicubic_ms']:>13.3f} {best_ms / row['bicubic_ms']:>9.1f}"
        )
    print(
        "GFLOP/s, % peak and x bicubic use the faster TensorFlow call mode; x bicubic = model ms/frame / cv2 bicubic "
        "ms/frame."
    )
    print(f"\n{'LiteRT vs tf.function':<22} {'in->out':>9} {'batch':>5} {'tf.fn ms/fr':>11} {'LiteRT ms/fr':>12} "
          f"{'speed-up':>8}   {'CPU: tf.fn':>10} {'LiteRT':>7} {'speed-up':>8}")
    for row in rows:
        if "litert_ms" in row:
            print(f"{row['model']:<22} {row['size']:>4}->{row['size'] * SCALE:<4} {row['batch']:>5} "
                  f"{row['tf.function_ms']:>11.2f} {row['litert_ms']:>12.2f} "
                  f"{row['tf.function_ms'] / row['litert_ms']:>7.2f}x   {row['tf.function_cpu_ms']:>10.2f} "
                  f"{row['litert_cpu_ms']:>7.2f} {row['tf.function_cpu_ms'] / row['litert_cpu_ms']:>7.2f}x")
    print("target: LiteRT >= 1.5x faster per frame")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (numbers get noisier)")
    parser.add_argument("--realtime-only", action="store_true", help="leave out SRResNet (minutes per run on a CPU)")
    args = parser.parse_args(argv)
    runs, warmup = (7, 2) if args.quick else (30, 5)
    heavy_runs, heavy_warmup, heavy_budget = (3, 1, 10.0) if args.quick else (7, 2, 60.0)

    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, OpenCV {cv2.__version__}, "
        f"{os.cpu_count()} CPUs visible, intra-op threads {tf.config.threading.get_intra_op_parallelism_threads()} "
        "(0 = all)"
    )
    peak_before = matmul_peak_gflops(5 if args.quick else 10)
    realtime = srgan.realtime_upscaler(scale=SCALE)
    rows = benchmark("realtime", realtime, runs, warmup, budget_s=30.0, with_litert=True)
    live512 = srgan.realtime_upscaler(scale=SCALE, **LIVE512)
    rows += benchmark("live512", live512, runs, warmup, budget_s=30.0, with_litert=True)
    heavy = srgan.srresnet(scale=SCALE)
    if not args.realtime_only:
        rows += benchmark("srresnet", heavy, heavy_runs, heavy_warmup, budget_s=heavy_budget)
    peak = max(peak_before, matmul_peak_gflops(5 if args.quick else 10))

    print(f"float32 matmul 2048x2048 peak: {peak:.1f} GFLOP/s (best of runs before and after)")
    print(f"realtime: {realtime.count_params():,} parameters; srresnet: {heavy.count_params():,} parameters\n")
    print_table(rows, peak)
    for row in rows:
        if row["model"] == "realtime" and row["batch"] == 1:
            best_ms = min(row["eager_ms"], row["tf.function_ms"])
            target = REALTIME_TARGET_MS[row["size"]]
            verdict = "meets" if best_ms <= target else "MISSES"
            print(f"realtime {row['size']}->{row['size'] * SCALE} batch 1: {best_ms:.2f} ms/frame {verdict} the "
                  f"{target:.0f} ms target")
    for row in rows:
        if row["model"] == "live512" and row["batch"] == 1 and row["size"] == 128:
            best_ms = min(row["eager_ms"], row["tf.function_ms"])
            verdict = "meets" if best_ms <= LIVE512_TARGET_MS else "MISSES"
            print(f"live512 128->512 batch 1: {best_ms:.2f} ms/frame {verdict} the {LIVE512_TARGET_MS:.0f} ms target")
    realtime_ms = {(r["size"], r["batch"]): min(r["eager_ms"], r["tf.function_ms"]) for r in rows
                   if r["model"] == "realtime"}
    for row in rows:
        if row["model"] == "srresnet":
            best_ms = min(row["eager_ms"], row["tf.function_ms"])
            print(f"srresnet / realtime at {row['size']}->{row['size'] * SCALE} batch {row['batch']}: "
                  f"{best_ms / realtime_ms[(row['size'], row['batch'])]:.0f}x slower")
    return 0


if __name__ == "__main__":
    sys.exit(main())
