#!/usr/bin/python3
"""PyTorch CPU throughput reference for charlm's benchmark: training, evaluation and generation speed, peak RSS.

Run by hand with any torch (bench/compare.py runs it with its --python); it is not part of the C++ test suite:
    /usr/bin/python3 bench/torch_reference.py --preset d2l --torch-threads 1 --seconds 4      # Debian's torch 1.13
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_reference.py --preset char-rnn --json
    /usr/bin/python3 bench/torch_reference.py --preset d2l --autocast bf16   # PyTorch's fastest CPU setting
    bench/.venv/bin/python bench/torch_reference.py --preset d2l             # today's PyTorch (bench/setup_torch.sh)
Debian's torch does its float32 matrix products in the system BLAS (OpenBLAS through libblas.so.3), whose
thread count comes from OPENBLAS_NUM_THREADS at load time and is not changed by torch.set_num_threads;
both counts are reported so runs can be compared fairly with charlm's. PyPI's torch does them in the MKL it
carries, on torch.set_num_threads' threads; openblas_threads is then null. On a busy machine, torch threads > 1
collapses (OpenMP workers spin while waiting); OMP_WAIT_POLICY=PASSIVE avoids that. Compare only runs whose
reported cpu/wall is close to the thread count in use.

--autocast bf16 runs every phase's forward pass (and the loss) under torch.autocast("cpu", dtype=torch.bfloat16),
as a PyTorch user asks for mixed precision on the CPU; autocast picks which products run in bf16 (with torch 1.13,
nn.Linear and nn.RNN return bf16, nn.LSTM and nn.GRU return fp32); the weights, gradients and Adam stay fp32.
"""

import argparse
import contextlib
import ctypes
import json
import os
import platform
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Model shapes of the two reference setups; any flag given explicitly overrides the preset's value.
PRESETS = {
    # Dive into Deep Learning, chapter 6: Jay Chou lyrics, one 256-unit layer, batch 32 x 35 steps.
    "d2l": dict(cell="lstm", vocab=2583, embedding=256, hidden=256, layers=1, batch=32, steps=35),
    # The classic character-level setup: tiny vocabulary, two 512-unit layers, batch 50 x 50 steps.
    "char-rnn": dict(cell="lstm", vocab=65, embedding=64, hidden=512, layers=2, batch=50, steps=50),
}
MODEL_FIELDS = ("cell", "vocab", "embedding", "hidden", "layers", "batch", "steps")
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class CharModel(nn.Module):
    def __init__(self, cell, vocab, embedding, hidden, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.rnn = CELLS[cell](embedding, hidden, num_layers=layers)
        self.output = nn.Linear(hidden, vocab)

    def forward(self, tokens, state):  # tokens (T, B), time-major like charlm
        hidden_seq, state = self.rnn(self.embedding(tokens), state)
        return self.output(hidden_seq), state  # logits (T, B, V)


def initial_state(cell, layers, batch, hidden):
    zeros = torch.zeros(layers, batch, hidden)
    return (zeros, zeros.clone()) if cell == "lstm" else zeros


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="d2l",
                        help="model shape to start from (default d2l); explicit flags override it")
    parser.add_argument("--cell", choices=sorted(CELLS))
    parser.add_argument("--vocab", type=int)
    parser.add_argument("--embedding", type=int)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--torch-threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training/evaluation steps per phase (default 5)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per phase, 3 phases (default 3)")
    parser.add_argument("--autocast", choices=("none", "bf16"), default="none",
                        help='"bf16": forward passes under torch.autocast("cpu", dtype=torch.bfloat16) (default none)')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of one line")
    args = parser.parse_args(argv)
    for field in MODEL_FIELDS:
        if getattr(args, field) is None:
            setattr(args, field, PRESETS[args.preset][field])
    for field in ("vocab", "embedding", "hidden", "layers", "batch", "steps", "torch_threads"):
        if getattr(args, field) < 1:
            parser.error(f"--{field.replace('_', '-')} is {getattr(args, field)}; it must be at least 1")
    if args.warmup < 0 or args.seconds <= 0:
        parser.error(f"--warmup {args.warmup} / --seconds {args.seconds}: use warmup >= 0 and seconds > 0")
    return args


def openblas_threads():
    """OpenBLAS's own thread count (the library torch's matrix products land in), or None if this process has not
    loaded it (RTLD_NOLOAD: asking must not load a library the torch in use does not call)."""
    try:
        return int(ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD).openblas_get_num_threads())
    except (OSError, AttributeError):
        return None


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_loop(step, warmup, seconds, cpu_used):
    """Runs step() warmup times, then repeatedly for at least `seconds`; returns (calls, elapsed seconds).

    Adds the process CPU seconds of the timed part to cpu_used[0]: CPU/wall well below the thread count
    means other processes took the cores and the throughput is understated.
    """
    for _ in range(warmup):
        step()
    calls, start, cpu_start = 0, time.perf_counter(), cpu_seconds()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            cpu_used[0] += cpu_seconds() - cpu_start
            return calls, elapsed


