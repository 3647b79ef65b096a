#!/usr/bin/env python3
"""Quality per minute: charlm's `train --corpus FILE --minutes M` against a small GPT given the same minutes.

Not part of the test suite; each run should have the machine to itself. For every corpus and budget it runs, one
after the other:
  - the 5-gram: `charlm baseline` (Kneser-Ney, fitted on the training split);
  - charlm: `charlm train --corpus FILE --minutes M` (the automatic choice), and each --config given (hand-written
    recipes, trained with the same --minutes), then `charlm eval --split val` on the best checkpoint;
  - the GPT: bench/torch_gpt_reference.py --seconds 60*M, for each --gpt-size (the better one counts).
All figures are full-context validation loss in nats per character on the same 90/10 split (the last tenth held
out). Each result is appended to --results as one JSON line (with the date, the CPU model and the versions), and a
Markdown table of the runs made is printed on stdout.

    sh bench/corpora.sh && sh bench/setup_torch.sh
    python3 bench/quality_per_minute.py --corpus corpus/bench/licenses3.txt --minutes 3
    python3 bench/quality_per_minute.py --corpus corpus/bench/fortunes1m.txt --minutes 5 15 60 \
        --gpt-size 4x4x128 --gpt-size 6x6x192 --config configs/hand_1m.json
"""

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_json(command, log):
    """Runs a command whose stdout is one JSON object; its stderr goes to the log file."""
    print("+ " + " ".join(command), file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}; see {log.name}")
    return json.loads(done.stdout), wall


def charlm_run(args, corpus, minutes, config, seed, log):
    """Trains with charlm for the budget and scores the best checkpoint on the whole validation split."""
    out_dir = tempfile.mkdtemp(prefix="charlm_quality_")
    try:
        command = [args.charlm, "train", "--minutes", str(minutes), "--out", out_dir,
                   "--set", f"train.seed={seed}"]
        command += ["--config", config, "--set", f"data.corpus={corpus}"] if config else ["--corpus", corpus]
        for assignment in args.charlm_set:
            command += ["--set", assignment]
        print("+ " + " ".join(command), file=sys.stderr, flush=True)
        started = time.monotonic()
        done = subprocess.run(command, stdout=log, stderr=log, check=False)
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}; see {log.name}")
        scored, _ = run_json([args.charlm, "eval", "--checkpoint", os.path.join(out_dir, "best.ckpt"),
                              "--split", "val", "--json"], log)
        # charlm's validation curve: every whole-split validation (epoch ends, the budget's end) against the
        # minutes into the run.
        curve = []
        with open(os.path.join(out_dir, "metrics.jsonl"), encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                if row.get("val_perplexity") and row.get("kind") in ("epoch", "eval") and "elapsed_s" in row:
                    curve.append([round(row["elapsed_s"] / 60, 4), math.log(row["val_perplexity"])])
        chosen = {}
        run_config = os.path.join(out_dir, "config.json")
        if os.path.exists(run_config):
            with open(run_config, encoding="utf-8") as f:
                model = json.load(f).get("model", {})
            chosen = {k: model.get(k) for k in ("cell", "num_layers", "hidden_size", "embedding_size")}
        return {"val_loss": math.log(scored["perplexity"]), "wall_s": round(wall, 1), "model": chosen, "curve": curve}
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def gpt_run(args, corpus, minutes, size, seed, log):
    layers, heads, width = (int(v) for v in size.split("x"))
    result, _ = run_json([args.torch_python, os.path.join(ROOT, "bench", "torch_gpt_reference.py"),
                          "--corpus", corpus, "--seconds", str(60 * minutes), "--layers", str(layers),
                          "--heads", str(heads), "--width", str(width), "--seed", str(seed), "--json"], log)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", action="append", required=True, help="a text file (repeatable)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 15, 60])
    parser.add_argument("--config", action="append", default=[], help="a hand-written charlm config (repeatable)")
    parser.add_argument("--charlm-set", action="append", default=[], help="--set for every charlm run")
    parser.add_argument("--gpt-size", action="append", default=[], help="LAYERSxHEADSxWIDTH (default 4x4x128)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per side and budget")
    parser.add_argument("--skip-auto", action="store_true", help="no `train --corpus --minutes` run")
    parser.add_argument("--skip-gpt", action="store_true")
    parser.add_argument("--charlm", default=os.path.join(ROOT, "build", "charlm"))
    default_torch = os.path.join(ROOT, "bench", ".venv", "bin", "python")
    parser.add_argument("--torch-python", default=default_torch if os.path.exists(default_torch) else sys.executable)
    parser.add_argument("--results", default=os.path.join(ROOT, "runs", "quality_per_minute.jsonl"))
    parser.add_argument("--log", default=os.path.join(ROOT, "runs", "quality_per_minute.log"))
    args = parser.parse_args()
    gpt_sizes = args.gpt_size or ["4x4x128"]
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    common = {"date": datetime.date.today().isoformat(), "cpu": cpu_model(), "cores": os.cpu_count()}
    rows = []
    with open(args.log, "a", encoding="utf-8") as log, open(args.results, "a", encoding="utf-8") as results:
        def record(entry):
            entry.update(common)
            results.write(json.dumps(entry) + "\n")
            results.flush()
            rows.append(entry)
            print(json.dumps(entry), file=sys.stderr, flush=True)

        for corpus in args.corpus:
            baseline, _ = run_json([args.charlm, "baseline", "--corpus", corpus, "--json"], log)
            record({"corpus": corpus, "side": "5-gram", "minutes": 0, "seed": 0,
                    "val_loss": math.log(baseline["val_perplexity"])})
            for minutes in args.minutes:
                for seed in range(1, args.seeds + 1):
                    sides = ([] if args.skip_auto else [None]) + args.config
                    for config in sides:
                        result = charlm_run(args, corpus, minutes, config, seed, log)
                        result.update({"corpus": corpus, "side": "charlm " + (config or "auto"),
                                       "minutes": minutes, "seed": seed})
                        record(result)
                    if not args.skip_gpt:
                        for size in gpt_sizes:
                            result = gpt_run(args, corpus, minutes, size, seed, log)
                            result.update({"corpus": corpus, "side": f"gpt {size}", "minutes": minutes,
                                           "seed": seed})
                            record(result)
    print(f"Full-context validation loss, nats per character ({common['date']}, {common['cpu']}, "
          f"{common['cores']} cores):\n")
    print("| text | minutes | side | seed | val loss | wall s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        wall = row.get("wall_s", "")
        print(f"| {os.path.basename(row['corpus'])} | {row['minutes'] or ''} | {row['side']} | {row['seed'] or ''} | "
              f"{row['val_loss']:.4f} | {wall} |")


if __name__ == "__main__":
    main()
