#!/usr/bin/env bash
# test_cloud_init_runcmd.sh: runs the set-up of launch/cloud-init.yaml as far as this machine
# allows, in sandboxes: a mount, PID and network namespace each (unshare), with overlays on
# /etc, /home, /var, /run and /opt so that the user, the sudo rule and the files it makes
# vanish with the namespace, and no network at all. cloud-init's own code (22.4, Debian 12)
# writes write_files, creates the users (users:) and turns runcmd into the script it runs;
# the script runs as root with a bare environment, as cloud-final runs it.
#
# Not run here: the packages (package_update/packages: this machine's are what they are),
# the NFS mount itself (no NFS server; a share that cannot be mounted is checked to fail the
# set-up), ssh logins with the key, the real launch/setup (it fetches data and builds for
# minutes): the repository cloned is a small one whose launch/setup records who ran it and
# whether sudo worked, and fails on the branch "broken".
#
# Cases: the shipped defaults (placeholder key: must fail); a key and an empty REPO_URL (the
# --sync host); a REPO_URL that clones and sets up; one whose launch/setup fails; one that
# cannot be cloned; an NFS share that cannot be mounted. Exit 77 (skipped) without root,
# unshare, overlayfs, cloud-init (its python modules), python3-yaml, git, sudo or runuser.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
yaml=$root/launch/cloud-init.yaml
skip() { echo "test_cloud_init_runcmd: skipped: $*"; exit 77; }
[[ $EUID -eq 0 ]] || skip "needs root (namespaces, overlay mounts, useradd in the sandbox)"
for c in unshare git sudo runuser useradd; do
    command -v "$c" >/dev/null || skip "no $c"
done
# cloud-init's python: Debian's, whatever python3 comes first in PATH.
py=/usr/bin/python3
"$py" -c 'import yaml, cloudinit.util' 2>/dev/null ||
    skip "no cloud-init python modules or python3-yaml (apt-get install cloud-init)"
unshare --mount --pid --net --fork true 2>/dev/null || skip "cannot make namespaces here"

