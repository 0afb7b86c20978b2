#!/usr/bin/env bash
# cmake --install into a scratch prefix, then build and run examples/embed (the README's
# library example) as a separate project that finds vtunnel with find_package.
set -euo pipefail
src=$1; build=$2
work=$(mktemp -d /tmp/vtunnel-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -x "$work/prefix/bin/vtunnel"
test -f "$work/prefix/include/vtunnel/tunnel/server.hpp"
"$work/prefix/bin/vtunnel" keygen | grep -q '^Private key (client): vt-priv-'
cmake -S "$src/examples/embed" -B "$work/embed" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/embed" -j 2 >/dev/null
out=$("$work/embed/embed")
echo "$out"
grep -q "tunnel reply: hello through the tunnel" <<<"$out"
echo "install + find_package: ok"
