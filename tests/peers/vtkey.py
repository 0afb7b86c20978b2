#!/usr/bin/python3
"""Convert vtunnel keys (vt-priv-/vt-pub-) to OpenSSH formats. /usr/bin/python3 + cryptography.

  vtkey.py keygen                              two lines, same format as 'vtunnel keygen'
  vtkey.py priv2pub      vt-priv-...           -> vt-pub-...
  vtkey.py priv2openssh  vt-priv-... [FILE]    -> OpenSSH private key PEM (stdout, or FILE with mode 600)
  vtkey.py priv2authorized vt-priv-...         -> 'ssh-ed25519 AAAA... vtunnel-client'
  vtkey.py pub2authorized  vt-pub-...          -> 'ssh-ed25519 AAAA... vtunnel-client' (authorized_keys line)
  vtkey.py hostkey-pub   vt-pub-... [HOST[:PORT]]
        derived host key (ed25519, seed = SHA-256(wire(client pub))) as 'ssh-ed25519 AAAA...';
        with HOST[:PORT] as a known_hosts line ('[HOST]:PORT ssh-ed25519 ...' when PORT != 22)
  vtkey.py hostkey-priv  vt-pub-... [FILE]     derived host private key as OpenSSH PEM (e.g. sshd HostKey)
"""
import base64
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PRIV, PUB = "vt-priv-", "vt-pub-"


def b64d(s):
    # standard alphabet, no padding (43 chars for 32 bytes)
    if "=" in s:
        raise ValueError("padding is not allowed")
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def b64e(b):
    return base64.b64encode(b).decode().rstrip("=")


def parse(s, prefix):
    s = s.strip()
    if not s.startswith(prefix):
        raise SystemExit("error: key must start with %r" % prefix)
    try:
        raw = b64d(s[len(prefix):])
    except Exception as e:
        raise SystemExit("error: bad base64: %s" % e)
    if len(raw) != 32:
        raise SystemExit("error: decoded length %d, want 32" % len(raw))
    return raw


def sshstr(b):
    return struct.pack(">I", len(b)) + b


def wire(pub):
    return sshstr(b"ssh-ed25519") + sshstr(pub)


def pub_of_seed(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def openssh_priv(seed):
    k = Ed25519PrivateKey.from_private_bytes(seed)
    return k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption()).decode()


def authorized(pub, comment="vtunnel-client"):
    line = Ed25519PublicKey.from_public_bytes(pub).public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()
    return line + (" " + comment if comment else "")


def derived_seed(client_pub):
    return hashlib.sha256(wire(client_pub)).digest()


def out(text, path=None):
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
    else:
        sys.stdout.write(text)


def main(a):
    if not a:
        print(__doc__)
        return 2
    cmd = a[0]
    if cmd == "keygen":
        seed = os.urandom(32)
        print("Private key (client): " + PRIV + b64e(seed))
        print("Public key (server):  " + PUB + b64e(pub_of_seed(seed)))
    elif cmd == "priv2pub":
        print(PUB + b64e(pub_of_seed(parse(a[1], PRIV))))
    elif cmd == "priv2openssh":
        out(openssh_priv(parse(a[1], PRIV)), a[2] if len(a) > 2 else None)
    elif cmd == "priv2authorized":
        print(authorized(pub_of_seed(parse(a[1], PRIV))))
    elif cmd == "pub2authorized":
        print(authorized(parse(a[1], PUB)))
    elif cmd == "hostkey-pub":
        line = authorized(pub_of_seed(derived_seed(parse(a[1], PUB))), comment="")
        if len(a) > 2:
            host, _, port = a[2].rpartition(":") if a[2].count(":") == 1 else (a[2], "", "")
            if port and port != "22":
                line = "[%s]:%s %s" % (host, port, line)
            else:
                line = "%s %s" % (host or a[2], line)
        print(line)
    elif cmd == "hostkey-priv":
        out(openssh_priv(derived_seed(parse(a[1], PUB))), a[2] if len(a) > 2 else None)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
