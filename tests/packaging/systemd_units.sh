#!/usr/bin/env bash
# The systemd units as installed: `cmake --install --component runtime` into a scratch prefix
# (ExecStart then names the scratch copy of vtunnel), `systemd-analyze verify` must print
# nothing (it reports bad settings as warnings and still exits 0), and the offline security
# score must stay in systemd's "OK" band (exposure <= 2.0). Exit 77 (skipped) without
# systemd-analyze. Usage: systemd_units.sh BUILD_DIR
set -euo pipefail
build=$1
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not installed: skipped"
  exit 77
fi
work=$(mktemp -d /tmp/vtunnel-units-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --component runtime --prefix "$work/usr" >/dev/null
units=("$work"/usr/lib/systemd/system/vtunnel-{server,client,client@}.service)
for u in "${units[@]}"; do
  test -f "$u" || { echo "missing unit $u"; exit 1; }
  grep -q "^ExecStart=$work/usr/bin/vtunnel " "$u" || { echo "$u: ExecStart does not name the installed vtunnel"; exit 1; }
done
# Documentation=man:vtunnel(1) is checked too: man finds the installed page through MANPATH.
out=$(cd "$work" && MANPATH="$work/usr/share/man" systemd-analyze verify "${units[@]}" 2>&1) || {
  echo "$out"; echo "systemd-analyze verify failed"; exit 1; }
if [ -n "$out" ]; then
  echo "$out"; echo "systemd-analyze verify printed warnings"; exit 1
fi
for u in "${units[@]}"; do
  score=$(systemd-analyze security --offline=yes "$u" 2>&1 | grep 'Overall exposure level') || true
  echo "$(basename "$u"): ${score#*: }"
  systemd-analyze security --offline=yes --threshold=20 "$u" >/dev/null 2>&1 || {
    echo "$u: exposure above 2.0"; exit 1; }
done
# io_uring must get past SystemCallFilter: named in the unit, or part of @system-service.
for call in io_uring_setup io_uring_enter io_uring_register; do
  grep -q "^SystemCallFilter=.*\b$call\b" "${units[0]}" \
    || systemd-analyze syscall-filter @system-service 2>/dev/null | grep -qw "$call" \
    || { echo "$call is not allowed by the units' SystemCallFilter"; exit 1; }
done
# The example environment files: their flags parse (then -h prints the usage: exit 0), and their
# placeholder keys are rejected (exit 2, before listening or connecting), so an unedited service
# stops at once and RestartPreventExitStatus=2 keeps it stopped.
bin="$work/usr/bin/vtunnel"
examples="$work/usr/share/doc/vtunnel/examples"
env_value() { sed -n "s/^$2=//p" "$1"; }
server_args=$(env_value "$examples/server.env" VTUNNEL_SERVER_ARGS)
client_args=$(env_value "$examples/client.env" VTUNNEL_CLIENT_ARGS)
[ -n "$server_args" ] && [ -n "$client_args" ] || { echo "example env files lack the ARGS variables"; exit 1; }
# shellcheck disable=SC2086 # split like systemd splits $VAR
timeout 20 "$bin" server $server_args -h >/dev/null || { echo "server.env: bad VTUNNEL_SERVER_ARGS"; exit 1; }
# shellcheck disable=SC2086
timeout 20 "$bin" client $client_args -h >/dev/null || { echo "client.env: bad VTUNNEL_CLIENT_ARGS"; exit 1; }
rc=0
# shellcheck disable=SC2086
env -i VTUNNEL_CLIENT_KEY="$(env_value "$examples/server.env" VTUNNEL_CLIENT_KEY)" \
  timeout 20 "$bin" server $server_args -bind 127.0.0.1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || { echo "server with the example's placeholder key: exit $rc, expected 2"; exit 1; }
rc=0
# shellcheck disable=SC2086
env -i VTUNNEL_KEY="$(env_value "$examples/client.env" VTUNNEL_KEY)" \
  timeout 20 "$bin" client $client_args >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || { echo "client with the example's placeholder key: exit $rc, expected 2"; exit 1; }
echo "systemd units: ok"
