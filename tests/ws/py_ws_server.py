#!/usr/bin/python3
"""WebSocket peer for the interop tests, on Python `websockets` (an implementation no one here
wrote). Listens on 127.0.0.1 (port 0 = any), prints "READY <port>", serves by path:
  /echo        echo every binary message back unchanged
  /fragmented  send a fragmented message, then a 3 MiB message, then close 4000 "bye"
  /ping        ping the client, wait for its pong, send b"pong received", wait for close
  /close       close at once with 4001 "server says bye"
  /missing     refuse the handshake with 404
With --cert/--key it serves wss:// (TLS; --tls13-only refuses TLS 1.2).
Exits after --connections connections or --timeout seconds."""
import argparse
import asyncio
import http
import ssl
import sys

import websockets

BIG = bytes((i * 131 + 7) >> 3 & 0xFF for i in range(3 * 1024 * 1024))


async def handler(ws, path):
    try:
        if path == "/echo":
            async for message in ws:
                if isinstance(message, bytes):
                    await ws.send(message)
        elif path == "/fragmented":
            await ws.send([b"frag-", b"ment-", b"ed"])
            await ws.send(BIG)
            await ws.close(4000, "bye")
        elif path == "/ping":
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5)
            await ws.send(b"pong received")
            await ws.wait_closed()
        elif path == "/close":
            await ws.close(4001, "server says bye")
    except websockets.ConnectionClosed:
        pass


async def process_request(path, headers):
    if path == "/missing":
        return http.HTTPStatus.NOT_FOUND, [], b"no such tunnel\n"
    return None


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--tls13-only", action="store_true")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        if args.tls13_only:
            context.minimum_version = ssl.TLSVersion.TLSv1_3
    served = 0
    done = asyncio.Event()

    async def counted(ws, path):
        nonlocal served
        try:
            await handler(ws, path)
        finally:
            served += 1
            if served >= args.connections:
                done.set()

    async with websockets.serve(counted, "127.0.0.1", 0, ssl=context, max_size=None,
                                ping_interval=None, max_queue=None,
                                process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"READY {port}", flush=True)
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except asyncio.TimeoutError:
            print("timeout", file=sys.stderr)
            sys.exit(2)


asyncio.run(main())
