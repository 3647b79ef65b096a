#!/usr/bin/env python3
"""The quality yardstick: a small character GPT trained the way nanoGPT trains one, for a number of seconds.

Not part of the test suite. Run it with today's PyTorch (sh bench/setup_torch.sh makes bench/.venv):
    bench/.venv/bin/python bench/torch_gpt_reference.py --corpus corpus/jaychou_lyrics.txt --seconds 180 --json
    /usr/bin/python3 bench/torch_gpt_reference.py ...      # Debian's torch 1.13, the second column

The model: token and position embeddings, pre-LayerNorm blocks (causal self-attention, GELU MLP of 4x width),
a final LayerNorm and an output layer tied to the token embedding. The recipe is nanoGPT's CPU example for
shakespeare_char: block 64, batch 12, 4 layers, 4 heads, width 128, dropout 0, AdamW lr 1e-3 (betas 0.9/0.99,
weight decay 0.1 on matrices and embeddings only), 100 warm-up steps, cosine to 1e-4, gradient clip 1.
--seconds runs the cosine over the time, not over a step count: the learning rate follows the fraction of the
training time spent, and training stops when the time left is what the final validation is estimated to take,
so the whole run, validation included, fits the budget (as `charlm train --minutes` does).

The data are read as charlm reads them: UTF-8 code points, CRLF as LF, the vocabulary of the whole text, the last
--val-fraction of the characters held out. The validation loss is full-context: every transition val[k] -> val[k+1]
is scored once, from windows of the block size that advance by half a block, so each scored character after the
first half block sees at least half a block of context. Reported in nats per character.
"""

import argparse
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_split(path, val_fraction):
    """charlm's reading and split: code points, CRLF -> LF, vocabulary of the whole text, the tail held out."""
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("\r\n", "\n")
    vocab = {c: i for i, c in enumerate(sorted(set(text)))}
    ids = torch.tensor([vocab[c] for c in text], dtype=torch.long)
    val_size = int(math.floor(len(ids) * val_fraction))
    return ids[: len(ids) - val_size], ids[len(ids) - val_size:], len(vocab)


class Block(nn.Module):
    """One pre-LayerNorm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, width, heads, dropout):
        super().__init__()
        self.heads = heads
        self.ln_attention = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.attention_out = nn.Linear(width, width)
        self.ln_mlp = nn.LayerNorm(width)
        self.mlp_in = nn.Linear(width, 4 * width)
        self.mlp_out = nn.Linear(4 * width, width)
        self.dropout = dropout

    def forward(self, x):  # x (B, T, C)
        batch, steps, width = x.shape
        q, k, v = self.qkv(self.ln_attention(x)).split(width, dim=2)
        shape = (batch, steps, self.heads, width // self.heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))  # (B, heads, T, C / heads)
        if hasattr(F, "scaled_dot_product_attention"):
            attended = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        else:  # torch 1.13
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            causal = torch.ones(steps, steps, dtype=torch.bool, device=x.device).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
            attended = F.dropout(scores.softmax(dim=-1), self.dropout, self.training) @ v
        attended = attended.transpose(1, 2).contiguous().view(batch, steps, width)
        x = x + F.dropout(self.attention_out(attended), self.dropout, self.training)
        return x + F.dropout(self.mlp_out(F.gelu(self.mlp_in(self.ln_mlp(x)))), self.dropout, self.training)


class CharGpt(nn.Module):
    def __init__(self, vocab, block, layers, heads, width, dropout):
        super().__init__()
        self.block = block
        self.token_embedding = nn.Embedding(vocab, width)
        self.position_embedding = nn.Embedding(block, width)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.ln_final = nn.LayerNorm(width)
        self.output = nn.Linear(width, vocab, bias=False)
        self.output.weight = self.token_embedding.weight  # tied
        self.dropout = dropout
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith("attention_out.weight") or name.endswith("mlp_out.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx):  # idx (B, T) -> logits (B, T, V)
        positions = torch.arange(idx.size(1), device=idx.device)
        x = F.dropout(self.token_embedding(idx) + self.position_embedding(positions), self.dropout, self.training)
        for block in self.blocks:
            x = block(x)
        return self.output(self.ln_final(x))


def make_optimizer(model, lr, weight_decay, beta2):
    decayed = [p for p in model.parameters() if p.dim() >= 2]  # matrices and embeddings
    others = [p for p in model.parameters() if p.dim() < 2]    # biases and LayerNorm gains
    groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, beta2))


def scheduled_lr(args, step, progress):
    """Linear warm-up by steps, then cosine from lr to min_lr over progress in [0, 1]."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1.0 + math.cos(math.pi * progress))


