#!/usr/bin/env bash
# test_host_loss_replica.sh PSTRAIN: a preempted VM that held a server, with --replicas 1, on
# three "hosts" (network namespaces; see README.md). launch/pstrain runs 2 servers and 3
# workers (--map-by node: servers on hosts 1 and 2, a worker on each host); every process on
# host 2 (server 1, a worker and Open MPI's daemon) is SIGKILLed mid-job. Server 1's copy on
# server 0 must take its shard over, the two workers left go on, and the job must finish
# with a test accuracy and launch/pstrain exit 0 (nothing hangs, not even mpirun waiting
# for the dead daemon). Exit: 0 pass, 1 fail, 77 skip (no namespaces).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"
fail() { echo "FAIL: $*"; exit 1; }
printf '%s slots=2\n%s slots=2\n%s slots=1\n' "${hosts[0]}" "${hosts[1]}" "${hosts[2]}" >"$tmp/hosts"
start=$(date +%s)
RUN_JOB_GRACE=10 timeout -k 5 300 "$root/launch/pstrain" --hostfile "$tmp/hosts" --rsh "$agent" \
    --build "$build" --data "$data" train --model mnist_cnn --servers 2 --replicas 1 --epochs 1 \
    --max-steps 400 --timeout 20 --peer-timeout 5 --progress 0 >"$tmp/job.log" 2>&1 &
job=$!
for _ in $(seq 1200); do # until the first epoch is well under way
    grep -q '^Epoch 1/1' "$tmp/job.log" && break
    sleep 0.1
done
sleep 6
ip netns pids "${netns[1]}" | xargs -r kill -9 # host 2: server 1, a worker, orted
status=0
wait $job || status=$?
took=$(($(date +%s) - start))
[[ $status -ne 124 && $status -ne 137 ]] || { cat "$tmp/job.log"; fail "the job hung"; }
grep -E 'lost|copy|takes its shard|go on|^test_loss' "$tmp/job.log" | grep -v setpgid | sed 's/^/  /'
[[ $status -eq 0 ]] || { cat "$tmp/job.log"; fail "launch/pstrain exited $status, not 0"; }
grep -q 'a backup takes its shard over' "$tmp/job.log" || fail "server 1's copy did not take over"
grep -q '^test_loss: .* test_accuracy: ' "$tmp/job.log" || fail "no test accuracy"
echo "PASS: host ${hosts[1]} (server 1, a worker, orted) killed; the copy took over; finished with status 0 in ${took} s"
