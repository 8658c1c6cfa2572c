"""The SRGAN run's options (`SRGANConfig`), what a config describes (its networks), and the checks a run makes
before it writes anything: fresh (`preflight`) or resumed (`prepare_srgan_run`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from models import bundle, srgan
from training import data, degrade
from training.controller import EVERY, ControllerConfig
from training.options import check_options, option, replace, to_flat_dict
from training.runs import CHECKPOINT_DIR, prepare_run_dir, write_config
from training.strategy import nest_strategy

SCALES = (2, 4)
PIXEL_LOSSES = ("l1", "mse")
CONTENT_LOSSES = ("vgg19", "vgg16", "pixel", "discriminator")
# bce: SRGAN's real/fake cross-entropy; hinge: as in SAGAN/BigGAN; ragan: relativistic average (ESRGAN), where D
# judges whether a real crop looks more real than the average fake and the generator gets gradients from both.
GAN_LOSSES = ("bce", "hinge", "ragan")
# bicubic: clean reductions (the classic SR set-up); generator: training.degrade, inputs that look like GAN frames.
DEGRADATIONS = ("bicubic", "generator")
DEGRADE_FIELDS = tuple(field.name for field in dataclasses.fields(degrade.DegradeConfig) if field.name != "scale")
DEFAULT_FILTERS = {"realtime": 16, "srresnet": 64}
# What fixes an upscaler's weights: a run started from another upscaler (--init-upscaler) must agree on these.
NETWORK_FIELDS = {"realtime": ("architecture", "scale", "num_filters", "num_layers", "hr_channels"),
                  "srresnet": ("architecture", "scale", "num_filters", "num_res_blocks")}
# Network fields added after bundles were first written, with the value every bundle that lacks them was built with.
NETWORK_FIELDS_ADDED_LATER = {"hr_channels": 0}
# The discriminator layer whose activations the "discriminator" content loss compares: 4x filters at 1/8 size.
DISCRIMINATOR_FEATURE_LAYER = "d5_lrelu"
# Stage lengths a resumed run may extend (on top of runs.RESUMABLE_OVERRIDES).
RESUMABLE_STEPS = ("pretrain_steps", "gan_steps")
# Settings of the adversarial stage alone: a resumed run may still change them while no adversarial step has been
# taken, so one pixel-loss pretraining can serve several stage-2 recipes.
STAGE2_SETTINGS = ("gan_learning_rate", "discriminator_learning_rate", "adversarial_weight", "content_weight",
                   "pixel_weight", "period_weight", "generator_period_weight", "generator_consistency_weight",
                   "generator_grain_weight", "gan_loss", "content_loss", "vgg_layer", "vgg_weights")


def degrade_option(name: str, help: str):  # noqa: A002
    """A degradation option: its default is DegradeConfig's, and DegradeConfig checks its range."""
    return option(getattr(degrade.DegradeConfig, name), help + " Used with --degradation generator only.")


