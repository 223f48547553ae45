# lib.sh: the start the launch/pstrain tests on three netns "hosts" share. A test script
# sources it first thing, with its own arguments:
#
#   source "$(dirname "$0")/lib.sh" "$@"
#
# Outside the cluster it re-runs the calling script inside `netns-cluster --hosts 3` (it
# does not return). Inside it sets here (the scripts' folder), root, data, tmp (removed with
# the cluster), agent (the rsh agent), hosts (their addresses), netns (their namespaces) and
# build (a folder holding a copy of the pstrain binary the test was given, for launch/pstrain
# --build). The caller has set -euo pipefail.
here=$(cd "$(dirname "$0")" && pwd -P)
if [[ ${1:-} != --inside ]]; then
    [[ $# -ge 1 ]] || { echo "usage: $(basename "$0") PSTRAIN" >&2; exit 2; }
    exec "$here/netns-cluster" --hosts 3 -- "$0" --inside "$@"
fi
root=$(cd "$here/../.." && pwd -P)
# Under ASan, LeakSanitizer would report Open MPI's own allocations at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
data=${PSTRAIN_DATA:-$root/data}
tmp=$PSTRAIN_TMPDIR
agent=$(dirname "$PSTRAIN_HOSTFILE")/rsh-netns
read -r -a hosts <<<"$PSTRAIN_HOSTS"
read -r -a netns <<<"$PSTRAIN_NETNS"
build=$tmp/build
mkdir -p "$build"
cp "$2" "$build/pstrain"
