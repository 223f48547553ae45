#!/usr/bin/env bash
# test_serve.sh PSTRAIN: `pstrain serve` over real HTTP (curl and Python's socket): every GET
# route of TF Serving's REST API and KServe v2, a predict and an infer, the errors (404 unknown
# model or path, 405 with Allow, 400 malformed JSON and NaN, 413 from Content-Length before the
# body is sent, a slow client cut off by --request-timeout), the bearer token, TLS, /metrics,
# hot reload of a checkpoint directory's latest (a new version swapped in; a corrupt file and
# another model's refused in one line while the old version serves on), SIGTERM (exit 0), and a
# GAN's and the LSTM's answers.
# Each check prints PASS or FAIL; any FAIL fails the test.
set -uo pipefail
pstrain=$1
export PSTRAIN_DATA=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
py=/usr/bin/python3
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
failed=0
pass() { echo "PASS: $*"; }
fail() {
    echo "FAIL: $*"
    failed=1
}
check() { # check NAME CMD...: PASS when CMD succeeds
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

# --- checkpoints: mnist_cnn at steps 5 and 10, fashion_cnn (another model, same shapes) ---
train() { # train MODEL STEPS DIR
    "$pstrain" train --model "$1" --epochs 1 --max-steps "$2" --checkpoint-dir "$3" \
        --threads 1 --progress 0 >"$tmp/train.log" 2>&1 || {
        cat "$tmp/train.log"
        echo "FAIL: train $1"
        exit 1
    }
}
train mnist_cnn 5 "$tmp/a"
train mnist_cnn 10 "$tmp/b"
train fashion_cnn 2 "$tmp/f"
mkdir "$tmp/dir"
cp "$tmp/a/ckpt-5.h5" "$tmp/dir/"
echo ckpt-5.h5 >"$tmp/dir/latest"
set_latest() { # set_latest NAME: replaces latest atomically, as eng_ckpt_save does
    echo "$1" >"$tmp/dir/.latest.tmp" && mv "$tmp/dir/.latest.tmp" "$tmp/dir/latest"
}

# start NAME ARGS...: runs serve in the background, its port into $port (read from the ready
# line), its pid into $pid
start() {
    local name=$1
    shift
    "$pstrain" serve "$@" --port 0 --threads 1 >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    pids+=("$pid")
    port=
    for _ in $(seq 300); do
        port=$(sed -n 's|^pstrain serve: .* on https\{0,1\}://127.0.0.1:\([0-9]*\) (name .*)$|\1|p' \
            "$tmp/$name.out")
        [[ -n $port ]] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$tmp/$name.out" "$tmp/$name.err"
    echo "FAIL: $name: no ready line"
    exit 1
}

printf '%s\n' "pstrain-test-token-0123456789abcdef" >"$tmp/token"
chmod 600 "$tmp/token"
auth=(-H "Authorization: Bearer pstrain-test-token-0123456789abcdef")
start main "$tmp/dir" --request-timeout 2 --token-file "$tmp/token"
url=http://127.0.0.1:$port
grep -q "^pstrain serve: mnist_cnn version 5 on http://127.0.0.1:$port (name mnist_cnn)$" \
    "$tmp/main.out" && pass "ready line: $(cat "$tmp/main.out")" || fail "ready line"

# get PATH [curl args]: body into $tmp/body, status into $code
get() {
    local path=$1
    shift
    code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$@" "$url$path")
}
# json EXPR: evaluates a Python expression over the last body (as j); true when it holds
json() { $py -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" \
    "$tmp/body" 2>/dev/null; }

# --- GET routes ---
declare -A want=(
    [/v1/models/mnist_cnn]='j["model_version_status"][0]["version"] == "5" and j["model_version_status"][0]["state"] == "AVAILABLE"'
    [/v1/models/mnist_cnn/versions/5]='j["model_version_status"][0]["version"] == "5"'
    [/v1/models/mnist_cnn/metadata]='"signature_def" in j["metadata"]'
    [/v1/models/mnist_cnn/versions/5/metadata]='"signature_def" in j["metadata"]'
    [/v2]='j["name"] == "pstrain" and "version" in j and isinstance(j["extensions"], list)'
    [/v2/health/live]='j["live"] is True'
    [/v2/health/ready]='j["ready"] is True'
    [/v2/models/mnist_cnn]='j["name"] == "mnist_cnn" and j["versions"] == ["5"]'
    [/v2/models/mnist_cnn/versions/5]='j["name"] == "mnist_cnn"'
    [/v2/models/mnist_cnn/ready]='j["name"] == "mnist_cnn" and j["ready"] is True'
)
for path in "${!want[@]}"; do
    get "$path" "${auth[@]}"
    if [[ $code == 200 ]] && json "${want[$path]}"; then pass "GET $path: 200"; else
        fail "GET $path: $code $(head -c 300 "$tmp/body")"
    fi
done

# --- predict and infer ---
$py -c 'import json; print(json.dumps({"instances": [[[[0.5]] * 28] * 28]}))' >"$tmp/predict.json"
$py -c 'import json; print(json.dumps({"inputs": [{"name": "images", "shape": [1, 28, 28, 1],
    "datatype": "FP32", "data": [0.25] * 784}]}))' >"$tmp/infer.json"
