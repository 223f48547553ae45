#!/usr/bin/env bash
# test_ckpt_values.sh PSTRAIN: checkpoints edited to hold values training could not have
# produced are refused on load, by every reader, in one line naming the file, the field and
# what was expected (issue 19). The edits go through h5py, which recomputes HDF5's
# checksums (the Fletcher32 of each chunk, the object headers'), so it is the value check that
# refuses them, not a checksum: a control edit made the same way to values a run could hold
# must still load.
#   1. NaN, Inf and 1e30 weights; a negative Adam v and RMSprop accumulator; beta1 = 1,
#      beta2 = 1, epsilon = 0, lr = 1e30; step and an update count of 2^63 - 60: each refused
#      by eval, inspect and train --resume FILE with status 2 and one line naming the field.
#   2. --resume auto whose newest checkpoint is refused says which file, and stops (status 2):
#      it neither starts fresh nor falls back to an older file.
#   3. The unedited files, and the control edit, load (eval, inspect, train --resume).
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
python=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }
"$python" -c 'import h5py, numpy' 2>/dev/null || { echo "SKIP: $python has no h5py"; exit 0; }

train() { # train DIR OPTIMIZER [ARGS...]: 4 steps of mnist_cnn, checkpoints at 2 and 4
    local dir=$1 opt=$2
    shift 2
    "$pstrain" train --model mnist_cnn --optimizer "$opt" --epochs 1 --max-steps 4 --val-split 0 \
        --checkpoint-dir "$dir" --checkpoint-every 2 --threads 1 --progress 0 --data "$data" "$@"
}
train "$tmp/adam" adam >"$tmp/adam.log" 2>&1 || { cat "$tmp/adam.log"; fail "training (adam)"; }
train "$tmp/rms" rmsprop >"$tmp/rms.log" 2>&1 || { cat "$tmp/rms.log"; fail "training (rmsprop)"; }

# edit SRC DST PYTHON: DST is SRC edited by PYTHON, run with f, the file opened by h5py (r+)
edit() {
    cp "$1" "$2"
    "$python" - "$2" "$3" <<'EOF'
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    p = f["pstrain"]
    exec(sys.argv[2])
EOF
}

# refused FILE WORDS...: every reader refuses FILE with status 2 and one line saying WORDS
refused() {
    local file=$1 words=$2 cmd
    for cmd in eval inspect resume; do
        local out=$tmp/out.$cmd rc=0
        case $cmd in
        eval) timeout 60 "$pstrain" eval "$file" --data "$data" --threads 1 >"$out" 2>&1 || rc=$? ;;
        inspect) timeout 60 "$pstrain" inspect "$file" >"$out" 2>&1 || rc=$? ;;
        resume) timeout 60 "$pstrain" train --model mnist_cnn --resume "$file" --epochs 1 \
            --max-steps 8 --threads 1 --progress 0 --data "$data" >"$out" 2>&1 || rc=$? ;;
        esac
        [[ $rc -eq 2 ]] || { cat "$out"; fail "$cmd of $file: status $rc, expected 2"; }
        local lines
        lines=$(grep -c . "$out" || true)
        [[ $lines -eq 1 ]] || { cat "$out"; fail "$cmd of $file: $lines lines, expected one"; }
        grep -qF -- "$file" "$out" || { cat "$out"; fail "$cmd: the line does not name $file"; }
        grep -qF -- "$words" "$out" || { cat "$out"; fail "$cmd of $file: no '$words'"; }
    done
    echo "PASS: $(basename "$file"): $(cat "$tmp/out.eval")"
}

loads() { # loads FILE: eval, inspect and train --resume accept it
    "$pstrain" eval "$1" --data "$data" --threads 1 >"$tmp/ok.log" 2>&1 ||
        { cat "$tmp/ok.log"; fail "eval refused $1"; }
    "$pstrain" inspect "$1" >"$tmp/ok.log" 2>&1 || { cat "$tmp/ok.log"; fail "inspect refused $1"; }
    "$pstrain" train --model mnist_cnn --resume "$1" --epochs 1 --max-steps 6 --threads 1 \
        --progress 0 --data "$data" >"$tmp/ok.log" 2>&1 ||
        { cat "$tmp/ok.log"; fail "train --resume refused $1"; }
    grep -q '^resuming at step 4' "$tmp/ok.log" || { cat "$tmp/ok.log"; fail "no resume from $1"; }
}

adam=$tmp/adam/ckpt-4.h5
rms=$tmp/rms/ckpt-4.h5
e=$tmp/edited
mkdir "$e"

