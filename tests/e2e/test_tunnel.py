#!/usr/bin/python3
"""End-to-end and interop tests for vtunnel: real processes on loopback.

    /usr/bin/python3 tests/e2e/test_tunnel.py --server ours|go --client ours|go \
        [--vtunnel build/apps/vtunnel] [--vtpeer build/gopeer/vtpeer] [unittest args, e.g. -k reconnect]

Binaries: --vtunnel / $VTUNNEL_BIN (our `vtunnel`), --vtpeer / $VTPEER_BIN (the Go peer, built by
tests/peers/build-gopeer.sh). The Go peer is needed in every cell (it plays an attacker client in one
auth test). A missing binary skips the whole run (exit 77). Tests of behaviour that only our
implementation promises skip on the Go side; E2E_FORCE_OURS_ONLY=1 runs them anyway (the Go peer
implements some of them, which validates the tests themselves). E2E_KEEP_LOGS=1 keeps process logs.
"""
import argparse
import os
import random
import signal
import shutil
import socket
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

CFG = {}
TEST_TIMEOUT = int(os.environ.get("E2E_TEST_TIMEOUT", "120"))
FORCE_OURS_ONLY = os.environ.get("E2E_FORCE_OURS_ONLY") == "1"
KEEP_LOGS = os.environ.get("E2E_KEEP_LOGS") == "1"


class _Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Alarm("test exceeded %ds (E2E_TEST_TIMEOUT)" % TEST_TIMEOUT)


