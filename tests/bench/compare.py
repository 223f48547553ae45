#!/usr/bin/python3
"""pstrain against PyTorch at its best, one model, interleaved rounds (run-mnist-cnn,
run-imdb-lstm and run-gan call this).

Both sides are measured as `pstrain train` reports training speed: the samples of an epoch
(or of the first --steps steps) over its wall time, the first steps included. Each round runs,
for each OpenBLAS kernel setting in --kernels, `pstrain train` once and then each PyTorch
variant in --variants once, each in a fresh process, so load that comes and goes on a shared
machine falls on both sides alike. The load average is printed before every run.

Kernel settings: "unset" runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from the
environment (OpenBLAS picks by cpuid; note that OPENBLAS_CORETYPE set to the empty string is
not the same: 0.3.21 then takes Cooperlake), any other word runs with OPENBLAS_CORETYPE set
to it (and OPENBLAS_L2_SIZE as the caller's environment has it). Every run names the kernel
that ran: pstrain's as `pstrain --version` names it (openblas_get_corename()) under the same
environment; PyTorch's from torch_kernels.py inside the run (OpenBLAS for its
matrix products, oneDNN for its convolutions).

The summary compares best against best, each side on the kernel and variant it runs best
with, and also the best of each side per kernel setting. Beside pstrain's best it prints
the GFLOP/s the direct path (every layer as im2col + sgemm, Keras's layer sizes: the
model's nominal FLOPs per training sample) would need for the same speed, and what
OpenBLAS's sgemm reaches under that kernel on as many threads (bench_mnist_cnn --probe).
"""
import argparse, json, os, re, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TORCH = {"mnist_cnn": "torch_mnist_cnn.py", "imdb_lstm": "torch_imdb_lstm.py",
         "mnist_gan": "torch_dcgan.py"}


def kernel_env(k):
    env = dict(os.environ)
    if k == "unset":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    else:
        env["OPENBLAS_CORETYPE"] = k
    return env


def pstrain_core(a, env):
    """The OpenBLAS kernel pstrain loads under env, as `pstrain --version` names it."""
    out = subprocess.run([os.path.join(a.build, "pstrain"), "--version"], env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"^OpenBLAS \S+ kernel (\S+) ", out, re.M)
    return m.group(1) if m else "unknown"


