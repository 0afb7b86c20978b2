#!/usr/bin/python3
"""Soak test for vtunnel (not in CI): N minutes of mixed traffic through one server and one client
(real binaries on loopback), with a forced reconnect every minute, every byte hash-checked.

    /usr/bin/python3 tests/soak/soak.py --vtunnel build/apps/vtunnel [--minutes 10] [--reconnect drop|kill]

Traffic: `--short` threads of short requests (1 B - 64 KiB, echo) and `--streams` threads of long
streams (32 MiB echo each), all through the tunnel. The client reaches the server through a relay;
in the middle of every minute the relay drops every connection (`--reconnect drop`, the default:
both processes live through the whole run) or the client is SIGKILLed and restarted (`kill`).
Connections cut by that are counted as interrupted (expected), never as corrupt: a transfer that
completes must return exactly the bytes sent.

At the end of every minute the traffic pauses, the processes settle, and RSS (VmRSS) and open
descriptors of the server and client are sampled. Minute 1 is warm-up; the verdict compares the
last minutes with it: RSS growth <= 5 % (the lowest of the last three samples, so that a buffer
the allocator still holds at one sample does not count, a leak does), descriptors back to the
warm-up count, zero corrupted transfers, every reconnect served again within 30 s. Exit 0 on
PASS, 1 on FAIL.
"""
import argparse
import hashlib
import os
import random
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness as H  # noqa: E402

MiB = 1 << 20


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = self.streams = self.bytes = self.interrupted = self.corrupt = 0
        self.examples = []

    def add(self, kind, n=0, interrupted=False, corrupt=None):
        with self.lock:
            if corrupt is not None:
                self.corrupt += 1
                if len(self.examples) < 3:
                    self.examples.append(corrupt)
            elif interrupted:
                self.interrupted += 1
            else:
                if kind == "request":
                    self.requests += 1
                else:
                    self.streams += 1
                self.bytes += 2 * n

    def take(self):
        with self.lock:
            out = dict(requests=self.requests, streams=self.streams, bytes=self.bytes,
                       interrupted=self.interrupted, corrupt=self.corrupt, examples=list(self.examples))
            self.reset()
            return out


def one_transfer(port, data, timeout):
    """Echo transfer; returns (received bytes or None if interrupted)."""
    try:
        return H.transfer(port, data, timeout=timeout)
    except (OSError, TimeoutError, ConnectionError):
        return None


def worker(kind, port, stats, running, paused, idle, seed):
    rnd = random.Random(seed)
    while running.is_set():
        if paused.is_set():
            idle.acquire()
            try:
                idle.count += 1
            finally:
                idle.release()
            while paused.is_set() and running.is_set():
                time.sleep(0.05)
            with idle:
                idle.count -= 1
            continue
        if kind == "request":
            n = rnd.choice([1, 100, 1500, 4096, 16384, 65536])
            n = rnd.randint(1, n)
            timeout = 10
        else:
            n = 32 * MiB
            timeout = 60
        data = os.urandom(n)
        got = one_transfer(port, data, timeout)
        if got is None:
            stats.add(kind, interrupted=True)
        elif len(got) == n and hashlib.sha256(got).digest() == hashlib.sha256(data).digest():
            stats.add(kind, n)
        elif len(got) < n and data[:len(got)] == got:
            stats.add(kind, interrupted=True)  # cut short by a reconnect: a prefix, not corruption
        else:
            stats.add(kind, corrupt="%s of %d bytes: got %d bytes, sha256 mismatch" % (kind, n, len(got)))


