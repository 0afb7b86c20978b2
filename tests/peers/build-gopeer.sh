#!/bin/sh
# Build the Go test peer offline (GOPATH mode, Debian golang-*-dev packages).
# usage: tests/peers/build-gopeer.sh OUTDIR    -> OUTDIR/vtpeer
set -eu
if [ $# -ne 1 ]; then echo "usage: $0 OUTDIR" >&2; exit 2; fi
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
GO=${GO:-$(command -v go || true)}
if [ -z "$GO" ] || [ ! -x "$GO" ]; then
  echo "build-gopeer: Go toolchain not found (apt-get install golang-go)" >&2; exit 3
fi
GOPATH_SYS=/usr/share/gocode
for p in golang.org/x/crypto/ssh github.com/gorilla/websocket; do
  if [ ! -d "$GOPATH_SYS/src/$p" ]; then
    echo "build-gopeer: $GOPATH_SYS/src/$p missing (apt-get install golang-golang-x-crypto-dev golang-github-gorilla-websocket-dev)" >&2
    exit 3
  fi
done
# GOPATH mode, fully offline: no modules, no proxy, no VCS, no checksum DB.
export GO111MODULE=off GOFLAGS= GOPROXY=off GONOSUMDB= GOSUMDB=off GOTOOLCHAIN=local
export GOPATH="$GOPATH_SYS"
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/vtpeer-gocache}"
export CGO_ENABLED=0
cd "$HERE/gopeer"
"$GO" build -trimpath -o "$OUT/vtpeer.tmp" . 
mv -f "$OUT/vtpeer.tmp" "$OUT/vtpeer"
echo "built $OUT/vtpeer ($("$GO" version | cut -d' ' -f3), x/crypto $(dpkg-query -W -f='${Version}' golang-golang-x-crypto-dev 2>/dev/null || echo '?'))"
