#!/usr/bin/env bash
# test_check_timeout.sh PSTRAIN: a launcher's own checks are bounded (LAUNCH_CHECK_TIMEOUT,
# 2 s here). A FIFO where MNIST's training images belong hangs pstrain's reading of the data:
# launch/run-local and launch/pstrain, whose `pstrain train --dry-run` reads it first, must
# stop within the bound and some seconds with one line saying so and status 2 (or with
# pstrain's own refusal of the FIFO, once pstrain refuses one: it does now). Then a build
# whose `pstrain check` never answers (a stand-in script: the dry run passes) must stop
# launch/pstrain's local check (before any host's) the same way, and one whose dry run never
# answers, launch/run-local's check of the flags.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d)
fifo=$tmp/data/mnist/train-images-idx3-ubyte
# A reader left blocked on the FIFO (a launcher without the bound) gets an end of file.
# shellcheck disable=SC2016 # $1 is the inner shell's
release() { for _ in 1 2 3; do timeout 1 sh -c ': >"$1"' _ "$fifo" 2>/dev/null || break; done; }
trap 'release; rm -rf "$tmp"' EXIT
export LAUNCH_CHECK_TIMEOUT=2

# expect NAME PATTERN CMD...: CMD must end with status 2 within 15 s, its output matching.
expect() {
    local name=$1 pattern=$2 status=0 start took
    shift 2
    start=$(date +%s.%N)
    timeout 30 "$@" >"$tmp/out" 2>&1 </dev/null || status=$?
    took=$(echo "$(date +%s.%N) - $start" | bc)
    sed "s/^/  $name: /" "$tmp/out"
    ((status != 124)) || fail "$name: still running after 30 s (it hangs)"
    ((status == 2)) || fail "$name: status $status, expected 2"
    grep -qE "$pattern" "$tmp/out" || fail "$name: no line matching '$pattern'"
    awk -v t="$took" 'BEGIN { exit !(t < 15) }' || fail "$name: took $took s (bound 2 s)"
    printf 'PASS: %s: status 2 after %.1f s\n' "$name" "$took"
}

mkdir -p "$tmp/data/mnist"
for f in "$data"/mnist/*; do ln -s "$f" "$tmp/data/mnist/"; done
rm "$fifo"
mkfifo "$fifo"
said='(no answer within 2 s: is a data or checkpoint file a FIFO|train-images-idx3-ubyte)'
# the launcher's line when the check hangs, or pstrain's own refusal of the FIFO (at once)
expect run-local "^(launch/run-local|pstrain): .*$said" \
    "$root/launch/run-local" --build "$(dirname "$pstrain")" -- --model mnist_cnn --data "$tmp/data"
expect pstrain "^(launch/pstrain|pstrain): .*$said" "$root/launch/pstrain" --build "$(dirname "$pstrain")" \
    --data "$tmp/data" --hosts 127.0.0.1:2 --rsh false train --model mnist_cnn

mkdir "$tmp/build"
# shellcheck disable=SC2016 # $1 is the stand-in's
printf '#!/bin/sh\n[ "$1" = check ] && exec sleep 600\nexit 0\n' >"$tmp/build/pstrain"
chmod +x "$tmp/build/pstrain"
expect local-check "^launch/pstrain: .*pstrain check --model mnist_cnn failed here \(status 124\): no answer within 2 s" \
    "$root/launch/pstrain" --build "$tmp/build" --hosts 127.0.0.1:2 --rsh false train --model mnist_cnn

# And a build whose `pstrain train --dry-run` never answers (pstrain refuses the FIFO above at
# once now): launch/run-local's check of the flags and the data must stop the same way.
mkdir "$tmp/build2"
# shellcheck disable=SC2016 # $1 is the stand-in's
printf '#!/bin/sh\n[ "$1" = train ] && exec sleep 600\nexit 0\n' >"$tmp/build2/pstrain"
chmod +x "$tmp/build2/pstrain"
expect dry-run "^launch/run-local: .*no answer within 2 s" \
    "$root/launch/run-local" --build "$tmp/build2" -- --model mnist_cnn
