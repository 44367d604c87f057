#!/usr/bin/env bash
# The segmentation baseline on the largest honest tiled store this machine builds (issue 37,
# item 5): the multi-entry fixture (15 Atlas-entry models + 6V5B chain D with maps simulated
# at 4 A, and the 4 real cryoDRGN 50S volumes) built with --tiles on a 2 A grid, 32^3 tiles
# every 16 voxels, split by Rfam family; UNet3D trained on every fold (nested protocol) and
# scored on the held-out folds, whole maps, pooled. Results: benchmarks/RESULTS.md, "The
# segmentation baseline on the multi-entry store".
#
#   benchmarks/seg_baseline.sh [store|train|eval|seeds|all]   (default all; run from the repo root)
#
# Environment: WORK (default /tmp/seg5), SHARED (default ../shared/data), EPOCHS (per fold,
# default "1:60 2:12 3:12 4:12 5:24": about the same number of tile passes per fold; the
# session that recorded the results trained every fold 12 epochs first and resumed folds 1
# and 5 with --resume --epochs N, the same run as far as the RNG goes), SEEDS (space-separated,
# default "0"), PARALLEL (training processes side by side, default 2; each with THREADS torch
# threads, default 1). Phase seeds: fold 4 with seeds 1 and 2, each scored on fold 4's test maps. `rnamotif train --network unet3d --all-folds
# --seeds N` is the same work in one process, fold after fold; the folds are independent
# (each seeded by --seed), so they are run side by side here.
set -euo pipefail
WORK=${WORK:-/tmp/seg5}
SHARED=${SHARED:-../shared/data}
EPOCHS=${EPOCHS:-"1:60 2:12 3:12 4:12 5:24"}
SEEDS=${SEEDS:-0}
PARALLEL=${PARALLEL:-2}
THREADS=${THREADS:-1}
STORE=$WORK/store2a.zarr
RUNS=$WORK/runs
RM="python -m rnamotif_data"
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
phase=${1:-all}

store() {
  $RM multi-entry --shared "$SHARED" --out "$WORK/fixture"
  # 2 A voxels: the Nyquist spacing of the 4 A simulated maps (the 50S volumes' own voxels are
  # 6.55 A); a 32^3 tile then holds 64 A, a hairpin with its stem; label radius 2 A (a 2 A
  # voxel's half-diagonal is 1.73 A)
  $RM build --manifest "$WORK/fixture/manifest.parquet" --mirror "$WORK/fixture/mirror" --out "$STORE" \
    --tiles --tile-size 32 --tile-stride 16 --tile-block 32 --tile-voxel-size 2 --tile-label-radius 2 --no-progress
  $RM split "$STORE" --tiles --level family --homology-dir "$SHARED/homology"
}

train_fold() {  # seed fold
  local e
  e=$(tr ' ' '\n' <<<"$EPOCHS" | sed -n "s/^$2://p")
  $RM train --network unet3d --root "$STORE" --split "fold$2" --epochs "${e:-12}" --batch-size 8 --seed "$1" \
    --device cpu --out "$RUNS/seed$1/fold$2" --no-progress --overwrite
}

train() {
  export -f train_fold
  export RM STORE RUNS EPOCHS
  for s in $SEEDS; do for k in 2 3 4 1 5; do echo "$s $k"; done; done \
    | xargs -P "$PARALLEL" -L 1 bash -c 'train_fold "$0" "$1"'
}

evaluate() {  # each seed's five folds, pooled
  for s in $SEEDS; do
    $RM evaluate --cv "$RUNS/seed$s" --root "$STORE" --device cpu
    head -25 "$RUNS/seed$s/eval-cv/report.md"
  done
}

seeds() {  # the seed spread on fold 4
  export -f train_fold
  export RM STORE RUNS EPOCHS
  printf '1 4\n2 4\n' | xargs -P "$PARALLEL" -L 1 bash -c 'train_fold "$0" "$1"'
  for s in 1 2; do
    $RM evaluate --checkpoint "$RUNS/seed$s/fold4/best.pt" --root "$STORE" --split fold4 --device cpu
  done
}

case $phase in
  store) store ;;
  train) train ;;
  eval) evaluate ;;
  seeds) seeds ;;
  all) store; train; evaluate; seeds ;;
  *) echo "unknown phase $phase (store|train|eval|seeds|all)" >&2; exit 2 ;;
esac
