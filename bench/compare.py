#!/usr/bin/python3
"""Runs charlm bench and the PyTorch reference side by side on the issue's configs and prints a markdown table.

    /usr/bin/python3 bench/compare.py                     # all 6 configs x 2 precisions a side, about 20 minutes on 2 cores
    bench/compare.py --python "$(sh bench/setup_torch.sh)" --extra-python /usr/bin/python3  # today's torch, 1.13 beside it
    /usr/bin/python3 bench/compare.py --charlm build/charlm --seconds 2 --configs d2l:lstm char-rnn:gru
    /usr/bin/python3 bench/compare.py --precision fp32 --autocast none      # fp32 only, as before issue 17
    /usr/bin/python3 bench/compare.py --np 2 --configs d2l:lstm char-rnn:lstm --repeats 3   # data parallelism

With --np N it measures data-parallel training instead, in --repeats interleaved rounds: charlm N processes x 1
thread at N times the preset's batch (with and without the overlapped reduce) against charlm 1 x 1 at the preset's
batch (the same per-process batch), charlm 1 process x N threads at the same global batch, and PyTorch
DistributedDataParallel (gloo, bench/torch_ddp.py) with N processes x 1 thread at the same global batch; each
ratio is taken within a round, and the table shows the rounds' median and range.

PyTorch runs under --python (default /usr/bin/python3, Debian's torch 1.13); --extra-python adds a second torch's
columns ("extra torch"), shown beside the first but not counted in the goals, which are against --python's torch.
The table's first lines name each torch: version, interpreter, BLAS, default threads.

Configs are preset x cell (d2l and char-rnn presets of `charlm bench`, LSTM/GRU/RNN). Four columns per metric:
charlm at train.precision fp32 and bf16, PyTorch in fp32 and under torch.autocast bf16 (its fastest CPU setting).
PyTorch runs in every thread setting of --torch-threads x --openblas-threads (OpenBLAS's only for a torch whose
products go to OpenBLAS, as Debian's do; PyPI's use the MKL they carry), charlm with each of --charlm-threads, and
for each metric each side's best setting is kept (PyTorch's lowest RSS, charlm's highest), so every ratio is
against PyTorch at its fastest. charlm's MFU column is its fastest training run's matmul GFLOP/s as a share of the
peak of its precision, both measured by `charlm bench` in the same process (docs/benchmarks.md). Runs are
sequential: anything else using the cores distorts them, so the 1-minute load average is printed before and after.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from blas_env import match_charlm_blas_core  # noqa: E402
from torch_python import add_python_argument, describe, describe_line  # noqa: E402

PRESET_BATCH = {"d2l": 32, "char-rnn": 50}  # charlm bench's and bench/torch_reference.py's presets
# Issue 17's training goals: (numerator, denominator, minimum ratio); charlm bf16 is charlm at train.precision bf16,
# torch bf16 is PyTorch under torch.autocast("cpu", dtype=torch.bfloat16).
TRAIN_GOALS = (("charlm bf16", "torch fp32", 2.0), ("charlm bf16", "torch bf16", 1.3), ("charlm fp32", "torch fp32", 1.3))
GOALS = {"eval": 2.0, "generate": 10.0}  # best charlm over best PyTorch; RSS: charlm <= torch


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charlm", default=os.path.join(ROOT, "build", "charlm"), help="charlm binary (default build/charlm)")
    parser.add_argument("--seconds", type=float, default=1.5, help="timed seconds per phase for both (default 1.5)")
    parser.add_argument("--configs", nargs="+", default=[f"{p}:{c}" for p in ("d2l", "char-rnn") for c in ("lstm", "gru", "rnn")],
                        help="preset:cell pairs (default: d2l and char-rnn x lstm, gru, rnn)")
    parser.add_argument("--charlm-threads", type=int, nargs="+", default=[1, 2], help="train.threads values to try")
    parser.add_argument("--torch-threads", type=int, nargs="+", default=[1, 2], help="torch.set_num_threads values to try")
    parser.add_argument("--openblas-threads", type=int, nargs="+", default=[1, 2], help="OPENBLAS_NUM_THREADS values to try")
    parser.add_argument("--autocast", nargs="+", choices=("none", "bf16"), default=["none", "bf16"],
                        help="PyTorch settings: none (fp32) and/or bf16 (torch.autocast); default both")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16", "fp32_packed"), default=["fp32", "bf16"],
                        help="charlm's train.precision values; default fp32 and bf16 (with --np: the first only)")
    add_python_argument(parser)
    parser.add_argument("--extra-python", help="a second Python whose torch gets columns of its own (\"extra torch\"), "
                        "e.g. /usr/bin/python3 for Debian's 1.13 beside today's; not counted in the goals")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--np", type=int, default=1, help="N > 1: the data-parallel comparison (see above)")
    parser.add_argument("--repeats", type=int, default=3, help="with --np: interleaved rounds (default 3)")
    args = parser.parse_args(argv)
    if not os.access(args.charlm, os.X_OK):
        parser.error(f"--charlm {args.charlm} is not an executable: build it first (scripts/setup.sh) or pass its path")
    for config in args.configs:
        if config.count(":") != 1:
            parser.error(f"--configs {config}: expected preset:cell, e.g. d2l:lstm")
    if args.extra_python and args.np > 1:
        parser.error("--extra-python is for the one-process table; with --np run twice, once per --python")
    return args


def run_json(command, env=None):
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def best_of(runs, keys, setting):
    """Each key's highest value over the runs, with the setting that gave it under key + "_threads"."""
    best = {}
    for key in keys:
        run = max(runs, key=lambda r: r[key])
        best[key] = run[key]
        best[key + "_threads"] = setting(run)
    return best


