#!/usr/bin/env bash
# test_replica.sh PSTRAIN: --replicas 1, a server SIGKILLed mid-epoch. A sync job of 2 servers
# and 2 workers with --peer-timeout 3: server 1 is killed while the workers train; its copy
# on server 0 takes its shard over and the job finishes with status 0. In sync mode the copy
# is the primary's, update by update, and the workers send their last step again: the final
# weights must equal, byte for byte (cmp), those of the same job undisturbed, and those of
# the job without replicas (a copy changes nothing). Then a GAN (two parts), killed against
# undisturbed.
# (async and ssp, where only accuracy can be compared: tests/acceptance/replicas.)
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT

# run NAME REPLICAS KILL_AT TRAIN_FLAGS...: the job, checkpointing every 50 steps; KILL_AT >
# 0: server 1 (rank 1) is SIGKILLed once the checkpoint of step KILL_AT is written (in the
# middle of the run on any machine). Its final weights go to $tmp/NAME.bin.
run() {
    local name=$1 replicas=$2 kill_at=$3 log=$tmp/$1.log
    shift 3
    job 2 2 "$log" --peer-timeout 3 --replicas "$replicas" --dump-weights "$tmp/$name.bin" \
        --checkpoint-dir "$tmp/$name-ckpt" --checkpoint-every 50 "$@"
    if ((kill_at > 0)); then
        wait_for "$log" "^checkpoint at step $kill_at:" 120 ||
            { cat "$log"; fail "$name: no checkpoint at step $kill_at"; }
        local victim
        victim=$(rank_pid "$tmp/$name.bin" 1) || fail "$name: no rank 1 under mpirun $job"
        kill -KILL "$victim"
    fi
    local status=0
    wait $job || status=$?
    job=
    [[ $status -eq 0 ]] || { cat "$log"; fail "$name: the job exited $status"; }
}

# check NAME WITHOUT KILL_AT TRAIN_FLAGS...: undisturbed with a copy (and without one when
# WITHOUT is 1), then with server 1 killed after the checkpoint of step KILL_AT; the last
# checkpoint, written by the copy's snapshot, must load.
check() {
    local name=$1 without=$2 kill_at=$3
    shift 3
    run "$name-r1" 1 0 "$@"
    if ((without)); then
        run "$name-r0" 0 0 "$@"
        cmp "$tmp/$name-r0.bin" "$tmp/$name-r1.bin" ||
            fail "$name: --replicas 1 changed the undisturbed job's weights"
    fi
    run "$name-kill" 1 "$kill_at" "$@"
    local log=$tmp/$name-kill.log
    grep -q 'a backup takes its shard over' "$log" || { cat "$log"; fail "$name: no copy took over"; }
    grep -q "going on with its shard's copy" "$log" ||
        { cat "$log"; fail "$name: no worker moved to the copy"; }
    grep -E "lost|copy|takes its shard|^test_loss|^trained" "$log" | sed "s/^/  $name: /"
    cmp "$tmp/$name-r1.bin" "$tmp/$name-kill.bin" ||
        fail "$name: the final weights after server 1's loss differ from the undisturbed job's"
    "$pstrain" inspect "$tmp/$name-kill-ckpt" >/dev/null ||
        fail "$name: the last checkpoint (after the copy took over) does not load"
    echo "PASS: $name: server 1 killed; its copy took over; final weights equal the undisturbed job's (cmp)"
}

check cnn 1 100 --model mnist_cnn --epochs 1 --max-steps 400 --mode sync
check gan 0 50 --model mnist_gan --epochs 1 --val-split 0.9 --batch 32 --mode sync
