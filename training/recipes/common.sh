# Shared by the bundle recipes (sourced, not run): the settings every recipe reads, and the steps that turn
# finished training runs into a published bundle. A recipe sets WORK and OUT, makes $WORK/dataset (synthetic_dataset),
# trains into $WORK/dcgan and $WORK/sr, then calls export_bundle and publish_bundle.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
RESUME=${RESUME:-0}

# synthetic_dataset SIZE MASKS DATASET: the procedural collection (3000 masks, seed 1) at SIZE px, ingested.
synthetic_dataset() {
    "$PYTHON" -m training synthetic --out "$2" --count 3000 --size "$1" --seed 1 --quiet
    "$PYTHON" -m training ingest "$2" --out "$3" --image-size "$1"
}

# export_bundle SR_DATASET: both runs exported into $OUT.new, with the provenance index of $WORK/dataset; the
# generator at checkpoint $DCGAN_STEP when the recipe set it (its latest otherwise).
export_bundle() {
    rm -rf "$OUT.new" && mkdir -p "$OUT.new"
    "$PYTHON" -m training export "$WORK/dcgan" --out "$OUT.new" ${DCGAN_STEP:+--step "$DCGAN_STEP"}
    "$PYTHON" -m training export-sr "$WORK/sr" --out "$OUT.new" --data "$1"
    "$PYTHON" -m training index --model "$OUT.new" --data "$WORK/dataset" --run "$WORK/dcgan" --thumb-size 128
}

# publish_bundle RECIPE: the inspection report, frame rate and model card of $OUT.new, which then replaces $OUT whole.
publish_bundle() {
    "$PYTHON" -m studio.inspection --model "$OUT.new" --samples 100 --out "$WORK/inspect"
    "$PYTHON" bench/live_fps.py --bundle "$OUT.new" --seconds 20 --json "$WORK/frame_rate.json"
    "$PYTHON" -m studio.model_card --model "$OUT.new" --dcgan-run "$WORK/dcgan" --sr-run "$WORK/sr" \
        --inspect "$WORK/inspect/report.json" --recipe "$1" --frame-rate "$WORK/frame_rate.json" \
        --name "$(basename "$OUT")"
    rm -rf "$OUT.old" && { [ ! -d "$OUT" ] || mv "$OUT" "$OUT.old"; } && mv "$OUT.new" "$OUT" && rm -rf "$OUT.old"
    echo "bundle written to $OUT"
}
