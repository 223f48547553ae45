#!/usr/bin/env bash
# test_gan_worker_loss.sh PSTRAIN: a GAN's worker SIGKILLed mid-epoch. A sync job of 1 server
# and 3 workers trains mnist_gan for 2 epochs on a tenth of the training images
# (--val-split 0.9) with --peer-timeout 3; worker 2 is killed in the first epoch. As for the
# classifiers (test_worker_loss.sh), the job must finish with status 0, say it goes on
# without the worker, and split the data between the two survivors from epoch 2: each then
# takes half of the images, so an epoch has the steps of half the share, not a third.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT
log=$tmp/gan.log
batch=32

job 1 3 "$log" --model mnist_gan --epochs 2 --val-split 0.9 --batch $batch --peer-timeout 3 \
    --metrics "$tmp/m.jsonl" \
    --mode sync
wait_for "$log" '^Epoch 1/2' 60 || { cat "$log"; fail "the job did not start its first epoch"; }
sleep 4 # into epoch 1
victim=$(rank_pid "$tmp" 3) || fail "no rank 3 under mpirun $job"
kill -KILL "$victim"
status=0
wait $job || status=$?
job=
[[ $status -eq 0 ]] || { cat "$log"; fail "the job exited $status after the kill"; }
grep -q 'worker 2 lost' "$log" || { cat "$log"; fail "the server did not say it lost worker 2"; }
line=$(grep -E '^2 of 3 workers go on: from epoch 2 each takes 1/2 of the data' "$log") ||
    { cat "$log"; fail "the survivors did not take over the data"; }
# The banner's image count is the training images (3 shares of a third).
images=$(sed -n 's/^mnist_gan: \([0-9]*\) images;.*/\1/p' "$log")
steps=$(echo "$line" | sed -n 's/.*, \([0-9]*\) steps an epoch$/\1/p')
[[ -n $images && -n $steps ]] || { cat "$log"; fail "no image count or steps in the log"; }
third=$(((images / 3 + batch - 1) / batch)) half=$(((images / 2 + batch - 1) / batch))
((steps >= half - 1 && steps <= half + 1)) ||
    fail "epoch 2 has $steps steps a worker; half of $images images is $half steps (a third: $third)"
grep -q '^trained [0-9]* steps' "$log" || { cat "$log"; fail "the job did not finish its epochs"; }
grep -E 'lost|go on|^trained' "$log" | sed 's/^/  /'
echo "PASS: a GAN's worker killed in epoch 1: status 0; from epoch 2 the two survivors take $steps steps an epoch each (a third was $third)"
