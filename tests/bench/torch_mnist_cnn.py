#!/usr/bin/python3
"""PyTorch reference for the pstrain MNIST CNN benchmark: whole-epoch training samples/s.

Trains the Keras "simple MNIST convnet" with Keras defaults on the CPU and reports training
throughput the way `pstrain train` reports it (samples of an epoch over the epoch's wall
time, first steps included), so the two can be set side by side:

  Conv2D(32,3x3,relu,valid) -> MaxPool(2) -> Conv2D(64,3x3,relu) -> MaxPool(2)
  -> Flatten -> Dense(128,relu) -> Dropout(0.5) -> Dense(10), softmax CE
  225,034 parameters, glorot_uniform kernels, zero biases,
  Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-7), batch 32.

Data: raw MNIST idx files in DIR/mnist/ (DIR from --data, else $PSTRAIN_DATA, else
<repo>/data), pixels / 255. Like Keras validation_split=0.1, the last 6,000 training samples
are held out; training uses the first 54,000 in a fresh seeded order every epoch. All data is
loaded into tensors before timing; each step gathers its batch by index (as pstrain does; no
DataLoader). The last batch of an epoch is partial (54,000 = 1,687 x 32 + 16), as in pstrain.

Timing: from the first step of the epoch to the end of its last (warm-up included, as
pstrain's samples_per_sec). --max-steps S stops after S steps and times those. Each run also
prints its steady rate (the steps after the first 20), for comparison with older figures.

Variants, to find PyTorch at its best (each in a fresh process under --sweep):
  --threads N        intra-op threads (ATen's OpenMP pool); OpenBLAS itself runs on 1
  --channels-last    NHWC weights and activations (oneDNN's convolutions prefer it)
  --no-mkldnn        convolutions through slow_conv2d (im2col + OpenBLAS sgemm), not oneDNN
  --jit              the model as torch.jit.script (TorchScript graph executor)
After training, one extra untimed step runs with oneDNN's verbose log on to name the
kernels that ran (torch_kernels.py); with --epochs >= 1 and no --max-steps the test
accuracy is reported.

Usage (Debian's torch is only visible to /usr/bin/python3):
  tests/bench/torch_mnist_cnn.py --threads 2 --json
  tests/bench/torch_mnist_cnn.py --sweep 2,2cl,1,1cl,2jit,2nomkldnn --json
--sweep runs each variant (threads, then any of cl, jit, nomkldnn) in a fresh process and
also prints the best as {"impl":"pytorch","best":VARIANT,"samples_per_sec":X}.
"""
import argparse, json, os, re, struct, subprocess, sys, time

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before torch: keep OpenBLAS out of torch's way
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_kernels  # noqa: E402

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
    torch.backends.mkldnn.enabled = not args.no_mkldnn
    torch.manual_seed(args.seed)
    x, y = load_mnist(args.data, "train")
    x, y = x[:54000].contiguous(), y[:54000].contiguous()  # last 6,000 = validation_split 0.1
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = Net().to(memory_format=fmt)
    nparams = sum(p.numel() for p in model.parameters())
    assert nparams == 225034, nparams
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    run = torch.jit.script(model) if args.jit else model
    gen = torch.Generator().manual_seed(args.seed)
    n, bs = x.shape[0], args.batch
    model.train()

    def step(idx):
        xb = x.index_select(0, idx).contiguous(memory_format=fmt)
        loss = F.cross_entropy(run(xb), y.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    steps = samples = 0
    elapsed = steady = 0.0
    steady_samples = 0
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        t_warm = None
        for i in range(0, n, bs):
            if args.max_steps and steps >= args.max_steps:
                break
            if steps == WARMUP:
                t_warm = time.perf_counter()
            idx = perm[i:i + bs]
            loss = step(idx)
            steps += 1
            samples += idx.shape[0]
            if t_warm is not None:
                steady_samples += idx.shape[0]
        t1 = time.perf_counter()
        elapsed += t1 - t0
        if t_warm is not None:
            steady += t1 - t_warm
    kernels = torch_kernels.describe(lambda: step(perm[:bs]))  # untimed, after the epoch
    acc = None
    if not args.max_steps and not args.no_eval:
        xt, yt = load_mnist(args.data, "t10k")
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, xt.shape[0], 1000):
                xb = xt[i:i + 1000].contiguous(memory_format=fmt)
                correct += (model(xb).argmax(1) == yt[i:i + 1000]).sum().item()
        acc = correct / xt.shape[0]
    return {"impl": "pytorch", "variant": variant_name(args), "threads": args.threads,
            "channels_last": args.channels_last, "jit": args.jit, "mkldnn": not args.no_mkldnn,
            "batch": bs, "steps": steps, "samples_per_sec": round(samples / elapsed, 1),
            "steady_samples_per_sec": round(steady_samples / steady, 1) if steady else None,
            "test_accuracy": acc, "last_loss": round(loss.item(), 4), "torch": torch.__version__,
            "kernels": kernels, "openblas_core": kernels["openblas_core"]}


