"""Which kernels PyTorch ran on, for the benchmarks' references (imported by torch_*.py).

Debian's python3-torch 1.13 (BLAS_INFO=generic, USE_MKLDNN=ON) takes its float32 matrix
products (nn.Linear, the LSTM's gates, slow_conv2d's im2col products) from OpenBLAS through
libblas.so.3 (the alternatives link; Debian's OpenBLAS 0.3.21 picks its kernel at run time,
OPENBLAS_CORETYPE overrides it), and its convolutions from oneDNN (libdnnl.so.2), which
picks its own ISA and never calls OpenBLAS. So the OpenBLAS kernel tells only half the
story: `describe()` also names the oneDNN implementations that ran, read from oneDNN's
verbose log around one extra step run after the timing.
"""
import contextlib, ctypes, os, re, tempfile

import torch


def openblas_core():
    """openblas_get_corename() of the OpenBLAS that serves torch's sgemm (libblas.so.3 is
    loaded by libtorch_cpu; dlopen returns that copy)."""
    names = []
    for lib in ("libblas.so.3", "libopenblas.so.0"):
        try:
            f = ctypes.CDLL(lib).openblas_get_corename
        except (OSError, AttributeError):
            continue
        f.restype = ctypes.c_char_p
        names.append(f().decode())
    if not names:
        return "not OpenBLAS"
    return names[0] if len(set(names)) == 1 else "/".join(names)


@contextlib.contextmanager
def _stdout_to(path):
    """oneDNN writes its verbose lines with printf: catch file descriptor 1 itself."""
    import sys
    sys.stdout.flush()
    saved = os.dup(1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.close(fd)
    try:
        yield
    finally:
        libc = ctypes.CDLL(None)
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


def onednn_impls(step):
    """Run step() once with oneDNN's verbose log on; return (isa, {primitive: impls})."""
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return None, {}
    with tempfile.NamedTemporaryFile(prefix="onednn-", suffix=".log") as tmp:
        with _stdout_to(tmp.name):
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                step()
        with open(tmp.name) as f:
            lines = f.read().splitlines()
    isa, impls = None, {}
    for line in lines:
        fields = line.split(",")
        if len(fields) > 3 and fields[1] == "info" and fields[3].startswith("isa:"):
            isa = fields[3][4:].strip()
        elif len(fields) > 5 and fields[1] == "exec":
            prim, impl, kind = fields[3], fields[4], fields[5]
            impls.setdefault(prim, set()).add(f"{impl} ({kind})")
    return isa, {k: sorted(v) for k, v in impls.items()}


def describe(step=None):
    """One dict naming the kernels: OpenBLAS's core for sgemm, ATen's own vector code, and
    (if step is given and oneDNN is on) oneDNN's ISA and implementations."""
    cap = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    d = {"openblas_core": openblas_core(),
         "aten_cpu_capability": cap.group(1) if cap else "?",
         "mkldnn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)}
    if step is not None and d["mkldnn"]:
        isa, impls = onednn_impls(step)
        d["onednn_isa"] = isa
        d["onednn"] = impls
    return d


def line(d):
    """The kernels in one line, for humans."""
    s = f"torch {torch.__version__}: sgemm from OpenBLAS {d['openblas_core']}, ATen vector code " \
        f"{d['aten_cpu_capability']}"
    if not d["mkldnn"]:
        return s + ", oneDNN off (convolutions: slow_conv2d, im2col + OpenBLAS sgemm)"
    if "onednn" in d:
        used = "; ".join(f"{p}: {', '.join(v)}" for p, v in sorted(d["onednn"].items()))
        return s + f", oneDNN (isa {d.get('onednn_isa')}; {used or 'no oneDNN primitive ran'})"
    return s + ", oneDNN on"
