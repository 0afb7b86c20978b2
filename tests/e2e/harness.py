#!/usr/bin/python3
"""End-to-end harness for vtunnel (stdlib only).

Starts real processes (our `vtunnel` or the Go peer `vtpeer`), loopback backends in-process
(threads), and offers bounded waits. Every process is started in its own process group with
PR_SET_PDEATHSIG=SIGKILL, recorded, and stopped (SIGTERM, then SIGKILL after a bound) by the
owning context, at interpreter exit, and if this process dies.

Nothing here parses log text for readiness: a server is ready when GET /health answers, a tunnel
is ready when bytes sent to its port come back from the backend.

Pieces meant for later fault tests (issue 8): `Relay` (a TCP relay between client and server
that can stall, drop or delay), `Proc.pause()/resume()` (SIGSTOP/SIGCONT), `Proc.fd_count()`
and `Proc.rss_kib()`.
"""
import atexit
import ctypes
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
PEERS_DIR = os.path.join(SOURCE_DIR, "tests", "peers")

LOOP = "127.0.0.1"


# ----------------------------------------------------------------------------------------------
# small utilities

class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; return it. Raise TimeoutError after timeout."""
    d = Deadline(timeout)
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # keep polling, remember why
            last_exc = e
        if d.expired():
            raise TimeoutError("timed out after %.1fs waiting for %s%s" % (
                timeout, what, (" (last error: %r)" % last_exc) if last_exc else ""))
        time.sleep(interval)


_reserved = set()
_reserved_lock = threading.Lock()


def free_port():
    """A currently free 127.0.0.1 TCP port, not handed out before by this process."""
    for _ in range(200):
        s = socket.socket()
        try:
            s.bind((LOOP, 0))
            p = s.getsockname()[1]
        finally:
            s.close()
        with _reserved_lock:
            if p not in _reserved:
                _reserved.add(p)
                return p
    raise RuntimeError("no free port")


def port_accepts(port, host=LOOP, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port, timeout=10, host=LOOP):
    return wait_until(lambda: port_accepts(port, host), timeout, what="%s:%d to accept" % (host, port))


def port_bindable(port, host=LOOP):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def port_refuses(port, host=LOOP):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((host, port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def http_get(port, path="/", host=LOOP, timeout=3, headers=None):
    """Minimal HTTP/1.1 GET; returns (status, headers dict lower-case, body bytes)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        h = {"Host": "%s:%d" % (host, port), "Connection": "close"}
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        s.sendall(req.encode())
        buf = recv_all(s, timeout=timeout)
    finally:
        s.close()
    return parse_http_response(buf)


