#!/usr/bin/env bash
# Speaker verification over seeds: train every SYSTEM x SEED (one run at a time, 1 CPU thread each), export each
# run's best-dev-EER checkpoint (val_eer; last.ckpt if there is none), score it with `zoo score` on
#   so762        the published speechocean762-test list (data/trials/so762_test_trials.txt, reports/sv_v2/README.md)
#   so762_child  its child-only and adult-only subsets (per-age-group EER; per-gender EER is in every report)
#   so762_adult
#   an4sv        AN4-SV eval (all pairs, `zoo data an4-sv`)
# and print mean ± std per system and set (benchmarks/sv.py's table; ecapa* is the baseline, arw* the ARW system).
#
#   bash scripts/sv_seeds.sh [SYSTEMS] [SEEDS] [ROOT]
#   bash scripts/sv_seeds.sh                                          # "ecapa arw" "0 1 2" exp/sv_v2
#   bash scripts/sv_seeds.sh "ecapa arw" "0 1 2 3 4" exp/sv_v2
#   bash scripts/sv_seeds.sh "ecapa_an4 arw_an4" "0 1 2" exp/sv_an4   # the AN4-only recipes, same scoring
#
# SYSTEM is configs/speaker/v2/SYSTEM.yaml, else configs/speaker/SYSTEM.yaml, or a .yaml path (named by its
# file name); an overlay starting with "# base: FILE" is composed after FILE (arw_pl, arw_aps, arw_embedding).
# Runs go to ROOT/SYSTEM/s<seed> (a run with a last.ckpt is not retrained, a run with
# ROOT/.../score/<set>/metrics.json is not rescored).
# v2 runs take ~18 (ecapa) / ~22 (arw) min each on the 2-core dev machine, + ~2-3 min of scoring (4 sets).
# Env: ZOO (default .venv/bin/zoo), PY (.venv/bin/python), ZOO_DATA (corpora), N_BOOT (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
SYSTEMS=${1:-ecapa arw}
SEEDS=${2:-${SEEDS:-0 1 2}}
ROOT=${3:-exp/sv_v2}
export OMP_NUM_THREADS=1 WANDB_MODE=offline
ZOO=${ZOO:-.venv/bin/zoo}
PY=${PY:-.venv/bin/python}
N_BOOT=${N_BOOT:-1000}
TRIALS=data/trials/so762_test_trials.txt
mkdir -p "$ROOT" logs

config_of() {
  if [ -f "$1" ]; then echo "$1"
  elif [ -f "configs/speaker/v2/$1.yaml" ]; then echo "configs/speaker/v2/$1.yaml"
  elif [ -f "configs/speaker/$1.yaml" ]; then echo "configs/speaker/$1.yaml"
  else echo "no config for system '$1' (configs/speaker/v2/$1.yaml or configs/speaker/$1.yaml)" >&2; exit 2; fi
}
# --config arguments of a system: an overlay whose first line is "# base: FILE" (relative to its folder) is
# composed after its base, e.g. arw_pl -> --config configs/speaker/v2/arw.yaml --config configs/speaker/v2/arw_pl.yaml
config_args() {
  local cfg base
  cfg=$(config_of "$1") || exit 2
  base=$(sed -n '1s/^# base: *//p' "$cfg")
  if [ -n "$base" ]; then config_args "$(dirname "$cfg")/$base"; fi
  printf -- '--config %s ' "$cfg"
}
for sys in $SYSTEMS; do config_of "$sys" > /dev/null; done

# evaluation data, once per ROOT: manifest of the published list with this machine's audio paths (never
# committed), its per-age-group subsets, and the AN4-SV eval manifest + trials
[ -f "$ROOT/so762_test.jsonl" ] || $PY -m zoo.data.trials manifest "$ROOT/so762_test.jsonl"
[ -f "$ROOT/so762_test_trials.child.txt" ] || $PY -m zoo.data.trials cohorts "$ROOT"
[ -f "$ROOT/an4sv/eval_trials.txt" ] || $ZOO data an4-sv --out "$ROOT/an4sv" > /dev/null

score() {  # run-dir set trials manifest
  local out=$1/score/$2
  [ -f "$out/metrics.json" ] && return 0
  $ZOO score --model "$1/model" --trials "$3" --manifest "$4" --n-boot "$N_BOOT" --out "$out" > "$out.log" 2>&1 \
    || { echo "scoring $1 on $2 failed: see $out.log" >&2; return 1; }
}

for s in $SEEDS; do
  for cfg in $SYSTEMS; do
    sys=$(basename "$cfg" .yaml)
    run=$ROOT/$sys/s$s
    name=$(echo "${ROOT}_${sys}_s$s" | tr '/' '_')
    if [ ! -f "$run/checkpoints/last.ckpt" ]; then
      echo "$(date +%T) train $run"
      $ZOO fit $(config_args "$cfg") --seed "$s" --data.seed "$s" \
        --trainer.default_root_dir "$run" --trainer.logger.init_args.name "$name" \
        --trainer.enable_progress_bar false > "logs/$name.log" 2>&1
    fi
    if [ ! -f "$run/model/config.json" ]; then
      ckpt=$(ls "$run"/checkpoints/best-*.ckpt 2> /dev/null | head -n 1 || true)
      $ZOO export "${ckpt:-$run/checkpoints/last.ckpt}" "$run/model" > /dev/null
    fi
    mkdir -p "$run/score"
    echo "$(date +%T) score $run"
    score "$run" so762 "$TRIALS" "$ROOT/so762_test.jsonl"
    score "$run" so762_child "$ROOT/so762_test_trials.child.txt" "$ROOT/so762_test.jsonl"
    score "$run" so762_adult "$ROOT/so762_test_trials.adult.txt" "$ROOT/so762_test.jsonl"
    score "$run" an4sv "$ROOT/an4sv/eval_trials.txt" "$ROOT/an4sv/eval.jsonl"
  done
done

NAMES=$(for cfg in $SYSTEMS; do basename "$cfg" .yaml; done)
$PY - "$ROOT" $NAMES <<'EOF' | tee "$ROOT/summary.txt"
import glob, json, sys
sys.path.insert(0, "benchmarks")
from sv import summarise

root, systems = sys.argv[1], sys.argv[2:]
label = {s: "baseline" if s.startswith("ecapa") else "arw" if s.startswith("arw") else s for s in systems}
if len(set(label.values())) < len(systems):  # e.g. ecapa and ecapa_an4 together: keep the names
    label = {s: s for s in systems}
for name in ("so762", "so762_child", "so762_adult", "an4sv"):
    groups = {}
    for s in systems:
        reps = [json.load(open(f)) for f in sorted(glob.glob(f"{root}/{s}/s*/score/{name}/metrics.json"))]
        if reps:
            groups.setdefault(label[s], []).extend(reps)
    if groups:
        print(f"== {name}: mean ± std over seeds ({', '.join(f'{g} {len(v)}' for g, v in groups.items())} runs)")
        print(summarise(groups) + "\n")
EOF
