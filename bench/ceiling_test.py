#!/usr/bin/env python3
"""Smoke test of vtunnel-ceiling (bench/ceiling_relay.cpp), the bench's "ceiling" relay pair.

    ceiling_test.py PATH/TO/vtunnel-ceiling

Starts exit and entry on free loopback ports in front of an echo backend, then checks that
8 MiB each way (and a few concurrent connections) arrive intact, with half-closes carried
through; that the records each side sends are the ones the other accepts (a fake exit in the
middle); that bad records (a flipped bit, a record sealed for the other direction, wrong tag,
bad length, truncated) close that connection with a message on stderr and nothing else; and
that the pair still relays afterwards. Stdlib only; every wait is bounded.
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

TIMEOUT = 30  # seconds without progress on any socket


def start(binary, role, next_port, log):
    p = subprocess.Popen([binary, role, "0", str(next_port)], stdout=subprocess.PIPE, stderr=log)
    line = p.stdout.readline().decode()  # "listening on 127.0.0.1:PORT"
    if not line.startswith("listening on 127.0.0.1:"):
        p.kill()
        raise SystemExit(f"{role}: unexpected first line {line!r}")
    return p, int(line.rsplit(":", 1)[1])


def echo_backend():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)

    def serve(c):
        with c:
            c.settimeout(TIMEOUT)
            try:
                while True:
                    d = c.recv(1 << 16)
                    if not d:
                        c.shutdown(socket.SHUT_WR)  # half-close back: the client sees EOF
                        return
                    c.sendall(d)
            except OSError:
                return

    def accept_loop():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return ls


def round_trip(port, data):
    """Sends `data` through the pair to the echo backend, half-closes, reads the echo to EOF."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    err = []

    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send)
    t.start()
    got = bytearray()
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        got += d
    t.join(TIMEOUT)
    s.close()
    if err:
        raise SystemExit(f"send failed: {err[0]}")
    if len(got) != len(data):
        raise SystemExit(f"echo: got {len(got)} bytes, sent {len(data)}")
    if bytes(got) != data:
        first = next(i for i in range(len(data)) if got[i] != data[i])
        raise SystemExit(f"echo: content differs at offset {first}")


def recv_exact(s, n):
    b = bytearray()
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise SystemExit(f"EOF after {len(b)} of {n} bytes")
        b += d
    return bytes(b)


def closed_by_peer(s):
    """True when the peer ends the connection (EOF or reset) within TIMEOUT."""
    s.settimeout(TIMEOUT)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def wait_for(path, text):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(path) as f:
            if text in f.read():
                return True
        time.sleep(0.05)
    return False