class E2E(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.S = CFG["server"]
        self.C = CFG["client"]
        self.GO = CFG["go"]
        self.sc = H.Scenario(self.S, self.C, name=self.id().split(".")[-1], keep_logs=KEEP_LOGS)
        self.addCleanup(self.sc.close)
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(TEST_TIMEOUT)
        self.addCleanup(signal.alarm, 0)

    # -- helpers

    def need(self, feature, side):
        """Skip unless the implementation on `side` ('server'/'client') promises `feature`."""
        impl = self.S if side == "server" else self.C
        if not impl.promises(feature) and not FORCE_OURS_ONLY:
            self.skipTest("%s side is %s: '%s' is promised only by our implementation (issue 5)"
                          % (side, impl.kind, feature))

    def keys(self):
        return H.keygen(self.C if self.C.kind == "ours" else self.S)

    def dump(self):
        return self.sc.log_tails()

    def assertTunnel(self, port, what="tunnel"):
        payload = os.urandom(32).hex().encode()
        try:
            got = H.echo_roundtrip(port, payload, timeout=5)
        except OSError as e:
            self.fail("%s on port %d: %r\n%s" % (what, port, e, self.dump()))
        self.assertEqual(got, payload, what)

    def assertTransfer(self, port, n, timeout=60):
        data = os.urandom(n)
        try:
            got = H.transfer(port, data, timeout=timeout)
        except (OSError, TimeoutError) as e:
            self.fail("transfer of %d bytes via port %d: %r\n%s" % (n, port, e, self.dump()))
        self.assertEqual(len(got), n, "echoed length")
        self.assertEqual(H.sha256(got), H.sha256(data), "SHA-256 of echoed bytes")

    def assertNoTunnelFor(self, port, seconds, procs=()):
        """For `seconds`, connecting to port is refused (no listener) or closed without data."""
        d = H.Deadline(seconds)
        while not d.expired():
            if H.port_refuses(port):
                time.sleep(0.2)
                continue
            self.assertFalse(H.tunnel_works(port, 1.0),
                             "port %d relays data but must not\n%s" % (port, self.dump()))

    def restart_server(self, old, sig=signal.SIGKILL, client_key=None, keepalive=None):
        if sig == signal.SIGKILL:
            old.kill()
        else:
            old.stop(sig)
        return self.sc.server(port=old.port, client_key=client_key, keepalive=keepalive)


# ==============================================================================================
class Basics(E2E):

    def test_health(self):
        srv = self.sc.server()
        st, _, body = H.http_get(srv.port, "/health")
        self.assertEqual(st, 200)
        self.assertEqual(body.strip(), b"ok")

    def test_keygen_format(self):
        for impl in {self.S.kind: self.S, self.C.kind: self.C}.values():
            rc, out, err = H.run_cmd(impl.keygen_cmd())
            self.assertEqual(rc, 0, err)
            lines = out.splitlines()
            self.assertEqual(len(lines), 2, out)
            self.assertRegex(lines[0], r"^Private key \(client\): vt-priv-[A-Za-z0-9+/]{43}$")
            self.assertRegex(lines[1], r"^Public key \(server\):  vt-pub-[A-Za-z0-9+/]{43}$")
            priv, pub = lines[0].split(": ")[1], lines[1].split(":  ")[1]
            rc, out2, err2 = H.run_cmd(["/usr/bin/python3", os.path.join(H.PEERS_DIR, "vtkey.py"),
                                        "priv2pub", priv])
            self.assertEqual(rc, 0, err2)
            self.assertEqual(out2.strip(), pub, "%s keygen: public key does not match the private key" % impl.kind)

    def test_basic_tunnel_http(self):
        be = self.sc.add(H.HttpBackend(body=b"hello through the tunnel\n"))
        echo = self.sc.echo()
        srv = self.sc.server()
        r_http, r_echo = H.free_port(), H.free_port()
        cl = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r_http, be.port), "%d=127.0.0.1:%d" % (r_echo, echo.port)])
        self.sc.wait_tunnel(r_echo, procs=[srv, cl])
        st, hdrs, body = H.http_get(r_http, "/index.html")
        self.assertEqual(st, 200)
        self.assertEqual(body, b"hello through the tunnel\n")
        self.assertTunnel(r_echo)

    def test_tunnel_port_bound_to_loopback_only(self):
        srv, cl, (r,), _ = self.sc.tunnel()
        with open("/proc/net/tcp") as f:
            rows = [ln.split() for ln in f.readlines()[1:]]
        listening = [row[1] for row in rows if row[3] == "0A" and int(row[1].split(":")[1], 16) == r]
        self.assertTrue(listening, "no IPv4 listener on port %d" % r)
        for local in listening:
            self.assertEqual(local.split(":")[0], "0100007F", "tunnel port %d must bind 127.0.0.1 only" % r)

    def test_forward_targets_localhost_name_and_ipv6(self):
        # README examples use localhost:PORT; the echo listens on 127.0.0.1 only, so a client that
        # resolves localhost to ::1 first must fall back to 127.0.0.1. Also an IPv6 literal target.
        e4 = self.sc.echo()
        try:
            e6 = self.sc.add(H.TcpServer(H._echo_handler, host="::1"))
        except OSError as e:
            self.skipTest("no IPv6 loopback: %r" % e)
        srv = self.sc.server()
        r4, r6 = H.free_port(), H.free_port()
        cl = self.sc.client(srv, ["%d=localhost:%d" % (r4, e4.port), "%d=[::1]:%d" % (r6, e6.port)])
        self.sc.wait_tunnel(r6, procs=[srv, cl])
        self.sc.wait_tunnel(r4, timeout=5, procs=[srv, cl])
        self.assertTransfer(r4, 1 << 20)
        self.assertTransfer(r6, 1 << 20)

    def test_go_flag_syntax_variants(self):
        # Go flag syntax: -name=value, --name value, --name=value
        echo = self.sc.echo()
        port = H.free_port()
        argv = self.S.server_cmd(port)
        argv[argv.index("-port"):argv.index("-port") + 2] = ["--port=%d" % port]
        srv = self.sc.start(argv, "server-%s-" % self.S.kind)
        srv.port = port
        self.sc.wait_server(srv)
        r = H.free_port()
        argv = [self.C.path, "client", "--server", "ws://127.0.0.1:%d/" % port,
                "-forward=%d=127.0.0.1:%d" % (r, echo.port), "--backoff-min=100ms", "-backoff-max", "500ms"]
        cl = self.sc.start(argv, "client-%s-" % self.C.kind)
        self.sc.wait_tunnel(r, procs=[srv, cl])

    def test_separate_executables(self):
        # vtunnel-server / vtunnel-client next to vtunnel behave like the subcommands
        if self.S.kind != "ours" and self.C.kind != "ours":
            self.skipTest("vtunnel-server/vtunnel-client exist only in our build")
        echo = self.sc.echo()
        port, r = H.free_port(), H.free_port()
        if self.S.kind == "ours":
            sbin = os.path.join(os.path.dirname(self.S.path), "vtunnel-server")
            self.assertTrue(os.access(sbin, os.X_OK), "%s missing" % sbin)
            argv = self.S.server_cmd(port)
            argv[0:2] = [sbin]
        else:
            argv = self.S.server_cmd(port)
        srv = self.sc.start(argv, "server-")
        srv.port = port
        self.sc.wait_server(srv)
        argv = self.C.client_cmd("ws://127.0.0.1:%d/" % port, ["%d=127.0.0.1:%d" % (r, echo.port)])
        if self.C.kind == "ours":
            cbin = os.path.join(os.path.dirname(self.C.path), "vtunnel-client")
            self.assertTrue(os.access(cbin, os.X_OK), "%s missing" % cbin)
            argv[0:2] = [cbin]
        cl = self.sc.start(argv, "client-")
        self.sc.wait_tunnel(r, procs=[srv, cl])

    def test_multiple_ports(self):
        backends = [self.sc.add(H.tagged_echo_server("backend-%d" % i)) for i in range(3)]
        srv, cl, ports, _ = self.sc.tunnel(forwards_to=backends)
        for i, r in enumerate(ports):
            with socket.create_connection((H.LOOP, r), timeout=5) as s:
                tag = H.recv_exact(s, len("backend-%d\n" % i))
                self.assertEqual(tag, ("backend-%d\n" % i).encode(), "port %d reached the wrong backend" % r)
                s.sendall(b"xyz")
                self.assertEqual(H.recv_exact(s, 3), b"xyz")

    def test_many_concurrent_connections(self):
        srv, cl, (r,), (be,) = self.sc.tunnel()
        n = 200
        results = [None] * n
        barrier = threading.Barrier(n, timeout=30)

        def one(i):
            data = os.urandom(8192 + i)
            try:
                barrier.wait()
                got = H.transfer(r, data, timeout=60)
                results[i] = got == data or "mismatch (%d bytes back)" % len(got)
            except Exception as e:  # noqa
                results[i] = repr(e)

        ths = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(90)
        bad = [(i, x) for i, x in enumerate(results) if x is not True]
        self.assertFalse(bad, "%d of %d concurrent connections failed, e.g. %r\n%s" % (len(bad), n, bad[:5], self.dump()))

    def test_large_payload_64mib_each_way(self):
        srv, cl, (r,), _ = self.sc.tunnel()
        t0 = time.monotonic()
        self.assertTransfer(r, 64 << 20, timeout=150)
        sys.stderr.write("[64 MiB each way in %.1fs] " % (time.monotonic() - t0))

    def test_tcp_stream_interleaved_small_writes(self):
        srv, cl, (r,), _ = self.sc.tunnel()
        rnd = random.Random(5)
        with socket.create_connection((H.LOOP, r), timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sent = bytearray()
            received = bytearray()
            for i in range(400):
                chunk = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 97)))
                s.sendall(chunk)
                sent += chunk
                if i % 7 == 0:
                    # read back everything sent so far: byte order and completeness across writes
                    received += H.recv_exact(s, len(sent) - len(received), timeout=10)
                    self.assertEqual(bytes(received), bytes(sent[:len(received)]))
                if i % 50 == 0:
                    time.sleep(0.01)
            s.shutdown(socket.SHUT_WR)
            received += H.recv_all(s, timeout=10)
        self.assertEqual(bytes(received), bytes(sent))

    def test_half_close_client_eof_then_reply(self):
        be = self.sc.add(H.hash_reply_server())
        echo = self.sc.echo()
        srv, cl, (r, r2), _ = self.sc.tunnel(forwards_to=[be, echo])
        data = os.urandom(300000)
        with socket.create_connection((H.LOOP, r), timeout=10) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # EOF towards the backend; our read side stays open
            reply = H.recv_all(s, timeout=15)
        self.assertEqual(reply, ("%d %s" % (len(data), H.sha256(data))).encode(),
                         "reply after half-close\n" + self.dump())

    def test_half_close_backend_eof_first(self):
        be = self.sc.add(H.banner_then_read_server(b"BANNER-then-EOF\n"))
        srv, cl, (r,), _ = self.sc.tunnel(forwards_to=[be])
        data = os.urandom(200000)
        with socket.create_connection((H.LOOP, r), timeout=10) as s:
            got = H.recv_all(s, timeout=10)  # backend's EOF reaches us while our side is open
            self.assertEqual(got, b"BANNER-then-EOF\n")
            s.sendall(data)  # the other direction still works after that EOF
            s.shutdown(socket.SHUT_WR)
            H.wait_until(lambda: any(x == (len(data), H.sha256(data)) for x in be.data.get("received", [])),
                         10, what="backend to receive all bytes after its own EOF")

    def test_keepalive_idle_connection_stays_usable(self):
        echo = self.sc.echo()
        srv = self.sc.server(keepalive="200ms")
        relay = self.sc.add(H.Relay(srv.port))
        r = H.free_port()
        cl = self.sc.client("ws://127.0.0.1:%d/" % relay.port, ["%d=127.0.0.1:%d" % (r, echo.port)],
                            keepalive="200ms")
        self.sc.wait_tunnel(r, procs=[srv, cl])
        with socket.create_connection((H.LOOP, r), timeout=10) as s:
            s.sendall(b"before")
            self.assertEqual(H.recv_exact(s, 6), b"before")
            time.sleep(2.5)  # > 10 keepalive intervals of idle
            s.sendall(b"after-idle")
            self.assertEqual(H.recv_exact(s, 10, timeout=5), b"after-idle")
        self.assertTrue(srv.alive() and cl.alive())
        self.assertEqual(relay.connections, 1, "keepalive must not cause reconnects\n" + self.dump())
        self.assertTunnel(r)

    def test_session_replaced_by_new_client(self):
        a = self.sc.add(H.tagged_echo_server("A"))
        b = self.sc.add(H.tagged_echo_server("B"))
        srv = self.sc.server()
        r = H.free_port()
        ca = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, a.port)])

        def tag():
            with socket.create_connection((H.LOOP, r), timeout=3) as s:
                return H.recv_exact(s, 2, timeout=3)

        H.wait_until(lambda: tag() == b"A\n", 15, what="client A serving port %d" % r)
        cb = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, b.port)])
        H.wait_until(lambda: tag() == b"B\n", 15, what="client B taking over port %d" % r)
        tags = [tag() for _ in range(10)]
        self.assertEqual(tags, [b"B\n"] * 10, "newest session must serve every new connection")
        self.assertTrue(cb.alive())


