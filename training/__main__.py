"""`python -m training COMMAND`: synthetic, ingest, dcgan, launch, export, srgan, eval-sr, export-sr, index, quality,
choose-step, convert-litert."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from training.options import add_options, explicit_values, from_flat_dict

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, FloatingPointError, NotADirectoryError, ConnectionError)


def run_ingest(args) -> int:
    from training.ingest import IngestConfig, IngestInterrupted, ingest

    config = IngestConfig(
        image_size=args.image_size, min_size=args.min_size, fit=args.fit,
        dedupe_threshold=args.dedupe_threshold, dedupe_pixel_rms=args.dedupe_pixel_rms,
        max_megapixels=args.max_megapixels, metadata=args.metadata,
    )
    try:
        report = ingest(args.source, args.out, config, overwrite=args.overwrite)
    except IngestInterrupted as stopped:
        print(stopped, file=sys.stderr)
        return 128 + stopped.signum
    print(report.summary())
    return 0


def base_config(args, config_class):
    """The config a training command asked for: required flags checked, resumed runs keyed by --out alone."""
    given = explicit_values(args, config_class)
    required = ("out",) if args.resume else ("data", "out")
    missing = [name for name in required if name not in given]
    if missing:
        raise ValueError(f"--{missing[0]} is required" + (": the run folder to resume" if args.resume else ""))
    if args.logical_cpus:
        from training.strategy import use_logical_cpus

        use_logical_cpus(args.logical_cpus)
    return from_flat_dict(config_class, {"data": "", **given} if args.resume else given), set(given)


def run_dcgan(args) -> int:
    from training.cluster import role_from_environment, worker_failures
    from training.dcgan import DCGANConfig, DCGANTrainer
    from training.runs import prepare_run_dir

    role = role_from_environment()
    base, given = base_config(args, DCGANConfig)
    # Only the chief writes the run folder; the other workers of a cluster read its config when resuming.
    config = prepare_run_dir(base.out, base, resume=args.resume, explicit=given, write=role.chief)
    with worker_failures(role):
        result = DCGANTrainer(config).train()
    where = f"checkpoints in {config.out}" if role.chief else f"{role.name} of {role.workers}"
    print(f"done: step {result['step']}, d_loss {result.get('d_loss', float('nan')):.4f}, "
          f"g_loss {result.get('g_loss', float('nan')):.4f}; {where}")
    return 0


def run_export(args) -> int:
    from training.export import export_generator

    manifest = export_generator(args.run, args.out, args.step)
    print(f"exported generator (step {manifest['generator']['steps']}) to {args.out}")
    return 0


def run_srgan(args) -> int:
    from training.srgan import SRGANConfig, SRGANTrainer, prepare_srgan_run

    base, given = base_config(args, SRGANConfig)
    config = prepare_srgan_run(base, resume=args.resume, explicit=given)
    result = SRGANTrainer(config).train()
    print(f"done: step {result['step']}, psnr {result.get('psnr', float('nan')):.2f} dB on the last batch; "
          f"checkpoints in {config.out}")
    return 0


def run_eval_sr(args) -> int:
    from training.evaluate import evaluate, summary_lines

    result = evaluate(args.model, args.data, args.count, args.out)
    print("\n".join(summary_lines(result)))
    return 0


def run_export_sr(args) -> int:
    from training.export import export_upscaler

    manifest = export_upscaler(args.run, args.out, args.data)
    upscaler = manifest["upscaler"]
    scores = upscaler["metrics"]
    quality = (f"; PSNR-Y {scores['psnr_y']:.2f} dB vs bicubic {scores['bicubic_psnr_y']:.2f} dB" if scores
               else "; no metrics (dataset not reachable)")
    print(f"exported upscaler x{upscaler['scale']} ({upscaler['input_size']} -> {upscaler['output_size']} px, "
          f"step {upscaler['steps']}) to {args.out}{quality}")
    return 0


def add_sr_commands(commands) -> None:
    from training.srgan import SRGANConfig

    srgan = commands.add_parser("srgan", help="train an SRGAN upscaler on an ingested dataset")
    add_options(srgan, SRGANConfig)
    srgan.add_argument("--vgg-random-weights", dest="vgg_random_weights", action="store_const", const=True,
                       default=None, help="Testing only: a VGG content loss with untrained weights.")
    srgan.add_argument("--resume", action="store_true",
                       help="Continue the run in --out at its saved step (may extend --pretrain-steps/--gan-steps).")
    srgan.add_argument("--logical-cpus", type=int, default=0,
                       help="Split the CPU into N logical devices, to exercise replication without GPUs (testing).")
    srgan.set_defaults(handler=run_srgan)

    evaluate = commands.add_parser("eval-sr", help="PSNR/SSIM of an upscaler vs bicubic on held-out images")
    evaluate.add_argument("--model", required=True, help="model bundle with an upscaler, or an SRGAN run folder")
    evaluate.add_argument("--data", help="dataset folder (default: the one the upscaler was trained on)")
    evaluate.add_argument("--count", type=int, help="how many of the last dataset ids (default: the run's holdout)")
    evaluate.add_argument("--out", help="side-by-side PNG to write (LR | bicubic | SR | HR)")
    evaluate.set_defaults(handler=run_eval_sr)

    export = commands.add_parser("export-sr", help="write a run's upscaler into a model bundle, with metrics")
    export.add_argument("run", help="SRGAN training run folder")
    export.add_argument("--out", required=True, help="bundle folder, e.g. assets/models/NAME")
    export.add_argument("--data", help="dataset for the held-out metrics (default: the run's)")
    export.set_defaults(handler=run_export_sr)


def run_index(args) -> int:
    from training.index import IndexConfig, build_index

    config = IndexConfig(bundle=args.model, data=args.data, run=args.run, extractor=args.extractor,
                         vgg_weights=args.vgg_weights, thumb_size=args.thumb_size, update=args.update)
    info = build_index(config)
    print(f"indexed {info['count']} images ({info['computed']} computed, {info['reused']} reused) with the "
          f"{info['extractor']['name']} extractor into {args.model}/{info['path']}")
    return 0


def add_index_command(commands) -> None:
    index = commands.add_parser("index", help="provenance index: dataset features, thumbnails, metadata -> bundle")
    index.add_argument("--model", required=True, help="model bundle to add the index to")
    index.add_argument("--data", required=True, help="the dataset the generator was trained on")
    index.add_argument("--run", help="DCGAN run folder: its discriminator is the extractor (saved into the bundle)")
    index.add_argument("--extractor", choices=("discriminator", "vgg16"), default="discriminator")
    index.add_argument("--vgg-weights", help="VGG16 no-top .h5 (default: the Keras cache; never downloaded)")
    index.add_argument("--thumb-size", type=int, default=128,
                       help="thumbnail side in pixels (8..256); captions draw them up to this size")
    index.add_argument("--update", action="store_true", help="index only images added since (matched by sha256)")
    index.set_defaults(handler=run_index)


def run_convert_litert(args) -> int:
    from training.litert import convert_bundle

    manifest = convert_bundle(args.model, args.vgg_weights)
    converted = [f"{section}: {manifest[section]['litert']['file']}" for section in ("generator", "upscaler", "index")
                 if "litert" in manifest.get(section, {})]
    print(f"converted {args.model} for LiteRT ({', '.join(converted)})")
    return 0


def add_convert_command(commands) -> None:
    convert = commands.add_parser("convert-litert", help="write LiteRT (.tflite) files of a bundle's models for the "
                                  "runtime, without retraining")
    convert.add_argument("--model", required=True, help="model bundle folder")
    convert.add_argument("--vgg-weights", help="VGG16 no-top .h5, for an index built with --extractor vgg16")
    convert.set_defaults(handler=run_convert_litert)


def build_parser() -> argparse.ArgumentParser:
    from training.dcgan import DCGANConfig

    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="image folder -> TFRecord shards + dataset manifest")
    ingest.add_argument("source", help="the artist's image folder (searched recursively)")
    ingest.add_argument("--out", required=True, help="dataset folder to write (local or gs://)")
    ingest.add_argument("--image-size", type=int, default=256)
    ingest.add_argument("--min-size", type=int, default=64)
    ingest.add_argument("--fit", choices=("crop", "pad", "object"), default="crop",
                        help="crop: centre square; pad: letterbox; object: keep the object whole (plain backgrounds)")
    ingest.add_argument("--dedupe-threshold", type=int, default=6,
                        help="pHash Hamming distance of near-duplicate candidates; -1 disables")
    ingest.add_argument("--dedupe-pixel-rms", type=float, default=0.025,
                        help="a candidate is dropped only if its 16 px grey thumbnail differs by at most this RMS")
    ingest.add_argument("--max-megapixels", type=int, default=64,
                        help="larger images are reported, not decoded (JPEGs count at their reduced decode scale)")
    ingest.add_argument("--metadata", help="CSV or JSON sidecar (default: metadata.csv/json in the folder)")
    ingest.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    ingest.set_defaults(handler=run_ingest)

    train = commands.add_parser("dcgan", help="train a DCGAN on an ingested dataset")
    add_options(train, DCGANConfig)
    train.add_argument("--resume", action="store_true", help="Continue the run in --out at its saved step.")
    train.add_argument("--logical-cpus", type=int, default=0,
                       help="Split the CPU into N logical devices, to exercise replication without GPUs (testing).")
    train.set_defaults(handler=run_dcgan)

    export = commands.add_parser("export", help="write a run's generator into a model bundle")
    export.add_argument("run", help="training run folder")
    export.add_argument("--out", required=True, help="bundle folder, e.g. assets/models/NAME")
    export.add_argument("--step", type=int, help="the checkpoint saved at this step (default: the latest), for "
                        "example the one the quality command preferred")
    export.set_defaults(handler=run_export)

    add_sr_commands(commands)
    add_index_command(commands)
    add_convert_command(commands)
    from training.quality_cli import add_choose_step_command, add_quality_command

    add_quality_command(commands)
    add_choose_step_command(commands)

    synthetic = commands.add_parser("synthetic", help="generate the procedural mask collection", add_help=False)
    synthetic.set_defaults(handler=None)
    launch = commands.add_parser("launch", help="N local workers of one multi-worker run: launch --workers N -- dcgan",
                                 add_help=False)
    launch.set_defaults(handler=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["synthetic"]:
        from training import synthetic

        return synthetic.main(argv[1:])
    from models.bundle import TRAIN_INSTALL, tensorflow_available

    if not tensorflow_available():
        print(f"error: the studio commands need TensorFlow, which the runtime install leaves out: {TRAIN_INSTALL}",
              file=sys.stderr)
        return 2
    if argv[:1] == ["launch"]:
        from training import launch

        return launch.main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    if not args.verbose:
        # tf.distribute logs every collective it builds at INFO; a multi-worker run would drown in them.
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
    from training.runs import TrainingInterrupted

    try:
        return args.handler(args)
    except TrainingInterrupted as stopped:
        print(f"{stopped}; continue with --resume", file=sys.stderr)
        return 128 + stopped.signum
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (SIGINT)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
