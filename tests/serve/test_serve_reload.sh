#!/usr/bin/env bash
# test_serve_reload.sh PSTRAIN: serving beside training (issue 20, acceptance 2). A training
# run writes a checkpoint every 150 steps into DIR while `pstrain serve DIR` answers a bounded
# load (wrk, loopback, 2 connections of 1500 requests each, 5 ms apart, single-image KServe v2
# requests).
# In the middle a corrupt checkpoint is dropped into DIR and `latest` pointed at it, as a
# broken writer would. Passes when:
#   - wrk saw no failed request (no socket error, no answer but 200);
#   - the versions in the answers advanced with the checkpoints (at least 3 distinct, rising);
#   - serve refused the corrupt file in one line naming it and kept serving the version before;
#   - serve ends with status 0 on SIGTERM.
set -euo pipefail
pstrain=$1
here=$(cd "$(dirname "$0")" && pwd)
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
py=/usr/bin/python3
command -v wrk >/dev/null || { echo "FAIL: wrk not installed (launch/setup installs it)"; exit 1; }
tmp=$(mktemp -d)
serve_pid= train_pid=
cleanup() {
    for p in $train_pid $serve_pid; do
        kill "$p" 2>/dev/null || true
        kill -CONT "$p" 2>/dev/null || true # (training is paused for a moment below)
    done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
dir=$tmp/ck

# A first checkpoint to serve, then training goes on from it, checkpointing as it goes.
common=(--model mnist_cnn --data "$data" --threads 1 --progress 0 --checkpoint-dir "$dir")
"$pstrain" train "${common[@]}" --max-steps 20 >"$tmp/train0.log" 2>&1 ||
    { tail "$tmp/train0.log"; fail "first checkpoint"; }

"$pstrain" serve "$dir" --port 0 --threads 1 --batch-timeout-us 500 >"$tmp/serve.log" 2>&1 &
serve_pid=$!
url=
for _ in $(seq 1 200); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$tmp/serve.log" | head -1) || true
    [[ -n $url ]] && break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$tmp/serve.log"; fail "serve ended"; }
    sleep 0.1
done
[[ -n $url ]] || fail "serve not ready"

# One test image as a v2 JSON request.
"$py" - "$data" "$tmp/body.json" <<'PY'
import json, sys
import numpy as np
raw = open(sys.argv[1] + "/mnist/t10k-images-idx3-ubyte", "rb").read()
img = np.frombuffer(raw, np.uint8, offset=16 + 784 * 7, count=784)
json.dump({"inputs": [{"name": "pixels", "shape": [1, 28, 28, 1], "datatype": "UINT8",
                       "data": img.tolist()}]}, open(sys.argv[2], "w"))
PY

"$pstrain" train "${common[@]}" --resume auto --max-steps 1400 --checkpoint-every 150 \
    >"$tmp/train.log" 2>&1 &
train_pid=$!

SERVE_BODY=$tmp/body.json SERVE_PATH=/v2/models/mnist_cnn/infer SERVE_REQUESTS=1500 SERVE_DELAY_MS=5 \
    wrk -t2 -c2 -d15s -s "$here/load.lua" "$url" >"$tmp/wrk.log" 2>&1 &
wrk_pid=$!

# The corrupt checkpoint, once serving has moved past the first version.
for _ in $(seq 1 300); do
    [[ $(cat "$dir/latest" 2>/dev/null) != ckpt-20.h5 ]] && break
    sleep 0.1
done
sleep 1
# Training is paused while `latest` names the corrupt file, until serve has looked at it:
# otherwise its next checkpoint (150 steps: half a second now) could replace the name before
# serve's next look (every 200 ms), and the refusal under test would never happen.
kill -STOP "$train_pid"
head -c 40000 "$dir/$(cat "$dir/latest")" >"$dir/ckpt-99999.h5" # truncated: HDF5 refuses it
echo ckpt-99999.h5 >"$dir/.latest-test" && mv "$dir/.latest-test" "$dir/latest"
for _ in $(seq 1 100); do
    grep -qF ckpt-99999.h5 "$tmp/serve.log" && break
    sleep 0.1
done
kill -CONT "$train_pid"
wait "$wrk_pid" || { cat "$tmp/wrk.log"; fail "wrk"; }
wait "$train_pid" || { tail "$tmp/train.log"; fail "training"; }
train_pid=
cat "$tmp/wrk.log"

line=$(grep '^requests ' "$tmp/wrk.log") || fail "no summary from load.lua"
read -r _ n _ non200 _ errors _ versions <<<"$line"
[[ $n -ge 1000 ]] || fail "only $n requests answered"
[[ $non200 -eq 0 && $errors -eq 0 ]] || fail "$non200 answers not 200, $errors errors"
echo "PASS: $n requests, none failed"
"$py" - "$versions" <<'PY' || fail "versions did not advance: $versions"
import sys
for thread in sys.argv[1].split(";"):
    v = [int(x) for x in thread.split(",") if x]
    print("versions seen:", v)
    assert len(v) >= 3 and v == sorted(v), v
PY
echo "PASS: the served version advanced with the checkpoints"
grep -F "ckpt-99999.h5" "$tmp/serve.log" | head -3
[[ $(grep -cF "ckpt-99999.h5" "$tmp/serve.log") -eq 1 ]] ||
    fail "the corrupt checkpoint was not refused in exactly one line"
grep -F "ckpt-99999.h5" "$tmp/serve.log" | grep -q "still serving version" ||
    fail "the refusal does not say which version is still served"
echo "PASS: the corrupt checkpoint was refused, serving went on"
kill -TERM "$serve_pid"
rc=0
wait "$serve_pid" || rc=$?
serve_pid=
[[ $rc -eq 0 ]] || { tail "$tmp/serve.log"; fail "serve ended with status $rc"; }
grep -E 'version [0-9]+' "$tmp/serve.log" | tail -3
echo "PASS: hot reload under load"