# ==============================================================================================
class Tls(E2E):

    def setUp(self):
        super().setUp()
        self.ca = H.TestCA(os.path.join(self.sc.logdir, "ca"))
        self.env = {"SSL_CERT_FILE": self.ca.ca_cert, "SSL_CERT_DIR": os.path.join(self.sc.logdir, "ca", "nodir")}

    def tls_backend(self, name, dns, self_signed=False):
        cert, key = self.ca.issue(name, dns, self_signed=self_signed)
        return self.sc.add(H.HttpBackend(body=b"secret page\n", ssl_ctx=H.TestCA.server_context(cert, key)))

    def start(self, forwards):
        echo = self.sc.echo()
        srv = self.sc.server()
        r_echo = H.free_port()
        cl = self.sc.client(srv, forwards + ["%d=127.0.0.1:%d" % (r_echo, echo.port)], env=self.env)
        self.sc.wait_tunnel(r_echo, procs=[srv, cl])
        return srv, cl, r_echo

    def test_tls_termination(self):
        be = self.tls_backend("good", ["localhost"])
        r = H.free_port()
        self.start(["%d=tls://localhost:%d" % (r, be.port)])
        st, hdrs, body = H.http_get(r, "/", timeout=10)
        self.assertEqual(st, 200, self.dump())
        self.assertEqual(body, b"secret page\n")
        self.assertEqual(be.requests, 1)
        if self.C.promises("host-rewrite") or FORCE_OURS_ONLY:
            self.assertIn(be.hosts[0], ("localhost", "localhost:%d" % be.port),
                          "Host header seen by the TLS backend must name the target host")

    def test_tls_host_header_split_across_reads(self):
        self.need("host-rewrite", "client")
        be = self.tls_backend("good", ["localhost"])
        r = H.free_port()
        self.start(["%d=tls://localhost:%d" % (r, be.port)])
        req = ("GET /split HTTP/1.1\r\nUser-Agent: e2e\r\nHost: 127.0.0.1:%d\r\nAccept: */*\r\n"
               "Connection: close\r\n\r\n" % r).encode()
        with socket.create_connection((H.LOOP, r), timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cut = req.index(b"Host") + 2
            for piece in (req[:cut], req[cut:cut + 5], req[cut + 5:cut + 9]):
                s.sendall(piece)
                time.sleep(0.15)
            for i in range(cut + 9, len(req), 3):
                s.sendall(req[i:i + 3])
                time.sleep(0.01)
            st, hdrs, body = H.parse_http_response(H.recv_all(s, timeout=10))
        self.assertEqual(st, 200)
        self.assertIn(be.hosts[0], ("localhost", "localhost:%d" % be.port),
                      "Host header split across reads was not rewritten")

    def _assert_refused(self, be, what):
        r = H.free_port()
        srv, cl, r_echo = self.start(["%d=tls://localhost:%d" % (r, be.port)])
        t0 = time.monotonic()
        with socket.create_connection((H.LOOP, r), timeout=10) as s:
            try:
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            closed, data = H.closed_promptly(s, 10)
        self.assertTrue(closed, "%s: user's connection not closed within 10 s\n%s" % (what, self.dump()))
        self.assertEqual(data, b"", "%s: nothing may be served" % what)
        self.assertEqual(be.requests, 0, "%s: backend must not have served a request" % what)
        sys.stderr.write("[%s: closed after %.2fs] " % (what, time.monotonic() - t0))
        self.assertTrue(cl.alive() and srv.alive())
        self.assertTunnel(r_echo, "other forward after a refused TLS target")

    def test_tls_untrusted_certificate_refused(self):
        self._assert_refused(self.tls_backend("selfsigned", ["localhost"], self_signed=True), "self-signed cert")

    def test_tls_wrong_hostname_refused(self):
        self._assert_refused(self.tls_backend("othername", ["other.example"]), "cert for another name")


class Proxy(E2E):
    """vtunnel server -proxy: curl through the proxy reaches a name the client registered."""

    def test_curl_through_proxy_is_routed_through_the_tunnel(self):
        self.need("proxy", "server")
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        # The backend listens on 127.0.0.5 only: the client's forward names it, so the server
        # maps "127.0.0.5:PORT" (not a local name) to its tunnel port, as the original does.
        be = self.sc.add(H.HttpBackend(body=b"via the tunnel\n", host="127.0.0.5"))
        proxy_port = H.free_port()
        srv = self.sc.server(extra=["-proxy", str(proxy_port)])
        H.wait_port(proxy_port)
        r = H.free_port()
        self.sc.client(srv, ["%d=127.0.0.5:%d" % (r, be.port)])
        H.wait_port(r, timeout=15)  # the tunnel port exists once the client registered it
        rc, out, err = H.run_cmd(["curl", "-sS", "--max-time", "10", "-x", "http://127.0.0.1:%d" % proxy_port,
                                  "http://127.0.0.5:%d/page" % be.port], timeout=20)
        self.assertEqual(rc, 0, err + self.dump())
        self.assertEqual(out, "via the tunnel\n")
        # and through CONNECT (what HTTPS_PROXY clients use)
        rc, out, err = H.run_cmd(["curl", "-sS", "--max-time", "10", "-p", "-x", "http://127.0.0.1:%d" % proxy_port,
                                  "http://127.0.0.5:%d/page" % be.port], timeout=20)
        self.assertEqual(rc, 0, err + self.dump())
        self.assertEqual(out, "via the tunnel\n")
        log = srv.stderr_text()
        self.assertIn("via tunnel", log, "the proxy must route the mapped name into the tunnel:\n" + log)


class Wss(E2E):
    """wss:// to the server (TLS verified against the test CA): the cell's server with
    -tls-cert/-tls-key, the cell's client."""

    def setUp(self):
        super().setUp()
        if not self.S.knows_flag("server", "tls-cert"):
            self.skipTest("this server has no -tls-cert")
        self.ca = H.TestCA(os.path.join(self.sc.logdir, "ca"))
        self.env = {"SSL_CERT_FILE": self.ca.ca_cert, "SSL_CERT_DIR": os.path.join(self.sc.logdir, "ca", "nodir")}

    def _run(self, cert_name, self_signed):
        cert, key = self.ca.issue(cert_name, ["127.0.0.1"], self_signed=self_signed)
        echo = self.sc.echo()
        port = H.free_port()
        srv = self.sc.start(self.S.server_cmd(port, extra=["-tls-cert", cert, "-tls-key", key]),
                            "server-%s-wss-" % self.S.kind)
        H.wait_port(port)
        r = H.free_port()
        cl = self.sc.client("wss://127.0.0.1:%d/" % port, ["%d=127.0.0.1:%d" % (r, echo.port)], env=self.env)
        return srv, cl, r

    def test_wss_verified(self):
        srv, cl, r = self._run("wss", False)
        self.sc.wait_tunnel(r, procs=[srv, cl])
        self.assertTransfer(r, 1 << 20)

    def test_wss_untrusted_server_certificate_refused(self):
        srv, cl, r = self._run("wss-selfsigned", True)
        self.assertNoTunnelFor(r, 3)


class Protocol(E2E):
    """PROTOCOL.md details checked with the Go peer as the instrument (its stdout events are its
    documented interface): replies of the cell's server, channel policy of the cell's client."""

    def setUp(self):
        super().setUp()
        if not self.GO.available():
            self.skipTest("Go peer not available")

    def test_server_global_requests_and_channel_policy(self):
        srv = self.sc.server()
        fwd = ["%d=127.0.0.1:9" % H.free_port()]
        rc, out, err = H.run_cmd(self.GO.client_cmd(srv.url, fwd, backoff=None, extra=[
            "-ping", "2", "-request", "x-unknown-request", "-request", 'listen={"port":0}',
            "-request", "listen=not json", "-open", "session"]), timeout=20)
        self.assertEqual(out.count('PING ok=true data="pong"'), 2, out + err)
        self.assertIn("REQUEST name=x-unknown-request ok=false", out, "unknown global request must fail")
        m = [ln for ln in out.splitlines() if ln.startswith("REQUEST name=listen ok=")]
        self.assertEqual(len(m), 2, out)
        for ln in m:
            self.assertIn("ok=false", ln, "invalid listen must fail: " + ln)
            self.assertNotIn('data=""', ln, "listen failure must carry the error text: " + ln)
        self.assertIn("OPEN_FAILED type=session reason=1", out, "client-opened channels: reason 1\n" + out + err)
        self.assertTrue(srv.alive())

    def test_client_channel_policy(self):
        if self.S.kind != "go":
            self.skipTest("needs the Go peer as server (-probe-channels)")
        echo = self.sc.echo()
        port = H.free_port()
        srv = self.sc.start(self.S.server_cmd(port, extra=["-probe-channels"]), "server-go-probe-")
        srv.port = port
        self.sc.wait_server(srv)
        r = H.free_port()
        cl = self.sc.client("ws://127.0.0.1:%d/" % port, ["%d=127.0.0.1:%d" % (r, echo.port)])
        self.sc.wait_tunnel(r, procs=[srv, cl])
        H.wait_until(lambda: "PROBE done" in srv.output(), 10, what="the probes")
        out = srv.output()
        self.assertRegex(out, r"PROBE unknown-type reason=3 ", "unknown channel type: reason 3")
        self.assertRegex(out, r"PROBE bad-json reason=2 ", "tunnel with bad JSON: reason 2")
        self.assertRegex(out, r'PROBE unknown-port reason=2 message="no forward for port"',
                         "tunnel for an unknown port: reason 2 \"no forward for port\"")
        self.assertTrue(cl.alive())
        self.assertTunnel(r)


class Algorithms(E2E):
    """Interop across the Go side's ciphers and key exchanges, with re-keys it starts in the middle
    of a transfer (-rekey on the Go peer). Needs at least one Go side."""

    def _go_extra(self, side, algs):
        impl = self.S if side == "server" else self.C
        return list(algs) if impl.kind == "go" else []

    def _run(self, algs, size=4 << 20, keyed=False):
        if self.S.kind != "go" and self.C.kind != "go":
            self.skipTest("algorithm selection is done on the Go side; both sides are ours")
        priv, pub = self.keys() if keyed else (None, None)
        echo = self.sc.echo()
        srv = self.sc.server(client_key=pub, extra=self._go_extra("server", algs))
        r = H.free_port()
        cl = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=priv,
                            extra=self._go_extra("client", algs))
        self.sc.wait_tunnel(r, procs=[srv, cl])
        self.assertTransfer(r, size)
        self.assertTrue(srv.alive() and cl.alive())
        if self.C.kind == "go":  # the Go client prints HOSTKEY_SEEN at every key exchange
            kex = cl.output().count("HOSTKEY_SEEN")
            self.assertGreaterEqual(kex, 2, "no re-key happened during the transfer")
            sys.stderr.write("[%d key exchanges] " % kex)

    def test_rekey_aes128gcm_curve25519_keyed(self):
        self._run(["-cipher", "aes128-gcm@openssh.com", "-kex", "curve25519-sha256", "-rekey", "262144"], keyed=True)

    def test_rekey_chacha20_ecdh_nistp256(self):
        self._run(["-cipher", "chacha20-poly1305@openssh.com", "-kex", "ecdh-sha2-nistp256", "-rekey", "262144"])

    def test_rekey_aes128ctr_etm_curve25519_libssh(self):
        self._run(["-cipher", "aes128-ctr", "-mac", "hmac-sha2-256-etm@openssh.com", "-kex", "curve25519-sha256@libssh.org",
                   "-rekey", "1048576"])


