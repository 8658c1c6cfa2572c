"""SRGAN upscaler training: pixel-loss pretraining, then adversarial fine-tuning, checkpointed and resumable.

Pairs come from the ingested dataset: a random `hr_size` crop of a stored image (randomly flipped) is the
high-resolution target and its bicubic x`scale` reduction is the input. The last `holdout` ids of the dataset
manifest never enter training; `python -m training eval-sr` measures the upscaler on them.

One global step counter covers both stages: steps below `pretrain_steps` minimise an L1 or MSE pixel loss
(stage 1), the next `gan_steps` minimise content loss + `adversarial_weight` x adversarial loss while the
SRGAN discriminator trains alongside (stage 2).

Stage 2 is configurable along the lines of ESRGAN (Wang et al. 2018): `gan_loss` bce (SRGAN), hinge or ragan
(relativistic average); `discriminator` srgan (BN, dense head) or patch (fully convolutional, spectrally
normalised); `content_loss` discriminator (feature matching on the critic's maps), vgg19/vgg16 or pixel, scaled
by `content_weight`; an L1 term (`pixel_weight`); and `ema_decay`, an average of the upscaler's weights that
export writes. `degradation` generator trains on inputs degraded like GAN frames (training.degrade) instead of
clean bicubic reductions. Until its first adversarial step a resumed run may still change the STAGE2_SETTINGS.
`init_upscaler` starts a run from another bundle's upscaler instead of random weights (fine-tuning: an
upscaler already trained on the collection learns a new generator's frames in a fraction of the steps).

GAN artefacts. The upscaler runs on the DCGAN's 64 px output, which has no high-resolution original, so there
is no paired target for it. With `generator_bundle` set, stage 2 adds an unpaired adversarial term: crops of
G(z) are upscaled and shown to the discriminator as fakes beside the paired fakes, against real HR crops. The
content loss still comes only from real pairs, so fidelity is learned from the dataset, while the adversarial
term pushes the upscaled GAN samples towards the look of real HR crops. `generator_fraction` sets how much of
the fake side (for both networks) the GAN samples make up.

The package's modules: `config` (the options, the networks they describe, the checks before a run), `pairs`
(reductions, held-out ids, the input pipeline), `losses`, and `trainer`. Its public names are importable from
`training.srgan` itself.
"""

from training.srgan.config import (
    CONTENT_LOSSES,
    DEGRADATIONS,
    GAN_LOSSES,
    PIXEL_LOSSES,
    RESUMABLE_STEPS,
    SCALES,
    STAGE2_SETTINGS,
    SRGANConfig,
    build_discriminator,
    build_upscaler,
    preflight,
    prepare_srgan_run,
)
from training.srgan.losses import (
    adversarial_losses,
    batch_pattern,
    feature_matching,
    grain_excess,
    local_grain_power,
    per_example_mean,
    periodic_pattern,
    shrink_consistency,
)
from training.srgan.pairs import (
    bicubic_downscale,
    bicubic_upscale,
    comparison_strip,
    holdout_ids,
    make_pair,
    pair_dataset,
    read_images_by_id,
)
from training.srgan.trainer import SRGANTrainer

__all__ = [
    "CONTENT_LOSSES", "DEGRADATIONS", "GAN_LOSSES", "PIXEL_LOSSES", "RESUMABLE_STEPS", "SCALES", "STAGE2_SETTINGS",
    "SRGANConfig", "SRGANTrainer", "adversarial_losses", "batch_pattern", "bicubic_downscale", "bicubic_upscale",
    "build_discriminator", "build_upscaler", "comparison_strip", "feature_matching", "grain_excess", "holdout_ids",
    "local_grain_power", "make_pair",
    "pair_dataset", "per_example_mean", "periodic_pattern", "prepare_srgan_run", "preflight", "read_images_by_id",
    "shrink_consistency",
]
