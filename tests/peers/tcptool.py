#!/usr/bin/python3
"""Tiny loopback TCP helpers for peer tests (stdlib only).

  tcptool.py echo [PORT]                 echo server on 127.0.0.1 (0 = free port); prints 'LISTENING <port>';
                                         echoes until the peer half-closes, then half-closes back
  tcptool.py freeport                    print a currently free 127.0.0.1 port
  tcptool.py xfer HOST PORT NBYTES [SEED] send NBYTES deterministic pseudo-random bytes, half-close,
                                         read everything back, compare SHA-256; prints
                                         'XFER ok sent=N recv=M sha256=...' (exit 0) or 'XFER FAIL ...' (exit 1)
  tcptool.py roundtrip HOST PORT TEXT    send TEXT, half-close, print what comes back (repr)
"""
import hashlib
import socket
import sys
import threading
import time


def echo(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    print("LISTENING %d" % s.getsockname()[1], flush=True)

    def handle(c):
        try:
            while True:
                d = c.recv(262144)
                if not d:
                    break
                c.sendall(d)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def gen(n, seed):
    # deterministic stream: SHA-256 in counter mode
    out = bytearray()
    ctr = 0
    while len(out) < n:
        blk = hashlib.sha256(("%s:%d" % (seed, ctr)).encode()).digest() * 256  # 8 KiB
        out += blk[: n - len(out)]
        ctr += 1
    return bytes(out)


def xfer(host, port, n, seed="vtpeer"):
    data = gen(n, seed)
    want = hashlib.sha256(data).hexdigest()
    t0 = time.time()
    got = hashlib.sha256()
    recv = [0]
    err = []
    try:
        s = socket.create_connection((host, port), timeout=60)
    except OSError as e:
        print("XFER FAIL connect: %r" % e, flush=True)
        return 1

    def reader():
        try:
            while True:
                d = s.recv(262144)
                if not d:
                    break
                got.update(d)
                recv[0] += len(d)
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=reader)
    th.start()
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        err.append(e)
    th.join(120)
    s.close()
    if err:
        print("XFER FAIL sent=%d recv=%d err=%r" % (n, recv[0], err[0]), flush=True)
        return 1
    dt = time.time() - t0
    if recv[0] == n and got.hexdigest() == want:
        print("XFER ok sent=%d recv=%d sha256=%s secs=%.2f" % (n, recv[0], want, dt), flush=True)
        return 0
    print("XFER FAIL sent=%d recv=%d want=%s got=%s" % (n, recv[0], want, got.hexdigest()), flush=True)
    return 1


def roundtrip(host, port, text):
    buf = b""
    try:
        s = socket.create_connection((host, port), timeout=60)
        s.sendall(text.encode())
        s.shutdown(socket.SHUT_WR)
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except OSError as e:
        print("ERROR %r after %r" % (e, buf), flush=True)
        return 1
    print(repr(buf), flush=True)
    return 0


def main(a):
    if not a:
        print(__doc__)
        return 2
    if a[0] == "echo":
        echo(int(a[1]) if len(a) > 1 else 0)
    elif a[0] == "freeport":
        freeport()
    elif a[0] == "xfer":
        return xfer(a[1], int(a[2]), int(a[3]), *(a[4:5]))
    elif a[0] == "roundtrip":
        return roundtrip(a[1], int(a[2]), a[3])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
