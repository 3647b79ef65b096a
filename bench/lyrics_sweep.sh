#!/usr/bin/env bash
# The lyrics_best sweep: each row is configs/lyrics_best.json with the row's overrides, stopped after 3 epochs
# without improvement, one thread; prints each run's best validation perplexity (full-context evaluation).
# Usage, from the repository root: bench/lyrics_sweep.sh [OUT_ROOT] (default runs/sweep); JOBS=2 runs at a time,
# CHARLM=path picks the binary (default build/charlm). Prints the table docs/results.md quotes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out_root=${1:-runs/sweep}
jobs=${JOBS:-2}
lstm="model.cell=lstm model.embedding_size=64 model.dropout=0.5 train.optimizer.lr=0.003 data.newline=keep train.random_offset=false"
gru="model.cell=gru model.embedding_size=64 model.dropout=0.5 train.optimizer.lr=0.003 data.newline=keep train.random_offset=false"
rows=(
  "first_guess|LSTM 2×256, embedding 128, dropout 0.3, Adam 0.002, newline kept (first guess)|model.cell=lstm model.num_layers=2 model.embedding_size=128 model.dropout=0.3 train.optimizer.lr=0.002 data.newline=keep train.random_offset=false"
  "lstm|LSTM 1×256, embedding 64, dropout 0.5, Adam 0.003, newline kept|$lstm"
  "lstm512|same, LSTM 512, embedding 128, dropout 0.6|$lstm model.hidden_size=512 model.embedding_size=128 model.dropout=0.6"
  "lstm_b16|same as the 1×256 LSTM, batch 16|$lstm train.batch_size=16"
  "lstm_space|same as the 1×256 LSTM, newline → space|$lstm data.newline=space"
  "lstm_space_offsets|+ random window offsets|$lstm data.newline=space train.random_offset=true"
  "lstm_space_recdrop|+ recurrent dropout 0.25|$lstm data.newline=space model.recurrent_dropout=0.25"
  "lstm_space_h128|+ hidden 128|$lstm data.newline=space model.hidden_size=128"
  "lstm_space_decay|+ exponential LR decay 0.85|$lstm data.newline=space train.lr_schedule.name=exponential train.lr_schedule.gamma=0.85"
  "gru|GRU 1×256, embedding 64, dropout 0.5, Adam 0.003, newline kept|$gru"
  "gru_offsets_recdrop|+ random offsets and recurrent dropout 0.25|$gru train.random_offset=true model.recurrent_dropout=0.25"
  "gru_offsets_h128|+ random offsets and hidden 128|$gru train.random_offset=true model.hidden_size=128"
  "gru_offsets_h512|+ random offsets, hidden 512, dropout 0.6|$gru train.random_offset=true model.hidden_size=512 model.dropout=0.6"
  "lyrics_best|GRU + newline → space + random offsets (lyrics_best.json)|"
)
run_row() {
  local name=$1 overrides=$2 args=()
  for o in $overrides; do args+=(--set "$o"); done
  "${CHARLM:-$root/build/charlm}" train --config "$root/configs/lyrics_best.json" "${args[@]}" --set train.patience=3 \
    --set train.threads=1 --set generate.every=0 --set train.report=false --set "train.out_dir=$out_root/$name" \
    > "$out_root/$name.log" 2>&1
}
mkdir -p "$out_root"
running=0
for row in "${rows[@]}"; do
  IFS='|' read -r name _ overrides <<< "$row"
  run_row "$name" "$overrides" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
echo "| change | best val perplexity |"
echo "|---|---|"
for row in "${rows[@]}"; do
  IFS='|' read -r name label _ <<< "$row"
  best=$(python3 -c "import json,sys; print('%.1f' % min(r['val_perplexity'] for r in map(json.loads, open(sys.argv[1])) if r.get('kind') == 'epoch' and r.get('val_perplexity') is not None))" "$out_root/$name/metrics.jsonl")
  echo "| $label | $best |"
done