class Idle:
    """A counter with a lock (workers parked at the minute boundary)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0

    def acquire(self):
        self.lock.acquire()

    def release(self):
        self.lock.release()

    def __enter__(self):
        self.lock.acquire()

    def __exit__(self, *a):
        self.lock.release()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vtunnel", default=os.environ.get("VTUNNEL_BIN", "build/apps/vtunnel"))
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--minute-seconds", type=float, default=60.0, help="length of a 'minute' (for a quick try)")
    ap.add_argument("--short", type=int, default=8, help="threads of short requests")
    ap.add_argument("--streams", type=int, default=2, help="threads of 32 MiB streams")
    ap.add_argument("--reconnect", choices=["drop", "kill"], default="drop")
    ap.add_argument("--malloc", choices=["steady", "raw"], default="steady",
                    help="steady (default): run both processes with MALLOC_MMAP_THRESHOLD_=131072, so glibc "
                         "returns freed large buffers (channel windows, stream buffers) to the kernel and RSS "
                         "follows live memory; raw: glibc's defaults (its dynamic mmap threshold keeps freed "
                         "MiB-sized buffers: RSS then moves in steps of a few MiB that come and go)")
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args()
    impl = H.Impl("ours", os.path.abspath(args.vtunnel))
    if not impl.available():
        print("vtunnel binary not found: %s" % args.vtunnel)
        return 2

    sc = H.Scenario(impl, impl, name="soak", keep_logs=args.keep_logs)
    try:
        priv, pub = H.keygen(impl)
        echo = sc.echo()
        env = {"MALLOC_MMAP_THRESHOLD_": "131072"} if args.malloc == "steady" else None
        srv = sc.server(client_key=pub, keepalive="5s", env=env)
        relay = sc.add(H.Relay(srv.port))
        port = H.free_port()
        fwd = ["%d=127.0.0.1:%d" % (port, echo.port)]
        url = "ws://127.0.0.1:%d/" % relay.port
        procs = {"client": sc.client(url, fwd, key=priv, keepalive="2s", env=env)}
        sc.wait_tunnel(port, procs=[srv, procs["client"]])
        print("soak: %s, %d minute(s) of %.0f s, %d short-request threads, %d stream threads, reconnect by %s, "
              "malloc %s" % (args.vtunnel, args.minutes, args.minute_seconds, args.short, args.streams,
                             args.reconnect, args.malloc))
        print("logs: %s" % sc.logdir)

        stats = Stats()
        running, paused = threading.Event(), threading.Event()
        running.set()
        idle = Idle()
        threads = []
        for i in range(args.short):
            threads.append(threading.Thread(target=worker, args=("request", port, stats, running, paused, idle, i),
                                            daemon=True))
        for i in range(args.streams):
            threads.append(threading.Thread(target=worker, args=("stream", port, stats, running, paused, idle,
                                                                 1000 + i), daemon=True))
        for t in threads:
            t.start()

        hdr = ("min", "requests", "streams", "MiB", "interrupted", "corrupt", "reconnect s",
               "srv RSS KiB", "srv fds", "cli RSS KiB", "cli fds")
        fmt = "%3s %9s %8s %7s %11s %7s %11s %11s %7s %11s %7s"
        print(fmt % hdr)
        rows = []
        failures = []
        for minute in range(1, args.minutes + 1):
            t_start = time.monotonic()
            time.sleep(args.minute_seconds / 2)
            # the forced reconnect, with traffic flowing
            t0 = time.monotonic()
            if args.reconnect == "drop":
                relay.drop()
            else:
                procs["client"].kill()
                procs["client"] = sc.client(url, fwd, key=priv, keepalive="2s", env=env)
            try:
                sc.wait_tunnel(port, timeout=30, procs=[srv, procs["client"]])
                reconnect = time.monotonic() - t0
            except AssertionError:
                reconnect = None
                failures.append("minute %d: tunnel not back within 30 s after the reconnect" % minute)
            time.sleep(max(0.0, args.minute_seconds - (time.monotonic() - t_start)))
            # quiesce, settle, sample
            paused.set()
            H.wait_until(lambda: idle.count == len(threads), 120, interval=0.05, what="traffic to pause")
            time.sleep(1.5)
            cl = procs["client"]
            sample = dict(srv_rss=srv.rss_kib(), srv_fds=srv.fd_count(), cl_rss=cl.rss_kib(), cl_fds=cl.fd_count())
            paused.clear()
            st = stats.take()
            row = dict(minute=minute, reconnect=reconnect, **st, **sample)
            rows.append(row)
            print(fmt % (minute, st["requests"], st["streams"], "%.0f" % (st["bytes"] / MiB), st["interrupted"],
                         st["corrupt"], "%.2f" % reconnect if reconnect is not None else "-",
                         sample["srv_rss"], sample["srv_fds"], sample["cl_rss"], sample["cl_fds"]), flush=True)
            for ex in st["examples"]:
                print("    corrupt: %s" % ex)
            for p in (srv, procs["client"]):
                if not p.alive():
                    failures.append("minute %d: %s exited rc=%r" % (minute, p.name, p.returncode))
            if failures and any("exited" in f for f in failures):
                break

        running.clear()
        for t in threads:
            t.join(70)

        # verdict
        corrupt = sum(r["corrupt"] for r in rows)
        if corrupt:
            failures.append("%d corrupted transfer(s)" % corrupt)
        if len(rows) >= 2:
            # Growth = the floor of the last three samples against the warm-up sample: a leak raises
            # the floor minute after minute, while the allocator keeping freed stream buffers for a
            # while only makes single samples jump (the peak is printed too).
            base, tail = rows[0], rows[1:][-3:]
            for who in ("srv", "cl"):
                name = "server" if who == "srv" else "client"
                floor = min(r[who + "_rss"] for r in tail)
                peak = max(r[who + "_rss"] for r in rows)
                growth = (floor - base[who + "_rss"]) / float(base[who + "_rss"])
                last_fds = rows[-1][who + "_fds"]
                print("%s RSS: warm-up %d KiB, last three minutes >= %d KiB (%+.1f %%), peak %d KiB; fds %d -> %d"
                      % (name, base[who + "_rss"], floor, 100 * growth, peak, base[who + "_fds"], last_fds))
                if args.reconnect == "kill" and who == "cl":
                    continue  # a restarted client starts from scratch every minute
                if growth > 0.05:
                    failures.append("%s RSS grew %.1f %% after warm-up" % (name, 100 * growth))
                if last_fds != base[who + "_fds"]:
                    failures.append("%s descriptors %d -> %d" % (name, base[who + "_fds"], last_fds))
        else:
            failures.append("too short to judge growth (need 2 minutes or more)")
        total = dict(requests=sum(r["requests"] for r in rows), streams=sum(r["streams"] for r in rows),
                     mib=sum(r["bytes"] for r in rows) / MiB, interrupted=sum(r["interrupted"] for r in rows))
        print("total: %(requests)d requests, %(streams)d streams, %(mib).0f MiB through the tunnel, "
              "%(interrupted)d interrupted by the forced reconnects" % total)
        if failures:
            print("VERDICT: FAIL\n  " + "\n  ".join(failures))
            sc.keep_logs = True
            return 1
        print("VERDICT: PASS (RSS growth <= 5 %, no descriptor growth, no corruption)")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
