#!/usr/bin/env bash
# Boots one freestanding test guest on one engine and checks what it prints
# and how kumo-vmm exits. usage: run-guest.sh KUMO_VMM GUEST_ELF NAME ACCEL CPUS
set -uo pipefail
vmm=$1 elf=$2 name=$3 accel=$4 cpus=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "$accel" = kvm ] && [ ! -e /dev/kvm ]; then
	echo "SKIP: no /dev/kvm on this host"
	exit 77
fi

mem=256M input=/dev/null want_status=64 args=()
case $name in
echo)
	# 12 KiB: more than the UART's FIFO, so input must wait for the guest
	{ printf 'hello kumo\n'; for i in $(seq 1 300); do echo "line $i abcdefghijklmnopqrstuvwxyz0123456789"; done
	  echo quit; } >"$tmp/in"; input=$tmp/in ;;
memory) mem=${MEMORY:-1G} ;;
poweroff) want_status=0 ;;
reset) want_status=3 ;;
esac

timeout 60 "$vmm" --accel "$accel" --cpus "$cpus" --memory "$mem" --kernel "$elf" \
	--cmdline "kumo test $name" --console-log "$tmp/log" "${args[@]}" \
	<"$input" >"$tmp/out" 2>"$tmp/err"
status=$?
cat "$tmp/out"

fail() {
	echo "FAIL: $*"
	echo "--- stderr"; cat "$tmp/err"
	exit 1
}

[ "$status" -eq "$want_status" ] || fail "exit status $status, want $want_status"
grep -q -E 'AddressSanitizer|runtime error' "$tmp/err" && fail "sanitizer report"
cmp -s "$tmp/out" "$tmp/log" || fail "--console-log differs from the console"

case $name in
poweroff) grep -q 'poweroff: bye' "$tmp/out" || fail "no 'poweroff: bye'" ;;
reset) grep -q 'reset: bye' "$tmp/out" || fail "no 'reset: bye'" ;;
*) grep -q "TEST $name: PASS" "$tmp/out" || fail "no 'TEST $name: PASS'" ;;
esac

case $name in
hello)
	grep -q 'kumo test hello' "$tmp/out" || fail "command line not passed to the guest" ;;
echo)
	grep -q 'echo: hello kumo' "$tmp/out" || fail "input not echoed"
	n=$(grep -c '^echo: line [0-9]* abcdefghijklmnopqrstuvwxyz0123456789$' "$tmp/out")
	[ "$n" -eq 300 ] || fail "$n of 300 lines echoed" ;;
smp)
	n=$(grep -c 'smp: cpu [0-9]* (apic id [0-9]*) online' "$tmp/out")
	[ "$n" -eq "$cpus" ] || fail "$n CPUs online, want $cpus" ;;
exits)
	# The lines the benchmark parses; the doorbell must have counted
	# every write (the default n=20000).
	grep -q -E '^exits: tsc_khz [1-9][0-9]*$' "$tmp/out" || fail "no 'exits: tsc_khz K' line"
	grep -q -E '^exits: userspace 20000 in [1-9][0-9]* ns$' "$tmp/out" || fail "no 'exits: userspace 20000 in T ns' line"
	grep -q -E '^exits: ioeventfd 20000 in [1-9][0-9]* ns$' "$tmp/out" || fail "no 'exits: ioeventfd 20000 in T ns' line"
	grep -q '^exits: doorbell count 20000$' "$tmp/out" || fail "the doorbell count was not checked" ;;
memory)
	mib=$(sed -n 's/.*memory: \([0-9]*\) MiB of RAM.*/\1/p' "$tmp/out")
	want=$(( $(numfmt --from=iec "$mem") / 1048576 ))
	[ -n "$mib" ] && [ $(( mib - want )) -le 1 ] && [ $(( want - mib )) -le 1 ] ||
		fail "guest saw ${mib:-no} MiB, want $want" ;;
esac
# A guest that could not carry out some of its checks on this host (KVM's
# instruction emulator under PVM) passed only in part: that is a skip.
if grep -q 'skipped (the host does not emulate it)' "$tmp/out"; then
	echo "SKIP: $name on $accel: some checks need hardware virtualization:"
	grep 'skipped (the host does not emulate it)' "$tmp/out"
	exit 77
fi
echo "ok: $name on $accel with $cpus vCPU(s), exit status $status"
