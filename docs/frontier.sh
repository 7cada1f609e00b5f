#!/usr/bin/env bash
# The frontier of docs/frontier.md: `fast`'s recipe (fmnist_resnet8, one-cycle SGD, flips, mirror TTA)
# trained for as many epochs as fit about 3, 6, 10 and 20 minutes, three seeds each; the table and the
# plot also score every 2 and every 3 seeds of a budget averaged together (frontier --ensembles).
#   bash docs/frontier.sh [OUT]      (default OUT: runs/frontier; a finished run is not trained again)
# Seed 0 of each budget runs alone with both threads and gives the point's minutes; seeds 1 and 2 then
# run side by side with one thread each (their minutes are not used). The first run's seconds per epoch
# set the other budgets' epochs. Budgets 2.5 times as long suit an AVX2-only CPU: BUDGETS="8 15 25 50".
# MODEL=fmnist_resnet9 trains the same recipe on another registry net (folders fast-MODEL-eN-sS);
# EPOCHS="6 13 21 43" gives the epochs of each budget instead of measuring them. FLAGS="--erase 0.25"
# adds train flags to every run, NAME=erase names their folders (NAME-eN-sS; default fast or fast-MODEL).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/frontier}
BUDGETS=${BUDGETS:-3 6 10 20}
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-}
read -r -a fixed <<< "${EPOCHS:-}"
read -r -a flags <<< "${FLAGS:-}"
name=${NAME:-fast${MODEL:+-$MODEL}}
train() {  # train EPOCHS SEED [env...]: one run, skipped when its folder already holds a finished run
  local dir="$OUT/$name-e$1-s$2"
  if grep -qs '"finished": true' "$dir/metrics.json"; then echo "$dir: done already"; return; fi
  rm -rf "$dir"
  env "${@:3}" "$PY" -m gluon_resnet.train --preset fast ${MODEL:+--model "$MODEL"} --epochs "$1" ${flags[@]+"${flags[@]}"} --seed "$2" --out "$dir" --quiet > "$dir.log" 2>&1
  tail -n 1 "$dir.log"
}
per_epoch=""
i=0
for minutes in $BUDGETS; do
  if [ -n "${fixed[$i]:-}" ]; then
    epochs=${fixed[$i]}
  elif [ -z "$per_epoch" ]; then
    epochs=$(( minutes * 2 ))  # a first guess (about 27 s per epoch on a 2-core Zen 4); later budgets use the measure
  else
    epochs=$("$PY" -c "print(max(1, int($minutes * 60 // $per_epoch)))")
  fi
  mkdir -p "$OUT"
  echo "== about $minutes minutes: $epochs epochs"
  train "$epochs" 0
  i=$((i + 1))
  if [ -z "$per_epoch" ]; then
    per_epoch=$("$PY" -c "import json; h = json.load(open('$OUT/$name-e$epochs-s0/metrics.json'))['history']; print(sum(r['seconds'] for r in h) / len(h))")
    echo "seconds per epoch, alone: $per_epoch"
  fi
  train "$epochs" 1 OMP_NUM_THREADS=1 & one=$!
  train "$epochs" 2 OMP_NUM_THREADS=1 & two=$!
  wait "$one" && wait "$two"
done
"$PY" -m gluon_resnet.frontier "$OUT"/"$name"-e*-s*/ --ensembles 2 3 --png "$OUT/frontier-$name.png"
