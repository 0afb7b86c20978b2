"""Prometheus metrics of the real binaries (issue 9), mixed into test_tunnel.py's E2E cells.

The exposition is parsed (a small parser of the text format 0.0.4: HELP, TYPE, name, labels with
escapes, value) and the counters are checked against traffic the test moved itself. Server-side
checks need our server, client-side checks our client; a cell where neither is ours skips.
"""
import math
import re
import threading

import harness as H

try:  # the reference parser (Debian python3-prometheus-client), as a second opinion
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - installed by scripts/install-deps.sh
    text_string_to_metric_families = None

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % _NAME)
_LABEL = re.compile(r'(%s)="((?:[^"\\]|\\.)*)"(,|$)' % r"[a-zA-Z_][a-zA-Z0-9_]*")


def _unescape(v):
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if c == "\\":
            e = v[i + 1]
            if e not in ('\\', '"', 'n'):
                raise ValueError("bad escape \\%s in %r" % (e, v))
            out.append("\n" if e == "n" else e)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Exposition:
    """Parsed text format: samples[(name, frozenset(labels.items()))] = value, types, helps."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.types = {}
        self.helps = {}
        for ln in text.split("\n"):
            if not ln:
                continue
            if ln.startswith("# HELP "):
                name, _, help_text = ln[7:].partition(" ")
                assert name not in self.helps, "two HELP lines for %s" % name
                self.helps[name] = help_text
                continue
            if ln.startswith("# TYPE "):
                name, _, typ = ln[7:].partition(" ")
                assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), ln
                assert name not in self.types, "two TYPE lines for %s" % name
                self.types[name] = typ
                continue
            assert not ln.startswith("#"), "unexpected comment %r" % ln
            m = _SAMPLE.match(ln)
            assert m, "not a sample line: %r" % ln
            name, label_text, value = m.group(1), m.group(2), m.group(3)
            labels = {}
            if label_text:
                pos = 0
                while pos < len(label_text):
                    lm = _LABEL.match(label_text, pos)
                    assert lm, "bad labels in %r" % ln
                    labels[lm.group(1)] = _unescape(lm.group(2))
                    pos = lm.end()
            v = float(value)  # accepts +Inf, NaN
            key = (name, frozenset(labels.items()))
            assert key not in self.samples, "duplicate sample %r" % ln
            self.samples[key] = v
        # Every sample belongs to a family that has HELP and TYPE; counters end in _total.
        for (name, _labels) in self.samples:
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in self.types else name
            assert family in self.types, "sample %s without TYPE" % name
            assert family in self.helps, "sample %s without HELP" % name
            if self.types[family] == "counter":
                assert name.endswith("_total"), "counter %s does not end in _total" % name

    def get(self, name, **labels):
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            raise AssertionError("no sample %s%r in:\n%s" % (name, labels, self.text))
        return self.samples[key]

    def histogram(self, name):
        """[(le, cumulative count)] in the order of le, plus sum and count."""
        buckets = sorted(((float(dict(lbl)["le"]), v) for (n, lbl), v in self.samples.items()
                          if n == name + "_bucket"), key=lambda b: b[0])
        return buckets, self.get(name + "_sum"), self.get(name + "_count")


def scrape(port, path="/metrics"):
    st, hdrs, body = H.http_get(port, path, timeout=5)
    return st, hdrs, body


def reference_check(exp):
    """prometheus_client's parser must read the same samples and types as ours."""
    if text_string_to_metric_families is None:
        return
    seen = {}
    for fam in text_string_to_metric_families(exp.text):
        want = exp.types[fam.name] if fam.name in exp.types else exp.types[fam.name + "_total"]
        assert fam.type == want, "%s: type %s, ours %s" % (fam.name, fam.type, want)
        for smp in fam.samples:
            if smp.name.endswith("_created"):
                continue
            seen[(smp.name, frozenset(smp.labels.items()))] = smp.value
    assert seen == exp.samples, "prometheus_client read %r\nours %r" % (seen, exp.samples)


def metrics_of(port):
    st, hdrs, body = scrape(port)
    assert st == 200, "GET /metrics on %d: status %d %r" % (port, st, body[:200])
    assert hdrs.get("content-type") == CONTENT_TYPE, hdrs
    exp = Exposition(body.decode("utf-8"))
    reference_check(exp)
    return exp


