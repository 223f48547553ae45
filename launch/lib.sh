# shellcheck shell=bash
# Shared helpers for the launch/* scripts. Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
ME="launch/${0##*/}"
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

say() { printf '%s: %s\n' "$ME" "$*" >&2; }

# fail [CODE] MESSAGE: print one error line and exit with CODE (default 1).
fail() {
    local code=1
    if [[ $# -gt 1 ]]; then code=$1; shift; fi
    say "$*"
    exit "$code"
}

# argval "$@": check that option $1 has a value in $2.
argval() { [[ $# -ge 2 && -n $2 ]] || fail 2 "$1 needs a value"; }

# abspath PATH: PATH made absolute against $PWD (it need not exist).
abspath() { if [[ $1 == /* ]]; then printf '%s\n' "$1"; else printf '%s\n' "$PWD/$1"; fi; }

# data_dir [DIR]: DIR, else $PSTRAIN_DATA, else <repo>/data; absolute.
data_dir() { abspath "${1:-${PSTRAIN_DATA:-$ROOT/data}}"; }

# missing_pkgs PKG...: print the Debian packages that are not installed.
missing_pkgs() {
    local -A have=()
    local p s
    while read -r p s; do
        if [[ $s == *" ok installed" ]]; then have[$p]=1; fi
    done < <(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
    for p in "$@"; do
        [[ -n ${have[$p]:-} ]] && continue
        # NodeSource's nodejs ships npm and conflicts with Debian's npm package.
        [[ $p == npm ]] && command -v npm >/dev/null && continue
        printf '%s\n' "$p"
    done
}

# apt_lock_holder FILE...: for the first FILE on which another process holds a POSIX (fcntl)
# lock, print "FILE PID COMM"; nothing when none is held. apt and dpkg lock with fcntl, which
# flock(1) neither sees nor conflicts with, so this reads /proc/locks (readable without root).
# PID is 0 for a holder outside this PID namespace.
apt_lock_holder() {
    local f ma mi ino pid comm
    for f in "$@"; do
        read -r ma mi ino < <(stat -L -c '%Hd %Ld %i' "$f" 2>/dev/null) || continue
        pid=$(awk -v id="$(printf '%02x:%02x:%s' "$ma" "$mi" "$ino")" \
            '$2 != "->" && $6 == id { print $5; exit }' /proc/locks 2>/dev/null)
        [[ -n $pid ]] || continue
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || comm='?'
        printf '%s %s %s\n' "$f" "$pid" "$comm"
        return 0
    done
}

# apt_wait_locks DEADLINE: wait until no other process holds apt's or dpkg's locks (the dpkg
# front-end and database locks, the package lists' and the download cache's), saying on one
# line which lock and which process it waits for (a line more only when that changes), until
# $SECONDS reaches DEADLINE; then fail. `apt-get update` in apt 2.6 does not wait for the
# lists lock whatever DPkg::Lock::Timeout says, so this wait is ours; the timeout passed to
# apt-get covers a lock taken again between this check and apt-get's own.
apt_wait_locks() {
    local deadline=$1 admin=/var/lib/dpkg/ lists=/var/lib/apt/lists/ arch=/var/cache/apt/archives/
    local STATUS='' LISTS='' ARCH='' held f pid comm what said=''
    if eval "$(apt-config shell STATUS Dir::State::status/f LISTS Dir::State::Lists/d \
        ARCH Dir::Cache::Archives/d 2>/dev/null)"; then
        [[ $STATUS == /*/* ]] && admin=${STATUS%/*}/
        lists=${LISTS:-$lists} arch=${ARCH:-$arch}
    fi
    while held=$(apt_lock_holder "${admin}lock-frontend" "${admin}lock" "${lists}lock" \
        "${arch}lock") && [[ -n $held ]]; do
        read -r f pid comm <<<"$held"
        case $f in
            "$admin"*) what="the dpkg lock" ;;
            "$lists"*) what="the package lists lock" ;;
            *) what="the package download lock" ;;
        esac
        if ((pid > 0)); then comm="process $pid ($comm)"; else comm="a process outside this PID namespace"; fi
        ((SECONDS < deadline)) ||
            fail "$what ($f) is still held by $comm; waited ${APT_LOCK_TIMEOUT:-600} s (APT_LOCK_TIMEOUT)"
        if [[ $said != "$f $comm" ]]; then
            say "waiting up to $((deadline - SECONDS)) s for $what ($f), held by $comm"
            said="$f $comm"
        fi
        sleep 2
    done
}

# ensure_pkgs PKG...: apt-get install the missing ones (as root, else via sudo -n;
# else print the command to run and exit 2). No apt-get at all when none is missing.
# When another apt or dpkg (a fresh VM's unattended-upgrades) holds their locks, it says so
# and waits for them, up to APT_LOCK_TIMEOUT seconds in all (default 600), before failing.
ensure_pkgs() {
    local -a miss sudo=() apt
    local deadline timeout=${APT_LOCK_TIMEOUT:-600}
    [[ $timeout =~ ^[0-9]+$ ]] || fail 2 "APT_LOCK_TIMEOUT must be a number of seconds, not '$timeout'"
    mapfile -t miss < <(missing_pkgs "$@")
    [[ ${#miss[@]} -eq 0 ]] && return 0
    if [[ $EUID -eq 0 ]]; then
        :
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        fail 2 "missing packages; run: sudo apt-get install -y ${miss[*]}"
    fi
    say "installing ${miss[*]}"
    deadline=$((SECONDS + timeout))
    apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q)
    apt_wait_locks "$deadline"
    "${apt[@]}" -o DPkg::Lock::Timeout=$((deadline > SECONDS ? deadline - SECONDS : 0)) update ||
        fail $? "apt-get update failed"
    apt_wait_locks "$deadline"
    "${apt[@]}" -o DPkg::Lock::Timeout=$((deadline > SECONDS ? deadline - SECONDS : 0)) \
        install -y --no-install-recommends "${miss[@]}" ||
        fail $? "apt-get install ${miss[*]} failed"
}

# with_tmpdir PARENT: create TMPDIR_ under PARENT, removed when the script exits.
with_tmpdir() {
    TMPDIR_=$(mktemp -d "$1/.tmp.XXXXXX")
    trap 'rm -rf "$TMPDIR_"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# The most a check of the flags and the data may take, here or on a host (a fraction of a
# second when all is well): a data file that never ends (a FIFO, a hung network mount) must
# not hang a launcher. LAUNCH_CHECK_TIMEOUT overrides it (seconds).
CHECK_S=${LAUNCH_CHECK_TIMEOUT:-60}

# check_train BUILD FLAGS...: what a launcher does with pstrain's train flags before it starts
# mpirun, so that bad input ends the launcher as `pstrain train FLAGS` alone would end: with
# pstrain's one line and its status (2), before a rank starts. --help prints train's help once
# and exits 0; --dry-run prints pstrain's dry run and exits with its status. Otherwise pstrain
# checks the flags, the data and the paths (`train --dry-run`), then train_extra sets
# TRAIN_EXTRA. The check is bounded (CHECK_S): when it runs out, one line says so (status 2).
check_train() {
    local build=$1 a help=0 dry=0 rc=0
    shift
    for a in "$@"; do
        case $a in
            --help | -h) help=1 ;;
            --dry-run) dry=1 ;;
        esac
    done
    [[ -x $build/pstrain ]] || fail 2 "$build/pstrain not built: run launch/setup (or give --build)"
    ((help)) && exec "$build/pstrain" train --help
    ((dry)) && exec "$build/pstrain" train "$@"
    [[ $CHECK_S =~ ^[1-9][0-9]*$ ]] ||
        fail 2 "LAUNCH_CHECK_TIMEOUT must be a number of seconds, not '$CHECK_S'"
    timeout -k 2 "$CHECK_S" "$build/pstrain" train --dry-run "$@" </dev/null >/dev/null || rc=$?
    ((rc == 124 || rc == 137)) &&
        fail 2 "pstrain train --dry-run (the check of the flags and the data here) gave no answer within $CHECK_S s: is a data or checkpoint file a FIFO, or on a hung mount? (LAUNCH_CHECK_TIMEOUT)"
    ((rc == 0)) || exit "$rc"
    train_extra "$@"
}

# train_extra FLAGS...: sets TRAIN_EXTRA to the train flags the ranks need besides FLAGS:
# --progress 0 when this script's output is not a terminal and FLAGS give no --progress. Open
# MPI gives every rank a pseudo-terminal, so the ranks would otherwise draw their live bar, a
# carriage return ten times a second, into a log file instead of a line per epoch.
train_extra() {
    local a
    TRAIN_EXTRA=()
    for a in "$@"; do
        case $a in --progress | --progress=*) return 0 ;; esac
    done
    [[ -t 1 ]] || TRAIN_EXTRA+=(--progress 0)
}

# job_statuses ERRLOG SERVERS: reads the ranks' lines and prints "status N" with the job's
# status by the rule run_job states (nothing when no rank said a non-zero status), and
# "dropped RANK WORKER STATUS" for each worker rank whose status does not count: one the
# servers had declared lost (silent past --peer-timeout, or reset) before it said how it
# ended. The job went on without it, so its end is its own, as when it is killed outright
# and says nothing (a worker SIGSTOPped past --peer-timeout, then continued, finds its server
# silent and ends with status 1; SIGKILLed, it says nothing; the job's status is the same).
# A worker that itself reported a failure to the servers still counts. SERVERS empty: no
# worker is dropped.
job_statuses() {
    awk -v P="$2" '
        P != "" && /^server [0-9]+: worker [0-9]+ lost: / && !/ lost: it ended on a failure/ {
            lost[P + $4] = 1
            next
        }
        /^pstrain: rank [0-9]+ ends with status [0-9]+$/ {
            r = $3 + 0; s = $7 + 0
            if (s == 0) next
            if (r in lost) { print "dropped", r, r - P, s; next }
            if (s == 75) stopped = 1
            else if (worst == "") worst = s
        }
        END {
            if (worst != "") print "status", worst
            else if (stopped) print "status", 75
        }' "$1"
}

# startup_failure ERRLOG RANKS: when the job's ranks gave up their start-up (main.c, job.c:
# each waits at most --timeout for the others, then says so and ends), prints one line that
# names the ranks that went: those ended by a signal during start-up (they say so), and,
# when RANKS (the job's size) is known, those that ended without a word (SIGKILL, or they
# did not start). Nothing when start-up did not fail.
startup_failure() {
    grep -qE '^pstrain: rank [0-9]+: (start-up did not finish|ended by SIG[A-Z]+ during start-up)' "$1" ||
        return 0
    awk -v N="$2" '
        /^pstrain: rank [0-9]+: ended by SIG[A-Z]+ during start-up/ {
            r = $3; sub(":", "", r); sig[r + 0] = $6; said[r + 0] = 1
        }
        /^pstrain: rank [0-9]+ ends with status [0-9]+$/ { said[$3 + 0] = 1 }
        /^pstrain: rank [0-9]+: start-up did not finish within [0-9.]+ s/ && !within {
            within = $9
        }
        END {
            out = ""
            for (r = 0; r < N + 0; r++)
                if (!(r in said))
                    out = out (out == "" ? "" : "; ") "rank " r " ended without a word (SIGKILL, or it did not start)"
            for (r in sig)
                out = out (out == "" ? "" : "; ") "rank " r " ended by " sig[r]
            if (out == "") out = "a rank died or did not start"
            if (within != "") out = out "; the others gave up after " within " s (--timeout)"
            print "the job did not start: " out
        }' "$1"
}

# run_job CMD...: runs an mpirun command line and exits with the job's outcome. The jobs run
# with --enable-recovery (a lost worker must not end the others), and then Open MPI 4.1's
# mpirun exits 0 whatever its ranks' statuses, and may wait forever for the daemon of a host
# that vanished. So each pstrain rank says on stderr how it ends ("pstrain: rank R ends with
# status N"); this exits with the first non-zero status that is not 75 (a stop on request),
# else 75, else mpirun's own; a worker that the servers had declared lost before it ended
# does not count (job_statuses): a lost worker ends only itself. Once the job is over (rank
# 0, a server, has ended, or a worker has ended on a lost server) it gives mpirun
# RUN_JOB_GRACE seconds (default 30) to exit before ending it. When the ranks gave up their
# start-up it ends with one line naming the ranks that went (startup_failure). SIGTERM and
# SIGINT go on to mpirun (it hands them to the ranks).
run_job() {
    local errlog pid rc worst='' over=0 ranks='' servers='' i j kind a b c
    for ((i = 1; i < $#; i++)); do # the job's size and servers, from its command line
        j=$((i + 1))
        case ${!i} in
            -np) ranks=${!j} ;;
            --servers) servers=${!j} ;;
            --servers=*) servers=${!i#*=} ;;
        esac
    done
    [[ $ranks =~ ^[0-9]+$ ]] || ranks=''
    [[ $servers =~ ^[0-9]+$ ]] || servers=''
    errlog=$(mktemp)
    "$@" 2> >(tee "$errlog" >&2) &
    pid=$!
    trap 'kill -TERM $pid 2>/dev/null || true' TERM
    trap 'kill -INT $pid 2>/dev/null || true' INT
    rc=0
    while kill -0 $pid 2>/dev/null; do
        sleep 1
        if ((over == 0)) && grep -qE '^pstrain: (rank 0 ends with|worker [0-9]+: server .* lost:)' "$errlog"; then
            over=$SECONDS
        fi
        if ((over > 0 && SECONDS - over > ${RUN_JOB_GRACE:-30})); then
            say "the job is over but mpirun is still waiting (for a lost host's daemon?): ending it"
            kill -TERM $pid 2>/dev/null || true
            sleep 3
            kill -KILL $pid 2>/dev/null || true
            break
        fi
    done
    wait $pid || rc=$?
    trap - TERM INT
    sleep 0.2 # tee's last lines
    while read -r kind a b c; do
        case $kind in
            status) worst=$a ;;
            dropped) say "rank $a (worker $b) ended with status $c after the servers had gone on without it: not the job's status (a lost worker ends only itself)" ;;
        esac
    done < <(job_statuses "$errlog" "$servers")
    a=$(startup_failure "$errlog" "$ranks")
    [[ -z $a ]] || say "$a"
    rm -f "$errlog"
    if [[ -n $worst ]]; then rc=$worst; elif ((over > 0)); then rc=0; fi
    exit "$rc"
}
