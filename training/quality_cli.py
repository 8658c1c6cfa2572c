"""`python -m training quality`: the quality figures of a bundle or a DCGAN run against its collection;
`python -m training choose-step`: the checkpoint of a run whose figures meet the generator's targets best."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.bundle import write_json_atomic
from training import quality

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QualityConfig:
    model: str | None = None  # a bundle folder
    run: str | None = None  # or a DCGAN run folder (its exported weights)
    step: int | None = None  # a run's checkpoint at this step instead of its latest
    raw_weights: bool = False  # a run's raw generator instead of its weight average (what the average adds)
    data: str | None = None  # default: the dataset the generator was trained on
    samples: int = 512
    collection: int = 2000  # split in halves: frames meet 1,000 real images, the yardstick 1,000 against 1,000
    seed: int = 0
    display: bool = False  # upscaled frames against the collection at the display size
    out: str | None = None
    record: bool = False  # write the figures into the bundle's manifest (for the model card)

    def __post_init__(self):
        if (self.model is None) == (self.run is None):
            raise ValueError("give exactly one of --model (a bundle) or --run (a DCGAN run folder)")
        if not 16 <= self.samples <= 100_000:
            raise ValueError(f"samples {self.samples} is outside the allowed range 16..100000")
        if not 16 <= self.collection <= 1_000_000:
            raise ValueError(f"collection {self.collection} is outside the allowed range 16..1000000")
        if self.record and self.model is None:
            raise ValueError("--record writes into a bundle's manifest; it needs --model")
        if self.raw_weights and self.run is None:
            raise ValueError("--raw-weights measures a run's raw generator; it needs --run")
        if self.step is not None and self.run is None:
            raise ValueError("--step picks a checkpoint of a run; it needs --run")
        if self.display and self.model is None:
            raise ValueError("--display needs --model: a bundle with an upscaler")


def latents(count: int, latent_dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def generated_frames(config: QualityConfig) -> tuple[np.ndarray, str, dict[str, np.ndarray]]:
    """uint8 frames through the one render path (a bundle), or a run's exported generator; the dataset; and, at
    display size, the same generator frames enlarged by bicubic (what the upscaler must beat)."""
    if config.model is not None:
        from models.bundle import load_bundle
        from models.render import Renderer

        bundle = load_bundle(config.model, with_upscaler=config.display)
        if config.display and bundle.upscaler is None:
            raise ValueError(f"{config.model} has no upscaler to measure at display size")
        renderer = Renderer(bundle, max_batch=16)
        noise = latents(config.samples, bundle.latent_dim, config.seed)
        frames = renderer.render(noise, upscale=config.display)
        alternatives = {}
        if config.display:
            size = frames.shape[1]
            alternatives["bicubic"] = np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_CUBIC)
                                                for frame in renderer.render(noise, upscale=False)])
        data_dir = bundle.manifest["generator"].get("training_config", {}).get("data")
        return frames, config.data or data_dir, alternatives
    from training.checkpoints import restore_generator
    from training.runs import to_uint8

    generator, run_config, _ = restore_generator(config.run, config.step, "raw" if config.raw_weights else "exported")
    noise = latents(config.samples, run_config["latent_dim"], config.seed)
    frames = np.concatenate([to_uint8(generator(noise[start : start + 64], training=False))
                             for start in range(0, len(noise), 64)])
    return frames, config.data or run_config["data"], {}


def collection_images(data_dir: str | None, size: int, count: int, seed: int) -> np.ndarray:
    from training import data

    if not data_dir:
        raise ValueError("the bundle does not name its training dataset; pass --data")
    manifest = data.load_manifest(data_dir)
    if int(manifest["image_size"]) < size:
        log.warning("dataset %s holds %s px images: they are enlarged to %d px for the comparison",
                    data_dir, manifest["image_size"], size)
    images, _ = data.load_images(data_dir, size)
    chosen = np.random.default_rng(seed).permutation(len(images))[:count]
    return images[np.sort(chosen)]


def run_quality(config: QualityConfig) -> dict:
    frames, data_dir, alternatives = generated_frames(config)
    collection = collection_images(data_dir, frames.shape[1], config.collection, config.seed)
    report = {**quality.quality_report(frames, collection, config.seed, alternatives), "data": data_dir,
              "source": config.model or config.run, "display": config.display}
    if config.out:
        write_json_atomic(Path(config.out), report)
    if config.record:
        from models.bundle import read_manifest, update_manifest

        section = dict(read_manifest(config.model).get("quality", {}))
        section["display" if config.display else "generator"] = report
        update_manifest(config.model, "quality", section)
    return report


def add_quality_command(commands) -> None:
    parser = commands.add_parser("quality", help="quality figures of a bundle or run against its collection")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model bundle folder")
    source.add_argument("--run", help="DCGAN run folder (its latest checkpoint, averaged weights when present)")
    parser.add_argument("--step", type=int, help="with --run: the checkpoint at this step (default: the latest)")
    parser.add_argument("--raw-weights", action="store_true",
                        help="with --run: the raw generator instead of its weight average (to see what EMA adds)")
    parser.add_argument("--data", help="dataset folder (default: the one the generator was trained on)")
    parser.add_argument("--samples", type=int, default=512, help="generated frames to measure (16..100000)")
    parser.add_argument("--collection", type=int, default=2000,
                        help="collection images, split into two halves: the frames are compared with one, the other "
                             "is the yardstick (the coarsest SWD level and LSD still move between draws of 1,000: "
                             "compare candidates over a few --seed values)")
    parser.add_argument("--seed", type=int, default=0, help="latents, collection split and projections")
    parser.add_argument("--display", action="store_true",
                        help="measure upscaled frames against the collection at the display size")
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--record", action="store_true", help="store the figures in the bundle's manifest")
    parser.set_defaults(handler=lambda args: print_quality(QualityConfig(
        model=args.model, run=args.run, step=args.step, raw_weights=args.raw_weights, data=args.data,
        samples=args.samples, collection=args.collection, seed=args.seed, display=args.display, out=args.out,
        record=args.record)))


def print_quality(config: QualityConfig) -> int:
    report = run_quality(config)
    print(f"{report['samples']} frames at {report['size']} px against {report['reference_images']} collection images "
          f"(the other {report['reference_images']} of {report['collection_images']} are the yardstick; "
          f"{report['data']}), seed {report['seed']}")
    print("\n".join(quality.format_table(report)))
    if config.out:
        print(f"report written to {config.out}")
    return 0




@dataclass(frozen=True)
class CheckpointChoiceConfig:
    run: str
    steps: tuple[int, ...]  # the candidate checkpoints, each measured with the quality command's figures
    data: str | None = None
    samples: int = 512
    collection: int = 2000
    seed: int = 0
    out: str | None = None

    def __post_init__(self):
        if not self.steps:
            raise ValueError("give at least one --steps value")
        if any(step < 1 for step in self.steps) or len(set(self.steps)) != len(self.steps):
            raise ValueError(f"steps {list(self.steps)} must be distinct positive checkpoint steps")
        # The per-step measurement validates the rest, with the quality command's messages.
        QualityConfig(run=self.run, step=self.steps[0], data=self.data, samples=self.samples,
                      collection=self.collection, seed=self.seed)


def choose_step(config: CheckpointChoiceConfig) -> dict:
    """Every candidate checkpoint measured like `quality --run RUN --step STEP`, and the one chosen."""
    reports = {step: run_quality(QualityConfig(run=config.run, step=step, data=config.data, samples=config.samples,
                                               collection=config.collection, seed=config.seed))
               for step in config.steps}
    generated = {step: report["generated"] for step, report in reports.items()}
    chosen = quality.choose_checkpoint(generated)
    choice = {"run": config.run, "seed": config.seed, "targets": quality.GENERATOR_TARGETS, "chosen_step": chosen,
              "misses": {str(step): quality.target_misses(figures) for step, figures in generated.items()},
              "reports": {str(step): report for step, report in reports.items()}}
    if config.out:
        write_json_atomic(Path(config.out), choice)
    return choice


def choice_table(choice: dict) -> list[str]:
    rows = ["| step | SWD x1e3 | LSD | checkerboard | HF ratio | near-identical pairs | memorisation | misses |",
            "|---|---|---|---|---|---|---|---|"]
    for step, report in choice["reports"].items():
        figures = report["generated"]
        rows.append(f"| {step} | {figures['swd']:.2f} | {figures['log_spectral_distance']:.3f} | "
                    f"{figures['checkerboard_ratio']:.2f} | {figures['high_frequency_ratio']:.2f} | "
                    f"{figures['near_identical_pairs']} | {figures['memorisation_share']:.3f} | "
                    f"{', '.join(choice['misses'][step]) or 'none'} |")
    return rows


def print_choice(config: CheckpointChoiceConfig) -> int:
    """The table and the verdict on stderr; the chosen step alone on stdout, for `export --step "$(...)"`."""
    choice = choose_step(config)
    chosen = choice["chosen_step"]
    print("\n".join(choice_table(choice)), file=sys.stderr)
    missed = choice["misses"][str(chosen)]
    verdict = f"misses {', '.join(missed)}: no candidate met every target" if missed else "meets every target"
    print(f"chosen: step {chosen} ({verdict})", file=sys.stderr)
    print(chosen)
    return 0


def add_choose_step_command(commands) -> None:
    parser = commands.add_parser(
        "choose-step", help="measure a DCGAN run's checkpoints and print the step that best meets the targets",
        description="Measure each checkpoint like `quality --run RUN --step STEP` and choose the one whose frames "
                    "miss the fewest generator targets (training/quality.py: GENERATOR_TARGETS), then the lowest "
                    "SWD. The table goes to stderr, the chosen step alone to stdout.")
    parser.add_argument("run", help="DCGAN run folder")
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="candidate checkpoint steps")
    parser.add_argument("--data", help="dataset folder (default: the one the generator was trained on)")
    parser.add_argument("--samples", type=int, default=512, help="generated frames per checkpoint (16..100000)")
    parser.add_argument("--collection", type=int, default=2000, help="collection images, split into two halves")
    parser.add_argument("--seed", type=int, default=0, help="latents, collection split and projections")
    parser.add_argument("--out", help="write every checkpoint's report and the choice here (JSON)")
    parser.set_defaults(handler=lambda args: print_choice(CheckpointChoiceConfig(
        run=args.run, steps=tuple(args.steps), data=args.data, samples=args.samples, collection=args.collection,
        seed=args.seed, out=args.out)))
