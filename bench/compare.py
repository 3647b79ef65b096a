#!/usr/bin/python3
"""Runs charlm bench and the PyTorch reference side by side on the issue's configs and prints a markdown table.

    /usr/bin/python3 bench/compare.py                     # all 6 configs, about 9 minutes on 2 cores
    /usr/bin/python3 bench/compare.py --charlm build/charlm --seconds 2 --configs d2l:lstm char-rnn:gru
    /usr/bin/python3 bench/compare.py --np 2 --configs d2l:lstm char-rnn:lstm --repeats 3   # data parallelism

With --np N it measures data-parallel training instead, in --repeats interleaved rounds: charlm N processes x 1
thread at N times the preset's batch (with and without the overlapped reduce) against charlm 1 x 1 at the preset's
batch (the same per-process batch), charlm 1 process x N threads at the same global batch, and PyTorch
DistributedDataParallel (gloo, bench/torch_ddp.py) with N processes x 1 thread at the same global batch; each
ratio is taken within a round, and the table shows the rounds' median and range.

Configs are preset x cell (d2l and char-rnn presets of `charlm bench`, LSTM/GRU/RNN). PyTorch runs in every
thread setting of --torch-threads x --openblas-threads, charlm with each of --charlm-threads, and for each
metric each side's best setting is kept (PyTorch's lowest RSS, charlm's highest), so every ratio is against
PyTorch at its fastest. Runs are sequential: anything
else using the cores distorts them, so the 1-minute load average is printed before and after.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET_BATCH = {"d2l": 32, "char-rnn": 50}  # charlm bench's and bench/torch_reference.py's presets
GOALS = {"train": 2.0, "eval": 2.0, "generate": 10.0}  # minimum charlm/torch ratios; RSS: charlm <= torch


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charlm", default=os.path.join(ROOT, "build", "charlm"), help="charlm binary (default build/charlm)")
    parser.add_argument("--seconds", type=float, default=1.5, help="timed seconds per phase for both (default 1.5)")
    parser.add_argument("--configs", nargs="+", default=[f"{p}:{c}" for p in ("d2l", "char-rnn") for c in ("lstm", "gru", "rnn")],
                        help="preset:cell pairs (default: d2l and char-rnn x lstm, gru, rnn)")
    parser.add_argument("--charlm-threads", type=int, nargs="+", default=[1, 2], help="train.threads values to try")
    parser.add_argument("--torch-threads", type=int, nargs="+", default=[1, 2], help="torch.set_num_threads values to try")
    parser.add_argument("--openblas-threads", type=int, nargs="+", default=[1, 2], help="OPENBLAS_NUM_THREADS values to try")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--np", type=int, default=1, help="N > 1: the data-parallel comparison (see above)")
    parser.add_argument("--repeats", type=int, default=3, help="with --np: interleaved rounds (default 3)")
    args = parser.parse_args(argv)
    if not os.access(args.charlm, os.X_OK):
        parser.error(f"--charlm {args.charlm} is not an executable: build it first (scripts/setup.sh) or pass its path")
    for config in args.configs:
        if config.count(":") != 1:
            parser.error(f"--configs {config}: expected preset:cell, e.g. d2l:lstm")
    return args


def run_json(command, env=None):
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_charlm(args, preset, cell):
    runs = [run_json([args.charlm, "bench", "--preset", preset, "--set", f"model.cell={cell}",
                      "--set", f"train.threads={threads}", "--seconds", str(args.seconds), "--json"])
            for threads in args.charlm_threads]
    best = dict(max(runs, key=lambda r: r["train_tokens_per_s"]))  # GFLOP/s and sgemm of the fastest training run
    for key in ("train_tokens_per_s", "eval_tokens_per_s", "generate_chars_per_s"):
        run = max(runs, key=lambda r: r[key])
        best[key] = run[key]
        best[key + "_threads"] = str(run["threads"])
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["runs"] = runs
    return best


def run_torch(args, preset, cell):
    runs = []
    for openblas in args.openblas_threads:
        for torch_threads in args.torch_threads:
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(openblas))
            runs.append(run_json(["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_reference.py"), "--preset", preset,
                                  "--cell", cell, "--torch-threads", str(torch_threads), "--seconds", str(args.seconds),
                                  "--json"], env))
    best = {}
    for key in ("train_tokens_per_s", "eval_tokens_per_s", "gen_chars_per_s"):
        run = max(runs, key=lambda r: r[key])
        best[key] = run[key]
        best[key + "_threads"] = f"{run['torch_threads']}/{run['openblas_threads']}"
    best["peak_rss_mb"] = min(r["peak_rss_mb"] for r in runs)
    best["runs"] = runs
    return best


def scaling_round(args, preset, cell):
    """One round of the --np comparison for one config: every run's JSON, keyed by what it is."""
    n = args.np
    batch = PRESET_BATCH[preset]

    def charlm(extra):
        return run_json([args.charlm, "bench", "--preset", preset, "--set", f"model.cell={cell}", "--seconds",
                         str(args.seconds), "--json"] + extra)

    runs = {
        "1x1": charlm(["--set", "train.threads=1", "--set", f"train.batch_size={batch}"]),
        f"{n}x1": charlm(["--np", str(n), "--set", "train.threads=1", "--set", f"train.batch_size={n * batch}"]),
        f"{n}x1 no overlap": charlm(["--np", str(n), "--no-overlap", "--set", "train.threads=1", "--set",
                                     f"train.batch_size={n * batch}"]),
        f"1x{n}": charlm(["--set", f"train.threads={n}", "--set", f"train.batch_size={n * batch}"]),
        "ddp": run_json(["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_ddp.py"), "--preset", preset, "--cell",
                         cell, "--np", str(n), "--batch", str(n * batch), "--seconds", str(args.seconds), "--json"]),
    }
    return runs


