#!/usr/bin/env bash
# One bad input per call: kumo-vmm must say why in one line and exit with
# the documented status, never crash. usage: cli-errors.sh KUMO_VMM GUEST_ELF CASE
set -uo pipefail
vmm=$1 guest=$2 case=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect STATUS PATTERN -- ARGS...: run, compare status and stderr.
expect() {
	local want=$1 pattern=$2; shift 3
	timeout 20 ${RUNAS:-} "$vmm" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	local got=$?
	if [ "$got" -ne "$want" ] || ! grep -q -- "$pattern" "$tmp/err"; then
		echo "FAIL $case: status $got (want $want), stderr:"; cat "$tmp/err"
		exit 1
	fi
	if grep -q -E 'AddressSanitizer|runtime error' "$tmp/err"; then
		echo "FAIL $case: sanitizer report"; cat "$tmp/err"; exit 1
	fi
	echo "ok $case: $(grep -v '^kumo: [a-z]* engine' "$tmp/err" | head -n 1)"
}

# mkbz FILE SIZE XLOADFLAGS: a bzImage header (4 setup sectors) in SIZE bytes.
mkbz() {
	python3 - "$@" <<'PY'
import struct, sys
b = bytearray(int(sys.argv[2], 0))
b[0x1f1] = 4; b[0x1fe:0x200] = b'\x55\xaa'; b[0x202:0x206] = b'HdrS'
b[0x206:0x208] = struct.pack('<H', 0x020f); b[0x211] = 1; b[0x236] = int(sys.argv[3])
open(sys.argv[1], 'wb').write(b)
PY
}

need_kvm() { [ -e /dev/kvm ] || { echo "SKIP: no /dev/kvm"; exit 77; }; }

case $case in
help)
	timeout 5 "$vmm" --help >"$tmp/out" || { echo "FAIL: --help status $?"; exit 1; }
	grep -q -- '--kernel' "$tmp/out" || { echo "FAIL: --help lists no --kernel"; exit 1; }
	echo "ok help" ;;
no-kvm)
	KUMO_KVM_DEVICE=$tmp/nonexistent expect 1 'no /dev/kvm' -- --accel kvm --kernel "$guest" ;;
not-kvm)
	KUMO_KVM_DEVICE=/dev/null expect 1 'does not answer like KVM' -- --accel kvm --kernel "$guest" ;;
kvm-permission)
	need_kvm
	command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to drop to nobody"; exit 77; }
	[ -z "$(find /dev/kvm -perm -o+rw)" ] || { echo "SKIP: /dev/kvm is open to all"; exit 77; }
	cp "$guest" "$tmp/guest.elf"; chmod 755 "$tmp"; chmod 644 "$tmp/guest.elf"
	cp "$vmm" "$tmp/vmm"; chmod 755 "$tmp/vmm"; vmm=$tmp/vmm
	# as nobody, /dev/kvm (0600 root, or 0660 group kvm) cannot be opened
	RUNAS="setpriv --reuid=nobody --regid=nogroup --clear-groups" \
		expect 1 'no permission to open /dev/kvm' -- --accel kvm --kernel "$tmp/guest.elf" ;;
kernel-missing)
	expect 1 'cannot read the kernel image' -- --kernel "$tmp/none" ;;
kernel-directory)
	expect 1 'kernel is not a regular file' -- --kernel "$tmp" ;;
kernel-junk)
	head -c 100000 /dev/urandom >"$tmp/junk"
	expect 1 'neither a bzImage nor an ELF64' -- --kernel "$tmp/junk" ;;
kernel-truncated-elf)
	head -c 100 "$guest" >"$tmp/short"
	expect 1 'truncated ELF' -- --kernel "$tmp/short" ;;
kernel-truncated-bzimage)
	# a setup header that promises more than the file has
	mkbz "$tmp/bz" 0x400 1
	expect 1 'truncated bzImage' -- --kernel "$tmp/bz" ;;
kernel-32bit-bzimage)
	mkbz "$tmp/bz" 0x2000 0
	expect 1 'no 64-bit entry' -- --kernel "$tmp/bz" ;;
initrd-too-big)
	truncate -s 20M "$tmp/initrd"
	expect 1 'initrd does not fit' -- --kernel "$guest" --initrd "$tmp/initrd" --memory 16M ;;
initrd-missing)
	expect 1 'cannot read the initrd' -- --kernel "$guest" --initrd "$tmp/none" ;;
too-many-cpus)
	expect 2 'cpus must be a number from 1 to 64' -- --kernel "$guest" --cpus 65 ;;
zero-cpus)
	expect 2 'cpus must be a number from 1 to 64' -- --kernel "$guest" --cpus 0 ;;
memory-junk)
	expect 2 'memory must be a size' -- --kernel "$guest" --memory 12Q ;;
memory-too-big)
	expect 2 'memory must be between' -- --kernel "$guest" --memory 2T ;;