@dataclass(frozen=True)
class SRGANConfig(ControllerConfig):
    """An upscaler training run. `vgg_random_weights` exists for tests only: a VGG content loss without weights."""

    data: str = option(help="Dataset folder written by `python -m training ingest` (local or gs://).")
    out: str = option(help="Run folder for the config, checkpoints, sample strips and TensorBoard logs.")
    architecture: str = option("realtime", "Upscaler network: realtime (small, for the live piece) or srresnet.",
                               choices=srgan.UPSCALER_ARCHITECTURES)
    num_filters: int | None = option(None, "Filters per upscaler layer (default: 16 for realtime, 64 for srresnet).",
                                     range="1..1024")
    num_layers: int = option(3, "Convolution layers of the realtime upscaler.", range="1..64")
    num_res_blocks: int = option(16, "Residual blocks of the srresnet upscaler.", range="1..64")
    hr_channels: int = option(0, "Realtime only: channels after the pixel shuffle, mixed by one full-size "
                              "convolution (0: none).", range="0..64")
    scale: int = option(4, "How many times larger the output is than the input, per side.", choices=SCALES)
    hr_size: int = option(256, "Side of the high-resolution training crops in pixels (a multiple of 16).",
                          range="16..4096")
    holdout: int = option(32, "How many of the dataset's last ids are kept out of training for eval-sr.",
                          range=f"0..{10**6}")
    batch_size: int = option(16, "Global batch: crops per step over all replicas.", range="1..65536")
    pretrain_steps: int = option(10_000, "Stage 1 steps: the upscaler alone, on the pixel loss.", range=f"0..{10**9}")
    gan_steps: int = option(10_000, "Stage 2 steps: adversarial fine-tuning after pretraining.", range=f"0..{10**9}")
    pretrain_loss: str = option("l1", "Pixel loss of stage 1.", choices=PIXEL_LOSSES)
    degradation: str = option("bicubic", "Inputs: clean bicubic reductions, or reductions degraded like GAN frames "
                              "(training.degrade).", choices=DEGRADATIONS)
    blur_probability: float = degrade_option("blur_probability", "Chance that an input is blurred.")
    max_blur_sigma: float = degrade_option("max_blur_sigma", "Largest Gaussian blur sigma, in LR pixels.")
    noise_probability: float = degrade_option("noise_probability", "Chance that an input gets Gaussian noise.")
    max_noise: float = degrade_option("max_noise", "Largest noise standard deviation, in [-1, 1] units.")
    checkerboard_probability: float = degrade_option("checkerboard_probability",
                                                     "Chance that an input gets a checkerboard pattern.")
    max_checkerboard: float = degrade_option("max_checkerboard", "Largest amplitude of an added checkerboard.")
    jpeg_probability: float = degrade_option("jpeg_probability", "Chance that an input is JPEG-compressed.")
    min_jpeg_quality: int = degrade_option("min_jpeg_quality", "Lowest JPEG quality of a compressed input.")
    learning_rate: float = option(1e-4, "Adam learning rate of the upscaler in stage 1.", range="(0, 1]")
    gan_learning_rate: float = option(1e-4, "Adam learning rate of the upscaler in stage 2.", range="(0, 1]")
    discriminator_learning_rate: float = option(1e-4, "Adam learning rate of the discriminator.", range="(0, 1]")
    beta1: float = option(0.9, "Adam's first-moment decay for both networks.", range="[0, 1)")
    content_loss: str = option("vgg19", "Stage 2 content loss: VGG features, pixels, or feature matching on the "
                               "discriminator's maps.", choices=CONTENT_LOSSES)
    vgg_weights: str | None = option(None, "VGG no-top .h5 weights for a vgg content loss (default: the Keras "
                                     "cache; never downloaded).")
    vgg_layer: str = option("block5_conv4", "The VGG layer whose activations the content loss compares.")
    vgg_random_weights: bool = option(False, "Testing only: a VGG content loss with untrained weights.", flag=False)
    adversarial_weight: float = option(1e-3, "Weight of the adversarial loss in stage 2.", range="[0, 1]")
    content_weight: float = option(1.0, "Weight of the content loss in stage 2.", range="[0, 1]")
    pixel_weight: float = option(0.0, "Weight of an L1 pixel term kept alongside in stage 2.", range="[0, 1]")
    period_weight: float = option(0.0, "Stage 2: weight of an L1 loss on the pattern of period `scale` locked to "
                                  "the pixel grid (see periodic_pattern).", range="[0, 100]")
    gan_loss: str = option("bce", "Adversarial loss: bce (SRGAN), hinge, or ragan (relativistic average, ESRGAN).",
                           choices=GAN_LOSSES)
    ema_decay: float = option(0.0, "Decay of an exponential moving average of the upscaler's weights, exported "
                              "instead of the raw ones (0: off).", range="[0, 1)")
    discriminator: str = option("srgan", "Discriminator: srgan (batch norm, dense head) or patch (fully "
                                "convolutional, spectrally normalised).", choices=srgan.DISCRIMINATOR_ARCHITECTURES)
    discriminator_filters: int = option(64, "Filters of the discriminator's first layer.", range="1..1024")
    discriminator_dense_units: int = option(1024, "Units of the srgan discriminator's dense layer.",
                                            range="1..65536")
    discriminator_layers: int = option(3, "Stride-2 stages of the patch discriminator.", range="1..8")
    generator_bundle: str | None = option(None, "Bundle whose generator's samples join the fakes of stage 2 "
                                          "(unpaired GAN-artefact training).")
    generator_fraction: float = option(0.5, "Share of the fakes that are upscaled GAN samples with "
                                       "--generator-bundle.", range="[0, 1]")
    generator_period_weight: float = option(0.0, "Stage 2, with --generator-bundle: weight of an L1 loss between "
                                            "the grid-locked pattern averaged over the batch of upscaled GAN samples "
                                            "and over the batch of real crops (see batch_pattern).",
                                            range="[0, 100]")
    generator_consistency_weight: float = option(0.0, "Stage 2, with --generator-bundle: weight of an L1 loss "
                                                 "between each upscaled GAN sample shrunk back x--scale and the "
                                                 "sample itself, so the upscaler adds texture without moving "
                                                 "shapes (see shrink_consistency).", range="[0, 100]")
    generator_grain_weight: float = option(0.0, "Stage 2, with --generator-bundle: weight of a loss on how far the "
                                           "upscaled GAN samples' local power at the checkerboard frequencies "
                                           "(periods 2 and 4) exceeds the real crops', in log units, so the "
                                           "upscaler prints no grain into generated frames (see grain_excess).",
                                           range="[0, 100]")
    init_upscaler: str | None = option(None, "Bundle whose upscaler's weights start this run instead of random "
                                       "ones: fine-tuning, for example on a new generator's frames with "
                                       "--pretrain-steps 0. Its network must be the one this run builds.")
    # The SRGAN run reports at intervals of its own.
    checkpoint_every: int = option(1000, "Save a checkpoint every this many steps.", range=EVERY, kw_only=True)
    sample_every: int = option(1000, "Write a sample strip every this many steps.", range=EVERY, kw_only=True)
    log_every: int = option(100, "Write TensorBoard scalars every this many steps.", range=EVERY, kw_only=True)

    def __post_init__(self):
        nest_strategy(self)
        if self.num_filters is None:
            object.__setattr__(self, "num_filters", DEFAULT_FILTERS.get(self.architecture))
        if self.scale not in SCALES:
            raise ValueError(f"scale {self.scale} is not supported; use 4 (or 2)")
        check_options(self)
        if self.hr_size % 16:
            lower = max(16, self.hr_size // 16 * 16)
            raise ValueError(
                f"hr_size {self.hr_size} must be a multiple of 16 (the discriminator halves it four times, "
                f"and it must divide by the scale); e.g. --hr-size {lower}"
            )
        if self.pretrain_steps + self.gan_steps < 1:
            raise ValueError("pretrain_steps + gan_steps is 0; train for at least one step")
        if self.vgg_weights is not None and not self.content_loss.startswith("vgg"):
            raise ValueError(
                f"vgg_weights is only used with --content-loss vgg19 or vgg16, not {self.content_loss!r}; drop it"
            )
        if self.hr_channels and self.architecture != "realtime":
            raise ValueError("hr_channels applies to the realtime architecture only; drop --hr-channels")
        _ = self.degrade_config  # validates the degradation ranges

    @property
    def degrade_config(self) -> degrade.DegradeConfig:
        return degrade.DegradeConfig(scale=self.scale, **{name: getattr(self, name) for name in DEGRADE_FIELDS})

    @property
    def lr_size(self) -> int:
        return self.hr_size // self.scale

    @property
    def total_steps(self) -> int:
        return self.pretrain_steps + self.gan_steps


def build_upscaler(config: SRGANConfig | dict) -> keras.Model:
    """The upscaler a config describes (a run's config.json as a dict works too)."""
    values = to_flat_dict(config) if isinstance(config, SRGANConfig) else config
    if values["architecture"] == "realtime":
        kwargs = {"num_filters": values["num_filters"], "num_layers": values["num_layers"],
                  "hr_channels": values.get("hr_channels", NETWORK_FIELDS_ADDED_LATER["hr_channels"])}
    else:
        kwargs = {"num_filters": values["num_filters"], "num_res_blocks": values["num_res_blocks"]}
    return srgan.build_upscaler(values["architecture"], scale=values["scale"], **kwargs)


def build_discriminator(config: SRGANConfig) -> keras.Model:
    if config.discriminator == "patch":
        return srgan.patch_discriminator(config.discriminator_filters, config.discriminator_layers)
    return srgan.discriminator(
        config.hr_size, filters=config.discriminator_filters, dense_units=config.discriminator_dense_units
    )


def preflight(config: SRGANConfig) -> dict:
    """Check everything outside the config that a run needs, before anything is written. Returns the manifest."""
    manifest = data.load_manifest(config.data)
    image_size, count = int(manifest["image_size"]), int(manifest["count"])
    if image_size < config.hr_size:
        raise ValueError(
            f"dataset {config.data} holds {image_size} px images, smaller than --hr-size {config.hr_size}; "
            f"use --hr-size {image_size // 16 * 16} or less, or re-ingest with --image-size {config.hr_size}"
        )
    if count - config.holdout < 1:
        raise ValueError(
            f"--holdout {config.holdout} leaves no training images in dataset {config.data} ({count} images); "
            f"use --holdout {count - 1} or less"
        )
    if config.gan_steps and config.content_loss.startswith("vgg") and not config.vgg_random_weights:
        path = Path(config.vgg_weights).expanduser() if config.vgg_weights else None
        if not (path or srgan.default_vgg_weights_path(config.content_loss)).is_file():
            # Raises the models' own FileNotFoundError (what is missing, where to put it, the alternatives)
            # before it builds anything.
            srgan.vgg_content_model(config.vgg_weights, config.vgg_layer, config.content_loss)
    if config.init_upscaler:
        check_init_upscaler(config)
    if config.generator_bundle:
        generator = bundle.read_manifest(config.generator_bundle).get("generator")
        if generator is None:
            raise ValueError(f"--generator-bundle {config.generator_bundle} has no generator; export one first")
        if int(generator["resolution"]) < config.lr_size:
            raise ValueError(
                f"--generator-bundle makes {generator['resolution']} px images, smaller than the "
                f"{config.lr_size} px LR crops --hr-size {config.hr_size} needs; use --hr-size "
                f"{int(generator['resolution']) * config.scale} or less"
            )
    return manifest


def check_init_upscaler(config: SRGANConfig) -> None:
    """--init-upscaler names a bundle with an upscaler whose network (NETWORK_FIELDS) is the one this run builds."""
    upscaler = bundle.read_manifest(config.init_upscaler).get("upscaler")
    if upscaler is None:
        raise ValueError(f"--init-upscaler {config.init_upscaler} has no upscaler; export one first (export-sr)")
    trained = upscaler.get("training_config", {})
    ours = to_flat_dict(config)
    recorded = {**NETWORK_FIELDS_ADDED_LATER, **trained}
    differ = [name for name in NETWORK_FIELDS[config.architecture] if recorded.get(name) != ours[name]]
    if differ:
        theirs = ", ".join(f"--{name.replace('_', '-')} {recorded.get(name, '(unrecorded)')}" for name in differ)
        mine = ", ".join(f"{ours[name]}" for name in differ)
        raise ValueError(f"--init-upscaler {config.init_upscaler} holds an upscaler built with {theirs}, not {mine} "
                         f"as this run asks; pass the same network options")


def init_upscaler_weights(config: SRGANConfig) -> list:
    """The weights of --init-upscaler's upscaler (loaded in safe mode), to start this run's upscaler from."""
    return bundle.load_model(bundle.model_path(config.init_upscaler, "upscaler")).get_weights()


def prepare_srgan_run(config: SRGANConfig, resume: bool, explicit: set[str] = frozenset()) -> SRGANConfig:
    """`runs.prepare_run_dir`, letting a resumed run also extend its stages (`--pretrain-steps`, `--gan-steps`)
    and, before its first adversarial step, change the STAGE2_SETTINGS.

    pretrain_steps may change only while no step on either side of the old and new boundary has been taken,
    so every saved step keeps the stage it was trained in.
    """
    if not resume:
        preflight(config)
        return prepare_run_dir(config.out, config, resume=False, explicit=explicit)
    resolved = prepare_run_dir(config.out, config, resume=True, explicit=explicit)
    overrides = {name: getattr(config, name) for name in RESUMABLE_STEPS if name in explicit}
    saved = int(tf.train.latest_checkpoint(str(Path(config.out) / CHECKPOINT_DIR)).rsplit("-", 1)[-1])
    stage2 = {name: getattr(config, name) for name in STAGE2_SETTINGS
              if name in explicit and getattr(config, name) != getattr(resolved, name)}
    if stage2 and saved > resolved.pretrain_steps:
        flag = "--" + next(iter(stage2)).replace("_", "-")
        raise ValueError(
            f"{config.out} was saved at step {saved}, past pretrain step {resolved.pretrain_steps}: its adversarial "
            f"stage has begun and {flag} can no longer change; start a new run"
        )
    overrides.update(stage2)
    if overrides.get("pretrain_steps", resolved.pretrain_steps) != resolved.pretrain_steps:
        boundary = min(resolved.pretrain_steps, overrides["pretrain_steps"])
        if saved > boundary:
            raise ValueError(
                f"{config.out} was saved at step {saved}, past pretrain step {boundary}; --pretrain-steps can no "
                f"longer change (it is {resolved.pretrain_steps}), extend --gan-steps instead"
            )
    if overrides:
        resolved = replace(resolved, **overrides)
        if stage2:
            preflight(resolved)
        write_config(config.out, resolved)
    return resolved

