#!/usr/bin/python3
"""serve_client.py: a serving client as users write them, on Python's urllib alone.

    serve_client.py check URL NAME KIND REFDIR

calls every endpoint of both protocols (TensorFlow Serving's REST API and KServe's v2) of the
`pstrain serve` at URL serving model NAME of KIND (cnn, lstm, gan), and compares each
answer's numbers with `pstrain eval --inputs`'s in REFDIR, as float32 bits. REFDIR holds, for
each case C the test prepared: C.json (the inputs eval read) and C.out (eval's answer). Prints
PASS/FAIL lines; exits 1 on the first failure.
"""
import base64
import json
import struct
import sys
import urllib.error
import urllib.request

import numpy as np


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def ok(msg):
    print("PASS: " + msg)


def call(method, url, body=None, headers=None):
    """(status, headers, parsed JSON or raw bytes) of one request."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, hdrs, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    ctype = hdrs.get("Content-Type", "")
    if ctype.startswith("application/json"):
        return status, hdrs, json.loads(raw)
    return status, hdrs, raw


def post_json(url, obj):
    return call("POST", url, json.dumps(obj).encode(), {"Content-Type": "application/json"})


def f32(values):
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def same_bits(what, got, want):
    g, w = f32(got).ravel(), f32(want).ravel()
    if g.shape != w.shape:
        fail("%s: %d values, eval gave %d" % (what, g.size, w.size))
    if not np.array_equal(g.view(np.uint32), w.view(np.uint32)):
        i = int(np.argmax(g.view(np.uint32) != w.view(np.uint32)))
        fail("%s: value %d is %r, eval gave %r" % (what, i, float(g[i]), float(w[i])))
    ok("%s: %d values equal eval's bit for bit" % (what, g.size))


def load_case(refdir, case):
    with open("%s/%s.json" % (refdir, case)) as f:
        inp = json.load(f)
    with open("%s/%s.out" % (refdir, case)) as f:
        out = json.loads(f.read())
    return inp, out


def expect(what, status, want=200):
    if status != want:
        fail("%s: status %d, expected %d" % (what, status, want))


def v2_input(name, dtype, samples):
    arr = np.asarray(samples)
    shape = list(arr.shape)
    data = arr.ravel().tolist() if dtype != "BYTES" else list(samples)
    if dtype == "BYTES":
        shape = [len(samples)]
    return {"name": name, "shape": shape, "datatype": dtype, "data": data}


V2_DTYPES = {"images": "FP32", "pixels": "UINT8", "tokens": "INT64", "text": "BYTES",
             "seed": "INT64", "z": "FP32"}


def check(url, name, kind, refdir):
    base = url.rstrip("/")
    # --- health, status, metadata -------------------------------------------------------
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/%s/ready" % name):
        st, _, _ = call("GET", base + path)
        expect(path, st)
        ok("GET %s: 200" % path)
    st, _, meta = call("GET", base + "/v2/models/" + name)
    expect("v2 metadata", st)
    if meta.get("name") != name or not meta.get("inputs") or not meta.get("outputs"):
        fail("v2 metadata: %r" % meta)
    version = meta["versions"][0]
    ok("GET /v2/models/%s: inputs %s, outputs %s, version %s" % (
        name, [i["name"] for i in meta["inputs"]], [o["name"] for o in meta["outputs"]], version))
    st, _, status = call("GET", base + "/v1/models/" + name)
    expect("tfs status", st)
    mvs = status["model_version_status"][0]
    if mvs["state"] != "AVAILABLE" or mvs["version"] != version:
        fail("tfs status: %r" % status)
    ok("GET /v1/models/%s: AVAILABLE, version %s" % (name, version))
    st, _, tmeta = call("GET", base + "/v1/models/%s/metadata" % name)
    expect("tfs metadata", st)
    sig = tmeta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    ok("GET /v1/models/%s/metadata: serving_default inputs %s" % (name, sorted(sig["inputs"])))

    # --- predictions, each case against eval ------------------------------------------
    cases = {"cnn": ["images-b1", "images-b3", "pixels-b1"],
             "lstm": ["text-b1", "text-b3", "tokens-b1"],
             "gan": ["seed-b1", "seed-b3", "z-b1"]}[kind]
    for case in cases:
        inp, out = load_case(refdir, case)
        iname, samples, ref = inp["input"], inp["data"], out["data"]
        batch = int(case.rsplit("-b", 1)[1])
        for lo in range(0, len(samples), batch):
            group, want = samples[lo:lo + batch], ref[lo:lo + batch]
            # TF Serving, row format with named instances.
            st, _, ans = post_json(base + "/v1/models/%s:predict" % name,
                                   {"instances": [{iname: s} for s in group]})
            expect("tfs predict %s" % case, st)
            preds = ans["predictions"]
            got = [p[out["output"]] if isinstance(p, dict) else p for p in preds]
            same_bits("tfs :predict instances %s[%d:%d]" % (case, lo, lo + len(group)), got, want)
            # TF Serving, columnar.
            st, _, ans = post_json(base + "/v1/models/%s:predict" % name,
                                   {"inputs": {iname: group}})
            expect("tfs columnar %s" % case, st)
            outs = ans["outputs"]
            if isinstance(outs, dict):
                outs = outs[out["output"]]
            same_bits("tfs :predict inputs %s[%d:%d]" % (case, lo, lo + len(group)), outs, want)
            # KServe v2, JSON.
            st, _, ans = post_json(base + "/v2/models/%s/infer" % name,
                                   {"id": "r%d" % lo,
                                    "inputs": [v2_input(iname, V2_DTYPES[iname], group)]})
            expect("v2 infer %s" % case, st)
            if ans.get("id") != "r%d" % lo or ans.get("model_name") != name:
                fail("v2 infer: id or model_name not echoed: %r" % {k: ans.get(k) for k in ("id", "model_name")})
            o = ans["outputs"][0]
            if o["shape"][0] != len(group):
                fail("v2 infer %s: shape %r" % (case, o["shape"]))
            same_bits("v2 infer %s[%d:%d]" % (case, lo, lo + len(group)), o["data"], want)
    # KServe v2's binary tensor extension: raw uint8 pixels, or float32 z.
    if kind in ("cnn", "gan"):
        case = "pixels-b1" if kind == "cnn" else "z-b1"
        inp, out = load_case(refdir, case)
        s = inp["data"][0]
        dtype = "UINT8" if kind == "cnn" else "FP32"
        raw = np.asarray(s, dtype=np.uint8 if kind == "cnn" else np.float32).tobytes()
        shape = [1] + list(np.asarray(s).shape)
        head = json.dumps({"inputs": [{"name": inp["input"], "shape": shape, "datatype": dtype,
                                       "parameters": {"binary_data_size": len(raw)}}]}).encode()
        st, _, ans = call("POST", base + "/v2/models/%s/infer" % name, head + raw,
                          {"Content-Type": "application/octet-stream",
                           "Inference-Header-Content-Length": str(len(head))})
        expect("v2 binary", st)
        same_bits("v2 infer, binary %s" % dtype, ans["outputs"][0]["data"], out["data"][0])
    # The GAN's PNG, both protocols: decoded, its grey levels are the image's.
    if kind == "gan":
        inp, out = load_case(refdir, "seed-b1")
        st, _, ans = post_json(base + "/v1/models/%s:predict" % name,
                               {"signature_name": "png", "instances": [inp["data"][0]]})
        expect("tfs png", st)
        p = ans["predictions"][0]
        png = base64.b64decode(p["b64"] if isinstance(p, dict) and "b64" in p else p["png"]["b64"])
        if png[:8] != b"\x89PNG\r\n\x1a\n":
            fail("tfs png: not a PNG")
        w, h = struct.unpack(">II", png[16:24])
        if (w, h) != (28, 28):
            fail("tfs png: %dx%d" % (w, h))
        ok("tfs :predict signature png: a 28x28 PNG of %d bytes" % len(png))
        st, _, ans = post_json(base + "/v2/models/%s/infer" % name,
                               {"inputs": [v2_input("seed", "INT64", [inp["data"][0]])],
                                "outputs": [{"name": "png"}]})
        expect("v2 png", st)
        png2 = base64.b64decode(ans["outputs"][0]["data"][0])
        if png2 != png:
            fail("v2 png differs from tfs png")
        ok("v2 infer outputs png: the same PNG")
    # Metrics: requests counted.
    st, hdrs, text = call("GET", base + "/metrics")
    expect("metrics", st)
    text = text.decode() if isinstance(text, bytes) else text
    if "# TYPE" not in text:
        fail("metrics: no Prometheus text")
    ok("GET /metrics: %d lines" % len(text.splitlines()))


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "check":
        print(__doc__)
        sys.exit(2)
    check(*sys.argv[2:])