memory-unmappable)
	# AddressSanitizer needs an unlimited address space for its shadow.
	if grep -q __asan_init "$vmm"; then echo "SKIP: cannot limit an ASan build's address space"; exit 77; fi
	# within kumo's limit, beyond what this process may map
	(ulimit -v $((4 * 1024 * 1024)); expect 1 'cannot map that much guest memory' -- \
		--kernel "$guest" --memory 512G) ;;
bad-accel)
	expect 2 'accel must be auto, kvm or emu' -- --kernel "$guest" --accel tcg ;;
bad-kernel-unpack)
	expect 2 'kernel-unpack must be host or guest' -- --kernel "$guest" --kernel-unpack qemu ;;
unknown-option)
	expect 2 'unknown option' -- --kernel "$guest" --frobnicate ;;
cmdline-too-long)
	expect 1 'command line too long' -- --kernel "$guest" --cmdline "$(head -c 70000 /dev/zero | tr '\0' x)" ;;
disk-missing)
	expect 1 "disk $tmp/none: no such file" -- --kernel "$guest" --disk "$tmp/none" ;;
disk-directory)
	expect 1 "disk $tmp: not a regular file or block device" -- --kernel "$guest" --disk "$tmp" ;;
disk-bad-option)
	truncate -s 1M "$tmp/disk"
	expect 2 'disk takes PATH\[,ro\]\[,id=NAME\]\[,format=FMT\]' -- --kernel "$guest" --disk "$tmp/disk,rw" ;;
disk-bad-format)
	truncate -s 1M "$tmp/disk"
	expect 2 'disk format= must be raw, qcow2, vpc or vmdk' -- --kernel "$guest" --disk "$tmp/disk,format=vdi" ;;
disk-format-mismatch)
	truncate -s 1M "$tmp/disk"
	expect 1 "disk $tmp/disk: not a qcow2 image" -- --kernel "$guest" --disk "$tmp/disk,format=qcow2" ;;
disk-bad-id)
	truncate -s 1M "$tmp/disk"
	expect 2 'disk id= must be 1 to 20' -- --kernel "$guest" --disk "$tmp/disk,id=123456789012345678901" ;;
disk-twice)
	# one writer per image: the second --disk of the same file is refused
	truncate -s 1M "$tmp/disk"
	expect 1 "disk $tmp/disk: in use (locked)" -- --kernel "$guest" --disk "$tmp/disk" --disk "$tmp/disk" ;;
disk-too-many)
	truncate -s 1M "$tmp/disk"
	set --
	for i in $(seq 17); do set -- "$@" --disk "$tmp/disk,ro"; done
	expect 2 'at most 16 disks' -- --kernel "$guest" "$@" ;;
net-bad-mac)
	expect 2 "--net: 'zz:00:00:00:00:01' is not a MAC address" -- --kernel "$guest" \
		--net tap=kumo0,mac=zz:00:00:00:00:01 ;;
net-multicast-mac)
	expect 2 "--net: '01:00:5e:00:00:01' is a multicast MAC address" -- --kernel "$guest" \
		--net tap=kumo0,mac=01:00:5e:00:00:01 ;;
net-bad-option)
	expect 2 "--net: unknown option 'user'" -- --kernel "$guest" --net user ;;
net-no-tap)
	expect 2 '--net: tap=NAME is missing' -- --kernel "$guest" --net mac=02:00:00:00:00:01 ;;
net-long-name)
	expect 2 "--net: the tap name '0123456789abcdef' must be 1-15 characters" -- \
		--kernel "$guest" --net tap=0123456789abcdef ;;
net-too-many)
	args=()
	for i in 0 1 2 3 4 5 6 7 8; do args+=(--net "tap=kumo$i"); done
	expect 2 '--net: at most 8 NICs' -- --kernel "$guest" "${args[@]}" ;;
net-fd-not-tap)
	expect 1 'tap fd 3 is not a tap device' -- --accel emu --kernel "$guest" --net fd=3 3<"$guest" ;;
net-two-nics)
	# Two NICs on taps kumo creates in a private network namespace: the
	# machine builds, runs the guest and tears down cleanly (ASan checks).
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root for a network namespace"; exit 77; }
	command -v unshare >/dev/null || { echo "SKIP: no unshare"; exit 77; }
	[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
	unshare -n true 2>/dev/null || { echo "SKIP: cannot make a network namespace"; exit 77; }
	RUNAS="unshare -n" expect 64 '' -- --accel emu --kernel "$guest" \
		--net tap=kumo0 --net tap=kumo1,mac=02:4b:4d:00:00:09 ;;
net-tap-cannot-create)
	# '/' is not allowed in an interface name: TUNSETIFF refuses it, so
	# nothing is created on this host.
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to open /dev/net/tun"; exit 77; }
	[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
	expect 1 'cannot create tap kumo/bad: Invalid argument' -- --accel emu --kernel "$guest" \
		--net tap=kumo/bad ;;
*)
	echo "unknown case $case"; exit 1 ;;
esac