def run_charlm(args, preset, cell, precision):
    runs = []
    for threads in args.charlm_threads:
        command = [args.charlm, "bench", "--preset", preset, "--set", f"model.cell={cell}", "--set", f"train.threads={threads}",
                   "--set", f"train.precision={precision}", "--seconds", str(args.seconds), "--json"]
        try:
            runs.append(run_json(command))
        except subprocess.CalledProcessError as error:  # e.g. bf16 on a CPU or build without it: say why, leave the cell empty
            print(f"charlm {precision}: {error.stderr.strip()}", file=sys.stderr)
            return None
    best = dict(max(runs, key=lambda r: r["train_tokens_per_s"]))  # GFLOP/s, peaks and MFU of the fastest training run
    best.update(best_of(runs, ("train_tokens_per_s", "eval_tokens_per_s", "generate_chars_per_s"), lambda r: str(r["threads"])))
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["runs"] = runs
    return best


def openblas_settings(args, torch_info):
    """OPENBLAS_NUM_THREADS values worth trying for this torch: --openblas-threads where its products go to
    OpenBLAS, else one run with the variable as it is (it changes nothing there)."""
    return args.openblas_threads if torch_info["blas"] == "openblas" else [None]


def thread_label(run):
    """PyTorch's setting as the table shows it: torch threads/OpenBLAS threads, or torch threads alone."""
    openblas = run.get("openblas_threads")
    return f"{run['torch_threads']}/{openblas}" if openblas is not None else str(run["torch_threads"])


def run_torch(args, preset, cell, autocast, torch_info):
    runs = []
    for openblas in openblas_settings(args, torch_info):
        for torch_threads in args.torch_threads:
            env = dict(os.environ) if openblas is None else dict(os.environ, OPENBLAS_NUM_THREADS=str(openblas))
            runs.append(run_json([torch_info["python"], os.path.join(ROOT, "bench", "torch_reference.py"), "--preset",
                                  preset, "--cell", cell, "--torch-threads", str(torch_threads), "--seconds",
                                  str(args.seconds), "--autocast", autocast, "--json"], env))
    best = best_of(runs, ("train_tokens_per_s", "eval_tokens_per_s", "gen_chars_per_s"), thread_label)
    best["generate_chars_per_s"], best["generate_chars_per_s_threads"] = best["gen_chars_per_s"], best["gen_chars_per_s_threads"]
    best["peak_rss_mb"] = min(r["peak_rss_mb"] for r in runs)
    best["runs"] = runs
    return best


