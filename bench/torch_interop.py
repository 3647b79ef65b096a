#!/usr/bin/python3
"""charlm <-> PyTorch through safetensors, proven by PyTorch: perplexities must agree within 1e-4 relative.

1. charlm trains small RNN/GRU/LSTM models, `charlm export` writes them, and the plain PyTorch model
   (nn.Embedding + nn.RNN/GRU/LSTM + nn.Linear) loads each with load_state_dict(strict=True) and runs it as one
   stream from a zero state over the text.
2. PyTorch trains a small LSTM for a few steps and saves it as safetensors; `charlm import` reads it (with
   --vocab and --config, since PyTorch writes no charlm metadata).
Each side's perplexity is compared with `charlm eval --text FILE --streams 1 --json` (one stream over the text).
Usage: /usr/bin/python3 bench/torch_interop.py --charlm build/charlm [--work-dir DIR] [--quick]
"""

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn


class CharModel(nn.Module):
    """The plain PyTorch model whose state_dict names charlm export writes (docs/interop.md)."""

    def __init__(self, cell, vocab, hidden, layers, embedding, activation="tanh"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding) if embedding > 0 else None
        inputs = embedding if embedding > 0 else vocab
        self.vocab = vocab
        if cell == "lstm":
            self.rnn = nn.LSTM(inputs, hidden, layers)
        elif cell == "gru":
            self.rnn = nn.GRU(inputs, hidden, layers)
        else:
            self.rnn = nn.RNN(inputs, hidden, layers, nonlinearity=activation)
        self.output = nn.Linear(hidden, vocab)

    def forward(self, ids):  # ids (T,) -> logits (T, V), one stream from a zero state
        x = self.embedding(ids) if self.embedding is not None else nn.functional.one_hot(ids, self.vocab).float()
        out, _ = self.rnn(x.unsqueeze(1))
        return self.output(out.squeeze(1))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", name
        begin, end = entry["data_offsets"]
        values = torch.frombuffer(bytearray(body[begin:end]), dtype=torch.float32)
        tensors[name] = values.reshape(entry["shape"]).clone()
    return metadata, tensors


def write_safetensors(path, state_dict):
    header, chunks, offset = {}, [], 0
    for name, tensor in state_dict.items():
        raw = tensor.detach().contiguous().float().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def perplexity(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor(ids[:-1])).double()
        loss = nn.functional.cross_entropy(logits, torch.tensor(ids[1:]))
    return math.exp(loss.item())


def charlm_eval(charlm, checkpoint, text_path):
    out = subprocess.run([charlm, "eval", "--checkpoint", checkpoint, "--text", text_path, "--streams", "1", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["perplexity"]


def run(command, cwd):
    subprocess.run(command, check=True, cwd=cwd, stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--charlm", required=True)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="small models and text (the ctest test)")
    args = parser.parse_args()
    charlm = os.path.abspath(args.charlm)
    work = args.work_dir or tempfile.mkdtemp(prefix="torch_interop_")
    torch.manual_seed(0)
    with open("/usr/share/common-licenses/GPL-3", encoding="utf-8") as f:
        text = f.read()[: 3000 if args.quick else 20000]
    text_path = os.path.join(work, "text.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text)

    results = []
    # 1. charlm -> PyTorch.
    cases = [("lstm", 2, 8, "tanh"), ("gru", 1, 8, "tanh"), ("rnn", 1, 0, "tanh"), ("rnn", 2, 8, "relu")]
    hidden = 16 if args.quick else 64
    for cell, layers, embedding, activation in cases:
        name = f"{cell}_{layers}x{hidden}_e{embedding}_{activation}"
        config = {"data": {"corpus": "text.txt", "val_fraction": 0.1},
                  "model": {"cell": cell, "hidden_size": hidden, "num_layers": layers, "embedding_size": embedding,
                            "activation": activation},
                  "train": {"epochs": 1, "batch_size": 4, "num_steps": 16, "out_dir": "run_" + name, "threads": 1},
                  "generate": {"every": 0}}
        with open(os.path.join(work, name + ".json"), "w") as f:
            json.dump(config, f)
        run([charlm, "train", "--config", name + ".json"], work)
        ckpt = os.path.join(work, "run_" + name, "last.ckpt")
        exported = os.path.join(work, name + ".safetensors")
        run([charlm, "export", "--checkpoint", ckpt, "--out", exported], work)
        metadata, tensors = read_safetensors(exported)
        assert metadata["format"] == "pt"
        tokens = json.loads(metadata["vocab"])["tokens"]
        ids = [tokens.index(c) for c in text]
        model = CharModel(cell, len(tokens), hidden, layers, embedding, activation)
        model.load_state_dict(tensors, strict=True)
        results.append(("charlm -> torch " + name, perplexity(model, ids), charlm_eval(charlm, ckpt, text_path)))

    # 2. PyTorch -> charlm.
    counts = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    tokens = sorted(counts, key=lambda c: (-counts[c], ord(c)))  # charlm's order: frequency, then code point
    with open(os.path.join(work, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({"tokens": tokens, "counts": [counts[c] for c in tokens]}, f, ensure_ascii=False)
    index = {c: i for i, c in enumerate(tokens)}
    ids = [index[c] for c in text]
    model = CharModel("lstm", len(tokens), hidden, 1, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(20):
        start = (step * 97) % (len(ids) - 65)
        chunk = torch.tensor(ids[start:start + 65])
        loss = nn.functional.cross_entropy(model(chunk[:-1]), chunk[1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    write_safetensors(os.path.join(work, "torch.safetensors"), model.state_dict())
    with open(os.path.join(work, "torch_model.json"), "w") as f:
        json.dump({"data": {"corpus": "text.txt"},
                   "model": {"cell": "lstm", "hidden_size": hidden, "num_layers": 1, "embedding_size": 8}}, f)
    run([charlm, "import", "--safetensors", "torch.safetensors", "--out", "torch.ckpt", "--vocab", "vocab.json",
         "--config", "torch_model.json"], work)
    results.append(("torch -> charlm lstm_1x%d_e8" % hidden, perplexity(model, ids),
                    charlm_eval(charlm, os.path.join(work, "torch.ckpt"), text_path)))

    worst = 0.0
    for name, torch_ppl, charlm_ppl in results:
        rel = abs(torch_ppl - charlm_ppl) / charlm_ppl
        worst = max(worst, rel)
        print(f"{name:40s} torch {torch_ppl:.6f}  charlm eval {charlm_ppl:.6f}  relative difference {rel:.2e}")
    if worst > 1e-4:
        print(f"FAILED: largest relative difference {worst:.2e} is above 1e-4")
        return 1
    print(f"all within 1e-4 (largest relative difference {worst:.2e}) on {len(text)} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
