#!/usr/bin/env bash
# test_launcher.sh PSTRAIN: launch/pstrain across three "hosts" (network namespaces on a
# bridge, real TCP between distinct addresses; see README.md):
#   1. --dry-run prints pstrain's check of the train flags and an mpirun command, and that
#      command, run as printed, trains;
#   2. a real launch checks the 3 hosts, prints their table, and trains across them; with
#      --servers 2 on two 2-slot hosts, one server lands on each (as Slurm's cyclic order);
#   3. a host whose data directory is empty is refused by name, before anything starts;
#   4. a host with another build is refused by name, with both check lines;
#   5. --sync copies the build to that host, which then passes, and the job runs (needs rsync).
# In 3-5 host 3 really differs: the launcher reaches it through a remote-shell wrapper that
# runs host 3's commands in a mount namespace where one directory (the data, or the build) is
# replaced by another, so the launcher asks every host as it would through ssh and one
# host's answer is another. The job uses a copy of PSTRAIN in a build directory of its own.
# Exit: 0 pass, 1 fail, 77 skip (no namespaces).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"
launcher=$root/launch/pstrain

failures=0
ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
# show FILE: the file, indented, without Open MPI's harmless setpgid warnings.
show() { grep -v 'plm:rsh: Warning: setpgid' "$1" | sed 's/^/#   /' || true; }
# trained LOG WHAT: the job in LOG ran across the hosts: server 0 on host 1, both workers
# pushing every step, a test accuracy at the end.
trained() {
    local log=$1 steps=$2 what=$3
    if grep -q "^server 0 at tcp://${hosts[0]}:" "$log" &&
        grep -q "^server 0: pushes per worker: $steps $steps$" "$log" &&
        grep -q '^test_loss: .* test_accuracy: ' "$log"; then
        ok "$what: server 0 on ${hosts[0]}, 2 workers x $steps steps, test accuracy"
    else
        fail "$what: the job's output lacks server 0 on ${hosts[0]}, $steps pushes per worker or a test accuracy"
    fi
}
common=(--hostfile "$PSTRAIN_HOSTFILE" --build "$build" --data "$data")

# --- 1. --dry-run: a command to paste -----------------------------------------------------
echo "# 1. --dry-run"
rc=0
"$launcher" --dry-run "${common[@]}" --rsh "$agent" \
    train --model mnist_cnn --servers 1 --epochs 1 --max-steps 20 >"$tmp/dry.out" 2>&1 || rc=$?
show "$tmp/dry.out"
cmd=$(tail -n1 "$tmp/dry.out")
if ((rc == 0)) && [[ $cmd == *"mpirun --hostfile $PSTRAIN_HOSTFILE -np 3 "* &&
    $cmd == *"--mca plm_rsh_agent $agent"* &&
    $cmd == *"--mca oob_tcp_if_include $PSTRAIN_SUBNET"* &&
    $cmd == *" $build/pstrain train --model mnist_cnn --servers 1 --epochs 1 --max-steps 20 --progress 0 --threads "* &&
    $(grep -c '^#   dry run: ' "$tmp/dry.out") -ge 2 ]]; then
    ok "--dry-run printed pstrain's own check and an mpirun command (3 ranks, the agent, subnet $PSTRAIN_SUBNET; --progress 0 into a file)"
else
    fail "--dry-run: status $rc, or its last line is not the expected mpirun command"
fi
# Everything it prints is shell: comments, then the command. Run it as pasted.
rc=0
timeout -k 5 240 bash -c "$(cat "$tmp/dry.out")" >"$tmp/pasted.log" 2>&1 || rc=$?
show "$tmp/pasted.log"
if ((rc == 0)); then ok "the pasted command ran the job"; else fail "the pasted command exited $rc"; fi
trained "$tmp/pasted.log" 20 "pasted"

# --- 2. a real launch ----------------------------------------------------------------------
echo "# 2. launch across 3 hosts"
rc=0
timeout -k 5 240 "$launcher" "${common[@]}" --rsh "$agent" \
    train --model mnist_cnn --servers 1 --max-steps 30 --epochs 1 >"$tmp/run.log" 2>&1 || rc=$?
show "$tmp/run.log"
if ((rc == 0)); then ok "launch/pstrain exited 0"; else fail "launch/pstrain exited $rc"; fi
n_ok=0
for h in "${hosts[@]}"; do
    if grep -qE "^  ${h//./\\.} +[0-9]+ +1 (server|worker) +ok$" "$tmp/run.log"; then
        n_ok=$((n_ok + 1))
    fi
done
if grep -q 'checked 3 hosts' "$tmp/run.log" && ((n_ok == 3)); then
    ok "the table lists the 3 hosts as checked and ok"
else
    fail "no table with the 3 hosts ok"
fi
trained "$tmp/run.log" 30 "launched"

# --- 2b. two servers on two 2-slot hosts: one server per host, as under Slurm ---------------
echo "# 2b. --servers 2 on two 2-slot hosts"
rc=0
timeout -k 5 240 "$launcher" --hosts "${hosts[0]}:2,${hosts[1]}:2" --build "$build" --data "$data" \
    --rsh "$agent" train --model mnist_cnn --servers 2 --max-steps 10 --epochs 1 >"$tmp/two.log" 2>&1 ||
    rc=$?
