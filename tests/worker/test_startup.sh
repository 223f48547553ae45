#!/usr/bin/env bash
# test_startup.sh PSTRAIN: start-up problems are named within seconds, not hangs.
#  1. Servers that advertise an address no worker can reach: the job stops in well under the
#     --timeout with one line naming the worker's host, the endpoint and what to check.
#  2. A --bind address this host does not have: one line naming it.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
[[ $EUID -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
job() { # job LOG ARGS...
    local log=$1
    shift
    mpirun -np 3 --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 "$pstrain" train \
        --model mnist_cnn --servers 1 --max-steps 5 --threads 1 --progress 0 --data "$data" \
        --timeout 600 "$@" >"$log" 2>&1
}

# 1. 127.0.0.2 is loopback, but nothing listens there: connections are refused and ZeroMQ
#    retries quietly, as with a firewall that rejects.
start=$(date +%s)
status=0
job "$tmp/advertise.log" --bind 127.0.0.1 --advertise 127.0.0.2 || status=$?
took=$(($(date +%s) - start))
line=$(grep '^pstrain: ' "$tmp/advertise.log" || true)
[[ $status -ne 0 ]] || fail "a job whose servers cannot be reached succeeded"
[[ $took -lt 60 ]] || fail "took ${took} s to give up (the step timeout is 600 s)"
[[ $line == *"no hello from tcp://127.0.0.2:"* && $line == *host* && $line == *--advertise* ]] ||
    { cat "$tmp/advertise.log"; fail "the line does not name the endpoint and what to check"; }
echo "PASS: unreachable servers named in ${took} s: $line"

# 2. An address that is not this host's (TEST-NET-1; nothing is sent there).
status=0
job "$tmp/bind.log" --bind 192.0.2.123 || status=$?
line=$(grep '^pstrain: ' "$tmp/bind.log" | head -1 || true)
[[ $status -ne 0 && $line == *"192.0.2.123"* ]] ||
    { cat "$tmp/bind.log"; fail "a --bind address this host lacks: status $status, '$line'"; }
echo "PASS: $line"
