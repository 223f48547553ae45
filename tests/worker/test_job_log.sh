#!/usr/bin/env bash
# test_job_log.sh BUILD: a job's log when its output goes to a file. Open MPI gives every rank
# a pseudo-terminal, so a rank cannot tell a terminal from a file; launch/run-local can, and
# then passes --progress 0. The log must hold a line per epoch (no carriage-return redraws of
# the live bar) and every rank's "ends with status 0".
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
export PSTRAIN_DATA=${PSTRAIN_DATA:-$root/data}
[[ $EUID -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Two short epochs: half the training files held out, 2 workers.
"$root/launch/run-local" --build "$build" --servers 1 --workers 2 -- --model mnist_cnn \
    --epochs 2 --val-split 0.5 >"$tmp/job.log" 2>&1 || { cat "$tmp/job.log"; fail "the job failed"; }
cat "$tmp/job.log"
if grep -q $'\r' "$tmp/job.log"; then fail "the log holds carriage returns (the live bar)"; fi
epochs=$(grep -cE '^[0-9.]+s - loss: [0-9.]+ - accuracy: ' "$tmp/job.log")
[[ $epochs -eq 2 ]] || fail "$epochs epoch lines, expected 2"
grep -q '^Epoch 2/2$' "$tmp/job.log" || fail "no 'Epoch 2/2' line"
ends=$(grep -c '^pstrain: rank [0-2] ends with status 0$' "$tmp/job.log")
[[ $ends -eq 3 ]] || fail "$ends of 3 ranks said they ended with status 0"
max=$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$tmp/job.log")
echo "PASS: a line per epoch (2), the longest line $max characters, every rank's status"
