#!/usr/bin/env bash
# test_worker_loss.sh PSTRAIN [MODE...]: a worker SIGKILLed mid-epoch, in each mode (default
# sync async ssp). A job of 1 server and 3 workers trains mnist_cnn for 2 epochs with
# --peer-timeout 3; worker 2 is killed in the first epoch. The job must finish with status
# 0, say it goes on without the worker, hand its data to the other two from epoch 2, and
# end within 0.5 points of the same job undisturbed. Prints the timings.
set -euo pipefail
pstrain=$1
shift
modes=("$@")
((${#modes[@]})) || modes=(sync async ssp)
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT
train=(--model mnist_cnn --epochs 2 --val-split 0.5 --peer-timeout 3 --metrics "$tmp/m.jsonl")

for mode in "${modes[@]}"; do
    job 1 3 "$tmp/$mode-quiet.log" "${train[@]}" --mode "$mode"
    wait $job || { cat "$tmp/$mode-quiet.log"; fail "$mode: the undisturbed job exited $?"; }
    job=

    job 1 3 "$tmp/$mode.log" "${train[@]}" --mode "$mode"
    start=$(date +%s.%N)
    wait_for "$tmp/$mode.log" '^server 0 at' 30 || fail "$mode: no endpoint printed"
    sleep 5 # well into epoch 1 (of about 15 s)
    victim=$(rank_pid "$tmp" 3) || fail "$mode: no rank 3 under mpirun $job"
    kill -KILL "$victim"
    killed=$(date +%s.%N)
    status=0
    wait $job || status=$?
    job=
    end=$(date +%s.%N)
    log=$tmp/$mode.log
    [[ $status -eq 0 ]] || { cat "$log"; fail "$mode: the job exited $status after the kill"; }
    grep -q 'worker 2 lost' "$log" || { cat "$log"; fail "$mode: the server did not say it lost worker 2"; }
    grep -q '2 of 3 workers go on' "$log" || { cat "$log"; fail "$mode: the survivors did not take over the data"; }
    quiet=$(accuracy "$tmp/$mode-quiet.log") hit=$(accuracy "$log")
    grep -E 'lost|go on|^test_loss' "$log" | sed "s/^/  $mode: /"
    awk -v a="$quiet" -v b="$hit" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.5) }' ||
        fail "$mode: test accuracy $hit% after the kill, $quiet% undisturbed (more than 0.5 points apart)"
    printf 'PASS: %s: worker 2 killed %.1f s after the start; the job finished %.1f s later with %s%% (undisturbed %s%%)\n' \
        "$mode" "$(echo "$killed - $start" | bc)" "$(echo "$end - $killed" | bc)" "$hit" "$quiet"
done
