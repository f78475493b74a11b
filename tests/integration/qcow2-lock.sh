#!/usr/bin/env bash
# Image locking: a kumo-vmm that has an image open keeps a second writer
# out, with a clear error, and lets readers share.
#   usage: qcow2-lock.sh KUMO_VMM IDLE_ELF CASE
# CASE:
#   kumo     kumo against kumo on a qcow2 image: a second writer is refused
#            ("in use"), a reader next to a writer too; two readers share.
#   backing  two kumo-vmm, each writing its own qcow2 overlay over one
#            shared base (the base opened read-only by both) run together;
#            a writer on the base is refused while they run.
#   qemu     kumo against QEMU's own locks (qemu-io, qemu-img): a qemu-io
#            writer is refused while kumo writes, and kumo is refused while
#            a qemu-io writer holds the image (as writer and as reader);
#            kumo and qemu-io (or qemu-img info) reading together share;
#            `qemu-img info -U` (force share) works next to a writer.
# The idle guest holds the machine (and its disks) open until SIGTERM.
set -uo pipefail
vmm=$1 elf=$2 case=$3
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	exec 7>&- 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

command -v qemu-img >/dev/null && command -v qemu-io >/dev/null ||
	{ echo "SKIP: no qemu-img/qemu-io"; exit 77; }

fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.err; do [ -e "$f" ] && { echo "--- $f"; cat "$f"; }; done
	exit 1
}

n=0
# start_vmm DISK_ARG: runs kumo-vmm with the idle guest in the background,
# waits for "idle: ready"; fails if it ends first.
start_vmm() {
	n=$((n + 1))
	"$vmm" --accel emu --memory 32M --kernel "$elf" --disk "$1" \
		</dev/null >"$tmp/vmm$n.out" 2>"$tmp/vmm$n.err" &
	pids+=($!)
	for _ in $(seq 1 300); do
		grep -q 'idle: ready' "$tmp/vmm$n.out" && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || fail "kumo-vmm --disk $1 ended: $(cat "$tmp/vmm$n.err")"
		sleep 0.1
	done
	fail "kumo-vmm --disk $1: no 'idle: ready'"
}

# refused DISK_ARG PATTERN: a second kumo-vmm on it must fail at once with
# an error matching PATTERN.
refused() {
	local st
	timeout 20 "$vmm" --accel emu --memory 32M --kernel "$elf" --disk "$1" \
		</dev/null >"$tmp/second.out" 2>"$tmp/second.err"
	st=$?
	[ "$st" -ne 0 ] && [ "$st" -ne 124 ] || fail "a second kumo-vmm --disk $1 was not refused (status $st)"
	grep -q -E "$2" "$tmp/second.err" || fail "kumo-vmm --disk $1: no error matching '$2': $(cat "$tmp/second.err")"
	echo "refused: kumo-vmm --disk $1: $(grep -E "$2" "$tmp/second.err")"
}

# runs DISK_ARG: a second kumo-vmm on it must come up (and is then stopped).
runs() {
	start_vmm "$1"
	kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null
	unset 'pids[-1]'
	echo "allowed: kumo-vmm --disk $1"
}

stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	pids=()
}

img=$tmp/disk.qcow2
qemu-img create -q -f qcow2 "$img" 16M || fail "qemu-img create"

case $case in
kumo)
	start_vmm "$img"
	refused "$img" 'in use'
	refused "$img,ro" 'in use'
	stop_all
	start_vmm "$img,ro"
	runs "$img,ro"
	refused "$img" 'in use'
	stop_all
	runs "$img"   # the locks went with the processes
	;;
backing)
	base=$tmp/base.qcow2
	qemu-img create -q -f qcow2 "$base" 16M || fail "qemu-img create base"
	for i in 1 2; do
		qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$tmp/ov$i.qcow2" ||
			fail "qemu-img create overlay $i"
	done
	start_vmm "$tmp/ov1.qcow2"
	start_vmm "$tmp/ov2.qcow2"
	echo "allowed: two kumo-vmm on two overlays of one base"
	refused "$base" 'in use'
	refused "$tmp/ov1.qcow2" 'in use'
	stop_all
	;;
qemu)
	start_vmm "$img"
	qemu-io -c 'write 0 4k' "$img" >"$tmp/qio.err" 2>&1 &&
		fail "qemu-io wrote to an image kumo-vmm has open for writing"
	echo "refused: qemu-io writer: $(head -1 "$tmp/qio.err")"
	qemu-img info -U "$img" >"$tmp/info.err" 2>&1 || fail "qemu-img info -U next to a kumo writer"
	echo "allowed: qemu-img info -U"
	stop_all
	start_vmm "$img,ro"
	qemu-io -r -c 'read 0 4k' "$img" >"$tmp/qio.err" 2>&1 ||
		fail "qemu-io -r could not read next to a kumo reader"
	echo "allowed: qemu-io -r next to kumo-vmm ,ro"
	qemu-img info "$img" >"$tmp/info.err" 2>&1 || fail "qemu-img info next to a kumo reader"
	echo "allowed: qemu-img info next to kumo-vmm ,ro"
	qemu-io -c 'write 0 4k' "$img" >"$tmp/qio.err" 2>&1 &&
		fail "qemu-io wrote to an image a kumo-vmm reads"
	echo "refused: qemu-io writer next to kumo-vmm ,ro"
	stop_all
	# qemu-io holds the image open for writing (commands from a fifo)
	mkfifo "$tmp/fifo"
	qemu-io "$img" <"$tmp/fifo" >"$tmp/qemu-io.err" 2>&1 &
	pids+=($!)
	exec 7>"$tmp/fifo"
	echo 'write 0 4k' >&7
	for _ in $(seq 1 50); do grep -q 'wrote' "$tmp/qemu-io.err" && break; sleep 0.1; done
	grep -q 'wrote' "$tmp/qemu-io.err" || fail "qemu-io did not open the image"
	refused "$img" 'in use'
	refused "$img,ro" 'in use'
	echo quit >&7
	exec 7>&-
	stop_all
	;;
*)
	fail "unknown case $case"
	;;
esac
echo "ok: locking, $case"
