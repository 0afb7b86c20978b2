#!/usr/bin/python3
"""Scripted WebSocket client for interop tests (python3-websockets 10.4; use /usr/bin/python3).

usage: ws_client.py URL [options]          steps run in this order:
  1. connect          --header 'Name: value' (repeatable), --cafile F | --insecure (wss),
                      --deflate (offer permessage-deflate; default off), --timeout S [10]
                      prints  CONNECTED status=101 headers={...}   or  HANDSHAKE_FAILED ...
  2. --expect-prefix STR   read data until the stream starts with STR (e.g. 'SSH-2.0-' against a
                           vtunnel server), print  PREFIX ok data=<repr of first line>
     --send-raw STR        then send STR as one binary message (e.g. an SSH banner)
  3. --send N [--count M] [--fragment F] [--text]
                      send M messages of N deterministic bytes each (fragmented into F-byte
                      frames if F>0); after each, read until N bytes came back (message boundaries
                      ignored) and compare SHA-256: ECHO ok n=<i> bytes=N msgs=<messages received>
  4. --ping K         send K pings, await each pong: PONG ok ms=<rtt>
  5. --close-code C [--close-reason R]   close with C: CLOSE sent=C received=<server code> reason=...
     or --wait-close S                   wait up to S s for the server to close: CLOSE received=...
exit status 0 iff every step succeeded.
"""
import argparse
import asyncio
import hashlib
import json
import ssl
import sys
import time

import websockets


def ev(s):
    print(s, flush=True)


def gen(n, i):
    out = bytearray()
    ctr = 0
    while len(out) < n:
        out += hashlib.sha256(b"ws:%d:%d" % (i, ctr)).digest() * 128
        ctr += 1
    return bytes(out[:n])


async def run(a):
    sslctx = None
    if a.url.startswith("wss://"):
        sslctx = ssl.create_default_context(cafile=a.cafile)
        if a.insecure:
            sslctx.check_hostname = False
            sslctx.verify_mode = ssl.CERT_NONE
    hdrs = []
    for h in a.header:
        k, _, v = h.partition(":")
        hdrs.append((k.strip(), v.strip()))
    try:
        ws = await websockets.connect(
            a.url,
            extra_headers=hdrs,
            ssl=sslctx,
            compression="deflate" if a.deflate else None,
            max_size=None,
            ping_interval=None,
            open_timeout=a.timeout,
            close_timeout=a.timeout,
        )
    except websockets.InvalidStatusCode as e:
        ev("HANDSHAKE_FAILED status=%d" % e.status_code)
        return 1
    except Exception as e:
        ev("HANDSHAKE_FAILED err=%r" % e)
        return 1
    ev("CONNECTED status=101 headers=%s" % json.dumps(dict(ws.response_headers.raw_items()), sort_keys=True))
    rc = 0
    try:
        buf = b""
        if a.expect_prefix:
            want = a.expect_prefix.encode()
            while len(buf) < len(want) or (b"\n" not in buf and len(buf) < 256):
                m = await asyncio.wait_for(ws.recv(), a.timeout)
                buf += m if isinstance(m, bytes) else m.encode()
            line = buf.split(b"\n", 1)[0]
            ok = buf.startswith(want)
            ev("PREFIX %s data=%r" % ("ok" if ok else "FAIL", line))
            rc |= 0 if ok else 1
        if a.send_raw:
            await ws.send(a.send_raw.encode().decode("unicode_escape").encode("latin-1"))
        for i in range(a.count if a.send else 0):
            data = gen(a.send, i)
            payload = data.decode("latin-1") if a.text else data
            if a.fragment > 0:
                await ws.send([payload[j : j + a.fragment] for j in range(0, len(payload), a.fragment)])
            else:
                await ws.send(payload)
            got = b""
            msgs = 0
            while len(got) < len(data):
                m = await asyncio.wait_for(ws.recv(), a.timeout)
                msgs += 1
                got += m if isinstance(m, bytes) else m.encode("latin-1")
            ok = got == data
            ev("ECHO %s n=%d bytes=%d msgs=%d" % ("ok" if ok else "FAIL", i + 1, len(got), msgs))
            rc |= 0 if ok else 1
        for i in range(a.ping):
            t0 = time.monotonic()
            w = await ws.ping(b"vt%d" % i)
            await asyncio.wait_for(w, a.timeout)
            ev("PONG ok ms=%.2f" % ((time.monotonic() - t0) * 1000))
        if a.close_code is not None:
            await ws.close(code=a.close_code, reason=a.close_reason)
            ev("CLOSE sent=%d received=%s reason=%r" % (a.close_code, ws.close_code, ws.close_reason))
        elif a.wait_close is not None:
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), a.wait_close)
            except websockets.ConnectionClosed:
                pass
            except asyncio.TimeoutError:
                ev("CLOSE timeout")
                rc |= 1
            else:
                pass
            if ws.close_code is not None:
                ev("CLOSE received=%s reason=%r" % (ws.close_code, ws.close_reason))
        else:
            await ws.close()
    except websockets.ConnectionClosed as e:
        ev("CONNECTION_CLOSED code=%s reason=%r" % (e.code, e.reason))
        rc |= 1
    except asyncio.TimeoutError:
        ev("TIMEOUT")
        rc |= 1
    return rc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--cafile")
    ap.add_argument("--insecure", action="store_true")
    ap.add_argument("--deflate", action="store_true")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--expect-prefix")
    ap.add_argument("--send-raw")
    ap.add_argument("--send", type=int, default=0)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--fragment", type=int, default=0)
    ap.add_argument("--text", action="store_true")
    ap.add_argument("--ping", type=int, default=0)
    ap.add_argument("--close-code", type=int)
    ap.add_argument("--close-reason", default="")
    ap.add_argument("--wait-close", type=float)
    a = ap.parse_args()
    return asyncio.run(run(a))


if __name__ == "__main__":
    sys.exit(main())