class MetricsTests:
    """Mixed into an E2E TestCase by test_tunnel.py (self.sc, self.S, self.C, self.GO, need())."""

    def _ours(self, side):
        return (self.S if side == "server" else self.C).kind == "ours"

    def _need_any_ours(self):
        if not (self._ours("server") or self._ours("client")):
            self.skipTest("metrics are ours only: neither side is our binary")

    def _wait_metrics(self, port, pred, what, timeout=15):
        last = [None]

        def ok():
            last[0] = metrics_of(port)
            return pred(last[0])
        try:
            H.wait_until(ok, timeout, interval=0.1, what=what)
        except TimeoutError as e:
            self.fail("%s\nlast scrape:\n%s\n%s" % (e, last[0].text if last[0] else None, self.dump()))
        return last[0]

    def test_metrics_count_the_traffic(self):
        self._need_any_ours()
        srv_mport = H.free_port() if self._ours("server") else None
        cl_mport = H.free_port() if self._ours("client") else None
        srv = self.sc.server(extra=["-metrics", "127.0.0.1:%d" % srv_mport] if srv_mport else ())
        backends = [self.sc.echo() for _ in range(3)]
        rports = [H.free_port() for _ in backends]
        fwd = ["%d=127.0.0.1:%d" % (r, b.port) for r, b in zip(rports, backends)]
        cl = self.sc.client(srv, fwd, extra=["-metrics", "127.0.0.1:%d" % cl_mport] if cl_mport else ())
        for r in rports:
            self.sc.wait_tunnel(r, procs=[srv, cl])
        ends = [p for p in (srv_mport, cl_mport) if p]
        # Baseline once the readiness probes are done (no connection open).
        before = {p: self._wait_metrics(p, lambda m: m.get("vtunnel_tunnel_connections_active") == 0,
                                        "no open tunnel connection on :%d" % p) for p in ends}

        # Known traffic: 8 connections over the 3 ports, different sizes, echoed back.
        sizes = [1 << 20, 300000, 12345, 1, 65536, 2 << 20, 777, 100000]
        errors = []

        def one(i, n):
            try:
                data = H.gen_bytes(n, seed="m%d" % i)
                got = H.transfer(rports[i % len(rports)], data, timeout=60)
                if got != data:
                    errors.append("connection %d: echoed bytes differ (%d of %d)" % (i, len(got), n))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("connection %d: %r" % (i, e))
        threads = [threading.Thread(target=one, args=(i, n)) for i, n in enumerate(sizes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertEqual(errors, [], self.dump())
        total = sum(sizes)

        for p in ends:
            b = before[p]

            def moved(m, b=b):
                return (m.get("vtunnel_tunnel_connections_active") == 0 and
                        m.get("vtunnel_tunnel_bytes_total", direction="from_target") -
                        b.get("vtunnel_tunnel_bytes_total", direction="from_target") >= total)
            m = self._wait_metrics(p, moved, "metrics on :%d to count %d bytes back" % (p, total))
            side = "server" if p == srv_mport else "client"
            msg = "%s metrics:\n%s" % (side, m.text)
            self.assertEqual(m.get("vtunnel_tunnel_connections_total") - b.get("vtunnel_tunnel_connections_total"),
                             len(sizes), msg)
            for d in ("to_target", "from_target"):
                delta = m.get("vtunnel_tunnel_bytes_total", direction=d) - b.get("vtunnel_tunnel_bytes_total", direction=d)
                # Exactly what was sent (an echo returns as much); nothing else used the tunnel.
                self.assertEqual(delta, total, "%s bytes %s\n%s" % (side, d, msg))
            self.assertEqual(m.get("vtunnel_sessions_active"), 1, msg)
            self.assertEqual(m.get("vtunnel_sessions_total"), 1, msg)
            self.assertEqual(m.get("vtunnel_listeners"), len(rports), msg)
            self.assertEqual(m.get("vtunnel_channel_open_failures_total"), 0, msg)
            self.assertEqual(m.types["vtunnel_handshake_duration_seconds"], "histogram", msg)
            buckets, hsum, hcount = m.histogram("vtunnel_handshake_duration_seconds")
            self.assertEqual(hcount, 1, msg)
            self.assertTrue(math.isinf(buckets[-1][0]) and buckets[-1][1] == hcount, msg)
            counts = [c for _, c in buckets]
            self.assertEqual(counts, sorted(counts), "buckets must be cumulative\n" + msg)
            self.assertTrue(0 < hsum < 60, msg)
            if side == "server":
                self.assertEqual(m.get("vtunnel_pending_connections"), 0, msg)
                self.assertEqual(m.get("vtunnel_auth_failures_total"), 0, msg)
                self.assertEqual(m.get("vtunnel_proxy_requests_total", outcome="ok"), 0, msg)
            else:
                self.assertEqual(m.get("vtunnel_reconnects_total"), 0, msg)

    def test_metrics_server_counts_auth_failures(self):
        self.need("metrics", "server")
        priv, pub = self.keys()
        mport = H.free_port()
        srv = self.sc.server(client_key=pub, extra=["-metrics", "127.0.0.1:%d" % mport])
        echo = self.sc.echo()
        m0 = metrics_of(mport)
        self.assertEqual(m0.get("vtunnel_auth_failures_total"), 0)
        r = H.free_port()
        # A client without a key asks to authenticate ("none") and is refused.
        bad = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=None)
        m = self._wait_metrics(mport, lambda m: m.get("vtunnel_auth_failures_total") >= 1,
                               "the server to count the keyless client's auth failure")
        self.assertGreaterEqual(m.get("vtunnel_handshake_failures_total"), m.get("vtunnel_auth_failures_total"))
        self.assertEqual(m.get("vtunnel_sessions_total"), 0, m.text)
        bad.stop()
        if self.GO.available():
            # A client with the wrong private key (the Go peer skips its host-key check with -insecure,
            # so it reaches authentication and signs with the wrong key).
            n = m.get("vtunnel_auth_failures_total")
            attacker_priv, _ = self.keys()
            bad2 = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=attacker_priv, impl=self.GO,
                                  extra=["-insecure"])
            self._wait_metrics(mport, lambda m: m.get("vtunnel_auth_failures_total") >= n + 1,
                               "the server to count the wrong-key client's auth failure")
            bad2.stop()
        good = self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=priv)
        self.sc.wait_tunnel(r, procs=[srv, good])
        m = metrics_of(mport)
        self.assertEqual(m.get("vtunnel_sessions_active"), 1, m.text)
        self.assertEqual(m.get("vtunnel_sessions_total"), 1, m.text)

    def test_metrics_client_counts_key_mismatch_and_reconnects(self):
        self.need("metrics", "client")
        priv, pub = self.keys()
        other_priv, _ = self.keys()
        srv = self.sc.server(client_key=pub)
        echo = self.sc.echo()
        mport = H.free_port()
        r = H.free_port()
        self.sc.client(srv, ["%d=127.0.0.1:%d" % (r, echo.port)], key=other_priv,
                       extra=["-metrics", "127.0.0.1:%d" % mport])
        H.wait_port(mport, timeout=10)
        m = self._wait_metrics(mport, lambda m: m.get("vtunnel_reconnects_total") >= 1 and
                               m.get("vtunnel_auth_failures_total") >= 2,
                               "the client to count failed attempts and retry")
        self.assertEqual(m.get("vtunnel_sessions_active"), 0, m.text)
        self.assertEqual(m.get("vtunnel_sessions_total"), 0, m.text)
        self.assertGreaterEqual(m.get("vtunnel_handshake_failures_total"), m.get("vtunnel_auth_failures_total"))

    def test_metrics_on_main_port_by_default_and_off(self):
        self.need("metrics", "server")
        srv = self.sc.server()
        m = metrics_of(srv.port)  # default: the -port listener, like /health
        self.assertEqual(m.get("vtunnel_sessions_active"), 0, m.text)
        self.assertIn("vtunnel_proxy_requests_total", m.types)
        # -metrics off: 404 on the main port; /health unaffected.
        off = self.sc.server(extra=["-metrics", "off"])
        st, _, body = scrape(off.port)
        self.assertEqual(st, 404, body)
        self.assertEqual(scrape(off.port, "/health")[0], 200)
        # -metrics ADDR: served there and no longer on the main port.
        mport = H.free_port()
        sep = self.sc.server(extra=["-metrics", "127.0.0.1:%d" % mport])
        self.assertEqual(scrape(sep.port)[0], 404)
        metrics_of(mport)
        # A WebSocket client may still use /metrics as its URL path on the main port.
        echo = self.sc.echo()
        r = H.free_port()
        cl = self.sc.client("ws://127.0.0.1:%d/metrics" % srv.port, ["%d=127.0.0.1:%d" % (r, echo.port)])
        self.sc.wait_tunnel(r, procs=[srv, cl])
        self.assertEqual(metrics_of(srv.port).get("vtunnel_sessions_active"), 1)

    def test_metrics_flags_in_help(self):
        self._need_any_ours()
        for side in ("server", "client"):
            if not self._ours(side):
                continue
            impl = self.S if side == "server" else self.C
            text = impl.help_text(side)
            self.assertTrue(impl.knows_flag(side, "metrics"), text)
            self.assertIn("127.0.0.1:", text)
        if self._ours("server"):
            self.assertIn("off", self.S.help_text("server"))

    def test_metrics_bad_flag_value_is_a_usage_error(self):
        self.need("metrics", "server")
        rc, out, err = H.run_cmd([self.S.path, "server", "-port", str(H.free_port()), "-metrics", "nowhere"])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("-metrics", err)