get /v1/models/mnist_cnn:predict "${auth[@]}" -d @"$tmp/predict.json"
[[ $code == 200 ]] && json 'len(j["predictions"]) == 1 and len(j["predictions"][0]) == 10 and abs(sum(j["predictions"][0]) - 1) < 1e-4' &&
    pass "predict: 200, 10 probabilities" || fail "predict: $code $(head -c 300 "$tmp/body")"
get /v2/models/mnist_cnn/infer "${auth[@]}" -d @"$tmp/infer.json"
[[ $code == 200 ]] && json 'j["model_name"] == "mnist_cnn" and j["model_version"] == "5" and len(j["outputs"][0]["data"]) == 10' &&
    pass "infer: 200, version 5, 10 values" || fail "infer: $code $(head -c 300 "$tmp/body")"
get /v1/models/mnist_cnn/versions/7:predict "${auth[@]}" -d @"$tmp/predict.json"
[[ $code == 404 ]] && json '"version 7" in j["error"]' && pass "predict, version 7: 404" ||
    fail "predict, version 7: $code"

# --- concurrent requests: all answered, batched by one thread ---
for i in $(seq 16); do
    curl -s -o /dev/null -w '%{http_code}\n' "${auth[@]}" -d @"$tmp/predict.json" \
        "$url/v1/models/mnist_cnn:predict" >"$tmp/conc.$i" &
done
wait_for_curls() { for i in $(seq 16); do while [[ ! -s $tmp/conc.$i ]]; do sleep 0.05; done; done; }
timeout 30 bash -c "$(declare -f wait_for_curls); tmp=$tmp; wait_for_curls"
[[ $(cat "$tmp"/conc.* | sort -u) == 200 ]] && pass "16 concurrent predicts: all 200" ||
    fail "16 concurrent predicts: $(cat "$tmp"/conc.* | sort | uniq -c | tr '\n' ' ')"

# --- bad requests ---
errbody() { [[ $(curl -s -o /dev/null -w '%{content_type}' "${auth[@]}" "$url/nope") == application/json* ]] && json 'isinstance(j["error"], str) and j["error"]'; }
get /v1/models/foo "${auth[@]}"
[[ $code == 404 ]] && json 'j["error"] == "model foo not found"' && pass "unknown model: 404" ||
    fail "unknown model: $code $(cat "$tmp/body")"
get /v2/models/foo/infer "${auth[@]}" -d @"$tmp/infer.json"
[[ $code == 404 ]] && json 'j["error"] == "model foo not found"' &&
    pass "unknown model, infer: 404" || fail "unknown model, infer: $code"
get /v1/nothing "${auth[@]}"
[[ $code == 404 ]] && errbody && pass "unknown path: 404 JSON" || fail "unknown path: $code"
allow=$(curl -s -o "$tmp/body" -D - "${auth[@]}" "$url/v1/models/mnist_cnn:predict" |
    tr -d '\r' | sed -n 's/^Allow: //Ip')
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$url/v1/models/mnist_cnn:predict")
[[ $code == 405 && $allow == POST ]] && json '"GET" in j["error"]' &&
    pass "GET on predict: 405, Allow: POST" || fail "GET on predict: $code, Allow '$allow'"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${auth[@]}" "$url/v2/health/live")
[[ $code == 405 ]] && pass "DELETE on live: 405" || fail "DELETE on live: $code"
get /v1/models/mnist_cnn:predict "${auth[@]}" -d '{"instances": [[0.5, 0.5'
[[ $code == 400 ]] && json 'j["error"]' && pass "malformed JSON: 400: $(cat "$tmp/body")" ||
    fail "malformed JSON: $code $(cat "$tmp/body")"
