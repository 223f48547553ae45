#!/usr/bin/env bash
# test_serve_models.sh PSTRAIN: `pstrain serve` called as real clients call it, for all three
# models. For each of mnist_cnn, imdb_lstm and mnist_gan: a checkpoint (a few training steps),
# the inputs a user would send (MNIST test images as floats and as uint8 pixels; IMDB reviews as
# text and as token ids; GAN seeds and latent vectors), `pstrain eval --inputs` over them (the
# reference: in batches of 1, and of 3 as one request of 3 samples is batched), then
# `pstrain serve` on an ephemeral port and:
#   - Python's urllib (tests/serve/serve_client.py): every endpoint of TF Serving's REST API
#     and KServe's v2 (health, status, metadata, predict in row and columnar form, infer in
#     JSON and with the binary tensor extension, the GAN's PNG, metrics), each answer's numbers
#     equal to eval's as float32 bits;
#   - curl: the same endpoints as the README shows them, one predict and one infer compared
#     with eval's bits.
set -euo pipefail
pstrain=$1
here=$(cd "$(dirname "$0")" && pwd)
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
py=/usr/bin/python3
tmp=$(mktemp -d)
serve_pid=
cleanup() {
    [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The inputs of each case: REF/CASE.json, as eval --inputs reads them.
"$py" - "$data" "$tmp" <<'PY'
import json, sys
import numpy as np
data, tmp = sys.argv[1], sys.argv[2]
raw = open(data + "/mnist/t10k-images-idx3-ubyte", "rb").read()
imgs = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28, 1)[:3]
def save(case, name, samples):
    json.dump({"input": name, "data": samples}, open("%s/%s.json" % (tmp, case), "w"))
floats = [(im.astype(np.float32) / np.float32(255)).tolist() for im in imgs]
for b in (1, 3):
    save("images-b%d" % b, "images", floats)
save("pixels-b1", "pixels", [im.tolist() for im in imgs])
reviews = json.load(open(data + "/imdb/reviews.json"))
texts = [r["t"] for r in reviews[-3:]]
texts[2] = "An <br /><br />ÜBER film: I'd watch it again, and again!"
for b in (1, 3):
    save("text-b%d" % b, "text", texts)
save("tokens-b1", "tokens", [[1, 14, 22, 16, 43, 530], list(range(1, 300)), [1]])
for b in (1, 3):
    save("seed-b%d" % b, "seed", [7, 0, 2**40 + 3])
rng = np.random.default_rng(5)
save("z-b1", "z", rng.standard_normal((3, 100)).astype(np.float32).tolist())
PY

# serve_up NAME CKPT: starts pstrain serve CKPT --port 0, sets url from its ready line.
serve_up() {
    "$pstrain" serve "$2" --port 0 --threads 2 >"$tmp/serve-$1.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 1 200); do
        url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$tmp/serve-$1.log" | head -1) || true
        [[ -n $url ]] && return 0
        kill -0 "$serve_pid" 2>/dev/null || { cat "$tmp/serve-$1.log"; fail "$1: serve ended"; }
        sleep 0.1
    done
    cat "$tmp/serve-$1.log"
    fail "$1: serve not ready in 20 s"
}
serve_down() {
    kill -TERM "$serve_pid"
    local rc=0
    wait "$serve_pid" || rc=$?
    serve_pid=
    [[ $rc -eq 0 ]] || { cat "$tmp/serve-$1.log"; fail "$1: serve ended with status $rc on SIGTERM"; }
}

# same_bits WHAT ANSWER.json REF.out PY-EXPR: the answer's numbers (PY-EXPR of the parsed
# answer `a`) equal the reference's first sample as float32 bits.
same_bits() {
    "$py" - "$2" "$3" "$4" <<'PY' || fail "$1"
import json, sys
import numpy as np
a = json.load(open(sys.argv[1]))
ref = json.loads(open(sys.argv[2]).read())["data"][0]
got = np.asarray(eval(sys.argv[3]), np.float64).astype(np.float32).ravel()
want = np.asarray(ref, np.float64).astype(np.float32).ravel()
sys.exit(0 if np.array_equal(got.view(np.uint32), want.view(np.uint32)) else 1)
PY
    echo "PASS: $1"
}

run_model() { # NAME KIND CASES...
    local name=$1 kind=$2 ckdir=$tmp/ck-$1
    shift 2
    echo "--- $name"
    local train=(--model "$name" --data "$data" --threads 1 --progress 0 --checkpoint-dir "$ckdir")
    case $kind in
        cnn) "$pstrain" train "${train[@]}" --max-steps 20 >"$tmp/train-$name.log" 2>&1 ;;
        lstm) "$pstrain" train "${train[@]}" --max-steps 5 >"$tmp/train-$name.log" 2>&1 ;;
        gan) "$pstrain" train "${train[@]}" --batch 8 --max-steps 5 >"$tmp/train-$name.log" 2>&1 ;;
    esac || { tail "$tmp/train-$name.log"; fail "$name: training"; }
    mkdir -p "$tmp/ref-$name"
    for case in "$@"; do
        cp "$tmp/$case.json" "$tmp/ref-$name/"
        "$pstrain" eval "$ckdir" --inputs "$tmp/$case.json" --batch "${case##*-b}" --threads 2 \
            >"$tmp/ref-$name/$case.out" 2>"$tmp/eval.err" || { cat "$tmp/eval.err"; fail "$name: eval --inputs $case"; }
    done
    serve_up "$name" "$ckdir"
    "$py" "$here/serve_client.py" check "$url" "$name" "$kind" "$tmp/ref-$name" ||
        { tail -5 "$tmp/serve-$name.log"; fail "$name: urllib client"; }

    # curl, as the README shows it.
    for path in /v2/health/live /v2/health/ready "/v2/models/$name" "/v2/models/$name/ready" \
        "/v1/models/$name" "/v1/models/$name/metadata" /metrics; do
        code=$(curl -s -o "$tmp/curl.out" -w '%{http_code}' "$url$path")
        [[ $code == 200 ]] || fail "curl GET $path: $code"
        echo "PASS: curl GET $path: 200"
    done
    local first=$1 input
    input=$("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({"instances": [{d["input"]: d["data"][0]}]}))' "$tmp/$first.json")
    curl -sf -X POST -H 'Content-Type: application/json' -d "$input" \
        "$url/v1/models/$name:predict" >"$tmp/curl-tfs.json" || fail "curl :predict"
    local out
    out=$("$py" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["output"])' "$tmp/ref-$name/$first.out")
    same_bits "curl :predict ($first) equals eval's bits" "$tmp/curl-tfs.json" "$tmp/ref-$name/$first.out" \
        "a['predictions'][0]['$out'] if isinstance(a['predictions'][0], dict) else a['predictions'][0]"
    input=$("$py" -c '
import json, sys
import numpy as np
d = json.load(open(sys.argv[1])); s = d["data"][0]
dt = {"images": "FP32", "pixels": "UINT8", "tokens": "INT64", "text": "BYTES", "seed": "INT64", "z": "FP32"}[d["input"]]
shape = [1] + list(np.asarray(s).shape) if dt != "BYTES" else [1]
data = np.asarray(s).ravel().tolist() if dt != "BYTES" else [s]
print(json.dumps({"inputs": [{"name": d["input"], "shape": shape, "datatype": dt, "data": data}]}))' "$tmp/$first.json")
    curl -sf -X POST -H 'Content-Type: application/json' -d "$input" \
        "$url/v2/models/$name/infer" >"$tmp/curl-v2.json" || fail "curl /infer"
    same_bits "curl /infer ($first) equals eval's bits" "$tmp/curl-v2.json" "$tmp/ref-$name/$first.out" \
        "a['outputs'][0]['data']"
    serve_down "$name"
}

run_model mnist_cnn cnn images-b1 images-b3 pixels-b1
run_model imdb_lstm lstm text-b1 text-b3 tokens-b1
run_model mnist_gan gan seed-b1 seed-b3 z-b1
echo "PASS: all three models, both protocols, urllib and curl"
