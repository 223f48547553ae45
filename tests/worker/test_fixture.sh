#!/usr/bin/env bash
# test_fixture.sh PSTRAIN: a checkpoint written by pstrain before the redesign of issue 17
# (tests/fixtures/mnist_cnn-step20.h5: mnist_cnn, one process, RMSprop, 20 steps, a026ab0)
# still loads, inspects, evaluates and resumes as it did then:
#  1. inspect shows its model, step, run and optimizer;
#  2. eval gives the accuracy that build printed (0.7555 on 10000 test images: a count of
#     right answers, the same on every OpenBLAS kernel short of a tie within rounding) and
#     its loss to rounding (1.0875);
#  3. training resumes at step 20 with the checkpoint's RMSprop, and goes on to step 40.
# That the results are the old build's bit for bit is tests/acceptance/bit-identity's check.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
fixture=$(cd "$(dirname "$0")/.." && pwd)/fixtures/mnist_cnn-step20.h5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$pstrain" inspect "$fixture" >"$tmp/inspect.log" 2>&1 || { cat "$tmp/inspect.log"; fail "inspect"; }
for want in 'model mnist_cnn, 225034 floats' 'progress: step 20, epoch 1' \
    'run: mode local, staleness 2, batch 32 per worker, seed 1, servers 0, workers 1' \
    'optimizer: rmsprop (lr 0.001, rho 0.9'; do
    grep -qF "$want" "$tmp/inspect.log" || { cat "$tmp/inspect.log"; fail "inspect does not say '$want'"; }
done
echo "PASS: inspect reads the old checkpoint: $(sed -n 1p "$tmp/inspect.log")"

"$pstrain" eval "$fixture" --data "$data" --threads 1 >"$tmp/eval.log" 2>&1 || { cat "$tmp/eval.log"; fail "eval"; }
line=$(grep '^mnist_cnn at step 20: test_loss: ' "$tmp/eval.log") || { cat "$tmp/eval.log"; fail "no eval line"; }
loss=$(echo "$line" | sed -n 's/.*test_loss: \([0-9.]*\).*/\1/p')
[[ $line == *"test_accuracy: 0.7555 (10000 samples, "*" samples/s)" ]] || fail "eval: '$line', expected test_accuracy 0.7555"
awk -v l="$loss" 'BEGIN { d = l - 1.0875; exit !(d < 0.00015 && d > -0.00015) }' ||
    fail "eval: test_loss $loss, expected 1.0875"
echo "PASS: eval of the old checkpoint: $line"

"$pstrain" train --model mnist_cnn --resume "$fixture" --max-steps 40 --epochs 1 --threads 1 \
    --progress 0 --data "$data" --checkpoint-dir "$tmp/ck" >"$tmp/train.log" 2>&1 ||
    { cat "$tmp/train.log"; fail "resuming the old checkpoint"; }
grep -q '^resuming at step 20: epoch 1, step 20 of ' "$tmp/train.log" &&
    grep -q 'parameters; batch 32; rmsprop:lr=0.001,' "$tmp/train.log" &&
    [[ $(cat "$tmp/ck/latest") == ckpt-40.h5 ]] ||
    { cat "$tmp/train.log"; fail "the old checkpoint did not resume at step 20 with its RMSprop up to step 40"; }
echo "PASS: the old checkpoint resumes at step 20 with its RMSprop; $(grep '^test_loss' "$tmp/train.log")"
