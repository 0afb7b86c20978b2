#!/usr/bin/env bash
# cmake --install into a scratch prefix, then build and run examples/embed (the README's
# library example) as a separate project that finds vtunnel with find_package, and a small
# program compiled with nothing but `pkg-config --cflags --libs vtunnel`.
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

# pkg-config: the installed vtunnel.pc (relocatable) alone must be enough to build and link.
pc_dir=$(dirname "$(find "$work/prefix" -name vtunnel.pc -print -quit)")
test -f "$pc_dir/vtunnel.pc"
export PKG_CONFIG_PATH="$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists --print-errors vtunnel
flags=$(pkg-config --cflags --libs vtunnel)
echo "pkg-config --cflags --libs vtunnel: $flags"
# shellcheck disable=SC2086 # word splitting of the flags is intended
${CXX:-c++} -std=c++20 -O1 -o "$work/pkgconfig_main" "$src/tests/install/pkgconfig_main.cpp" $flags
out=$("$work/pkgconfig_main")
echo "$out"
grep -q "^pkg-config build: vt-pub-" <<<"$out"
echo "install + pkg-config: ok"