# 3. Negative controls first: the files as written, and valid values edited through h5py.
loads "$adam"
loads "$rms"
edit "$adam" "$e/same.h5" 'p.attrs.modify("lr", np.float32(2e-3)); f["dense/dense/kernel:0"][0, 0] += 0.25; p["optimizer/v"][7] = 0.5'
cmp -s "$adam" "$e/same.h5" && fail "the control edit left the file as it was: it tests nothing"
loads "$e/same.h5"
echo "PASS: the unedited checkpoints and the control edit load"

# 1. Each edit refused, naming its field.
K='f["dense/dense/kernel:0"]'
edit "$adam" "$e/nan.h5" "$K[0, 3] = np.nan"
refused "$e/nan.h5" "dataset /dense/dense/kernel:0, element 3 (row-major) is nan"
edit "$adam" "$e/inf.h5" 'f["conv2d/conv2d/bias:0"][5] = -np.inf'
refused "$e/inf.h5" "dataset /conv2d/conv2d/bias:0, element 5 (row-major) is -inf"
edit "$adam" "$e/big.h5" "$K[1, 0] = 1e30"
refused "$e/big.h5" "dataset /dense/dense/kernel:0, element 128 (row-major) is 1e+30"
edit "$adam" "$e/v.h5" 'p["optimizer/v"][7] = -0.5'
refused "$e/v.h5" "dataset /pstrain/optimizer/v, element 7 (row-major) is -0.5, expected a second moment (>= 0)"
edit "$adam" "$e/m.h5" 'p["optimizer/m"][9] = np.nan'
refused "$e/m.h5" "dataset /pstrain/optimizer/m, element 9 (row-major) is nan"
edit "$rms" "$e/acc.h5" 'p["optimizer/accumulator"][11] = -1e-3'
refused "$e/acc.h5" "dataset /pstrain/optimizer/accumulator, element 11 (row-major) is -0.001"
edit "$adam" "$e/beta1.h5" 'p.attrs.modify("beta1", np.float32(1))'
refused "$e/beta1.h5" "attribute beta1 of /pstrain is 1, expected a number in [0, 0.999999]"
edit "$adam" "$e/beta2.h5" 'p.attrs.modify("beta2", np.float32(1))'
refused "$e/beta2.h5" "attribute beta2 of /pstrain is 1, expected a number in [0, 0.999999]"
edit "$adam" "$e/eps.h5" 'p.attrs.modify("epsilon", np.float32(0))'
refused "$e/eps.h5" "attribute epsilon of /pstrain is 0, expected a number in [1e-12, 1]"
edit "$adam" "$e/lr.h5" 'p.attrs.modify("lr", np.float32(1e30))'
refused "$e/lr.h5" "attribute lr of /pstrain is 1e+30, expected a number in [1e-12, 10]"
edit "$adam" "$e/step.h5" 'p.attrs.modify("step", np.int64(2**63 - 60))'
refused "$e/step.h5" "attribute step of /pstrain is 9223372036854775748, expected 0 to 9007199254740992"
edit "$adam" "$e/iter.h5" 'p["optimizer/iterations"][0, 2] = 2**63 - 60'
refused "$e/iter.h5" "iterations 9223372036854775748, expected 0 to 9007199254740992"
edit "$adam" "$e/pos.h5" 'p["workers/steps"][0] = 2**63 - 60'
refused "$e/pos.h5" "dataset /pstrain/workers/steps, element 0 is 9223372036854775748"

# 2. --resume auto: the newest checkpoint refused, the line names it; nothing trains.
edit "$adam" "$e/auto.h5" "$K[0, 0] = np.nan"
cp "$e/auto.h5" "$adam"
rc=0
"$pstrain" train --model mnist_cnn --resume auto --checkpoint-dir "$tmp/adam" --epochs 1 \
    --max-steps 8 --threads 1 --progress 0 --data "$data" >"$tmp/auto.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] || { cat "$tmp/auto.log"; fail "--resume auto of a refused newest file: status $rc"; }
grep -qF -- "--resume auto: the newest checkpoint in $tmp/adam is refused" "$tmp/auto.log" &&
    grep -qF -- "$adam: dataset /dense/dense/kernel:0, element 0" "$tmp/auto.log" ||
    { cat "$tmp/auto.log"; fail "--resume auto: the line does not name the refused file"; }
grep -q 'starting fresh\|^epoch' "$tmp/auto.log" && { cat "$tmp/auto.log"; fail "it trained"; }
[[ $(cat "$tmp/adam/latest") == ckpt-4.h5 && ! -e $tmp/adam/ckpt-6.h5 ]] ||
    fail "--resume auto refused, yet the directory changed"
echo "PASS: --resume auto: $(cat "$tmp/auto.log")"
