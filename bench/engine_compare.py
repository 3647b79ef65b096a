#!/usr/bin/env python3
"""charlm's own recurrent kernels against oneDNN's RNN primitive (train.engine charlm | onednn), interleaved.

For each preset x cell x precision, `charlm bench` runs with train.engine charlm then onednn, back to back, --repeats
times; the table keeps each side's best training and evaluation tokens/s and the 1-minute load seen.

    /usr/bin/python3 bench/engine_compare.py --charlm build/charlm --seconds 2 --repeats 1
"""
import argparse
import json
import subprocess
import sys


def bench(charlm, preset, cell, precision, engine, seconds, threads):
    cmd = [charlm, "bench", "--preset", preset, "--seconds", str(seconds), "--json",
           "--set", f"model.cell={cell}", "--set", f"train.precision={precision}",
           "--set", f"train.engine={engine}", "--set", f"train.threads={threads}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charlm", default="build/charlm")
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="train.threads (0 = all cores)")
    parser.add_argument("--presets", nargs="+", default=["d2l", "char-rnn"])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    args = parser.parse_args()
    print("| preset | cell | precision | train charlm | train onednn | onednn / charlm | eval charlm | eval onednn "
          "| onednn / charlm | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for preset in args.presets:
        for cell in args.cells:
            for precision in args.precisions:
                best = {"charlm": [0.0, 0.0], "onednn": [0.0, 0.0]}
                r = {}
                loads = []
                for _ in range(args.repeats):
                    for engine in ("charlm", "onednn"):
                        r = bench(args.charlm, preset, cell, precision, engine, args.seconds, args.threads)
                        best[engine][0] = max(best[engine][0], r["train_tokens_per_s"])
                        best[engine][1] = max(best[engine][1], r["eval_tokens_per_s"] or 0.0)
                        loads += [r["load_before"], r["load_after"]]
                c, o = best["charlm"], best["onednn"]
                print(f"| {preset} | {cell} | {precision} | {c[0]:,.0f} | {o[0]:,.0f} | {o[0] / c[0]:.2f}x "
                      f"| {c[1]:,.0f} | {o[1]:,.0f} | {o[1] / c[1]:.2f}x | {min(loads):.1f}-{max(loads):.1f} |",
                      flush=True)
    print(f"\nOpenBLAS kernels {r['blas_core']}, {r['threads']} BLAS threads, oneDNN {r['onednn']}")


if __name__ == "__main__":
    sys.exit(main())
