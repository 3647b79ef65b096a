#!/usr/bin/python3
"""PyTorch DistributedDataParallel (gloo) training throughput: the anchor for `charlm bench --np N`.

    /usr/bin/python3 bench/torch_ddp.py --preset d2l --np 2 --seconds 3 --json
    /usr/bin/python3 bench/torch_ddp.py --python bench/.venv/bin/python --preset d2l --np 2   # today's PyTorch (bench/setup_torch.sh)

N processes on this machine (torch.multiprocessing), one torch thread and one OpenBLAS thread each unless told
otherwise, the model of bench/torch_reference.py, --batch the global batch (each process trains batch / N
sequences, as charlm's --np does), state carried across batches, clipping at 1 and Adam as there. Every process
runs the same number of timed steps (the most any of them needs for --seconds); tokens/s counts all processes'.
--python (default /usr/bin/python3, Debian's torch 1.13) is the interpreter, and so the torch, that runs it: the script
re-executes itself under it before torch is imported, and its processes are spawned with it. Its output names the torch.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_python import add_python_argument, python_in, run_under  # noqa: E402


def parse_args(argv):
    import torch_reference  # noqa: E402  (the model and presets, shared with the one-process reference)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_python_argument(parser)
    parser.add_argument("--preset", choices=sorted(torch_reference.PRESETS), default="d2l")
    parser.add_argument("--cell", choices=sorted(torch_reference.CELLS))
    parser.add_argument("--batch", type=int, help="global batch (default: the preset's)")
    parser.add_argument("--np", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch.set_num_threads per process (default 1)")
    parser.add_argument("--openblas-threads", type=int, default=1, help="OPENBLAS_NUM_THREADS per process (default 1)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--port", type=int, default=29517, help="rendezvous port on 127.0.0.1")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    preset = torch_reference.PRESETS[args.preset]
    args.cell = args.cell or preset["cell"]
    args.batch = args.batch or preset["batch"]
    if args.np < 1 or args.batch % args.np != 0:
        parser.error(f"--batch {args.batch} must divide among --np {args.np} processes")
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be above 0 and --warmup at least 0")
    return args


def worker(rank, args, results):
    import torch
    import torch.distributed as dist
    import torch.nn as nn

    import torch_reference

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=args.np)
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)  # the same initial weights on every process (DDP also broadcasts rank 0's)
    p = torch_reference.PRESETS[args.preset]
    V, T, B = p["vocab"], p["steps"], args.batch // args.np
    model = nn.parallel.DistributedDataParallel(
        torch_reference.CharModel(args.cell, V, p["embedding"], p["hidden"], p["layers"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(rank)
    batches = [(torch.randint(0, V, (T, B), generator=generator), torch.randint(0, V, (T, B), generator=generator))
               for _ in range(8)]
    state = [torch_reference.initial_state(args.cell, p["layers"], B, p["hidden"])]

    def step(k):
        x, y = batches[k % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        logits, new_state = model(x, state[0])
        loss = loss_fn(logits.reshape(-1, V), y.reshape(-1))
        loss.backward()  # DDP's bucketed allreduce runs here, overlapped with the backward pass
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        state[0] = torch_reference.detach(new_state)

    for k in range(args.warmup):
        step(k)
    start = time.perf_counter()
    step(0)
    planned = torch.tensor([max(1, int(args.seconds / max(time.perf_counter() - start, 1e-6)))])
    dist.all_reduce(planned, op=dist.ReduceOp.MAX)
    cpu_start = time.process_time()
    start = time.perf_counter()
    for k in range(int(planned)):
        step(k)
    elapsed = time.perf_counter() - start
    if rank == 0:
        results.put({
            "framework": f"torch {torch.__version__} DistributedDataParallel gloo",
            "preset": args.preset, "cell": args.cell, "processes": args.np, "batch": args.batch, "steps": T,
            "torch_threads": torch.get_num_threads(), "openblas_threads": args.openblas_threads,
            "train_steps": int(planned), "train_tokens_per_s": int(planned) * args.batch * T / elapsed,
            "train_ms_per_step": 1000.0 * elapsed / int(planned),
            "cpu_per_wall": round((time.process_time() - cpu_start) / elapsed, 2),
        })
    dist.destroy_process_group()


def main(argv):
    run_under(python_in(argv))  # before torch_reference imports torch
    args = parse_args(argv)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.openblas_threads)  # read by each process as it loads OpenBLAS
    import torch.multiprocessing as mp

    load_before = os.getloadavg()[0]
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    mp.start_processes(worker, args=(args, results), nprocs=args.np, start_method="spawn")
    result = results.get()
    result["load_1min_before"] = load_before
    result["load_1min_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['framework']} {args.preset} {args.cell} {args.np} processes, batch {args.batch}: "
          f"{result['train_tokens_per_s']:.0f} tokens/s, {result['train_ms_per_step']:.1f} ms/step "
          f"(cpu/wall {result['cpu_per_wall']:.2f} on rank 0; load {load_before:.1f} -> {result['load_1min_after']:.1f})")


if __name__ == "__main__":
    main(sys.argv[1:])
