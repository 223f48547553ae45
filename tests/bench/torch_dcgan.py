#!/usr/bin/python3
"""PyTorch reference for the pstrain DCGAN benchmark: training steps/s and images/s.

TF's DCGAN tutorial on MNIST, on the CPU, with the tutorial's (Keras's) settings:

  generator: Dense(100 -> 7*7*256, no bias) -> BatchNorm -> LeakyReLU(0.3)
    -> Reshape(7,7,256) -> Conv2DTranspose(128, 5x5, stride 1, no bias) -> BN -> LeakyReLU
    -> Conv2DTranspose(64, 5x5, stride 2, no bias) -> BN -> LeakyReLU
    -> Conv2DTranspose(1, 5x5, stride 2, no bias), tanh: a (1,28,28) image in [-1, 1].
    2,305,472 trainable parameters + 25,472 BatchNorm moving means/variances = 2,330,944
    (what Keras reports). BatchNorm eps 1e-3, momentum 0.01 (Keras's 0.99).
  discriminator: Conv2D(64, 5x5, stride 2) -> LeakyReLU(0.3) -> Dropout(0.3)
    -> Conv2D(128, 5x5, stride 2) -> LeakyReLU(0.3) -> Dropout(0.3) -> Flatten
    -> Dense(1): a logit. 212,865 parameters.
  Keras's 'same' padding pads a stride-2 5x5 convolution asymmetrically (1 before, 2 after
  on 28 -> 14 -> 7); here the convolutions pad 2 on both sides (and the transposed ones use
  padding 2, output_padding 1), which gives the same shapes and the same cost, all a speed
  reference needs. glorot_uniform (xavier_uniform_) for every weight, zero biases,
  BatchNorm gamma 1, beta 0 (Keras's defaults).

One training step is the tutorial's train_step (simultaneous updates):
  fake = G(z), z ~ N(0, 1) of shape (batch, 100), fresh every step (G in training mode);
  real_logit = D(x); fake_logit = D(fake)   (D in training mode: dropout on);
  d_loss = BCE(real_logit, 1) + BCE(fake_logit, 0); g_loss = BCE(fake_logit, 1)
  (binary cross-entropy from logits, each a batch mean).
  Both gradients come from this one forward, G's forward runs once and D's twice:
  d_loss.backward(inputs=D's parameters, retain_graph=True), then
  g_loss.backward(inputs=G's parameters). The `inputs=` restriction prunes the graph, so
  the first backward stops at D's input (no gradient flows into G) and the second computes
  only D's input gradients on its way to G (no D weight gradients): each layer's backward
  does only the work its gradient needs. (The usual PyTorch DCGAN recipe, D(fake.detach())
  for D plus a second D(fake) for G, runs D's fake forward twice.)
  D: each gradient element clipped to [-1, 1] (clip_grad_value_), then
     RMSprop(lr 8e-4, rho/alpha 0.9, eps 1e-7, no momentum, not centered) with Keras's legacy
     decay lr_t = lr / (1 + 1e-8 * iterations), set on the param group before every step.
  G: Adam(lr 1e-4, betas (0.9, 0.999), eps 1e-7).

Data: raw MNIST idx files in DIR/mnist/ (DIR from --data, else $PSTRAIN_DATA, else
<repo>/data), pixels * 2/255 - 1, i.e. in [-1, 1]. Like Keras validation_split=0.1 in the
other benchmarks, training uses the first 54,000 images, shuffled every epoch (seeded). All
images are loaded into one tensor before timing; batches are slices of it (no DataLoader).
The last partial batch of an epoch is dropped, so every step costs the same.

Timing is pstrain's: all --max-steps steps (default 200) over their wall time, the first
steps included (pstrain train --max-steps S reports the same for its partial epoch; a whole
epoch is 1,687 steps, minutes on 2 cores). Each step is noise, forward, both backwards,
clipping and both optimizer steps; each batch is gathered by index from a fresh seeded order.
images/s = steps/s * batch. d_loss and g_loss are the means over all steps. Each run also
prints its steady rate (the steps after the first 20) and names the kernels that ran
(torch_kernels.py). --no-mkldnn runs the convolutions without oneDNN (slow_conv2d and
slow_conv_transpose2d, im2col + OpenBLAS sgemm).

Usage (Debian's torch is only visible to /usr/bin/python3):
  tests/bench/torch_dcgan.py --threads 2 --json
  tests/bench/torch_dcgan.py --max-steps 200 --sweep 2,2cl,1,2nomkldnn --json
--sweep runs each variant (threads, then any of cl, nomkldnn) in a fresh subprocess and also
prints the best one as {"impl":"pytorch","best":VARIANT,"steps_per_sec":X,"samples_per_sec":Y}.
"""
import argparse, json, os, re, struct, subprocess, sys, time

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before torch: keep OpenBLAS out of torch's way
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_kernels  # noqa: E402

