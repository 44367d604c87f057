#!/usr/bin/env bash
# The comparison redone (issue 38, item 4): density, + one-hot, + structRFM (random weights)
# on the multi-entry fixture, 5 folds x 3 seeds, paired comparisons, and a learning curve of
# the density arm (25 / 50 / 100 % of the training folds). Results: benchmarks/RESULTS.md,
# "The comparison redone (issue 38, item 4)".
#
#   benchmarks/compare_arms.sh [store|train|compare|all]   (default all; run from the repo root)
#
# Environment: WORK (default /tmp/cmp), SHARED (default ../shared/data), EPOCHS (default 6),
# SEEDS (default 3), THREADS (torch threads per training process, default 1). The three
# training streams run side by side, each with nice -n 19, --workers 0 and THREADS threads,
# on the CPU (a 2-core machine shared with others). Pretrained structRFM: embed with
# --checkpoint DIR instead of --random-weights and train with --sequence structrfm.
set -euo pipefail
WORK=${WORK:-/tmp/cmp}
SHARED=${SHARED:-../shared/data}
EPOCHS=${EPOCHS:-6}
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

arm() {  # arm NAME [train flags...]
  local name=$1; shift
  $RM train --root "$STORE" --all-folds --seeds "$SEEDS" --epochs "$EPOCHS" --workers 0 --device cpu \
    --no-progress --overwrite --out "$RUNS/$name" "$@" > "$RUNS/$name.log" 2>&1
}

train() {
  mkdir -p "$RUNS"
  { arm density --network motif3dcnn; arm density-25 --network motif3dcnn --train-fraction 0.25; } &
  { arm onehot --network motif3dcnn_seq --sequence onehot; arm density-50 --network motif3dcnn --train-fraction 0.5; } &
  { arm structrfm --network motif3dcnn_seq --sequence structrfm-random; } &
  wait
}

compare() {
  local out=$RUNS/comparison.md
  : > "$out"
  for metric in macro_sensitivity motif_vs_unknown_auc motif_vs_unknown_balanced_accuracy; do
    for pair in "density onehot" "density structrfm" "onehot structrfm" "density density-50" "density density-25"; do
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
  train) train ;;
  compare) compare ;;
  all) store; train; compare ;;
  *) echo "usage: $0 [store|train|compare|all]" >&2; exit 2 ;;
esac
