#!/usr/bin/env bash
# make demo: a whole tunnel on this machine. Generates a key pair, starts a vtunnel server and
# client on loopback, exposes a small local web page through the tunnel, fetches it through
# the server's tunnel port, then stops everything it started.
set -euo pipefail
build=${1:-build}
vt="$build/apps/vtunnel"
work=$(mktemp -d /tmp/vtunnel-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # host port seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for $1:$2" >&2; return 1
}

web_port=$(free_port); server_port=$(free_port); tunnel_port=$(free_port)
keys=$("$vt" keygen)
priv=$(sed -n 's/^Private key (client): //p' <<<"$keys")
pub=$(sed -n 's/^Public key (server):  //p' <<<"$keys")
echo "== 1. keys"; echo "$keys"; echo

mkdir -p "$work/site"
printf '<h1>Hello from behind the NAT</h1>\n<p>served on 127.0.0.1:%s, reached through vtunnel</p>\n' "$web_port" >"$work/site/index.html"
/usr/bin/python3 -m http.server "$web_port" --bind 127.0.0.1 --directory "$work/site" >/dev/null 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$web_port" 10

echo "== 2. server on 127.0.0.1:$server_port"
"$vt" server -port "$server_port" -bind 127.0.0.1 -client-key "$pub" 2>"$work/server.log" &
pids+=($!)
wait_port 127.0.0.1 "$server_port" 10

echo "== 3. client: forward server port $tunnel_port -> local web page on 127.0.0.1:$web_port"
"$vt" client -server "ws://127.0.0.1:$server_port/" -key "$priv" -forward "$tunnel_port=127.0.0.1:$web_port" \
  2>"$work/client.log" &
pids+=($!)
wait_port 127.0.0.1 "$tunnel_port" 10

echo "== 4. curl http://127.0.0.1:$tunnel_port/ (on the server side of the tunnel)"
curl -sS --max-time 10 "http://127.0.0.1:$tunnel_port/"
echo
echo "== logs"
sed 's/^/  server: /' "$work/server.log"
sed 's/^/  client: /' "$work/client.log"
cat <<EOT

== On two real machines
  anywhere:        vtunnel keygen
  cloud server:    vtunnel server -port 3001 -client-key "vt-pub-..."
  your machine:    vtunnel client -server ws://tunnel.example.com:3001/ -key "vt-priv-..." -forward 9000=localhost:3000
  then, on the server, localhost:9000 reaches your machine's localhost:3000.
EOT
