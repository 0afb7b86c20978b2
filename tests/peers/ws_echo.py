#!/usr/bin/python3
"""WebSocket echo server for interop tests (python3-websockets 10.4; run with /usr/bin/python3).

Echoes every data message back with the same opcode (binary stays binary). Prints one event per
line on stdout:  LISTENING <port> | CONNECT path=... headers={...} | MSG n=<i> type=binary|text
bytes=<len> | CLOSED code=<c> reason=<r> | REJECT path=... status=<s>

  --port P            127.0.0.1 port (0 = free port, printed)            [0]
  --host H            bind address (127.0.0.1 or ::1)                    [127.0.0.1]
  --fragment N        echo each message as fragments of N bytes (continuation frames)
  --ping-interval S   send a WebSocket ping every S seconds (and require pongs within
                      --ping-timeout S)                                   [off]
  --close-after K     after echoing K messages, close with --close-code/--close-reason
  --close-code C      close code used by --close-after                   [1000]
  --close-reason R    close reason                                       ['']
  --max-size N        max incoming message size (0 = unlimited)          [0]
  --deflate           offer/accept permessage-deflate (default: compression off)
  --reject STATUS     answer every handshake with this HTTP status instead of upgrading
  --tls-cert F --tls-key F   serve wss:// with this certificate
"""
import argparse
import asyncio
import http
import json
import ssl
import sys

import websockets


def ev(s):
    print(s, flush=True)


def chunks(b, n):
    for i in range(0, len(b), n):
        yield b[i : i + n]
    if not b:
        yield b


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fragment", type=int, default=0)
    ap.add_argument("--ping-interval", type=float, default=None)
    ap.add_argument("--ping-timeout", type=float, default=20)
    ap.add_argument("--close-after", type=int, default=0)
    ap.add_argument("--close-code", type=int, default=1000)
    ap.add_argument("--close-reason", default="")
    ap.add_argument("--max-size", type=int, default=0)
    ap.add_argument("--deflate", action="store_true")
    ap.add_argument("--reject", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args()

    sslctx = None
    if a.tls_cert:
        sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sslctx.load_cert_chain(a.tls_cert, a.tls_key)

    async def process_request(path, headers):
        if a.reject:
            ev("REJECT path=%s status=%d" % (path, a.reject))
            st = http.HTTPStatus(a.reject)
            return st, [("Content-Type", "text/plain")], (st.phrase + "\n").encode()
        if path == "/health":
            return http.HTTPStatus.OK, [("Content-Type", "text/plain")], b"ok"
        return None

    async def handler(ws):
        hdrs = {k: v for k, v in ws.request_headers.raw_items()}
        ev("CONNECT path=%s headers=%s" % (ws.path, json.dumps(hdrs, sort_keys=True)))
        n = 0
        try:
            async for msg in ws:
                n += 1
                typ = "binary" if isinstance(msg, (bytes, bytearray)) else "text"
                ev("MSG n=%d type=%s bytes=%d" % (n, typ, len(msg)))
                if a.fragment > 0 and len(msg) > a.fragment:
                    await ws.send(chunks(msg, a.fragment))
                else:
                    await ws.send(msg)
                if a.close_after and n >= a.close_after:
                    await ws.close(code=a.close_code, reason=a.close_reason)
                    break
        except websockets.ConnectionClosed:
            pass
        ev("CLOSED code=%s reason=%r" % (ws.close_code, ws.close_reason))

    async with websockets.serve(
        handler,
        a.host,
        a.port,
        ssl=sslctx,
        compression="deflate" if a.deflate else None,
        ping_interval=a.ping_interval,
        ping_timeout=a.ping_timeout,
        max_size=a.max_size or None,
        process_request=process_request,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        ev("LISTENING %d" % port)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
