#!/usr/bin/python3
"""Times the evaluation job, scoring a held-out text with full context, in charlm and in PyTorch (issue 17's goal).

    /usr/bin/python3 bench/eval_compare.py --charlm build/charlm --checkpoint runs/default/best.ckpt --text FILE
    /usr/bin/python3 bench/eval_compare.py --python bench/.venv/bin/python --checkpoint CKPT --text FILE   # today's PyTorch

--python (default /usr/bin/python3, Debian's torch 1.13) is the interpreter, and so the torch, that scores the text:
the script re-executes itself under it before importing torch. For a second torch, run it again with the other
--python; every table names the torch that made it.

charlm runs `charlm eval --checkpoint CKPT --text FILE --json` with each --streams S and --threads T (and
--precision fp32 and bf16). PyTorch loads the same weights (`charlm export`, PyTorch's state_dict names) and scores the text with the
same streams-with-burn-in plan as charlm's (S streams side by side, each after the first warmed up on the
--burn-in characters before its piece, the leftover characters continuing the last stream at batch 1), in fp32
and under torch.autocast bf16, with each --torch-threads setting. PyTorch does not re-run unsettled streams
(docs/evaluation.md), which only makes its job cheaper. Each side's fastest wall time is kept; the ratio is
PyTorch's best over charlm's best. Every run also prints its perplexity, so a fast wrong answer shows.
Runs are sequential and interleaved over --repeats rounds; the 1-minute load average is printed with each round.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from blas_env import match_charlm_blas_core  # noqa: E402
from torch_python import add_python_argument, describe, describe_line, python_in, run_under  # noqa: E402

if __name__ == "__main__":  # before torch is imported: the interpreter, then the OpenBLAS kernels it will load
    run_under(python_in(sys.argv[1:]))
    _charlm = sys.argv[sys.argv.index("--charlm") + 1] if "--charlm" in sys.argv[:-1] else os.path.join(ROOT, "build", "charlm")
    match_charlm_blas_core(_charlm, reexec=True)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from torch_interop import read_safetensors  # noqa: E402  (the safetensors reader the interop proof uses)


class CharModel(nn.Module):
    """The PyTorch model whose state_dict names `charlm export` writes (docs/interop.md)."""

    def __init__(self, model_config, vocab):
        super().__init__()
        cell, hidden, layers = model_config["cell"], model_config["hidden_size"], model_config["num_layers"]
        embedding = model_config.get("embedding_size", 0)
        self.vocab = vocab
        self.embedding = nn.Embedding(vocab, embedding) if embedding > 0 else None
        inputs = embedding if embedding > 0 else vocab
        if cell == "lstm":
            self.rnn = nn.LSTM(inputs, hidden, layers)
        elif cell == "gru":
            self.rnn = nn.GRU(inputs, hidden, layers)
        else:
            self.rnn = nn.RNN(inputs, hidden, layers, nonlinearity=model_config.get("activation", "tanh"))
        self.output = nn.Linear(hidden, vocab)

    def forward(self, ids, state):  # ids (T, B) -> log-probabilities (T, B, V) in fp32, new state
        x = self.embedding(ids) if self.embedding is not None else nn.functional.one_hot(ids, self.vocab).float()
        out, state = self.rnn(x, state)
        return torch.log_softmax(self.output(out).float(), dim=-1), state


def text_ids(text_path, metadata):
    config = json.loads(metadata["config"])
    tokens = json.loads(metadata["vocab"])["tokens"]
    with open(text_path, encoding="utf-8", newline="") as f:
        text = f.read().replace("\r\n", "\n")
    policy = config["data"].get("newline", "keep")
    if policy == "space":
        text = text.replace("\n", " ")
    elif policy == "drop":
        text = text.replace("\n", "")
    index = {c: i for i, c in enumerate(tokens)}
    missing = sorted({c for c in text if c not in index})
    if missing:
        sys.exit(f"eval_compare: {len(missing)} characters of {text_path} are not in the checkpoint's vocabulary "
                 f"(first: {missing[0]!r}): give a text the model was trained on")
    return config, tokens, torch.tensor([index[c] for c in text], dtype=torch.long)


def plan(transitions, streams, burn_in):
    """charlm's EvalPlan (lib/eval/evaluate.cc): (streams, burn_in, piece, run_length, tail_start)."""
    w = max(burn_in, 0)
    most = (transitions - w) // max(w, 1) if w < transitions else 1
    s = max(1, min(streams, most, max(transitions, 1)))
    w = 0 if s == 1 else w
    piece = (transitions - w) // s
    return s, w, piece, w + piece, w + s * piece


