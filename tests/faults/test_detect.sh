#!/usr/bin/env bash
# test_detect.sh PSTRAIN: a peer whose connection is reset is named within 2 s, not after
# --peer-timeout of silence (issue 19, acceptance 6). A job of 1 server and 2 workers with
# --peer-timeout 30: worker 1 is SIGKILLed mid-run (its kernel closes its sockets) and the
# server must name it lost within 2 s of the kill, and the job must finish with status 0;
# with --secure off, then on.
# Then the server of such a job is SIGKILLed: both workers must name it within 2 s, and the
# job must stop with a non-zero status as on any lost server. The log is polled every 50 ms;
# the kill's time and each line's are printed.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT
# A checkpoint every 100 steps (of about 470) says when training is under way: a worker
# notices a lost server when it next waits for one, so the kills come mid-step, not during
# start-up or an evaluation. ($tmp in the line is how rank_pid finds the job.)
train=(--model mnist_cnn --epochs 1 --val-split 0.5 --peer-timeout 30 --checkpoint-every 100)
bound=2.0

# named LOG PATTERN KILLED WHAT: waits (every 50 ms, up to 40 s) for a line of LOG matching
# PATTERN, prints it with its time and the time since KILLED (date +%s.%N), and fails when
# that is over $bound seconds.
named() {
    local log=$1 pattern=$2 killed=$3 what=$4 i line seen after
    for ((i = 0; i < 800; i++)); do
        line=$(grep -m1 -E "$pattern" "$log" || true)
        [[ -n $line ]] && break
        sleep 0.05
    done
    seen=$(date +%s.%N)
    [[ -n $line ]] || { cat "$log"; fail "$what: no line matching '$pattern' within 40 s of the kill"; }
    after=$(echo "$seen - $killed" | bc)
    printf '  %s  (%.2f s after the kill) %s\n' "$(date -d "@$seen" +%H:%M:%S.%3N)" "$after" "$line"
    awk -v t="$after" -v b="$bound" 'BEGIN { exit !(t <= b) }' ||
        fail "$what: named $after s after the kill (at most $bound s; --peer-timeout 30)"
}

# A worker killed: the server names it and the job goes on. With --secure the server's
# connections are watched through its CURVE guard (ZeroMQ allows one monitor a socket).
for secure in off on; do
    log=$tmp/worker-$secure.log
    job 1 2 "$log" "${train[@]}" --checkpoint-dir "$tmp/ck-$secure" --secure "$secure"
    wait_for "$log" 'ckpt-100\.h5: step 100, written' 90 || { cat "$log"; fail "--secure $secure: no checkpoint at step 100"; }
    victim=$(rank_pid "$tmp" 2) || fail "--secure $secure: no rank 2 (worker 1) under mpirun $job"
    kill -KILL "$victim"
    killed=$(date +%s.%N)
    echo "--secure $secure: worker 1 (pid $victim) killed at $(date -d "@$killed" +%H:%M:%S.%3N)"
    named "$log" '^server 0: worker 1 lost' "$killed" "--secure $secure: worker 1"
    status=0
    wait $job || status=$?
    job=
    [[ $status -eq 0 ]] || { cat "$log"; fail "--secure $secure: the job exited $status after losing worker 1"; }
    grep -q '^test_loss.*test_accuracy' "$log" || { cat "$log"; fail "--secure $secure: no test accuracy"; }
    echo "PASS: --secure $secure: worker 1 named lost by the server; the job finished with $(accuracy "$log")%"
done

# The server killed: each worker names it and the job stops.
job 1 2 "$tmp/server.log" "${train[@]}" --checkpoint-dir "$tmp/ck-server"
wait_for "$tmp/server.log" 'ckpt-100\.h5: step 100, written' 90 || { cat "$tmp/server.log"; fail "no checkpoint at step 100"; }
endpoint=$(sed -n 's/^server 0 at \(tcp:.*\)$/\1/p' "$tmp/server.log")
victim=$(rank_pid "$tmp" 0) || fail "no rank 0 (server 0) under mpirun $job"
kill -KILL "$victim"
killed=$(date +%s.%N)
echo "server 0 (pid $victim) killed at $(date -d "@$killed" +%H:%M:%S.%3N)"
for w in 0 1; do
    named "$tmp/server.log" "^pstrain: worker $w: server 0 at $endpoint lost" "$killed" "worker $w"
done
status=0
wait $job || status=$?
job=
[[ $status -ne 0 ]] || { cat "$tmp/server.log"; fail "mpirun exited 0 after losing the server"; }
echo "PASS: both workers named server 0 lost; mpirun exited $status"
