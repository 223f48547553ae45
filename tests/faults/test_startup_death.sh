#!/usr/bin/env bash
# test_startup_death.sh PSTRAIN: a rank that dies during start-up. A job of 1 server and 2
# workers (ranks 0, 1, 2) started by launch/run-local with --timeout 5 loses one rank about
# 0.2 s after that rank started: SIGTERM to rank 0, SIGTERM to rank 1, SIGKILL to rank 2.
# Each time the others must give up their start-up (each wait is bounded by --timeout, at
# least 10 s), mpirun must exit non-zero within 40 s of the kill, and the launcher must end
# with one line naming the rank that went. So that the kill lands in start-up however fast
# the machine, another rank is held (SIGSTOP) from its first moment until just after the
# kill: no rank can finish start-up without it.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
job='' held=''
trap '[[ -n $held ]] && kill -CONT $held 2>/dev/null; [[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT
bound=40 # s from the kill to mpirun's exit: the 10 s start-up bound, then Open MPI's teardown

# age PID: seconds since the process started.
age() {
    local start
    start=$(awk '{ print $22 }' "/proc/$1/stat")
    awk -v s="$start" -v t="$(getconf CLK_TCK)" '{ printf "%.3f\n", $1 - s / t }' /proc/uptime
}

# case VICTIM SIGNAL HELD
case_() {
    local victim=$1 sig=$2 hold=$3 dir=$tmp/r$1 p i status took killed
    mkdir -p "$dir"
    job 1 2 "$dir/log" --model mnist_cnn --epochs 1 --val-split 0.9 --timeout 5 \
        --peer-timeout 3 --metrics "$dir/m.jsonl"
    for ((i = 0; i < 3000; i++)); do held=$(rank_pid "$dir" "$hold") && break; sleep 0.01; done
    [[ -n $held ]] || { cat "$dir/log"; fail "rank $hold never started"; }
    kill -STOP "$held"
    for ((i = 0; i < 3000; i++)); do p=$(rank_pid "$dir" "$victim") && break; sleep 0.01; done
    [[ -n $p ]] || { cat "$dir/log"; fail "rank $victim never started"; }
    sleep "$(awk -v a="$(age "$p")" 'BEGIN { d = 0.2 - a; print (d > 0 ? d : 0) }')"
    kill "-$sig" "$p"
    killed=$(date +%s.%N)
    sleep 0.1
    kill -CONT "$held"
    held=
    for ((i = 0; i < 10 * (bound + 50); i++)); do
        kill -0 "$job" 2>/dev/null || break
        sleep 0.1
    done
    took=$(echo "$(date +%s.%N) - $killed" | bc)
    if kill -0 "$job" 2>/dev/null; then
        cat "$dir/log"
        fail "SIG$sig to rank $victim at start-up: the job still runs $took s later (it hangs)"
    fi
    status=0
    wait "$job" || status=$?
    job=
    grep -E '^(pstrain|launch/run-local): ' "$dir/log" | sed "s/^/  SIG$sig rank $victim: /"
    ((status != 0)) || { cat "$dir/log"; fail "SIG$sig to rank $victim at start-up: status 0"; }
    awk -v t="$took" -v b="$bound" 'BEGIN { exit !(t <= b) }' ||
        fail "SIG$sig to rank $victim at start-up: the job took $took s to end (bound $bound s)"
    grep -qE "^launch/run-local: the job did not start: (.*; )?rank $victim ended (by SIG$sig|without a word)" "$dir/log" ||
        { cat "$dir/log"; fail "SIG$sig to rank $victim at start-up: no launcher line naming rank $victim"; }
    # A SIGTERM that comes before main (a very loaded machine) ends the rank without a word.
    if grep -q "^pstrain: rank $victim ends with status 143" "$dir/log"; then
        grep -q "^pstrain: rank $victim: ended by SIGTERM during start-up" "$dir/log" ||
            fail "rank $victim did not say that SIGTERM ended it in start-up"
    fi
    grep -qE '^pstrain: rank [0-9]+: start-up did not finish within 10 s' "$dir/log" ||
        fail "SIG$sig to rank $victim at start-up: no rank said it gave up its start-up"
    printf 'PASS: SIG%s to rank %s %.2f s after it started: the job ended %.1f s later, status %d\n' \
        "$sig" "$victim" 0.2 "$took" "$status"
}

case_ 0 TERM 2
case_ 1 TERM 2
case_ 2 KILL 1
