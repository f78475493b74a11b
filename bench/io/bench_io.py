#!/usr/bin/env python3
"""Disk and network I/O of a Linux guest on kumo's emu engine and on QEMU
TCG: the same Debian kernel, the same benchmark initramfs (busybox + fio +
iperf3, `guest/build.sh --bench`), the same disk file, each VMM's userspace
virtio-blk-pci and virtio-net-pci on a tap (QEMU without vhost), in one
run, alternating, medians of N runs, ratios kumo/QEMU (>1: kumo faster).

Per boot, in the guest (fio --output-format=json, iperf3 -J):
  seq-read    1 MiB blocks, O_DIRECT, psync, 10 s, MB/s
  seq-write   1 MiB blocks, O_DIRECT, psync, 10 s, MB/s
  rand-read   4 KiB blocks, O_DIRECT, io_uring, queue depth 32, 10 s, IOPS
  tcp-tx      guest -> host, iperf3 10 s, Mbit/s (as the receiver saw it)
  tcp-rx      host -> guest, iperf3 -R 10 s, Mbit/s

The network lives in a namespace this script makes (kumo-bench-io-PID):
the VMM runs inside it and creates its tap there; the host side of the tap
gets 10.0.2.1/24, the guest 10.0.2.2/24, and iperf3 -s listens on the host
side. No traffic leaves the namespace. The namespace, the disk file, the
iperf3 server and every VMM process are removed on the way out, whatever
happens (needs root for the namespace and the tap).

kumo:  KUMO run -q --accel emu --cpus 1 --memory MEM --kernel vmlinuz
       --initrd initrd-bench.img --disk FILE --net tap=kbio0 --cmdline ...
QEMU:  qemu-system-x86_64 -accel tcg -M q35 -smp 1 -m MEM -nodefaults
       -no-user-config -nographic -serial stdio -no-reboot -kernel vmlinuz
       -initrd initrd-bench.img -append ...
       -drive file=FILE,if=none,id=d0,format=raw,cache=none,aio=threads
       -device virtio-blk-pci,drive=d0
       -netdev tap,id=n0,ifname=kbio0,script=no,downscript=no,vhost=off
       -device virtio-net-pci,netdev=n0

usage: bench_io.py KUMO [--guest-dir DIR] [--runs 3] [--only kumo|qemu]
       [--memory 512M] [--disk-size 512M] [--seconds 10] [--timeout 1200]
       [--stall S] [--json]
"""
import argparse, json, os, re, selectors, shutil, signal, statistics, subprocess
import sys, tempfile, time

TAP = "kbio0"
HOST_IP, GUEST_IP = "10.0.2.1", "10.0.2.2"
CMDLINE = "console=ttyS0 panic=-1 quiet"


def guest_script(seconds, disk_mib):
    """The command /init runs (kumo.run=): no double quotes inside."""
    fio = ("fio --name=b --filename=/dev/vda --direct=1 --time_based --runtime=%d "
           "--size=%dM --output-format=json" % (seconds, disk_mib))
    steps = [
        "ip addr add %s/24 dev eth0" % GUEST_IP, "ip link set eth0 up",
        # Wait for the host side to answer before timing anything.
        "for i in $(seq 60); do ping -c1 -W1 %s >/dev/null && break; done" % HOST_IP,
        "echo kumo-bench: seq-read-begin; %s --rw=read --bs=1M --ioengine=psync; "
        "echo kumo-bench: seq-read-end" % fio,
        "echo kumo-bench: seq-write-begin; %s --rw=write --bs=1M --ioengine=psync; "
        "echo kumo-bench: seq-write-end" % fio,
        "echo kumo-bench: rand-read-begin; %s --rw=randread --bs=4k --ioengine=io_uring "
        "--iodepth=32; echo kumo-bench: rand-read-end" % fio,
        "echo kumo-bench: tcp-tx-begin; iperf3 -J -c %s -t %d; echo kumo-bench: tcp-tx-end"
        % (HOST_IP, seconds),
        "echo kumo-bench: tcp-rx-begin; iperf3 -J -R -c %s -t %d; echo kumo-bench: tcp-rx-end"
        % (HOST_IP, seconds),
    ]
    return "; ".join(steps)


class RunError(Exception):
    pass


