#!/usr/bin/env bash
# test_slurm.sh PSTRAIN: launch/slurm/pstrain.sbatch, as written, on a real Slurm (Debian
# 12's 22.05: slurmctld, a slurmd per "host", munge) across two network-namespace hosts (see
# README.md). The job is submitted with sbatch, its ranks started by the template's srun
# --mpi=pmix; only sbatch's command line makes it small (2 nodes, a 1-minute time limit with
# the signal 15 s before it, a short mnist_cnn run). It must take the path the template
# promises: Slurm signals the batch script before the time limit, every rank checkpoints and
# exits 75, the script requeues the job, and the requeued run goes on with --resume auto
# from that checkpoint's step (the test then raises the time limit, so that it finishes in
# one go); the job ends COMPLETED with status 0 and a test accuracy. Also: one server per
# node, and srun asks for the --cpus-per-task sbatch was given (Slurm 22.05's srun no longer
# reads it). Fails when Slurm or munge are missing (launch/setup installs them).
# Exit: 0 pass, 1 fail, 77 skip (not root, or no namespaces).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
if [[ ${1:-} != --inside ]]; then
    [[ $# -eq 1 ]] || { echo "usage: $(basename "$0") PSTRAIN" >&2; exit 2; }
    exec "$here/netns-cluster" --hosts 2 -- "$0" --inside "$(readlink -f "$1")"
fi
fail() {
    echo "FAIL: $*"
    exit 1
}
missing=''
for c in munged slurmctld slurmd slurmstepd sbatch srun scontrol scancel sinfo; do
    command -v "$c" >/dev/null || missing+=" $c"
done
[[ -z $missing ]] || fail "not installed:$missing (launch/setup installs slurmctld slurmd slurm-client munge)"

read -r -a hosts <<<"$PSTRAIN_HOSTS"
read -r -a netns <<<"$PSTRAIN_NETNS"
read -r -a names <<<"$PSTRAIN_HOSTNAMES"
tmp=$PSTRAIN_TMPDIR
export PSTRAIN_DATA=${PSTRAIN_DATA:-$root/data}
# The template runs $PSTRAIN_BUILD/pstrain: a copy of the binary the test was given.
mkdir -p "$tmp/build"
cp "$2" "$tmp/build/pstrain"
export PSTRAIN_BUILD=$tmp/build

# --- the cluster: munge, slurmctld on h1, a slurmd on every host --------------------------
S=$tmp/slurm
mkdir -p "$S/state" "$S/log" "$S/munge" "$S/here"
chmod 700 "$S/munge"
dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$S/munge/munge.key"
pids=()
stop_daemons() {
    ((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_daemons EXIT
# One munged for every host: its socket is a file, and the namespaces share the filesystem.
ip netns exec "${netns[0]}" munged -F --force --socket="$S/munge/socket" \
    --key-file="$S/munge/munge.key" --pid-file="$S/munge/pid" --seed-file="$S/munge/seed" \
    --log-file="$S/log/munged.log" 2>>"$S/log/munged.log" &
pids+=($!)
{
    echo "ClusterName=pstrain-test"
    echo "SlurmctldHost=${names[0]}(${hosts[0]})"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "CredType=cred/munge"
    # cred_expire is also how long a requeued job waits before it may start again (default
    # 120 s): 10 s keeps the test short.
    echo "AuthInfo=socket=$S/munge/socket,cred_expire=10"
    echo "StateSaveLocation=$S/state"
    echo "SlurmdSpoolDir=$S/spool-%n"
    echo "SlurmctldPidFile=$S/slurmctld.pid"
    echo "SlurmdPidFile=$S/slurmd-%n.pid"
    echo "SlurmctldLogFile=$S/log/slurmctld.log"
    echo "SlurmdLogFile=$S/log/slurmd-%n.log"
    # Node-local scratch (the PMIx plugin's per-step directories): each slurmd mounts its own
    # directory here, in its own mount namespace, as every real node has its own /tmp.
    echo "TmpFS=$S/here"
    # No cgroups (a container): processes are tracked by their parents, and not confined.
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    # Four CPUs a node on a 2-core machine: --cpus-per-task=2 beside --ntasks-per-node=2.
    echo "SlurmdParameters=config_overrides"
    echo "MpiDefault=none"
    echo "JobRequeue=1"
    echo "ReturnToService=2"
    echo "MinJobAge=3600"
    echo "KillWait=10"
    # Start a job as soon as it is eligible (the requeued one), not at the next 30-60 s pass.
    echo "SchedulerParameters=sched_interval=2,bf_interval=1"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "JobCompType=jobcomp/none"
    echo "MailProg=/bin/true"
    echo "PlugStackConfig=$S/plugstack.conf"
    for i in "${!hosts[@]}"; do
        echo "NodeName=${names[i]} NodeAddr=${hosts[i]} CPUs=4 Sockets=1 CoresPerSocket=4" \
            "ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN"
    done
    echo "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
} >"$S/slurm.conf"
# Slurm 22.05's autodetection finds no cgroup version in this container's /sys/fs/cgroup,
# and slurmd will not start without one (it uses none of it with the plugins above).
echo "CgroupPlugin=cgroup/v1" >"$S/cgroup.conf"
: >"$S/plugstack.conf"
export SLURM_CONF=$S/slurm.conf
for _ in $(seq 50); do
    [[ -S $S/munge/socket ]] && break
    sleep 0.1
done
[[ -S $S/munge/socket ]] || { cat "$S/log/munged.log"; fail "munged did not start"; }
# Each daemon in its host's namespace, with the host's name (UTS namespace).
# shellcheck disable=SC2016  # $1.. belong to the inner shell
ip netns exec "${netns[0]}" unshare --uts -- \
    bash -c 'hostname "$1" && exec slurmctld -D -i' - "${names[0]}" 2>>"$S/log/slurmctld.log" &
pids+=($!)
for i in "${!hosts[@]}"; do
    mkdir -p "$S/spool-${names[i]}" "$S/tmp-${names[i]}"
    # shellcheck disable=SC2016
    ip netns exec "${netns[i]}" unshare --uts --mount -- bash -c \
        'hostname "$1" && mount --bind "$2" "$3" && exec slurmd -D -N "$1"' \
        - "${names[i]}" "$S/tmp-${names[i]}" "$S/here" 2>>"$S/log/slurmd-${names[i]}.log" &
    pids+=($!)
done
idle=''
for _ in $(seq 120); do
    if [[ $(sinfo -h -o '%D %T' 2>/dev/null) == "${#hosts[@]} idle" ]]; then idle=1; break; fi
    sleep 0.5
done
if [[ -z $idle ]]; then
    sinfo || true
    tail -n 20 "$S"/log/*.log
    fail "the ${#hosts[@]} slurmds did not come up idle"
fi
echo "slurm: $(sinfo -h -o '%D nodes %N %T, %c CPUs each') ($(srun --version)); srun --mpi=list:" \
    "$(srun --mpi=list 2>&1 | sed -n 's/^\t//p' | tr '\n' ' ')"

# --- the job -------------------------------------------------------------------------------
# The template as written, from the repository as its header says; sbatch's options override
# its #SBATCH lines, the arguments after it pstrain's defaults. SLURM_DEBUG=2 makes srun print
# the CPUs it asks for.
ck=$tmp/ck
out=$tmp/job.out
job=$(cd "$root" && SLURM_DEBUG=2 sbatch --parsable --nodes=2 --ntasks-per-node=2 \
    --cpus-per-task=2 --time=1 --signal=B:TERM@15 --output="$out" --chdir="$tmp" \
    launch/slurm/pstrain.sbatch --model mnist_cnn --epochs 3 --checkpoint-dir "$ck")
echo "job $job submitted"
# 3 epochs (2,532 steps): the first run, cut 15-45 s in, does 900-1,300 of them here, so a
# machine twice as fast still gets cut.
# Slurm checks time limits every 30 s, so the signal comes at the first check at least 15 s
# after the start (sent up to 30 s early: 15-45 s in). Once the job has been requeued, its
# time limit goes up to 10 minutes: the resumed run then finishes in one stretch, whatever
# this machine's speed, instead of a stretch of 15-45 s (half of it start-up) at a time.
start=$(date +%s)
state='' last='' restarts=0 extended=''
while (($(date +%s) - start < 330)); do
    info=$(scontrol -o show job "$job" 2>/dev/null || true)
    state=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$info")
    restarts=$(sed -n 's/.* Restarts=\([0-9]*\).*/\1/p' <<<"$info")
    if [[ "$state $restarts" != "$last" ]]; then
        echo "  +$(($(date +%s) - start)) s: $state, restarts ${restarts:-?}"
        last="$state $restarts"
    fi
    case $state in
        PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED | REQUEUE_HOLD | REQUEUE_FED | SUSPENDED) ;;
        *) break ;;
    esac
    if [[ -z $extended && ${restarts:-0} -ge 1 ]]; then
        scontrol update JobId="$job" TimeLimit=10 || fail "scontrol update JobId=$job TimeLimit=10 failed"
        extended=1
    fi
    sleep 1
done
show() {
    echo "--- job output"
    grep -v -E '^srun: debug' "$out" || true
    echo "--- job"
    scontrol show job "$job" || true
}
[[ $state == COMPLETED ]] || { show; fail "the job is $state after $restarts restarts, not COMPLETED"; }
grep -q 'ExitCode=0:0' <<<"$info" || { show; fail "the job completed, but not with status 0"; }
((restarts >= 1)) || { show; fail "the job was never requeued: it finished before its time limit (make it longer)"; }

# Every stretch but the last: SIGTERM to the script, the ranks' checkpoint, srun exits 75,
# requeue; every stretch but the first resumes at the step the one before it stopped at.
grep -c '^pstrain.sbatch: job' "$out" | grep -qx $((restarts + 1)) || { show; fail "expected $((restarts + 1)) starts of the script"; }
stops=$(sed -n 's/^stopped at step \([0-9]*\) on request.*/\1/p' "$out" | tr '\n' ' ')
resumes=$(sed -n 's/^resuming at step \([0-9]*\):.*/\1/p' "$out" | tr '\n' ' ')
sigs=$(grep -c '^pstrain.sbatch: SIGTERM' "$out" || true)
exits=$(sed -n 's/^pstrain.sbatch: srun exited \([0-9]*\)$/\1/p' "$out" | tr '\n' ' ')
echo "stretches: $((restarts + 1)); script signalled $sigs times; ranks stopped at steps: $stops; resumed at: $resumes; srun exits: $exits"
# (The last stretch may be signalled too, as it finishes: then it finishes all the same.)
((sigs == restarts || sigs == restarts + 1)) || { show; fail "$restarts requeues but $sigs signals to the script"; }
[[ $stops == "$resumes" && $(wc -w <<<"$stops") -eq $restarts ]] ||
    { show; fail "each run must resume at the step the one before stopped at"; }
[[ $exits == "$(printf '75 %.0s' $(seq "$restarts"))0 " ]] ||
    { show; fail "srun must exit 75 after each stop and 0 at the end"; }
for s in $stops; do
    ((s > 0)) || { show; fail "a stretch stopped at step 0: it made no progress"; }
done
grep -q '^test_loss: .* test_accuracy: ' "$out" || { show; fail "no test accuracy at the end"; }
grep -E '^test_loss' "$out" | sed 's/^/  /'

# One server per node: server r at host r+1's address (cyclic placement), in every stretch.
for r in 0 1; do
    addrs=$(sed -n "s|^server $r at tcp://\([0-9.]*\):.*|\1|p" "$out" | sort -u | tr '\n' ' ')
    [[ $addrs == "${hosts[r]} " ]] || { show; fail "server $r at $addrs, expected ${hosts[r]} (one server per node)"; }
done
# srun asked for 2 CPUs a task: 8 CPUs for 4 tasks (without --cpus-per-task 22.05 asks for 4).
cpus=$(sed -n 's/^srun: debug: *cpus \([0-9]*\), tasks \([0-9]*\),.*/\1 \2/p' "$out" | sort -u)
[[ $cpus == "8 4" ]] || { show; fail "srun asked for '$cpus' (CPUs tasks), expected '8 4': --cpus-per-task=2 lost"; }
echo "PASS: $((restarts + 1)) stretches, requeued at the time limit and resumed at steps $resumes; servers on ${hosts[*]}; srun asked for 2 CPUs a task ($(($(date +%s) - start)) s)"
