#!/usr/bin/env bash
# test_dpkg_lock.sh: ensure_pkgs (launch/lib.sh, what launch/setup installs packages with)
# waits out apt's and dpkg's locks held by another process, as a fresh cloud VM's unattended
# upgrades hold them for its first minutes, says which lock and which process it waits for,
# and installs once they are free; and gives up after APT_LOCK_TIMEOUT.
#
# No network: the package is a dummy with no files (pstrain-lock-probe), built here, served
# by a file: repository through APT_CONFIG (private source list, package lists and download
# cache), and installed into this machine's real dpkg database, then purged. The locks are
# held as apt holds them, with fcntl (python3's fcntl.lockf): flock(1) would not conflict.
# The real /var/lib/dpkg/lock-frontend is held only for a few seconds; the lists lock held is
# the private one. Exit 77 (skipped) without root, apt-get, dpkg-deb or python3.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
skip() { echo "test_dpkg_lock: skipped: $*"; exit 77; }
[[ $EUID -eq 0 ]] || skip "needs root (it installs and removes a dummy package)"
for c in apt-get apt-config dpkg-deb dpkg-query python3; do
    command -v "$c" >/dev/null || skip "no $c"
done
[[ -r /proc/locks ]] || skip "no /proc/locks"

pkg=pstrain-lock-probe
tmp=$(mktemp -d /tmp/test_dpkg_lock.XXXXXX)
chmod 755 "$tmp" # apt fetches as the user _apt
holder=''
cleanup() {
    [[ -n $holder ]] && kill "$holder" 2>/dev/null
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$'; then
        apt-get -q -o DPkg::Lock::Timeout=120 purge -y "$pkg" >/dev/null 2>&1 ||
            echo "test_dpkg_lock: could not purge $pkg; run: apt-get purge $pkg" >&2
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# The dummy package and a flat file: repository with it.
mkdir -p "$tmp/pkg/DEBIAN" "$tmp/repo" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/parts"
cat >"$tmp/pkg/DEBIAN/control" <<EOF
Package: $pkg
Version: 1.0
Architecture: all
Maintainer: pstrain tests <tests@localhost>
Description: dummy package of pstrain's tests/launch/test_dpkg_lock.sh
 Empty. Installed and purged by the test; safe to remove.
EOF
dpkg-deb --root-owner-group -b "$tmp/pkg" "$tmp/repo/$pkg.deb" >/dev/null
{
    cat "$tmp/pkg/DEBIAN/control"
    echo "Filename: ./$pkg.deb"
    echo "Size: $(stat -c %s "$tmp/repo/$pkg.deb")"
    echo "SHA256: $(sha256sum "$tmp/repo/$pkg.deb" | cut -d' ' -f1)"
} >"$tmp/repo/Packages"
echo "deb [trusted=yes] file:$tmp/repo ./" >"$tmp/sources.list"
cat >"$tmp/apt.conf" <<EOF
Dir::Etc::sourcelist "$tmp/sources.list";
Dir::Etc::sourceparts "$tmp/parts";
Dir::State::Lists "$tmp/lists";
Dir::Cache "$tmp/cache";
EOF
export APT_CONFIG=$tmp/apt.conf

fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
installed() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' ok installed$'; }
if installed; then apt-get -q -o DPkg::Lock::Timeout=120 purge -y "$pkg" >/dev/null; fi

# hold FILE: lock FILE as apt does (fcntl, waiting for it if someone else has it) in a process
# of its own, $holder, until it is killed (at most 120 s).
hold() {
    rm -f "$tmp/held"
    python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(120)' "$1" "$tmp/held" &
    holder=$!
    for _ in $(seq 600); do [[ -e $tmp/held ]] && return 0; sleep 0.2; done
    bad "could not take $1 within 120 s (another apt-get running all along?)"
    exit 1
}
release() { kill "$holder"; wait "$holder" 2>/dev/null || true; holder=''; }

# ensure_pkgs in the background, its stderr and stdout in $tmp/log.
start() {
    (cd "$root" && exec bash -c 'source launch/lib.sh; ensure_pkgs "$@"' launch/setup "$pkg") \
        >"$tmp/log" 2>&1 &
    ens=$!
}
# wait_for REGEX: until $tmp/log has a line matching REGEX (60 s at most).
wait_for() {
    for _ in $(seq 300); do grep -qE "$1" "$tmp/log" && return 0; sleep 0.2; done
    return 1
}

# run LOCKFILE NAME: hold LOCKFILE, start ensure_pkgs, see it say it waits for NAME held by
# the holder and not install meanwhile; release; it installs and exits 0.
run() {
    local lock=$1 name=$2
    hold "$lock"
    start
    if wait_for "waiting up to [0-9]+ s for $name \($lock\), held by process $holder \(python3\)"; then
        sleep 3 # it still waits, and has installed nothing
        kill -0 "$ens" 2>/dev/null || bad "$name: ensure_pkgs ended while the lock was held"
        ! installed || bad "$name: $pkg installed while the lock was held"
        echo "held $lock (process $holder); ensure_pkgs says:"
        grep -E 'waiting up to' "$tmp/log" | sed 's/^/  /'
    else
        bad "$name: no line that it waits for $lock held by $holder"
    fi
    release
    local rc=0
    wait "$ens" || rc=$?
    [[ $rc -eq 0 ]] || bad "$name: ensure_pkgs exited $rc after the lock was released"
    installed || bad "$name: $pkg not installed after the lock was released"
    [[ $rc -eq 0 ]] && installed && echo "released it: ensure_pkgs went on, $pkg installed (exit 0)"
    [[ $fails -eq 0 ]] || sed 's/^/  log: /' "$tmp/log"
    if installed; then apt-get -q -o DPkg::Lock::Timeout=120 purge -y "$pkg" >/dev/null; fi
}

# 1. The package lists lock (this test's own; `apt-get update` alone would fail at once).
run "$tmp/lists/lock" "the package lists lock"
# 2. The real dpkg front-end lock, as unattended-upgrades holds it (a few seconds).
run /var/lib/dpkg/lock-frontend "the dpkg lock"

# 3. It can fail: a lock held past APT_LOCK_TIMEOUT ends ensure_pkgs with a line that says so.
hold "$tmp/lists/lock"
rc=0
(cd "$root" && APT_LOCK_TIMEOUT=3 bash -c 'source launch/lib.sh; ensure_pkgs "$@"' launch/setup \
    "$pkg") >"$tmp/log" 2>&1 || rc=$?
release
if [[ $rc -ne 0 ]] && grep -qE "the package lists lock .* is still held by process [0-9]+ \(python3\); waited 3 s" "$tmp/log"; then
    echo "held past APT_LOCK_TIMEOUT=3: exit $rc, $(grep 'still held' "$tmp/log")"
else
    bad "APT_LOCK_TIMEOUT=3 with the lock held: exit $rc"
    sed 's/^/  log: /' "$tmp/log"
fi
! installed || bad "$pkg installed although the lock was never released"

[[ $fails -eq 0 ]] || { echo "test_dpkg_lock: $fails failure(s)"; exit 1; }
echo "test_dpkg_lock: ok"
