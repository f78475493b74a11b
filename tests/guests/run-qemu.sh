#!/bin/sh
# Runs a test guest on QEMU with the PVH boot, serial on stdio, the
# test-exit device at port 0xf4. Exits with QEMU's status: (code << 1) | 1
# for guest_exit(code) (so 1 = PASS, 3 = FAIL), 0 for power-off or reset.
#
#   run-qemu.sh [-M pc|microvm] [-a tcg|kvm] [-m MiB] [-s CPUS] GUEST.elf [CMDLINE [QEMU-ARGS...]]
set -eu
machine=pc accel=tcg mem=256 cpus=1
while getopts M:a:m:s: opt; do
	case $opt in
	M) machine=$OPTARG ;;
	a) accel=$OPTARG ;;
	m) mem=$OPTARG ;;
	s) cpus=$OPTARG ;;
	*) sed -n 's/^#   //p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n 's/^#   //p' "$0" >&2; exit 2; }
elf=$1
shift
cmdline=${1:-}
[ $# -gt 0 ] && shift
cpu=max
[ "$accel" = kvm ] && cpu=host
exec qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -M "$machine" -nodefaults -nographic \
	-serial stdio -no-reboot -m "$mem" -smp "$cpus" \
	-device isa-debug-exit,iobase=0xf4,iosize=4 \
	-kernel "$elf" -append "$cmdline" "$@"
