#!/usr/bin/env bash
# test_fifo.sh PSTRAIN: a FIFO where a data file, a checkpoint or a checkpoint directory's
# latest is expected is refused at once (issue 19: check, inspect and train waited for ever
# for a writer). Each command ends within `timeout 20` with status 2 and one line
# "PATH: expected a regular file, found a FIFO".
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

# refused WHAT FIFO CMD...: CMD ends within 20 s, status 2, its message names FIFO as a FIFO
refused() {
    local what=$1 fifo=$2 rc=0
    shift 2
    timeout 20 "$@" >"$tmp/out" 2>&1 </dev/null || rc=$?
    [[ $rc -ne 124 ]] || fail "$what: still waiting after 20 s"
    [[ $rc -eq 2 ]] || { cat "$tmp/out"; fail "$what: status $rc, expected 2"; }
    grep -qF -- "$fifo: expected a regular file, found a FIFO" "$tmp/out" ||
        { cat "$tmp/out"; fail "$what: no refusal naming $fifo"; }
    echo "PASS: $what: $(grep -F -- "$fifo" "$tmp/out")"
}

# MNIST with its test labels a FIFO: check and train.
mkdir -p "$tmp/d/mnist"
for f in "$data"/mnist/*; do ln -s "$f" "$tmp/d/mnist/"; done
rm -f "$tmp/d/mnist/t10k-labels-idx1-ubyte"
mkfifo "$tmp/d/mnist/t10k-labels-idx1-ubyte"
fifo=$tmp/d/mnist/t10k-labels-idx1-ubyte
refused "check, MNIST labels" "$fifo" "$pstrain" check --model mnist_cnn --data "$tmp/d"
refused "train, MNIST labels" "$fifo" "$pstrain" train --model mnist_cnn --data "$tmp/d" \
    --epochs 1 --max-steps 2 --threads 1 --progress 0

# IMDB's reviews.json a FIFO: check and train.
mkdir -p "$tmp/d/imdb"
mkfifo "$tmp/d/imdb/reviews.json"
refused "check, IMDB reviews" "$tmp/d/imdb/reviews.json" "$pstrain" check --model imdb_lstm \
    --data "$tmp/d"
refused "train, IMDB reviews" "$tmp/d/imdb/reviews.json" "$pstrain" train --model imdb_lstm \
    --data "$tmp/d" --epochs 1 --max-steps 2 --threads 1 --progress 0

# A checkpoint file a FIFO: inspect, eval, train --resume FILE.
mkfifo "$tmp/ck.h5"
refused "inspect, checkpoint" "$tmp/ck.h5" "$pstrain" inspect "$tmp/ck.h5"
refused "eval, checkpoint" "$tmp/ck.h5" "$pstrain" eval "$tmp/ck.h5" --data "$data" --threads 1
refused "train --resume FILE" "$tmp/ck.h5" "$pstrain" train --model mnist_cnn \
    --resume "$tmp/ck.h5" --data "$data" --epochs 1 --max-steps 2 --threads 1 --progress 0

# A checkpoint directory whose latest is a FIFO: inspect DIR, train --resume auto.
mkdir "$tmp/ckdir"
mkfifo "$tmp/ckdir/latest"
refused "inspect DIR" "$tmp/ckdir/latest" "$pstrain" inspect "$tmp/ckdir"
refused "train --resume auto" "$tmp/ckdir/latest" "$pstrain" train --model mnist_cnn \
    --resume auto --checkpoint-dir "$tmp/ckdir" --data "$data" --epochs 1 --max-steps 2 \
    --threads 1 --progress 0
