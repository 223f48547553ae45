#!/usr/bin/env bash
# test_ckpt_lock.sh PSTRAIN: two jobs given one --checkpoint-dir (issue 19: staggered, both
# ended with status 0 and every file left was the second's; simultaneous, the second's
# clean-up deleted the first's temporary file and the first died). Real one-process jobs:
#   1. Staggered: B starts while A trains. B is refused with status 2 in one line naming A
#      (host, pid, start time) before it trains; A ends with status 0 and every checkpoint in
#      the directory is A's (its seed), latest naming A's last.
#   2. Simultaneous: exactly one of the two trains and ends with status 0, the other is
#      refused in that line; every file is the winner's.
#   3. The lock goes with its holder: after A is SIGKILLed, --resume auto on the directory
#      takes it and goes on from A's checkpoint.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

# job DIR SEED STEPS LOG: a one-process mnist_cnn job, checkpoints every 50 steps; it execs
# pstrain, so run it with & (then $! is pstrain's pid) or in ( )
job() {
    exec "$pstrain" train --model mnist_cnn --epochs 1 --max-steps "$3" --seed "$2" --val-split 0 \
        --checkpoint-dir "$1" --checkpoint-every 50 --threads 1 --progress 0 --data "$data" \
        >"$4" 2>&1
}

wait_for() { # wait_for FILE: until it exists (60 s at most)
    for _ in $(seq 600); do
        [[ -e $1 ]] && return 0
        sleep 0.1
    done
    return 1
}

# owned DIR SEED: every checkpoint in DIR has run seed SEED, and latest names the newest
owned() {
    local f n=0
    for f in "$1"/ckpt-*.h5; do
        "$pstrain" inspect "$f" >"$tmp/inspect.log" 2>&1 || { cat "$tmp/inspect.log"; return 1; }
        grep -q "seed $2," "$tmp/inspect.log" || { echo "$f is not seed $2's"; return 1; }
        n=$((n + 1))
    done
    local newest
    newest=$(cd "$1" && ls ckpt-*.h5 | sort -t- -k2 -n | tail -1)
    [[ $n -gt 0 && $(cat "$1/latest") == "$newest" ]] || { echo "latest is not $newest"; return 1; }
}

# refusal LOG DIR: LOG is one line refusing DIR and naming its holder
refusal() {
    [[ $(grep -c . "$1") -eq 1 ]] || { cat "$1"; fail "the refusal is not one line"; }
    grep -qE -- "--checkpoint-dir $2: in use by another job \(host [^ ]+ pid [0-9]+ started [0-9T:-]+Z" \
        "$1" || { cat "$1"; fail "the refusal does not name the holder"; }
}

# 1. Staggered.
job "$tmp/s" 11 800 "$tmp/a.log" &
a=$!
pids+=("$a")
wait_for "$tmp/s/ckpt-50.h5" || { cat "$tmp/a.log"; fail "A wrote no checkpoint"; }
rc=0
(job "$tmp/s" 22 100 "$tmp/b.log") || rc=$?
kill -0 "$a" 2>/dev/null || fail "A ended before B was refused: the test proves nothing"
[[ $rc -eq 2 ]] || { cat "$tmp/b.log"; fail "B (staggered) ended with status $rc, expected 2"; }
refusal "$tmp/b.log" "$tmp/s"
grep -q "$a" "$tmp/b.log" || { cat "$tmp/b.log"; fail "the refusal names another pid than A's $a"; }
rc=0
wait "$a" || rc=$?
[[ $rc -eq 0 ]] || { cat "$tmp/a.log"; fail "A ended with status $rc"; }
owned "$tmp/s" 11 || fail "staggered: A's files are not all A's"
echo "PASS: staggered: $(cat "$tmp/b.log"); A ended with 0, $(cat "$tmp/s/latest") and all are A's"

# 2. Simultaneous.
job "$tmp/t" 33 400 "$tmp/c.log" &
c=$!
job "$tmp/t" 44 400 "$tmp/d.log" &
d=$!
pids+=("$c" "$d")
rc_c=0 rc_d=0
wait "$c" || rc_c=$?
wait "$d" || rc_d=$?
if [[ $rc_c -eq 0 && $rc_d -eq 2 ]]; then
    refusal "$tmp/d.log" "$tmp/t"
    owned "$tmp/t" 33 || fail "simultaneous: the winner's files are not all its own"
elif [[ $rc_c -eq 2 && $rc_d -eq 0 ]]; then
    refusal "$tmp/c.log" "$tmp/t"
    owned "$tmp/t" 44 || fail "simultaneous: the winner's files are not all its own"
else
    cat "$tmp/c.log" "$tmp/d.log"
    fail "simultaneous: statuses $rc_c and $rc_d, expected one 0 and one 2"
fi
echo "PASS: simultaneous: statuses $rc_c and $rc_d, the winner's files intact"

# 3. A SIGKILLed job leaves no lock behind.
job "$tmp/k" 55 800 "$tmp/k.log" &
k=$!
pids+=("$k")
wait_for "$tmp/k/ckpt-100.h5" || { cat "$tmp/k.log"; fail "no checkpoint to resume from"; }
kill -9 "$k"
wait "$k" 2>/dev/null || true
"$pstrain" train --model mnist_cnn --epochs 1 --max-steps 150 --seed 55 --val-split 0 \
    --checkpoint-dir "$tmp/k" --resume auto --checkpoint-every 50 --threads 1 --progress 0 \
    --data "$data" >"$tmp/r.log" 2>&1 || { cat "$tmp/r.log"; fail "resume after SIGKILL refused"; }
grep -q '^resuming at step' "$tmp/r.log" || { cat "$tmp/r.log"; fail "it did not resume"; }
echo "PASS: after SIGKILL of its holder, --resume auto took the directory: $(grep '^resuming' "$tmp/r.log")"