def parse_http_response(buf):
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        raise ValueError("not an HTTP response: %r" % buf[:200])
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def recv_all(sock, timeout=10, limit=None):
    """Read until EOF (or limit bytes). Raises socket.timeout if the deadline passes first."""
    d = Deadline(timeout)
    out = bytearray()
    while limit is None or len(out) < limit:
        sock.settimeout(max(0.01, d.left()))
        if d.expired():
            raise socket.timeout("recv_all: no EOF within %.1fs (got %d bytes)" % (timeout, len(out)))
        chunk = sock.recv(262144 if limit is None else min(262144, limit - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def recv_exact(sock, n, timeout=10):
    d = Deadline(timeout)
    out = bytearray()
    while len(out) < n:
        if d.expired():
            raise socket.timeout("recv_exact: %d of %d bytes within %.1fs" % (len(out), n, timeout))
        sock.settimeout(max(0.01, d.left()))
        chunk = sock.recv(min(262144, n - len(out)))
        if not chunk:
            raise ConnectionError("recv_exact: EOF after %d of %d bytes" % (len(out), n))
        out += chunk
    return bytes(out)


def closed_promptly(sock, timeout):
    """True if the peer closes (EOF or reset) within timeout without sending data.
    Returns (closed, data_received)."""
    d = Deadline(timeout)
    data = bytearray()
    while not d.expired():
        sock.settimeout(max(0.01, d.left()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return True, bytes(data)
        if not chunk:
            return True, bytes(data)
        data += chunk
    return False, bytes(data)


def gen_bytes(n, seed="vt"):
    """Deterministic pseudo-random bytes (SHA-256 counter mode, 8 KiB blocks)."""
    out = bytearray()
    ctr = 0
    while len(out) < n:
        blk = hashlib.sha256(("%s:%d" % (seed, ctr)).encode()).digest() * 256
        out += blk[: n - len(out)]
        ctr += 1
    return bytes(out)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def transfer(port, data, timeout=60, host=LOOP, half_close=True, chunk=262144):
    """Send data to port (concurrently reading), half-close, read until EOF.
    Returns the bytes received."""
    s = socket.create_connection((host, port), timeout=timeout)
    got = hashlib.sha256()
    recv = bytearray()
    err = []

    def reader():
        try:
            s.settimeout(timeout)
            while True:
                d = s.recv(262144)
                if not d:
                    break
                recv.extend(d)
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        mv = memoryview(data)
        for i in range(0, len(mv), chunk):
            s.sendall(mv[i:i + chunk])
        if half_close:
            s.shutdown(socket.SHUT_WR)
    except OSError as e:
        err.append(e)
    th.join(timeout)
    alive = th.is_alive()
    s.close()
    if alive:
        raise TimeoutError("transfer: no EOF within %ss (sent %d, received %d)" % (timeout, len(data), len(recv)))
    if err:
        raise ConnectionError("transfer: %r (sent %d, received %d)" % (err[0], len(data), len(recv)))
    return bytes(recv)


def echo_roundtrip(port, payload=b"ping", timeout=3, host=LOOP):
    """Connect, send payload, read len(payload) bytes back (echo backend). Returns the bytes."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(payload)
        return recv_exact(s, len(payload), timeout=timeout)


def tunnel_works(port, timeout=1.5, payload=None):
    """One attempt: True iff an echo round trip through port succeeds within timeout."""
    payload = payload or os.urandom(16).hex().encode()
    try:
        return echo_roundtrip(port, payload, timeout=timeout) == payload
    except OSError:
        return False


def wait_tunnel(port, timeout=15, attempt_timeout=1.5):
    """Wait until port relays an echo round trip (the forward must point to an echo backend)."""
    return wait_until(lambda: tunnel_works(port, attempt_timeout), timeout, interval=0.1,
                      what="tunnel port %d to relay data" % port)


# ----------------------------------------------------------------------------------------------
# processes

_libc = None


def _pdeathsig():
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


_all_procs = []
_all_lock = threading.Lock()


class Proc:
    """A started process. Output goes to files in logdir (never a pipe that could fill)."""

    def __init__(self, argv, name, logdir, env=None):
        self.argv = [str(a) for a in argv]
        self.name = name
        self.out_path = os.path.join(logdir, "%s.out" % name)
        self.err_path = os.path.join(logdir, "%s.err" % name)
        full_env = dict(os.environ)
        for k in ("VTUNNEL_KEY", "VTUNNEL_CLIENT_KEY", "VTUNNEL_HOST_KEY", "VTUNNEL_SERVER_KEY"):
            full_env.pop(k, None)  # never inherit keys by accident
        if env:
            for k, v in env.items():
                if v is None:
                    full_env.pop(k, None)
                else:
                    full_env[k] = v
        self._out = open(self.out_path, "ab")
        self._err = open(self.err_path, "ab")
        hdr = ("### %s: %s\n" % (time.strftime("%H:%M:%S"), " ".join(self.argv))).encode()
        self._err.write(hdr)
        self._err.flush()
        self.started = time.monotonic()
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                      stderr=self._err, env=full_env, start_new_session=True,
                                      preexec_fn=_pdeathsig)
        self.pid = self.popen.pid
        with _all_lock:
            _all_procs.append(self)

    def alive(self):
        return self.popen.poll() is None

    @property
    def returncode(self):
        return self.popen.poll()

    def wait(self, timeout):
        """Return the exit status, or None if still running after timeout."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def pause(self):
        self.send_signal(signal.SIGSTOP)

    def resume(self):
        self.send_signal(signal.SIGCONT)

    def kill(self):
        """SIGKILL the whole process group we created."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.popen.wait(timeout=10)
        self._close_files()
        return self.popen.returncode

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        """Send sig (resuming a paused process first), wait up to grace, then SIGKILL.
        Returns (exit status, seconds taken, killed)."""
        t0 = time.monotonic()
        killed = False
        if self.alive():
            self.send_signal(signal.SIGCONT)
            self.send_signal(sig)
            if self.wait(grace) is None:
                killed = True
                self.kill()
        rc = self.popen.wait(timeout=10)
        self._close_files()
        return rc, time.monotonic() - t0, killed

    def _close_files(self):
        for f in (self._out, self._err):
            try:
                f.close()
            except Exception:
                pass

    def output(self):
        out = b""
        for p in (self.out_path, self.err_path):
            try:
                with open(p, "rb") as f:
                    out += f.read()
            except OSError:
                pass
        return out.decode("utf-8", "replace")

    def stderr_text(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def fd_count(self):
        try:
            return len(os.listdir("/proc/%d/fd" % self.pid))
        except OSError:
            return None

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        return int(ln.split()[1])
        except OSError:
            return None

    def tail(self, n=40):
        lines = self.output().splitlines()
        return "\n".join(lines[-n:])


def _cleanup_all():
    with _all_lock:
        procs = list(_all_procs)
    for p in procs:
        try:
            if p.alive():
                p.kill()
        except Exception:
            pass


atexit.register(_cleanup_all)


def run_cmd(argv, timeout=10, env=None):
    """Run to completion (bounded). Returns (rc, stdout, stderr)."""
    full_env = dict(os.environ)
    for k in ("VTUNNEL_KEY", "VTUNNEL_CLIENT_KEY"):
        full_env.pop(k, None)
    if env:
        full_env.update(env)
    p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=full_env, start_new_session=True,
                         preexec_fn=_pdeathsig)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
        return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# ----------------------------------------------------------------------------------------------
# implementations (our vtunnel, the Go peer)

class Impl:
    """One implementation of the vtunnel CLI. kind: 'ours' or 'go'."""

    # Behaviour only our implementation promises (issue 5); tests needing them skip on 'go'.
    OURS_ONLY = {
        "dead-peer-detection",     # keepalive with a timeout detects a half-open peer
        "forward-retry",           # a refused listen is retried, other forwards keep working
        "handoff-after-relisten",  # waiting connections handed to a new session only after it re-listens
        "host-rewrite",            # tls:// forwards rewrite the HTTP Host header
        "clean-signal-exit",       # SIGTERM/SIGINT -> exit 0
        "log-level",
        "metrics",                 # -metrics / GET /metrics (Prometheus)
        "proxy",                   # the Go peer has no -proxy (the original's proxy is not mirrored)
    }

    def __init__(self, kind, path):
        self.kind = kind
        self.path = path
        self._help = {}

    def __repr__(self):
        return "%s(%s)" % (self.kind, self.path)

    def available(self):
        return bool(self.path) and os.path.isfile(self.path) and os.access(self.path, os.X_OK)

    def promises(self, feature):
        return self.kind == "ours" or feature not in self.OURS_ONLY

    def help_text(self, sub):
        if sub not in self._help:
            rc, out, err = run_cmd([self.path, sub, "-h"], timeout=10)
            self._help[sub] = (out or "") + (err or "")
        return self._help[sub]

    def knows_flag(self, sub, flag):
        return re.search(r"(^|\s)--?%s\b" % re.escape(flag), self.help_text(sub), re.M) is not None

    def keygen_cmd(self):
        return [self.path, "keygen"]

    def server_cmd(self, port, client_key=None, keepalive=None, extra=()):
        argv = [self.path, "server", "-port", str(port)]
        if self.kind == "go" or self.knows_flag("server", "bind"):
            argv += ["-bind", LOOP]
        if client_key:
            argv += ["-client-key", client_key]
        if keepalive is not None:
            argv += ["-keepalive", keepalive]
        return argv + list(extra)

    def client_cmd(self, url, forwards, key=None, keepalive=None, backoff=("100ms", "500ms"), extra=()):
        argv = [self.path, "client", "-server", url]
        if key:
            argv += ["-key", key]
        for f in forwards:
            argv += ["-forward", f]
        if keepalive is not None:
            argv += ["-keepalive=%s" % keepalive] if keepalive.startswith("-") else ["-keepalive", keepalive]
        if backoff:
            argv += ["-backoff-min", backoff[0], "-backoff-max", backoff[1]]
        return argv + list(extra)


def keygen(impl):
    """Returns (priv, pub) from `impl keygen`."""
    rc, out, err = run_cmd(impl.keygen_cmd(), timeout=10)
    m1 = re.search(r"^Private key \(client\): (vt-priv-\S+)$", out, re.M)
    m2 = re.search(r"^Public key \(server\):  (vt-pub-\S+)$", out, re.M)
    if rc != 0 or not m1 or not m2:
        raise RuntimeError("keygen failed rc=%r out=%r err=%r" % (rc, out, err))
    return m1.group(1), m2.group(1)


# ----------------------------------------------------------------------------------------------
# in-process backends

class TcpServer:
    """Threaded TCP server on 127.0.0.1. handler(conn, server) runs per connection in a thread.
    Counts accepted connections; records accept times."""

    def __init__(self, handler, port=0, host=LOOP, backlog=512):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.accept_times = []
        self.lock = threading.Lock()
        self.conns = []
        self.data = {}  # free-form per-server state for handlers
        self._closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self._closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.accept_times.append(time.monotonic())
                self.conns.append(c)
                n = self.accepted
            threading.Thread(target=self._run, args=(c, n), daemon=True).start()

    def _run(self, c, n):
        try:
            c.settimeout(120)
            self.handler(c, self, n)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def _echo_handler(c, srv, n):
    while True:
        d = c.recv(262144)
        if not d:
            break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR)


def echo_server(port=0):
    """Echoes until the peer half-closes, then half-closes back."""
    return TcpServer(_echo_handler, port)


def tagged_echo_server(tag, port=0):
    """Sends b'<tag>\\n' first, then echoes."""
    def h(c, srv, n):
        c.sendall(tag.encode() + b"\n")
        _echo_handler(c, srv, n)
    return TcpServer(h, port)


def hash_reply_server(port=0):
    """Reads until EOF, then replies b'<n> <sha256>' and closes (half-close test)."""
    def h(c, srv, n):
        hs = hashlib.sha256()
        total = 0
        while True:
            d = c.recv(262144)
            if not d:
                break
            hs.update(d)
            total += len(d)
        c.sendall(("%d %s" % (total, hs.hexdigest())).encode())
        c.shutdown(socket.SHUT_WR)
    return TcpServer(h, port)


def banner_then_read_server(banner, port=0):
    """Sends banner and half-closes its write side at once, then reads everything until EOF
    and records (bytes, sha256) in srv.data['received'] (reverse half-close test)."""
    def h(c, srv, n):
        c.sendall(banner)
        c.shutdown(socket.SHUT_WR)
        hs = hashlib.sha256()
        total = 0
        while True:
            d = c.recv(262144)
            if not d:
                break
            hs.update(d)
            total += len(d)
        with srv.lock:
            srv.data.setdefault("received", []).append((total, hs.hexdigest()))
    return TcpServer(h, port)


def accept_and_close_server(port):
    """Accepts and closes at once; accept_times count connection attempts (backoff test).
    Retries the bind for up to 3 s (the port may have just been freed by a killed process)."""
    def h(c, srv, n):
        pass
    wait_until(lambda: port_bindable(port), 3, interval=0.01, what="port %d to be free" % port)
    return TcpServer(h, port)


class HttpBackend:
    """Tiny HTTP/1.1 server (one request per connection), optionally TLS.
    Records each request's Host header in self.hosts."""

    def __init__(self, body=b"hello from backend\n", ssl_ctx=None, port=0, host=LOOP):
        self.body = body
        self.ssl_ctx = ssl_ctx
        self.hosts = []
        self.requests = 0
        self.tls_errors = []
        self.srv = TcpServer(self._handle, port, host=host)
        self.port = self.srv.port

    def _handle(self, c, srv, n):
        if self.ssl_ctx is not None:
            try:
                c = self.ssl_ctx.wrap_socket(c, server_side=True)
            except (ssl.SSLError, OSError) as e:
                with srv.lock:
                    self.tls_errors.append(repr(e))
                return
        buf = b""
        while b"\r\n\r\n" not in buf and len(buf) < 65536:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        host = None
        for ln in head[1:]:
            k, _, v = ln.partition(":")
            if k.strip().lower() == "host":
                host = v.strip()
        with srv.lock:
            self.hosts.append(host)
            self.requests += 1
        resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                b"Connection: close\r\nX-Seen-Host: %s\r\n\r\n" % (len(self.body), (host or "").encode())) + self.body
        c.sendall(resp)
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.srv.close()


class TestCA:
    """A throwaway CA made with openssl, and certificates signed by it (or self-signed)."""

    def __init__(self, dirpath):
        self.dir = dirpath
        os.makedirs(dirpath, exist_ok=True)
        self.ca_key = os.path.join(dirpath, "ca.key")
        self.ca_cert = os.path.join(dirpath, "ca.pem")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2",
                      "-subj", "/CN=vtunnel e2e test CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _openssl(self, *args):
        rc, out, err = run_cmd(["openssl"] + list(args), timeout=30)
        if rc != 0:
            raise RuntimeError("openssl %s failed: %s" % (args[0], err))

    def issue(self, name, dns_names, self_signed=False):
        """Returns (cert_path, key_path) for a server certificate with the given DNS SANs."""
        key = os.path.join(self.dir, name + ".key")
        cert = os.path.join(self.dir, name + ".pem")
        san = ",".join(("IP:%s" if re.match(r"^[0-9.]+$|:", d) else "DNS:%s") % d for d in dns_names)
        if self_signed:
            self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=%s" % dns_names[0],
                          "-addext", "subjectAltName=%s" % san)
            return cert, key
        csr = os.path.join(self.dir, name + ".csr")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n" % san)
        self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", key, "-out", csr, "-subj", "/CN=%s" % dns_names[0])
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key

    @staticmethod
    def server_context(cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx


# ----------------------------------------------------------------------------------------------
# fault relay (client <-> relay <-> server)

class Relay:
    """TCP relay 127.0.0.1:port -> 127.0.0.1:target for fault tests: stall() makes every current
    connection half-open (both sockets stay open, nothing is forwarded, no EOF), drop() closes them,
    delay adds seconds before each forwarded chunk. Counts connections and upstream closes."""

    def __init__(self, target_port, port=0):
        self.target = target_port
        self.delay = 0.0
        self.lock = threading.Lock()
        self.pairs = []
        self.connections = 0
        self.conn_times = []
        self.upstream_closed = []  # times the server side closed a relayed connection
        self.srv = TcpServer(self._handle, port)
        self.port = self.srv.port

    def _pump(self, src, dst, from_upstream, pair):
        """Copy src -> dst. While the pair is stalled, bytes are read and discarded and EOF is not
        passed on (the far end sees a half-open path: no data, no close)."""
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if pair["stalled"]:
                    continue
                if self.delay:
                    time.sleep(self.delay)
                dst.sendall(d)
        except OSError:
            pass
        if from_upstream:
            with self.lock:
                self.upstream_closed.append(time.monotonic())
        if not pair["stalled"]:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        else:
            while not pair["dead"] and not self.srv._closed:
                time.sleep(0.05)

    def _handle(self, c, srv, n):
        try:
            up = socket.create_connection((LOOP, self.target), timeout=5)
        except OSError:
            return
        up.settimeout(None)
        c.settimeout(None)
        pair = {"c": c, "up": up, "dead": False, "stalled": False}
        with self.lock:
            self.connections += 1
            self.conn_times.append(time.monotonic())
            self.pairs.append(pair)
        t = threading.Thread(target=self._pump, args=(up, c, True, pair), daemon=True)
        t.start()
        self._pump(c, up, False, pair)
        t.join()
        for s in (c, up):
            try:
                s.close()
            except OSError:
                pass

    def stall(self):
        """Stall every current connection for good (they stay open, forward nothing);
        new connections relay normally."""
        with self.lock:
            for p in self.pairs:
                p["stalled"] = True

    def drop(self):
        with self.lock:
            pairs = list(self.pairs)
        for p in pairs:
            p["dead"] = True
            for s in (p["c"], p["up"]):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.drop()
        self.srv.close()


# ----------------------------------------------------------------------------------------------
# sanitizer reports (ASan/LSan/UBSan builds pass ASAN_OPTIONS / UBSAN_OPTIONS through the
# environment, which Proc inherits)

_SANITIZER_RE = re.compile(r"^==\d+==ERROR: (LeakSanitizer|AddressSanitizer)\b.*$"
                           r"|^\S+:\d+:\d+: runtime error: .*$"
                           r"|^SUMMARY: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)\b.*$",
                           re.MULTILINE)


def sanitizer_reports(procs, context=30):
    """For each process whose stderr holds a sanitizer report: its name and the report's start."""
    out = []
    for p in procs:
        text = p.stderr_text()
        m = _SANITIZER_RE.search(text)
        if m:
            lines = text[m.start():].splitlines()[:context]
            out.append("----- %s (pid %d, rc=%r): %s\n%s" % (p.name, p.pid, p.returncode, " ".join(p.argv),
                                                           "\n".join(lines)))
    return out


# ----------------------------------------------------------------------------------------------
# a scenario: one test's processes, backends and logs

class Scenario:
    """Owns everything a test starts; close() stops it all (also on failure)."""

    def __init__(self, server_impl, client_impl, name="scenario", keep_logs=False):
        self.server_impl = server_impl
        self.client_impl = client_impl
        self.logdir = tempfile.mkdtemp(prefix="vt-e2e-%s-" % re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60])
        self.keep_logs = keep_logs
        self.procs = []
        self.closers = []
        self._n = {}

    def _name(self, base):
        self._n[base] = self._n.get(base, 0) + 1
        return "%s%d" % (base, self._n[base])

    def start(self, argv, name, env=None):
        p = Proc(argv, self._name(name), self.logdir, env=env)
        self.procs.append(p)
        return p

    def add(self, obj):
        """Register something with close() to be closed at the end. Returns obj."""
        self.closers.append(obj)
        return obj

    # -- servers / clients

    def server(self, port=None, client_key=None, keepalive=None, impl=None, extra=(), env=None, wait=True):
        impl = impl or self.server_impl
        if port:
            # restarting on a known port: after SIGKILL the kernel may hold a listening socket a few
            # ms longer (io_uring tears down asynchronously); start once the port can be bound
            wait_until(lambda: port_bindable(port), 3, interval=0.01, what="port %d to be free" % port)
        port = port or free_port()
        p = self.start(impl.server_cmd(port, client_key=client_key, keepalive=keepalive, extra=extra),
                       "server-%s-" % impl.kind, env=env)
        p.port = p.ws_port = port
        p.url = "ws://%s:%d/" % (LOOP, port)
        if wait:
            self.wait_server(p)
        return p

    def wait_server(self, p, timeout=15):
        def ready():
            if not p.alive():
                raise AssertionError("server exited early rc=%r:\n%s" % (p.returncode, p.tail()))
            st, _, body = http_get(p.port, "/health", timeout=1)
            return st == 200
        try:
            wait_until(ready, timeout, interval=0.05, what="server /health on port %d" % p.port)
        except TimeoutError as e:
            raise AssertionError("%s\n%s" % (e, p.tail()))

    def client(self, url, forwards, key=None, keepalive=None, impl=None, backoff=("100ms", "500ms"),
               extra=(), env=None):
        impl = impl or self.client_impl
        if hasattr(url, "url"):
            url = url.url
        return self.start(impl.client_cmd(url, forwards, key=key, keepalive=keepalive, backoff=backoff,
                                          extra=extra), "client-%s-" % impl.kind, env=env)

    def echo(self, port=0):
        return self.add(echo_server(port))

    def tunnel(self, key_pair=None, forwards_to=None, n_ports=1, keepalive=None, backoff=("100ms", "500ms")):
        """Convenience: server + client with forwards to the given backends (default: n_ports fresh
        echo backends) plus one last forward to a readiness echo backend; waits until that one relays
        (the listens are sent in order). Returns (server, client, [tunnel ports], [backends]);
        the readiness forward is server.ready_port."""
        priv, pub = key_pair if key_pair else (None, None)
        srv = self.server(client_key=pub, keepalive=keepalive)
        backends = forwards_to or [self.echo() for _ in range(n_ports)]
        ports = [free_port() for _ in backends]
        ready_be = self.echo()
        srv.ready_port = free_port()
        fwd = ["%d=127.0.0.1:%d" % (r, b.port) for r, b in zip(ports, backends)]
        fwd.append("%d=127.0.0.1:%d" % (srv.ready_port, ready_be.port))
        cl = self.client(srv, fwd, key=priv, keepalive=keepalive, backoff=backoff)
        self.wait_tunnel(srv.ready_port, procs=[srv, cl])
        for r in ports:  # a client may send its listens concurrently: wait for each listener
            wait_until(lambda: port_accepts(r), 10, what="tunnel listener 127.0.0.1:%d" % r)
        return srv, cl, ports, backends

    def wait_tunnel(self, port, timeout=15, procs=()):
        def ok():
            for p in procs:
                if not p.alive():
                    raise AssertionError("%s exited rc=%r:\n%s" % (p.name, p.returncode, p.tail()))
            return tunnel_works(port, 1.5)
        try:
            wait_until(ok, timeout, interval=0.1, what="tunnel port %d to relay data" % port)
        except TimeoutError as e:
            raise AssertionError("%s\n%s" % (e, self.log_tails(12)))

    def log_tails(self, n=40):
        parts = []
        for p in self.procs:
            parts.append("----- %s (pid %d, rc=%r): %s\n%s" % (p.name, p.pid, p.returncode,
                                                               " ".join(p.argv), p.tail(n)))
        return "\n".join(parts)

    def close(self):
        """Stops everything (SIGTERM: our processes shut down gracefully and exit, which is when
        LeakSanitizer runs in a sanitizer build), then fails if any process's stderr holds a
        sanitizer report (leak, memory error, undefined behaviour)."""
        for p in reversed(self.procs):
            try:
                p.stop(grace=3)
            except Exception:
                pass
        for c in reversed(self.closers):
            try:
                c.close()
            except Exception:
                pass
        reports = sanitizer_reports(p for p in self.procs if not getattr(p, "expect_sanitizer_report", False))
        if not self.keep_logs and not reports:
            shutil.rmtree(self.logdir, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer report(s) (logs kept in %s):\n%s" % (self.logdir, "\n".join(reports)))

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def find_impls(server_kind, client_kind, vtunnel_bin=None, vtpeer_bin=None):
    """Impl objects for the chosen kinds, with paths from args or VTUNNEL_BIN / VTPEER_BIN."""
    vt = vtunnel_bin or os.environ.get("VTUNNEL_BIN", "")
    gp = vtpeer_bin or os.environ.get("VTPEER_BIN", "")
    paths = {"ours": vt, "go": gp}
    return Impl(server_kind, paths[server_kind]), Impl(client_kind, paths[client_kind]), Impl("go", gp)