$py -c 'print("{\"instances\": [[" + ", ".join(["0.5"] * 783 + ["NaN"]) + "]]}")' >"$tmp/nan.json"
get /v1/models/mnist_cnn:predict "${auth[@]}" -d @"$tmp/nan.json"
[[ $code == 400 ]] && json 'j["error"]' && pass "NaN: 400: $(head -c 200 "$tmp/body")" ||
    fail "NaN: $code $(cat "$tmp/body")"
get /v1/models/mnist_cnn:predict "${auth[@]}" -d '{"instances": [[0.5, 0.5]]}'
[[ $code == 400 ]] && json 'j["error"]' && pass "wrong shape: 400: $(cat "$tmp/body")" ||
    fail "wrong shape: $code $(cat "$tmp/body")"
$py -c 'import json; print(json.dumps({"instances": [[[[0.5]] * 28] * 28] * 65}))' >"$tmp/65.json"
get /v1/models/mnist_cnn:predict "${auth[@]}" -d @"$tmp/65.json"
[[ $code == 413 ]] && json '"--max-batch" in j["error"]' &&
    pass "65 samples (max-batch 64): 413: $(cat "$tmp/body")" || fail "65 samples: $code $(cat "$tmp/body")"

# raw PORT MODE: Python's socket, for what curl cannot do (headers only; a stall)
raw() {
    $py - "$port" "$1" <<'EOF'
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(15)
t0 = time.monotonic()
tok = b"Authorization: Bearer pstrain-test-token-0123456789abcdef\r\n"
if mode == "big":  # the headers of a 20 MB body, and not one byte of it
    s.sendall(b"POST /v1/models/mnist_cnn:predict HTTP/1.1\r\nHost: t\r\n" + tok +
              b"Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n")
elif mode == "chunked":  # a chunked body without end: cut where it passes --max-body
    s.sendall(b"POST /v1/models/mnist_cnn:predict HTTP/1.1\r\nHost: t\r\n" + tok +
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunk, sent = b"1" * (1 << 20), 0
    try:
        while sent < 64:
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += 1
    except OSError:
        pass
    print("%d" % sent, end=" ")
else:  # half a request's headers, then nothing
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n")
data = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
except OSError as e:
    data += b" (" + type(e).__name__.encode() + b")"
print("%.2f %s" % (time.monotonic() - t0, data.split(b"\r\n")[0].decode(errors="replace")))
EOF
}
read -r secs line < <(raw big)
[[ $line == "HTTP/1.1 413"* ]] && $py -c "import sys; sys.exit(0 if $secs < 5 else 1)" &&
    pass "20 MB Content-Length: '$line' after ${secs}s, no body sent" ||
    fail "20 MB Content-Length: '$line' after ${secs}s"
head -c 20000000 /dev/zero | tr '\0' 1 >"$tmp/big"
up=$(curl -s -o "$tmp/body" -w '%{http_code} %{size_upload}' -H 'Expect:' "${auth[@]}" \
    --data-binary @"$tmp/big" "$url/v1/models/mnist_cnn:predict")
[[ ${up% *} == 413 ]] && json '"--max-body" in j["error"]' &&
    pass "curl, 20 MB: 413 ($up bytes uploaded of 20000000)" || fail "curl, 20 MB: $up"
read -r sent secs line < <(raw chunked)
[[ $sent -lt 40 ]] && pass "chunked body without end: cut after ${sent} MiB sent (--max-body 16 MiB)" ||
    fail "chunked body: $sent MiB sent, '$line'"
read -r secs line < <(raw slow)
[[ -z $line ]] && $py -c "import sys; sys.exit(0 if 1.5 <= $secs < 8 else 1)" &&
    pass "slow client (half its headers): closed after ${secs}s (--request-timeout 2)" ||
    fail "slow client: '$line' after ${secs}s"

# --- the token ---
code=$(curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$url/v1/models/mnist_cnn")
[[ $code == 401 ]] && grep -qi '^WWW-Authenticate: Bearer' "$tmp/headers" && json 'j["error"]' &&
    pass "no token: 401 with WWW-Authenticate: Bearer" || fail "no token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer pstrain-test-token-0123456789abcdeX" \
    -d @"$tmp/predict.json" "$url/v1/models/mnist_cnn:predict")
[[ $code == 401 ]] && pass "wrong token: 401" || fail "wrong token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")
[[ $code == 200 ]] && pass "health without token: 200" || fail "health without token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$url/metrics")
[[ $code == 200 ]] && pass "token: 200" || fail "token: $code"
chmod 644 "$tmp/token"
rc=0
timeout 20 "$pstrain" serve "$tmp/dir" --port 0 --token-file "$tmp/token" >/dev/null \
    2>"$tmp/err" || rc=$?
