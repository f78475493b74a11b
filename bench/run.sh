#!/usr/bin/env bash
# make bench: every benchmark, kumo (release build) against QEMU on the same
# test guests. usage: bench/run.sh [BUILD_DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/${1:-build}
guests=$top/build-test/tests/guests
[ -f "$top/build-test/build.ninja" ] ||
	meson setup "$top/build-test" -Db_sanitize=address,undefined -Db_lundef=false
ninja -C "$top/build-test" tests/guests/hello.elf tests/guests/idle.elf tests/guests/exits.elf \
	tests/guests/bench_int.elf tests/guests/bench_mem.elf tests/guests/bench_interp.elf >/dev/null
python3 "$top/bench/start/bench_start.py" "$build/kumo-vmm" "$guests/hello.elf" \
	--idle-guest "$guests/idle.elf" --runs 10
echo
python3 "$top/bench/exits/bench_exits.py" "$build/kumo-vmm" "$guests/exits.elf" --runs 5
echo
# kumo's own CPU (emu) against QEMU TCG: guest MIPS
python3 "$top/bench/emu/bench_emu.py" "$build/kumo-vmm" "$guests" --runs 5
echo
# Linux (the default Debian guest) on kumo's emu against QEMU TCG: boot, sha256
"$top/guest/build.sh"
python3 "$top/bench/boot/bench_boot.py" "$build/kumo" --runs 5
echo
# Disk and network I/O of that guest, kumo emu against QEMU TCG (fio, iperf3)
"$top/guest/build.sh" --bench
python3 "$top/bench/io/bench_io.py" "$build/kumo" --runs 3
echo
# qcow2 against raw, kumo against QEMU on qcow2 (fio in the same guest)
python3 "$top/bench/io/bench_qcow2.py" "$build/kumo-vmm" --runs 3 --size 512 --qemu-raw
echo
# kumo img convert against qemu-img convert, 2 GiB
python3 "$top/bench/io/bench_convert.py" "$build/kumo" --runs 3
