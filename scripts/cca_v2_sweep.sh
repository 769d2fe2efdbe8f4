#!/usr/bin/env bash
# CCA on recipe v2 (issue 15): every arm fine-tunes the v2 all-on Transformer (transformer-rnnt-an4-so762) for the
# same 1,000 steps (configs/asr/v2/cca_ft.yaml), one run at a time, 1 CPU thread each:
#   allon          no gates, full context (the control: same extra training as every other arm)
#   lam<L>         CCA gates, full context, lambda L        (init: cca_init_from_allon.py)
#   win<W>         sliding window W, no gates                (init: ... --window W --no-gates)
#   win<W>_lam<L>  CCA gates on the sliding-window encoder   (init: ... --window W)
# then benchmarks/cca_pareto.py on AN4 dev (the lambda choice: cheapest within 3% relative dev WER of allon) and,
# once, on AN4 test.
#   bash scripts/cca_v2_sweep.sh [ARMS] [ROOT]
#   bash scripts/cca_v2_sweep.sh "allon lam2 lam4 lam8 lam16 win8 win8_lam4" exp/cca_v2
# A run with a last.ckpt is not retrained. Env: ZOO (default .venv/bin/zoo), PY (.venv/bin/python), ZOO_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
ARMS=${1:-allon lam2 lam4 lam8 lam16 win8 win8_lam4}
ROOT=${2:-exp/cca_v2}
ALLON=transformer-rnnt-an4-so762
export OMP_NUM_THREADS=1 WANDB_MODE=offline
ZOO=${ZOO:-.venv/bin/zoo}
PY=${PY:-.venv/bin/python}
mkdir -p "$ROOT"

for arm in $ARMS; do
  run=$ROOT/$arm
  if [ -f "$run/checkpoints/last.ckpt" ]; then echo "$arm: trained"; continue; fi
  lam=0 win=0 gates=yes
  num='[0-9]+([.][0-9]+)?'
  if [ "$arm" = allon ]; then gates=no
  elif [[ $arm =~ ^lam($num)$ ]]; then lam=${BASH_REMATCH[1]}
  elif [[ $arm =~ ^win([0-9]+)_lam($num)$ ]]; then win=${BASH_REMATCH[1]}; lam=${BASH_REMATCH[2]}
  elif [[ $arm =~ ^win([0-9]+)$ ]]; then win=${BASH_REMATCH[1]}; gates=no
  else echo "error: unknown arm '$arm' — use allon, lam<L>, win<W> or win<W>_lam<L>" >&2; exit 2
  fi
  if [ "$arm" = allon ]; then init=$ALLON
  else
    init=$ROOT/init_w${win}$([ $gates = no ] && echo _nogates || true)
    [ -f "$init/config.json" ] || $PY scripts/cca_init_from_allon.py $ALLON "$init" --window "$win" \
      $([ $gates = no ] && echo --no-gates || true)
  fi
  echo "$arm: init $init, lambda $lam ($(date +%H:%M))"
  $ZOO fit --config configs/asr/v2/base.yaml --config configs/asr/v2/transformer.yaml --config configs/asr/v2/cca_ft.yaml \
    --model.init_args.init_from "$init" --model.init_args.compute_weight "$lam" \
    --trainer.default_root_dir "$run" --trainer.logger.init_args.name "cca_v2_$arm" \
    --trainer.enable_progress_bar false > "$run.log" 2>&1
done
