#!/usr/bin/env bash
# test_checkpoint.sh PSTRAIN: checkpoints of real jobs (mpirun, 2 servers + 2 workers, sync).
#  1. A job SIGKILLed after its checkpoint at step 40 and resumed from DIR/latest ends with
#     the same weights, bit for bit, as the job run without interruption.
#  2. The same checkpoint resumes on 1 server + 3 workers, and that job finishes.
#  3. SIGTERM to a worker, and to a server, stops the job with status 75 after a last
#     checkpoint that loads.
#  4. `pstrain eval` of the final checkpoint prints the test accuracy the job printed.
#  5. A truncated, a damaged and a foreign file are refused with one line and status 2.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
[[ $EUID -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && pkill -9 -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

job_cmd() { # job_cmd SERVERS RANKS ARGS...: a short sync job; logs and weights under $tmp
    local servers=$1 ranks=$2
    shift 2
    # ASAN_OPTIONS: LeakSanitizer would report Open MPI's own allocations at exit.
    mpirun -np "$ranks" --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 \
        -x ASAN_OPTIONS=detect_leaks=0 "$pstrain" train \
        --model mnist_cnn --servers "$servers" --mode sync --epochs 1 --max-steps 100 \
        --threads 1 --progress 0 --bind 127.0.0.1 --advertise 127.0.0.1 --data "$data" "$@"
}

wait_for_latest() { # wait_for_latest DIR NAME: until DIR/latest names NAME (60 s at most)
    for _ in $(seq 600); do
        [[ -f $1/latest && $(cat "$1/latest") == "$2" ]] && return 0
        sleep 0.1
    done
    return 1
}

# 1. Bit-exact resume after SIGKILL.
job_cmd 2 4 --dump-weights "$tmp/straight.bin" >"$tmp/straight.log" 2>&1 ||
    { cat "$tmp/straight.log"; fail "the uninterrupted job failed"; }
job_cmd 2 4 --checkpoint-dir "$tmp/ck" --checkpoint-every 20 >"$tmp/killed.log" 2>&1 &
job=$!
wait_for_latest "$tmp/ck" ckpt-40.h5 || { cat "$tmp/killed.log"; fail "no checkpoint at step 40"; }
pkill -9 -f "$tmp/ck" || true
wait $job 2>/dev/null || true
job=
resumed_from=$(cat "$tmp/ck/latest")
job_cmd 2 4 --checkpoint-dir "$tmp/ck" --resume "$tmp/ck" --dump-weights "$tmp/resumed.bin" \
    >"$tmp/resumed.log" 2>&1 || { cat "$tmp/resumed.log"; fail "the resumed job failed"; }
grep -q '^resuming at step' "$tmp/resumed.log" || fail "the job did not say where it resumed"
cmp -s "$tmp/straight.bin" "$tmp/resumed.bin" ||
    fail "killed after $resumed_from and resumed, the weights differ from the uninterrupted job's"
echo "PASS: SIGKILLed after $resumed_from, resumed: the same weights, bit for bit"

# 4. eval of the final checkpoint prints the accuracy the job printed.
printed=$(grep -o 'test_accuracy: [0-9.]*' "$tmp/resumed.log")
"$pstrain" eval "$tmp/ck" --data "$data" --threads 1 >"$tmp/eval.log" 2>&1 ||
    { cat "$tmp/eval.log"; fail "pstrain eval failed"; }
evaluated=$(grep -o 'test_accuracy: [0-9.]*' "$tmp/eval.log")
[[ $printed == "$evaluated" ]] || fail "eval says $evaluated, the job printed $printed"
echo "PASS: eval of $(cat "$tmp/ck/latest") gives the job's $printed"

# 6. h5py reads the final checkpoint as Keras's load_weights does (layer_names, each
#    layer's weight_names, datasets in Keras shapes), and the weights it finds are the job's
#    final weights in the layout's order.
/usr/bin/python3 - "$tmp/ck/$(cat "$tmp/ck/latest")" "$tmp/resumed.bin" <<'PY' ||
import sys
import h5py
import numpy as np
f = h5py.File(sys.argv[1], "r")
want = np.fromfile(sys.argv[2], dtype="<f4")
names = [n.decode() for n in f.attrs["layer_names"]]
assert names == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten", "dense",
                 "dropout", "dense_1"], names
got = []
for name in names:
    for w in f[name].attrs["weight_names"]:
        got.append(np.asarray(f[name][w.decode()]).ravel())
assert f["dense"]["dense/kernel:0"].shape == (1600, 128)
got = np.concatenate(got)
assert got.dtype == np.float32 and np.array_equal(got, want), "weights differ"
print("PASS: h5py reads", len(names), "layers,", got.size, "weights equal to the job's")
PY
    fail "h5py does not read the checkpoint as Keras would"

# 2. Resume the step-40 checkpoint on 1 server + 3 workers.
job_cmd 1 4 --resume "$tmp/ck/ckpt-40.h5" --optimizer rmsprop --lr 0.01 >"$tmp/reshaped.log" 2>&1 ||
    { cat "$tmp/reshaped.log"; fail "resuming on 1 server + 3 workers failed"; }
grep -q '^resuming at step 40' "$tmp/reshaped.log" || fail "1 + 3 did not resume at step 40"
# The banner prints the optimizer that runs (the checkpoint's Adam), and that the flags for
# another were not used.
grep -q 'parameters; adam:lr=0.001,' "$tmp/reshaped.log" &&
    grep -q '^--resume: the optimizer goes on as the checkpoint has it' "$tmp/reshaped.log" ||
    { cat "$tmp/reshaped.log"; fail "resumed with --optimizer rmsprop: the banner does not say Adam runs and the flags were not used"; }
echo "PASS: a 2 + 2 checkpoint resumed on 1 server + 3 workers: $(grep -o 'test_accuracy: [0-9.]*' "$tmp/reshaped.log")"

# 3. SIGTERM to one process of a running job: a last checkpoint, then status 75.
for victim in worker server; do
    dir=$tmp/term-$victim
    job_cmd 2 4 --max-steps 100000 --checkpoint-dir "$dir" >"$tmp/term.log" 2>&1 &
    job=$!
    for _ in $(seq 300); do # until the job trains (its servers print their map first)
        grep -q '^server 1: \[' "$tmp/term.log" 2>/dev/null && break
        sleep 0.1
    done
    sleep 2
    # ranks 0-1 serve, 2-3 work: rank 1 is a server, rank 2 a worker
    want=2
    [[ $victim == server ]] && want=1
    target=
    for pid in $(pgrep -f -- "--checkpoint-dir $dir"); do
        rank=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
            sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
        [[ $rank == "$want" ]] && target=$pid
    done
    [[ -n $target ]] || fail "found no rank $want of the job"
    kill -TERM "$target"
    status=0
    wait $job || status=$?
    job=
    [[ $status -eq 75 ]] || { cat "$tmp/term.log"; fail "SIGTERM to a $victim: status $status, expected 75"; }
    "$pstrain" inspect "$dir" >"$tmp/inspect.log" 2>&1 ||
        { cat "$tmp/inspect.log"; fail "after SIGTERM to a $victim the checkpoint does not load"; }
    echo "PASS: SIGTERM to a $victim: status 75, $(cat "$dir/latest") loads"
done

# 7. imdb_lstm (1 server + 2 workers, sparse pushes): a checkpoint at step 20 resumed to step
#    40 ends with the weights of the job run to 40 straight; the checkpoint keeps the
#    tokenizer's vocabulary; eval of the final checkpoint prints the job's test accuracy.
imdb() {
    mpirun -np 3 --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 \
        -x ASAN_OPTIONS=detect_leaks=0 "$pstrain" train \
        --model imdb_lstm --servers 1 --mode sync --epochs 1 --threads 1 --progress 0 \
        --bind 127.0.0.1 --advertise 127.0.0.1 --data "$data" "$@"
}
imdb --max-steps 40 --dump-weights "$tmp/imdb-straight.bin" >"$tmp/imdb1.log" 2>&1 ||
    { cat "$tmp/imdb1.log"; fail "imdb_lstm: the straight job failed"; }
imdb --max-steps 20 --checkpoint-dir "$tmp/ck-imdb" >"$tmp/imdb2.log" 2>&1 ||
    { cat "$tmp/imdb2.log"; fail "imdb_lstm: the first half failed"; }
imdb --max-steps 40 --checkpoint-dir "$tmp/ck-imdb" --resume "$tmp/ck-imdb" \
    --dump-weights "$tmp/imdb-resumed.bin" >"$tmp/imdb3.log" 2>&1 ||
    { cat "$tmp/imdb3.log"; fail "imdb_lstm: the resumed job failed"; }
cmp -s "$tmp/imdb-straight.bin" "$tmp/imdb-resumed.bin" ||
    fail "imdb_lstm: resumed at step 20, the weights differ from the straight job's"
/usr/bin/python3 -c 'import h5py, sys; v = bytes(h5py.File(sys.argv[1], "r")["pstrain/vocab"][:]).split(b"\n"); assert v[:4] == [b"the", b"and", b"a", b"of"] and len(v) == 88585, len(v)' \
    "$tmp/ck-imdb/ckpt-20.h5" || fail "imdb_lstm: the checkpoint's vocabulary is not the tokenizer's"
printed=$(grep -o 'test_accuracy: [0-9.]*' "$tmp/imdb3.log")
"$pstrain" eval "$tmp/ck-imdb" --data "$data" --threads 1 >"$tmp/eval-imdb.log" 2>&1 ||
    { cat "$tmp/eval-imdb.log"; fail "imdb_lstm: eval failed"; }
evaluated=$(grep -o 'test_accuracy: [0-9.]*' "$tmp/eval-imdb.log")
[[ $printed == "$evaluated" ]] || fail "imdb_lstm: eval says $evaluated, the job printed $printed"
echo "PASS: imdb_lstm resumed at step 20 ends bit-identical; its vocabulary travels; eval gives the job's $printed"

# 8. A --checkpoint-dir that cannot be made: one line naming the flag, status 2, before any
#    training.
status=0
"$pstrain" train --model mnist_cnn --epochs 1 --max-steps 5 --progress 0 --data "$data" \
    --checkpoint-dir /proc/pstrain-cannot-be-made >"$tmp/baddir.log" 2>&1 || status=$?
[[ $status -eq 2 ]] || { cat "$tmp/baddir.log"; fail "an unusable --checkpoint-dir: status $status"; }
grep -q '^pstrain: --checkpoint-dir /proc/pstrain-cannot-be-made: cannot create /proc/pstrain-cannot-be-made: ' "$tmp/baddir.log" ||
    { cat "$tmp/baddir.log"; fail "an unusable --checkpoint-dir: no line naming the flag"; }
grep -q '^Epoch' "$tmp/baddir.log" && fail "an unusable --checkpoint-dir: training started"
echo "PASS: $(grep '^pstrain:' "$tmp/baddir.log")"

# 5. Bad files: one line naming the file, status 2.
good=$tmp/ck/ckpt-40.h5
head -c 5000 "$good" >"$tmp/truncated.h5"
cp "$good" "$tmp/damaged.h5"
size=$(stat -c %s "$good")
printf '\x55\xaa\x55\xaa' | dd of="$tmp/damaged.h5" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
printf 'not a checkpoint\n' >"$tmp/foreign.h5"
for f in truncated damaged foreign; do
    status=0
    "$pstrain" eval "$tmp/$f.h5" --data "$data" >"$tmp/bad.log" 2>&1 || status=$?
    [[ $status -eq 2 ]] || { cat "$tmp/bad.log"; fail "$f.h5: status $status, expected 2"; }
    [[ $(wc -l <"$tmp/bad.log") -eq 1 ]] || { cat "$tmp/bad.log"; fail "$f.h5: not one line"; }
    grep -q "$f.h5" "$tmp/bad.log" || fail "$f.h5: the message does not name the file"
    echo "PASS: $f.h5 refused: $(cat "$tmp/bad.log")"
done
