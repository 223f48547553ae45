#!/usr/bin/env bash
# test_diverge.sh PSTRAIN: a run that diverges stops at the first non-finite loss or gradient
# with one line naming the step (and the tensor), a non-zero status, and its last good
# checkpoint kept, instead of training on NaN to status 0.
#
# The divergence is real and deterministic: mnist_gan whose discriminator's Adam has
# lr=10, beta1=0.99999, beta2=0, epsilon=1e-12 (all inside the flags' bounds). Where a
# weight's gradient is 0 for a step (dropout), its update is m / epsilon: the weights jump by
# orders of magnitude and the losses are NaN within a few steps. The classifiers' flags cannot
# do this (--optimizer adam|rmsprop with --lr <= 10 keeps every update near lr: their ReLUs
# die and the loss stays finite), so a GAN it is.
#  1. One process, a checkpoint every 2 steps: status 1, the line, no checkpoint after the
#     bad step, the last one is the one the line names, it inspects with finite values, and
#     a run resumed from it trains the step it was taken before (status 0).
#  2. Resumed from that checkpoint, the run meets the same step and names the same kept
#     checkpoint (the one it resumed from).
#  3. A job of 1 server and 2 workers (launch/run-local): status non-zero, a worker's line,
#     the server says it ended on a failure, the lead's line names a checkpoint not after
#     its bad step, and every checkpoint holds finite values.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=../faults/lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/../faults/lib.sh"
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT

disc=adam:lr=10,beta1=0.99999,beta2=0,epsilon=1e-12
diverge=(--model mnist_gan --epochs 1 --max-steps 40 --gen-optim adam:lr=1e-4 --disc-optim "$disc")
# the line: a loss (with the first non-finite gradient when there is one) or a gradient
val='(nan|inf|-inf)' net='(generator|discriminator)'
loss_re="$net loss is $val( \\(the first non-finite gradient: [^)]*\\))?"
grad_re="non-finite gradient in [^ ]+( of the $net)? \\($val\\)"
line_re="step ([0-9]+): (($loss_re)|($grad_re))"

# checkpoints DIR: the steps of DIR's checkpoints, ascending.
checkpoints() {
    find "$1" -maxdepth 1 -name 'ckpt-*.h5' -printf '%f\n' | sed -n 's/^ckpt-\([0-9]*\)\.h5$/\1/p' |
        sort -n
}

# finite DIR STEP: DIR's ckpt-STEP.h5 loads, and its values are finite.
finite() {
    "$pstrain" inspect "$1/ckpt-$2.h5" >"$tmp/inspect.log" 2>&1 ||
        { cat "$tmp/inspect.log"; fail "$1/ckpt-$2.h5 does not load"; }
    ! grep -qiE '\bnan\b|\binf\b' "$tmp/inspect.log" ||
        { cat "$tmp/inspect.log"; fail "$1/ckpt-$2.h5 holds non-finite values"; }
}

# kept LOG DIR [newest]: the first line in LOG that names the checkpoint kept names one of DIR
# not after the line's step (ckpt-S holds the weights of S steps done: those step S, 0-based
# as the line counts, starts from); with "newest", DIR's newest. Every checkpoint of DIR
# loads with finite values.
kept() {
    local log=$1 dir=$2 line named bad step
    line=$(grep -E 'the last checkpoint \(step [0-9]+\) is kept' "$log" | head -1)
    [[ -n $line ]] || { cat "$log"; fail "no line names the checkpoint kept"; }
    named=$(sed -n 's/.*the last checkpoint (step \([0-9]*\)) is kept.*/\1/p' <<<"$line")
    bad=$(sed -n 's/.* step \([0-9]*\): .*/\1/p' <<<"$line")
    [[ -f $dir/ckpt-$named.h5 ]] || fail "the line keeps step $named: no $dir/ckpt-$named.h5"
    ((named <= bad)) || fail "the line keeps step $named, after its bad step $bad"
    [[ ${3:-} != newest || $(checkpoints "$dir" | tail -1) == "$named" ]] ||
        fail "the line keeps step $named, the newest in $dir is $(checkpoints "$dir" | tail -1)"
    for step in $(checkpoints "$dir"); do finite "$dir" "$step"; done
}

# 1. One process.
status=0
"$pstrain" train "${diverge[@]}" --threads 1 --progress 0 --data "$data" \
    --checkpoint-dir "$tmp/one" --checkpoint-every 2 >"$tmp/one.log" 2>&1 || status=$?
((status == 1)) || { cat "$tmp/one.log"; fail "one process: status $status, expected 1"; }
grep -qE "^pstrain: $line_re; the job stops before applying" "$tmp/one.log" ||
    { cat "$tmp/one.log"; fail "one process: no line naming the step"; }
bad=$(grep -oE "^pstrain: $line_re" "$tmp/one.log" | sed -n 's/^pstrain: step \([0-9]*\):.*/\1/p')
kept "$tmp/one.log" "$tmp/one" newest
good=$(checkpoints "$tmp/one" | tail -1)
grep -E '^pstrain: ' "$tmp/one.log" | sed 's/^/  one process: /'
"$pstrain" train "${diverge[@]}" --threads 1 --progress 0 --data "$data" \
    --resume "$tmp/one/ckpt-$good.h5" --max-steps $((good + 1)) >"$tmp/next.log" 2>&1 ||
    { cat "$tmp/next.log"; fail "a run resumed from ckpt-$good.h5 failed its step $good"; }

# 2. Resumed: the same step, the checkpoint it resumed from kept.
cp -r "$tmp/one" "$tmp/again"
status=0
"$pstrain" train "${diverge[@]}" --threads 1 --progress 0 --data "$data" \
    --checkpoint-dir "$tmp/again" --checkpoint-every 2 --resume auto >"$tmp/again.log" 2>&1 ||
    status=$?
((status == 1)) || { cat "$tmp/again.log"; fail "resumed: status $status, expected 1"; }
grep -qE "^pstrain: step $bad: .*the last checkpoint \(step $good\) is kept" "$tmp/again.log" ||
    { cat "$tmp/again.log"; fail "resumed: no line naming step $bad and checkpoint $good"; }
[[ $(checkpoints "$tmp/again" | tail -1) == "$good" ]] ||
    fail "resumed: a checkpoint after step $good"

# 3. A parameter-server job.
job 1 2 "$tmp/ps.log" "${diverge[@]}" --checkpoint-dir "$tmp/ps" --checkpoint-every 2
status=0
wait $job || status=$?
job=
((status != 0)) || { cat "$tmp/ps.log"; fail "job: status 0"; }
grep -qE "^pstrain: worker [01]: $line_re; this worker stops without pushing" "$tmp/ps.log" ||
    { cat "$tmp/ps.log"; fail "job: no worker's line naming the step"; }
grep -qE '^server 0: worker [01] lost: it ended on a failure: step [0-9]+' "$tmp/ps.log" ||
    { cat "$tmp/ps.log"; fail "job: the server did not drop the worker for it"; }
# the lead names the checkpoint kept (the other worker may not know one); a worker that
# went on after another's end (and may lead now) checkpoints weights that never met its
# gradient, so a later checkpoint may be there, finite
kept "$tmp/ps.log" "$tmp/ps"
grep -E '^pstrain: (worker|rank)' "$tmp/ps.log" | sed 's/^/  job: /'
echo "PASS: one process stopped at step $bad with ckpt-$good.h5 kept; the job ended with $status"
