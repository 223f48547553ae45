#!/usr/bin/python3
"""PyTorch reference for the pstrain imdb_lstm benchmark: training samples/s.

The Keras IMDB example's model, on the CPU, with Keras's settings:

  Embedding(10000, 32) -> LSTM(128) (last output) -> Dropout(0.5) -> Dense(1), sigmoid
  binary cross-entropy; 402,561 parameters (PyTorch's LSTM has two bias vectors where
  Keras has one: 512 more, 403,073); Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-7);
  batch 32; sequences of 200 token ids.

Throughput does not depend on which tokens a batch holds, so the training set is 22,500
sequences of random ids below 10000 (seeded; pstrain trains on 22,500 reviews after its
validation split), preloaded as one tensor; each step gathers its batch by index from a
fresh seeded order (as pstrain does; no DataLoader).

Timing is pstrain's: the samples of all --steps steps over their wall time, the first
steps included (pstrain train --max-steps S reports the same for its partial epoch). Each
run also prints its steady rate (the steps after the first 20) and names the kernels that
ran (torch_kernels.py: OpenBLAS's core serves nn.LSTM's and nn.Linear's products).

Usage (Debian's torch is only visible to /usr/bin/python3):
  tests/bench/torch_imdb_lstm.py --threads 2 --steps 200 --json
  tests/bench/torch_imdb_lstm.py --threads-sweep 1,2 --steps 200 --json
--threads-sweep runs each thread count in a fresh subprocess and also prints the best as
{"impl":"pytorch","best_threads":N,"samples_per_sec":X}. --jit runs the model as
torch.jit.script (it measured no faster: the time is in aten::lstm either way).
"""
import argparse, json, os, subprocess, sys, time

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before torch: keep OpenBLAS out of torch's way
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_kernels  # noqa: E402

WARMUP = 20


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10000, 32)
        self.lstm = nn.LSTM(32, 128, batch_first=True)
        self.fc = nn.Linear(128, 1)
        nn.init.uniform_(self.emb.weight, -0.05, 0.05)
        nn.init.xavier_uniform_(self.lstm.weight_ih_l0)
        nn.init.orthogonal_(self.lstm.weight_hh_l0)
        nn.init.zeros_(self.lstm.bias_ih_l0)
        nn.init.zeros_(self.lstm.bias_hh_l0)
        with torch.no_grad():  # Keras's unit_forget_bias; PyTorch's gate order is i, f, g, o
            self.lstm.bias_ih_l0[128:256] = 1.0
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        _, (h, _) = self.lstm(self.emb(x))
        return self.fc(F.dropout(h[-1], 0.5, self.training)).squeeze(1)


def train(args):
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    n = 22500
    x = torch.randint(0, 10000, (n, args.maxlen), generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen).float()
    model = Net()
    nparams = sum(p.numel() for p in model.parameters())
    assert nparams == 403073, nparams
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    run = torch.jit.script(model) if args.jit else model
    model.train()

    def step(idx):
        loss = F.binary_cross_entropy_with_logits(run(x.index_select(0, idx)), y.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    order = torch.cat([torch.randperm(n, generator=gen)
                       for _ in range(args.steps * args.batch // n + 1)])
    t0 = time.perf_counter()
    for s in range(args.steps):
        if s == WARMUP:
            t_warm = time.perf_counter()
        step(order[s * args.batch:(s + 1) * args.batch])
    t1 = time.perf_counter()
    kernels = torch_kernels.describe(lambda: step(order[:args.batch]))  # untimed
    return {"impl": "pytorch", "threads": args.threads, "jit": args.jit, "batch": args.batch,
            "steps": args.steps, "samples_per_sec": round(args.steps * args.batch / (t1 - t0), 1),
            "steady_samples_per_sec": round((args.steps - WARMUP) * args.batch / (t1 - t_warm), 1)
            if args.steps > WARMUP else None,
            "torch": torch.__version__, "kernels": kernels, "openblas_core": kernels["openblas_core"]}


def report(r, as_json):
    print("pytorch %s: threads=%d jit=%d batch=%d steps=%d %.1f samples/s (steady after %d "
          "steps %.1f) openblas=%s"
          % (r["torch"], r["threads"], r["jit"], r["batch"], r["steps"], r["samples_per_sec"],
             WARMUP, r["steady_samples_per_sec"] or float("nan"), r["openblas_core"]))
    print("  kernels: " + torch_kernels.line(r["kernels"]))
    if as_json:
        print(json.dumps(r, separators=(",", ":")))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--threads-sweep", default="")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--maxlen", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--jit", action="store_true", help="torch.jit.script the model")
    args = p.parse_args()
    if not args.threads_sweep:
        report(train(args), args.json)
        return
    best = None
    for t in [int(s) for s in args.threads_sweep.split(",")]:
        cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(t), "--steps",
               str(args.steps), "--batch", str(args.batch), "--maxlen", str(args.maxlen),
               "--seed", str(args.seed), "--json"] + ["--jit"] * args.jit
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        report(r, args.json)
        if best is None or r["samples_per_sec"] > best["samples_per_sec"]:
            best = r
    b = {"impl": "pytorch", "best_threads": best["threads"],
         "samples_per_sec": best["samples_per_sec"], "openblas_core": best["openblas_core"]}
    print(json.dumps(b, separators=(",", ":")))


if __name__ == "__main__":
    main()
