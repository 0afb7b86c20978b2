#!/usr/bin/env python3
"""Writes the committed seed corpus of every fuzz target: fuzz/corpus/<target>/<name>.

Seeds are small valid inputs (plus a few near-misses), in each target's input format (see the
comment at the top of each fuzz/*.cpp). The SSH seeds start from real OpenSSH 9.2 bytes
captured on loopback (fuzz/captures/: a client's and a server's identification line and
KEXINIT). Deterministic: running it again rewrites the same files. Stdlib only.

  python3 scripts/fuzz-corpus.py            # (re)writes fuzz/corpus/
"""
import base64
import hashlib
import json
import os
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
OUT = FUZZ / "corpus"


def u32(n):
    return struct.pack(">I", n)


def string(b):
    if isinstance(b, str):
        b = b.encode()
    return u32(len(b)) + b


def name_list(names):
    return string(",".join(names))


def packet(payload, block=8):
    """An unencrypted SSH binary packet (RFC 4253 section 6), zero padding."""
    pad = block - (len(payload) + 5) % block
    if pad < 4:
        pad += block
    return u32(len(payload) + pad + 1) + bytes([pad]) + payload + b"\0" * pad


def kexinit(kex, host_keys, ciphers, macs=("hmac-sha2-256-etm@openssh.com",), cookie=b"\x11" * 16):
    return (bytes([20]) + cookie + name_list(kex) + name_list(host_keys) + name_list(ciphers) +
            name_list(ciphers) + name_list(macs) + name_list(macs) + name_list(["none"]) +
            name_list(["none"]) + name_list([]) + name_list([]) + b"\0" + u32(0))


