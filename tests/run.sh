#!/usr/bin/env bash
# Runs every test of a meson build dir and ends with the project's summary
# line: "N passed, N failed[, N skipped]". A skipped test (exit 77: the
# host lacks what it needs) is reported as skipped, never as passed.
set -uo pipefail
build=${1:-build-test}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# ASan's leak checker needs ptrace-like rights some sandboxes lack; errors
# still abort. UBSan findings fail the test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

meson test -C "$build" --print-errorlogs --num-processes 2 "${@:2}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

count() { awk -v k="$1" -F: '$1 == k { gsub(/ /, "", $2); print $2 }' "$log" | tail -n 1; }
ok=$(count "Ok"); xfail=$(count "Expected Fail"); fail=$(count "Fail")
xpass=$(count "Unexpected Pass"); skip=$(count "Skipped"); tmo=$(count "Timeout")
passed=$(( ${ok:-0} + ${xfail:-0} ))
failed=$(( ${fail:-0} + ${xpass:-0} + ${tmo:-0} ))
skipped=${skip:-0}
if [ -z "$ok" ]; then
	echo "tests/run.sh: meson test printed no summary (exit $rc)" >&2
	failed=$(( failed + 1 ))
fi
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
