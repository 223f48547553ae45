#!/usr/bin/env bash
# test_cloud_init.sh: launch/cloud-init.yaml is valid user data for Debian 12's cloud-init
# (`cloud-init schema`: no error, no deprecated key), the check fails on broken copies (so a
# pass means something), and every package it installs is a Debian 12 package name.
# tests/launch/test_cloud_init_runcmd.sh runs its set-up steps in a sandbox.
# Exit 77 (skipped) without cloud-init (Debian package cloud-init) or python3-yaml.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
yaml=$root/launch/cloud-init.yaml
skip() { echo "test_cloud_init: skipped: $*"; exit 77; }
command -v cloud-init >/dev/null || skip "no cloud-init (apt-get install cloud-init)"
py=/usr/bin/python3 # Debian's, with python3-yaml (cloud-init needs it), whatever PATH says
"$py" -c 'import yaml' 2>/dev/null || skip "no python3-yaml"

tmp=$(mktemp -d /tmp/test_cloud_init.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# schema FILE: cloud-init's verdict on FILE: 0 valid and nothing deprecated, else 1; its
# output in $tmp/out. (22.4's `schema --annotate` exits 0 even on errors: it only shows them.)
schema() {
    local rc=0
    cloud-init schema --config-file "$1" >"$tmp/out" 2>&1 || rc=$?
    if [[ $rc -eq 0 ]] && grep -q 'Valid cloud-config' "$tmp/out" &&
        ! grep -qE 'deprecations: *[^ ]' "$tmp/out"; then
        return 0
    fi
    return 1
}

echo "cloud-init $(cloud-init --version 2>&1 | awk '{print $2}')"
if schema "$yaml"; then
    echo "launch/cloud-init.yaml: $(cat "$tmp/out")"
else
    bad "launch/cloud-init.yaml does not pass cloud-init schema:"
    cat "$tmp/out"
    cloud-init schema --config-file "$yaml" --annotate 2>&1 | grep -E '# E[0-9]|# D[0-9]|Error|error' || true
fi

# Negative controls: copies broken as an edit could break them, each must be refused.
# break NAME PYTHON: a copy of the yaml with PYTHON applied to its parsed form `c`.
broken() {
    "$py" - "$yaml" "$tmp/$1.yaml" "$2" <<'EOF'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
exec(sys.argv[3])
with open(sys.argv[2], "w") as f:
    f.write("#cloud-config\n")
    yaml.safe_dump(c, f, sort_keys=False)
EOF
    if schema "$tmp/$1.yaml"; then
        bad "a copy with $1 passes cloud-init schema"
    else
        echo "refused, as it must be: $1: $({ grep -oE 'errors: .*' "$tmp/out" ||
            grep -oE 'deprecations: .+' "$tmp/out"; } | head -1 | cut -c1-150)"
    fi
}
broken "a write_files entry without a path" 'del c["write_files"][0]["path"]'
broken "runcmd a string" 'c["runcmd"] = c["runcmd"][0]'
broken "package_update 'yes'" 'c["package_update"] = "yes"'
broken "the deprecated 'sudo: false'" 'c["users"][1]["sudo"] = False'
# And a copy that is no longer YAML (an indentation slip in runcmd's block).
sed 's/^    set -eu$/   set -eu\n  x: [/' "$yaml" >"$tmp/indent.yaml"
if schema "$tmp/indent.yaml"; then bad "a copy that is not YAML passes"; else
    echo "refused, as it must be: not YAML: $(grep -oE 'is not valid yaml.*' "$tmp/out" | head -1)"
fi

# Every package is a Debian 12 name (apt's lists of this machine; only on Debian 12).
if [[ $(cut -d. -f1 /etc/debian_version 2>/dev/null) == 12 ]] && command -v apt-cache >/dev/null; then
    mapfile -t pkgs < <("$py" -c 'import sys, yaml
for p in yaml.safe_load(open(sys.argv[1]))["packages"]: print(p)' "$yaml")
    unknown=()
    for p in "${pkgs[@]}"; do
        apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || unknown+=("$p")
    done
    if [[ ${#unknown[@]} -eq 0 ]]; then
        echo "packages: all ${#pkgs[@]} known to apt on Debian $(cat /etc/debian_version)"
    else
        bad "packages not known to apt on Debian 12: ${unknown[*]}"
    fi
else
    echo "packages: not checked (not Debian 12)"
fi

[[ $fails -eq 0 ]] || { echo "test_cloud_init: $fails failure(s)"; exit 1; }
echo "test_cloud_init: ok"
