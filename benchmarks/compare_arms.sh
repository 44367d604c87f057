#!/usr/bin/env bash
# The comparison redone (issue 38, item 4): density, + one-hot, + structRFM (random weights)
# on the multi-entry fixture, 5 folds x 3 seeds, paired comparisons, and a learning curve of
# the density arm (25 / 50 / 100 % of the training folds). Results: benchmarks/RESULTS.md,
# "The comparison redone (issue 38, item 4)".
#
#   benchmarks/compare_arms.sh [store|first|curve|extend|compare|all]   (default all; run from the repo root)
#
# Environment: WORK (default /tmp/cmp), SHARED (default ../shared/data), EPOCHS_FIRST (default
# 6) and EPOCHS (default 10), SEEDS (default 3), THREADS (torch threads per training process,
# default 1). Phases: store; first (the three arms, EPOCHS_FIRST epochs); curve (the density
# arm on 25 and 50 % of the training folds, EPOCHS epochs; may run beside first); extend (the
# three arms resumed to EPOCHS epochs; their EPOCHS_FIRST summaries kept as RUNS/ARM-6ep.json);
# compare. Every training process runs with nice -n 19, --workers 0 and THREADS threads, on the
# CPU (a 2-core machine shared with others), several side by side. Pretrained structRFM: embed with
# --checkpoint DIR instead of --random-weights and train with --sequence structrfm.
set -euo pipefail
WORK=${WORK:-/tmp/cmp}
SHARED=${SHARED:-../shared/data}
EPOCHS_FIRST=${EPOCHS_FIRST:-6}
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-3}
THREADS=${THREADS:-1}
STORE=$WORK/fixture/store.zarr
RUNS=$WORK/runs
RM="nice -n 19 python -m rnamotif_data"
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
phase=${1:-all}

store() {
  # the fixture with its default settings: 15 Atlas entries + 6V5B (maps simulated at 4 A) and
  # every 4th row of the 50S manifest (4 real cryoDRGN volumes of one model)
  $RM multi-entry --shared "$SHARED" --out "$WORK/fixture" --build
  $RM split "$STORE" --level identity --homology-dir "$SHARED/homology" --report
  $RM embed "$STORE" --embedder onehot --mirror "$WORK/fixture/mirror" --no-progress
  # no pretrained checkpoint here: structRFM refuses to run without one unless asked for an
  # untrained control, stored as 'structrfm-random'
  $RM embed "$STORE" --embedder structrfm --random-weights --mirror "$WORK/fixture/mirror" --no-progress
}

arm() {  # arm NAME MODE EPOCHS [train flags...]; MODE --overwrite (a new run) or --resume (more epochs)
  local name=$1 mode=$2 epochs=$3; shift 3
  $RM train --root "$STORE" --all-folds --seeds "$SEEDS" --epochs "$epochs" --workers 0 --device cpu \
    --no-progress "$mode" --out "$RUNS/$name" "$@" >> "$RUNS/$name.log" 2>&1
}

ARMS=("density --network motif3dcnn"
      "onehot --network motif3dcnn_seq --sequence onehot"
      "structrfm --network motif3dcnn_seq --sequence structrfm-random")

first() {  # the three arms, EPOCHS_FIRST epochs each, side by side
  mkdir -p "$RUNS"
  for a in "${ARMS[@]}"; do set -- $a; arm "$1" --overwrite "$EPOCHS_FIRST" "${@:2}" & done
  wait
}

extend() {  # keep the first pass's summaries, then --resume every run to EPOCHS epochs (on CPU
            # bit-identical to training EPOCHS epochs from the start)
  for a in "${ARMS[@]}"; do set -- $a; cp "$RUNS/$1/cv_summary.json" "$RUNS/$1-${EPOCHS_FIRST}ep.json"; done
  for a in "${ARMS[@]}"; do set -- $a; arm "$1" --resume "$EPOCHS" "${@:2}" & done
  wait
}

curve() {  # the learning curve of the density arm: 25 and 50 % of the training folds (100 %: the arm)
  mkdir -p "$RUNS"
  arm density-25 --overwrite "$EPOCHS" --network motif3dcnn --train-fraction 0.25 &
  arm density-50 --overwrite "$EPOCHS" --network motif3dcnn --train-fraction 0.5 &
  wait
}

compare() {
  local out=$RUNS/comparison.md
  : > "$out"
  for metric in macro_sensitivity motif_vs_unknown_auc motif_vs_unknown_balanced_accuracy; do
    for pair in "density onehot" "density structrfm" "onehot structrfm" "density density-50" "density density-25" "density-50 density-25"; do
      set -- $pair
      python -m rnamotif_data compare "$RUNS/$1" "$RUNS/$2" --names "$1" "$2" --metric "$metric" >> "$out"
      echo >> "$out"
    done
  done
  python benchmarks/compare_arms_summary.py "$RUNS" density onehot structrfm density-50 density-25 > "$RUNS/arms.md"
  echo "wrote $out and $RUNS/arms.md"
}

case $phase in
  store) store ;;
  first) first ;;
  curve) curve ;;
  extend) extend ;;
  compare) compare ;;
  all) store; { first; extend; } & curve; wait; compare ;;
  *) echo "usage: $0 [store|first|curve|extend|compare|all]" >&2; exit 2 ;;
esac
