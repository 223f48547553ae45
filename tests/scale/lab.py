#!/usr/bin/python3
"""lab.py: run-lab's arithmetic and printing (run-lab does the measuring).

  lab.py sample METRICS OUT     until SIGTERM: every 0.2 s append "T BUSY TOTAL" (monotonic
                                seconds, /proc/stat's busy and total jiffies of all cores) to
                                OUT; the first time METRICS holds an epoch line, "EPOCH T"
  lab.py figure RUNDIR          one configuration's JSON line from RUNDIR (see run-lab)
  lab.py row JSON               one readable line for a JSON line
  lab.py tables JSONL TSV       markdown tables (one per link) on stdout; the plot's TSV
  lab.py best JSONL LINK N      the format ("fp32", "bf16+topk:0.01") with the highest
                                efficiency at N hosts on LINK in sync mode
"""
import json
import math
import os
import signal
import sys
import time

BATCH = 32


def read_kv(path):
    """KEY VALUE lines (run-lab's config file)."""
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(" ")
            if k:
                out[k] = v
    return out


def metrics_lines(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def cpu_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    total = sum(v[:8])  # guest time is already inside user
    return total - idle, total


def sample(metrics, out):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    seen = False
    with open(out, "w") as f:
        while not stop:
            t = time.monotonic()
            busy, total = cpu_jiffies()
            f.write("%.3f %d %d\n" % (t, busy, total))
            if not seen and os.path.exists(metrics):
                with open(metrics) as m:
                    if '"event":"epoch"' in m.read():
                        seen = True
                        f.write("EPOCH %.3f\n" % t)
            f.flush()
            time.sleep(0.2)


def cpu_busy(path, train_s, seconds):
    """The share of the cores busy while the workers trained: from the samples between the
    epoch's start (the epoch line's time less its "seconds") and its training's end (that
    start plus the training time); the whole run if the epoch line was never seen."""
    rows, t_epoch = [], None
    with open(path) as f:
        for line in f:
            p = line.split()
            if p[0] == "EPOCH":
                t_epoch = float(p[1])
            elif len(p) == 3:
                rows.append((float(p[0]), int(p[1]), int(p[2])))
    if len(rows) < 2:
        return None
    a, b = rows[0], rows[-1]
    if t_epoch is not None and seconds:
        t0 = t_epoch - seconds
        t1 = t0 + train_s
        inside = [r for r in rows if t0 <= r[0] <= t1]
        if len(inside) >= 2:
            a, b = inside[0], inside[-1]
    if b[2] <= a[2]:
        return None
    return (b[1] - a[1]) / (b[2] - a[2])


def figure(rundir):
    c = read_kv(os.path.join(rundir, "config"))
    m = metrics_lines(os.path.join(rundir, "metrics.jsonl"))
    epochs = [x for x in m if x.get("event") == "epoch"]
    report = [x for x in m if x.get("event") == "report"]
    if not epochs:
        raise SystemExit("lab.py: %s: no epoch line in metrics.jsonl" % rundir)
    d = int(c["dilation"])
    workers = int(c["workers"])
    # Samples/s of the job (every worker's samples over the slowest's time), over the epochs.
    sps_meas = epochs[-1]["samples_per_sec"]
    train_s = report[-1]["train_s"] if report else None
    if len(epochs) > 1 and report:
        sps_meas = report[-1]["samples_per_sec"]
    samples = sps_meas * train_s if train_s else None
    steps = samples / (BATCH * workers) if samples else float(c["steps"])
    # Bytes each host's cable carried, per step of a worker.
    outs, ins = [], []
    with open(os.path.join(rundir, "bytes.tsv")) as f:
        for line in f:
            p = line.split()
            if p[0] == "host":
                continue
            # root-side veth: rx = what the host sent, tx = what it received
            outs.append((int(p[3]) - int(p[1])) / steps)
            ins.append((int(p[4]) - int(p[2])) / steps)
    bits = float(c["link_bits"])
    r1 = float(c["r1"]) if c.get("r1") else None
    sps = sps_meas * d
    fig = {
        "hosts": int(c["hosts"]),
        "link": c["link"],
        "mode": c["mode"],
        "wire": c["wire"],
        "compress": c["compress"],
        "servers_per_host": int(c["servers_per_host"]),
        "server_hosts": int(c["server_hosts"]),
        "dilation": d,
        "extra": c.get("extra", ""),
        "samples_per_sec": round(sps, 1),
        "efficiency": round(sps / (workers * r1), 4) if r1 else None,
        "bound_efficiency": None,
        "bytes_out_per_step": round(sum(outs) / len(outs)),
        "bytes_in_per_step": round(sum(ins) / len(ins)),
        "bytes_out_per_step_max": round(max(outs)),
        "bytes_in_per_step_max": round(max(ins)),
        "cpu_busy": None,
        "step_ms": float(c["step_ms"]),
        "steps": round(steps, 1),
        "r1": r1,
        "compute": c.get("compute", "simulated"),
        "loadavg_before": float(c["loadavg"]) if c.get("loadavg") else None,
    }
    if bits > 0 and r1:
        worst = max(max(a, b) for a, b in zip(outs, ins))
        t_link = worst / (bits / 8) if worst > 0 else 0.0
        fig["bound_efficiency"] = round(min(1.0, (BATCH / t_link) / r1), 4) if t_link > 0 else 1.0
    elif r1:
        fig["bound_efficiency"] = 1.0
    seconds = epochs[-1].get("seconds")
    busy = cpu_busy(os.path.join(rundir, "cpu.txt"), train_s or 0, seconds if len(epochs) == 1 else None)
    fig["cpu_busy"] = round(busy, 3) if busy is not None else None
    return fig


def fmt_num(v, nd=0):
    if v is None:
        return "-"
    return "{:,.{}f}".format(v, nd)


def fmt_bytes(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return "%.2f MB" % (v / 1e6)
    if v >= 1e3:
        return "%.1f KB" % (v / 1e3)
    return "%d B" % v


def setting(f):
    s = f["wire"]
    if f["compress"] != "none":
        s += "+" + f["compress"]
    if f["mode"] != "sync":
        s = f["mode"] + " " + s
    return s


def cpu_cell(f):
    b = f.get("cpu_busy")
    if b is None:
        return "-"
    return "%.0f%%%s" % (100 * b, " CPU-bound" if b > 0.9 else "")


def row(f):
    return ("hosts %d link %s %s K=%d S=%d D=%d: %s samples/s, efficiency %s, bound %s, "
            "bytes/step out %s in %s (max %s / %s), CPU %s, step %.2f ms, load before %s" % (
                f["hosts"], f["link"], setting(f), f["servers_per_host"], f["server_hosts"],
                f["dilation"], fmt_num(f["samples_per_sec"]), fmt_num(f["efficiency"], 3),
                fmt_num(f["bound_efficiency"], 3), fmt_bytes(f["bytes_out_per_step"]),
                fmt_bytes(f["bytes_in_per_step"]), fmt_bytes(f.get("bytes_out_per_step_max")),
                fmt_bytes(f.get("bytes_in_per_step_max")), cpu_cell(f), f["step_ms"],
                fmt_num(f.get("loadavg_before"), 2)))


def tables(jsonl, tsv):
    figs = metrics_lines(jsonl)
    links = []
    for f in figs:
        if f["link"] not in links:
            links.append(f["link"])
    with open(tsv, "w") as t:
        t.write("link\tsetting\thosts\tefficiency\tbound\n")
        for f in figs:
            t.write("%s\t%s\t%d\t%s\t%s\n" % (
                f["link"], setting(f), f["hosts"],
                "nan" if f["efficiency"] is None else f["efficiency"],
                "nan" if f["bound_efficiency"] is None else f["bound_efficiency"]))
    for link in links:
        here = [f for f in figs if f["link"] == link]
        sets = []
        for f in here:
            if setting(f) not in sets:
                sets.append(setting(f))
        hosts = sorted({f["hosts"] for f in here})
        print("\n### link %s\n" % link)
        head = "| N | D |"
        rule = "|---|---|"
        for s in sets:
            head += " %s samples/s | eff | bound | out/in per step | CPU |" % s
            rule += "---|---|---|---|---|"
        print(head)
        print(rule)
        for n in hosts:
            cells = {setting(f): f for f in here if f["hosts"] == n}
            d = next(iter(cells.values()))["dilation"]
            line = "| %d | %d |" % (n, d)
            for s in sets:
                f = cells.get(s)
                if f is None:
                    line += " | | | | |"
                    continue
                line += " %s | %s | %s | %s / %s | %s |" % (
                    fmt_num(f["samples_per_sec"]), fmt_num(f["efficiency"], 3),
                    fmt_num(f["bound_efficiency"], 3), fmt_bytes(f["bytes_out_per_step"]),
                    fmt_bytes(f["bytes_in_per_step"]), cpu_cell(f))
            print(line)


def best(jsonl, link, n):
    figs = [f for f in metrics_lines(jsonl)
            if f["link"] == link and f["hosts"] == int(n) and f["mode"] == "sync"
            and f["efficiency"] is not None]
    if not figs:
        raise SystemExit("lab.py: no sync figure at %s hosts on %s" % (n, link))
    f = max(figs, key=lambda x: x["efficiency"])
    print(f["wire"] + ("" if f["compress"] == "none" else "+" + f["compress"]))


RATE_UNITS = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bit": 1.0,
              "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "bps": 8.0}


def rate_bits(link):
    """A tc rate (100mbit, 1gbit, 12mbps) in bits/s; 0 for none."""
    if link == "none":
        return 0.0
    for unit in sorted(RATE_UNITS, key=len, reverse=True):
        if link.endswith(unit):
            return float(link[: -len(unit)]) * RATE_UNITS[unit]
    return float(link)


def rebase(jsonl, out):
    """Rewrites each figure's efficiency and bound against r1 measured at the figure's own
    dilation (OUT/r1-MODE-MS-dD.json), where that cache exists: one host's rate under the
    same emulation, so that what dilation hides of a step's CPU work is hidden on both sides
    of the ratio. Figures whose r1 is missing keep theirs."""
    figs = metrics_lines(jsonl)
    for f in figs:
        path = os.path.join(out, "r1-%s-%s-d%d.json" % (f["mode"], f["step_ms"], f["dilation"]))
        if not os.path.exists(path):
            path = os.path.join(out, "r1-%s-%g-d%d.json" % (f["mode"], f["step_ms"], f["dilation"]))
        if not os.path.exists(path):
            continue
        with open(path) as g:
            r1 = json.loads(g.readline())["samples_per_sec"]
        workers = f["hosts"]
        f["r1"] = r1
        f["efficiency"] = round(f["samples_per_sec"] / (workers * r1), 4)
        bits = rate_bits(f["link"])
        worst = max(f.get("bytes_out_per_step_max", 0), f.get("bytes_in_per_step_max", 0))
        if bits > 0 and worst > 0:
            t_link = worst / (bits / 8)
            f["bound_efficiency"] = round(min(1.0, (BATCH / t_link) / r1), 4)
        else:
            f["bound_efficiency"] = 1.0
    with open(jsonl, "w") as g:
        for f in figs:
            g.write(json.dumps(f, separators=(",", ":")) + "\n")


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "sample":
        sample(a[1], a[2])
    elif len(a) == 2 and a[0] == "figure":
        print(json.dumps(figure(a[1]), separators=(",", ":")))
    elif len(a) == 2 and a[0] == "row":
        print(row(json.loads(a[1])))
    elif len(a) == 3 and a[0] == "tables":
        tables(a[1], a[2])
    elif len(a) == 3 and a[0] == "rebase":
        rebase(a[1], a[2])
    elif len(a) == 4 and a[0] == "best":
        best(a[1], a[2], a[3])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
