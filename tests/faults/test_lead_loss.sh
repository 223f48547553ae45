#!/usr/bin/env bash
# test_lead_loss.sh PSTRAIN: the lead (worker 0: it writes checkpoints and reports) SIGKILLed
# mid-epoch. A sync job of 1 server and 3 workers trains mnist_cnn for 2 epochs with
# --checkpoint-every 50 and --peer-timeout 3; worker 0 is killed in the first epoch. Worker 1
# must announce that it leads, write at least one checkpoint after the loss (one that loads
# and is past the kill), report the epochs and the test accuracy, and the job must end with
# status 0. Then the same for a GAN (two parts), whose new lead also draws the grids, and a
# lead that is SIGSTOPped, whose lock on the directory stays held.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT

# lose_lead NAME TRAIN_FLAGS...: the job, its lead killed in epoch 1 once it has written its
# first checkpoint (not after a time: an epoch of the CNN takes a few seconds, and less as
# pstrain gets faster); checks the handover and prints the steps at the kill and at the first
# checkpoint after it.
lose_lead() {
    local name=$1 log=$tmp/$1.log ck=$tmp/$1-ckpt
    shift
    job 1 3 "$log" --epochs 2 --peer-timeout 3 --checkpoint-dir "$ck" --checkpoint-every 50 \
        --metrics "$tmp/$name.jsonl" "$@"
    wait_for "$log" '^checkpoint at step' 60 ||
        { cat "$log"; fail "$name: the job wrote no checkpoint in epoch 1"; }
    victim=$(rank_pid "$tmp" 1) || fail "$name: no rank 1 under mpirun $job"
    kill -KILL "$victim"
    local status=0
    wait $job || status=$?
    job=
    [[ $status -eq 0 ]] || { cat "$log"; fail "$name: the job exited $status after the lead's loss"; }
    grep -q 'worker 0 lost' "$log" || { cat "$log"; fail "$name: the server did not say it lost worker 0"; }
    local leads
    leads=$(grep -E '^worker 1 leads from step [0-9]+: worker 0, which led, was lost' "$log") ||
        { cat "$log"; fail "$name: no worker announced that it leads"; }
    local from=${leads#worker 1 leads from step } after
    from=${from%%:*}
    # a checkpoint gathered after the announcement, and written
    after=$(sed -n '/^worker 1 leads from step/,$p' "$log" |
        sed -n 's/^checkpoint at step \([0-9]*\): state gathered.*/\1/p' | head -n1)
    [[ -n $after ]] || { cat "$log"; fail "$name: no checkpoint after the lead was lost"; }
    ((after >= from)) || fail "$name: the checkpoint after the loss is at step $after, before $from"
    "$pstrain" inspect "$ck" >"$tmp/$name.inspect" 2>&1 ||
        { cat "$tmp/$name.inspect"; fail "$name: the newest checkpoint does not load"; }
    grep -E 'lost|leads|go on|^checkpoint at|^test_loss|^trained|moving average' "$log" | sed "s/^/  $name: /"
    echo "PASS: $name: worker 0 killed; worker 1 leads from step $from and checkpointed at step $after; status 0"
}

lose_lead cnn --model mnist_cnn --val-split 0.5
grep -q '^test_loss' "$tmp/cnn.log" || fail "cnn: no test accuracy reported"
grep -q '"epoch": *2' "$tmp/cnn.jsonl" || grep -q '"epoch":2' "$tmp/cnn.jsonl" ||
    { cat "$tmp/cnn.jsonl"; fail "cnn: the new lead wrote no metrics line for epoch 2"; }

lose_lead gan --model mnist_gan --val-split 0.9 --batch 32 --samples "$tmp/samples"
grep -q '^trained [0-9]* steps' "$tmp/gan.log" || fail "gan: the new lead did not finish"
ls "$tmp/samples" | grep -q 2 || { ls -l "$tmp/samples"; fail "gan: no grid of epoch 2 from the new lead"; }

# A lead that is cut off but lives (SIGSTOP: silent past the peer timeout, no reset) still
# holds the checkpoint directory's lock: the new lead says it leads without checkpoints and
# the job goes on to its end, instead of losing its new lead too.
log=$tmp/stopped.log
job 1 3 "$log" --model mnist_cnn --epochs 1 --val-split 0.5 --peer-timeout 3 \
    --checkpoint-dir "$tmp/stopped-ckpt" --checkpoint-every 50
wait_for "$log" '^checkpoint at step' 60 || { cat "$log"; fail "stopped: no first checkpoint"; }
victim=$(rank_pid "$tmp/stopped-ckpt" 1) || fail "stopped: no rank 1 under mpirun $job"
kill -STOP "$victim"
wait_for "$log" '^test_loss' 120 || { kill -KILL "$victim" 2>/dev/null || true; cat "$log"; fail "stopped: the job did not finish"; }
kill -KILL "$victim" 2>/dev/null || true # mpirun would wait for it
status=0
wait $job || status=$?
job=
[[ $status -eq 0 ]] || { cat "$log"; fail "stopped: the job exited $status"; }
grep -q '^worker 1 leads from step' "$log" || { cat "$log"; fail "stopped: no new lead"; }
grep -q 'worker 1: leads without checkpoints: .*in use by another job' "$log" ||
    { cat "$log"; fail "stopped: the new lead did not say it leads without checkpoints"; }
grep -E 'lost|leads|^test_loss' "$log" | sed 's/^/  stopped: /'
echo "PASS: a lead SIGSTOPped (its lock held): worker 1 leads without checkpoints; status 0"
