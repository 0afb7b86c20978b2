#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each over its committed seed corpus
# for FUZZ_SECONDS, then prints a table: target, executions, exec/s, coverage, result.
#
#   scripts/fuzz.sh [build-dir]          # FUZZ_SECONDS=60 by default
#   FUZZ_SECONDS=300 FUZZ_TARGETS="fuzz_ssh_preauth fuzz_handshake" scripts/fuzz.sh
#
# The committed corpus (fuzz/corpus/<target>/) is only read: each run works on a copy in
# <build-dir>/run/<target>/corpus, so new inputs and crash artifacts stay out of the repository.
# A crash leaves its input in <build-dir>/run/<target>/crash-* and the log next to it; the
# script then exits 1. Fix the bug and add the input under fuzz/regressions/<target>/ (replayed
# by the ctest `fuzz_regressions`).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-${FUZZ_DIR:-build-fuzz}}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
seconds="${FUZZ_SECONDS:-60}"
jobs="${JOBS:-2}"

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVTUNNEL_BUILD_FUZZ=ON -DVTUNNEL_BUILD_TESTS=OFF -DVTUNNEL_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target vtunnel_fuzzers

targets="${FUZZ_TARGETS:-$(cd "$root/fuzz/corpus" && ls)}"
rows=()
failed=0
for t in $targets; do
  bin="$(find "$build/fuzz" -type f -name "$t" -perm -u+x | head -n 1)"
  if [ -z "$bin" ]; then
    echo "fuzz: no binary for $t" >&2
    failed=1
    continue
  fi
  run="$build/run/$t"
  rm -rf "$run"
  mkdir -p "$run/corpus"
  cp "$root/fuzz/corpus/$t/"* "$run/corpus/"
  echo "fuzz: $t for ${seconds}s" >&2
  set +e
  "$bin" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 -artifact_prefix="$run/" \
    "$run/corpus" >"$run/log" 2>&1
  rc=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run/log" | tail -n 1)"
  cov="$(grep -o 'cov: [0-9]*' "$run/log" | tail -n 1 | cut -d' ' -f2)"
  if [ "$rc" -eq 0 ]; then
    result="ok"
  else
    result="FAILED (exit $rc, see $run/log)"
    failed=1
    tail -n 40 "$run/log" >&2
  fi
  rows+=("$(printf '%-26s %12s %9s %9s  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result")")
done

printf '\n%-26s %12s %9s %9s  %s\n' target executions "exec/s" coverage result
for r in "${rows[@]}"; do echo "$r"; done
exit "$failed"
