#!/usr/bin/env bash
# make bench: builds the test guests if needed and runs the start-up benchmark.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/../.." && pwd)
gbuild=$top/build-test
[ -f "$gbuild/build.ninja" ] || meson setup "$gbuild" -Db_sanitize=address,undefined -Db_lundef=false
ninja -C "$gbuild" tests/guests/hello.elf >/dev/null
exec python3 "$top/bench/start/bench_start.py" "$top/$build/kumo-vmm" "$gbuild/tests/guests/hello.elf" "${@:2}"
