#!/usr/bin/python3
"""PyTorch DDP (gloo, CPU) reference for tests/scale/machine-scaling: training samples/s of
the Keras mnist_cnn on N processes.

The model, initialisers, optimizer (Adam, lr 1e-3, eps 1e-7) and data are those of
tests/bench/torch_mnist_cnn.py (imported from there): raw MNIST idx files in DIR/mnist/,
pixels / 255, the first 54,000 training samples (Keras's validation_split 0.1), NCHW.
Each of the N processes runs torch.set_num_threads(T), trains at batch 32 on its own 1/N of
the 54,000 samples (a fresh seeded permutation each epoch, process r taking every N-th index
from r, as DistributedSampler does), and DistributedDataParallel averages the gradients with
gloo's allreduce over 127.0.0.1 on a free port (no torchrun).

Timing, as pstrain reports samples_per_sec: after a barrier, from each process's first step
to its last (warm-up included); the slowest process's time counts, and samples are those of
all processes: N x steps x 32 (the last batch of an epoch may be partial). --max-steps S
stops each process after S steps. Also reported: the rate over the steps after the first 20.

Prints one JSON line:
  {"impl":"torch_ddp","procs":N,"threads":T,"samples_per_sec":X,...}

Usage (Debian's torch is seen only by /usr/bin/python3; any torch >= 1.13 will do):
  tests/scale/torch_ddp_mnist.py --procs 4 --threads 1 [--max-steps 200] [--epochs 1]
"""
import argparse, json, os, socket, sys, time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before torch
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from torch_mnist_cnn import Net, load_mnist, REPO  # noqa: E402

WARMUP = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, args, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=args.procs)
    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also broadcasts)
    x, y = load_mnist(args.data, "train")
    x, y = x[:54000].contiguous(), y[:54000].contiguous()
    model = torch.nn.parallel.DistributedDataParallel(Net())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    gen = torch.Generator().manual_seed(args.seed)
    bs, n = args.batch, x.shape[0]
    model.train()
    steps = samples = steady_samples = 0
    elapsed = steady = 0.0
    loss = torch.zeros(())
    for _ in range(args.epochs):
        mine = torch.randperm(n, generator=gen)[rank::args.procs]  # same permutation everywhere
        dist.barrier()
        t0 = time.perf_counter()
        t_warm = None
        for i in range(0, mine.shape[0], bs):
            if args.max_steps and steps >= args.max_steps:
                break
            if steps == WARMUP:
                t_warm = time.perf_counter()
            idx = mine[i:i + bs]
            loss = F.cross_entropy(model(x.index_select(0, idx)), y.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()  # DDP's allreduce overlaps the backward, bucket by bucket
            opt.step()
            steps += 1
            samples += idx.shape[0]
            if t_warm is not None:
                steady_samples += idx.shape[0]
        t1 = time.perf_counter()
        elapsed += t1 - t0
        if t_warm is not None:
            steady += t1 - t_warm
    # The job's figures: all processes' samples over the slowest one's time.
    t = torch.tensor([elapsed, steady], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    c = torch.tensor([samples, steady_samples], dtype=torch.float64)
    dist.all_reduce(c, op=dist.ReduceOp.SUM)
    if rank == 0:
        out.put({"impl": "torch_ddp", "procs": args.procs, "threads": args.threads,
                 "batch": bs, "steps": steps, "samples": int(c[0]),
                 "seconds": round(float(t[0]), 3),
                 "samples_per_sec": round(float(c[0] / t[0]), 1),
                 "steady_samples_per_sec": round(float(c[1] / t[1]), 1) if t[1] > 0 else None,
                 "last_loss": round(loss.item(), 4), "backend": "gloo",
                 "torch": torch.__version__})
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--procs", type=int, default=1, help="DDP processes (world size)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads per process")
    p.add_argument("--data", default=os.environ.get("PSTRAIN_DATA") or os.path.join(REPO, "data"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0, help="steps per process (0 = whole epochs)")
    p.add_argument("--batch", type=int, default=32, help="samples per step per process")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    for name in ("procs", "threads", "epochs", "batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.max_steps < 0:
        p.error(f"--max-steps must be 0 or more, got {args.max_steps}")
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.start_processes(worker, args=(args, free_port(), out), nprocs=args.procs,
                       join=True, start_method="spawn")
    print(json.dumps(out.get(), separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
