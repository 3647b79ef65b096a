#!/usr/bin/python3
"""Quality parity: charlm against the plain PyTorch model with the same recipe, best validation perplexity per seed.

Run by hand with a torch; it is not part of the C++ test suite:
    /usr/bin/python3 bench/quality.py --corpus /usr/share/common-licenses/GPL-3 --cell lstm --dropout 0.2 \
        --epochs 4 --seeds 3                                  # Debian's torch 1.13 (apt-get install python3-torch)
    /usr/bin/python3 bench/quality.py --python bench/.venv/bin/python --corpus FILE ...   # today's PyTorch (sh bench/setup_torch.sh)
--python (default /usr/bin/python3) is the interpreter, and so the torch, that trains the PyTorch model: the script
re-executes itself under it before importing torch; its first line names that torch and the thread setting.
The PyTorch model is nn.Embedding + nn.LSTM/GRU + nn.Linear with nn.Dropout on the embedding output and on the RNN
output, trained with Adam, global-norm clipping and charlm's consecutive sampler (batch rows of one stream each,
state carried and detached, reset each epoch). Both are scored on the same validation split as one stream (charlm's
full-context evaluation equals that within 0.1 %, docs/evaluation.md). Prints best validation perplexity per seed,
the medians and their ratio charlm / PyTorch. charlm uses PyTorch's initialization (model.init=pytorch) unless
--init keras is given. Figures and what they settle: docs/quality.md.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from torch_python import add_python_argument, describe, describe_line, python_in, run_under  # noqa: E402

if __name__ == "__main__":
    run_under(python_in(sys.argv[1:]))  # before torch is imported

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def load_ids(path, newline, val_fraction):
    """charlm's corpus reading: UTF-8 code points, the newline policy, vocabulary from the whole text, tail split."""
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("\r\n", "\n")
    if newline == "space":
        text = text.replace("\n", " ")
    elif newline == "drop":
        text = text.replace("\n", "")
    vocab = {c: i for i, c in enumerate(sorted(set(text)))}
    ids = [vocab[c] for c in text]
    val_size = int(math.floor(len(ids) * val_fraction))
    return ids[: len(ids) - val_size], ids[len(ids) - val_size:], len(vocab)


class TorchModel(nn.Module):
    def __init__(self, cell, vocab, embedding, hidden, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(embedding, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, vocab)

    def forward(self, x, state):  # x (T, B)
        out, state = self.rnn(self.dropout(self.embedding(x)), state)
        return self.output(self.dropout(out)), state


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def torch_run(args, seed, train, val, vocab):
    torch.manual_seed(seed)
    model = TorchModel(args.cell, vocab, args.embedding, args.hidden, args.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    B, T = args.batch, args.steps
    row = (len(train) - 1) // B
    data = torch.tensor(train, dtype=torch.long)
    xs = torch.stack([data[b * row: b * row + row] for b in range(B)], dim=1)  # (row, B)
    ys = torch.stack([data[b * row + 1: b * row + row + 1] for b in range(B)], dim=1)
    val_x = torch.tensor(val[:-1], dtype=torch.long).unsqueeze(1)
    val_y = torch.tensor(val[1:], dtype=torch.long)
    best = math.inf
    for _ in range(args.epochs):
        model.train()
        state = None
        for start in range(0, row - T + 1, T):
            if state is not None:
                state = detach(state)
            logits, state = model(xs[start:start + T], state)
            loss = loss_fn(logits.reshape(-1, vocab), ys[start:start + T].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits, _ = model(val_x, None)  # one stream over the whole validation split
            best = min(best, math.exp(loss_fn(logits.reshape(-1, vocab), val_y).item()))
    return best


def charlm_run(args, seed):
    with tempfile.TemporaryDirectory() as out_dir:
        sets = {
            "data.corpus": os.path.abspath(args.corpus), "data.newline": args.newline,
            "data.val_fraction": args.val_fraction, "data.max_chars": 0,
            "model.cell": args.cell, "model.hidden_size": args.hidden, "model.embedding_size": args.embedding,
            "model.dropout": args.dropout, "model.num_layers": 1, "model.init": args.init,
            "train.optimizer.name": "adam", "train.optimizer.lr": args.lr, "train.clip_norm": args.clip,
            "train.batch_size": args.batch, "train.num_steps": args.steps, "train.epochs": args.epochs,
            "train.sampler": "consecutive", "train.random_offset": "false", "train.patience": 0,
            "train.seed": seed, "train.threads": args.threads, "train.out_dir": out_dir, "generate.every": 0,
        }
        command = [args.charlm, "train", "--config", os.path.join(ROOT, "configs", "default.json")]
        for key, value in sets.items():
            command += ["--set", f"{key}={value}"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(out_dir, "metrics.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        return min(row["val_perplexity"] for row in rows if row.get("kind") == "epoch")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--newline", default="keep", choices=["keep", "space", "drop"])
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru"])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embedding", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--init", default="pytorch", choices=["pytorch", "keras"],
                   help="charlm's model.init; pytorch is the reference's own initialization")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=35)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="charlm's train.threads and torch.set_num_threads")
    p.add_argument("--charlm", default=os.path.join(ROOT, "build", "charlm"))
    add_python_argument(p)
    args = p.parse_args()
    print(f"PyTorch: {describe_line(describe(sys.executable))}; torch.set_num_threads({args.threads}), charlm "
          f"train.threads {args.threads}", flush=True)
    torch.set_num_threads(args.threads)
    train, val, vocab = load_ids(args.corpus, args.newline, args.val_fraction)
    ours, theirs = [], []
    for seed in range(1, args.seeds + 1):
        ours.append(charlm_run(args, seed))
        theirs.append(torch_run(args, seed, train, val, vocab))
        print(f"seed {seed}: charlm {ours[-1]:.3f}  pytorch {theirs[-1]:.3f}", flush=True)
    mine, ref = statistics.median(ours), statistics.median(theirs)
    print(f"median: charlm {mine:.3f}  pytorch {ref:.3f}  ratio {mine / ref:.3f}")


if __name__ == "__main__":
    sys.exit(main())