def torch_score(model, ids, streams, burn_in, chunk, autocast):
    """Total natural-log loss and count over every transition of ids, with charlm's plan."""
    n = ids.numel() - 1
    s, w, piece, run_length, tail_start = plan(n, streams, burn_in)
    starts = torch.arange(s) * piece
    loss, count, state = 0.0, 0, None
    context = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext
    with torch.no_grad():
        for begin in range(0, run_length, chunk):
            steps = min(chunk, run_length - begin)
            positions = starts.unsqueeze(0) + torch.arange(begin, begin + steps).unsqueeze(1)  # (steps, S)
            with context():
                logp, state = model(ids[positions], state)
            picked = logp.gather(2, ids[positions + 1].unsqueeze(2)).squeeze(2).double()  # (steps, S)
            scored = torch.ones(steps, s, dtype=torch.bool)
            scored[:, 1:] = (torch.arange(begin, begin + steps) >= w).unsqueeze(1)
            loss -= float(picked[scored].sum())
            count += int(scored.sum())
        if tail_start < n:
            if isinstance(state, tuple):
                tail_state = tuple(t[:, s - 1:s].contiguous() for t in state)
            else:
                tail_state = state[:, s - 1:s].contiguous()
            positions = torch.arange(tail_start, n).unsqueeze(1)
            with context():
                logp, _ = model(ids[positions], tail_state)
            loss -= float(logp.gather(2, ids[positions + 1].unsqueeze(2)).sum())
            count += n - tail_start
    assert count == n, (count, n)
    return loss, count


def charlm_score(charlm, checkpoint, text, streams, precision, threads):
    command = [charlm, "eval", "--checkpoint", checkpoint, "--text", text, "--json", "--streams", str(streams),
               "--precision", precision, "--threads", str(threads)]
    begin = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - begin
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    return seconds, json.loads(done.stdout)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charlm", default=os.path.join(ROOT, "build", "charlm"))
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--text", required=True, help="UTF-8 text to score (the goal: 1 MB)")
    parser.add_argument("--streams", type=int, nargs="+", default=[32, 128, 512], help="streams tried by each side")
    parser.add_argument("--burn-in", type=int, default=256, help="warm-up characters per stream (charlm's default)")
    parser.add_argument("--chunk", type=int, default=256, help="PyTorch's time steps per forward call")
    parser.add_argument("--torch-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--charlm-threads", type=int, nargs="+", default=[1, 2], help="charlm eval --threads values")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], help="charlm's --precision values")
    parser.add_argument("--autocast", nargs="+", default=["none", "bf16"], help="PyTorch: none and/or bf16")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; each side keeps its fastest")
    add_python_argument(parser)
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    work = tempfile.mkdtemp(prefix="eval_compare_")
    exported = os.path.join(work, "model.safetensors")
    subprocess.run([args.charlm, "export", "--checkpoint", args.checkpoint, "--out", exported], check=True,
                   stdout=subprocess.DEVNULL)
    metadata, tensors = read_safetensors(exported)
    config, tokens, ids = text_ids(args.text, metadata)
    model = CharModel(config["model"], len(tokens))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"# {cpu}, {os.cpu_count()} cores, torch {torch.__version__}; {args.text}: {os.path.getsize(args.text):,} "
          f"bytes, {ids.numel():,} characters; model {config['model']['cell']} {config['model']['num_layers']}x"
          f"{config['model']['hidden_size']}, vocabulary {len(tokens):,}")
    best = {}  # side -> (seconds, description, perplexity)

    def keep(side, seconds, description, perplexity):
        print(f"{side:14} {description:46} {seconds:8.2f} s  perplexity {perplexity:.6f}", flush=True)
        if side not in best or seconds < best[side][0]:
            best[side] = (seconds, description, perplexity)

    for round_ in range(args.repeats):
        print(f"# round {round_ + 1}, load {os.getloadavg()[0]:.2f}", flush=True)
        for precision in args.precision:
            for threads in args.charlm_threads:
                for streams in args.streams:
                    seconds, result = charlm_score(args.charlm, args.checkpoint, args.text, streams, precision, threads)
                    if seconds is None:
                        print(f"charlm {precision}: skipped ({result})")
                        break
                    keep(f"charlm {precision}", seconds,
                         f"--streams {streams} --threads {threads} (rescored {result.get('rescored_chars', 0):,})",
                         result["perplexity"])
        for autocast in args.autocast:
            for threads in args.torch_threads:
                torch.set_num_threads(threads)
                for streams in args.streams:
                    begin = time.perf_counter()
                    loss, count = torch_score(model, ids, streams, args.burn_in, args.chunk, autocast == "bf16")
                    keep(f"torch {'bf16' if autocast == 'bf16' else 'fp32'}", time.perf_counter() - begin,
                         f"{streams} streams, {threads} threads", math.exp(loss / count))
    print(f"# load {os.getloadavg()[0]:.2f} at the end")
    print(f"\nPyTorch: {describe_line(describe(sys.executable))}; its settings are torch.set_num_threads.")
    print("\n| side | fastest setting | seconds | perplexity |\n|---|---|---|---|")
    for side, (seconds, description, perplexity) in sorted(best.items()):
        print(f"| {side} | {description} | {seconds:.2f} | {perplexity:.4f} |")
    torch_best = min((v for k, v in best.items() if k.startswith("torch")), default=None)
    charlm_best = min((v for k, v in best.items() if k.startswith("charlm")), default=None)
    if torch_best and charlm_best:
        ratio = torch_best[0] / charlm_best[0]
        print(f"\ncharlm's best ({charlm_best[1]}) against PyTorch's best ({torch_best[1]}): {ratio:.2f}x "
              f"({'meets' if ratio >= 2 else 'misses'} the 2x goal)")


if __name__ == "__main__":
    main(sys.argv[1:])
