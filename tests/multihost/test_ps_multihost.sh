#!/usr/bin/env bash
# test_ps_multihost.sh PSTRAIN: a parameter-server job across three "hosts" (network
# namespaces on a bridge, real TCP between distinct addresses; see README.md). Ranks are
# spread by node: server 0 on h1, server 1 on h2, worker 0 on h3, worker 1 on h1, so every
# push and pull but one crosses hosts. Checks that the job finishes, that each server
# advertised its own host's address, and that both workers pushed every step to both.
# Exit 77 (skip) where namespaces cannot be made.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ ${1:-} != --inside ]]; then
    exec "$here/netns-cluster" --hosts 3 -- "$0" --inside "$@"
fi
pstrain=$2
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
log=$PSTRAIN_TMPDIR/job.log
read -r -a hosts <<<"$PSTRAIN_HOSTS"
# shellcheck disable=SC2086 # PSTRAIN_MPIRUN_ARGS is a list of options
timeout -k 5 240 mpirun $PSTRAIN_MPIRUN_ARGS -np 4 --map-by node \
    -x OPENBLAS_NUM_THREADS=1 -x PSTRAIN_DATA -x ASAN_OPTIONS=detect_leaks=0 \
    "$pstrain" train --model mnist_cnn --servers 2 --mode sync --epochs 1 --max-steps 100 \
    --threads 1 --progress 0 --timeout 30 --data "$data" >"$log" 2>&1 || {
    rc=$?
    echo "FAIL: mpirun exited $rc"
    cat "$log"
    exit 1
}
grep -v 'setpgid' "$log"
fail() { echo "FAIL: $*"; exit 1; }
grep -q "^server 0 at tcp://${hosts[0]}:" "$log" || fail "server 0 did not advertise ${hosts[0]}"
grep -q "^server 1 at tcp://${hosts[1]}:" "$log" || fail "server 1 did not advertise ${hosts[1]}"
grep -q '^test_loss: .* test_accuracy: ' "$log" || fail "no test accuracy"
for s in 0 1; do
    grep -q "^server $s: pushes per worker: 100 100$" "$log" ||
        fail "server $s did not get 100 pushes from each worker"
done
echo "PASS: 2 servers on ${hosts[0]} and ${hosts[1]}, workers on ${hosts[2]} and ${hosts[0]}"
