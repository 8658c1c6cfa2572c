#!/usr/bin/env bash
# Rebuild assets/models/default, the 512 px flagship, on a 2-core CPU with Masquerade's own commands, from nothing but
# the base upscaler it fine-tunes: the 128 px generator (issue 14) and the detail-restoring x4 upscaler (issue 15).
# About two hours in all; bench/README.md ("Generator quality", "Upscaler quality") measures every choice below.
# Usage: bash training/recipes/default_bundle.sh   (PYTHON, WORK, OUT and *_STEPS may be overridden)
# Interrupted? Run it again with RESUME=1: training continues from the last checkpoints.
# The classic 64 px DCGAN of the original project stays available: training/recipes/classic_64.sh.
# Status: the bundle in assets/models/default was built by an earlier recipe (its MODEL_CARD.md quotes it). This
# recipe's generator meets every 128 px target (two draws); its fine-tuned upscaler, as below, kept the shapes but
# lost the base's texture (display: high frequencies 0.16, SWD 24% below bicubic), so it was not published
# (bench/README.md, "A fine-tuned upscaler").
source "$(dirname "$0")/common.sh"  # set -euo pipefail, repository root, PYTHON, RESUME
WORK=${WORK:-build/default-bundle}
OUT=${OUT:-assets/models/default}
# 2,500 generator steps, then the quality command chooses among the last three checkpoints (choose-step): the
# checkerboard ratio moves between neighbouring checkpoints of one run, so no fixed step meets its target in every
# training draw (bench/README.md, "The spectral term in the recipe").
DCGAN_STEPS=${DCGAN_STEPS:-2500}
CANDIDATE_STEPS=${CANDIDATE_STEPS:-"$((DCGAN_STEPS - 500)) $((DCGAN_STEPS - 250)) $DCGAN_STEPS"}
# The upscaler is fine-tuned, not trained from random weights: the base (assets/upscalers/realtime-x4-24x5, its
# README says how it was trained) already restores the collection's detail; 1,500 adversarial steps teach it this
# generator's frames. Trained from random weights it needs 1,000 L1 and 6,000 adversarial steps, about 100 minutes
# here, which with the generator's 60 no longer fits a two-hour budget (bench/README.md, "A fine-tuned upscaler").
BASE_UPSCALER=${BASE_UPSCALER:-assets/upscalers/realtime-x4-24x5}
SR_PRETRAIN_STEPS=${SR_PRETRAIN_STEPS:-0}
SR_GAN_STEPS=${SR_GAN_STEPS:-1500}

if [ "$RESUME" = 0 ]; then
    synthetic_dataset 256 "$WORK/masks" "$WORK/dataset"
    # The 128 px generator: resize-convolution (no checkerboard by construction) with sub-pixel convolution to
    # RGB, the non-saturating loss against a batch-normalised discriminator that sees each batch's variety
    # (minibatch standard deviation), DiffAugment (colour, translation) on real and generated images alike, mirrored
    # reals, bounded mode seeking against repeated faces, the spectral term that holds each batch's radial power
    # spectrum to the collection's (its finest octave above all), the checkerboard term that holds the 15 period-2
    # and period-4 frequencies the radial spectrum cannot see under the collection's, and the exponential moving
    # average of G's weights as the export, its batch-norm statistics re-estimated for those weights. (Hinge loss
    # with a spectrally normalised D at this width learned too slowly on a CPU budget: its D loss stayed near
    # chance and the samples collapsed; see bench/README.md.)
    "$PYTHON" -m training dcgan --data "$WORK/dataset" --out "$WORK/dcgan" --resolution 128 --width-multiplier 0.25 \
        --steps "$DCGAN_STEPS" --batch-size 32 --strategy cpu --sample-every 500 --checkpoint-every 250 \
        --keep-checkpoints 20 --seed 3 --upsampling resize --loss bce --minibatch-stddev true \
        --augment color,translation --flip true --ema-decay 0.999 --rgb-upsampling subpixel --mode-seeking 1 \
        --mode-seeking-bound 0.2 --spectral-weight 2 --checkerboard-weight 1
else
    "$PYTHON" -m training dcgan --out "$WORK/dcgan" --resume --steps "$DCGAN_STEPS"
fi
# shellcheck disable=SC2086  # the candidate steps are separate arguments
DCGAN_STEP=$("$PYTHON" -m training choose-step "$WORK/dcgan" --steps $CANDIDATE_STEPS --out "$WORK/step-choice.json")
"$PYTHON" -m training export "$WORK/dcgan" --out "$WORK/generator-bundle" --step "$DCGAN_STEP"

if [ "$RESUME" = 0 ]; then
    # The x4 upscaler, fine-tuned from the base, learns from the collection rendered at 512 px, on inputs degraded
    # like generator frames (training/degrade.py), adversarially (RaGAN) against a patch critic, with the
    # critic's features as content loss, an L1 term and a period penalty against hatching; half of the critic's
    # fakes are the generator's own frames upscaled (unpaired: they have no original), so it learns to dress
    # those in the collection's texture, held to their shapes (each upscaled frame shrunk back x4 must match the
    # frame) and kept free of the grid-locked and local grain that the adversarial terms print into them (the
    # grain term light: at weight 1 it also took the fine texture); the weight average is exported. 24 filters
    # x 5 layers + 4 full-size channels: chosen by bench/sr_latency.py to leave room for the generator inside 30
    # new frames a second at 512 px.
    synthetic_dataset 512 "$WORK/masks512" "$WORK/dataset512"
    "$PYTHON" -m training srgan --data "$WORK/dataset512" --out "$WORK/sr" --architecture realtime \
        --num-filters 24 --num-layers 5 --hr-channels 4 --hr-size 96 --batch-size 16 --holdout 64 \
        --degradation generator --init-upscaler "$BASE_UPSCALER" --pretrain-steps "$SR_PRETRAIN_STEPS" \
        --learning-rate 5e-4 --gan-steps "$SR_GAN_STEPS" --discriminator patch --discriminator-filters 24 \
        --discriminator-layers 3 --gan-loss ragan --content-loss discriminator --content-weight 1 --pixel-weight 1 \
        --period-weight 10 --adversarial-weight 0.01 --ema-decay 0.99 --gan-learning-rate 2e-4 \
        --discriminator-learning-rate 2e-4 --strategy cpu --checkpoint-every 250 --sample-every 500 --seed 1 \
        --generator-bundle "$WORK/generator-bundle" --generator-fraction 0.5 --generator-period-weight 10 \
        --generator-consistency-weight 2 --generator-grain-weight 0.1
else
    "$PYTHON" -m training srgan --out "$WORK/sr" --resume --pretrain-steps "$SR_PRETRAIN_STEPS" \
        --gan-steps "$SR_GAN_STEPS"
fi
export_bundle "$WORK/dataset512"
"$PYTHON" -m training quality --model "$OUT.new" --data "$WORK/dataset" --record
"$PYTHON" -m training quality --model "$OUT.new" --data "$WORK/dataset512" --display --record
publish_bundle training/recipes/default_bundle.sh