def probe(a, env):
    """sgemm GFLOP/s on a.threads threads, the kernel, the model's nominal MFLOP per sample."""
    exe = os.path.join(a.build, "tests", "bench", "bench_mnist_cnn")
    if not os.access(exe, os.X_OK):
        return None
    out = subprocess.run([exe, "--model", a.model, "--threads", str(a.threads), "--probe"],
                         env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def run_pstrain(a, env):
    with tempfile.NamedTemporaryFile(prefix="pstrain-bench-", suffix=".json") as m:
        cmd = [os.path.join(a.build, "pstrain"), "train", "--model", a.model, "--epochs", "1",
               "--threads", str(a.threads), "--progress", "0", "--metrics", m.name,
               "--data", a.data] + (["--max-steps", str(a.steps)] if a.steps else []) + \
              (["--conv", a.conv] if a.conv else [])
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        rows = [json.loads(l) for l in open(m.name) if l.strip()]
    epoch = next(r for r in rows if r["event"] == "epoch")
    final = next((r for r in rows if r["event"] == "final"), {})
    return {"samples_per_sec": epoch["samples_per_sec"], "test_accuracy": final.get("test_accuracy")}


def variant_args(model, v):
    if model == "imdb_lstm":  # threads, optionally followed by jit
        t = v[:-3] if v.endswith("jit") else v
        return ["--threads", t] + (["--jit"] if v.endswith("jit") else [])
    m = re.fullmatch(r"(\d+)((?:cl|jit|nomkldnn)*)", v)
    if not m:
        raise SystemExit(f"compare.py: bad variant '{v}' (threads, then any of cl, jit, nomkldnn)")
    return ["--threads", m.group(1)] + ["--channels-last"] * ("cl" in m.group(2)) + \
        ["--jit"] * ("jit" in m.group(2)) + ["--no-mkldnn"] * ("nomkldnn" in m.group(2))


def run_torch(a, env, v):
    env = dict(env, OPENBLAS_NUM_THREADS="1")
    if "avx512" in v:  # ATen's own vector code (pooling, activations, Adam): AVX2 unless asked
        env["ATEN_CPU_CAPABILITY"] = "avx512"
        v = v.replace("avx512", "")
    cmd = ["/usr/bin/python3", os.path.join(HERE, TORCH[a.model]), "--json"] + variant_args(a.model, v)
    if a.model == "mnist_cnn":
        cmd += ["--data", a.data, "--epochs", "1"] + (["--max-steps", str(a.steps)] if a.steps else [])
    elif a.model == "imdb_lstm":
        cmd += ["--steps", str(a.steps or 704)]  # 704 x 32 = 22,528: one epoch
    else:
        cmd += ["--data", a.data, "--max-steps", str(a.steps or 1687)]
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, choices=sorted(TORCH))
    p.add_argument("--build", default=os.path.join(REPO, "build"))
    p.add_argument("--data", default=os.environ.get("PSTRAIN_DATA") or os.path.join(REPO, "data"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="pstrain's compute threads")
    p.add_argument("--conv", default=None, help="pstrain train --conv (default: its own, auto)")
    p.add_argument("--steps", type=int, default=0, help="steps per run (0: one whole epoch)")
    p.add_argument("--kernels", default=None,
                   help="comma-separated OpenBLAS settings: unset, or an OPENBLAS_CORETYPE "
                        "(default: unset and the environment's OPENBLAS_CORETYPE, else Haswell)")
    p.add_argument("--variants", required=True,
                   help="PyTorch variants, comma-separated: threads, then any of cl, jit, nomkldnn "
                        "(imdb_lstm: jit), avx512 (ATEN_CPU_CAPABILITY=avx512)")
    a = p.parse_args()
    if not os.access(os.path.join(a.build, "pstrain"), os.X_OK):
        raise SystemExit(f"compare.py: {a.build}/pstrain not built (--build DIR)")
    kernels = (a.kernels or "unset," + (os.environ.get("OPENBLAS_CORETYPE") or "Haswell")).split(",")
    unit = "samples/s"
    what = "one whole epoch" if not a.steps else f"the first {a.steps} steps"
    print(f"{a.model}: training {unit} over {what}, first steps included; pstrain on "
          f"{a.threads} threads; PyTorch variants {a.variants}; OpenBLAS settings {kernels}")
    results = []  # (side, kernel setting, core, variant, samples/s, accuracy)
    probes = {k: probe(a, kernel_env(k)) for k in kernels} if a.model == "mnist_cnn" else {}
    for r in range(1, a.rounds + 1):
        for k in kernels:
            env = kernel_env(k)
            core = pstrain_core(a, env)
            ld = load()
            o = run_pstrain(a, env)
            results.append(("pstrain", k, core, f"{a.threads} threads", o["samples_per_sec"],
                            o["test_accuracy"]))
            acc = "" if o["test_accuracy"] is None else f", test accuracy {o['test_accuracy']:.4f}"
            print(f"round {r} [{k}] load {ld}: pstrain {o['samples_per_sec']:8.0f} {unit} "
                  f"(OpenBLAS {core}){acc}", flush=True)
            for v in a.variants.split(","):
                ld = load()
                t = run_torch(a, env, v)
                results.append(("pytorch", k, t["openblas_core"], v, t["samples_per_sec"],
                                t.get("test_accuracy")))
                steady = t.get("steady_samples_per_sec") or \
                    (t.get("steady_steps_per_sec") or float("nan")) * t["batch"]
                acc = "" if t.get("test_accuracy") is None else f", test accuracy {t['test_accuracy']:.4f}"
                print(f"round {r} [{k}] load {ld}: pytorch {v:<10} {t['samples_per_sec']:8.0f} {unit} "
                      f"(steady {steady:.0f}; OpenBLAS "
                      f"{t['openblas_core']}){acc}", flush=True)
        if r == 1:
            print("pytorch kernels, last variant: ", t["kernels"], flush=True)

    def best(side, k=None):
        rows = [x for x in results if x[0] == side and (k is None or x[1] == k)]
        return max(rows, key=lambda x: x[4])

    def rng(side, k):
        v = [x[4] for x in results if x[0] == side and x[1] == k]
        return f"{min(v):.0f}-{max(v):.0f}"
    for k in kernels:
        o, t = best("pstrain", k), best("pytorch", k)
        print(f"[{k}] pstrain {rng('pstrain', k)} (OpenBLAS {o[2]}), pytorch all variants "
              f"{rng('pytorch', k)}; best {o[4]:.0f} against {t[4]:.0f} ({t[3]}): {o[4] / t[4]:.2f}x")
        pr = probes.get(k)
        if pr:
            need = o[4] * pr["mflop_per_sample"] * 1e-3
            print(f"[{k}] the direct path would need {need:.0f} GFLOP/s for pstrain's {o[4]:.0f} "
                  f"{unit} ({pr['mflop_per_sample']:.2f} MFLOP per training sample); OpenBLAS "
                  f"{pr['openblas_core']} sgemm reaches {pr['sgemm_gflops']:.0f} GFLOP/s on "
                  f"{a.threads} threads here ({need / pr['sgemm_gflops']:.2f}x of it)")
    o, t = best("pstrain"), best("pytorch")
    for k in kernels:
        h = best("pstrain", k)
        if h is not o:
            print(f"pstrain held to [{k}] (OpenBLAS {h[2]}) against PyTorch at its best "
                  f"({t[4]:.0f}, {t[3]}, setting {t[1]}): {h[4]:.0f} {unit}, {h[4] / t[4]:.2f}x")
    print(f"best against best: pstrain {o[4]:.0f} {unit} (OpenBLAS {o[2]}, setting {o[1]}), "
          f"pytorch {t[4]:.0f} {unit} ({t[3]}, OpenBLAS {t[2]}, setting {t[1]}): {o[4] / t[4]:.2f}x")


if __name__ == "__main__":
    main()
