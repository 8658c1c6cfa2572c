#!/usr/bin/env bash
# The flagship 512 px bundle (issue 15): the refined 128 px generator and the detail-restoring x4 upscaler, rebuilt
# from nothing on a CPU with Masquerade's own commands. Not yet the bundled default: see bench/README.md,
# "Generator quality", for where its generator stands.
# Usage: bash training/recipes/flagship_512.sh   (PYTHON, WORK, OUT and *_STEPS may be overridden)
# Interrupted? Run it again with RESUME=1: training continues from the last checkpoints.
source "$(dirname "$0")/common.sh"  # set -euo pipefail, repository root, PYTHON, RESUME
WORK=${WORK:-build/flagship}
OUT=${OUT:-assets/models/flagship}
DCGAN_STEPS=${DCGAN_STEPS:-12000}
SR_PRETRAIN_STEPS=${SR_PRETRAIN_STEPS:-1500}
SR_GAN_STEPS=${SR_GAN_STEPS:-6000}

if [ "$RESUME" = 0 ]; then
    synthetic_dataset 256 "$WORK/masks" "$WORK/dataset"
    # The refined 128 px generator (bench/README.md, "Generator quality", measures each choice): resize-convolution
    # (no checkerboard by construction), hinge loss with a spectrally normalised discriminator that sees each
    # batch's variety (minibatch standard deviation), DiffAugment on real and generated images (a 3,000-image
    # collection is its case), mirrored reals, and the exponential moving average of G's weights as the export.
    "$PYTHON" -m training dcgan --data "$WORK/dataset" --out "$WORK/dcgan" --resolution 128 --width-multiplier 0.25 \
        --steps "$DCGAN_STEPS" --batch-size 32 --strategy cpu --sample-every 500 --checkpoint-every 250 \
        --seed 3 --upsampling resize --loss hinge --spectral-norm true --minibatch-stddev true \
        --augment color,translation,cutout --flip true --ema-decay 0.999
    # The x4 upscaler learns from the collection rendered at 512 px, on inputs degraded like generator frames
    # (training/degrade.py), by L1 pretraining then adversarial fine-tuning against a patch critic; the
    # weight average is what gets exported. 32 filters x 6 layers + 8 full-size channels: 1.7x the time of the
    # same net without them (5.9 ms per 128 -> 512 frame unloaded), so about 10 ms.
    synthetic_dataset 512 "$WORK/masks512" "$WORK/dataset512"
    "$PYTHON" -m training srgan --data "$WORK/dataset512" --out "$WORK/sr" --architecture realtime \
        --num-filters 32 --num-layers 6 --hr-channels 8 --hr-size 96 --batch-size 16 --holdout 64 \
        --degradation generator --pretrain-steps "$SR_PRETRAIN_STEPS" --learning-rate 5e-4 \
        --gan-steps "$SR_GAN_STEPS" --discriminator patch --discriminator-filters 24 --discriminator-layers 3 \
        --gan-loss ragan --content-loss discriminator --content-weight 1 --pixel-weight 1 --period-weight 10 \
        --adversarial-weight 0.01 --ema-decay 0.99 --gan-learning-rate 2e-4 --discriminator-learning-rate 2e-4 --strategy cpu \
        --checkpoint-every 250 --sample-every 500 --seed 1
else
    "$PYTHON" -m training dcgan --out "$WORK/dcgan" --resume --steps "$DCGAN_STEPS"
    "$PYTHON" -m training srgan --out "$WORK/sr" --resume --pretrain-steps "$SR_PRETRAIN_STEPS" \
        --gan-steps "$SR_GAN_STEPS"
fi
export_bundle "$WORK/dataset512"
"$PYTHON" -m training quality --model "$OUT.new" --data "$WORK/dataset" --record
"$PYTHON" -m training quality --model "$OUT.new" --data "$WORK/dataset512" --display --record
publish_bundle training/recipes/flagship_512.sh