def scaling_round(args, preset, cell):
    """One round of the --np comparison for one config: every run's JSON, keyed by what it is."""
    n = args.np
    batch = PRESET_BATCH[preset]

    def charlm(extra):  # at the first --precision given (fp32 by default)
        return run_json([args.charlm, "bench", "--preset", preset, "--set", f"model.cell={cell}", "--set",
                         f"train.precision={args.precision[0]}", "--seconds", str(args.seconds), "--json"] + extra)

    runs = {
        "1x1": charlm(["--set", "train.threads=1", "--set", f"train.batch_size={batch}"]),
        f"{n}x1": charlm(["--np", str(n), "--set", "train.threads=1", "--set", f"train.batch_size={n * batch}"]),
        f"{n}x1 no overlap": charlm(["--np", str(n), "--no-overlap", "--set", "train.threads=1", "--set",
                                     f"train.batch_size={n * batch}"]),
        f"1x{n}": charlm(["--set", f"train.threads={n}", "--set", f"train.batch_size={n * batch}"]),
        "ddp": run_json([args.python, os.path.join(ROOT, "bench", "torch_ddp.py"), "--python", args.python, "--preset",
                         preset, "--cell", cell, "--np", str(n), "--batch", str(n * batch), "--seconds",
                         str(args.seconds), "--json"]),
    }
    return runs


def median_range(values):
    ordered = sorted(values)
    middle = ordered[len(ordered) // 2] if len(ordered) % 2 else (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
    return f"{middle:.2f}× ({ordered[0]:.2f}–{ordered[-1]:.2f})"


def scaling_main(args, torch_info):
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
          f"rounds; charlm at train.precision {args.precision[0]}; ratios per round, median (range); DDP on "
          f"{describe_line(torch_info)}, 1 torch thread a process (and 1 OpenBLAS thread where torch uses OpenBLAS).\n")
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


def cells(sides, key, order):
    """'21,183 (2) / - / 10,453 (1/2) / ...' over the sides in order, '-' for a side that did not run."""
    return " / ".join(f"{sides[n][key]:,.0f} ({sides[n][key + '_threads']})" if sides.get(n) else "-" for n in order)


def best_side(sides, key, prefix):
    present = [sides[n][key] for n in sides if n.startswith(prefix) and sides[n]]
    return max(present) if present else None


def ratio_cell(numerator, denominator, goal, digits=2):
    if numerator is None or denominator is None:
        return "-"
    ratio = numerator / denominator
    return f"**{ratio:.{digits}f}×** {mark(ratio >= goal)}"


def mfu_cell(side):
    """'41 % (151/368)': the fastest training run's MFU, its GFLOP/s and the peak of its precision; '-' if none."""
    if not side or side.get("mfu") is None:
        return "-"
    peak = side["peak_bf16_gflops"] if side["precision"] == "bf16" else side["peak_sgemm_gflops"]
    return f"{100 * side['mfu']:.0f} % ({side['train_gflops']:.0f}/{peak:.0f})"


