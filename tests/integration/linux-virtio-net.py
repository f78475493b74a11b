#!/usr/bin/env python3
"""virtio-net with Debian's kernel and the busybox initramfs on the emu engine.

usage: linux-virtio-net.py KUMO_VMM [MIB]

In a network namespace of its own (kumo-test-PID, removed on the way out)
it creates the tap kumo-tap0 with 10.0.2.1/24, boots the guest there with
--net tap=kumo-tap0 and drives its console: the guest takes 10.0.2.2/24 on
eth0 and pings 10.0.2.1, the host side pings the guest, then MIB MiB
(default 100) go over TCP (busybox nc) host → guest, where md5sum must
match, and the same bytes back guest → host, where sha256 must match (the
guest makes no data of its own: generating it costs minutes on emu). No
traffic goes to any other address. Prints the throughput of each
direction.

Exits 77 (skipped) only when it cannot make a network namespace or a tap
(not root, no /dev/net/tun); every process it starts is killed and the
namespace removed whatever happens.
"""
import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from linuxguest import BOOT_TIMEOUT, QUIET, Console, fail, need_guest, print, vmm_args

HOST_IP, GUEST_IP = "10.0.2.1", "10.0.2.2"
TAP = "kumo-tap0"
MAC = "02:4b:4d:00:10:02"
TX_PORT, RX_PORT = 5001, 5002   # guest → host, host → guest
SEQ_N = 100000              # `seq 1 SEQ_N` is 588,895 bytes: an odd period,
                            # so no TCP segment lines up with a repeat


T0 = time.monotonic()


def say(msg):
    print("[%5.0f s] %s" % (time.monotonic() - T0, msg))


def pattern(mib):
    """What goes over the wire: seq 1 SEQ_N, over and over, mib MiB."""
    seq = "".join("%d\n" % i for i in range(1, SEQ_N + 1)).encode()
    reps = -(-(mib << 20) // len(seq))
    return (seq * reps)[:mib << 20]


def run(cmd, **kw):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60, **kw)


# ---------------------------------------------------------------- outside

def outer(vmm, mib):
    """Make the namespace, run inner() in it, clean up whatever happens."""
    if os.geteuid() != 0:
        print("SKIP: needs root for a network namespace and a tap")
        sys.exit(77)
    if not os.path.exists("/dev/net/tun"):
        print("SKIP: no /dev/net/tun")
        sys.exit(77)
    need_guest()
    ns = "kumo-test-%d" % os.getpid()
    r = run(["ip", "netns", "add", ns])
    if r.returncode != 0:
        print("SKIP: cannot create a network namespace: " + r.stdout.decode().strip())
        sys.exit(77)
    child = None

    def on_signal(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        child = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable,
                                  os.path.abspath(__file__), "--inner", vmm, str(mib)],
                                 start_new_session=True)
        status = child.wait()
    except KeyboardInterrupt:
        print("interrupted")
        status = 1
    finally:
        if child is not None:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
        # Whatever is left in the namespace (nothing should be) goes too.
        pids = run(["ip", "netns", "pids", ns]).stdout.decode().split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        r = run(["ip", "netns", "del", ns])
        if r.returncode != 0:
            print("warning: ip netns del %s: %s" % (ns, r.stdout.decode().strip()))
    sys.exit(status)


# ---------------------------------------------------------------- inside

