#!/usr/bin/env python3
"""The console on a real terminal (a pty): raw mode while the guest runs,
input reaches the guest, C-a h prints help, C-a x quits with status 130,
and the terminal's settings come back exactly as they were.

usage: console.py KUMO_VMM ECHO_GUEST_ELF
"""
import os, pty, select, subprocess, sys, termios, time

vmm, guest = sys.argv[1], sys.argv[2]
# the console is the same on both engines; emu runs the echo guest anywhere
accel = "kvm" if os.path.exists("/dev/kvm") else "emu"


def read_until(fd, want, timeout=20.0):
    buf, end = b"", time.time() + timeout
    while want not in buf:
        left = end - time.time()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise SystemExit(f"FAIL: timed out waiting for {want!r}; got {buf!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            raise SystemExit(f"FAIL: console closed waiting for {want!r}; got {buf!r}")
        buf += chunk
    return buf


master, slave = pty.openpty()
before = termios.tcgetattr(slave)  # cooked, as the child finds it
child = subprocess.Popen([vmm, "-q", "--accel", accel, "--kernel", guest],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
read_until(master, b"echo: ready")
during = termios.tcgetattr(slave)
if during[3] & termios.ICANON or during[3] & termios.ECHO:
    raise SystemExit("FAIL: terminal not in raw mode while the guest runs")
os.write(master, b"typed on a tty\r")
read_until(master, b"echo: typed on a tty")
os.write(master, b"\x01h")
read_until(master, b"C-a x")
os.write(master, b"\x01x")
try:
    code = child.wait(timeout=20)
except subprocess.TimeoutExpired:
    child.kill()
    raise SystemExit("FAIL: C-a x did not quit")
after = termios.tcgetattr(slave)
if code != 130:
    raise SystemExit(f"FAIL: C-a x exit status {code}, want 130")
if after != before:
    raise SystemExit(f"FAIL: terminal settings not restored:\n{before}\n{after}")
print("ok: raw mode, input, C-a h, C-a x (130), terminal restored")