# ==============================================================================================
class Auth(E2E):

    def test_auth_valid_key(self):
        priv, pub = self.keys()
        srv, cl, (r,), _ = self.sc.tunnel(key_pair=(priv, pub))
        self.assertTransfer(r, 1 << 20)

    def _refused_then_good_client_works(self, srv, bad_client, r, echo, good_priv):
        self.assertNoTunnelFor(r, 3)
        self.assertTrue(srv.alive(), "server must survive a refused client\n" + self.dump())
        bad_client.stop()
        good = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=good_priv)
        self.sc.wait_tunnel(r, procs=[srv, good])

    def test_auth_wrong_key(self):
        priv, pub = self.keys()
        other_priv, _ = self.keys()
        echo = self.sc.echo()
        srv = self.sc.server(client_key=pub)
        r = H.free_port()
        bad = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=other_priv)
        self._refused_then_good_client_works(srv, bad, r, echo, priv)

    def test_auth_keyless_client_vs_keyed_server(self):
        priv, pub = self.keys()
        echo = self.sc.echo()
        srv = self.sc.server(client_key=pub)
        r = H.free_port()
        bad = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=None)
        self._refused_then_good_client_works(srv, bad, r, echo, priv)

    def test_auth_wrong_private_key_for_known_public_key(self):
        # An attacker who knows the (shareable) public key can compute the derived host key, so the
        # client-side check passes; the server must still refuse: the Go peer with -insecure plays it.
        if not self.GO.available():
            self.skipTest("Go peer not available")
        priv, pub = self.keys()
        attacker_priv, _ = self.keys()
        echo = self.sc.echo()
        srv = self.sc.server(client_key=pub)
        r = H.free_port()
        bad = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=attacker_priv, impl=self.GO,
                             extra=["-insecure"])
        self._refused_then_good_client_works(srv, bad, r, echo, priv)
        out = bad.output()
        self.assertNotIn("LISTEN_OK", out, "server accepted a listen from an unauthenticated client")

    def test_auth_keyed_client_vs_keyless_server(self):
        # The server's ephemeral host key is not the derived one: the client must refuse it (MITM).
        priv, pub = self.keys()
        echo = self.sc.echo()
        srv = self.sc.server(client_key=None)
        r = H.free_port()
        self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=priv)
        self.assertNoTunnelFor(r, 3)

    def test_auth_keyless_server_and_client(self):
        srv, cl, (r,), _ = self.sc.tunnel(key_pair=None)
        self.assertTransfer(r, 1 << 20)
        for p in (srv, cl):
            self.assertRegex(p.output(), r"(?i)warn", "%s: no warning about running without keys" % p.name)

    def test_auth_keys_from_environment(self):
        priv, pub = self.keys()
        echo = self.sc.echo()
        srv = self.sc.server(env={"VTUNNEL_CLIENT_KEY": pub})
        r = H.free_port()
        cl = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], env={"VTUNNEL_KEY": priv})
        self.sc.wait_tunnel(r, procs=[srv, cl])
        # and the env key is really enforced: a keyless client is refused
        cl.stop()
        r2 = H.free_port()
        self.sc.client(srv, ["%d=127.0.0.1:%d" % (r2, echo.port)])
        self.assertNoTunnelFor(r2, 2)


