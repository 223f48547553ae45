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

# ensure_pkgs PKG...: apt-get install the missing ones (as root, else via sudo -n;
# else print the command to run and exit 2). No apt-get at all when none is missing.
ensure_pkgs() {
    local -a miss sudo=()
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
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        fail $? "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${miss[@]}" ||
        fail $? "apt-get install ${miss[*]} failed"
}

# with_tmpdir PARENT: create TMPDIR_ under PARENT, removed when the script exits.
with_tmpdir() {
    TMPDIR_=$(mktemp -d "$1/.tmp.XXXXXX")
    trap 'rm -rf "$TMPDIR_"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# run_job CMD...: runs an mpirun command line and exits with the job's outcome. The jobs run
# with --enable-recovery (a lost worker must not end the others), and then Open MPI 4.1's
# mpirun exits 0 whatever its ranks' statuses, and may wait forever for the daemon of a host
# that vanished. So each pstrain rank says on stderr how it ends ("pstrain: rank R ends with
# status N"); this exits with the first non-zero status that is not 75 (a stop on request),
# else 75, else mpirun's own; and once the job is over (rank 0, a server, has ended, or a
# worker has ended on a lost server) it gives mpirun RUN_JOB_GRACE seconds (default 30) to
# exit before ending it. SIGTERM and SIGINT go on to mpirun (it hands them to the ranks).
run_job() {
    local errlog pid rc worst over=0
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
    worst=$(sed -n 's/^pstrain: rank [0-9]* ends with status \([1-9][0-9]*\)$/\1/p' "$errlog" |
        awk '$1 != 75 { print; found = 1; exit } END { if (!found && NR) print 75 }')
    rm -f "$errlog"
    if [[ -n $worst ]]; then rc=$worst; elif ((over > 0)); then rc=0; fi
    exit "$rc"
}
