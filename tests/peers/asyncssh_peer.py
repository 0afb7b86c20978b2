#!/usr/bin/python3
"""Second, independent SSH implementation of the vtunnel semantics: asyncssh 2.10 (Debian 12),
plain TCP (no WebSocket). Run with /usr/bin/python3. Events on stdout, same names as vtpeer.

  asyncssh_peer.py server --port P [--client-key vt-pub-...] [--keepalive S] [--wait S]
                          [--hostkey-type ecdsa|ed25519] [--kex A,B] [--cipher A,B] [--mac A,B]
                          [--rekey-bytes N]
      keyed: derived ed25519 host key, publickey auth for exactly that key;
      keyless: ephemeral host key + 'none' auth. Global requests: listen (JSON) -> binds
      127.0.0.1:port (reused if already bound), failure carries the error text after the message
      type; ping -> success + raw 'pong'; unknown -> failure. Every client-opened channel is
      refused with reason 1. Each accepted TCP connection -> 'tunnel' channel {"port":N}.
  asyncssh_peer.py client --addr H:P [--key vt-priv-...] [--forward R=host:port]... [--user U]
                          [--ping N] [--request NAME[=payload]]... [--open TYPE]
                          [--insecure | --known-host 'ssh-ed25519 AAAA...'] [--keepalive S]
                          [--once] [--backoff-min S] [--backoff-max S]
                          [--kex ..] [--cipher ..] [--mac ..] [--hostkey-alg ..] [--rekey-bytes N]
      With forwards: sends listen for each, serves 'tunnel' channels (unknown port -> reason 2
      'no forward for port', bad JSON -> 2, other channel types -> 3), answers server pings with
      'pong', reconnects with backoff unless --once. Without forwards: one-shot (ping/request/open).

asyncssh has no public API for custom global requests, reply data or custom channel types; this
peer uses its internals (documented in README.md): handler lookup by method name
`_process_<name>_global_request` / `_process_<type>_open`, `_make_global_request()` (returns the
raw reply packet), and the global-request reply queue `_global_request_queue`.
"""
import argparse
import asyncio
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")  # cryptography deprecation noise from asyncssh imports

