"""Write a bundle's MODEL_CARD.md and sample grid from the bundle, its training runs and the inspection report.

    python -m studio.model_card --model assets/models/default --dcgan-run RUN --sr-run RUN \
        [--inspect DIR/report.json] [--recipe training/recipes/default_bundle.sh]

Figures come from the files, never typed by hand: steps and configs from the manifest, losses and wall time
from the runs' TensorBoard events, PSNR/SSIM from the upscaler's manifest metrics, diversity measured here
through the one render path, novelty from the inspection tool's report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from installation.latent import keyframe
from models.bundle import load_bundle, update_manifest
from models.grid import image_grid
from models.manifest import error_lines
from models.metrics import pairwise_rms_distances
from models.render import Renderer
from training.quality import format_table
from training.runs import save_png

NEAR_DUPLICATE_NOISE = 0.05  # latent perturbation that makes a near-duplicate of a sample


@dataclass(frozen=True)
class Diversity:
    samples: int
    mean_pairwise: float
    min_pairwise: float
    near_duplicate: float
    close_pairs: int  # pairs of samples closer than twice the near-duplicate distance

    @property
    def ratio(self) -> float:
        return self.mean_pairwise / self.near_duplicate

    def to_dict(self) -> dict:
        return {"samples": self.samples, "mean_pairwise_rms": round(self.mean_pairwise, 4),
                "min_pairwise_rms": round(self.min_pairwise, 4),
                "near_duplicate_rms": round(self.near_duplicate, 4), "ratio": round(self.ratio, 2),
                "close_pairs": self.close_pairs,
                "method": "RMS pixel distance at 32 px between generator frames (0..1); near-duplicates are "
                          f"frames of z and z + {NEAR_DUPLICATE_NOISE} * noise"}


def measure_diversity(renderer: Renderer, count: int = 64, seed: int = 0) -> Diversity:
    """Mean and minimum pairwise distance among `count` samples, against near-duplicates of the same samples."""
    latents = np.stack([keyframe(seed, index, renderer.latent_dim) for index in range(count)])
    noise = np.random.default_rng(seed).standard_normal(latents.shape).astype(np.float32)
    frames = renderer.render(latents, upscale=False)
    nudged = renderer.render(latents + NEAR_DUPLICATE_NOISE * noise, upscale=False)
    pairwise = pairwise_rms_distances(frames)
    near = [pairwise_rms_distances(np.stack([a, b]))[0] for a, b in zip(frames, nudged, strict=True)]
    near_duplicate = float(np.mean(near))
    return Diversity(count, float(pairwise.mean()), float(pairwise.min()), near_duplicate,
                     int((pairwise < 2 * near_duplicate).sum()))


def run_events(run_dir: Path, max_step: int | None = None) -> dict:
    """Last value of each scalar and the wall-clock span of a run's TensorBoard logs, up to `max_step` (a
    bundle exported at step N is described by its logs up to N, whatever the run did afterwards)."""
    import tensorflow as tf

    scalars, times = {}, []
    for path in sorted((run_dir / "logs").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            if max_step is not None and event.step > max_step:
                continue
            times.append(event.wall_time)
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars" or value.HasField("simple_value"):
                    number = value.simple_value if value.HasField("simple_value") else float(
                        tf.make_ndarray(value.tensor))
                    scalars[value.tag] = (event.step, number)
    wall = (max(times) - min(times)) if times else None
    return {"scalars": scalars, "wall_seconds": wall}


def layer_summary(extractor: dict) -> str:
    sources = extractor.get("source_layers", {})
    dims = extractor.get("dims", {})
    return ", ".join(f"{layer} ({sources.get(layer)}, {count} dims)" for layer, count in dims.items())


def figure(values: dict, name: str, digits: int = 2) -> str:
    value = values.get(name)
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def folder_size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def upsampling_words(generator: dict) -> str:
    """'resize' or, when the RGB stage differs, 'resize, the RGB stage subpixel' (bundles before the option: one)."""
    upsampling = generator.get("upsampling", "transposed")
    rgb = generator.get("rgb_upsampling", upsampling)
    return upsampling if rgb == upsampling else f"{upsampling}, the RGB stage {rgb}"


def write_card(bundle_dir: Path, dcgan_runs: list[Path], sr_run: Path | None, inspect_report: Path | None,
               recipe: Path | None, frame_rate: Path | None = None, name: str | None = None) -> Path:
    """Write MODEL_CARD.md into the bundle. `name`: the bundle's name in the title (default: its folder's; a
    recipe writes the card in a staging folder before the bundle takes its final name)."""
    bundle = load_bundle(bundle_dir)
    renderer = Renderer(bundle)
    diversity = measure_diversity(renderer)
    grid_latents = np.stack([keyframe(7, index, bundle.latent_dim) for index in range(16)])
    save_png(image_grid(renderer.render(grid_latents), columns=4), bundle_dir / "sample_grid.png")
    generator = dict(bundle.manifest["generator"], diversity=diversity.to_dict())
    manifest = update_manifest(bundle_dir, "generator", generator)

    stages = [run_events(run) for run in dcgan_runs[:-1]] + [run_events(dcgan_runs[-1], generator["steps"])]
    dcgan = {"scalars": stages[-1]["scalars"],
             "wall_seconds": sum(stage["wall_seconds"] or 0 for stage in stages) or None}
    sr = run_events(sr_run, manifest.get("upscaler", {}).get("steps")) if sr_run else None
    upscaler = manifest.get("upscaler", {})
    metrics = upscaler.get("metrics", {})
    base = upscaler.get("training_config", {}).get("init_upscaler")
    index = manifest.get("index", {})
    novelty = json.loads(inspect_report.read_text())["summary"] if inspect_report else {}
    config = generator.get("training_config", {})
    extractor = index.get("extractor", {})

    def scalar(events, name):
        found = events["scalars"].get(name) if events else None
        return f"{found[1]:.4f} (step {found[0]})" if found else "n/a"

    def hours(events):
        return f"{events['wall_seconds'] / 3600:.2f} h" if events and events["wall_seconds"] else "n/a"

    lines = [
        f"# Model card: {name or bundle_dir.name}", "",
        "A DCGAN and a real-time x4 upscaler trained by Masquerade's own commands on the procedural mask "
        "collection of `training/synthetic/` (invented workshop styles, CC0-1.0), so a fresh checkout runs "
        "offline. It depicts no real tradition and no real object.", "",
        "![sample grid](sample_grid.png)", "",
        "## Reproduce", "",
        (f"`bash {recipe}` rebuilds this bundle from nothing"
         + (f" but the base upscaler it fine-tunes (`{base}`)." if base else ".")) if recipe else "", "",
        "```", recipe.read_text().strip() if recipe else "", "```", "",
        "## Generator", "",
        f"- DCGAN {generator['resolution']} px, latent {generator['latent_dim']}, width multiplier "
        f"{generator['width_multiplier']}; {generator['steps']} steps at batch {config.get('batch_size')}, "
        f"Adam {config.get('learning_rate')} beta1 {config.get('beta1')}, strategy {config.get('strategy')}.",
        f"- Upsampling {upsampling_words(generator)}, loss {config.get('loss', 'bce')}, augmentation "
        f"{config.get('augment') or 'none'}; exported weights: {generator.get('weights', 'final')}"
        + (f", batch-norm statistics {generator['batch_norm_statistics']}" if "batch_norm_statistics" in generator
           else "") + ".",
        f"- Wall time (first to last log event, {len(dcgan_runs)} stage(s): "
        f"{', '.join(str(run) for run in dcgan_runs)}): {hours(dcgan)} on 2 CPU cores shared with other work.",
        f"- Final losses: discriminator {scalar(dcgan, 'd_loss')}, generator {scalar(dcgan, 'g_loss')}; "
        f"D(x) {scalar(dcgan, 'd_real')}, D(G(z)) {scalar(dcgan, 'd_fake')}.",
        f"- Diversity over {diversity.samples} samples: mean pairwise RMS distance {diversity.mean_pairwise:.4f}, "
        f"minimum {diversity.min_pairwise:.4f}, against {diversity.near_duplicate:.4f} for near-duplicates "
        f"(z vs z + {NEAR_DUPLICATE_NOISE} noise): {diversity.ratio:.1f}x; {diversity.close_pairs} of "
        f"{diversity.samples * (diversity.samples - 1) // 2} pairs closer than twice the near-duplicate distance.", "",
        "## Upscaler", "",
        f"- {upscaler.get('architecture', 'none')} x{upscaler.get('scale', '-')}, "
        f"{upscaler.get('input_size', '-')} -> {upscaler.get('output_size', '-')} px, "
        f"{upscaler.get('steps', '-')} steps; wall time {hours(sr)}."
        + (f" Fine-tuned from the upscaler of `{base}` (its own model card or README says how that was trained)."
           if base else ""),
        f"- Held-out evaluation: PSNR-Y {figure(metrics, 'psnr_y')} dB vs bicubic "
        f"{figure(metrics, 'bicubic_psnr_y')} dB; SSIM-Y {figure(metrics, 'ssim_y', 4)} vs "
        f"{figure(metrics, 'bicubic_ssim_y', 4)}; PSNR-RGB {figure(metrics, 'psnr_rgb')} dB vs "
        f"{figure(metrics, 'bicubic_psnr_rgb')} dB.",
        "- An upscaler trained adversarially to draw texture gives up some PSNR/SSIM against one trained on pixel "
        "loss alone (the perception-distortion trade-off, Blau & Michaeli 2018): the detail it draws is plausible, "
        "not the exact pixels of the original, so the display-size spectra and patch statistics below are its "
        "measure, with PSNR/SSIM reported beside bicubic as a floor.", "",
        "## Provenance index", "",
        f"- {index.get('count', 'no')} images, extractor {extractor.get('name', '-')}; layers "
        f"{layer_summary(extractor)}.",
    ]
    lines += quality_section(manifest.get("quality") or {})
    for layer, summary in novelty.items():
        share = summary.get("memorised_share")
        lines.append(f"- Novelty at the {layer} layer ({summary.get('samples', 100)} samples, inspection tool): "
                     f"{'n/a' if share is None else f'{100 * share:.1f}%'} of samples are closer to a training "
                     f"image than the dataset's own {summary.get('threshold_percentile', 95)}th-percentile "
                     f"nearest-neighbour similarity "
                     f"({summary.get('threshold_similarity')}); mean best similarity "
                     f"{summary.get('mean_best_similarity')}.")
    lines += frame_rate_section(json.loads(frame_rate.read_text()) if frame_rate else None)
    if diversity.close_pairs:
        lines += ["", "## Known limitations", "",
                  f"- Partial mode collapse: {diversity.close_pairs} of the "
                  f"{diversity.samples * (diversity.samples - 1) // 2} sample pairs are near-identical (the "
                  "training collection has no pair that close). Some regions of latent space share a mode; the "
                  "walk passes through them as repeated faces."]
    lines += ["", f"Bundle size: {folder_size(bundle_dir) / 2**20:.1f} MB.", ""]
    card = bundle_dir / "MODEL_CARD.md"
    card.write_text("\n".join(lines))
    return card


def frame_rate_section(figures: dict | None) -> list[str]:
    """The live loop's frame rate as `bench/live_fps.py --bundle BUNDLE --json FILE` measured it."""
    if not figures:
        return ["", "## Frame rate", "", "- Not measured: run `python bench/live_fps.py --bundle BUNDLE --json FILE` "
                "and pass `--frame-rate FILE`."]
    return ["", "## Frame rate", "",
            f"- `python bench/live_fps.py --bundle BUNDLE --seconds {figures['seconds']:g}` on "
            f"{figures['cpu_cores']} CPU cores (load average {figures['load_average']}): "
            f"{figures['new_frames_per_s']} new frames a second at {figures['size']} px on screen "
            f"({figures['displayed_fps']} displayed, captions {'on' if figures['captions'] else 'off'}), "
            f"{figures['render_ms_batch_1']} ms to render one frame; a naive `model.predict` loop on the same "
            f"bundle: {figures['naive_fps']} frames a second."]


