#!/usr/bin/python3
"""PyTorch reference for the pstrain MNIST CNN benchmark.

Trains the Keras "simple MNIST convnet" with Keras defaults on the CPU and
reports training throughput (samples/s), so pstrain can be compared against it:

  Conv2D(32,3x3,relu,valid) -> MaxPool(2) -> Conv2D(64,3x3,relu) -> MaxPool(2)
  -> Flatten -> Dense(128,relu) -> Dropout(0.5) -> Dense(10), softmax CE
  225,034 parameters, glorot_uniform kernels, zero biases,
  Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-7), batch 32.

Data: raw MNIST idx files in DIR/mnist/ (DIR from --data, else $PSTRAIN_DATA,
else <repo>/data), pixels / 255. Like Keras validation_split=0.1, the last
6,000 training samples are held out; training uses the first 54,000, shuffled
every epoch (seeded). All data is loaded into tensors before timing, and
batches are slices of them (no DataLoader).

Timing: the first 20 training steps are warm-up and untimed; every later step
(forward + backward + optimizer step) is timed with time.perf_counter.
--max-steps S caps the total number of steps (warm-up included) and skips the
test evaluation; otherwise E full epochs are run and test accuracy is reported.

Usage (Debian's torch is only visible to /usr/bin/python3):
  tests/bench/torch_mnist_cnn.py --threads 2 --json
  tests/bench/torch_mnist_cnn.py --max-steps 400 --threads-sweep 1,2 --json
--threads-sweep runs each thread count, in both memory formats (NCHW and
channels_last), in a fresh subprocess and also prints the best one as
{"impl":"pytorch","best_threads":N,"channels_last":B,"samples_per_sec":X}.
"""
import argparse, json, os, struct, subprocess, sys, time

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before torch: keep OpenBLAS out of torch's way
import torch
import torch.nn as nn
import torch.nn.functional as F

WARMUP = 20
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_idx(path, magic):
    with open(path, "rb") as f:
        data = f.read()
    got, = struct.unpack(">I", data[:4])
    assert got == magic, f"{path}: bad magic {got:#010x}"
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def load_mnist(root, split):
    d = os.path.join(root, "mnist")
    x = load_idx(os.path.join(d, f"{split}-images-idx3-ubyte"), 0x803)
    y = load_idx(os.path.join(d, f"{split}-labels-idx1-ubyte"), 0x801)
    return x.float().div_(255).unsqueeze(1).contiguous(), y.long()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.dropout(F.relu(self.fc1(x.flatten(1))), 0.5, self.training)
        return self.fc2(x)


def train(args):
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    x, y = load_mnist(args.data, "train")
    x, y = x[:54000], y[:54000]  # last 6,000 = Keras validation_split 0.1
    model = Net()
    if args.channels_last:  # NHWC, as pstrain runs; the sweep keeps the faster
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    nparams = sum(p.numel() for p in model.parameters())
    assert nparams == 225034, nparams
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    gen = torch.Generator().manual_seed(args.seed)
    n, bs = x.shape[0], args.batch
    step = timed_steps = timed_samples = 0
    elapsed = 0.0
    model.train()
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=gen)
        xs, ys = x[perm], y[perm]
        t0 = None
        for i in range(0, n, bs):
            if args.max_steps and step >= args.max_steps:
                break
            if step == WARMUP or (t0 is None and step > WARMUP):
                t0 = time.perf_counter()
            xb, yb = xs[i:i + bs], ys[i:i + bs]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step >= WARMUP:
                timed_steps += 1
                timed_samples += xb.shape[0]
            step += 1
        if t0 is not None:
            elapsed += time.perf_counter() - t0
    assert timed_steps > 0, "need more than %d steps" % WARMUP
    acc = None
    if not args.max_steps and not args.no_eval:
        xt, yt = load_mnist(args.data, "t10k")
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, xt.shape[0], 1000):
                correct += (model(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item()
        acc = correct / xt.shape[0]
    return {"impl": "pytorch", "threads": args.threads, "channels_last": args.channels_last,
            "batch": bs, "steps": timed_steps,
            "samples_per_sec": round(timed_samples / elapsed, 1),
            "test_accuracy": acc, "torch": torch.__version__}, loss.item()


def report(r, as_json, loss=None):
    acc = "n/a" if r["test_accuracy"] is None else "%.2f%%" % (100 * r["test_accuracy"])
    last = "" if loss is None else " last_loss=%.4f" % loss
    print("pytorch %s: threads=%d channels_last=%d batch=%d timed_steps=%d %.1f samples/s test_acc=%s%s"
          % (r["torch"], r["threads"], r["channels_last"], r["batch"], r["steps"],
             r["samples_per_sec"], acc, last))
    if as_json:
        print(json.dumps(r, separators=(",", ":")))


def sweep(args):
    best = None
    for t, cl in [(int(s), cl) for s in args.threads_sweep.split(",") for cl in (0, 1)]:
        cmd = [sys.executable, os.path.abspath(__file__), "--data", args.data, "--threads", str(t),
               "--epochs", str(args.epochs), "--max-steps", str(args.max_steps),
               "--batch", str(args.batch), "--seed", str(args.seed), "--json", "--no-eval"]
        cmd += ["--channels-last"] if cl else []
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        report(r, args.json)
        if best is None or r["samples_per_sec"] > best["samples_per_sec"]:
            best = r
    if args.json:
        print(json.dumps({"impl": "pytorch", "best_threads": best["threads"],
                          "channels_last": best["channels_last"],
                          "samples_per_sec": best["samples_per_sec"]}, separators=(",", ":")))
    else:
        print("pytorch best: threads=%d channels_last=%d %.1f samples/s"
              % (best["threads"], best["channels_last"], best["samples_per_sec"]))


def main():
    p = argparse.ArgumentParser(description="PyTorch reference for the pstrain MNIST CNN benchmark")
    p.add_argument("--data", default=os.environ.get("PSTRAIN_DATA") or os.path.join(REPO, "data"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0, help="cap on total steps incl. warm-up (0 = full epochs)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads-sweep", help="comma-separated thread counts, each run in a subprocess")
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC memory format (the sweep tries both)")
    p.add_argument("--no-eval", action="store_true", help="skip test evaluation")
    args = p.parse_args()
    if args.threads_sweep:
        sweep(args)
    else:
        r, loss = train(args)
        report(r, args.json, loss)


if __name__ == "__main__":
    main()