import asyncssh  # noqa: E402
from asyncssh.connection import SSHClientConnection, SSHServerConnection  # noqa: E402
from asyncssh.constants import (  # noqa: E402
    MSG_REQUEST_FAILURE,
    MSG_REQUEST_SUCCESS,
    OPEN_ADMINISTRATIVELY_PROHIBITED,
    OPEN_CONNECT_FAILED,
    OPEN_UNKNOWN_CHANNEL_TYPE,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vtkey  # noqa: E402


def ev(s):
    print(s, flush=True)


def q(b):
    """quote bytes like Go's %q does for ASCII: "pong" """
    return json.dumps(b.decode("latin-1"))


def split(s):
    return [x.strip() for x in s.split(",") if x.strip()] if s else ()


def algo_opts(a):
    o = {}
    if a.kex:
        o["kex_algs"] = split(a.kex)
    if a.cipher:
        o["encryption_algs"] = split(a.cipher)
    if a.mac:
        o["mac_algs"] = split(a.mac)
    if a.rekey_bytes:
        o["rekey_bytes"] = a.rekey_bytes
    return o


# ---------------------------------------------------------------- internals helpers

def reply(conn, ok, data=b""):
    """Answer the global request at the head of asyncssh's queue with raw data after the
    message type (what _report_global_response does, but also for failures)."""
    _, _, want_reply = conn._global_request_queue.pop(0)
    if want_reply:
        conn.send_packet(MSG_REQUEST_SUCCESS if ok else MSG_REQUEST_FAILURE, data)
    if conn._global_request_queue:
        conn._service_next_global_request()


async def global_request(conn, name, payload=b""):
    """Send a global request with want-reply; return (ok, raw reply data)."""
    args = (payload,) if payload else ()
    pkttype, packet = await conn._make_global_request(name.encode(), *args)
    return pkttype == MSG_REQUEST_SUCCESS, packet.get_remaining_payload()


def reject_open(conn, packet, code, reason):
    packet.get_string()  # channel type
    send_chan = packet.get_uint32()
    conn.send_channel_open_failure(send_chan, code, reason, "en")


class Bridge(asyncssh.SSHTCPSession):
    """Copies between an SSH channel and a local asyncio stream, with half-close both ways."""

    def __init__(self, reader, writer, label):
        self.reader, self.writer, self.label = reader, writer, label
        self.chan = None
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.got_eof = self.sent_eof = False
        self.to_local = self.from_local = 0

    def connection_made(self, chan):
        self.chan = chan
        asyncio.get_event_loop().create_task(self.pump())

    async def pump(self):
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                await self.can_write.wait()
                self.from_local += len(data)
                self.chan.write(data)
            self.chan.write_eof()
        except Exception:
            pass
        self.sent_eof = True
        self.maybe_close()

    def data_received(self, data, datatype):
        self.to_local += len(data)
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > (1 << 20):
            self.chan.pause_reading()
            asyncio.get_event_loop().create_task(self._drain())

    async def _drain(self):
        try:
            await self.writer.drain()
        finally:
            self.chan.resume_reading()

    def eof_received(self):
        self.got_eof = True
        try:
            self.writer.write_eof()
        except OSError:
            pass
        self.maybe_close()
        return True

    def pause_writing(self):
        self.can_write.clear()

    def resume_writing(self):
        self.can_write.set()

    def maybe_close(self):
        if self.got_eof and self.sent_eof and self.chan:
            self.chan.close()

    def connection_lost(self, exc):
        self.writer.close()
        self.can_write.set()
        ev("TUNNEL_CLOSED %s to_local=%d from_local=%d" % (self.label, self.to_local, self.from_local))


# ---------------------------------------------------------------- server

class ServerState:
    def __init__(self, wait):
        self.wait = wait
        self.active = None
        self.active_ev = asyncio.Event()
        self.listeners = {}
        self.sessions = 0


STATE = None


def srv_listen(self, packet):
    payload = packet.get_remaining_payload()

    async def go():
        try:
            lr = json.loads(payload)
            port = int(lr["port"])
        except Exception as e:
            ev("LISTEN_FAILED payload=%r err=%r" % (payload, str(e)))
            return reply(self, False, ("invalid listen request: %s" % e).encode())
        if not 1 <= port <= 65535:
            ev("LISTEN_FAILED port=%d err='invalid port'" % port)
            return reply(self, False, b"invalid port %d" % port)
        la = lr.get("local_addr") or ""
        if port in STATE.listeners:
            ev("LISTEN_OK port=%d reused=true" % port)
            return reply(self, True)
        try:
            srv = await asyncio.start_server(lambda r, w: tunnel(r, w, port), "127.0.0.1", port)
        except OSError as e:
            ev("LISTEN_FAILED port=%d err=%r" % (port, str(e)))
            return reply(self, False, str(e).encode())
        STATE.listeners[port] = srv
        ev("LISTEN_OK port=%d reused=false local_addr=%r" % (port, la))
        reply(self, True)

    asyncio.get_event_loop().create_task(go())


def srv_ping(self, packet):
    ev("REQUEST ping")
    reply(self, True, b"pong")


def srv_channel_open(self, _pkttype, _pktid, packet):
    ct = packet.get_string().decode("ascii", "replace")
    send_chan = packet.get_uint32()
    ev("CHANNEL_REJECT type=%s" % ct)
    self.send_channel_open_failure(send_chan, OPEN_ADMINISTRATIVELY_PROHIBITED, "channels not allowed", "en")


async def tunnel(reader, writer, port):
    deadline = time.monotonic() + STATE.wait
    while STATE.active is None:
        rem = deadline - time.monotonic()
        if rem <= 0:
            ev("TUNNEL_NO_CLIENT port=%d" % port)
            writer.close()
            return
        STATE.active_ev.clear()
        try:
            await asyncio.wait_for(STATE.active_ev.wait(), rem)
        except asyncio.TimeoutError:
            pass
    conn = STATE.active
    chan = conn.create_tcp_channel()
    try:
        await chan._open_forward(lambda: Bridge(reader, writer, "port=%d" % port), b"tunnel",
                                 json.dumps({"port": port}, separators=(",", ":")).encode())
    except asyncssh.ChannelOpenError as e:
        ev("TUNNEL_OPEN_FAILED port=%d reason=%d message=%r" % (port, e.code, e.reason))
        writer.close()
        return
    ev("TUNNEL_OPEN port=%d" % port)


class VTServer(asyncssh.SSHServer):
    def __init__(self, want_key):
        self.want = want_key
        self.conn = None

    def connection_made(self, conn):
        self.conn = conn

    def begin_auth(self, username):
        if self.want is None:
            ev("AUTH_OK user=%s method=none" % username)
            return False
        return True

    def public_key_auth_supported(self):
        return self.want is not None

    def validate_public_key(self, username, key):
        ok = key.public_data == self.want
        ev(("AUTH_OK user=%s method=publickey" if ok else "AUTH_REJECT user=%s") % username)
        return ok

    def auth_completed(self):
        STATE.sessions += 1
        self.id = STATE.sessions
        ev("SESSION_START id=%d client=%r" % (self.id, self.conn.get_extra_info("client_version")))
        STATE.active = self.conn
        STATE.active_ev.set()
        if KEEPALIVE > 0:
            self.ka = self.conn.create_task(self.keepalive())

    async def keepalive(self):
        while True:
            await asyncio.sleep(KEEPALIVE)
            try:
                ok, data = await asyncio.wait_for(global_request(self.conn, "ping"), KEEPALIVE)
            except Exception as e:
                ev("KEEPALIVE_FAILED err=%r" % str(e))
                self.conn.close()
                return
            ev("KEEPALIVE_REPLY ok=%s data=%s" % (str(ok).lower(), q(data)))

    def connection_lost(self, exc):
        if getattr(self, "ka", None):
            self.ka.cancel()
        if STATE.active is self.conn:
            STATE.active = None
        ev("SESSION_END id=%s err=%r" % (getattr(self, "id", 0), str(exc) if exc else ""))


KEEPALIVE = 0


async def run_server(a):
    global STATE, KEEPALIVE
    STATE = ServerState(a.wait)
    KEEPALIVE = a.keepalive
    SSHServerConnection._process_listen_global_request = srv_listen
    SSHServerConnection._process_ping_global_request = srv_ping
    SSHServerConnection._packet_handlers = dict(SSHServerConnection._packet_handlers)
    from asyncssh.constants import MSG_CHANNEL_OPEN
    SSHServerConnection._packet_handlers[MSG_CHANNEL_OPEN] = srv_channel_open

    if a.client_key:
        pub = vtkey.parse(a.client_key, vtkey.PUB)
        want = vtkey.wire(pub)
        hk = asyncssh.import_private_key(vtkey.openssh_priv(vtkey.derived_seed(pub)))
    else:
        print("asyncssh_peer: WARNING: no client key: none auth, ephemeral host key", file=sys.stderr)
        want = None
        alg = {"ecdsa": "ecdsa-sha2-nistp256", "ed25519": "ssh-ed25519"}.get(a.hostkey_type, a.hostkey_type)
        hk = asyncssh.generate_private_key(alg)
    ev("HOSTKEY %s" % hk.export_public_key("openssh").decode().strip())
    srv = await asyncssh.create_server(lambda: VTServer(want), "127.0.0.1", a.port, server_host_keys=[hk],
                                       keepalive_interval=0, login_timeout=30, **algo_opts(a))
    ev("LISTENING %d" % srv.sockets[0].getsockname()[1])
    await asyncio.Future()


# ---------------------------------------------------------------- client

FORWARDS = {}


def cli_ping(self, packet):
    ev("SERVER_PING")
    reply(self, True, b"pong")


def cli_tunnel_open(self, packet):
    raw = packet.get_remaining_payload()
    try:
        port = int(json.loads(raw)["port"])
    except Exception:
        ev("CHANNEL_REJECT type=tunnel reason=bad-json")
        raise asyncssh.ChannelOpenError(OPEN_CONNECT_FAILED, "invalid tunnel data")
    local = FORWARDS.get(port)
    if local is None:
        ev("CHANNEL_REJECT type=tunnel port=%d reason=no-forward" % port)
        raise asyncssh.ChannelOpenError(OPEN_CONNECT_FAILED, "no forward for port")
    chan = self.create_tcp_channel()

    async def dial():
        import ssl as _ssl
        target, sslctx = local, None
        if target.startswith("tls://"):
            target = target[6:]
            sslctx = _ssl.create_default_context()
        host, _, p = target.rpartition(":")
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(p), ssl=sslctx,
                                        server_hostname=host.strip("[]") if sslctx else None), 10)
        except Exception as e:
            ev("CHANNEL_REJECT type=tunnel port=%d reason=dial err=%r" % (port, str(e)))
            raise asyncssh.ChannelOpenError(OPEN_CONNECT_FAILED, str(e))
        ev("TUNNEL_OPEN port=%d local=%s" % (port, local))
        return Bridge(r, w, "port=%d" % port)

    return chan, dial()