def precision_context(autocast):
    """A fresh context manager for one forward pass: autocast to bf16, or nothing."""
    if autocast == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def run(args):
    load_before = os.getloadavg()[0]  # other processes competing for the cores make the numbers meaningless
    cpu_used = [0.0]
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    model = CharModel(args.cell, args.vocab, args.embedding, args.hidden, args.layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    T, B, V = args.steps, args.batch, args.vocab

    # A few random batches, cycled, so token generation stays out of the timed loops.
    batches = [(torch.randint(0, V, (T, B)), torch.randint(0, V, (T, B))) for _ in range(8)]
    counter = [0]
    state = [initial_state(args.cell, args.layers, B, args.hidden)]

    def next_batch():
        counter[0] += 1
        return batches[counter[0] % len(batches)]

    def train_step():  # state carried across batches, as charlm's consecutive sampler does
        x, y = next_batch()
        optimizer.zero_grad(set_to_none=True)
        with precision_context(args.autocast):
            logits, new_state = model(x, state[0])
            loss = loss_fn(logits.reshape(-1, V), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        state[0] = detach(new_state)

    model.train()
    train_calls, train_seconds = timed_loop(train_step, args.warmup, args.seconds, cpu_used)

    model.eval()
    eval_state = [initial_state(args.cell, args.layers, B, args.hidden)]
    eval_loss = [0.0]

    def eval_step():
        x, y = next_batch()
        with precision_context(args.autocast):
            logits, eval_state[0] = model(x, eval_state[0])
            eval_loss[0] = float(loss_fn(logits.reshape(-1, V), y.reshape(-1)))

    with torch.no_grad():
        eval_calls, eval_seconds = timed_loop(eval_step, args.warmup, args.seconds, cpu_used)

    gen_state = [initial_state(args.cell, args.layers, 1, args.hidden)]
    token = [torch.zeros(1, 1, dtype=torch.long)]

    def generate_char():  # batch 1, one step at a time, sampling from the softmax
        with precision_context(args.autocast):
            logits, gen_state[0] = model(token[0], gen_state[0])
        token[0] = torch.multinomial(F.softmax(logits[0].float(), dim=-1), 1)  # (1, 1)

    with torch.no_grad():
        gen_calls, gen_seconds = timed_loop(generate_char, args.warmup * T, args.seconds, cpu_used)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
    return {
        "framework": f"torch {torch.__version__}",
        "preset": args.preset,
        "cell": args.cell,
        "vocab": V,
        "embedding": args.embedding,
        "hidden": args.hidden,
        "layers": args.layers,
        "batch": B,
        "steps": T,
        "params": sum(p.numel() for p in model.parameters()),
        "autocast": args.autocast,
        "torch_threads": torch.get_num_threads(),
        "openblas_threads": openblas_threads(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cpu": platform.processor() or platform.machine(),
        "train_tokens_per_s": train_calls * B * T / train_seconds,
        "train_steps": train_calls,
        "eval_tokens_per_s": eval_calls * B * T / eval_seconds,
        "eval_steps": eval_calls,
        "eval_loss": eval_loss[0],
        "gen_chars_per_s": gen_calls / gen_seconds,
        "gen_chars": gen_calls,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "cpu_per_wall": round(cpu_used[0] / (train_seconds + eval_seconds + gen_seconds), 2),
        "cores": os.cpu_count(),
        "load_1min_before": load_before,
        "load_1min_after": os.getloadavg()[0],
    }


def main(argv):
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['framework']} {result['preset']} {result['cell']} V={result['vocab']} E={result['embedding']} "
          f"H={result['hidden']}x{result['layers']} B={result['batch']} T={result['steps']} "
          f"threads torch={result['torch_threads']} openblas={result['openblas_threads']} autocast {result['autocast']}: "
          f"train {result['train_tokens_per_s']:.0f} tok/s, eval {result['eval_tokens_per_s']:.0f} tok/s, "
          f"generate {result['gen_chars_per_s']:.0f} char/s, peak RSS {result['peak_rss_mb']:.0f} MB "
          f"(cpu/wall {result['cpu_per_wall']:.2f}; load {result['load_1min_before']:.1f} -> "
          f"{result['load_1min_after']:.1f} on {result['cores']} cores)")


if __name__ == "__main__":
    main(sys.argv[1:])
