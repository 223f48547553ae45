#!/usr/bin/python3
"""tcp_probe.py: one TCP stream's throughput, for check-links (run it inside a namespace).

  tcp_probe.py recv PORT SECONDS WARMUP   accept one connection on PORT; skip the first WARMUP
                                          seconds after the first byte (slow start, the tbf
                                          bucket's first burst), then count the bytes of the
                                          next SECONDS; print the rate in bits/s on stdout
  tcp_probe.py send ADDR PORT SECONDS     connect to ADDR:PORT (retrying for 5 s while the
                                          receiver starts) and send for SECONDS

The sender writes 1 MiB buffers with sendall, the receiver reads into one buffer with
recv_into: Python costs a few percent of a core per Gbit/s this way, not the rate.
"""
import socket
import sys
import time


def recv(port, seconds, warmup):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(15)
    conn, _ = srv.accept()
    conn.settimeout(15)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    n = conn.recv_into(view)
    t0 = time.monotonic()
    start = t0 + warmup
    end = start + seconds
    counted = 0
    t_first = None
    while n > 0:
        now = time.monotonic()
        if now >= end:
            break
        if now >= start:
            if t_first is None:
                t_first = now
            else:
                counted += n
        n = conn.recv_into(view)
    t_last = time.monotonic()
    conn.close()
    srv.close()
    if t_first is None or t_last <= t_first:
        print("0")
    else:
        print("%.0f" % (counted * 8 / (t_last - t_first)))


def send(addr, port, seconds):
    deadline = time.monotonic() + 5
    while True:
        try:
            s = socket.create_connection((addr, port), timeout=15)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    data = bytes(1 << 20)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the receiver has counted enough and closed
    s.close()


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "recv":
        recv(int(a[1]), float(a[2]), float(a[3]))
    elif len(a) == 4 and a[0] == "send":
        send(a[1], int(a[2]), float(a[3]))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
