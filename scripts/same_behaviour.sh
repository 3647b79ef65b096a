#!/usr/bin/env bash
# Proves a refactoring left behaviour unchanged: two charlm binaries (before and after) train LSTM, GRU and RNN
# stacks the same way, generate and evaluate; every perplexity, the generated text and the eval figure must agree
# digit for digit, and each binary must load the other's checkpoints.
# Usage: scripts/same_behaviour.sh OLD_CHARLM NEW_CHARLM [CORPUS]   (run both on the same machine)
set -euo pipefail
old=$(realpath "$1"); new=$(realpath "$2")
corpus=$(realpath "${3:-corpus/jaychou_lyrics.txt}")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
status=0
# Only the figures: wall times, speeds and dates differ from run to run by nature.
figures() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    print({k: v for k, v in sorted(row.items()) if any(w in k for w in ("perplexity", "bpc", "loss", "grad_norm", "learning_rate")) or k in ("epoch", "step", "kind")})
' "$1"; }
for cell in lstm gru rnn; do
  for side in old new; do
    bin=${!side}
    sets=(--set data.corpus="$corpus" --set data.max_chars=30000 --set model.cell=$cell --set model.num_layers=2
          --set model.hidden_size=64 --set model.embedding_size=32 --set model.dropout=0.2
          --set train.optimizer.name=adam --set train.optimizer.lr=0.005 --set train.sampler=consecutive
          --set train.threads=1 --set train.seed=7 --set train.epochs=3 --set train.out_dir=$side-$cell
          --set train.report=false --set generate.every=0)
    echo '{}' > empty.json
    "$bin" train --config empty.json "${sets[@]}" > $side-$cell.train.out 2> $side-$cell.train.err \
      || { echo "$side binary failed to train:" >&2; tail -3 $side-$cell.train.err >&2; exit 1; }
    figures $side-$cell/metrics.jsonl > $side-$cell.figures
    "$bin" generate --checkpoint $side-$cell/best.ckpt --prefix 分开 --length 80 --seed 3 > $side-$cell.generate
    "$bin" eval --checkpoint $side-$cell/best.ckpt --split val --json 2>/dev/null \
      | python3 -c 'import json,sys; j=json.load(sys.stdin); print({k: v for k, v in j.items() if "seconds" not in k and "per_s" not in k})' > $side-$cell.eval
  done
  # Checkpoints written before the change load after it, and give the same text.
  "$new" generate --checkpoint old-$cell/best.ckpt --prefix 分开 --length 80 --seed 3 > cross-$cell.generate
  for what in figures generate eval; do
    if cmp -s old-$cell.$what new-$cell.$what; then echo "same: $cell $what"; else
      echo "DIFFERENT: $cell $what"; diff old-$cell.$what new-$cell.$what | head -5; status=1; fi
  done
  if cmp -s old-$cell.generate cross-$cell.generate; then echo "same: $cell old checkpoint under the new binary"; else
    echo "DIFFERENT: $cell old checkpoint under the new binary"; status=1; fi
done
exit $status
