#!/usr/bin/env bash
# test_probe_memory.sh PSTRAIN PROBE: a stranger who speaks ZMTP by hand at a running job's
# plaintext server (tests/ps/probe.c): three connections declaring 1 GiB frames, a 20 GiB
# frame, a million empty messages, floods of whole 1 MB messages. Each may cost the server
# under 50 MB of resident memory at its peak; the server logs at most one line a second
# about strangers; and the job finishes with status 0 and the undisturbed test accuracy, bit
# for bit.
set -euo pipefail
pstrain=$1 probe=$2
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
[[ $EUID -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
limit_kb=$((50 * 1024))
# Under AddressSanitizer freed memory waits in its quarantine (256 MB by default) and the
# server runs several times slower than the probes send: neither its RSS nor the job's end
# says anything about the server. The sanitized suite skips this one (77).
if ldd "$pstrain" 2>/dev/null | grep -q libasan; then
    echo "SKIP: $pstrain is built with AddressSanitizer: its memory is not the server's"
    exit 77
fi
tmp=$(mktemp -d)
job=
trap '[[ -n $job ]] && kill $job 2>/dev/null; rm -rf "$tmp"' EXIT

# (2 epochs: one, 1,688 steps, now ends about when the probes do, and a server that ends
# then has not counted all of a flood)
run() { # run LOG: a sync job with 1 server and 1 worker, long enough for the probes
    mpirun -np 2 --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 \
        -x ASAN_OPTIONS=detect_leaks=0 "$pstrain" train \
        --model mnist_cnn --servers 1 --epochs 2 --threads 1 --progress 0 \
        --bind 127.0.0.1 --advertise 127.0.0.1 --data "$data" >"$1" 2>&1
}
run "$tmp/quiet.log"
quiet=$(grep -o 'test_accuracy: [0-9.]*' "$tmp/quiet.log")

log=$tmp/job.log
: >"$log"
run "$log" &
job=$!
endpoint=
for _ in $(seq 200); do # up to 20 s for the job to print its server's endpoint
    endpoint=$(sed -n 's/^server 0 at \(tcp:.*\)$/\1/p' "$log")
    [[ -n $endpoint ]] && break
    sleep 0.1
done
[[ -n $endpoint ]] || { echo "FAIL: the job printed no endpoint"; cat "$log"; exit 1; }
# The server: the process listening on the endpoint's port.
pid=$(ss -Hltnp "sport = :${endpoint##*:}" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
[[ -n $pid ]] || { echo "FAIL: no process listens at $endpoint"; exit 1; }

fail=0
start=$SECONDS
for attack in huge huge20g empties floods; do
    out=$("$probe" "$endpoint" "$pid" "$attack") || { echo "FAIL: $attack: the probe failed"; exit 1; }
    echo "$out"
    kill -0 "$pid" 2>/dev/null || { echo "FAIL: the server ended during $attack"; exit 1; }
    growth=${out##*growth_kb }
    ((growth < limit_kb)) || { echo "FAIL: $attack cost the server $growth kB"; fail=1; }
done
kill -0 "$pid" 2>/dev/null || { echo "FAIL: the job ended before the probes did"; exit 1; }
wait $job || { echo "FAIL: the job exited $?"; tail -20 "$log"; exit 1; }
job=
seconds=$((SECONDS - start + 1))

# What the log accounts for: as tests/ps/test_job_survives.sh counts it. The strangers: each
# empty message, and each whole 1 MB message of floods (3 x 300); the huge frames are cut off
# before any message is whole.
dropped=$(grep 'outside the job' "$log" | awk '
    match($0, /\(and [0-9]+ more since/) { n += 1 + substr($0, RSTART + 5, RLENGTH - 16); next }
    match($0, /dropped [0-9]+ more message/) { n += substr($0, RSTART + 8, RLENGTH - 21); next }
    { n++ }
    END { print n + 0 }')
lines=$(grep -c 'outside the job' "$log" || true)
grep -m 6 'outside the job' "$log" || true
echo "the server wrote $lines lines about strangers in about $seconds s, for $dropped messages"
((lines <= seconds + 1)) || { echo "FAIL: more than one line a second"; fail=1; }
((dropped == 1000900)) || { echo "FAIL: the log accounts for $dropped of 1000900 messages"; fail=1; }
got=$(grep -o 'test_accuracy: [0-9.]*' "$log")
[[ $quiet == "$got" ]] || { echo "FAIL: $got after the stranger, $quiet without"; fail=1; }
((fail == 0)) || exit 1
echo "PASS: each attack cost the server under 50 MB, its log stayed quiet, and the job" \
    "finished with the undisturbed $quiet"