[[ $rc == 2 ]] && grep -q "token-file: .*mode 0644" "$tmp/err" &&
    pass "token file readable by others: refused: $(cat "$tmp/err")" || fail "token file 0644: $rc $(cat "$tmp/err")"

# --- metrics ---
metric() { curl -s "${auth[@]}" "$url/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
before=$(metric 'pstrain_serve_requests_total{endpoint="tfs_predict",code="200"}')
curl -s -o /dev/null "${auth[@]}" -d @"$tmp/predict.json" "$url/v1/models/mnist_cnn:predict"
after=$(metric 'pstrain_serve_requests_total{endpoint="tfs_predict",code="200"}')
[[ -n $before && $after == $((before + 1)) ]] && pass "metrics: predict 200 counter $before -> $after" ||
    fail "metrics: predict counter '$before' -> '$after'"
[[ $(metric pstrain_serve_model_version) == 5 ]] && pass "metrics: model version 5" ||
    fail "metrics: version $(metric pstrain_serve_model_version)"
n=$(metric pstrain_serve_batch_size_count)
[[ $n -ge 1 ]] && pass "metrics: $n batches of $(metric pstrain_serve_batch_size_sum) samples" ||
    fail "metrics: batches '$n'"
[[ -n $(metric 'pstrain_serve_request_duration_seconds_bucket{endpoint="tfs_predict",le="+Inf"}') ]] &&
    pass "metrics: latency histogram" || fail "metrics: no latency histogram"

# --- hot reload ---
version() { # the version GET /v1/models/NAME says
    curl -s "${auth[@]}" "$url/v1/models/mnist_cnn" |
        $py -c 'import json,sys; print(json.load(sys.stdin)["model_version_status"][0]["version"])'
}
wait_version() { # wait_version V: up to 10 s
    for _ in $(seq 100); do
        [[ $(version) == "$1" ]] && return 0
        sleep 0.1
    done
    return 1
}
cp "$tmp/b/ckpt-10.h5" "$tmp/dir/"
set_latest ckpt-10.h5
wait_version 10 && pass "reload: latest -> ckpt-10.h5, version 10 served" ||
    fail "reload: version $(version)"
get /v2/models/mnist_cnn/infer "${auth[@]}" -d @"$tmp/infer.json"
json 'j["model_version"] == "10"' && pass "reload: infer answers version 10" ||
    fail "reload: infer $(head -c 200 "$tmp/body")"
wait_line() { # wait_line PATTERN: up to 10 s for it in serve's stderr, then 1 s more
    for _ in $(seq 100); do
        grep -q "$1" "$tmp/main.err" && break
        sleep 0.1
    done
    sleep 1 # five more looks at latest: the refusal must not repeat
}
head -c 5000 /dev/urandom >"$tmp/dir/ckpt-99.h5"
set_latest ckpt-99.h5
wait_line "ckpt-99.h5: "
n=$(grep -c "ckpt-99.h5: .*; still serving version 10$" "$tmp/main.err")
[[ $n == 1 && $(version) == 10 ]] &&
    pass "corrupt checkpoint: one line, version 10 still served: $(grep ckpt-99 "$tmp/main.err")" ||
    fail "corrupt checkpoint: $n lines, version $(version): $(cat "$tmp/main.err")"
cp "$tmp/f/ckpt-2.h5" "$tmp/dir/ckpt-200.h5"
set_latest ckpt-200.h5
wait_line "ckpt-200.h5: "
n=$(grep -c "ckpt-200.h5: .*fashion_cnn.*; still serving version 10$" "$tmp/main.err")
[[ $n == 1 && $(version) == 10 ]] && pass "another model's checkpoint: refused in one line" ||
    fail "another model: $n lines, version $(version): $(cat "$tmp/main.err")"
[[ $(metric 'pstrain_serve_reloads_total{result="ok"}') == 1 && $(metric 'pstrain_serve_reloads_total{result="failed"}') == 2 ]] &&
    pass "metrics: 1 reload ok, 2 failed" || fail "metrics: reloads"

# --- latency of one predict at concurrency 1 (keep-alive), for the report ---
$py - "$port" "$tmp/predict.json" <<'EOF'
import http.client, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
body = open(sys.argv[2], "rb").read()
h = {"Content-Type": "application/json",
     "Authorization": "Bearer pstrain-test-token-0123456789abcdef"}
t = []
for i in range(300):
    t0 = time.perf_counter()
    c.request("POST", "/v1/models/mnist_cnn:predict", body, h)
    r = c.getresponse(); r.read()
    t.append(time.perf_counter() - t0)
t = sorted(t[50:])
print("INFO: predict at c=1 over keep-alive, %d requests: p50 %.3f ms, p99 %.3f ms" %
      (len(t), 1e3 * t[len(t) // 2], 1e3 * t[int(len(t) * 0.99)]))
EOF

# --- SIGTERM: exit 0 ---
stop() { # stop PID: SIGTERM, then up to 20 s for it to end (SIGKILL after); its status in rc
    kill -TERM "$1"
    for _ in $(seq 200); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$1" 2>/dev/null && kill -KILL "$1"
    wait "$1"
    rc=$?
}
stop "$pid"
[[ $rc == 0 ]] && pass "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"

# --- the other models: a GAN (a seed's image, its PNG) and the LSTM (a review's text) ---
train mnist_gan 2 "$tmp/g"
train imdb_lstm 2 "$tmp/i"
start gan "$tmp/g"
url=http://127.0.0.1:$port
get /v1/models/mnist_gan:predict -d '{"instances": [1, 2]}'
[[ $code == 200 ]] && json 'len(j["predictions"]) == 2 and len(j["predictions"][0]) == 28 and len(j["predictions"][0][0]) == 28' &&
    pass "mnist_gan: two seeds' images" || fail "mnist_gan: $code $(head -c 300 "$tmp/body")"
get /v1/models/mnist_gan:predict -d '{"signature_name": "png", "instances": [7]}'
[[ $code == 200 ]] && json '__import__("base64").b64decode(j["predictions"][0]["b64"])[:8] == b"\x89PNG\r\n\x1a\n"' &&
    pass "mnist_gan: a seed's PNG" || fail "mnist_gan png: $code $(head -c 300 "$tmp/body")"
stop "$pid"
start lstm "$tmp/i"
url=http://127.0.0.1:$port
get /v2/models/imdb_lstm/infer -d '{"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a wonderful film", "boring"]}]}'
[[ $code == 200 ]] && json 'j["outputs"][0]["shape"] == [2, 1] and all(0 < p < 1 for p in j["outputs"][0]["data"])' &&
    pass "imdb_lstm: two reviews' probabilities" || fail "imdb_lstm: $code $(head -c 300 "$tmp/body")"
stop "$pid"

# --- TLS ---
if ! command -v openssl >/dev/null; then
    echo "SKIP: TLS: no openssl to make a certificate (apt-get install openssl)"
    exit $failed
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
start tls "$tmp/a/ckpt-5.h5" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
grep -q "on https://127.0.0.1:$port " "$tmp/tls.out" && pass "TLS: ready line says https" ||
    fail "TLS: $(cat "$tmp/tls.out")"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' --cacert "$tmp/cert.pem" \
    -d @"$tmp/predict.json" "https://127.0.0.1:$port/v1/models/mnist_cnn:predict")
[[ $code == 200 ]] && json 'len(j["predictions"][0]) == 10' && pass "TLS: predict with --cacert: 200" ||
    fail "TLS: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/v2/health/live")
[[ $code == 000 ]] && pass "TLS: unknown CA refused by curl" || fail "TLS without --cacert: $code"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/health/live")
[[ $code != 200 ]] && pass "TLS: plain HTTP to the TLS port fails ($code)" || fail "TLS: plain HTTP answered 200"
stop "$pid"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other -keyout "$tmp/key2.pem" \
    -out "$tmp/cert2.pem" 2>/dev/null
for bad in "cert.pem key2.pem:refused by GnuTLS" "predict.json key.pem:expected a PEM certificate"; do
    read -r c k <<<"${bad%%:*}"
    rc=0
    timeout 20 "$pstrain" serve "$tmp/a" --port 0 --tls-cert "$tmp/$c" --tls-key "$tmp/$k" \
        >/dev/null 2>"$tmp/err" || rc=$?
    [[ $rc == 2 ]] && grep -q "${bad#*:}" "$tmp/err" && pass "TLS $c + $k: refused: $(cat "$tmp/err")" ||
        fail "TLS $c + $k: status $rc: $(cat "$tmp/err")"
done

exit $failed
