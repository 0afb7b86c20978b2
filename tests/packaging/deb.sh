#!/usr/bin/env bash
# `cpack -G DEB` from the already-built tree (cpack runs the `preinstall` target first: a no-op
# on a built tree: nothing is compiled), then checks
# the two .deb files as a user would meet them: control fields (Depends from dpkg-shlibdeps must
# name the libraries the programs load), contents, and the programs run from a scratch root
# made with `dpkg -x` (no dpkg database touched). Usage: deb.sh BUILD_DIR
set -euo pipefail
build=$1
work=$(mktemp -d /tmp/vtunnel-deb-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

start=$(date +%s)
if ! cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log"; fail "cpack -G DEB"
fi
echo "cpack: $(( $(date +%s) - start )) s"
deb=$(find "$work/out" -maxdepth 1 -name 'vtunnel_*.deb' -print -quit)
dev=$(find "$work/out" -maxdepth 1 -name 'vtunnel-dev_*.deb' -print -quit)
[ -n "$deb" ] && [ -n "$dev" ] || { ls -la "$work/out"; fail "expected vtunnel_*.deb and vtunnel-dev_*.deb"; }
ls -la "$deb" "$dev" | awk '{print $5, $NF}'

# --- control fields
dpkg-deb -f "$deb"
field() { dpkg-deb -f "$1" "$2"; }
# Is package $1 named in the Depends list $2 ("a (>= 1), b, c")?
in_depends() { tr ',' '\n' <<<"$2" | awk '{print $1}' | grep -qxF "$1"; }
[ "$(field "$deb" Package)" = vtunnel ] || fail "Package"
[ "$(field "$deb" Section)" = net ] || fail "Section is not net"
[ -n "$(field "$deb" Maintainer)" ] || fail "no Maintainer"
[ "$(field "$deb" Description | head -1)" = "reverse tunnel over WebSocket (SSH inside)" ] \
  || fail "Description synopsis: $(field "$deb" Description | head -1)"
[ "$(field "$dev" Description | head -1)" = "reverse tunnel over WebSocket - static libraries and headers" ] \
  || fail "vtunnel-dev Description synopsis: $(field "$dev" Description | head -1)"
# Extended description lines are indented by exactly one space ("." lines separate paragraphs).
if field "$deb" Description | tail -n +2 | grep -qv '^ [^ ]'; then fail "badly indented Description"; fi
version=$(field "$deb" Version)
depends=$(field "$deb" Depends)
[ -n "$depends" ] || fail "empty Depends"
for lib in libc6 libstdc++6 libbotan-2-19 liburing2; do
  in_depends "$lib" "$depends" || fail "Depends lacks $lib: $depends"
done

# --- contents
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/vtunnel ./usr/bin/vtunnel-server ./usr/bin/vtunnel-client \
         ./usr/share/man/man1/vtunnel.1.gz \
         ./usr/lib/systemd/system/vtunnel-server.service ./usr/lib/systemd/system/vtunnel-client.service \
         ./usr/lib/systemd/system/vtunnel-client@.service \
         ./usr/share/doc/vtunnel/examples/server.env ./usr/share/doc/vtunnel/examples/client.env; do
  grep -qxF "$f" <<<"$contents" || fail "$deb lacks $f"
done
if grep -Eq '\.a$|/include/' <<<"$contents"; then fail "headers or static libraries in the runtime package"; fi
dev_contents=$(dpkg-deb -c "$dev" | awk '{print $6}')
grep -q '/include/vtunnel/tunnel/server.hpp$' <<<"$dev_contents" || fail "vtunnel-dev lacks headers"
grep -q '/libvtunnel_tunnel\.a$' <<<"$dev_contents" || fail "vtunnel-dev lacks libvtunnel_tunnel.a"
grep -q '/pkgconfig/vtunnel\.pc$' <<<"$dev_contents" || fail "vtunnel-dev lacks vtunnel.pc"
grep -q '/cmake/vtunnel/vtunnelConfig\.cmake$' <<<"$dev_contents" || fail "vtunnel-dev lacks vtunnelConfig.cmake"
grep -q 'libbotan-2-dev' <<<"$(field "$dev" Depends)" || fail "vtunnel-dev Depends lacks libbotan-2-dev"

# --- run from a scratch root
root="$work/root"
dpkg -x "$deb" "$root"
dpkg -x "$dev" "$root"
bin="$root/usr/bin/vtunnel"
# Every library the program links directly (DT_NEEDED) comes from a package named in Depends.
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || fail "readelf found no NEEDED entries in $bin"
while read -r path; do
  pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null \
        || dpkg -S "${path#/usr}" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null || true)
  pkg=${pkg%%:*}
  [ -n "$pkg" ] || { echo "note: no package owns $path"; continue; }
  in_depends "$pkg" "$depends" || fail "$bin loads $path from $pkg, which Depends lacks"
done < <(ldd "$bin" | awk -v needed="$needed" 'BEGIN{split(needed, n, "\n"); for (i in n) want[n[i]]=1}
                                 /=> \// && ($1 in want) {print $3}')
if ldd "$bin" | grep -q 'not found'; then ldd "$bin"; fail "unresolved libraries"; fi
out=$("$bin" keygen)
echo "$out"
grep -q '^Private key (client): vt-priv-' <<<"$out" || fail "vtunnel keygen"
grep -q '^Public key (server):  vt-pub-' <<<"$out" || fail "vtunnel keygen"
"$bin" --help | grep -q 'vtunnel server \[flags\]' || fail "vtunnel --help"
[ "$("$bin" version)" = "vtunnel ${version%-*}" ] || fail "vtunnel version: $("$bin" version), package $version"
"$root/usr/bin/vtunnel-server" -h | grep -q '^Usage of vtunnel server' || fail "vtunnel-server -h"
"$root/usr/bin/vtunnel-client" -h | grep -q '^Usage of vtunnel client' || fail "vtunnel-client -h"
for u in "$root"/usr/lib/systemd/system/vtunnel-*.service; do
  grep -q '^ExecStart=/usr/bin/vtunnel ' "$u" || fail "$u: ExecStart is not /usr/bin/vtunnel"
done
zcat "$root/usr/share/man/man1/vtunnel.1.gz" | grep -q '^\.TH VTUNNEL 1' || fail "man page"
# The dev package's pkg-config file points into the root it was unpacked to.
pc=$(find "$root" -name vtunnel.pc -print -quit)
libdir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=libdir vtunnel)
includedir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=includedir vtunnel)
test -f "$libdir/libvtunnel_tunnel.a" || fail "pkg-config libdir $libdir"
test -f "$includedir/vtunnel/tunnel/client.hpp" || fail "pkg-config includedir $includedir"
echo "deb: ok ($(basename "$deb"), $(basename "$dev"))"
