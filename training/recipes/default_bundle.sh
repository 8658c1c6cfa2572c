#!/usr/bin/env bash
# Rebuild assets/models/default from nothing, on a CPU, with Masquerade's own commands.
# Usage: bash training/recipes/default_bundle.sh   (PYTHON, WORK, OUT and *_STEPS may be overridden)
# Interrupted? Run it again with RESUME=1: training continues from the last checkpoints.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
WORK=${WORK:-build/default-bundle}
OUT=${OUT:-assets/models/default}
DCGAN_STEPS=${DCGAN_STEPS:-7990}
SR_STEPS=${SR_STEPS:-12000}
RESUME=${RESUME:-0}

if [ "$RESUME" = 0 ]; then
    "$PYTHON" -m training synthetic --out "$WORK/masks" --count 3000 --size 256 --seed 1 --quiet
    "$PYTHON" -m training ingest "$WORK/masks" --out "$WORK/dataset" --image-size 256
    # The refined 128 px generator (bench/README.md, "Generator quality", measures each choice): resize-convolution
    # (no checkerboard by construction), hinge loss with a spectrally normalised discriminator that sees each
    # batch's variety (minibatch standard deviation), DiffAugment on real and generated images (a 3,000-image
    # collection is its case), mirrored reals, and the exponential moving average of G's weights as the export.
    "$PYTHON" -m training dcgan --data "$WORK/dataset" --out "$WORK/dcgan" --resolution 128 --width-multiplier 0.25 \
        --steps "$DCGAN_STEPS" --batch-size 32 --strategy cpu --sample-every 500 --checkpoint-every 250 \
        --seed 3 --upsampling resize --loss hinge --spectral-norm true --minibatch-stddev true \
        --augment color,translation,cutout --flip true --ema-decay 0.999
    "$PYTHON" -m training srgan --data "$WORK/dataset" --out "$WORK/sr" --architecture realtime --hr-size 128 \
        --batch-size 16 --pretrain-steps "$SR_STEPS" --gan-steps 0 --strategy cpu --checkpoint-every 500 --seed 1
else
    "$PYTHON" -m training dcgan --out "$WORK/dcgan" --resume --steps "$DCGAN_STEPS"
    "$PYTHON" -m training srgan --out "$WORK/sr" --resume --pretrain-steps "$SR_STEPS"
fi
rm -rf "$OUT.new" && mkdir -p "$OUT.new"
"$PYTHON" -m training export "$WORK/dcgan" --out "$OUT.new"
"$PYTHON" -m training export-sr "$WORK/sr" --out "$OUT.new" --data "$WORK/dataset"
"$PYTHON" -m training index --model "$OUT.new" --data "$WORK/dataset" --run "$WORK/dcgan" --thumb-size 128
"$PYTHON" -m installation.inspect --model "$OUT.new" --samples 100 --out "$WORK/inspect"
"$PYTHON" -m installation.model_card --model "$OUT.new" --dcgan-run "$WORK/dcgan" --sr-run "$WORK/sr" \
    --inspect "$WORK/inspect/report.json" --recipe training/recipes/default_bundle.sh
rm -rf "$OUT.old" && { [ ! -d "$OUT" ] || mv "$OUT" "$OUT.old"; } && mv "$OUT.new" "$OUT" && rm -rf "$OUT.old"
echo "bundle written to $OUT"
