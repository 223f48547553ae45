#!/usr/bin/env bash
# test_host_loss.sh PSTRAIN: a preempted VM, on three "hosts" (network namespaces; see
# README.md). A job launched with launch/pstrain across the 3 hosts, with --on-worker-loss
# abort, checkpoints every 40 steps; every process on host 3 (a worker, and Open MPI's
# daemon) is SIGKILLed mid-job; the job must checkpoint and stop within the peer timeout and
# launch/pstrain exit 75 (nothing hangs, not even mpirun waiting for the dead daemon); the
# same launch line on the 2 remaining hosts with --resume auto goes on from that checkpoint
# and finishes with a test accuracy. (Without abort the job would go on: test_worker_loss.)
# Exit: 0 pass, 1 fail, 77 skip (no namespaces).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"
fail() { echo "FAIL: $*"; exit 1; }
# The same line both times: only the hosts differ.
launch() { # launch HOSTFILE LOG
    RUN_JOB_GRACE=10 timeout -k 5 200 "$root/launch/pstrain" --hostfile "$1" --rsh "$agent" --build "$build" \
        --data "$data" train --model mnist_cnn --servers 1 --epochs 1 --max-steps 300 \
        --timeout 20 --peer-timeout 5 --on-worker-loss abort --progress 0 \
        --checkpoint-dir "$tmp/ck" --checkpoint-every 40 --resume auto >"$2" 2>&1
}

start=$(date +%s)
launch "$PSTRAIN_HOSTFILE" "$tmp/first.log" &
job=$!
for _ in $(seq 1200); do # until a checkpoint past step 80
    n=$(sed -n 's/^ckpt-\([0-9]*\)\.h5$/\1/p' "$tmp/ck/latest" 2>/dev/null || true)
    [[ -n $n && $n -ge 80 ]] && break
    sleep 0.1
done
[[ -n ${n:-} && $n -ge 80 ]] || { kill -9 $job; cat "$tmp/first.log"; fail "no checkpoint past 80"; }
# Host 3 (a worker) vanishes: every process in its namespace dies at once.
ip netns pids "${netns[2]}" | xargs -r kill -9
status=0
wait $job || status=$?
took=$(($(date +%s) - start))
[[ $status -ne 124 && $status -ne 137 ]] || { cat "$tmp/first.log"; fail "the job hung"; }
[[ $status -eq 75 ]] || { cat "$tmp/first.log"; fail "launch/pstrain exited $status, not 75 (stopped after a checkpoint)"; }
grep -E 'lost|stopped at' "$tmp/first.log" | sed 's/^/  /'
latest=$(cat "$tmp/ck/latest")
echo "host ${hosts[2]} killed after $latest: mpirun exited $status (${took} s after the start)"

printf '%s slots=1\n%s slots=2\n' "${hosts[0]}" "${hosts[1]}" >"$tmp/two-hosts"
launch "$tmp/two-hosts" "$tmp/second.log" || { cat "$tmp/second.log"; fail "the restart failed"; }
grep -v 'setpgid' "$tmp/second.log" | grep -E '^resuming|test_accuracy|checked|^ +10\.' || true
step=$(sed 's/^ckpt-\([0-9]*\)\.h5$/\1/' <<<"$latest")
grep -q "^resuming at step $step:" "$tmp/second.log" ||
    fail "the restart did not resume from $latest"
grep -q '^test_loss: .* test_accuracy: ' "$tmp/second.log" || fail "no test accuracy"
echo "PASS: restarted with --resume auto on ${hosts[0]} and ${hosts[1]} from $latest; finished"
