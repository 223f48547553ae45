#!/usr/bin/env bash
# test_job_survives.sh PSTRAIN POKE: the stranger test. A running job's server gets, from
# outside the job, malformed messages and well-formed ones without the job's token (none, or
# another job's, as a replay from that job would carry): it answers none, counts each in its
# log (at most a line a second), and the job goes on: it finishes with status 0 and the same
# test accuracy, bit for bit, as an undisturbed run. Then with --secure on, where the stranger gets no connection at all.
set -euo pipefail
pstrain=$1 poke=$2
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
[[ $EUID -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT

run() { # run LOG [FLAGS...]: a short sync job with 1 server and 1 worker
    # ASAN_OPTIONS: LeakSanitizer would report Open MPI's own allocations at exit.
    local log=$1
    shift
    mpirun -np 2 --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 \
        -x ASAN_OPTIONS=detect_leaks=0 "$pstrain" train \
        --model mnist_cnn --servers 1 --epochs 1 --max-steps 1000 --threads 1 --progress 0 \
        --bind 127.0.0.1 --advertise 127.0.0.1 --data "$data" "$@" >"$log" 2>&1
}
run "$tmp/quiet.log"

# poked LOG [TRAIN FLAGS...]: the job again, with the stranger at its server.
poked() {
    local log=$1
    shift
    : >"$log" # before the background job creates it: sed below reads it at once
    run "$log" "$@" &
    job=$!
    endpoint=
    for _ in $(seq 200); do # up to 20 s for the job to print its server's endpoint
        endpoint=$(sed -n 's/^server 0 at \(tcp:.*\)$/\1/p' "$log")
        [[ -n $endpoint ]] && break
        sleep 0.1
    done
    [[ -n $endpoint ]] || { echo "FAIL: the job printed no endpoint"; cat "$log"; exit 1; }
    "$poke" "$endpoint" || { echo "FAIL: the server answered a stranger"; exit 1; }
    wait $job || { echo "FAIL: the job exited $?"; cat "$log"; exit 1; }
    job=
    grep -E '^test_loss|outside the job|refused a connection' "$log"
    local got
    got=$(grep -o 'test_accuracy: [0-9.]*' "$log")
    [[ $quiet == "$got" ]] || { echo "FAIL: $got after the stranger, $quiet without"; exit 1; }
}
quiet=$(grep -o 'test_accuracy: [0-9.]*' "$tmp/quiet.log")

# dropped LOG: the messages from outside the job the server's log accounts for. It writes at
# most a line a second about them: a line for one message ("and N more since the last line"
# for those dropped unlogged before it), and at its end one for the rest ("dropped N more").
dropped() {
    grep 'outside the job' "$1" | awk '
        match($0, /\(and [0-9]+ more since/) { n += 1 + substr($0, RSTART + 5, RLENGTH - 16); next }
        match($0, /dropped [0-9]+ more message/) { n += substr($0, RSTART + 8, RLENGTH - 21); next }
        { n++ }
        END { print n + 0 }'
}

poked "$tmp/job.log"
dropped=$(dropped "$tmp/job.log")
[[ $dropped -eq 7 ]] || { echo "FAIL: the server's log accounts for $dropped of the 7 messages"; exit 1; }
echo "PASS: 7 messages from outside the job dropped unanswered and counted in the log; the job" \
    "finished with the undisturbed $quiet"

# --secure: the stranger, with no CURVE keys, does not get a connection at all.
poked "$tmp/secure.log" --secure on
grep -q 'refused a connection from' "$tmp/secure.log" ||
    { echo "FAIL: --secure: the server did not log the stranger"; exit 1; }
echo "PASS: --secure: the stranger got no connection (logged); the job finished with the" \
    "undisturbed $quiet"
