#!/usr/bin/env bash
# Baseline (ecapa_an4) vs ARW (arw_an4) over seeds 0..2, one run at a time, 1 CPU thread each; then the
# side-by-side table. Each run is 600 learner steps (~7 min on the 2-core dev machine).
#   bash scripts/sv_seeds.sh            # seeds 0 1 2
#   SEEDS="0 1 2 3 4" bash scripts/sv_seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 WANDB_MODE=offline
ZOO=${ZOO:-.venv/bin/zoo}
mkdir -p logs
for s in ${SEEDS:-0 1 2}; do
  for kind in ecapa arw; do
    run=${kind}_an4_s$s
    [ -f exp/$run/checkpoints/last.ckpt ] && continue
    $ZOO fit --config configs/speaker/${kind}_an4.yaml --seed $s --data.seed $s \
      --trainer.default_root_dir exp/$run --trainer.logger.init_args.name $run \
      --trainer.enable_progress_bar false > logs/$run.log 2>&1
  done
done
.venv/bin/python benchmarks/sv.py --baseline exp/ecapa_an4_s*/checkpoints/last.ckpt --arw exp/arw_an4_s*/checkpoints/last.ckpt
