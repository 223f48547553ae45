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
# mpirun exits 0 whatever its ranks' statuses; so each pstrain rank that ends on a non-zero
# status says so on stderr ("pstrain: rank R ends with status N"), and this exits with the
# first of those that is not 75 (a stop on request), else 75, else mpirun's own status.
# SIGTERM and SIGINT go on to mpirun (it hands them to the ranks).
run_job() {
    local errlog pid rc worst
    errlog=$(mktemp)
    "$@" 2> >(tee "$errlog" >&2) &
    pid=$!
    trap 'kill -TERM $pid 2>/dev/null' TERM
    trap 'kill -INT $pid 2>/dev/null' INT
    rc=0
    wait $pid || rc=$?
    while kill -0 $pid 2>/dev/null; do # a signal interrupted the wait: wait for mpirun itself
        wait $pid || rc=$?
    done
    trap - TERM INT
    sleep 0.2 # tee's last lines
    worst=$(sed -n 's/^pstrain: rank [0-9]* ends with status \([0-9]*\)$/\1/p' "$errlog" |
        awk '$1 != 75 { print; found = 1; exit } END { if (!found && NR) print 75 }')
    rm -f "$errlog"
    if ((rc == 0)) && [[ -n $worst ]]; then rc=$worst; fi
    exit "$rc"
}
