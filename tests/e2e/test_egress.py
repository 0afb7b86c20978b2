#!/usr/bin/python3
"""End-to-end tests of getting out and in (issue 9): our client behind an HTTP proxy (our own
`vtunnel server -proxy` and Debian's tinyproxy, ws:// and wss://, Basic auth), and our server
speaking TLS itself (-tls-cert/-tls-key: our client, Python websockets and ssl as clients,
SIGHUP reload). Real processes on loopback; our binaries only.

    VTUNNEL_BIN=build/apps/vtunnel /usr/bin/python3 tests/e2e/test_egress.py [-k tinyproxy]
"""
import asyncio
import hashlib
import os
import shutil
import signal
import socket
import ssl
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

VT = os.environ.get("VTUNNEL_BIN", "")
KEEP_LOGS = os.environ.get("E2E_KEEP_LOGS") == "1"
TEST_TIMEOUT = int(os.environ.get("E2E_TEST_TIMEOUT", "90"))
TINYPROXY = shutil.which("tinyproxy") or ("/usr/bin/tinyproxy" if os.path.exists("/usr/bin/tinyproxy") else None)


def _on_alarm(signum, frame):
    raise TimeoutError("test exceeded %ds (E2E_TEST_TIMEOUT)" % TEST_TIMEOUT)