# ==============================================================================================
class Reconnect(E2E):

    def test_reconnect_replays_listen(self):
        srv, cl, (r,), _ = self.sc.tunnel()
        srv2 = self.restart_server(srv, sig=signal.SIGTERM)
        self.sc.wait_tunnel(r, procs=[srv2, cl])
        self.assertTransfer(r, 1 << 20)

    def test_reconnect_multiple_ports(self):
        srv, cl, ports, _ = self.sc.tunnel(n_ports=4)
        srv2 = self.restart_server(srv, sig=signal.SIGTERM)
        for r in ports:
            self.sc.wait_tunnel(r, procs=[srv2, cl])

    def test_reconnect_sequential_numbers(self):
        srv, cl, (r,), _ = self.sc.tunnel()
        for round_ in range(2):
            srv = self.restart_server(srv, sig=signal.SIGTERM)
            self.sc.wait_tunnel(r, procs=[srv, cl])
            for i in range(1, 31):  # each sequential connection after the first success must work
                msg = ("round %d message %d" % (round_, i)).encode()
                self.assertEqual(H.echo_roundtrip(r, msg, timeout=5), msg, "connection #%d" % i)

    def test_reconnect_burst_of_connections(self):
        srv, cl, (r,), _ = self.sc.tunnel()
        srv.kill()
        srv2 = self.sc.server(port=srv.port)
        H.wait_until(lambda: H.port_accepts(r), 15, interval=0.02, what="listener re-created by the replay")
        n = 50
        results = [None] * n

        def one(i):
            data = os.urandom(4096)
            try:
                results[i] = H.transfer(r, data, timeout=30) == data
            except Exception as e:  # noqa
                results[i] = repr(e)

        ths = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(60)
        bad = [(i, x) for i, x in enumerate(results) if x is not True]
        self.assertFalse(bad, "%d of %d burst connections right after reconnect failed: %r\n%s"
                         % (len(bad), n, bad[:5], self.dump()))
        self.assertTrue(srv2.alive())

    def test_reconnect_rapid_flapping(self):
        srv, cl, (r, r2), _ = self.sc.tunnel(n_ports=2)
        rnd = random.Random(7)
        for _ in range(6):
            srv.kill()
            srv = self.sc.server(port=srv.port)
            time.sleep(rnd.uniform(0.05, 0.4))
        self.assertTrue(cl.alive(), "client died while the server flapped\n" + self.dump())
        self.sc.wait_tunnel(r, procs=[srv, cl])
        self.sc.wait_tunnel(r2, procs=[srv, cl])
        self.assertTransfer(r, 1 << 20)

    def test_reconnect_during_active_transfer(self):
        srv, cl, (r,), _ = self.sc.tunnel()
        outcome = {}

        data = os.urandom(8 << 20)
        in_flight = threading.Event()

        def slow_transfer():
            try:
                s = socket.create_connection((H.LOOP, r), timeout=10)
            except OSError as e:
                outcome["connect_err"] = e
                return
            got = bytearray()
            try:
                def rd():
                    try:
                        while True:
                            d = s.recv(65536)
                            if not d:
                                break
                            got.extend(d)
                            if len(got) >= 256 * 1024:
                                in_flight.set()
                    except OSError as e:
                        outcome["rerr"] = e
                t = threading.Thread(target=rd, daemon=True)
                t.start()
                for i in range(0, len(data), 65536):
                    s.sendall(data[i:i + 65536])
                    time.sleep(0.01)  # ~6 MB/s: still running when the server goes away
                s.shutdown(socket.SHUT_WR)
                t.join(15)
                outcome["ok"] = bytes(got) == data
            except OSError as e:
                outcome["err"] = e
            finally:
                s.close()
                outcome["done"] = time.monotonic()

        th = threading.Thread(target=slow_transfer, daemon=True)
        th.start()
        self.assertTrue(in_flight.wait(20), "the transfer did not get going\n" + self.dump())
        srv = self.restart_server(srv, sig=signal.SIGTERM)
        th.join(20)
        self.assertFalse(th.is_alive(), "the interrupted transfer hangs (must fail or finish)")
        self.assertNotIn("connect_err", outcome, "could not even start the transfer")
        sys.stderr.write("[in-flight transfer: %s] " % ("completed" if outcome.get("ok") else "failed (allowed)"))
        self.sc.wait_tunnel(r, procs=[srv, cl])
        for _ in range(3):
            self.assertTransfer(r, 2 << 20)

    def test_close_while_reconnecting(self):
        srv, cl, (r,), _ = self.sc.tunnel()
        srv.kill()
        time.sleep(1.2)  # the client is now between attempts (backoff 100ms..500ms)
        rc, took, killed = cl.stop(signal.SIGTERM, grace=5)
        self.assertFalse(killed, "client ignored SIGTERM while reconnecting\n" + self.dump())
        self.assertLess(took, 3.0, "client took %.1fs to exit while reconnecting" % took)
        if self.C.promises("clean-signal-exit"):
            self.assertEqual(rc, 0, "SIGTERM while reconnecting: exit status\n" + self.dump())

    def test_close_while_connecting_to_silent_server(self):
        # The server accepts TCP but never answers the WebSocket handshake: SIGTERM must still be prompt.
        silent = self.sc.add(H.TcpServer(lambda c, s, n: time.sleep(30)))
        echo = self.sc.echo()
        cl = self.sc.client("ws://127.0.0.1:%d/" % silent.port, ["%d=127.0.0.1:%d" % (H.free_port(), echo.port)])
        H.wait_until(lambda: silent.accepted >= 1, 10, what="the client to connect")
        time.sleep(0.5)
        rc, took, killed = cl.stop(signal.SIGTERM, grace=5)
        self.assertFalse(killed, "client ignored SIGTERM during a hanging handshake\n" + self.dump())
        self.assertLess(took, 3.0, "client took %.1fs to exit during a hanging handshake" % took)
        if self.C.promises("clean-signal-exit"):
            self.assertEqual(rc, 0, "SIGTERM during a hanging handshake: exit status\n" + self.dump())

    def test_backoff_respected(self):
        bmin, bmax = 0.2, 1.0
        srv, cl, (r,), _ = self.sc.tunnel(backoff=("200ms", "1s"))
        srv.kill()
        counter = self.sc.add(H.accept_and_close_server(srv.port))  # a "dead" server that counts attempts
        t0 = time.monotonic()
        time.sleep(5.0)
        times = [t for t in counter.accept_times if t >= t0]
        iv = [b - a for a, b in zip(times, times[1:])]
        desc = "attempts at %s; intervals %s" % (["%.2f" % (t - t0) for t in times], ["%.2f" % x for x in iv])
        sys.stderr.write("[%s] " % desc)
        self.assertTrue(cl.alive(), "client exited against a dead server\n" + self.dump())
        self.assertGreaterEqual(len(times), 3, "client does not keep retrying: " + desc)
        self.assertLessEqual(len(times), 5.0 / (0.5 * bmin) + 1, "too many attempts (spinning): " + desc)
        for x in iv:
            self.assertGreaterEqual(x, 0.5 * bmin, "attempts closer than backoff-min: " + desc)
            self.assertLessEqual(x, 1.5 * bmax + 0.3, "attempts further apart than backoff-max: " + desc)
        late = sorted(iv[-3:])[len(iv[-3:]) // 2]
        self.assertGreaterEqual(late, 2 * bmin, "backoff does not grow: " + desc)


# ==============================================================================================
class Faults(E2E):

    def test_backend_refusing_connections(self):
        dead = H.free_port()  # nothing listens there
        echo = self.sc.echo()
        srv = self.sc.server()
        r_dead, r_echo = H.free_port(), H.free_port()
        cl = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r_dead, dead), "%d=127.0.0.1:%d" % (r_echo, echo.port)])
        self.sc.wait_tunnel(r_echo, procs=[srv, cl])
        for i in range(3):
            t0 = time.monotonic()
            with socket.create_connection((H.LOOP, r_dead), timeout=5) as s:
                try:
                    s.sendall(b"hello?")
                except OSError:
                    pass
                closed, data = H.closed_promptly(s, 5)
            took = time.monotonic() - t0
            self.assertTrue(closed, "user's connection to a refusing backend not closed within 5 s")
            self.assertEqual(data, b"")
            self.assertLess(took, 3.0, "closing took %.1fs, not prompt" % took)
            self.assertTunnel(r_echo, "tunnel after a refused backend connection")
        self.sc.add(H.echo_server(dead))  # the backend comes up: the same forward now works
        self.sc.wait_tunnel(r_dead, timeout=10, procs=[srv, cl])

    def test_server_sigkill_and_restart(self):
        srv, cl, (r,), _ = self.sc.tunnel()
        srv.kill()
        self.assertTrue(H.port_refuses(r) or not H.tunnel_works(r, 1.0))
        srv2 = self.sc.server(port=srv.port)
        self.sc.wait_tunnel(r, timeout=15, procs=[srv2, cl])
        self.assertTransfer(r, 4 << 20)

    def test_client_sigkill_gap_connection_waits(self):
        srv, cl, (r,), (echo,) = self.sc.tunnel()
        cl.kill()
        time.sleep(0.3)
        t0 = time.monotonic()
        s = socket.create_connection((H.LOOP, r), timeout=5)  # the listener persists
        try:
            s.sendall(b"sent-in-the-gap")
            time.sleep(1.0)
            cl2 = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)])
            got = H.recv_exact(s, len(b"sent-in-the-gap"), timeout=35)
        except OSError as e:
            self.fail("waiting connection failed after %.1fs: %r\n%s" % (time.monotonic() - t0, e, self.dump()))
        finally:
            s.close()
        self.assertEqual(got, b"sent-in-the-gap")
        self.assertTrue(cl2.alive())
        self.assertTunnel(r)

    def test_waiting_connections_all_handed_after_relisten(self):
        self.need("handoff-after-relisten", "server")
        srv, cl, (r,), (echo,) = self.sc.tunnel()
        cl.kill()
        time.sleep(0.3)
        socks = []
        for i in range(10):
            s = socket.create_connection((H.LOOP, r), timeout=5)
            s.sendall(b"waiting-%02d" % i)
            socks.append(s)
        time.sleep(1.0)
        self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], backoff=("1s", "2s"))
        bad = []
        for i, s in enumerate(socks):
            try:
                got = H.recv_exact(s, 10, timeout=20)
                if got != b"waiting-%02d" % i:
                    bad.append((i, got))
            except OSError as e:
                bad.append((i, repr(e)))
            finally:
                s.close()
        self.assertFalse(bad, "waiting connections lost after the client came back: %r\n%s" % (bad, self.dump()))

    # Dead-peer bound: our implementation closes a session whose ping is not answered within
    # keepalive + 15 s (the pong timeout is not a CLI flag); the Go peer uses the interval itself.
    DEAD_PEER_BOUND = 25

    def test_client_vanishes_without_closing_dead_peer_detected(self):
        # SIGSTOP: the client's socket stays open but nothing answers (a half-open peer). A user
        # connection arriving meanwhile must not hang on the dead session: once a live client is
        # there it must be served within the dead-peer bound.
        self.need("dead-peer-detection", "server")
        echo = self.sc.echo()
        srv = self.sc.server(keepalive="300ms")
        r = H.free_port()
        cl = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)])
        self.sc.wait_tunnel(r, procs=[srv, cl])
        cl.pause()
        time.sleep(1.0)
        t0 = time.monotonic()
        s = socket.create_connection((H.LOOP, r), timeout=5)
        try:
            s.sendall(b"after-dead-peer")
            time.sleep(0.5)
            self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)])
            got = H.recv_exact(s, 15, timeout=self.DEAD_PEER_BOUND)
        except OSError as e:
            self.fail("connection made while the active client was frozen, a new client started 0.5 s "
                      "later: not served within %ds (%r after %.1fs)\n%s"
                      % (self.DEAD_PEER_BOUND, e, time.monotonic() - t0, self.dump()))
        finally:
            s.close()
            cl.kill()
        sys.stderr.write("[served after %.1fs] " % (time.monotonic() - t0))
        self.assertEqual(got, b"after-dead-peer")

    def test_dead_server_detected_by_client(self):
        # The path to the server stalls (half-open): the client's keepalive must notice and reconnect.
        self.need("dead-peer-detection", "client")
        echo = self.sc.echo()
        srv = self.sc.server()
        relay = self.sc.add(H.Relay(srv.port))
        r = H.free_port()
        cl = self.sc.client("ws://127.0.0.1:%d/" % relay.port, ["%d=127.0.0.1:%d" % (r, echo.port)],
                            keepalive="300ms")
        self.sc.wait_tunnel(r, procs=[srv, cl])
        relay.stall()
        t0 = time.monotonic()
        H.wait_until(lambda: relay.connections >= 2, self.DEAD_PEER_BOUND,
                     what="the client to reconnect after the path stalled")
        sys.stderr.write("[client reconnected %.2fs after the stall] " % (time.monotonic() - t0))
        self.sc.wait_tunnel(r, procs=[srv, cl])

    def test_dead_client_detected_by_server(self):
        self.need("dead-peer-detection", "server")
        echo = self.sc.echo()
        srv = self.sc.server(keepalive="300ms")
        relay = self.sc.add(H.Relay(srv.port))
        r = H.free_port()
        cl = self.sc.client("ws://127.0.0.1:%d/" % relay.port, ["%d=127.0.0.1:%d" % (r, echo.port)],
                            keepalive="-1s")
        self.sc.wait_tunnel(r, procs=[srv, cl])
        relay.stall()
        t0 = time.monotonic()
        H.wait_until(lambda: relay.upstream_closed, self.DEAD_PEER_BOUND,
                     what="the server to close the stalled session")
        sys.stderr.write("[server dropped the stalled session after %.2fs] " % (time.monotonic() - t0))

    def test_forward_retry_when_remote_port_refused(self):
        self.need("forward-retry", "client")
        echo = self.sc.echo()
        srv = self.sc.server()
        busy = H.TcpServer(lambda c, s, n: None)  # occupies the remote port on the server host
        r_busy, r_ok = busy.port, H.free_port()
        cl = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r_busy, echo.port), "%d=127.0.0.1:%d" % (r_ok, echo.port)])
        try:
            self.sc.wait_tunnel(r_ok, procs=[srv, cl])
            time.sleep(1.0)
            self.assertTrue(cl.alive(), "client exited because one forward was refused\n" + self.dump())
            self.assertTunnel(r_ok)
        finally:
            busy.close()
        self.sc.wait_tunnel(r_busy, timeout=20, procs=[srv, cl])  # retried with backoff


