#!/usr/bin/env bash
# test_server_loss.sh PSTRAIN: a server SIGKILLed mid-job. A job of 2 servers and 2 workers
# (--peer-timeout 3, a checkpoint every 100 steps) loses server 1 after its second
# checkpoint: every worker and the other server must stop within the timeout and some
# seconds, with a line naming server 1 and its endpoint; mpirun must exit non-zero; the last
# checkpoint must still read; and the same command with --resume auto finishes the job.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT
train=(--model mnist_cnn --epochs 2 --val-split 0.7 --peer-timeout 3
    --checkpoint-dir "$tmp/ck" --checkpoint-every 100 --resume auto)

job 2 2 "$tmp/first.log" "${train[@]}"
wait_for "$tmp/first.log" 'ckpt-200.h5: step 200, written' 60 || { cat "$tmp/first.log"; fail "no second checkpoint"; }
endpoint=$(sed -n 's/^server 1 at \(tcp:.*\)$/\1/p' "$tmp/first.log")
victim=$(rank_pid "$tmp" 1) || fail "no rank 1 under mpirun $job"
kill -KILL "$victim"
killed=$(date +%s.%N)
status=0
wait $job || status=$?
job=
took=$(echo "$(date +%s.%N) - $killed" | bc)
grep -E 'lost|failure|^pstrain' "$tmp/first.log" | sed 's/^/  /'
[[ $status -ne 0 ]] || fail "mpirun exited 0 after losing a server"
for w in 0 1; do
    grep -q "^pstrain: worker $w: server 1 at $endpoint lost" "$tmp/first.log" ||
        fail "worker $w did not name server 1 at $endpoint"
done
awk -v t="$took" 'BEGIN { exit !(t < 20) }' || { cat "$tmp/first.log"; fail "the job took $took s to stop (peer timeout 3 s)"; }
latest=$(cat "$tmp/ck/latest")
"$pstrain" inspect "$tmp/ck" >"$tmp/inspect.log" 2>&1 || { cat "$tmp/inspect.log"; fail "the last checkpoint ($latest) does not read"; }
printf 'PASS: server 1 killed after step 200: mpirun exited %d, %.1f s later; %s reads\n' \
    "$status" "$took" "$latest"

job 2 2 "$tmp/second.log" "${train[@]}"
status=0
wait $job || status=$?
job=
[[ $status -eq 0 ]] || { cat "$tmp/second.log"; fail "--resume auto exited $status"; }
grep -E '^resuming|^test_loss' "$tmp/second.log" | sed 's/^/  /'
grep -q '^resuming at step [1-9]' "$tmp/second.log" || fail "the second run did not resume"
echo "PASS: --resume auto finished the job with $(accuracy "$tmp/second.log")% test accuracy"