_orig_client_open = SSHClientConnection._process_channel_open


def cli_channel_open(self, pkttype, pktid, packet):
    # only 'tunnel' is accepted; everything else -> unknown channel type (3)
    save = packet._idx
    ct = packet.get_string()
    if ct == b"tunnel":
        packet._idx = save
        return _orig_client_open(self, pkttype, pktid, packet)
    send_chan = packet.get_uint32()
    ev("CHANNEL_REJECT type=%s reason=unknown-type" % ct.decode("ascii", "replace"))
    self.send_channel_open_failure(send_chan, OPEN_UNKNOWN_CHANNEL_TYPE, "unknown channel type", "en")


class VTClient(asyncssh.SSHClient):
    pass


WANT_HOST = None  # asyncssh SSHKey (public) or None = accept any host key


async def client_session(a, keys):
    host, _, port = a.addr.rpartition(":")
    try:
        conn, _ = await asyncio.wait_for(asyncssh.create_connection(
            VTClient, host.strip("[]"), int(port), username=a.user, client_keys=keys, agent_path=None,
            known_hosts=([WANT_HOST], [], []) if WANT_HOST is not None else None, preferred_auth="publickey,none" if keys else "none",
            keepalive_interval=0, **algo_opts(a),
            **({"server_host_key_algs": split(a.hostkey_alg)} if a.hostkey_alg else {})), a.timeout)
    except asyncssh.HostKeyNotVerifiable as e:
        ev("HOSTKEY_MISMATCH")
        ev("SSH_HANDSHAKE_FAILED err=%r" % str(e))
        return False, 1
    except Exception as e:
        ev("SSH_HANDSHAKE_FAILED err=%r" % str(e))
        return False, 1
    hk = conn.get_server_host_key()
    if hk is not None:
        ev("HOSTKEY_SEEN %s" % hk.export_public_key("openssh").decode().strip())
    ev("CONNECTED server=%r" % conn.get_extra_info("server_version"))
    rc = 0
    async with conn:
        for _ in range(a.ping):
            ok, data = await global_request(conn, "ping")
            ev("PING ok=%s data=%s" % (str(ok).lower(), q(data)))
        for r in a.request:
            name, _, payload = r.partition("=")
            ok, data = await global_request(conn, name, payload.encode())
            ev("REQUEST name=%s ok=%s data=%s" % (name, str(ok).lower(), q(data)))
        for p, local in a.fwd:
            ok, data = await global_request(conn, "listen", json.dumps({"port": p, "local_addr": local}, separators=(",", ":")).encode())
            ev("LISTEN_%s port=%d data=%s" % ("OK" if ok else "FAILED", p, q(data)))
        if a.open:
            chan = conn.create_tcp_channel()
            try:
                await chan._open_forward(asyncssh.SSHTCPSession, a.open.encode())
                ev("OPEN_OK type=%s" % a.open)
                chan.close()
            except asyncssh.ChannelOpenError as e:
                ev("OPEN_FAILED type=%s reason=%d message=%r" % (a.open, e.code, e.reason))
                rc = 1
            return True, rc
        if not a.fwd:
            return True, 0

        async def keepalive():
            while a.keepalive > 0:
                await asyncio.sleep(a.keepalive)
                try:
                    ok, data = await asyncio.wait_for(global_request(conn, "ping"), a.keepalive)
                except Exception as e:
                    ev("KEEPALIVE_FAILED err=%r" % str(e))
                    conn.close()
                    return
                ev("KEEPALIVE_REPLY ok=%s data=%s" % (str(ok).lower(), q(data)))

        t = asyncio.get_event_loop().create_task(keepalive())
        await conn.wait_closed()
        t.cancel()
        ev("DISCONNECTED")
        return True, 1