# ==============================================================================================
class Cli(E2E):

    def _bad(self, argv, what, env=None):
        rc, out, err = H.run_cmd(argv, timeout=8, env=env)
        self.assertIsNotNone(rc, "%s: still running after 8 s (%s)" % (what, " ".join(argv)))
        self.assertNotEqual(rc, 0, "%s: exit status 0 (%s)" % (what, " ".join(argv)))
        self.assertTrue(err.strip(), "%s: nothing on stderr" % what)
        return err

    def test_cli_client_errors(self):
        b = self.C.path
        url = "ws://127.0.0.1:%d/" % H.free_port()
        self._bad([b, "client", "-no-such-flag", "-server", url, "-forward", "9=127.0.0.1:1"], "unknown flag")
        self._bad([b, "client", "-forward", "9000=127.0.0.1:1"], "missing -server")
        self._bad([b, "client", "-server", url], "missing -forward")
        self._bad([b, "client", "-server", url, "-forward", "nonsense"], "forward without '='")
        self._bad([b, "client", "-server", url, "-forward", "70000=127.0.0.1:1"], "remote port out of range")
        self._bad([b, "client", "-server", url, "-forward", "abc=127.0.0.1:1"], "non-numeric remote port")
        self._bad([b, "client", "-server", url, "-key", "vt-priv-AAAA", "-forward", "9=127.0.0.1:1"], "short key")
        self._bad([b, "client", "-server", url, "-key", "vt-pub-" + "A" * 43, "-forward", "9=127.0.0.1:1"],
                  "public key given as private")
        self._bad([b, "client", "-server", url, "-forward", "9=127.0.0.1:1"], "bad key in env",
                  env={"VTUNNEL_KEY": "vt-priv-!!!"})

    def test_cli_server_errors(self):
        b = self.S.path
        self._bad([b, "server", "-no-such-flag"], "unknown flag")
        self._bad([b, "server", "-port", str(H.free_port()), "-client-key", "vt-pub-xyz"], "bad client key")
        self._bad([b, "server", "-port", str(H.free_port()), "-client-key", "vt-priv-" + "A" * 43],
                  "private key given as client key")
        busy = self.sc.add(H.TcpServer(lambda c, s, n: None))
        argv = self.S.server_cmd(busy.port)
        self._bad(argv, "-port already in use")

    def test_sigterm_and_sigint_clean_exit(self):
        if not (self.S.promises("clean-signal-exit") or self.C.promises("clean-signal-exit") or FORCE_OURS_ONLY):
            self.skipTest("neither side promises exit 0 on SIGTERM (Go peer dies by the signal)")
        srv, cl, (r,), _ = self.sc.tunnel()
        s = socket.create_connection((H.LOOP, r), timeout=5)  # an open connection during shutdown
        s.sendall(b"x")
        H.recv_exact(s, 1)
        try:
            if self.C.promises("clean-signal-exit") or FORCE_OURS_ONLY:
                rc, took, killed = cl.stop(signal.SIGINT, grace=5)
                self.assertFalse(killed, "client ignored SIGINT\n" + self.dump())
                self.assertEqual(rc, 0, "client exit status after SIGINT\n" + self.dump())
            if self.S.promises("clean-signal-exit") or FORCE_OURS_ONLY:
                rc, took, killed = srv.stop(signal.SIGTERM, grace=5)
                self.assertFalse(killed, "server ignored SIGTERM\n" + self.dump())
                self.assertEqual(rc, 0, "server exit status after SIGTERM\n" + self.dump())
                self.assertTrue(H.port_refuses(r), "tunnel listener still open after the server exited")
        finally:
            s.close()

    def test_sanitizer_leak_check_is_live(self):
        """Sanitizer builds: every scenario fails on a sanitizer report in any process's stderr
        (Scenario.close; our processes exit gracefully on SIGTERM, which is when LeakSanitizer
        runs). Proof that this is live: a probe that leaks on purpose, started and stopped like
        our binaries, must be caught; our server gets the same ASAN_OPTIONS."""
        probe = os.environ.get("VTUNNEL_LSAN_PROBE")
        if not probe:
            self.skipTest("not a sanitizer build (no VTUNNEL_LSAN_PROBE)")
        self.assertNotIn("detect_leaks=0", os.environ.get("ASAN_OPTIONS", ""))
        p = self.sc.start([probe], "lsan-probe-")
        p.expect_sanitizer_report = True  # not a failure of this scenario
        H.wait_until(lambda: "ready" in p.output(), 15, what="leak probe ready")
        rc, took, killed = p.stop(signal.SIGTERM, grace=15)
        self.assertFalse(killed, p.output())
        reports = H.sanitizer_reports([p])
        self.assertEqual(len(reports), 1, "LeakSanitizer did not report the probe's leak:\n" + p.output())
        self.assertIn("LeakSanitizer", reports[0])
        self.assertNotEqual(rc, 0)
        for side in (self.S, self.C):
            if side.kind != "ours":
                continue
            srv = self.sc.server(impl=side)
            with open("/proc/%d/environ" % srv.pid, "rb") as f:
                env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
            self.assertEqual(env.get(b"ASAN_OPTIONS", b"").decode(), os.environ.get("ASAN_OPTIONS", ""))
            rc, took, killed = srv.stop(signal.SIGTERM, grace=10)
            self.assertFalse(killed, "server ignored SIGTERM\n" + self.dump())
            self.assertEqual(rc, 0, self.dump())
            self.assertEqual(H.sanitizer_reports([srv]), [])
            break


