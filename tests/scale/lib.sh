# shellcheck shell=bash
# lib.sh: what run-lab and check-links share: link rates, and tbf on both ends of a host's
# cable. Sourced; the caller has set -euo pipefail.
#
# A host's cable (netns-cluster) is a veth pair: the root end is on the bridge, the other end
# is eth0 inside the host's namespace. A qdisc shapes what leaves an interface, so a host's
# traffic out is shaped on its eth0 and its traffic in on the root end: each direction of
# each cable gets the rate, as a full-duplex NIC would.

# The rate RATE (a tc rate: 100mbit, 1gbit, 2.5gbit, 500kbit, 12mbps, 1gibit, or a bare
# number of bits/s) as whole bits per second on stdout; "none" gives 0 (unshaped). Fails,
# printing nothing, on anything else.
lab_rate_bits() {
    local r=${1,,}
    [[ $r == none ]] && { echo 0; return 0; }
    [[ $r =~ ^([0-9]+(\.[0-9]+)?)([a-z]*)$ ]] || return 1
    local num=${BASH_REMATCH[1]} unit=${BASH_REMATCH[3]} mul
    case $unit in
        '' | bit) mul=1 ;;
        kbit) mul=1000 ;; mbit) mul=1000000 ;; gbit) mul=1000000000 ;; tbit) mul=1000000000000 ;;
        kibit) mul=1024 ;; mibit) mul=1048576 ;; gibit) mul=1073741824 ;;
        bps) mul=8 ;; kbps) mul=8000 ;; mbps) mul=8000000 ;; gbps) mul=8000000000 ;;
        *) return 1 ;;
    esac
    awk -v n="$num" -v m="$mul" 'BEGIN { v = n * m; if (v < 8000) exit 1; printf "%.0f\n", v }'
}

# BITS/s as a short label: 100mbit, 1gbit, 62.5mbit, 781.25kbit.
lab_rate_label() {
    awk -v b="$1" 'BEGIN {
        if (b == 0) { print "none"; exit }
        if (b >= 1e9) { v = b / 1e9; u = "gbit" } else if (b >= 1e6) { v = b / 1e6; u = "mbit" }
        else { v = b / 1e3; u = "kbit" }
        s = sprintf("%.3f", v); sub(/0+$/, "", s); sub(/\.$/, "", s); print s u }'
}

# tbf's bucket for BITS/s, in bytes. tbf refills its bucket at timer ticks, so to reach the
# rate it needs at least rate / HZ bytes (HZ = 250 here; 100 on some kernels): we give it
# 10 ms of the rate, which is enough for any HZ >= 100. At least 4 full frames (6 KB). A GSO
# super-packet (veth sends up to 64 KB at once) larger than the bucket is cut into frames by
# tbf itself (tbf_segment), which costs CPU but keeps the rate right, so the bucket need not
# hold 64 KB at low rates (a large bucket there lets a long burst through at memory speed).
lab_burst_bytes() {
    awk -v b="$1" 'BEGIN { x = b / 8 / 100; if (x < 6000) x = 6000; printf "%.0f\n", x }'
}

# Shapes both ends of one host's cable at BITS/s (0: removes any shaping).
#   lab_shape NETNS ROOT_IF BITS [LATENCY_MS]
# LATENCY_MS (default 50) sizes each queue: it holds that long at BITS/s. Under dilation D
# run-lab passes 50 x D, so that the queue holds the same bytes as a 50 ms queue at the
# undilated rate: a switch's buffer is bytes, and a queue D times smaller would drop the
# bursts of many senders D times sooner.
lab_shape() {
    local ns=$1 rif=$2 bits=$3 lat=${4:-50} burst
    if [[ $bits == 0 ]]; then
        tc qdisc del dev "$rif" root 2>/dev/null || true
        ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
        return 0
    fi
    burst=$(lab_burst_bytes "$bits")
    tc qdisc replace dev "$rif" root tbf rate "${bits}bit" burst "$burst" latency "${lat}ms"
    ip netns exec "$ns" tc qdisc replace dev eth0 root tbf rate "${bits}bit" burst "$burst" \
        latency "${lat}ms"
}
