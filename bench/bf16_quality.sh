#!/usr/bin/env bash
# bf16 against fp32 training with the same seed and recipe: best validation perplexity of each, and charlm eval of
# each best model in fp32 and in bf16 (docs/quality.md, "bf16 against fp32").
#
#   bench/bf16_quality.sh configs/lyrics_best.json                       # the lyrics recipe
#   bench/bf16_quality.sh configs/default.json --set data.corpus=/tmp/lic80k.txt ...   # any --set is passed on
#
# Runs train twice (train.precision fp32, then bf16) into /tmp/bf16_quality/{fp32,bf16} with one thread each,
# then four evals. Prints one line per run and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: bench/bf16_quality.sh CONFIG [--set KEY=VALUE ...]}
shift
charlm=${CHARLM:-build/charlm}
out=${OUT:-/tmp/bf16_quality}
mkdir -p "$out"
best() {  # the lowest epoch-end validation perplexity in a run's metrics.jsonl
  /usr/bin/python3 -c 'import json,sys; print(min(json.loads(l)["val_perplexity"] for l in open(sys.argv[1]) if json.loads(l).get("kind") == "epoch"))' "$1"
}
for precision in fp32 bf16; do
  rm -rf "${out:?}/$precision"
  "$charlm" train --config "$config" "$@" --set train.threads=1 --set train.precision=$precision \
    --set train.out_dir="$out/$precision" > "$out/$precision.log" 2>&1
  echo "train $precision: best validation perplexity $(best "$out/$precision/metrics.jsonl") ($(grep -c '"kind":"epoch"' "$out/$precision/metrics.jsonl") epochs)"
done
for precision in fp32 bf16; do
  for eval_precision in fp32 bf16; do
    ppl=$("$charlm" eval --checkpoint "$out/$precision/best.ckpt" --split val --json --precision $eval_precision |
          /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["perplexity"])')
    echo "eval of the $precision-trained model in $eval_precision: perplexity $ppl"
  done
done
