#!/usr/bin/python3
"""PyTorch reference for the pstrain imdb_lstm benchmark: training samples/s.

The Keras IMDB example's model, on the CPU, with Keras's settings:

  Embedding(10000, 32) -> LSTM(128) (last output) -> Dropout(0.5) -> Dense(1), sigmoid
  binary cross-entropy; 402,561 parameters (PyTorch's LSTM has two bias vectors where
  Keras has one: 512 more, 403,073); Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-7);
  batch 32; sequences of 200 token ids.

Throughput does not depend on which tokens a batch holds, so the batches are random ids
below 10000 (seeded), preloaded as one tensor; no DataLoader. The first 20 steps are
warm-up; every later step (forward + backward + optimizer step) is timed.

Usage (Debian's torch is only visible to /usr/bin/python3):
  tests/bench/torch_imdb_lstm.py --threads 2 --steps 200 --json
  tests/bench/torch_imdb_lstm.py --threads-sweep 1,2 --steps 200 --json
--threads-sweep runs each thread count in a fresh subprocess and also prints the best as
{"impl":"pytorch","best_threads":N,"samples_per_sec":X}.
"""
import argparse, json, os, subprocess, sys, time

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before torch: keep OpenBLAS out of torch's way
import torch
import torch.nn as nn
import torch.nn.functional as F

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
    n = args.batch * (args.steps + WARMUP)
    x = torch.randint(0, 10000, (n, args.maxlen), generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen).float()
    model = Net()
    nparams = sum(p.numel() for p in model.parameters())
    assert nparams == 403073, nparams
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    model.train()
    t0 = None
    for step in range(args.steps + WARMUP):
        if step == WARMUP:
            t0 = time.perf_counter()
        xb = x[step * args.batch:(step + 1) * args.batch]
        yb = y[step * args.batch:(step + 1) * args.batch]
        loss = F.binary_cross_entropy_with_logits(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - t0
    return {"impl": "pytorch", "threads": args.threads, "batch": args.batch,
            "steps": args.steps, "samples_per_sec": round(args.steps * args.batch / elapsed, 1),
            "torch": torch.__version__}


def report(r, as_json):
    print("pytorch %s: threads=%d batch=%d timed_steps=%d %.1f samples/s"
          % (r["torch"], r["threads"], r["batch"], r["steps"], r["samples_per_sec"]))
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
    args = p.parse_args()
    if not args.threads_sweep:
        report(train(args), args.json)
        return
    best = None
    for t in [int(s) for s in args.threads_sweep.split(",")]:
        cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(t), "--steps",
               str(args.steps), "--batch", str(args.batch), "--maxlen", str(args.maxlen),
               "--seed", str(args.seed), "--json"]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        report(r, args.json)
        if best is None or r["samples_per_sec"] > best["samples_per_sec"]:
            best = r
    b = {"impl": "pytorch", "best_threads": best["threads"],
         "samples_per_sec": best["samples_per_sec"]}
    print(json.dumps(b, separators=(",", ":")))


if __name__ == "__main__":
    main()
