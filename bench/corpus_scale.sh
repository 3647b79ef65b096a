#!/usr/bin/env bash
# Large-corpus benchmark: generates a text of SIZE_MB megabytes in /tmp and measures reading it (peak RSS per
# character, MB/s) and the wall time of a one-step training run on it (time to first step, RSS with the model).
# Usage: bench/corpus_scale.sh [SIZE_MB (default 1000)] [path to charlm (default build/charlm)]
# The text is the licenses in /usr/share/common-licenses with a few lines of non-ASCII text between them, repeated;
# it is left in /tmp for the next run (delete it when done) and never belongs in the repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size_mb=${1:-1000}
charlm=${2:-$root/build/charlm}
text=/tmp/charlm_corpus_scale_${size_mb}mb.txt
work=$(mktemp -d /tmp/charlm_corpus_scale.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ ! -s "$text" ]; then
  seed=$work/seed.txt
  for license in /usr/share/common-licenses/*; do
    [ -f "$license" ] || continue
    cat "$license" >>"$seed"
    cat >>"$seed" <<'EOF'
Ceci n'est pas une licence : les élèves réécrivent des phrases déjà lues, à côté d'œuvres protégées.
Über die Brücke gehen Fußgänger; die Straße ist für Autos gesperrt.
Без лицензии программа не может быть распространена, — сказал он.
许可证的文本重复了很多次，模型从中学习字符。
ライセンスの本文を何度も読む。🎵 ✓ → ∞
EOF
  done
  block=$work/block.txt
  for _ in $(seq 40); do cat "$seed"; done >"$block"  # about 11 MB
  target=$((size_mb * 1000 * 1000))
  : >"$text"
  while [ "$(stat -c %s "$text")" -lt "$target" ]; do cat "$block" >>"$text"; done
fi
bytes=$(stat -c %s "$text")
chars=$(LC_ALL=C.UTF-8 wc -m <"$text")
echo "text: $text, $bytes bytes, $chars characters; load average $(cut -d' ' -f1-3 /proc/loadavg); $(lscpu | sed -n 's/^Model name: *//p')"

# Reading only: summary loads the corpus (vocabulary and ids) and prints the model's table. The text is read into
# the page cache first, so the figure is charlm's decoding rather than the disk's speed (a cold 1 GB read from this
# machine's disk costs about 2.5 s of system time by itself), and summary and train below read it alike.
cat "$text" >/dev/null
/usr/bin/time -v "$charlm" summary --config "$root/configs/default.json" --set "data.corpus=\"$text\"" \
  >"$work/summary.out" 2>"$work/summary.time"
read_s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; ++i) s = s * 60 + t[i]; print s}' "$work/summary.time")
read_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/summary.time")
read_cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ {s += $2} END {print s}' "$work/summary.time")
awk -v b="$bytes" -v c="$chars" -v s="$read_s" -v cpu="$read_cpu" -v kb="$read_kb" 'BEGIN {
  printf "read + vocabulary + ids: %.2f s wall = %.0f MB/s (%.2f s CPU = %.0f MB per CPU second), peak RSS %.0f MB = %.3f bytes per character\n",
         s, b / 1e6 / s, cpu, b / 1e6 / cpu, kb / 1e3, kb * 1024 / c }'

# One training step with stdout redirected, as a long unattended run has it: load, baseline, one step, last.ckpt.
out_dir=$work/run
/usr/bin/time -v "$charlm" train --config "$root/configs/default.json" --set "data.corpus=\"$text\"" \
  --set "train.out_dir=\"$out_dir\"" --set train.max_steps=1 --set train.log_every_seconds=1 \
  >"$work/train.out" 2>"$work/train.time" || { cat "$work/train.out" "$work/train.time" >&2; exit 1; }
train_s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; ++i) s = s * 60 + t[i]; print s}' "$work/train.time")
train_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/train.time")
awk -v c="$chars" -v s="$train_s" -v kb="$train_kb" 'BEGIN {
  printf "one-step training run: %.2f s wall (time to first step, plus its checkpoint), peak RSS %.0f MB = %.3f bytes per character\n",
         s, kb / 1e3, kb * 1024 / c }'
echo "first lines of the redirected log:"
head -n 6 "$work/train.out"
