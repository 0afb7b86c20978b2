#!/usr/bin/python3
"""Our server behind nginx (the README's "Behind nginx" configuration), our client through it.

Starts, all on loopback with ports from the kernel: a vtunnel server, nginx (foreground, scratch
prefix, its own error log) proxying /tunnel/ to the server with WebSocket upgrade, an echo
backend, and a vtunnel client whose -server URL is nginx's. Checks:
  - data hash-checked both ways through nginx and the tunnel;
  - an idle tunnel survives longer than nginx's proxy_read_timeout, because keepalive pings
    (shorter than the timeout) cross nginx: the client stays on its one WebSocket session (one
    101 in nginx's access log, written when that connection ends);
  - without the Upgrade/Connection headers in the nginx config the client cannot attach.
Exits 77 (skipped) if nginx is not installed. Usage: nginx_front.py VTUNNEL_BIN
"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness as H  # noqa: E402

NGINX_CONF = """\
# Scratch nginx for the vtunnel test. The location block is the README's "Behind nginx" one.
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 128; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /tunnel/ {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
{upgrade}
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout {read_timeout};
            proxy_send_timeout {read_timeout};
            proxy_buffering off;
        }}
    }}
}}
"""
UPGRADE = """\
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;"""

KEEPALIVE = "2s"       # server and client ping interval
READ_TIMEOUT_S = 5     # nginx proxy_read_timeout in this test: longer than the keepalive
IDLE_S = 12            # idle time in the test: more than twice the read timeout


def start_nginx(nginx, workdir, name, upstream, upgrade=True):
    d = os.path.join(workdir, name)
    os.makedirs(os.path.join(d, "tmp"))
    port = H.free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port, upstream=upstream,
                                  upgrade=UPGRADE if upgrade else "",
                                  read_timeout="%ds" % READ_TIMEOUT_S))
    # -e: the error log before the configuration is read (else /var/log/nginx/error.log).
    proc = H.Proc([nginx, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "error.log")],
                  name, workdir)
    try:
        H.wait_port(port, timeout=20)
    except TimeoutError:
        print(proc.tail())
        print(open(os.path.join(d, "error.log")).read())
        raise
    return proc, port, d


def main():
    vtunnel = os.path.abspath(sys.argv[1])
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not nginx:
        print("nginx not installed: skipped")
        return 77
    ours = H.Impl("ours", vtunnel)
    workdir = tempfile.mkdtemp(prefix="vtunnel-nginx-test.")
    procs = []
    ok = False
    try:
        priv, pub = H.keygen(ours)
        server_port = H.free_port()
        server = H.Proc(ours.server_cmd(server_port, client_key=pub, keepalive=KEEPALIVE), "server", workdir)
        procs.append(server)
        H.wait_until(lambda: H.http_get(server_port, "/health")[0] == 200, 20, what="server /health")

        nginx_proc, nginx_port, nginx_dir = start_nginx(nginx, workdir, "nginx", server_port)
        procs.append(nginx_proc)
        echo = H.echo_server()
        tunnel_port = H.free_port()
        url = "ws://127.0.0.1:%d/tunnel/" % nginx_port
        client = H.Proc(ours.client_cmd(url, ["%d=127.0.0.1:%d" % (tunnel_port, echo.port)], key=priv,
                                        keepalive=KEEPALIVE), "client", workdir)
        procs.append(client)
        H.wait_tunnel(tunnel_port, timeout=30)

        data = H.gen_bytes(8 << 20, seed="nginx")
        got = H.transfer(tunnel_port, data, timeout=120)
        assert H.sha256(got) == H.sha256(data), "8 MiB through nginx came back different"
        print("8 MiB echoed through nginx and the tunnel")

        time.sleep(IDLE_S)
        assert client.alive() and server.alive(), "a vtunnel process exited while idle"
        assert H.tunnel_works(tunnel_port, timeout=5), "tunnel dead after %ds idle behind nginx" % IDLE_S
        got = H.transfer(tunnel_port, data[: 1 << 20], timeout=60)
        assert got == data[: 1 << 20], "1 MiB after the idle period came back different"
        print("tunnel alive after %d s idle (nginx proxy_read_timeout %d s, keepalive %s)"
              % (IDLE_S, READ_TIMEOUT_S, KEEPALIVE))

        rc, _, _ = client.stop()
        assert rc == 0, "client exit status %r" % rc
        # nginx logs the upgraded request when its connection ends.
        access = os.path.join(nginx_dir, "access.log")
        H.wait_until(lambda: " 101 " in open(access).read(), 10, what="the 101 line in nginx's access log")
        upgrades = [line for line in open(access) if '"GET /tunnel/ HTTP/1.1" 101 ' in line]
        assert len(upgrades) == 1, "expected one WebSocket session through nginx, access log:\n" + open(access).read()
        print("one WebSocket session through nginx for the whole run")

        # Negative control: the same nginx without the upgrade headers does not carry the tunnel.
        bad_proc, bad_port, bad_dir = start_nginx(nginx, workdir, "nginx-noupgrade", server_port, upgrade=False)
        procs.append(bad_proc)
        tunnel_port2 = H.free_port()
        client2 = H.Proc(ours.client_cmd("ws://127.0.0.1:%d/tunnel/" % bad_port,
                                         ["%d=127.0.0.1:%d" % (tunnel_port2, echo.port)], key=priv),
                         "client-noupgrade", workdir)
        procs.append(client2)
        H.wait_until(lambda: os.path.getsize(os.path.join(bad_dir, "access.log")) > 0, 20,
                     what="the client's attempt through nginx without upgrade headers")
        assert not H.tunnel_works(tunnel_port2, timeout=1), "tunnel worked without the upgrade headers?"
        print("without Upgrade/Connection headers the client cannot attach (as expected)")
        echo.close()
        ok = True
    finally:
        for p in reversed(procs):
            p.stop()
        if not ok:
            for name in sorted(os.listdir(workdir)):
                path = os.path.join(workdir, name)
                for f in ([path] if os.path.isfile(path) else
                          [os.path.join(path, x) for x in ("error.log", "access.log")]):
                    if os.path.isfile(f):
                        print("==== %s\n%s" % (f, open(f, errors="replace").read()[-4000:]))
        shutil.rmtree(workdir, ignore_errors=True)
    print("nginx front: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