WARMUP = 20
NOISE = 100
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_idx(path, magic):
    with open(path, "rb") as f:
        data = f.read()
    got, = struct.unpack(">I", data[:4])
    assert got == magic, f"{path}: bad magic {got:#010x}"
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def load_mnist_images(root, split):
    x = load_idx(os.path.join(root, "mnist", f"{split}-images-idx3-ubyte"), 0x803)
    return x.float().div_(255).mul_(2).sub_(1).unsqueeze(1).contiguous()  # (N,1,28,28) in [-1,1]


def keras_init(module):
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)  # glorot_uniform; fan_in + fan_out as Keras's
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, channels_last=False):
        super().__init__()
        self.channels_last = channels_last
        self.fc = nn.Linear(NOISE, 7 * 7 * 256, bias=False)
        self.bn0 = nn.BatchNorm1d(7 * 7 * 256, eps=1e-3, momentum=0.01)
        self.up1 = nn.ConvTranspose2d(256, 128, 5, stride=1, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(128, eps=1e-3, momentum=0.01)
        self.up2 = nn.ConvTranspose2d(128, 64, 5, stride=2, padding=2, output_padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, eps=1e-3, momentum=0.01)
        self.up3 = nn.ConvTranspose2d(64, 1, 5, stride=2, padding=2, output_padding=1, bias=False)
        keras_init(self)

    def forward(self, z):
        h = F.leaky_relu(self.bn0(self.fc(z)), 0.3)
        if self.channels_last:  # Keras's Reshape((7,7,256)): HWC order, already NHWC in memory
            h = h.view(-1, 7, 7, 256).permute(0, 3, 1, 2)
        else:
            h = h.view(-1, 256, 7, 7)
        h = F.leaky_relu(self.bn1(self.up1(h)), 0.3)
        h = F.leaky_relu(self.bn2(self.up2(h)), 0.3)
        return torch.tanh(self.up3(h))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(64, 128, 5, stride=2, padding=2)
        self.fc = nn.Linear(128 * 7 * 7, 1)
        keras_init(self)

    def forward(self, x):
        h = F.dropout(F.leaky_relu(self.conv1(x), 0.3), 0.3, self.training)
        h = F.dropout(F.leaky_relu(self.conv2(h), 0.3), 0.3, self.training)
        return self.fc(h.flatten(1))  # NCHW flatten order; the cost is the same either way


def count(model):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return trainable, stats


def train(args):
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.backends.mkldnn.enabled = not args.no_mkldnn
    torch.manual_seed(args.seed)
    x = load_mnist_images(args.data, "train")[:54000]  # last 6,000 = validation_split 0.1
    G, D = Generator(args.channels_last), Discriminator()
    if args.channels_last:  # NHWC, as pstrain runs; the sweep keeps the faster
        G = G.to(memory_format=torch.channels_last)
        D = D.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    g_train, g_stats = count(G)
    d_train, d_stats = count(D)
    assert (g_train, g_stats, d_train, d_stats) == (2305472, 25472, 212865, 0), \
        (g_train, g_stats, d_train, d_stats)
    params = {"generator_trainable": g_train, "generator_total": g_train + g_stats,
              "discriminator": d_train}
    g_params, d_params = list(G.parameters()), list(D.parameters())
    g_opt = torch.optim.Adam(g_params, lr=1e-4, betas=(0.9, 0.999), eps=1e-7)
    d_lr = 8e-4
    d_opt = torch.optim.RMSprop(d_params, lr=d_lr, alpha=0.9, eps=1e-7, momentum=0, centered=False)
    gen = torch.Generator().manual_seed(args.seed)       # shuffling
    zgen = torch.Generator().manual_seed(args.seed + 1)  # noise
    n, bs = x.shape[0], args.batch
    assert 0 < bs <= n
    ones, zeros = torch.ones(bs, 1), torch.zeros(bs, 1)
    bce = F.binary_cross_entropy_with_logits
    G.train()
    D.train()

    def one_step(idx, step):
        xb = x.index_select(0, idx)
        if args.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        z = torch.randn(bs, NOISE, generator=zgen)
        fake = G(z)
        real_logit, fake_logit = D(xb), D(fake)
        d_loss = bce(real_logit, ones) + bce(fake_logit, zeros)
        g_loss = bce(fake_logit, ones)
        d_opt.zero_grad(set_to_none=True)
        g_opt.zero_grad(set_to_none=True)
        d_loss.backward(inputs=d_params, retain_graph=True)
        g_loss.backward(inputs=g_params)
        nn.utils.clip_grad_value_(d_params, 1.0)
        d_opt.param_groups[0]["lr"] = d_lr / (1 + 1e-8 * step)  # Keras's legacy decay
        d_opt.step()
        g_opt.step()
        return d_loss.item(), g_loss.item()

    step = 0
    d_sum = g_sum = 0.0
    t0 = time.perf_counter()
    t_warm = None
    while step < args.max_steps:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - bs + 1, bs):  # drop the last partial batch
            if step >= args.max_steps:
                break
            if step == WARMUP:
                t_warm = time.perf_counter()
            d, g = one_step(perm[i:i + bs], step)
            d_sum += d
            g_sum += g
            step += 1
    t1 = time.perf_counter()
    kernels = torch_kernels.describe(lambda: one_step(perm[:bs], step))  # untimed
    sps = step / (t1 - t0)
    return {"impl": "pytorch", "variant": variant_name(args), "threads": args.threads,
            "channels_last": args.channels_last, "mkldnn": not args.no_mkldnn,
            "batch": bs, "steps": step, "steps_per_sec": round(sps, 2),
            "samples_per_sec": round(sps * bs, 1),
            "steady_steps_per_sec": round((step - WARMUP) / (t1 - t_warm), 2) if t_warm else None,
            "d_loss": round(d_sum / step, 4), "g_loss": round(g_sum / step, 4),
            "torch": torch.__version__, "kernels": kernels,
            "openblas_core": kernels["openblas_core"]}, params


