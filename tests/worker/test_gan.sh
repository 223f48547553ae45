#!/usr/bin/env bash
# test_gan.sh PSTRAIN: mnist_gan as real jobs (mpirun, ZeroMQ on loopback, small batches).
#  1. 1 server + 1 worker in sync mode ends where one process ends, BatchNormalization's
#     moving statistics included (they travel as the change a step made), to rounding.
#  2. 2 servers + 2 workers, sync: a job stopped at a checkpoint and resumed ends with the
#     same weights and the same moving average of the generator, bit for bit, as the job run
#     straight; the moving statistics moved.
#  3. async and ssp jobs run to the end.
#  4. SIGTERM to a worker stops the job with status 75 after a last checkpoint that resumes.
#  5. `pstrain sample` draws the grid --samples drew at the same step, byte for byte, and
#     refuses a checkpoint of another model with one line and status 2.
#  6. `pstrain eval --judge` of a GAN checkpoint gives the scores the run printed at that
#     step (a run of the default 50 epochs, stopped by --max-steps): its moving average's, and
#     with --live the generator's own; without a judge, or with one for a classifier, it says
#     so in one line (status 2).
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
[[ $EUID -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

common=(--model mnist_gan --batch 8 --threads 1 --progress 0 --data "$data")
job() { # job SERVERS WORKERS LOG ARGS...
    local servers=$1 workers=$2 log=$3
    shift 3
    mpirun -np $((servers + workers)) --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 \
        -x ASAN_OPTIONS=detect_leaks=0 "$pstrain" train "${common[@]}" --servers "$servers" \
        --bind 127.0.0.1 --advertise 127.0.0.1 "$@" >"$log" 2>&1 || { cat "$log"; fail "$log"; }
}

# Compares two flat vectors: max relative difference, and whether the moving statistics moved.
compare() { # compare A B TOL
    /usr/bin/python3 - "$@" <<'PY'
import sys, numpy as np
a, b = (np.fromfile(p, dtype=np.float32) for p in sys.argv[1:3])
tol = float(sys.argv[3])
assert a.shape == b.shape == (2543809,), (a.shape, b.shape)
d = np.abs(a.astype(np.float64) - b) / (np.abs(a) + 1e-3)
print(f"max relative difference {d.max():.3g} (tolerance {tol:g})")
sys.exit(0 if d.max() <= tol else 1)
PY
}

# 1. One process against 1 server + 1 worker.
"$pstrain" train "${common[@]}" --max-steps 6 --dump-weights "$tmp/one.bin" >"$tmp/one.log" 2>&1 ||
    { cat "$tmp/one.log"; fail "one process"; }
job 1 1 "$tmp/pair.log" --max-steps 6 --dump-weights "$tmp/pair.bin"
compare "$tmp/one.bin" "$tmp/pair.bin" 1e-4 || fail "1 server + 1 worker ends elsewhere than one process"
echo "PASS: 1 server + 1 worker, sync, ends where one process ends"

# 2. Stopped at a checkpoint and resumed, 2 servers + 2 workers.
job 2 2 "$tmp/straight.log" --max-steps 10 --dump-weights "$tmp/straight.bin" \
    --checkpoint-dir "$tmp/sck"
job 2 2 "$tmp/first.log" --max-steps 6 --checkpoint-dir "$tmp/ck" --samples "$tmp/grids"
job 2 2 "$tmp/resumed.log" --max-steps 10 --resume "$tmp/ck" --dump-weights "$tmp/resumed.bin" \
    --checkpoint-dir "$tmp/rck"
grep -q '^resuming at step 6' "$tmp/resumed.log" || fail "the job did not resume at step 6"
cmp -s "$tmp/straight.bin" "$tmp/resumed.bin" ||
    fail "stopped at step 6 and resumed, the weights differ from the straight job's"
/usr/bin/python3 - "$tmp/sck/ckpt-10.h5" "$tmp/rck/ckpt-10.h5" <<'PY' ||
import sys, h5py, numpy as np
(a, wa, da), (b, _, db) = ((f["pstrain/ema"][()], f["dense/dense/kernel:0"][()].ravel(),
                            f["pstrain"].attrs["ema_decay"]) for f in map(h5py.File, sys.argv[1:]))
assert da == db == 0.9999 and a.shape == (2330944,), (da, db, a.shape)
# the average trails the weights: its dense kernel (the generator's first floats) is not theirs
assert not np.array_equal(a[:wa.size], wa)
sys.exit(0 if np.array_equal(a, b) else 1)
PY
    fail "stopped at step 6 and resumed, the generator's moving average differs"
/usr/bin/python3 - "$tmp/ck/ckpt-6.h5" <<'PY' || fail "the moving statistics did not move"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    for bn in ("batch_normalization", "batch_normalization_1", "batch_normalization_2"):
        g = f[bn][bn]
        mean, var = g["moving_mean:0"][()], g["moving_variance:0"][()]
        assert np.abs(mean).max() > 1e-4 and np.abs(var - 1).max() > 1e-3, bn
        print(f"{bn}: moving mean |max| {np.abs(mean).max():.4f}, variance in "
              f"[{var.min():.4f}, {var.max():.4f}]")
    assert int(f["pstrain"].attrs["split"]) == 2330944
PY
echo "PASS: 2 servers + 2 workers, resumed at step 6: the same weights, bit for bit"

# 3. The other modes.
job 2 2 "$tmp/async.log" --max-steps 6 --mode async
job 2 2 "$tmp/ssp.log" --max-steps 6 --mode ssp --staleness 1
echo "PASS: async and ssp jobs finish"

# 4. A stop on request (the job would run for hours without it).
timeout -k 5 300 mpirun -np 4 --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 \
    -x ASAN_OPTIONS=detect_leaks=0 "$pstrain" train "${common[@]}" --servers 2 \
    --bind 127.0.0.1 --advertise 127.0.0.1 --checkpoint-dir "$tmp/stop" --checkpoint-every 4 \
    >"$tmp/stop.log" 2>&1 &
mpi=$!
for _ in $(seq 600); do [[ -f $tmp/stop/latest ]] && break; sleep 0.1; done
[[ -f $tmp/stop/latest ]] || { cat "$tmp/stop.log"; fail "no checkpoint to stop after"; }
pkill -TERM -n -f -- "--checkpoint-dir $tmp/stop" || true # the newest rank: a worker
status=0
wait $mpi || status=$?
[[ $status -eq 75 ]] || { cat "$tmp/stop.log"; fail "SIGTERM: status $status, expected 75"; }
grep -q 'stopped at step' "$tmp/stop.log" || fail "the job did not say where it stopped"
job 1 1 "$tmp/after.log" --resume "$tmp/stop" --max-steps "$(($(sed 's/ckpt-\([0-9]*\).h5/\1/' \
    "$tmp/stop/latest") + 2))"
echo "PASS: SIGTERM to a worker: status 75 at $(cat "$tmp/stop/latest"), which resumes"

# 5. Pictures.
"$pstrain" sample "$tmp/ck" --out "$tmp/sample.png" >"$tmp/sample.log" 2>&1 ||
    { cat "$tmp/sample.log"; fail "pstrain sample"; }
cmp -s "$tmp/sample.png" "$tmp/grids/epoch-1.png" ||
    fail "sample of the step-6 checkpoint differs from the grid the job drew at step 6"
"$pstrain" train --model mnist_cnn --max-steps 60 --epochs 1 --threads 1 --progress 0 \
    --data "$data" --checkpoint-dir "$tmp/cnn" >"$tmp/cnn.log" 2>&1 || fail "mnist_cnn job"
status=0
"$pstrain" sample "$tmp/cnn" --out "$tmp/no.png" 2>"$tmp/no.err" || status=$?
[[ $status -eq 2 && $(wc -l <"$tmp/no.err") -eq 1 && ! -e $tmp/no.png ]] ||
    fail "sample of an mnist_cnn checkpoint: status $status, $(cat "$tmp/no.err")"
echo "PASS: sample redraws the job's grid; refuses mnist_cnn: $(cat "$tmp/no.err")"

# 6. Scores after the fact: a one-process run judged at its end, then its checkpoint.
"$pstrain" train --model mnist_gan --batch 8 --threads 1 --progress 0 --data "$data" --max-steps 3 \
    --judge "$tmp/cnn" --judge-n 300 --metrics "$tmp/gan.jsonl" --checkpoint-dir "$tmp/judged" \
    >"$tmp/judged.log" 2>&1 || { cat "$tmp/judged.log"; fail "a judged GAN run"; }
grep -q '^Epoch 1/50$' "$tmp/judged.log" || fail "mnist_gan's default is not TF's 50 epochs"
"$pstrain" eval "$tmp/judged" --judge "$tmp/cnn" --judge-n 300 --data "$data" --threads 1 \
    >"$tmp/eval.log" 2>&1 || { cat "$tmp/eval.log"; fail "pstrain eval --judge"; }
"$pstrain" eval "$tmp/judged" --judge "$tmp/cnn" --judge-n 300 --data "$data" --threads 1 --live \
    >"$tmp/live.log" 2>&1 || { cat "$tmp/live.log"; fail "pstrain eval --judge --live"; }
/usr/bin/python3 - "$tmp/gan.jsonl" "$tmp/eval.log" "$tmp/live.log" <<'PY' ||
import json, re, sys
run = [json.loads(l) for l in open(sys.argv[1]) if '"inception_score"' in l][-1]
for path, key, which in ((sys.argv[2], "", "moving average"), (sys.argv[3], "live_", "own weights")):
    text = open(path).read()
    m = re.search(r"inception_score ([0-9.]+), frechet ([0-9.]+)", text)
    assert m and which in text, text
    got = float(m.group(1)), float(m.group(2))
    want = round(run[key + "inception_score"], 3), round(run[key + "frechet"], 3)
    print(f"the run's {key}scores: {want}; eval of its checkpoint ({which}): {got}")
    assert got == want and "the judge's answers:" in text, text
PY
    fail "eval's scores are not the run's"
for args in "$tmp/judged" "$tmp/cnn --judge $tmp/cnn"; do
    status=0
    # shellcheck disable=SC2086 # two words on purpose
    "$pstrain" eval $args --data "$data" >/dev/null 2>"$tmp/no.err" || status=$?
    [[ $status -eq 2 && $(wc -l <"$tmp/no.err") -eq 1 ]] ||
        fail "eval $args: status $status, $(cat "$tmp/no.err")"
    echo "refused: $(cat "$tmp/no.err")"
done
echo "PASS: eval --judge gives the run's scores"
