#!/bin/sh
# Assembles the quality benchmark's texts from what Debian ships into corpus/bench/ (gitignored; never committed).
#   sh bench/corpora.sh      # needs the fortunes and fortunes-zh packages (apt-get install fortunes fortunes-zh)
# licenses3.txt  GPL-3, GPL-2 and LGPL-2.1 joined (about 80 kB): the small English text of issue reports
# licenses.txt   every license text in /usr/share/common-licenses/ joined, links skipped (about 260 kB)
# tang300.txt    300 Tang poems from fortunes-zh (about 89 kB of Chinese)
# fortunes1m.txt ten English fortune files of quotations, prose and verse joined (about 1 MB)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/corpus/bench"
mkdir -p "$out"
licenses=/usr/share/common-licenses
fortunes=/usr/share/games/fortunes
for f in "$licenses/GPL-3" "$fortunes/tang300" "$fortunes/literature"; do
  [ -f "$f" ] || { echo "bench/corpora.sh: $f is missing; apt-get install fortunes fortunes-zh" >&2; exit 1; }
done
cat "$licenses/GPL-3" "$licenses/GPL-2" "$licenses/LGPL-2.1" > "$out/licenses3.txt"
find "$licenses" -maxdepth 1 -type f | LC_ALL=C sort | xargs cat > "$out/licenses.txt"
cp "$fortunes/tang300" "$out/tang300.txt"
(cd "$fortunes" && cat literature people songs-poems science politics wisdom work men-women humorists love) \
  > "$out/fortunes1m.txt"
wc -c "$out"/*.txt >&2
