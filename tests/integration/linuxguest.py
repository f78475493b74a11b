"""What the Linux guest tests share: the guest image, the kumo-vmm command
line for it, one-shot boots that run a command given on the kernel command
line (kumo.run=, see guest/init), and an interactive console on a pty.

Every process started here runs in a session of its own and is killed with
its whole group on the way out, whatever happens.
"""
import functools
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

print = functools.partial(print, flush=True)

GUEST = os.environ.get("KUMO_GUEST_DIR", "/var/cache/kumo/guest")
BOOT_TIMEOUT = 900          # seconds: a sanitizer build on a loaded 2-core host
QUIET = "console=ttyS0 panic=-1 quiet"


def fail(msg, out=""):
    print("FAIL: " + msg)
    if out:
        print("---- console (last 60 lines) ----")
        print("\n".join(out.splitlines()[-60:]))
    sys.exit(1)


def need_guest(*files):
    for f in files or ("vmlinuz", "initrd.img"):
        if not os.access(os.path.join(GUEST, f), os.R_OK):
            fail("no %s in %s (make guest)" % (f, GUEST))


def vmm_args(vmm, cmdline=QUIET, cpus=1, memory="512M", initrd="initrd.img", extra=()):
    """kumo-vmm booting the guest image on the emu engine."""
    return [vmm, "-q", "--accel", "emu", "--cpus", str(cpus), "--memory", memory,
            "--kernel", os.path.join(GUEST, "vmlinuz"),
            "--initrd", os.path.join(GUEST, initrd), "--cmdline", cmdline] + list(extra)


def run_cmdline(script, extra=""):
    """A kernel command line whose init runs script then powers off. The
    kernel parses it, then sh runs it: no double quotes inside. extra:
    more parameters (e.g. kumo.root=/dev/vda)."""
    cmdline = "%s%s kumo.run=\"%s\"" % (QUIET, " " + extra if extra else "", script)
    assert '"' not in script and len(cmdline) < 2000
    return cmdline


def start(args):
    """kumo-vmm in a session of its own, its console output piped."""
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def finish(p, what, timeout=BOOT_TIMEOUT):
    """Waits for p (from start) to power off; returns the console output
    (\r removed). Fails unless it exits 0 and the guest's command did."""
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        fail("%s: no power-off within %d s" % (what, timeout), out.decode(errors="replace"))
    finally:
        kill(p)
    out = out.decode(errors="replace").replace("\r", "")
    if p.returncode != 0:
        fail("%s: exit status %d, want 0 (guest power off)" % (what, p.returncode), out)
    if "kumo-guest: exit status 0" not in out:
        fail("%s: the command failed in the guest" % what, out)
    return out


def kill(p):
    """Kills p's whole session if it still runs."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def boot_run(args, what, timeout=BOOT_TIMEOUT):
    """One boot to power-off: start() then finish()."""
    return finish(start(args), what, timeout)


class Console:
    """kumo-vmm on a pseudo-terminal: expect() what the guest prints,
    send() lines to its shell."""

    def __init__(self, args):
        self.master, slave = pty.openpty()
        self.p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                                  start_new_session=True)
        os.close(slave)
        self.buf = b""
        self.log = b""

    def drain(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            self.buf += data
            self.log += data

    def expect(self, pattern, timeout):
        rx = re.compile(pattern.encode(), re.S)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = end - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                why = "exited with %s" % self.p.poll() if self.p.poll() is not None else \
                      "waited %d s" % timeout
                fail("%s for %r" % (why, pattern), self.text())
            self.drain(min(left, 1.0))

    def send(self, line):
        os.write(self.master, line.encode() + b"\r")

    def text(self):
        return self.log.decode(errors="replace").replace("\r", "")

    def wait_exit(self, timeout):
        end = time.monotonic() + timeout
        while self.p.poll() is None and time.monotonic() < end:
            self.drain(0.5)
        return self.p.poll()

    def close(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()
        os.close(self.master)