def pseudo(label, n):
    """Deterministic filler bytes (a stand-in for key shares and signatures)."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


# The derived host key of the all-zero vt-priv seed (tests/tunnel/test_keys.cpp).
HOST_BLOB = base64.b64decode("AAAAC3NzaC1lZDI1NTE5AAAAIB1mFni8B99IA6qAvW8NIHMrqj6pWnrmLbUQUdIQ+csv")
CLIENT_KEX = kexinit(["curve25519-sha256", "ecdh-sha2-nistp256", "ext-info-c", "kex-strict-c-v00@openssh.com"],
                     ["ssh-ed25519", "ecdsa-sha2-nistp256"],
                     ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"])
SERVER_KEX = kexinit(["curve25519-sha256", "kex-strict-s-v00@openssh.com"], ["ssh-ed25519"],
                     ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"])
ECDH_INIT = packet(bytes([30]) + string(pseudo("client share", 32)))
ECDH_REPLY = packet(bytes([31]) + string(HOST_BLOB) + string(pseudo("server share", 32)) +
                    string(string("ssh-ed25519") + string(pseudo("signature", 64))))
NEWKEYS = packet(bytes([21]))


def ssh_seeds():
    client_hello = (FUZZ / "captures/openssh-9.2-client-hello.bin").read_bytes()
    server_hello = (FUZZ / "captures/openssh-9.2-server-hello.bin").read_bytes()
    ident_c = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
    ident_s = b"SSH-2.0-Go\r\n"
    # Control byte: bit 0 = we prepend a valid ident; bits 2.. = feed piece size.
    server_role = {
        "openssh-client-hello": b"\x00" + client_hello,
        "openssh-client-hello-ecdh": b"\x00" + client_hello + ECDH_INIT,
        "openssh-client-hello-chunked": b"\x04" + client_hello,
        "kexinit-ecdh-newkeys": b"\x00" + ident_c + packet(CLIENT_KEX) + ECDH_INIT + NEWKEYS,
        "ident-prepended-kexinit": b"\x01" + packet(CLIENT_KEX) + ECDH_INIT,
        "http-request": b"\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "ssh-1.5": b"\x00SSH-1.5-old\r\n",
        "ignore-then-kexinit": b"\x01" + packet(bytes([2]) + string("x")) + packet(CLIENT_KEX),
    }
    client_role = {
        "openssh-server-hello": b"\x00" + server_hello,
        "openssh-server-hello-any-key": b"\x02" + server_hello,
        "banner-lines": b"\x00" + b"hello there\r\nsecond line\r\n" + ident_s + packet(SERVER_KEX),
        "kexinit-ecdh-reply": b"\x00" + ident_s + packet(SERVER_KEX) + ECDH_REPLY + NEWKEYS,
        "kexinit-ecdh-reply-any-key": b"\x02" + ident_s + packet(SERVER_KEX) + ECDH_REPLY + NEWKEYS,
        "ident-prepended-chunked": b"\x05" + packet(SERVER_KEX) + ECDH_REPLY,
    }
    return server_role, client_role


def ssh_message_seeds():
    """fuzz_ssh_messages: [u16 len | 0x8000 = sent by the client][payload] after authentication.
    The client opened channel 0 ("direct-tcpip") and the server accepted it as its channel 0."""
    def m(payload, from_client=False):
        return struct.pack(">H", len(payload) | (0x8000 if from_client else 0)) + payload
    listen = json.dumps({"port": 9000, "local_addr": "localhost:3000"}, separators=(",", ":"))
    glob = bytes([80]) + string("listen") + b"\x01" + listen.encode()
    ping = bytes([80]) + string("ping") + b"\x01"
    open_tunnel = bytes([90]) + string("tunnel") + u32(5) + u32(65536) + u32(32768) + b'{"port":9000}'
    data = bytes([94]) + u32(0) + string(b"GET / HTTP/1.1\r\n\r\n")
    window = bytes([93]) + u32(0) + u32(4096)
    eof = bytes([96]) + u32(0)
    close = bytes([97]) + u32(0)
    req = bytes([98]) + u32(0) + string("exit-status") + b"\x00" + u32(0)
    return {
        "listen-and-ping": m(glob, True) + m(ping),
        "tunnel-open": m(open_tunnel),
        "data-window-eof-close": m(data) + m(window) + m(data, True) + m(eof) + m(close) + m(close, True),
        "channel-request": m(req) + m(req, True),
        "disconnect": m(bytes([1]) + u32(11) + string("bye") + string("")),
        "unknown-type": m(bytes([200, 1, 2, 3])),
        "rekey": m(CLIENT_KEX, True),
    }


def ssh_packet_seeds():
    """fuzz_ssh_packet: byte 0 picks the mode: 0 plaintext (bits 4.. piece size), 1 key blobs,
    2.. ciphers (payload list of [u16 len][flip][payload])."""
    plain = packet(CLIENT_KEX) + ECDH_INIT + NEWKEYS
    def payloads(*ps, flip=0):
        return b"".join(struct.pack(">HB", len(p), flip) + p for p in ps)
    seeds = {
        "plaintext": b"\x00" + plain,
        "plaintext-chunked": b"\x10" + plain,
        "plaintext-oversized-length": b"\x00" + u32(0x00100000) + b"\x04" + b"\0" * 12,
        "ed25519-blob-and-signature": b"\x01" + bytes([len(HOST_BLOB)]) + HOST_BLOB +
                                       string("ssh-ed25519") + string(pseudo("sig", 64)),
    }
    for i in range(5):  # supported_ciphers(): gcm128, gcm256, chacha20-poly1305, ctr128, ctr256
        seeds[f"cipher{i}-round-trip"] = bytes([2 + i]) + payloads(CLIENT_KEX, b"\x02hello", b"")
        seeds[f"cipher{i}-flipped"] = bytes([2 + i]) + payloads(b"\x02hello") + payloads(b"\x05x", flip=0x85)
    return seeds


def ws_frame(opcode, payload, mask=None, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def ws_frame_seeds():
    """fuzz_frame_parser: byte 0 piece size, byte 1 bit 0 = server role (masked frames), bit 1 = 300-byte limit."""
    k = b"\x37\xfa\x21\x3d"
    masked = (ws_frame(2, b"\x00\x00\x00\x0c\x0a\x14binary", k) + ws_frame(9, b"ping", k) +
              ws_frame(2, b"frag", k, fin=False) + ws_frame(0, b"ment", k) + ws_frame(2, b"x" * 300, k) +
              ws_frame(8, b"\x03\xe8bye", k))
    plain = (ws_frame(2, b"hello") + ws_frame(10, b"pong") + ws_frame(1, "héllo".encode()) +
             ws_frame(2, b"y" * 70000) + ws_frame(8, b"\x03\xe8"))
    return {
        "server-role-masked": b"\x07\x01" + masked,
        "server-role-small-limit": b"\x1f\x03" + masked,
        "client-role-plain": b"\x1f\x00" + plain[:2000] + ws_frame(8, b""),
        "client-role-64bit-length": b"\x00\x00" + ws_frame(2, b"z" * 65536)[:64],
        "rfc6455-hello": b"\x00\x01" + bytes.fromhex("818537fa213d7f9f4d5158"),
    }


def ws_handshake_seeds():
    """fuzz_handshake: byte 0 piece size; the rest is fed to our server (as a request) and to
    our client (as the response to a request made with the all-zero key)."""
    key = base64.b64encode(b"\0" * 16).decode()
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    request = (f"GET /tunnel HTTP/1.1\r\nHost: 127.0.0.1:3001\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               f"User-Agent: Go-http-client/1.1\r\n\r\n")
    response = (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n")
    return {
        "gorilla-request": b"\x00" + request.encode(),
        "request-split": b"\x05" + request.encode() + b"\x82\x00",
        "health": b"\x00GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        "switching-protocols": b"\x00" + response.encode() + b"\x82\x02hi",
        "switching-protocols-split": b"\x03" + response.encode(),
        "refusal": b"\x00HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        "ws-url": b"\x00wss://example.com:8443/tunnel?x=1",
    }


def proxy_seeds():
    return {
        "connect": b"CONNECT app.example:443 HTTP/1.1\r\nHost: app.example:443\r\n\r\n",
        "absolute-get": b"GET http://app.example/path?q=1 HTTP/1.1\r\nHost: app.example\r\nUser-Agent: curl/7.88.1\r\n\r\n",
        "post-chunked": (b"POST http://app.example/up HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n0\r\nTrailer: x\r\n\r\n"),
        "post-length": b"POST http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 3\r\n\r\nabc",
        "folded-header": b"GET http://a/ HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n",
    }


def tunnel_json_seeds():
    return {
        "listen": b'{"port":9000,"local_addr":"localhost:3000"}',
        "listen-mapped": b'{"port":8080,"local_addr":"app.example:443"}',
        "listen-port-only": b'{"port":80}',
        "tunnel-data": b'{"port":9000}',
        "escapes": b'{"port": 65535, "local_addr": "\\u0068ost:1\\n", "extra": [1, {"a": null}]}',
        "port-zero": b'{"port":0}',
        "port-float": b'{"port":80.5}',
    }


def key_seeds():
    return {
        "priv-go": b"vt-priv-7dXUbWAJCo29ZMmI5V6lTKAJW+S2TK9bJFeRIkfm+FE",
        "pub-go": b"vt-pub-M/iXsjuDZ/rzE7+7UpKCjayrpb298aXsjpnyc2LPtns",
        "priv-zero": b"vt-priv-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "pub-zero": b"vt-pub-O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik",
        "base64": b"aGVsbG8gd29ybGQ",
    }


def forward_seeds():
    return {
        "localhost": b"9000=localhost:3000",
        "tls": b"443=tls://app.internal:8443",
        "ipv6": b"8080=[::1]:80",
        "ipv4": b"1=127.0.0.1:65535",
        "no-port": b"9000=localhost",
    }


def main():
    server_role, client_role = ssh_seeds()
    corpora = {
        "fuzz_ssh_preauth": server_role,
        "fuzz_ssh_client_preauth": client_role,
        "fuzz_ssh_messages": ssh_message_seeds(),
        "fuzz_ssh_packet": ssh_packet_seeds(),
        "fuzz_frame_parser": ws_frame_seeds(),
        "fuzz_handshake": ws_handshake_seeds(),
        "fuzz_proxy_head": proxy_seeds(),
        "fuzz_tunnel_json": tunnel_json_seeds(),
        "fuzz_tunnel_keys": key_seeds(),
        "fuzz_forward_spec": forward_seeds(),
    }
    for target, seeds in corpora.items():
        d = OUT / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            old.unlink()
        for name, data in seeds.items():
            (d / name).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
