#!/usr/bin/python3
"""Second proxy client for the e2e tests: Python's http.client through the proxy.

  python_client.py PROXY_PORT CAFILE TLS_NAME PLAIN_URL
Does (1) HTTPS GET through CONNECT (set_tunnel) to TLS_NAME:443, verified against CAFILE,
(2) a plain-HTTP POST with a body to PLAIN_URL in absolute form, (3) a chunked POST. Prints one
JSON object: the origin's JSON answer for each, plus the status codes.
"""
import hashlib
import http.client
import json
import ssl
import sys


def main():
    proxy_port = int(sys.argv[1])
    cafile, tls_name, plain_url = sys.argv[2], sys.argv[3], sys.argv[4]
    out = {}

    ctx = ssl.create_default_context(cafile=cafile)
    c = http.client.HTTPSConnection("127.0.0.1", proxy_port, context=ctx, timeout=10)
    c.set_tunnel(tls_name, 443)
    c.request("GET", "/via-python?x=1", headers={"X-Client": "python"})
    r = c.getresponse()
    out["tls_status"] = r.status
    out["tls"] = json.loads(r.read())
    c.close()

    body = bytes(range(256)) * 1000
    c = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
    c.request("POST", plain_url, body=body, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse()
    out["post_status"] = r.status
    out["post"] = json.loads(r.read())
    out["post_sent_sha256"] = hashlib.sha256(body).hexdigest()
    c.close()

    c = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
    c.request("POST", plain_url, body=iter([b"abc", b"defgh", b"x" * 10000]), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    out["chunked_status"] = r.status
    out["chunked"] = json.loads(r.read())
    c.close()

    print(json.dumps(out))


if __name__ == "__main__":
    main()