def sh(*argv, check=True):
    return subprocess.run(argv, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


class Netns:
    """A namespace with an iperf3 server; the tap comes from the VMM."""

    def __init__(self):
        self.name = "kumo-bench-io-%d" % os.getpid()
        self.server = None
        sh("ip", "netns", "add", self.name)
        sh("ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up")

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def wait_tap(self, timeout=30):
        """Give the VMM's tap the host address once it exists."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if sh(*self.prefix(), "ip", "link", "show", TAP, check=False).returncode == 0:
                sh(*self.prefix(), "ip", "addr", "replace", HOST_IP + "/24", "dev", TAP)
                sh(*self.prefix(), "ip", "link", "set", TAP, "up")
                return
            time.sleep(0.05)
        raise RunError("the VMM created no tap %s" % TAP)

    def start_server(self):
        self.stop_server()
        self.server = subprocess.Popen(self.prefix() + ["iperf3", "-s"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)

    def stop_server(self):
        if self.server and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait()
        self.server = None

    def close(self):
        self.stop_server()
        # Anything still running in the namespace goes with it.
        pids = sh("ip", "netns", "pids", self.name, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", self.name, check=False)


def run_vm(argv, ns, timeout, stall):
    """Runs argv in the namespace until the guest's exit line; returns the
    console text. Fails after timeout seconds in all, or once a phase has
    begun (a kumo-bench: line) and no other such line came for stall
    seconds: a guest that stopped making progress."""
    buf, lines = b"", []
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    marker_t, phase = None, None
    p = subprocess.Popen(ns.prefix() + argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=err, start_new_session=True)
    try:
        ns.wait_tap()
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        while not any(l.startswith("kumo-guest: exit status") for l in lines[-3:]):
            now = time.perf_counter()
            left = t0 + timeout - now
            if left <= 0:
                raise RunError("timed out after %.0f s" % timeout)
            if marker_t is not None and now - marker_t > stall:
                raise RunError("no progress for %.0f s after \"%s\"" % (stall, phase))
            if not sel.select(min(left, 1.0)):
                continue
            data = os.read(p.stdout.fileno(), 65536)
            if not data:
                p.wait()
                raise RunError("exited with status %d before the end" % p.returncode)
            buf += data
            *done, buf = buf.split(b"\n")
            new = [r.decode(errors="replace").rstrip("\r") for r in done]
            for l in new:
                if l.startswith("kumo-bench: "):
                    marker_t, phase = time.perf_counter(), l
            lines += new
        return "\n".join(lines)
    except RunError as e:
        err.seek(0)
        e.tail = "\n".join(lines[-25:]) + "\n" + err.read().decode(errors="replace")[-2000:]
        raise
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        err.close()


def section(out, name):
    m = re.search(r"^kumo-bench: %s-begin\n(.*?)^kumo-bench: %s-end" % (name, name), out,
                  re.M | re.S)
    if not m:
        raise RunError("no %s section in the guest's output" % name)
    text = m.group(1)
    start = text.find("{")
    if start < 0:
        raise RunError("%s: no JSON:\n%s" % (name, text[-1500:]))
    try:
        return json.loads(text[start:text.rfind("}") + 1])
    except ValueError:
        raise RunError("%s: bad JSON:\n%s" % (name, text[-1500:]))


def measure(argv, ns, timeout, stall):
    ns.start_server()
    out = run_vm(argv, ns, timeout, stall)
    r = {}
    for name, rw, key in (("seq-read", "read", "bw_bytes"), ("seq-write", "write", "bw_bytes"),
                          ("rand-read", "read", "iops")):
        j = section(out, name)
        job = j["jobs"][0]
        if job.get("error"):
            raise RunError("fio %s: error %s" % (name, job["error"]))
        v = job[rw][key]
        r[name] = v / 1e6 if key == "bw_bytes" else v
    for name in ("tcp-tx", "tcp-rx"):
        j = section(out, name)
        if "error" in j:
            raise RunError("iperf3 %s: %s" % (name, j["error"]))
        r[name] = j["end"]["sum_received"]["bits_per_second"] / 1e6
    return r


UNITS = {"seq-read": "MB/s", "seq-write": "MB/s", "rand-read": "IOPS", "tcp-tx": "Mbit/s",
         "tcp-rx": "Mbit/s"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kumo", help="the kumo binary (build/kumo)")
    ap.add_argument("--guest-dir", default=os.environ.get("KUMO_GUEST_DIR", "/var/cache/kumo/guest"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=["kumo", "qemu"])
    ap.add_argument("--memory", default="512M")
    ap.add_argument("--disk-size", default="512M")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=1200, help="seconds per run")
    ap.add_argument("--stall", type=float,
                    help="seconds a phase may go without output (default 10 x --seconds + 120)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid() != 0:
        sys.exit("bench: needs root (network namespace and tap)")
    kernel, initrd = a.guest_dir + "/vmlinuz", a.guest_dir + "/initrd-bench.img"
    for f in (kernel, initrd):
        if not os.access(f, os.R_OK):
            sys.exit("bench: no %s (guest/build.sh --bench)" % f)
    for prog in ("iperf3", "qemu-system-x86_64"):
        if not shutil.which(prog) and not (prog.startswith("qemu") and a.only == "kumo"):
            sys.exit("bench: %s not found (make deps)" % prog)
    disk_mib = int(a.disk_size.rstrip("M"))
    cmdline = '%s kumo.run="%s"' % (CMDLINE, guest_script(a.seconds, disk_mib))

    tmp = tempfile.mkdtemp(prefix="kumo-bench-io.")
    disk = os.path.join(tmp, "disk.raw")
    ns = None
    try:
        # Allocated, not sparse: reads must reach the file's data.
        with open(disk, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(disk_mib):
                f.write(block)
        ns = Netns()
        vmms = {}
        if a.only != "qemu":
            vmms["kumo"] = [os.path.abspath(a.kumo), "run", "-q", "--accel", "emu", "--cpus", "1",
                            "--memory", a.memory, "--kernel", kernel, "--initrd", initrd,
                            "--disk", disk, "--net", "tap=" + TAP, "--cmdline", cmdline]
        if a.only != "kumo":
            vmms["qemu-q35"] = [shutil.which("qemu-system-x86_64"), "-accel", "tcg", "-M", "q35",
                                "-smp", "1", "-m", a.memory, "-nodefaults", "-no-user-config",
                                "-nographic", "-serial", "stdio", "-no-reboot",
                                "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
                                "-drive", "file=%s,if=none,id=d0,format=raw,cache=none,aio=threads"
                                % disk, "-device", "virtio-blk-pci,drive=d0",
                                "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no,vhost=off"
                                % TAP, "-device", "virtio-net-pci,netdev=n0"]
        samples = {v: [] for v in vmms}
        failures = {}
        for i in range(a.runs):
            for name, argv in vmms.items():
                if name in failures:
                    continue
                if not a.json:
                    print("run %d/%d %s..." % (i + 1, a.runs, name), file=sys.stderr, flush=True)
                try:
                    samples[name].append(measure(argv, ns, a.timeout,
                                                 a.stall or 10 * a.seconds + 120))
                except RunError as e:
                    failures[name] = {"run": i + 1, "error": str(e),
                                      "console_tail": getattr(e, "tail", "")}
                finally:
                    ns.stop_server()
    finally:
        if ns:
            ns.close()
        shutil.rmtree(tmp, ignore_errors=True)

    res = {"memory": a.memory, "disk": a.disk_size, "seconds": a.seconds, "runs": a.runs,
           "vmms": {}, "ratios": {}}
    for name in vmms:
        med = {k: statistics.median([s[k] for s in samples[name]]) if samples[name] else None
               for k in UNITS}
        res["vmms"][name] = {"samples": samples[name], "median": med,
                             "failure": failures.get(name)}
    k, q = res["vmms"].get("kumo"), res["vmms"].get("qemu-q35")
    for key in UNITS:
        kv = k and k["median"][key]
        qv = q and q["median"][key]
        res["ratios"][key] = kv / qv if kv and qv else None
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print("I/O on kumo emu vs QEMU TCG (q35), 1 vCPU, %s, %d runs each, medians"
              % (a.memory, a.runs))
        print("%-12s" % "" + "".join("%14s" % n for n in res["vmms"]) + "%10s" % "kumo/QEMU")
        for key, unit in UNITS.items():
            row = "%-12s" % ("%s %s" % (key, unit))
            for n in res["vmms"]:
                v = res["vmms"][n]["median"][key]
                row += "%14s" % ("%.1f" % v if v is not None else "-")
            r = res["ratios"][key]
            print(row + "%10s" % ("%.3f" % r if r else "-"))
        for n, v in res["vmms"].items():
            if v["failure"]:
                f = v["failure"]
                print("\nFAILED %s, run %d: %s\n  %s" % (n, f["run"], f["error"],
                      f["console_tail"].strip().replace("\n", "\n  ")))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench: interrupted")