def tls_health(port, cafile, host="127.0.0.1", timeout=5):
    """GET /health over TLS; returns (status, body, peer certificate DER)."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (host.encode(), port))
            buf = H.recv_all(s, timeout=timeout)
    st, _, body = H.parse_http_response(buf)
    return st, body, der


def pem_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Egress(unittest.TestCase):
    def setUp(self):
        if not VT or not os.access(VT, os.X_OK):
            self.skipTest("VTUNNEL_BIN not set or not executable")
        impl = H.Impl("ours", VT)
        self.impl = impl
        self.sc = H.Scenario(impl, impl, name=self.id().split(".")[-1], keep_logs=KEEP_LOGS)
        self.addCleanup(self.sc.close)
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(TEST_TIMEOUT)
        self.addCleanup(signal.alarm, 0)
        self.ca = H.TestCA(os.path.join(self.sc.logdir, "ca"))
        # Trust only the test CA (and no directory), in every child and in this process.
        self.trust = {"SSL_CERT_FILE": self.ca.ca_cert, "SSL_CERT_DIR": os.path.join(self.sc.logdir, "nodir")}
        # Proxy variables of the machine running the tests must not leak into the children.
        self.clean_env = {k: None for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                            "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")}

    def run_env(self, **extra):
        """For H.run_cmd (which cannot remove variables): proxy variables empty (= unset)."""
        e = {k: "" for k in self.clean_env}
        e.update(self.trust)
        e.update(extra)
        return e

    def env(self, **extra):
        e = dict(self.clean_env)
        e.update(self.trust)
        e.update(extra)
        return e

    def dump(self):
        return self.sc.log_tails(25)

    # -- pieces

    def tls_server(self, name="server", extra=()):
        cert, key = self.ca.issue(name, ["localhost", "127.0.0.1"])
        port = H.free_port()
        srv = self.sc.start(self.impl.server_cmd(port, extra=["-tls-cert", cert, "-tls-key", key] + list(extra)),
                            "server-tls-", env=self.env())
        srv.port = port
        srv.cert, srv.key = cert, key
        H.wait_until(lambda: srv.alive() and tls_health(port, self.ca.ca_cert)[0] == 200, 15,
                     what="TLS server /health on %d" % port)
        return srv

    def tinyproxy(self, connect_ports, auth=None):
        """tinyproxy on a loopback port, CONNECT allowed to connect_ports only, optional BasicAuth."""
        if TINYPROXY is None:
            self.skipTest("tinyproxy not installed (scripts/install-deps.sh installs it)")
        port = H.free_port()
        conf = os.path.join(self.sc.logdir, "tinyproxy-%d.conf" % port)
        lines = ["Port %d" % port, "Listen 127.0.0.1", "Timeout 60", "MaxClients 20", "LogLevel Info",
                 "Allow 127.0.0.1", "DisableViaHeader Yes"]
        lines += ["ConnectPort %d" % p for p in connect_ports]
        if auth:
            lines.append("BasicAuth %s %s" % auth)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        proc = self.sc.start([TINYPROXY, "-d", "-c", conf], "tinyproxy-", env=self.env())
        proc.port = port
        H.wait_port(port, timeout=10)
        return proc

    def client(self, url, forwards, extra=(), env=None):
        return self.sc.client(url, forwards, extra=extra, env=env or self.env())

    def assertEcho(self, port, what):
        payload = os.urandom(32).hex().encode()
        try:
            got = H.echo_roundtrip(port, payload, timeout=5)
        except OSError as e:
            self.fail("%s on port %d: %r\n%s" % (what, port, e, self.dump()))
        self.assertEqual(got, payload, what)

    def assertTransfer(self, port, n):
        data = os.urandom(n)
        got = H.transfer(port, data, timeout=60)
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())

    def assertNoSecret(self, proc, secret):
        # (the harness writes the command line as a "### " header: that is not the program's output)
        out = "\n".join(l for l in proc.output().splitlines() if not l.startswith("### "))
        self.assertNotIn(secret, out, "the proxy password appears in the log of %s" % proc.name)


# ==============================================================================================
class ThroughProxy(Egress):
    """Our client reaches our server through an HTTP CONNECT proxy."""

    def _our_proxy(self):
        proxy_port = H.free_port()
        hop = self.sc.server(extra=["-proxy", str(proxy_port)], env=self.env())
        H.wait_port(proxy_port)
        return hop, proxy_port

    def test_ws_through_our_server_proxy(self):
        target = self.sc.server(env=self.env())
        hop, proxy_port = self._our_proxy()
        echo = self.sc.echo()
        r = H.free_port()
        cl = self.client(target.url, ["%d=127.0.0.1:%d" % (r, echo.port)],
                         extra=["-proxy-url", "http://127.0.0.1:%d" % proxy_port])
        self.sc.wait_tunnel(r, procs=[target, hop, cl])
        self.assertTransfer(r, 1 << 20)
        log = hop.stderr_text()
        self.assertIn("CONNECT 127.0.0.1:%d via direct" % target.port, log, log)
        self.assertIn("through HTTP proxy http://127.0.0.1:%d" % proxy_port, cl.stderr_text())

    def test_wss_through_our_server_proxy(self):
        target = self.tls_server()
        hop, proxy_port = self._our_proxy()
        echo = self.sc.echo()
        r = H.free_port()
        cl = self.client("wss://localhost:%d/" % target.port, ["%d=127.0.0.1:%d" % (r, echo.port)],
                         extra=["-proxy-url", "127.0.0.1:%d" % proxy_port])  # scheme-less: http://
        self.sc.wait_tunnel(r, procs=[target, hop, cl])
        self.assertEcho(r, "wss tunnel through our proxy")
        self.assertIn("CONNECT localhost:%d via direct" % target.port, hop.stderr_text())

    def test_ws_and_wss_through_tinyproxy(self):
        echo = self.sc.echo()
        plain = self.sc.server(env=self.env())
        secure = self.tls_server()
        tp = self.tinyproxy([plain.port, secure.port])
        r1, r2 = H.free_port(), H.free_port()
        c1 = self.client(plain.url, ["%d=127.0.0.1:%d" % (r1, echo.port)],
                         extra=["-proxy-url", "http://127.0.0.1:%d" % tp.port])
        c2 = self.client("wss://127.0.0.1:%d/" % secure.port, ["%d=127.0.0.1:%d" % (r2, echo.port)],
                         extra=["-proxy-url", "http://127.0.0.1:%d/" % tp.port])
        self.sc.wait_tunnel(r1, procs=[plain, tp, c1])
        self.sc.wait_tunnel(r2, procs=[secure, tp, c2])
        self.assertTransfer(r1, 1 << 20)
        self.assertTransfer(r2, 1 << 20)
        tp_log = tp.output()
        self.assertIn("127.0.0.1:%d" % plain.port, tp_log, "tinyproxy did not see the ws:// CONNECT\n" + tp_log)
        self.assertIn("127.0.0.1:%d" % secure.port, tp_log, "tinyproxy did not see the wss:// CONNECT\n" + tp_log)

    def test_tinyproxy_basic_auth(self):
        echo = self.sc.echo()
        secure = self.tls_server()
        tp = self.tinyproxy([secure.port], auth=("vtuser", "s3cr3t.pass"))  # tinyproxy takes no ':' '@' here
        r = H.free_port()
        cl = self.client("wss://localhost:%d/" % secure.port, ["%d=127.0.0.1:%d" % (r, echo.port)],
                         extra=["-proxy-url", "http://vt%%75ser:s3cr3t%%2Epass@127.0.0.1:%d" % tp.port])  # percent-decoded
        self.sc.wait_tunnel(r, procs=[secure, tp, cl])
        self.assertEcho(r, "wss through tinyproxy with Basic auth")
        self.assertIn("http://vtuser:***@127.0.0.1:%d" % tp.port, cl.stderr_text())
        self.assertNoSecret(cl, "s3cr3t")

    def test_tinyproxy_wrong_password_is_a_clear_retried_error(self):
        echo = self.sc.echo()
        target = self.sc.server(env=self.env())
        tp = self.tinyproxy([target.port], auth=("vtuser", "right"))
        r = H.free_port()
        cl = self.client(target.url, ["%d=127.0.0.1:%d" % (r, echo.port)],
                         extra=["-proxy-url", "http://vtuser:wrong-secret@127.0.0.1:%d" % tp.port])
        # backoff 100ms..500ms: several attempts, each refused with the proxy's status line
        # (tinyproxy answers CONNECT without valid credentials with 401, not 407)
        H.wait_until(lambda: cl.stderr_text().count("refused CONNECT") >= 2, 15, what="two refused attempts logged")
        self.assertTrue(cl.alive(), "the client must keep retrying\n" + self.dump())
        log = cl.stderr_text()
        self.assertRegex(log, r'refused CONNECT: "HTTP/1\.[01] 40[17] [A-Za-z ]+"')
        self.assertIn("credentials rejected", log)
        self.assertIn("retrying in", log)
        self.assertNoSecret(cl, "wrong-secret")
        self.assertFalse(H.port_accepts(r), "no tunnel may exist")

    def test_environment_proxy_skips_loopback_and_bad_proxy_urls_fail_at_start(self):
        # HTTP_PROXY names a port where nothing listens: the loopback target is reached directly
        # (Go's rule), so the tunnel works.
        dead = H.free_port()
        target = self.sc.server(env=self.env())
        echo = self.sc.echo()
        r = H.free_port()
        cl = self.client(target.url, ["%d=127.0.0.1:%d" % (r, echo.port)],
                         env=self.env(HTTP_PROXY="http://127.0.0.1:%d" % dead, HTTPS_PROXY="http://127.0.0.1:%d" % dead))
        self.sc.wait_tunnel(r, procs=[target, cl])
        self.assertNotIn("through HTTP proxy", cl.stderr_text())
        # An https:// proxy is refused at start, from the flag and from the environment.
        rc, out, err = H.run_cmd([VT, "client", "-server", "ws://127.0.0.1:1/", "-forward", "1=127.0.0.1:1",
                                  "-proxy-url", "https://u:topsecret@proxy.example:443"], timeout=10, env=self.run_env())
        self.assertEqual(rc, 2, err)
        self.assertIn("not supported", err)
        self.assertNotIn("topsecret", out + err)
        rc, out, err = H.run_cmd([VT, "client", "-server", "wss://tunnel.example:1/", "-forward", "1=127.0.0.1:1"],
                                 timeout=10, env=self.run_env(HTTPS_PROXY="https://proxy.example:443"))
        self.assertEqual(rc, 2, err)
        self.assertIn("$HTTPS_PROXY", err)
        self.assertIn("not supported", err)

    def test_explicit_direct_overrides_environment(self):
        tp_dead = H.free_port()
        target = self.sc.server(env=self.env())
        echo = self.sc.echo()
        r = H.free_port()
        # Even with NO_PROXY empty and a non-loopback-looking setup, -proxy-url direct wins.
        cl = self.client(target.url, ["%d=127.0.0.1:%d" % (r, echo.port)], extra=["-proxy-url", "direct"],
                         env=self.env(HTTP_PROXY="http://127.0.0.1:%d" % tp_dead))
        self.sc.wait_tunnel(r, procs=[target, cl])
        # and an explicit proxy applies to loopback targets (here: a dead one, so it never connects)
        r2 = H.free_port()
        cl2 = self.client(target.url, ["%d=127.0.0.1:%d" % (r2, echo.port)],
                          extra=["-proxy-url", "http://127.0.0.1:%d" % tp_dead])
        H.wait_until(lambda: "cannot connect to proxy 127.0.0.1:%d" % tp_dead in cl2.stderr_text(), 10,
                     what="client to report the unreachable proxy")


# ==============================================================================================
class ServerTls(Egress):
    """vtunnel server -tls-cert/-tls-key: wss:// served by our server itself."""

    def test_our_client_over_wss(self):
        srv = self.tls_server()
        echo = self.sc.echo()
        r = H.free_port()
        cl = self.client("wss://localhost:%d/" % srv.port, ["%d=127.0.0.1:%d" % (r, echo.port)])
        self.sc.wait_tunnel(r, procs=[srv, cl])
        self.assertTransfer(r, 4 << 20)
        self.assertIn("wss://", srv.stderr_text())

    def test_python_websockets_and_https_health(self):
        import websockets  # Debian's python3-websockets
        srv = self.tls_server()
        st, body, _ = tls_health(srv.port, self.ca.ca_cert, host="localhost")
        self.assertEqual(st, 200)

        async def handshake():
            ctx = ssl.create_default_context(cafile=self.ca.ca_cert)
            async with websockets.connect("wss://localhost:%d/" % srv.port, ssl=ctx, open_timeout=10,
                                          close_timeout=2) as ws:
                first = await asyncio.wait_for(ws.recv(), 10)  # the server's SSH version line
                return ws.response_headers.get("Upgrade"), first, ws.transport.get_extra_info("ssl_object").version()

        upgrade, first, version = asyncio.run(handshake())
        self.assertEqual(upgrade.lower(), "websocket")
        self.assertIsInstance(first, bytes)
        self.assertTrue(first.startswith(b"SSH-2.0-"), first[:40])
        self.assertEqual(version, "TLSv1.2")

    def test_plain_http_and_garbage_to_tls_port_end_only_that_connection(self):
        srv = self.tls_server()
        echo = self.sc.echo()
        r = H.free_port()
        cl = self.client("wss://localhost:%d/" % srv.port, ["%d=127.0.0.1:%d" % (r, echo.port)])
        self.sc.wait_tunnel(r, procs=[srv, cl])
        for junk in (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(300), b"\x16\x03\x01\x00\x08\x01\x00\x00\x04abcd"):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                s.sendall(junk)
                closed, data = H.closed_promptly(s, 10)
                self.assertTrue(closed, "the server must close a non-TLS connection")
                self.assertFalse(data.startswith(b"HTTP/"), "no plain HTTP answer on a TLS port")
        self.assertTrue(srv.alive())
        self.assertEcho(r, "the existing session after junk connections")
        self.assertEqual(tls_health(srv.port, self.ca.ca_cert)[0], 200)
        self.assertIn("plain HTTP", srv.stderr_text())

    def test_bad_certificate_files_fail_at_start(self):
        cert, key = self.ca.issue("a", ["localhost"])
        other_cert, other_key = self.ca.issue("b", ["localhost"])
        port = H.free_port()
        rc, out, err = H.run_cmd([VT, "server", "-port", str(port), "-bind", "127.0.0.1",
                                  "-tls-cert", cert, "-tls-key", other_key], timeout=10)
        self.assertEqual(rc, 1, err)
        self.assertIn("does not belong to the certificate", err)
        rc, out, err = H.run_cmd([VT, "server", "-port", str(port), "-tls-cert", cert], timeout=10)
        self.assertEqual(rc, 2, err)
        self.assertIn("-tls-cert and -tls-key go together", err)

    def test_sighup_reloads_certificate_for_new_connections_only(self):
        srv = self.tls_server("first")
        echo = self.sc.echo()
        r = H.free_port()
        cl = self.client("wss://localhost:%d/" % srv.port, ["%d=127.0.0.1:%d" % (r, echo.port)])
        self.sc.wait_tunnel(r, procs=[srv, cl])
        self.assertEqual(tls_health(srv.port, self.ca.ca_cert)[2], pem_der(srv.cert))

        # A certificate from a different CA with a different name replaces the files.
        ca2 = H.TestCA(os.path.join(self.sc.logdir, "ca2"))
        new_cert, new_key = ca2.issue("second-ca-cert", ["127.0.0.1"])
        shutil.copyfile(new_cert, srv.cert)
        shutil.copyfile(new_key, srv.key)
        srv.send_signal(signal.SIGHUP)
        H.wait_until(lambda: "reloaded TLS certificate" in srv.stderr_text(), 10, what="reload logged")
        st, _, der = tls_health(srv.port, ca2.ca_cert)
        self.assertEqual(st, 200)
        self.assertEqual(der, pem_der(new_cert), "a new connection must see the new certificate")
        self.assertIn("reloaded TLS certificate CN=127.0.0.1", srv.stderr_text())
        with self.assertRaises(ssl.SSLError):  # the old CA does not vouch for it
            tls_health(srv.port, self.ca.ca_cert)
        self.assertEcho(r, "the session from before the reload")

        # A broken file: logged, the current certificate stays.
        with open(srv.cert, "w") as f:
            f.write("not a certificate\n")
        srv.send_signal(signal.SIGHUP)
        H.wait_until(lambda: "cannot reload the TLS certificate" in srv.stderr_text(), 10, what="reload error logged")
        self.assertTrue(srv.alive())
        self.assertEqual(tls_health(srv.port, ca2.ca_cert)[2], pem_der(new_cert))
        self.assertEcho(r, "the session after a failed reload")


if __name__ == "__main__":
    unittest.main(verbosity=2)