async def run_client(a):
    global WANT_HOST
    SSHClientConnection._process_ping_global_request = cli_ping
    SSHClientConnection._process_tunnel_open = cli_tunnel_open
    SSHClientConnection._packet_handlers = dict(SSHClientConnection._packet_handlers)
    from asyncssh.constants import MSG_CHANNEL_OPEN
    SSHClientConnection._packet_handlers[MSG_CHANNEL_OPEN] = cli_channel_open
    a.fwd = []
    for f in a.forward:
        p, _, local = f.partition("=")
        a.fwd.append((int(p), local))
        FORWARDS[int(p)] = local
    keys = []
    if a.key:
        seed = vtkey.parse(a.key, vtkey.PRIV)
        keys = [asyncssh.import_private_key(vtkey.openssh_priv(seed))]
        WANT_HOST = asyncssh.import_public_key(
            vtkey.authorized(vtkey.pub_of_seed(vtkey.derived_seed(vtkey.pub_of_seed(seed))), comment=""))
    if a.known_host:
        WANT_HOST = asyncssh.import_public_key(a.known_host)
    if a.insecure:
        WANT_HOST = None
    once = a.once or not a.fwd or a.open
    backoff = a.backoff_min
    while True:
        connected, rc = await client_session(a, keys)
        if once:
            return rc
        if connected:
            backoff = a.backoff_min
        ev("RECONNECT_IN %ss" % backoff)
        await asyncio.sleep(backoff)
        if not connected:
            backoff = min(backoff * 2, a.backoff_max)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--client-key", default=os.environ.get("VTUNNEL_CLIENT_KEY", ""))
    s.add_argument("--keepalive", type=float, default=30)
    s.add_argument("--wait", type=float, default=35)
    s.add_argument("--hostkey-type", default="ecdsa")
    c = sub.add_parser("client")
    c.add_argument("--addr", required=True)
    c.add_argument("--key", default=os.environ.get("VTUNNEL_KEY", ""))
    c.add_argument("--user", default="vtunnel")
    c.add_argument("--forward", action="append", default=[])
    c.add_argument("--ping", type=int, default=0)
    c.add_argument("--request", action="append", default=[])
    c.add_argument("--open")
    c.add_argument("--insecure", action="store_true")
    c.add_argument("--known-host")
    c.add_argument("--keepalive", type=float, default=30)
    c.add_argument("--once", action="store_true")
    c.add_argument("--backoff-min", type=float, default=1)
    c.add_argument("--backoff-max", type=float, default=5)
    c.add_argument("--hostkey-alg")
    c.add_argument("--timeout", type=float, default=15)
    for p in (s, c):
        p.add_argument("--kex")
        p.add_argument("--cipher")
        p.add_argument("--mac")
        p.add_argument("--rekey-bytes", type=int, default=0)
        p.add_argument("--debug", type=int, default=0, help="asyncssh debug level 1-3 (logs to stderr)")
    a = ap.parse_args()
    if a.debug:
        import logging
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        asyncssh.set_log_level(logging.DEBUG)
        asyncssh.set_debug_level(a.debug)
    try:
        return asyncio.run(run_server(a) if a.mode == "server" else run_client(a))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
