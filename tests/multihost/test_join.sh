#!/usr/bin/env bash
# test_join.sh PSTRAIN: workers that join a running job, on three "hosts" (network
# namespaces; see README.md). launch/pstrain starts 1 server and 2 workers on hosts 1 and 2
# with --max-workers 4; during epoch 1, two more workers join from host 3 with `launch/pstrain
# --hosts HOST3:2 join JOBFILE` (pstrain train --join, no mpirun). They must be admitted at the end of epoch 1, push from epoch 2
# on (the server's pushes per worker show all four), and the job must end with status 0
# within 0.3 points of the same job started with 4 workers. Exit: 0 pass, 1 fail, 77 skip.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"
fail() { echo "FAIL: $*"; exit 1; }
train=(train --model mnist_cnn --servers 1 --epochs 2 --timeout 20 --peer-timeout 5 --progress 0)
launch() { # launch HOSTFILE LOG FLAGS...
    local hostfile=$1 log=$2
    shift 2
    RUN_JOB_GRACE=10 timeout -k 5 300 "$root/launch/pstrain" --hostfile "$hostfile" --rsh "$agent" \
        --build "$build" --data "$data" "${train[@]}" "$@" >"$log" 2>&1
}
accuracy() { sed -n 's/^test_loss.*test_accuracy: \([0-9.]*\).*/\1/p' "$1" | awk '{print $1 * 100}'; }

# The reference: 4 workers from the start (hosts 1 and 2, 5 ranks).
printf '%s slots=3\n%s slots=2\n' "${hosts[0]}" "${hosts[1]}" >"$tmp/five"
launch "$tmp/five" "$tmp/four.log" || { cat "$tmp/four.log"; fail "the 4-worker job failed"; }

printf '%s slots=2\n%s slots=1\n' "${hosts[0]}" "${hosts[1]}" >"$tmp/three"
launch "$tmp/three" "$tmp/job.log" --max-workers 4 --job-file "$tmp/job.json" &
job=$!
for _ in $(seq 600); do [[ -f $tmp/job.json ]] && grep -q '^Epoch 1/2' "$tmp/job.log" && break; sleep 0.1; done
[[ -f $tmp/job.json ]] || { cat "$tmp/job.log"; fail "no job file"; }
[[ $(stat -c %a "$tmp/job.json") == 600 ]] || fail "the job file's mode is $(stat -c %a "$tmp/job.json"), not 600"
# host 3: two more workers, no mpirun (launch/pstrain join: the job file over the remote shell)
"$root/launch/pstrain" --hosts "${hosts[2]}:2" --rsh "$agent" --build "$build" --data "$data" \
    join "$tmp/job.json" --threads 1 >"$tmp/join.log" 2>&1 &
joiners=$!
status=0
wait $job || status=$?
wait $joiners || { cat "$tmp/join.log"; fail "launch/pstrain join exited $?"; }
grep -hE 'asks to join|joins the job|joined|pushes per worker|^test_loss' "$tmp/job.log" "$tmp/join.log" | sed 's/^/  /'
[[ $status -eq 0 ]] || { cat "$tmp/job.log"; fail "launch/pstrain exited $status"; }
pushes=$(sed -n 's/^server 0: pushes per worker: //p' "$tmp/job.log")
read -r -a per <<<"$pushes"
((${#per[@]} == 4)) || fail "pushes per worker: '$pushes', expected 4 workers"
for n in "${per[@]}"; do ((n > 0)) || fail "a worker did not push: $pushes"; done
four=$(accuracy "$tmp/four.log") got=$(accuracy "$tmp/job.log")
awk -v a="$four" -v b="$got" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.3) }' ||
    fail "test accuracy $got% with two joining, $four% with 4 from the start (more than 0.3 points)"
echo "PASS: two workers joined from host ${hosts[2]}; pushes per worker $pushes; test accuracy $got% (4 from the start: $four%)"
