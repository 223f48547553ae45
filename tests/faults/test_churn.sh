#!/usr/bin/env bash
# test_churn.sh PSTRAIN: spot-VM churn. A sync job of 1 server and 2 workers with --secure on
# and --max-workers 8 trains mnist_cnn on a fifth of the training set for 8 epochs; five
# times a worker is SIGKILLed (first one of the job's own, then each time the last one that
# joined) and a new one joins with `pstrain train --join JOBFILE` (CURVE keys from the file),
# each admitted at the next epoch's end. Nothing may hang: the job must end with status 0,
# every joiner not killed with status 0, and the test accuracy within 0.5 points of the same
# job undisturbed.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
job=
joiners=()
trap '[[ -n $job ]] && kill $job 2>/dev/null; for p in "${joiners[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
train=(--model mnist_cnn --epochs 8 --val-split 0.8 --secure on --max-workers 8 --peer-timeout 5)

job 1 2 "$tmp/quiet.log" "${train[@]}" --job-file "$tmp/quiet.json"
wait $job || { cat "$tmp/quiet.log"; fail "the undisturbed job exited $?"; }
job=

job 1 2 "$tmp/churn.log" "${train[@]}" --job-file "$tmp/job.json"
wait_for "$tmp/churn.log" '^Epoch 1/' 60 || { cat "$tmp/churn.log"; fail "the job did not start"; }
victim=$(rank_pid "$tmp/job.json" 2) || fail "no rank 2 (worker 1) under mpirun $job"
for round in 1 2 3 4 5; do
    sleep 1 # into the epoch
    kill -KILL "$victim"
    : >"$tmp/join$round.log"
    "$pstrain" train --join "$tmp/job.json" --data "$data" --threads 1 --progress 0 \
        >"$tmp/join$round.log" 2>&1 &
    joiners+=($!)
    victim=$!
    wait_for "$tmp/join$round.log" 'joins the job at step' 60 ||
        { cat "$tmp/churn.log" "$tmp/join$round.log"; fail "round $round: the new worker was not admitted"; }
    echo "  round $round: $(grep -h 'joins the job at step' "$tmp/join$round.log")"
done
status=0
wait $job || status=$?
job=
[[ $status -eq 0 ]] || { cat "$tmp/churn.log"; fail "the job exited $status"; }
# the last joiner was never killed; the four before it were
wait "$victim" || { cat "$tmp/join5.log"; fail "the last worker to join exited $?"; }
grep -E 'lost|joins the job|joined|go on|pushes per worker|^test_loss' "$tmp/churn.log" | sed 's/^/  /'
quiet=$(accuracy "$tmp/quiet.log") got=$(accuracy "$tmp/churn.log")
awk -v a="$quiet" -v b="$got" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.5) }' ||
    fail "test accuracy $got% after five rounds of churn, $quiet% undisturbed (more than 0.5 points)"
echo "PASS: five rounds of a worker killed and another joining (--secure on): status 0, test accuracy $got% (undisturbed $quiet%)"
