#!/usr/bin/env bash
# Boots the bzimage test guest (a small bzImage, tests/guests/mkbzimage.py)
# through kumo's Linux 64-bit boot protocol path with an initrd of
# pseudo-random bytes and a command line, and checks what the guest saw:
# the initrd's size and FNV-1a 32-bit hash (computed here too), the command
# line, the RAM, and exit status 64 (PASS).
#
# With FORMAT and UNPACK, BZIMAGE carries the guest's ELF as a compressed
# payload (mkbzimage.py --compress FORMAT) and kumo runs with
# --kernel-unpack UNPACK: host must unpack it and enter the ELF (the guest
# sees no payload in its memory), guest must load the bzImage as it is.
# Without them, the plain bzimage (no payload) must boot as it is.
# usage: bzimage-boot.sh KUMO_VMM BZIMAGE ACCEL CPUS [FORMAT UNPACK]
set -uo pipefail
vmm=$1 image=$2 accel=$3 cpus=$4 format=${5:-} unpack=${6:-host}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "$accel" = kvm ] && [ ! -e /dev/kvm ]; then
	echo "SKIP: no /dev/kvm on this host"
	exit 77
fi

if [ -n "$format" ] && [ -z "$image" ]; then
	echo "SKIP: the $format variant of the bzimage guest was not built (is the $format program installed?)"
	exit 77
fi

mem=128M want_mib=128
initrd_size=$(( 300 * 1024 + 123 )) # not a multiple of a page
cmdline="console=ttyS0 kumo.test=bzimage root=/dev/ram0 the_end"

# The initrd, and its hash: "SIZE 0xHASH".
want=$(python3 - "$tmp/initrd" "$initrd_size" <<'EOF'
import random, sys
data = random.Random(20240601).randbytes(int(sys.argv[2]))
open(sys.argv[1], "wb").write(data)
h = 0x811C9DC5
for b in data:
    h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
print(f"{len(data)} 0x{h:08x}")
EOF
) || { echo "FAIL: could not write the initrd"; exit 1; }

timeout 60 "$vmm" -v --kernel-unpack "$unpack" \
	--accel "$accel" --cpus "$cpus" --memory "$mem" --kernel "$image" \
	--initrd "$tmp/initrd" --cmdline "$cmdline" --console-log "$tmp/log" \
	</dev/null >"$tmp/out" 2>"$tmp/err"
status=$?
cat "$tmp/out"

fail() {
	echo "FAIL: $*"
	echo "--- stderr"; cat "$tmp/err"
	exit 1
}

[ "$status" -eq 64 ] || fail "exit status $status, want 64"
grep -q -E 'AddressSanitizer|runtime error' "$tmp/err" && fail "sanitizer report"
cmp -s "$tmp/out" "$tmp/log" || fail "--console-log differs from the console"
grep -q '^TEST bzimage: PASS$' "$tmp/out" || fail "no 'TEST bzimage: PASS'"
grep -q '^bzimage: 64-bit mode, paging on, interrupts off$' "$tmp/out" || fail "the guest did not check its mode"
grep -q -F "bzimage: cmdline at 0x20000: $cmdline" "$tmp/out" ||
	fail "command line not passed to the guest (want '$cmdline')"
got=$(sed -n 's/^bzimage: initrd \([0-9]*\) bytes fnv1a32 \(0x[0-9a-f]*\)$/\1 \2/p' "$tmp/out")
[ "$got" = "$want" ] || fail "the guest saw the initrd as '${got:-nothing}', want '$want' (size, FNV-1a)"
mib=$(sed -n 's/^bzimage: \([0-9]*\) MiB of RAM$/\1/p' "$tmp/out")
[ "$mib" = "$want_mib" ] || fail "the guest saw ${mib:-no} MiB of RAM, want $want_mib"
unpacked='unpacked on the host'
if [ -z "$format" ]; then
	grep -q '^bzimage: no compressed payload$' "$tmp/out" || fail "the plain bzimage reports a payload"
	grep -q -F "$unpacked" "$tmp/err" && fail "kumo says it unpacked a bzImage that has no payload"
	grep -q -F 'booting the bzImage as it is' "$tmp/err" || fail "kumo did not say it boots the bzImage as it is"
elif [ "$unpack" = host ]; then
	grep -q '^bzimage: payload .*: not in memory (unpacked by the loader)$' "$tmp/out" ||
		fail "with --kernel-unpack host the guest still saw its compressed payload"
	grep -q -F "kernel: $format payload $unpacked" "$tmp/err" || fail "kumo did not say it unpacked the $format payload"
else
	grep -q '^bzimage: payload .*: in memory (loaded as it is)$' "$tmp/out" ||
		fail "with --kernel-unpack guest the payload is not where the bzImage put it"
	grep -q -F "$unpacked" "$tmp/err" && fail "kumo unpacked the payload with --kernel-unpack guest"
fi
echo "ok: bzimage${format:+ ($format, --kernel-unpack $unpack)} on $accel with $cpus vCPU(s): initrd $want, exit status $status"
