#!/usr/bin/env bash
# Boots the default Debian guest (guest/build.sh) on kvm and runs a command
# in it. Needs KVM backed by hardware virtualization: on PVM or without
# /dev/kvm a stock kernel cannot boot in useful time, so the test is skipped.
# usage: linux-boot.sh KUMO_VMM CPUS
set -uo pipefail
vmm=$1 cpus=$2
dir=${KUMO_GUEST_DIR:-/var/cache/kumo/guest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -e /dev/kvm ]; then echo "SKIP: no /dev/kvm"; exit 77; fi
if ! { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } ||
   ! grep -q -w -E 'vmx|svm' /proc/cpuinfo; then
	echo "SKIP: /dev/kvm is not backed by hardware virtualization (VT-x/AMD-V)"
	exit 77
fi
[ -r "$dir/vmlinuz" ] && [ -r "$dir/initrd.img" ] || { echo "FAIL: no guest image in $dir (make guest)"; exit 1; }

timeout 120 "$vmm" -q --accel kvm --cpus "$cpus" --memory 512M \
	--kernel "$dir/vmlinuz" --initrd "$dir/initrd.img" \
	--cmdline 'console=ttyS0 panic=-1 kumo.run="grep -c ^processor /proc/cpuinfo; head -c 16 /dev/urandom | wc -c"' \
	</dev/null >"$tmp/out" 2>"$tmp/err"
status=$?
cat "$tmp/out" | tail -n 20
fail() { echo "FAIL: $*"; cat "$tmp/err"; exit 1; }
[ "$status" -eq 0 ] || fail "exit status $status, want 0 (guest power off)"
grep -q 'kumo-guest: ready' "$tmp/out" || fail "no 'kumo-guest: ready'"
grep -q 'kumo-guest: exit status 0' "$tmp/out" || fail "command failed in the guest"
grep -q -x -E "$cpus\r?" "$tmp/out" || fail "guest does not see $cpus CPUs"
echo "ok: Linux booted on kvm with $cpus vCPU(s) and powered off"
