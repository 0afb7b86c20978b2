#!/usr/bin/env bash
# Project lint, run by ctest (test "lint").
#
# GCC 12 (Debian 12's compiler) miscompiles a co_await that appears inside the condition of
# an if/while/switch or inside a ternary: the coroutine resumes into an invalid state and
# crashes (reproduced with a 30-line program; fixed in later GCC). Catch2's REQUIRE/CHECK
# macros put their argument into a while condition, so co_await inside them is the same bug.
# Rule: assign the awaited value to a local first, then test the local.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='(\b(if|while|switch)\s*\(.*\bco_await\b)|(\b(REQUIRE|CHECK|REQUIRE_FALSE|CHECK_FALSE)\s*\(.*\bco_await\b)|(\?.*\bco_await\b.*:)'
hits=$(grep -rnE "$pattern" src apps tests bench fuzz --include='*.cpp' --include='*.hpp' 2>/dev/null || true)
if [ -n "$hits" ]; then
  echo "co_await inside a condition (miscompiled by GCC 12; assign to a local first):"
  echo "$hits"
  exit 1
fi
echo "lint: ok"
