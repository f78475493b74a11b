#!/usr/bin/env bash
# Boots the idle guest in the background, waits for "idle: ready", checks
# that kumo-vmm then uses (nearly) no CPU for a second (utime + stime from
# /proc/PID/stat: under 5% of one core), and that SIGTERM ends it with
# status 130. usage: idle-cpu.sh KUMO_VMM IDLE_ELF ACCEL CPUS
set -uo pipefail
vmm=$1 elf=$2 accel=$3 cpus=$4
tmp=$(mktemp -d)
pid=

# utime + stime of the process, in clock ticks (fields 14 and 15; the
# command name, field 2, is cut off first: it may hold spaces).
cpu_ticks() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	set -- $stat # now field 3 (state) is $1
	echo $(( ${12} + ${13} ))
}

now_ns() { date +%s%N; }

# Running, not gone or a zombie (kill -0 succeeds on a zombie child).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

cleanup() {
	if [ -n "$pid" ] && alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if [ "$accel" = kvm ] && [ ! -e /dev/kvm ]; then
	echo "SKIP: no /dev/kvm on this host"
	exit 77
fi

fail() {
	echo "FAIL: $*"
	echo "--- console"; cat "$tmp/out"
	echo "--- stderr"; cat "$tmp/err"
	exit 1
}

"$vmm" --accel "$accel" --cpus "$cpus" --memory 256M --kernel "$elf" \
	--cmdline "kumo test idle" </dev/null >"$tmp/out" 2>"$tmp/err" &
pid=$!

# Wait (up to 30 s) for the guest to say it is ready.
for _ in $(seq 1 300); do
	grep -q '^idle: ready$' "$tmp/out" && break
	alive "$pid" || { wait "$pid"; fail "kumo-vmm exited with status $? before 'idle: ready'"; }
	sleep 0.1
done
grep -q '^idle: ready$' "$tmp/out" || fail "no 'idle: ready' in 30 s"

hz=$(getconf CLK_TCK)
t0=$(now_ns); c0=$(cpu_ticks "$pid") || fail "kumo-vmm vanished"
sleep 1
t1=$(now_ns); c1=$(cpu_ticks "$pid") || fail "kumo-vmm vanished"
# CPU time in ms over wall time in ms, in per mille of one core.
cpu_ms=$(( (c1 - c0) * 1000 / hz )) wall_ms=$(( (t1 - t0) / 1000000 ))
permille=$(( cpu_ms * 1000 / wall_ms ))
echo "idle: kumo-vmm used $cpu_ms ms of CPU in $wall_ms ms ($(( permille / 10 )).$(( permille % 10 ))% of one core)"
[ "$permille" -lt 50 ] || fail "kumo-vmm used $cpu_ms ms of CPU in $wall_ms ms while its guest idled (limit 5%)"

kill -TERM "$pid"
status=
for _ in $(seq 1 100); do # up to 10 s
	if ! alive "$pid"; then
		wait "$pid"
		status=$?
		break
	fi
	sleep 0.1
done
[ -n "$status" ] || fail "kumo-vmm still running 10 s after SIGTERM"
pid=
cat "$tmp/out"
[ "$status" -eq 130 ] || fail "exit status $status after SIGTERM, want 130"
grep -q -E 'AddressSanitizer|runtime error' "$tmp/err" && fail "sanitizer report"
echo "ok: idle on $accel with $cpus vCPU(s): quiet while idle, exit status $status after SIGTERM"
