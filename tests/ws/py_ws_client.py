#!/usr/bin/python3
"""WebSocket client for the interop tests, on Python `websockets`, against our server.
  py_ws_client.py PORT SCENARIO
    echo     binary messages of many sizes (one fragmented, one of 5 MiB) must come back
             byte for byte (our server may re-frame them: boundaries mean nothing)
    ping     our server must answer a ping
    close    close with 4002: our server must echo the code
    text     a text message must be refused with close 1003
    health   GET /health must answer 200 "ok"
Exit status 0 on success; the reason on stderr otherwise."""
import asyncio
import sys
import urllib.request

import websockets


def pattern(n, seed):
    return bytes(((i * 131 + seed) >> 3) & 0xFF for i in range(n))


async def read_exactly(ws, n):
    got = bytearray()
    while len(got) < n:
        message = await asyncio.wait_for(ws.recv(), 10)
        if not isinstance(message, bytes):
            raise AssertionError("expected binary messages only")
        got += message
    return bytes(got)


async def run(port, scenario):
    uri = f"ws://127.0.0.1:{port}/tunnel"
    if scenario == "health":
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).read()
        assert body == b"ok", body
        return
    async with websockets.connect(uri, max_size=None, max_queue=None, ping_interval=None) as ws:
        if scenario == "echo":
            for size in [1, 125, 126, 65535, 65536, 200000]:
                data = pattern(size, size)
                await ws.send(data)
                assert await read_exactly(ws, size) == data, f"echo of {size} bytes differs"
            fragments = [pattern(1000, 1), pattern(70000, 2), pattern(3, 3)]
            await ws.send(fragments)
            assert await read_exactly(ws, 71003) == b"".join(fragments), "fragmented echo differs"
            big = pattern(5 * 1024 * 1024, 9)
            await ws.send(big)
            assert await read_exactly(ws, len(big)) == big, "5 MiB echo differs"
        elif scenario == "ping":
            pong = await ws.ping(b"interop")
            await asyncio.wait_for(pong, 5)
        elif scenario == "close":
            await ws.close(4002, "client done")
            assert ws.close_code == 4002, f"close code {ws.close_code}"
        elif scenario == "text":
            await ws.send("hello")
            try:
                await asyncio.wait_for(ws.recv(), 10)
                raise AssertionError("text message was not refused")
            except websockets.ConnectionClosed as e:
                assert e.code == 1003, f"close code {e.code}"
        else:
            raise AssertionError(f"unknown scenario {scenario}")


try:
    asyncio.run(run(int(sys.argv[1]), sys.argv[2]))
except Exception as e:  # noqa: BLE001 - report anything to the test
    print(f"py_ws_client {sys.argv[2]}: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