def quality_section(quality: dict) -> list[str]:
    """The quality command's figures (stored in the manifest by `python -m training quality --record`)."""
    if not quality:
        return ["", "## Quality", "", "- Not measured: run `python -m training quality --model BUNDLE --record` "
                "(and `--display` for upscaled frames)."]
    lines = ["", "## Quality", "",
             "Figures of `python -m training quality` (multi-scale sliced Wasserstein distance, spectra, diversity, "
             "memorisation), each beside the same figure for two halves of the collection: what \"as good as "
             "real\" is."]
    for key, title in (("generator", "At the generator's resolution"), ("display", "At the display size, upscaled")):
        report = quality.get(key)
        if report:
            reference = report.get("reference_images", report["collection_images"] // 2)
            lines += ["", f"{title}: {report['samples']} frames at {report['size']} px against {reference} "
                      f"collection images, the yardstick another {reference}; seed {report['seed']}.", "",
                      *format_table(report)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.model_card", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--dcgan-run", required=True, type=Path, nargs="+", help="the DCGAN run(s), in order")
    parser.add_argument("--sr-run", type=Path)
    parser.add_argument("--inspect", type=Path, help="report.json written by studio.inspection")
    parser.add_argument("--recipe", type=Path, help="the script that rebuilds the bundle")
    parser.add_argument("--frame-rate", type=Path, help="figures written by bench/live_fps.py --bundle ... --json")
    parser.add_argument("--name", help="the bundle's name in the title (default: the folder's name)")
    args = parser.parse_args(argv)
    try:
        card = write_card(args.model, args.dcgan_run, args.sr_run, args.inspect, args.recipe, args.frame_rate,
                          args.name)
    except (ValueError, FileNotFoundError) as error:
        for line in error_lines(error):
            print(f"error: {line}", file=sys.stderr)
        return 2
    print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
