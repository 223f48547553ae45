# lib.sh: what the fault tests share. Sourced; expects $pstrain and $data.
[[ $EUID -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*"; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# job SERVERS WORKERS LOG ARGS...: a job on this machine in the background, started by
# launch/run-local as a user would (its pid in $job; its exit status is the job's).
# ASAN_OPTIONS: LeakSanitizer would report Open MPI's own allocations at exit.
job() {
    local servers=$1 workers=$2 log=$3
    shift 3
    : >"$log"
    ASAN_OPTIONS=detect_leaks=0 "$root/launch/run-local" --servers "$servers" \
        --workers "$workers" --build "$(dirname "$pstrain")" -- --threads 1 --progress 0 \
        --bind 127.0.0.1 --advertise 127.0.0.1 --data "$data" "$@" >"$log" 2>&1 &
    job=$!
}

# rank_pid TAG RANK: the pid of that rank of the job whose command line holds TAG.
rank_pid() {
    local p
    for p in $(pgrep -x pstrain); do
        # 2> first: a process that has just ended must not make the shell complain
        tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "$1" || continue
        if tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_for LOG PATTERN SECONDS: until the log has a line matching PATTERN.
wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -qE "$2" "$1" && return 0
        sleep 0.1
    done
    return 1
}

# accuracy LOG: the final test accuracy, in percent.
accuracy() { sed -n 's/^test_loss.*test_accuracy: \([0-9.]*\).*/\1/p' "$1" | awk '{print $1 * 100}'; }
