#!/usr/bin/env bash
# make demo: until the tunnel exists, runs the runtime's loopback echo demo.
set -euo pipefail
build=${1:-build}
exec "$build/apps/vtunnel-core-demo"
