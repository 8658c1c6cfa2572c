#!/usr/bin/env bash
# The classic 64 px DCGAN of the original project (transposed convolutions) with the pixel-loss upscaler at 256 px:
# the default bundle before the 512 px flagship, kept for comparison (bench/README.md, "Generator quality").
# Usage: bash training/recipes/classic_64.sh   (PYTHON, WORK, OUT and *_STEPS may be overridden)
# Interrupted? Run it again with RESUME=1: training continues from the last checkpoints.
source "$(dirname "$0")/common.sh"  # set -euo pipefail, repository root, PYTHON, RESUME
WORK=${WORK:-build/classic-64}
OUT=${OUT:-assets/models/classic64}
DCGAN_STEPS=${DCGAN_STEPS:-7990}
SR_STEPS=${SR_STEPS:-12000}

if [ "$RESUME" = 0 ]; then
    synthetic_dataset 256 "$WORK/masks" "$WORK/dataset"
    # Two generator updates per D update and one-sided label smoothing, as the classic DCGAN code does: without
    # them D's loss sinks to ~0.01 and some latents collapse onto one mask (seen in a first 23k-step run).
    "$PYTHON" -m training dcgan --data "$WORK/dataset" --out "$WORK/dcgan" --resolution 64 --width-multiplier 0.25 \
        --steps "$DCGAN_STEPS" --batch-size 64 --strategy cpu --sample-every 1000 --checkpoint-every 1000 \
        --generator-updates 2 --label-smoothing 0.1 --seed 3
    "$PYTHON" -m training srgan --data "$WORK/dataset" --out "$WORK/sr" --architecture realtime --hr-size 128 \
        --batch-size 16 --pretrain-steps "$SR_STEPS" --gan-steps 0 --strategy cpu --checkpoint-every 500 --seed 1
else
    "$PYTHON" -m training dcgan --out "$WORK/dcgan" --resume --steps "$DCGAN_STEPS"
    "$PYTHON" -m training srgan --out "$WORK/sr" --resume --pretrain-steps "$SR_STEPS"
fi
export_bundle "$WORK/dataset"
publish_bundle training/recipes/classic_64.sh