show "$tmp/two.log"
if ((rc == 0)) && grep -q "^server 0 at tcp://${hosts[0]}:" "$tmp/two.log" &&
    grep -q "^server 1 at tcp://${hosts[1]}:" "$tmp/two.log" &&
    grep -qE "^  ${hosts[0]//./\\.} +[0-9]+ +1 server, 1 worker +ok$" "$tmp/two.log" &&
    grep -qE "^  ${hosts[1]//./\\.} +[0-9]+ +1 server, 1 worker +ok$" "$tmp/two.log"; then
    ok "two servers on 2-slot hosts: server 0 on ${hosts[0]}, server 1 on ${hosts[1]}, a worker beside each"
else
    fail "two servers on 2-slot hosts: status $rc, or not one server per host"
fi

# --- 3 and 4: host 3 differs ---------------------------------------------------------------
# rsh-odd: rsh-netns, except that on host ODD_HOST the directory ODD_DIR shows ODD_WITH's
# files (a bind mount in a mount namespace of its own: nothing else sees it).
cat >"$tmp/rsh-odd" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
if [[ $1 == "$ODD_HOST" ]]; then
    # shellcheck disable=SC2016 # for the inner shell
    exec unshare --mount -- bash -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' \
        rsh-odd "$ODD_WITH" "$ODD_DIR" "$ODD_AGENT" "$@"
fi
exec "$ODD_AGENT" "$@"
EOF
chmod +x "$tmp/rsh-odd"
export ODD_AGENT=$agent ODD_HOST=${hosts[2]}

# refused RC LOG WHAT PATTERN: the launcher exited 2 naming host 3 (and no other) with
# PATTERN, and started nothing.
refused() {
    local rc=$1 log=$2 what=$3 pattern=$4
    if ((rc == 2)) && grep -qE "refused: ${hosts[2]//./\\.}: $pattern" "$log" &&
        ! grep -qE "refused: (${hosts[0]//./\\.}|${hosts[1]//./\\.})" "$log" &&
        ! grep -q 'starting:' "$log"; then
        ok "$what: refused ${hosts[2]} (status 2), the others ok, nothing started"
    else
        fail "$what: expected status 2 and a refusal of ${hosts[2]} only ($pattern); got status $rc"
    fi
}

echo "# 3. host 3 has no data"
mkdir -p "$tmp/empty"
rc=0
ODD_DIR=$data ODD_WITH=$tmp/empty timeout -k 5 120 "$launcher" "${common[@]}" \
    --rsh "$tmp/rsh-odd" train --model mnist_cnn --servers 1 --max-steps 10 >"$tmp/nodata.log" 2>&1 || rc=$?
show "$tmp/nodata.log"
refused "$rc" "$tmp/nodata.log" "no data" "data missing: .*(--sync|fetch-data)"

echo "# 4. host 3 has another build"
mkdir -p "$tmp/other"
cat >"$tmp/other/pstrain" <<'EOF'
#!/bin/sh
# Another build of pstrain: `check --model M ...` answers with another build id.
echo "pstrain 0.1.0 build 0000000-other model $3 layout 0x0123456789abcdef data ok"
EOF
chmod +x "$tmp/other/pstrain"
here_line=$("$build/pstrain" check --model mnist_cnn --data "$data" 2>/dev/null | head -n1 || true)
rc=0
ODD_DIR=$build ODD_WITH=$tmp/other timeout -k 5 120 "$launcher" "${common[@]}" \
    --rsh "$tmp/rsh-odd" train --model mnist_cnn --servers 1 --max-steps 10 >"$tmp/other.log" 2>&1 || rc=$?
show "$tmp/other.log"
refused "$rc" "$tmp/other.log" "another build" "a different build"
if grep -qF "there: 'pstrain 0.1.0 build 0000000-other model mnist_cnn" "$tmp/other.log" &&
    [[ -n $here_line ]] && grep -qF "here: '$here_line'" "$tmp/other.log"; then
    ok "another build: the refusal shows both check lines"
else
    fail "another build: the refusal does not show both lines (here: '$here_line')"
fi

# --- 5. --sync puts this build on host 3 ---------------------------------------------------
echo "# 5. --sync"
if ! command -v rsync >/dev/null; then
    echo "# skipped: no rsync on this machine"
else
    rc=0
    ODD_DIR=$build ODD_WITH=$tmp/other timeout -k 5 240 "$launcher" "${common[@]}" --sync \
        --rsh "$tmp/rsh-odd" train --model mnist_cnn --servers 1 --max-steps 10 --epochs 1 \
        >"$tmp/sync.log" 2>&1 || rc=$?
    show "$tmp/sync.log"
    if ((rc == 0)) && cmp -s "$build/pstrain" "$tmp/other/pstrain"; then
        ok "--sync copied the build to host 3 and the job ran"
    else
        fail "--sync: status $rc, or host 3's build is not this one"
    fi
    trained "$tmp/sync.log" 10 "synced"
fi

if ((failures > 0)); then
    echo "test_launcher: $failures check(s) FAILED"
    exit 1
fi
echo "test_launcher: PASS"