def variant_name(args):
    return str(args.threads) + "cl" * args.channels_last + "jit" * args.jit + \
        "nomkldnn" * args.no_mkldnn


def variant_flags(v):
    m = re.fullmatch(r"(\d+)((?:cl|jit|nomkldnn)*)", v)
    if not m:
        raise SystemExit(f"torch_mnist_cnn.py: --sweep: bad variant '{v}' (e.g. 2, 2cl, 2jit, 2nomkldnn)")
    rest = m.group(2)
    return ["--threads", m.group(1)] + ["--channels-last"] * ("cl" in rest) + \
        ["--jit"] * ("jit" in rest) + ["--no-mkldnn"] * ("nomkldnn" in rest)


def report(r, as_json):
    acc = "n/a" if r["test_accuracy"] is None else "%.2f%%" % (100 * r["test_accuracy"])
    steady = r["steady_samples_per_sec"] or float("nan")
    print("pytorch %s %-12s batch=%d steps=%d %.1f samples/s (steady after %d steps %.1f) "
          "test_acc=%s last_loss=%.4f openblas=%s"
          % (r["torch"], r["variant"], r["batch"], r["steps"], r["samples_per_sec"], WARMUP,
             steady, acc, r["last_loss"], r["openblas_core"]))
    print("  kernels: " + torch_kernels.line(r["kernels"]))
    if as_json:
        print(json.dumps(r, separators=(",", ":")))


def sweep(args):
    best = None
    for v in args.sweep.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--data", args.data,
               "--epochs", str(args.epochs), "--max-steps", str(args.max_steps),
               "--batch", str(args.batch), "--seed", str(args.seed), "--json"]
        cmd += variant_flags(v) + (["--no-eval"] if args.no_eval else [])
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        report(r, args.json)
        if best is None or r["samples_per_sec"] > best["samples_per_sec"]:
            best = r
    b = {"impl": "pytorch", "best": best["variant"], "samples_per_sec": best["samples_per_sec"],
         "test_accuracy": best["test_accuracy"], "openblas_core": best["openblas_core"]}
    print(json.dumps(b, separators=(",", ":")) if args.json else
          "pytorch best: %s %.1f samples/s" % (b["best"], b["samples_per_sec"]))


def main():
    p = argparse.ArgumentParser(description="PyTorch reference for the pstrain MNIST CNN benchmark")
    p.add_argument("--data", default=os.environ.get("PSTRAIN_DATA") or os.path.join(REPO, "data"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = whole epochs)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--sweep", help="comma-separated variants, each in a fresh process: "
                   "threads followed by any of cl, jit, nomkldnn (2, 2cl, 2jit, 1nomkldnn)")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--jit", action="store_true", help="torch.jit.script the model")
    p.add_argument("--no-mkldnn", action="store_true", help="convolutions without oneDNN")
    p.add_argument("--no-eval", action="store_true", help="skip test evaluation")
    args = p.parse_args()
    if args.sweep:
        sweep(args)
    else:
        report(train(args), args.json)


if __name__ == "__main__":
    main()
