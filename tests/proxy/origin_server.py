#!/usr/bin/python3
"""Test origin for the proxy e2e tests: an HTTP/1.1 (optionally TLS) server on a loopback
address that answers every request with JSON describing what it received (method, target,
headers in order, body length and SHA-256, how the body was framed).

Prints "PORT <n>" on stdout once listening, then serves until killed or --lifetime passes.
"""
import argparse
import hashlib
import http.server
import json
import ssl
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep the test output quiet
        pass

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise ValueError("unexpected Transfer-Encoding " + te)
            body = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    break
                body += self.rfile.read(size)
                if self.rfile.read(2) != b"\r\n":
                    raise ValueError("bad chunk end")
            trailers = []
            while True:
                line = self.rfile.readline(65537)
                if line in (b"\r\n", b"\n", b""):
                    break
                trailers.append(line.decode("latin-1").strip())
            return bytes(body), "chunked", trailers
        length = self.headers.get("Content-Length")
        if length is not None:
            return self.rfile.read(int(length)), "content-length", []
        return b"", "none", []

    def _answer(self):
        try:
            body, framing, trailers = self._read_body()
        except Exception as e:  # a framing bug in the proxy shows up as this
            self.send_error(400, str(e))
            return
        info = {
            "method": self.command,
            "target": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "framing": framing,
            "trailers": trailers,
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "tls": isinstance(self.connection, ssl.SSLSocket),
        }
        out = json.dumps(info).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--lifetime", type=float, default=120.0)
    args = ap.parse_args()

    server = http.server.ThreadingHTTPServer((args.bind, 0), Handler)
    server.daemon_threads = True
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("PORT", server.server_address[1], flush=True)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