def main(argv):
    args = parse_args(argv)
    match_charlm_blas_core(args.charlm)  # before any PyTorch child starts: the same kernels for both sides
    # Which torch each side is, asked of its interpreter before anything is timed (a missing torch stops here).
    torches = {"torch": describe(args.python)}
    if args.extra_python:
        torches["extra torch"] = describe(args.extra_python)
    if args.np > 1:
        scaling_main(args, torches["torch"])
        return
    load_before = os.getloadavg()[0]
    charlm_order = [f"charlm {p}" for p in args.precision]
    order = charlm_order + [f"{t} {'fp32' if a == 'none' else a}" for t in torches for a in args.autocast]
    rows, raw = [], []
    for config in args.configs:
        preset, cell = config.split(":")
        print(f"running {preset} {cell} ...", file=sys.stderr, flush=True)
        sides = {}
        for precision in args.precision:
            sides[f"charlm {precision}"] = run_charlm(args, preset, cell, precision)
        for name, info in torches.items():
            for autocast in args.autocast:
                sides[f"{name} {'fp32' if autocast == 'none' else autocast}"] = run_torch(args, preset, cell, autocast, info)
        raw.append({"preset": preset, "cell": cell, "sides": sides})
        train = {n: (s["train_tokens_per_s"] if s else None) for n, s in sides.items()}
        goal_cells = [ratio_cell(train.get(a), train.get(b), goal) for a, b, goal in TRAIN_GOALS]
        # The goals are against --python's torch ("torch ..."); "extra torch ..." columns are shown, not counted.
        charlm_rss = [s["peak_rss_mb"] for n, s in sides.items() if n.startswith("charlm") and s]
        torch_rss = [s["peak_rss_mb"] for n, s in sides.items() if n.startswith("torch") and s]
        fastest = sides.get("charlm fp32") or next(s for n, s in sides.items() if n.startswith("charlm") and s)
        torch_last = [s["runs"][-1]["cpu_per_wall"] for n, s in sides.items() if n.startswith("torch") and s]
        rows.append(
            f"| {preset} {cell} | {cells(sides, 'train_tokens_per_s', order)} | " + " | ".join(goal_cells) +
            f" | {cells(sides, 'eval_tokens_per_s', order)} "
            f"| {ratio_cell(best_side(sides, 'eval_tokens_per_s', 'charlm'), best_side(sides, 'eval_tokens_per_s', 'torch'), GOALS['eval'])} "
            f"| {cells(sides, 'generate_chars_per_s', order)} "
            f"| {ratio_cell(best_side(sides, 'generate_chars_per_s', 'charlm'), best_side(sides, 'generate_chars_per_s', 'torch'), GOALS['generate'], 1)} "
            f"| {max(charlm_rss):.0f} / {min(torch_rss):.0f} | {max(charlm_rss) / min(torch_rss):.2f} {mark(max(charlm_rss) <= min(torch_rss))} "
            f"| {' / '.join(mfu_cell(sides.get(n)) for n in charlm_order)} "
            f"| {fastest.get('cpu_per_wall', float('nan')):.2f} / {' '.join(f'{c:.2f}' for c in torch_last)} |")
    load_after = os.getloadavg()[0]
    some_charlm = next(s for r in raw for n, s in r["sides"].items() if n.startswith("charlm") and s)
    bf16_peak = (f"bf16 {some_charlm['peak_bf16_gflops']:.0f} GFLOP/s (oneDNN matmul)" if some_charlm.get("peak_bf16_gflops")
                 else f"bf16 not available ({some_charlm.get('bf16_unavailable')})")
    print(f"Machine: {machine()}; {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; "
          f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after; {args.seconds:g} s per phase; "
          f"OpenBLAS kernels {some_charlm.get('blas_core', '?')} "
          f"(OPENBLAS_CORETYPE {os.environ.get('OPENBLAS_CORETYPE', 'unset')}, the same for both sides where torch uses OpenBLAS); "
          f"charlm's bf16 products: {some_charlm.get('onednn', '?')}, OMP_WAIT_POLICY {some_charlm.get('omp_wait_policy') or 'unset'}; "
          f"peaks ({some_charlm['precision']}'s fastest training run, {some_charlm['threads']} thread(s), "
          f"{some_charlm['peak_gemm_size']}³): fp32 "
          f"{some_charlm['peak_sgemm_gflops']:.0f} GFLOP/s (OpenBLAS sgemm), {bf16_peak}.")
    for name, info in torches.items():
        counted = "the goals' reference" if name == "torch" else "shown, not counted in the goals"
        print(f"\"{name}\": {describe_line(info)}; {counted}.")
    print(f"Columns in the order {' / '.join(order)}; torch bf16 is torch.autocast(\"cpu\", dtype=torch.bfloat16). "
          "Each at its fastest thread setting, per metric: charlm's train.threads shown as (n), PyTorch's torch threads x "
          "OPENBLAS_NUM_THREADS as (torch/OpenBLAS), or torch threads alone as (n) for a torch not on OpenBLAS. Eval and "
          "generate ratios are the best charlm setting over the best PyTorch one. Peak RSS is charlm's largest and "
          "PyTorch's smallest. MFU is each charlm precision's fastest training run: matmul GFLOP/s over the peak of that "
          "precision at that run's threads (GFLOP/s/peak). CPU/wall is from charlm's fastest fp32 training run and "
          "PyTorch's last thread setting per autocast setting; CPU/wall below the thread count means the cores were shared.\n")
    goal_heads = [f"{a} / {b} ≥ {goal:g}×" for a, b, goal in TRAIN_GOALS]
    print(f"| config | train tokens/s {' / '.join(order)} | " + " | ".join(goal_heads) +
          f" | eval tokens/s, same order | eval ≥ 2× | generate chars/s, same order | gen ≥ 10× | peak RSS MB charlm / torch | RSS ratio ≤ 1 "
          f"| charlm MFU {' / '.join(p.split()[1] for p in charlm_order)} | CPU/wall charlm / torch |")
    print("|---" * (10 + len(goal_heads)) + "|")
    for row in rows:
        print(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_before": load_before, "load_after": load_after, "torches": torches, "results": raw}, f,
                      indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