tmp=$(mktemp -d /tmp/test_cloud_init_runcmd.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# What this machine has before, to tell what the sandboxes would have left.
had_user=no
if id pstrain >/dev/null 2>&1; then had_user=yes; fi
declare -A had_files=()
for f in /etc/sudoers.d/90-pstrain-setup /etc/sudoers.d/90-cloud-init-users /etc/default/pstrain \
    /var/lib/pstrain-ready; do
    [[ -e $f ]] && had_files[$f]=$f
done
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The repository to clone: launch/setup records its user, $HOME and whether `sudo -n` works
# (what the real one needs to install packages); on the branch "broken" it then fails.
git init -q -b main "$tmp/src"
mkdir "$tmp/src/launch"
cat >"$tmp/src/launch/setup" <<'EOF'
#!/bin/sh
# Stand-in for launch/setup in tests/launch/test_cloud_init_runcmd.sh.
dir=$(cd "$(dirname "$0")/.." && pwd)
{
    echo "user=$(id -un)"
    echo "home=$HOME"
    if sudo -n true 2>/dev/null; then echo "sudo=yes"; else echo "sudo=no"; fi
} >"$dir/setup-ran"
echo "launch/setup (stand-in): ran as $(id -un)"
EOF
chmod +x "$tmp/src/launch/setup"
g() { git -C "$tmp/src" -c user.name=test -c user.email=test@localhost "$@"; }
g add launch/setup && g commit -qm setup
g checkout -qb broken
echo 'echo "launch/setup (stand-in): the build fails" >&2; exit 3' >>"$tmp/src/launch/setup"
g commit -qam broken
git clone -q --bare "$tmp/src" "$tmp/repo.git"
chmod -R a+rX "$tmp"

# What runs in each sandbox: overlays, then cloud-init's modules, the runcmd script, and the
# facts the checks read, in $tmp/CASE/facts.
cat >"$tmp/provision.py" <<'EOF'
import os, sys, yaml
from cloudinit import helpers, util
from cloudinit.config.cc_write_files import write_files
from cloudinit.distros import fetch, ug_util
cfg = yaml.safe_load(open(sys.argv[1]))
write_files("write_files", cfg.get("write_files"), "root:root")
distro = fetch("debian")("debian", {}, helpers.Paths({}))
users, _ = ug_util.normalize_users_groups(cfg, distro)
for name, ucfg in users.items():
    distro.create_user(name, **ucfg)
with open(sys.argv[2], "w") as f:
    f.write(util.shellify(cfg["runcmd"]))
os.chmod(sys.argv[2], 0o700)
EOF
cat >"$tmp/inner.sh" <<'EOF'
set -eu
tmp=$1 case=$2 fstab=$3
for d in etc home var run opt; do
    mkdir -p "$tmp/$case/$d.up" "$tmp/$case/$d.wk"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$tmp/$case/$d.up,workdir=$tmp/$case/$d.wk" "/$d"
done
if [ -n "$fstab" ]; then # what the mounts: module does: the line, and its mount point
    echo "$fstab" >>/etc/fstab
    mkdir -p "$(echo "$fstab" | cut -d' ' -f2)"
fi
# The repository served here is root's, and git refuses to serve another user's repository
# from a path (a real REPO_URL is a server's); in the sandbox's /etc/gitconfig only.
git config --system --add safe.directory "$tmp/repo.git"
/usr/bin/python3 "$tmp/provision.py" "$tmp/$case/cloud-init.yaml" "$tmp/$case/runcmd"
rc=0
(cd / && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    "$tmp/$case/runcmd") >"$tmp/$case/out" 2>&1 || rc=$?
{
    echo "rc=$rc"
    if [ -e /var/lib/pstrain-ready ]; then echo "ready=yes"; else echo "ready=no"; fi
    echo "rules=$(grep -ls pstrain /etc/sudoers /etc/sudoers.d/* | tr '\n' ' ')"
    if runuser -u pstrain -- sudo -n true 2>/dev/null; then echo "sudo_after=yes"; else echo "sudo_after=no"; fi
    echo "dir_owner=$(stat -c %U /opt/pstrain 2>/dev/null || echo none)"
    echo "git_owner=$(stat -c %U /opt/pstrain/.git 2>/dev/null || echo none)"
    cat /opt/pstrain/setup-ran 2>/dev/null || echo "user=none"
    echo "passwd=$(passwd -S pstrain | cut -d' ' -f2)"
    echo "keys=$(cat ~pstrain/.ssh/authorized_keys | cut -d' ' -f1,2)"
} >"$tmp/$case/facts"
EOF

# sandbox CASE SED [FSTAB]: the yaml edited with SED (as a user edits it), set up in a sandbox
# of its own; FSTAB, a line added to its /etc/fstab (the mounts: module's work).
key='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyOfTestCloudInitRuncmdXXXXXXXXXXXXXXXX test@sandbox'
sandbox() {
    mkdir -p "$tmp/$1"
    sed -e "$2" "$yaml" >"$tmp/$1/cloud-init.yaml"
    unshare --mount --pid --net --fork --mount-proc bash "$tmp/inner.sh" "$tmp" "$1" "${3:-}" ||
        bad "$1: the sandbox itself failed (exit $?)"
}
# expect CASE KEY=VALUE...: the facts of CASE hold those values; shows its output otherwise.
expect() {
    local c=$1 kv ok=1
    shift
    for kv in "$@"; do
        grep -qxF "$kv" "$tmp/$c/facts" || { bad "$c: expected $kv, got $(grep "^${kv%%=*}=" "$tmp/$c/facts")"; ok=0; }
    done
    if ((ok)); then
        echo "$c: $* ($(grep -hE 'pstrain|FAILED' "$tmp/$c/out" | tail -2 | tr '\n' ' ' | cut -c1-220))"
    else
        sed 's/^/  out: /' "$tmp/$c/out"
    fi
}
setkey="s|ssh-ed25519 AAAA-REPLACE-WITH-YOUR-PUBLIC-KEY you@your-machine|$key|"

sandbox defaults ''
expect defaults rc=1 ready=no dir_owner=none "rules=" sudo_after=no
grep -q 'the ssh key of user pstrain is the placeholder' "$tmp/defaults/out" ||
    bad "defaults: no line that says the ssh key is the placeholder"

sandbox sync "$setkey"
expect sync rc=0 ready=yes dir_owner=pstrain git_owner=none "rules=" sudo_after=no user=none \
    passwd=L "keys=${key% *}"

sandbox clone "$setkey; s|^      REPO_URL=\$|      REPO_URL=file://$tmp/repo.git|"
expect clone rc=0 ready=yes dir_owner=pstrain git_owner=pstrain user=pstrain home=/home/pstrain \
    sudo=yes "rules=" sudo_after=no

sandbox broken "$setkey; s|^      REPO_URL=\$|      REPO_URL=file://$tmp/repo.git|; s|^      REPO_REF=main|      REPO_REF=broken|"
expect broken rc=3 ready=no user=pstrain sudo=yes "rules=" sudo_after=no
grep -q 'pstrain set-up FAILED (exit 3)' "$tmp/broken/out" || bad "broken: no FAILED line"

sandbox noclone "$setkey; s|^      REPO_URL=\$|      REPO_URL=file://$tmp/nothing-here.git|"
expect noclone rc=128 ready=no user=none "rules=" sudo_after=no

# (the mount point under /opt, which the sandbox overlays; no name resolves without a network)
sandbox nfs "$setkey" 'nfs.invalid:/export /opt/shared nfs defaults,_netdev,comment=cloudconfig 0 0'
expect nfs ready=no "rules="
grep -q '^rc=0$' "$tmp/nfs/facts" && bad "nfs: a share that cannot be mounted did not fail the set-up"
grep -q 'mount point does not exist' "$tmp/nfs/out" && bad "nfs: the sandbox's mount point is missing"

# Nothing of the sandboxes is left on this machine.
if [[ $had_user == no ]] && id pstrain >/dev/null 2>&1; then bad "a user pstrain is left on this machine"; fi
for f in /etc/sudoers.d/90-pstrain-setup /etc/sudoers.d/90-cloud-init-users /etc/default/pstrain \
    /var/lib/pstrain-ready; do
    [[ $f == "${had_files[$f]:-}" || ! -e $f ]] || bad "$f is left on this machine"
done

[[ $fails -eq 0 ]] || { echo "test_cloud_init_runcmd: $fails failure(s)"; exit 1; }
echo "test_cloud_init_runcmd: ok"
