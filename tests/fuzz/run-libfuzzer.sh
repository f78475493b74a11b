#!/bin/sh
# Builds the fuzz targets with libFuzzer + ASan + UBSan (clang, no meson) and
# runs each for SECONDS (default 30), starting from the driver's seeds.
#
#   tests/fuzz/run-libfuzzer.sh [SECONDS]
#
# Environment: CLANG (default: clang, else clang-14), KEEP=1 to keep the
# work directory (binaries, corpora, crash files), TARGETS to run only some
# (default: bzimage elf unpack decode exec virtq virtio_blk virtio_net qcow2 vhd vmdk). Exits non-zero when a
# target crashes; the crashing input is copied to ./fuzz-crash-TARGET-*.
set -eu

seconds=${1:-30}
case $seconds in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/../.." && pwd)
cc=${CLANG:-}
if [ -z "$cc" ]; then
	for c in clang clang-14; do
		if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
	done
fi
[ -n "$cc" ] || { echo "$0: clang not found" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kumo-libfuzzer.XXXXXX")
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "work directory: $work" || rm -rf "$work"; }
trap cleanup EXIT

srcs="$top/src/common/util.c $top/src/common/log.c $top/src/vmm/bzimage.c $top/src/vmm/elf.c \
      $top/src/vmm/boot.c $top/src/vmm/e820.c $top/src/vmm/memory.c \
      $top/src/vmm/kernel_unpack.c $top/tests/fuzz/fuzz_boot.c \
      $top/tests/unit/packers.c"
libs="-llzma -lzstd -lz -llz4 -lbz2"
cflags="-std=gnu11 -D_GNU_SOURCE -g -O1 -I$top/include -I$top/tests/unit"
san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"

# The seeds come from the plain driver (no libFuzzer, no sanitizers).
# shellcheck disable=SC2086
"$cc" $cflags -o "$work/driver" "$top/tests/fuzz/driver.c" "$top/tests/fuzz/fuzz_bzimage.c" \
	"$top/tests/unit/images.c" $srcs $libs
"$work/driver" --write-seeds "$work/seeds" >/dev/null
# fuzz-unpack's seeds: compressed payloads, from its own fuzz_target_seeds().
# shellcheck disable=SC2086
"$cc" $cflags -o "$work/driver-unpack" "$top/tests/fuzz/driver.c" "$top/tests/fuzz/fuzz_unpack.c" \
	"$top/tests/unit/images.c" $srcs $libs
"$work/driver-unpack" --write-seeds "$work/seeds-unpack" >/dev/null

status=0
emu_srcs=""
for f in flags decode mmu access exec system deliver sse x87 lapic; do
	emu_srcs="$emu_srcs $top/src/emu/$f.c"
done
for target in ${TARGETS:-bzimage elf unpack decode exec virtq virtio_blk virtio_net qcow2 vhd vmdk}; do
	# The decoder (src/emu) needs none of the loaders, and short inputs;
	# the executor needs the engine's CPU parts and guest memory.
	case $target in
	decode) tsrcs="$top/src/emu/decode.c" tflags="-I$top/src/emu" max_len=64 ;;
	virtq) tsrcs="$top/src/devices/virtio/queue.c $top/src/common/util.c $top/src/vmm/memory.c" tflags='' max_len=66000 ;;
	virtio_net) tsrcs="$top/src/net/tap.c $top/src/devices/virtio/queue.c $top/src/common/util.c $top/src/common/log.c $top/src/vmm/memory.c" tflags='' max_len=4096 ;;
	exec) tsrcs="$emu_srcs $top/src/common/util.c $top/src/vmm/memory.c" tflags="-I$top/src/emu" max_len=4096 ;;
	unpack) tsrcs="$srcs $libs $top/tests/unit/images.c" tflags='' max_len=65536 ;;
	vhd|vmdk) tsrcs="$top/src/block/block.c $top/src/block/raw.c $top/src/block/qcow2.c $top/src/block/qcow2_cache.c $top/src/block/qcow2_cluster.c $top/src/block/qcow2_check.c $top/src/block/vhd.c $top/src/block/vmdk.c $top/src/block/blk_util.c $top/tests/fuzz/fuzz_blk.c $top/src/common/util.c -lz -lzstd -lpthread" tflags='' max_len=65536 ;;
	virtio_blk) tsrcs="$top/src/devices/virtio/blk_req.c $top/src/common/util.c" tflags='' max_len=4096 ;;
	qcow2) tsrcs="$top/src/common/util.c $top/src/block/block.c $top/src/block/raw.c $top/src/block/qcow2.c $top/src/block/qcow2_cache.c $top/src/block/qcow2_cluster.c $top/src/block/qcow2_check.c $top/src/block/vhd.c $top/src/block/vmdk.c $top/src/block/blk_util.c -lz -lzstd -lpthread" tflags='' max_len=65536 ;;
	*) tsrcs="$srcs $libs" tflags='' max_len=65536 ;;
	esac
	seeds=$work/seeds
	[ "$target" = unpack ] && seeds=$work/seeds-unpack
	# Targets with seeds of their own (fuzz_target_seeds) write them
	# through a plain driver built with them.
	if [ "$target" != unpack ] && grep -q '^void fuzz_target_seeds' "$top/tests/fuzz/fuzz_$target.c"; then
		# shellcheck disable=SC2086
		"$cc" $cflags $tflags -o "$work/driver-$target" "$top/tests/fuzz/driver.c" \
			"$top/tests/fuzz/fuzz_$target.c" "$top/tests/unit/images.c" \
			"$top/tests/unit/packers.c" $tsrcs $libs
		"$work/driver-$target" --write-seeds "$work/seeds-$target" >/dev/null
		seeds=$work/seeds-$target
	fi
	# shellcheck disable=SC2086
	"$cc" $cflags $tflags $san -o "$work/fuzz-$target" "$top/tests/fuzz/fuzz_$target.c" $tsrcs
	mkdir -p "$work/corpus-$target" "$work/artifacts-$target"
	cp "$seeds/"* "$work/corpus-$target/"
	echo "== fuzz-$target: $seconds s"
	if ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
	   UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	   "$work/fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
		-max_len="$max_len" -print_final_stats=1 \
		-artifact_prefix="$work/artifacts-$target/" \
		"$work/corpus-$target" >"$work/log-$target" 2>&1; then
		grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$work/log-$target" || true
		echo "   ok, corpus: $(ls "$work/corpus-$target" | wc -l) inputs"
	else
		status=1
		tail -n 60 "$work/log-$target"
		for f in "$work/artifacts-$target/"*; do
			[ -e "$f" ] || continue
			cp "$f" "./fuzz-crash-$target-$(basename "$f")"
			echo "   saved ./fuzz-crash-$target-$(basename "$f")"
		done
		echo "   FAILED: fuzz-$target"
	fi
done
exit $status
