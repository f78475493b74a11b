#!/usr/bin/env bash
# Boots the virtio_blk test guest (tests/guests/virtio_blk.c) with a disk
# file and checks what it prints, how kumo-vmm exits, and, on the host,
# that the file holds the sectors the guest wrote and nothing else.
#   usage: virtio-blk-guest.sh KUMO_VMM GUEST_ELF ACCEL CPUS
set -uo pipefail
vmm=$1 elf=$2 accel=$3 cpus=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "$accel" = kvm ] && [ ! -e /dev/kvm ]; then
	echo "SKIP: no /dev/kvm on this host"
	exit 77
fi

if ! "$vmm" --help 2>&1 | grep -q -- '--disk'; then
	echo "SKIP: this kumo-vmm has no --disk"
	exit 77
fi

# 1 MiB + 512: a size that is not a multiple of the page. Sparse.
sectors=2049 id=kumo-vblk-test
disk=$tmp/disk.img
truncate -s $((sectors * 512)) "$disk"

timeout 60 "$vmm" --accel "$accel" --cpus "$cpus" --memory 128M --kernel "$elf" \
	--cmdline "blk.sectors=$sectors blk.id=$id" --disk "$disk,id=$id" \
	--console-log "$tmp/log" </dev/null >"$tmp/out" 2>"$tmp/err"
status=$?
cat "$tmp/out"

fail() {
	echo "FAIL: $*"
	echo "--- stderr"; cat "$tmp/err"
	exit 1
}

# 64 + the guest's code: 64 is PASS; each failure has its own code (the
# FAIL line says which, see enum fail_code in virtio_blk.c).
[ "$status" -eq 64 ] || fail "exit status $status, want 64"
grep -q -E 'AddressSanitizer|runtime error' "$tmp/err" && fail "sanitizer report"
cmp -s "$tmp/out" "$tmp/log" || fail "--console-log differs from the console"
grep -q 'TEST virtio_blk: PASS' "$tmp/out" || fail "no 'TEST virtio_blk: PASS'"
grep -q "virtio_blk: id \"$id\"" "$tmp/out" || fail "GET_ID did not return $id"

# Sectors 3..10: sector s, byte i = (s * 37 + i * 3 + 1) & 0xff; the rest
# of the file zero; its size unchanged.
python3 - "$disk" "$sectors" <<'EOF' || fail "the disk file does not hold what the guest wrote"
import sys
path, sectors = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
if len(data) != sectors * 512:
    sys.exit("disk size %d, want %d" % (len(data), sectors * 512))
for s in range(sectors):
    got = data[s * 512:(s + 1) * 512]
    want = bytes((s * 37 + i * 3 + 1) & 0xff for i in range(512)) if 3 <= s < 11 else bytes(512)
    if got != want:
        sys.exit("sector %d differs from what the guest wrote" % s)
print("host: sectors 3-10 hold the pattern, the rest is zero")
EOF
echo "ok: virtio_blk on $accel with $cpus vCPU(s)"