class Receiver(threading.Thread):
    """Accepts one connection on HOST_IP:port and hashes all it gets."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST_IP, port))
        self.sock.listen(1)
        self.sha = hashlib.sha256()
        self.nbytes = 0
        self.t0 = self.t1 = None
        self.error = None

    def run(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                while True:
                    data = conn.recv(1 << 20)
                    if not data:
                        break
                    if self.t0 is None:
                        self.t0 = time.monotonic()
                    self.sha.update(data)
                    self.nbytes += len(data)
            self.t1 = time.monotonic()
        except OSError as e:
            self.error = e
        finally:
            self.sock.close()


def icmp_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def host_ping(c, count=3):
    """ICMP echo to the guest from a raw socket (no ping(8) needed)."""
    ident = os.getpid() & 0xffff
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        s.settimeout(10)
        for seq in range(1, count + 1):
            payload = b"kumo-ping-%d" % seq
            hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            pkt = struct.pack("!BBHHH", 8, 0, icmp_checksum(hdr + payload), ident, seq) + payload
            t0 = time.monotonic()
            s.sendto(pkt, (GUEST_IP, 0))
            while True:
                try:
                    data, addr = s.recvfrom(2048)
                except socket.timeout:
                    fail("the host's ping %d to the guest got no answer" % seq, c.text())
                ihl = (data[0] & 15) * 4
                typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
                if addr[0] == GUEST_IP and typ == 0 and rid == ident and rseq == seq:
                    if data[ihl + 8:] != payload:
                        fail("the guest's echo reply carries other bytes", c.text())
                    break
            print("  host → guest echo %d: %.1f ms" % (seq, (time.monotonic() - t0) * 1000))
    say("ok: the host pings the guest")


def send_to_guest(data, timeout):
    """Connect to the guest's nc -l (retrying until it listens), send data,
    half-close and wait for the guest to close. Seconds taken."""
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect((GUEST_IP, RX_PORT))
            break
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(1)
    s.settimeout(timeout)
    t0 = time.monotonic()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
    return time.monotonic() - t0


def inner(vmm, mib):
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
                ["ip", "addr", "add", HOST_IP + "/24", "dev", TAP],
                ["ip", "link", "set", TAP, "up"]):
        r = run(cmd)
        if r.returncode != 0:
            print("SKIP: %s: %s" % (" ".join(cmd), r.stdout.decode().strip()))
            sys.exit(77)
    data = pattern(mib)
    nbytes = len(data)
    want_sha = hashlib.sha256(data).hexdigest()
    want_md5 = hashlib.md5(data).hexdigest()

    c = Console(vmm_args(vmm, QUIET, extra=["--net", "tap=%s,mac=%s" % (TAP, MAC)]))
    try:
        c.expect(r"kumo-guest: ready", BOOT_TIMEOUT)
        c.send("cat /sys/class/net/eth0/address; ip addr add %s/24 dev eth0 && "
               "ip link set eth0 up && echo NET-$((6*7))" % GUEST_IP)
        c.expect(r"NET-42", 120)
        if MAC not in c.text():
            fail("eth0 does not have the MAC given with --net (%s)" % MAC, c.text())
        say("ok: eth0 is up with MAC %s" % MAC)

        c.send("ping -c 3 -W 10 %s && echo PING-$((6*7))" % HOST_IP)
        c.expect(r"PING-42", 120)
        say("ok: the guest pings the host side")
        host_ping(c)

        # host → guest into the guest's /tmp, checked there with md5sum ...
        # (stat, not wc -c: busybox wc reads 100 MB a byte at a time.)
        c.send("nc -l -p %d < /dev/null > /tmp/rx; echo GOT-$(stat -c %%s /tmp/rx)-$((6*7))" %
               RX_PORT)
        secs = send_to_guest(data, 1200)
        m = c.expect(r"GOT-(\d+)-42", 300)
        got = int(m.group(1))
        if got != nbytes:
            fail("host → guest: the guest got %d bytes, want %d" % (got, nbytes), c.text())
        say("ok: host → guest %d bytes in %.1f s, %.2f MB/s" % (nbytes, secs, nbytes / secs / 1e6))
        c.send("echo MD5 $(md5sum < /tmp/rx) END")
        m = c.expect(r"MD5 ([0-9a-f]{32}) .*?END", 1200)
        md5 = m.group(1).decode()
        if md5 != want_md5:
            fail("host → guest: md5 %s, want %s" % (md5, want_md5), c.text())
        say("ok: host → guest: md5 in the guest matches")

        # ... and the same bytes back, guest → host, checked here.
        rx = Receiver(TX_PORT)
        rx.start()
        c.send("nc %s %d < /tmp/rx; echo SENT-$?-$((6*7)); rm /tmp/rx" % (HOST_IP, TX_PORT))
        c.expect(r"SENT-(\d+)-42", 1200)
        rx.join(60)
        if rx.is_alive() or rx.error:
            fail("the host did not receive the guest's stream (%s)" % rx.error, c.text())
        if rx.nbytes != nbytes or rx.sha.hexdigest() != want_sha:
            fail("guest → host: %d bytes, sha256 %s; want %d bytes, %s" %
                 (rx.nbytes, rx.sha.hexdigest(), nbytes, want_sha), c.text())
        secs = max(rx.t1 - rx.t0, 1e-6)
        say("ok: guest → host %d bytes in %.1f s, sha256 matches, %.2f MB/s" %
            (nbytes, secs, nbytes / secs / 1e6))

        host_ping(c)  # still alive after the bulk transfers

        # The driver resets the device (unbind) and starts it again (bind).
        c.send("d=$(basename $(readlink /sys/class/net/eth0/device)); "
               "echo $d > /sys/bus/virtio/drivers/virtio_net/unbind && "
               "echo $d > /sys/bus/virtio/drivers/virtio_net/bind && sleep 1 && "
               "ip addr add %s/24 dev eth0 && ip link set eth0 up && "
               "ping -c 3 -W 10 %s && echo REBOUND-$((6*7))" % (GUEST_IP, HOST_IP))
        c.expect(r"REBOUND-42", 300)
        say("ok: the guest pings the host after a device reset (driver unbind and bind)")
        host_ping(c)
        c.send("poweroff -f")
        if c.wait_exit(120) != 0:
            fail("no clean power-off (status %s)" % c.p.poll(), c.text())
        if re.search(r"AddressSanitizer|runtime error", c.text()):
            fail("sanitizer report", c.text())
        say("ok: virtio-net on a tap: ping both ways, %.1f MB each way over TCP" % (nbytes / 1e6))
    finally:
        c.close()


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--inner":
        inner(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        sys.exit(2)
    outer(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 100)


if __name__ == "__main__":
    main()
