#!/usr/bin/env bash
# test_link_drop.sh PSTRAIN: a link drops, on three "hosts" (network namespaces; see
# README.md). A sync job of 1 server and 2 workers launched with launch/pstrain across the
# 3 hosts (--peer-timeout 10) loses host 3's cable for 4 s mid-job (`ip link set ... down`,
# then up). The job must either ride it out (status 0 and a test accuracy) or stop as after
# a lost peer (a non-zero status, one line naming the lost peer, a last checkpoint that
# reads); it must never hang. Prints the outcome and its timing.
# Exit: 0 pass, 1 fail, 77 skip (no namespaces).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"
fail() { echo "FAIL: $*"; exit 1; }

start=$(date +%s)
RUN_JOB_GRACE=15 timeout -k 5 240 "$root/launch/pstrain" --hostfile "$PSTRAIN_HOSTFILE" \
    --rsh "$agent" --build "$build" --data "$data" train --model mnist_cnn --servers 1 \
    --epochs 1 --max-steps 500 --peer-timeout 10 --timeout 20 --progress 0 \
    --checkpoint-dir "$tmp/ck" --checkpoint-every 40 >"$tmp/job.log" 2>&1 &
job=$!
for _ in $(seq 1200); do # until a checkpoint past step 80
    n=$(sed -n 's/^ckpt-\([0-9]*\)\.h5$/\1/p' "$tmp/ck/latest" 2>/dev/null || true)
    [[ -n $n && $n -ge 80 ]] && break
    sleep 0.1
done
[[ -n ${n:-} && $n -ge 80 ]] || { kill -9 $job; cat "$tmp/job.log"; fail "no checkpoint past 80"; }
ip link set "$PSTRAIN_LINK_3" down
cut=$(date +%s)
sleep 4
ip link set "$PSTRAIN_LINK_3" up
status=0
wait $job || status=$?
end=$(date +%s)
[[ $status -ne 124 && $status -ne 137 ]] || { cat "$tmp/job.log"; fail "the job hung"; }
grep -E 'lost|^pstrain: worker|^test_loss|stopped at' "$tmp/job.log" | sed 's/^/  /' || true
if [[ $status -eq 0 ]]; then
    grep -q '^test_loss: .* test_accuracy: ' "$tmp/job.log" || fail "status 0 but no test accuracy"
    echo "PASS: ${hosts[2]}'s link down for 4 s after step $n: the job rode it out and finished" \
        "$((end - cut)) s after the cut ($(grep -o 'test_accuracy: [0-9.]*' "$tmp/job.log"))"
else
    grep -qE 'lost' "$tmp/job.log" || { cat "$tmp/job.log"; fail "status $status with no line naming a lost peer"; }
    "$tmp/build/pstrain" inspect "$tmp/ck" >/dev/null || fail "the last checkpoint does not read"
    echo "PASS: ${hosts[2]}'s link down for 4 s after step $n: the job stopped with status" \
        "$status $((end - cut)) s after the cut; $(cat "$tmp/ck/latest") reads"
fi