# ==============================================================================================
from test_metrics import MetricsTests  # noqa: E402


class Metrics(E2E, MetricsTests):
    """Prometheus metrics, scraped and parsed (tests/e2e/test_metrics.py)."""


# ==============================================================================================

class _Result(unittest.TextTestResult):
    def _dump(self, test):
        sc = getattr(test, "sc", None)
        if sc is not None:
            sc.keep_logs = True
            self.stream.write("\n===== process logs for %s (kept in %s) =====\n%s\n" % (test.id(), sc.logdir, sc.log_tails(60)))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._dump(test)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=["ours", "go"], default=os.environ.get("E2E_SERVER", "go"))
    ap.add_argument("--client", choices=["ours", "go"], default=os.environ.get("E2E_CLIENT", "go"))
    ap.add_argument("--vtunnel", help="our vtunnel binary (default $VTUNNEL_BIN)")
    ap.add_argument("--vtpeer", help="the Go peer (default $VTPEER_BIN)")
    args, rest = ap.parse_known_args()
    srv, cl, go = H.find_impls(args.server, args.client, args.vtunnel, args.vtpeer)
    missing = [("%s (%s)" % (i.kind, i.path or "unset")) for i in {id(x): x for x in (srv, cl, go)}.values()
               if not i.available()]
    if missing:
        print("SKIP: binary not available: %s. Set VTUNNEL_BIN (our build/apps/vtunnel) and VTPEER_BIN "
              "(tests/peers/build-gopeer.sh OUTDIR)." % ", ".join(missing), flush=True)
        return 77
    CFG.update(server=srv, client=cl, go=go)
    print("e2e: server=%r client=%r" % (srv, cl), flush=True)
    prog = unittest.main(module=__name__, argv=[sys.argv[0]] + rest, exit=False,
                         testRunner=unittest.TextTestRunner(resultclass=_Result, verbosity=2))
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