def variant_name(args):
    return str(args.threads) + "cl" * args.channels_last + "nomkldnn" * args.no_mkldnn


def variant_flags(v):
    m = re.fullmatch(r"(\d+)((?:cl|nomkldnn)*)", v)
    if not m:
        raise SystemExit(f"torch_dcgan.py: --sweep: bad variant '{v}' (e.g. 2, 2cl, 2nomkldnn)")
    return ["--threads", m.group(1)] + ["--channels-last"] * ("cl" in m.group(2)) + \
        ["--no-mkldnn"] * ("nomkldnn" in m.group(2))


def report(r, as_json):
    print("pytorch %s %-12s batch=%d steps=%d %.2f steps/s %.1f images/s (steady after %d "
          "steps %.2f) d_loss=%.4f g_loss=%.4f openblas=%s"
          % (r["torch"], r["variant"], r["batch"], r["steps"], r["steps_per_sec"],
             r["samples_per_sec"], WARMUP, r["steady_steps_per_sec"] or float("nan"),
             r["d_loss"], r["g_loss"], r["openblas_core"]))
    print("  kernels: " + torch_kernels.line(r["kernels"]))
    if as_json:
        print(json.dumps(r, separators=(",", ":")))


def sweep(args):
    best = None
    for v in args.sweep.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--data", args.data,
               "--max-steps", str(args.max_steps), "--batch", str(args.batch),
               "--seed", str(args.seed), "--json"] + variant_flags(v)
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        report(r, args.json)
        if best is None or r["steps_per_sec"] > best["steps_per_sec"]:
            best = r
    b = {"impl": "pytorch", "best": best["variant"], "steps_per_sec": best["steps_per_sec"],
         "samples_per_sec": best["samples_per_sec"], "openblas_core": best["openblas_core"]}
    print(json.dumps(b, separators=(",", ":")) if args.json else
          "pytorch best: %s %.2f steps/s %.1f images/s" % (b["best"], b["steps_per_sec"],
                                                          b["samples_per_sec"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.environ.get("PSTRAIN_DATA") or os.path.join(REPO, "data"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=200, help="steps to run and time")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--sweep", help="comma-separated variants, each in a fresh process: "
                   "threads followed by any of cl, nomkldnn (2, 2cl, 1nomkldnn)")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--no-mkldnn", action="store_true", help="convolutions without oneDNN")
    args = p.parse_args()
    if args.sweep:
        sweep(args)
    else:
        r, params = train(args)
        print("parameters: generator %s trainable + %s BatchNorm moving stats = %s; "
              "discriminator %s" % tuple(format(v, ",") for v in (
                  params["generator_trainable"], params["generator_total"] - params["generator_trainable"],
                  params["generator_total"], params["discriminator"])))
        report(r, args.json)


if __name__ == "__main__":
    main()
