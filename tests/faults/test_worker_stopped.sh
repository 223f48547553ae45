#!/usr/bin/env bash
# test_worker_stopped.sh PSTRAIN: a worker SIGSTOPped past --peer-timeout, then continued,
# ends the job as a SIGKILLed one does (test_worker_loss.sh). A sync job of 1 server and 2
# workers (--peer-timeout 3, 2 epochs) has worker 1 (rank 2) stopped in its first epoch until
# the server has declared it lost, and 3 s more: the server goes on without it, the job
# finishes, and its status is 0, as the launcher's policy states (launch/lib.sh, run_job: a
# lost worker ends only itself), whatever the continued worker's own end; the launcher says
# when it leaves that worker's status out.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
job='' victim=''
trap '[[ -n $victim ]] && kill -CONT $victim 2>/dev/null; [[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT
log=$tmp/job.log

job 1 2 "$log" --model mnist_cnn --epochs 2 --val-split 0.5 --peer-timeout 3 --mode sync \
    --metrics "$tmp/m.jsonl"
wait_for "$log" '^Epoch 1/2' 60 || { cat "$log"; fail "the job did not start its first epoch"; }
sleep 1
victim=$(rank_pid "$tmp" 2) || fail "no rank 2 under mpirun $job"
kill -STOP "$victim"
wait_for "$log" '^server 0: worker 1 lost' 20 || { cat "$log"; fail "the server did not say it lost worker 1"; }
sleep 3
kill -CONT "$victim"
victim=''
status=0
wait $job || status=$?
job=''
grep -E 'lost|^pstrain|^launch|^test_loss' "$log" | sed 's/^/  /'
grep -q '^test_loss' "$log" || { cat "$log"; fail "the job did not finish"; }
worker=$(sed -n 's/^pstrain: rank 2 ends with status \([0-9]*\)$/\1/p' "$log")
[[ -n $worker ]] || fail "the continued worker (rank 2) did not say how it ended"
[[ $status -eq 0 ]] || fail "the job exited $status (a SIGKILLed worker leaves 0: the two must agree)"
if ((worker != 0)); then
    grep -q "^launch/run-local: rank 2 (worker 1) ended with status $worker after the servers had gone on without it" "$log" ||
        fail "the launcher did not say it left out rank 2's status $worker"
fi
echo "PASS: worker 1 stopped past --peer-timeout, then continued (it ended with status $worker): the job exited 0, as with a SIGKILL"
