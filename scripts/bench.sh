#!/usr/bin/env bash
# make bench: every benchmark of the project, figures printed as Markdown tables.
#
#   scripts/bench.sh [BUILD_DIR]
#   BENCH_SECONDS   seconds per rr/connect figure and for the runtime bench (default 3)
#   BENCH_SIZE      bytes per stream for the tunnel bench (default 256M; K/M/G suffixes)
#   BENCH_SCENARIOS tunnel scenarios (default upload,download,parallel,http,http-64k,connect,idle,idle-10k,slow)
#   BENCH_REPEAT    tunnel bench: runs per figure, the median reported (default 1; 3 takes ~3x as long);
#                   above 1 the implementations take turns (-interleave), so a slow phase of the
#                   host hits them all alike
#   BENCH_GO=0      skip the Go peer even if Go is installed
#   BENCH_OPENSSH=0 skip OpenSSH ssh -R (run by default as root when /usr/sbin/sshd exists)
#   BENCH_SOCAT=0   skip the plain relay baseline (socat -b131072, no crypto)
#   BENCH_CEILING=0 skip issue 7's ceiling (vtunnel-ceiling: a relay pair with AES-128-GCM only)
#   BENCH_PAIRS     more CLI-compatible pairs, space-separated NAME=SERVER_BIN,CLIENT_BIN[,vtunnel|vtpeer]
#                   (e.g. "go-original=/opt/tunnel/server,/opt/tunnel/client")
# Bounded: with the defaults the whole script takes about 6 minutes on 2 cores.
set -euo pipefail
build=${1:-build}
secs=${BENCH_SECONDS:-3}
size=${BENCH_SIZE:-256M}
scenarios=${BENCH_SCENARIOS:-upload,download,parallel,http,http-64k,connect,idle,idle-10k,slow}
here=$(cd "$(dirname "$0")/.." && pwd)

echo "## runtime (load average $(cut -d' ' -f1-3 /proc/loadavg))"
timeout 300 "$build/bench/vtunnel-bench-runtime" --seconds "$secs" --repeat 3 --json "$build/bench-runtime.json"

echo "## SSH packet codec and WebSocket frames (load average $(cut -d' ' -f1-3 /proc/loadavg))"
timeout 300 "$build/bench/vtunnel-bench-protocols" --seconds 1 --repeat 5 --json "$build/bench-protocols.json"

compare=()
if [ "${BENCH_CEILING:-1}" != 0 ] && [ -x "$build/bench/vtunnel-ceiling" ]; then
  compare=(--compare-ceiling "$build/bench/vtunnel-ceiling")
fi
if [ "${BENCH_GO:-1}" != 0 ] && command -v go >/dev/null 2>&1; then
  if "$here/tests/peers/build-gopeer.sh" "$build/gopeer" >&2; then
    compare+=(--compare-go "$build/gopeer/vtpeer")
  else
    echo "(Go peer not built: tunnel figures for ours only)" >&2
  fi
else
  echo "(no Go toolchain: tunnel figures for ours only)" >&2
fi

if [ "${BENCH_OPENSSH:-1}" != 0 ] && [ "$(id -u)" = 0 ] && [ -x /usr/sbin/sshd ] && [ -x /usr/bin/ssh ]; then
  compare+=(--compare-openssh)
fi

if [ "${BENCH_SOCAT:-1}" != 0 ] && command -v socat >/dev/null 2>&1; then
  compare+=(--compare-socat "$(command -v socat)")
fi
for pair in ${BENCH_PAIRS:-}; do
  compare+=(--pair "$pair")
done

echo
echo "## tunnel (load average $(cut -d' ' -f1-3 /proc/loadavg))"
# Ours black-box (our CLI, two processes), then the ceiling, the other pairs, OpenSSH, the Go
# peer and socat, back to back in one invocation (taking turns with BENCH_REPEAT > 1); the
# summary gives ours ÷ each of them.
repeat=${BENCH_REPEAT:-1}
interleave=()
if [ "$repeat" -gt 1 ]; then interleave=(-interleave); fi
timeout $((900 * repeat)) "$build/bench/vtunnel-bench" "$scenarios" -size "$size" -seconds "$secs" -repeat "$repeat" "${interleave[@]}" \
  --ours-bin "$build/apps/vtunnel" "${compare[@]}" --json "$build/bench-tunnel.json"