def main():
    binary = sys.argv[1]
    backend = echo_backend()
    with tempfile.TemporaryDirectory() as tmp:
        exit_log_path, entry_log_path = os.path.join(tmp, "exit.log"), os.path.join(tmp, "entry.log")
        with open(exit_log_path, "w") as exit_log, open(entry_log_path, "w") as entry_log:
            exit_p, exit_port = start(binary, "exit", backend.getsockname()[1], exit_log)
            entry_p, entry_port = start(binary, "entry", exit_port, entry_log)
            try:
                # 8 MiB each way through one connection (record sizes vary with the reads).
                round_trip(entry_port, os.urandom(8 << 20))
                print("8 MiB each way: intact")

                # Several connections at once; an empty one (EOF straight away) too.
                payloads = [os.urandom(n) for n in (1, 1000, 300_000, 1 << 20, 0)]
                errors = []

                def one(p):
                    try:
                        round_trip(entry_port, p)
                    except SystemExit as e:
                        errors.append(str(e))

                ts = [threading.Thread(target=one, args=(p,)) for p in payloads]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(TIMEOUT * 2)
                if errors or any(t.is_alive() for t in ts):
                    raise SystemExit(f"concurrent connections: {errors or 'stalled'}")
                print("5 concurrent connections: intact")

                # The record format, both directions: a second entry in front of a fake exit
                # (us) shows what the entry sends; the real exit must accept it, and the entry
                # must accept what the exit answers.
                fake_exit = socket.socket()
                fake_exit.bind(("127.0.0.1", 0))
                fake_exit.listen(1)
                fake_exit.settimeout(TIMEOUT)
                entry2_p, entry2_port = start(binary, "entry", fake_exit.getsockname()[1], entry_log)
                try:
                    hello = b"hello, ceiling"
                    user = socket.create_connection(("127.0.0.1", entry2_port), timeout=TIMEOUT)
                    user.sendall(hello)
                    from_entry, _ = fake_exit.accept()
                    from_entry.settimeout(TIMEOUT)
                    upstream = recv_exact(from_entry, 4 + len(hello) + 16)
                    if int.from_bytes(upstream[:4], "big") != len(hello) or hello in upstream:
                        raise SystemExit(f"entry sent an unexpected record: {upstream!r}")
                    to_exit = socket.create_connection(("127.0.0.1", exit_port), timeout=TIMEOUT)
                    to_exit.sendall(upstream)  # the exit opens it, the echo sends it back sealed
                    downstream = recv_exact(to_exit, len(upstream))
                    if downstream[:4] != upstream[:4] or downstream == upstream:
                        raise SystemExit("exit: the echo came back in an unexpected record")
                    from_entry.sendall(downstream)
                    if recv_exact(user, len(hello)) != hello:
                        raise SystemExit("entry: the echo did not arrive")
                    print("record format: entry -> exit -> entry round trip ok")
                    # The upstream record handed back to the entry as downstream: the nonce's
                    # direction differs, so it must fail authentication.
                    from_entry.sendall(upstream)
                    if not closed_by_peer(user) or not wait_for(entry_log_path, "authentication failure"):
                        raise SystemExit("entry accepted a record sealed for the other direction")
                    for c in (user, from_entry, to_exit):
                        c.close()
                    # One bit of a genuine record flipped.
                    tampered = bytearray(upstream)
                    tampered[6] ^= 0x01
                    s = socket.create_connection(("127.0.0.1", exit_port), timeout=TIMEOUT)
                    s.sendall(bytes(tampered))
                    if not closed_by_peer(s):
                        raise SystemExit("exit accepted a tampered record")
                    s.close()
                    if not wait_for(exit_log_path, "authentication failure"):
                        raise SystemExit("tampered record: not reported on the exit's stderr")
                    print("a tampered record and a record for the other direction: rejected")
                finally:
                    entry2_p.kill()
                    entry2_p.wait(TIMEOUT)
                    fake_exit.close()

                # Bad records straight to the exit: each closes its connection.
                bad = {
                    "authentication failure": (16).to_bytes(4, "big") + os.urandom(16 + 16),
                    "bad record length": (0x7FFFFFFF).to_bytes(4, "big") + b"x" * 64,
                    "truncated record": (100).to_bytes(4, "big") + b"y" * 10,
                }
                for why, record in bad.items():
                    s = socket.create_connection(("127.0.0.1", exit_port), timeout=TIMEOUT)
                    s.sendall(record)
                    if why == "truncated record":
                        s.shutdown(socket.SHUT_WR)
                    if not closed_by_peer(s):
                        raise SystemExit(f"{why}: the exit kept the connection open")
                    s.close()
                    if not wait_for(exit_log_path, why):
                        raise SystemExit(f"{why}: not reported on the exit's stderr")
                print("bad records: each closed its connection")

                for p, name in ((exit_p, "exit"), (entry_p, "entry")):
                    if p.poll() is not None:
                        raise SystemExit(f"{name} exited ({p.returncode})")
                round_trip(entry_port, os.urandom(1 << 20))
                print("still relaying afterwards: ok")
            finally:
                for p in (entry_p, exit_p):
                    p.kill()
                    p.wait(TIMEOUT)
                backend.close()


if __name__ == "__main__":
    main()
