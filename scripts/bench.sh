#!/usr/bin/env bash
# make bench: every benchmark of the project, figures printed as Markdown tables.
set -euo pipefail
build=${1:-build}
"$build/bench/vtunnel-bench-runtime" --seconds 3 --repeat 3 --json "$build/bench-runtime.json"
"$build/bench/vtunnel-bench-protocols" --seconds 1 --repeat 5 --json "$build/bench-protocols.json"
