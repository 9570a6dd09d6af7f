#!/usr/bin/env bash
# Train and evaluate lifters in ONE command on a GPU machine (issue 19), everything in $OUT_DIR.
#   DATA_DIR: a copy of shared/data with mocap/ and humaneva/ (the GPU machine has no ../shared)
#   MINUTES:  training budget per model (both models train side by side on the one GPU)
#   DEVICE:   cuda (cpu for the dry run)    WORKERS: data processes per model
# Two runs, same model (d_m 128, d_l 6, 8 heads, T 81) and data (cmu_h36m + cmu_more, cleaned),
# differing only in augmentation (v2 vs v3), so the augmentation's effect is measured too.
set -uo pipefail
DATA_DIR=${DATA_DIR:-../shared/data}; OUT_DIR=${OUT_DIR:-runs/gpu}; MINUTES=${MINUTES:-10}
DEVICE=${DEVICE:-cuda}; WORKERS=${WORKERS:-7}; BATCH=${BATCH:-256}; EPOCH_STEPS=${EPOCH_STEPS:-1500}
export POSECLI_SHARED_DATA=$DATA_DIR PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
mkdir -p "$OUT_DIR"
run() {  # name aug
  python -m posecli.cli train -o "$OUT_DIR/$1" --data cmu --more-data --clean --aug "$2" \
    --frames 81 --width 128 --depth 6 --heads 8 --batch "$BATCH" --lr 1e-3 --lr-min 1e-5 \
    --schedule cosine_time --time-limit "$MINUTES" --warmup-steps 300 --epochs 100000 \
    --steps-per-epoch "$EPOCH_STEPS" --device "$DEVICE" --workers "$WORKERS" --threads 1 --no-progress \
    > "$OUT_DIR/$1.train.log" 2>&1
}
nvidia-smi -L > "$OUT_DIR/gpu.txt" 2>&1; python -c "import torch; print(torch.__version__)" >> "$OUT_DIR/gpu.txt"
run v2aug v2 & run v3aug v3 & wait
for m in v2aug v3aug; do
  for d in cmu cmu-clean cmu-more humaneva; do
    python -m posecli.cli evaluate -w "$OUT_DIR/$m/final.pt" --data "$d" --device "$DEVICE" --threads 4 \
      --json "$OUT_DIR/$m/eval_$d.json" >> "$OUT_DIR/$m.eval.log" 2>&1 &
  done
done
wait
tail -n 3 "$OUT_DIR"/*.train.log; grep -h "all frames" "$OUT_DIR"/*.eval.log