def median_range(values):
    ordered = sorted(values)
    middle = ordered[len(ordered) // 2] if len(ordered) % 2 else (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
    return f"{middle:.2f}× ({ordered[0]:.2f}–{ordered[-1]:.2f})"


def scaling_main(args):
    n = args.np
    load_before = os.getloadavg()[0]
    rounds = {config: [] for config in args.configs}
    for k in range(args.repeats):
        for config in args.configs:
            preset, cell = config.split(":")
            print(f"round {k + 1}/{args.repeats}: {preset} {cell} ...", file=sys.stderr, flush=True)
            rounds[config].append(scaling_round(args, preset, cell))
    load_after = os.getloadavg()[0]
    print(f"Machine: {machine()}; {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; load average (1 min) "
          f"{load_before:.2f} before, {load_after:.2f} after; {args.seconds:g} s per phase; {args.repeats} interleaved "
          f"rounds; ratios per round, median (range).\n")
    print(f"| config | tokens/s: charlm {n}x1 / 1x1 / 1x{n} / DDP {n}x1 (medians) | {n}x1 over 1x1, same per-process "
          f"batch (≥ 1.8×) | {n}x1 over 1x{n}, same global batch | charlm {n}x1 over DDP (≥ 2×) | overlap on / off "
          f"| reduce wait ms/step on / off | MB summed per step | the sum alone, ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config, runs in rounds.items():
        def tokens(key):
            return [r[key]["train_tokens_per_s"] for r in runs]

        def med(values):
            return sorted(values)[len(values) // 2]

        par, one, threads, ddp, off = (tokens(f"{n}x1"), tokens("1x1"), tokens(f"1x{n}"), tokens("ddp"),
                                       tokens(f"{n}x1 no overlap"))
        wait_on = med([r[f"{n}x1"]["reduce_wait_ms_per_step"] for r in runs])
        wait_off = med([r[f"{n}x1 no overlap"]["reduce_wait_ms_per_step"] for r in runs])
        print(f"| {config} | {med(par):,.0f} / {med(one):,.0f} / {med(threads):,.0f} / {med(ddp):,.0f} "
              f"| {median_range([a / b for a, b in zip(par, one)])} "
              f"| {median_range([a / b for a, b in zip(par, threads)])} "
              f"| {median_range([a / b for a, b in zip(par, ddp)])} "
              f"| {median_range([a / b for a, b in zip(par, off)])} "
              f"| {wait_on:.1f} / {wait_off:.1f} | {runs[0][f'{n}x1']['gradient_bytes'] / 1e6:.2f} "
              f"| {med([r[f'{n}x1']['allreduce_ms'] for r in runs]):.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_before": load_before, "load_after": load_after, "rounds": rounds}, f, indent=1)


def machine():
    model, cores = "unknown", os.cpu_count()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {cores} cores"


def mark(ok):
    return "yes" if ok else "**no**"


def main(argv):
    args = parse_args(argv)
    if args.np > 1:
        scaling_main(args)
        return
    load_before = os.getloadavg()[0]
    rows, raw = [], []
    for config in args.configs:
        preset, cell = config.split(":")
        print(f"running {preset} {cell} ...", file=sys.stderr, flush=True)
        c = run_charlm(args, preset, cell)
        t = run_torch(args, preset, cell)
        raw.append({"preset": preset, "cell": cell, "charlm": c, "torch": t})
        ratios = {"train": c["train_tokens_per_s"] / t["train_tokens_per_s"],
                  "eval": c["eval_tokens_per_s"] / t["eval_tokens_per_s"],
                  "generate": c["generate_chars_per_s"] / t["gen_chars_per_s"]}
        rows.append(
            f"| {preset} {cell} "
            f"| {c['train_tokens_per_s']:,.0f} ({c['train_tokens_per_s_threads']}) / {t['train_tokens_per_s']:,.0f} ({t['train_tokens_per_s_threads']}) "
            f"| **{ratios['train']:.2f}×** {mark(ratios['train'] >= GOALS['train'])} "
            f"| {c['eval_tokens_per_s']:,.0f} ({c['eval_tokens_per_s_threads']}) / {t['eval_tokens_per_s']:,.0f} ({t['eval_tokens_per_s_threads']}) "
            f"| **{ratios['eval']:.2f}×** {mark(ratios['eval'] >= GOALS['eval'])} "
            f"| {c['generate_chars_per_s']:,.0f} / {t['gen_chars_per_s']:,.0f} ({t['gen_chars_per_s_threads']}) "
            f"| **{ratios['generate']:.1f}×** {mark(ratios['generate'] >= GOALS['generate'])} "
            f"| {c['peak_rss_mb']:.0f} / {t['peak_rss_mb']:.0f} "
            f"| {c['peak_rss_mb'] / t['peak_rss_mb']:.2f} {mark(c['peak_rss_mb'] <= t['peak_rss_mb'])} "
            f"| {c['train_gflops']:.1f} / {c['sgemm_gflops']:.1f} = {100 * c['train_gflops'] / c['sgemm_gflops']:.0f} % "
            f"| {c.get('cpu_per_wall', float('nan')):.2f} / {t['runs'][-1]['cpu_per_wall']:.2f} |")
    load_after = os.getloadavg()[0]
    print(f"Machine: {machine()}; {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; "
          f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after; {args.seconds:g} s per phase; "
          f"OpenBLAS kernels {raw[0]['charlm'].get('blas_core', '?')} "
          f"(OPENBLAS_CORETYPE {os.environ.get('OPENBLAS_CORETYPE', 'unset')}, the same for both sides).")
    print("Each side at its fastest thread setting, per metric: charlm's train.threads (OpenBLAS threads) shown as "
          "(n), PyTorch's torch threads x OPENBLAS_NUM_THREADS shown as (torch/OpenBLAS); peak RSS is charlm's "
          "largest and PyTorch's smallest; GFLOP/s and sgemm are from charlm's fastest training run. CPU/wall below the thread count means the cores were shared "
          "(of charlm's fastest training run and of PyTorch's last thread setting, 2/2).\n")
    print("| config | train tokens/s charlm / torch | train ≥ 2× | eval tokens/s charlm / torch | eval ≥ 2× "
          "| generate chars/s charlm / torch | gen ≥ 10× | peak RSS MB charlm / torch | RSS ratio ≤ 1 "
          "| charlm train GFLOP/s / sgemm | CPU/wall charlm / torch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_before": load_before, "load_after": load_after, "results": raw}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