def validation_windows(val, block):
    """(starts, first_scored): windows of `block` transitions advancing by half a block; each scores the positions
    from first_scored on, so every transition val[k] -> val[k+1] is scored exactly once."""
    transitions = len(val) - 1
    half = max(1, block // 2)
    windows = []
    start = 0
    scored_until = 0  # transitions [0, scored_until) are scored
    while scored_until < transitions:
        start = max(0, min(start, transitions - block))
        windows.append((start, scored_until - start))
        scored_until = min(start + block, transitions)
        start += half
    return windows


@torch.no_grad()
def full_context_loss(model, val, block, batch_windows=64):
    """Mean cross-entropy in nats over every validation transition, each scored once."""
    model.eval()
    windows = validation_windows(val, block)
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_windows):
        chunk = windows[i:i + batch_windows]
        steps = min(block, len(val) - 1)
        x = torch.stack([val[s:s + steps] for s, _ in chunk])
        y = torch.stack([val[s + 1:s + 1 + steps] for s, _ in chunk])
        losses = F.cross_entropy(model(x).transpose(1, 2), y, reduction="none")  # (B, T)
        for row, (_, first) in enumerate(chunk):
            total += losses[row, first:].sum().item()
            count += steps - first
    model.train()
    return total / count, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--seconds", type=float, required=True, help="the whole run's budget, validation included")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--min-lr", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--beta2", type=float, default=0.99)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args()

    started = time.monotonic()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    train, val, vocab = load_split(args.corpus, args.val_fraction)
    if len(val) < 2 or len(train) <= args.block + 1:
        sys.exit(f"--corpus {args.corpus}: too short for block {args.block} and val fraction {args.val_fraction}")
    model = CharGpt(vocab, args.block, args.layers, args.heads, args.width, args.dropout)
    optimizer = make_optimizer(model, args.lr, args.weight_decay, args.beta2)
    params = sum(p.numel() for p in model.parameters())

    # The final validation's cost, estimated from one timed batch of windows, is kept out of the training time.
    probe_windows = min(64, len(validation_windows(val, args.block)))
    probe = torch.stack([val[:min(args.block, len(val) - 1)]] * probe_windows)
    with torch.no_grad():
        model.eval()
        model(probe)  # the first call pays for one-time set-up
        t0 = time.monotonic()
        model(probe)
        probe_s = time.monotonic() - t0
        model.train()
    eval_estimate = 1.2 * probe_s * len(validation_windows(val, args.block)) / probe_windows + 1.0
    train_seconds = args.seconds - (time.monotonic() - started) - eval_estimate

    generator = torch.Generator().manual_seed(args.seed)
    step, train_started, last_loss = 0, time.monotonic(), float("nan")
    while True:
        elapsed = time.monotonic() - train_started
        if elapsed >= train_seconds:
            break
        lr = scheduled_lr(args, step, elapsed / train_seconds)
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(len(train) - args.block - 1, (args.batch,), generator=generator)
        x = torch.stack([train[s:s + args.block] for s in starts])
        y = torch.stack([train[s + 1:s + 1 + args.block] for s in starts])
        loss = F.cross_entropy(model(x).transpose(1, 2), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        last_loss = loss.item()
        step += 1
    train_s = time.monotonic() - train_started
    val_loss, scored = full_context_loss(model, val, args.block)
    result = {
        "side": "torch_gpt",
        "torch": torch.__version__,
        "corpus": args.corpus,
        "seconds_budget": args.seconds,
        "wall_s": round(time.monotonic() - started, 2),
        "train_s": round(train_s, 2),
        "steps": step,
        "layers": args.layers, "heads": args.heads, "width": args.width, "block": args.block, "batch": args.batch,
        "params": params,
        "threads": args.threads,
        "last_train_loss": last_loss,
        "val_loss": val_loss,
        "val_transitions": scored,
        "cpu": cpu_model(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.layers}x{args.width} GPT ({params} parameters, torch {torch.__version__}): {step} steps in "
              f"{train_s:.0f} s, validation {val_loss:.4f} nats/char over {scored} transitions, "
              f"{result['wall_s']:.0f} s in all")


if __name__ == "__main__":
    main()
