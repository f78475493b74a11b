#!/usr/bin/env python3
"""Linux boot and compute on kumo's emu engine and on QEMU TCG, the same
Debian kernel and busybox initramfs (guest/build.sh), in one run,
alternating, medians of N runs.

One boot per run and VMM measures both:
  boot     exec -> the line "kumo-guest: ready" on the serial console (/init
           prints it after mounting and loading the modules), and, as a
           secondary metric, exec -> the kernel's "Run /init as init process";
  compute  the command given with kumo.run= (run by /init after "ready"):
           64 MiB of zeros written to /tmp (a tmpfs, so RAM), then
           sha256sum over it, timed by the guest (/proc/timer_list's
           "now at N nsecs", CLOCK_MONOTONIC in ns; busybox's date has no
           %N and /proc/uptime has 10 ms) and by the host (arrival of the
           two marker lines on the console; the guest's clocksource is shown,
           as a jiffies clock is coarse). The digest is checked against
           the host's hashlib.sha256 of the same bytes.
The compute command does not change what happens before "ready", so the
boot times are those of a plain boot. With --skip-compute the command is
`true` and a run ends at "ready".

kumo:  KUMO run -q --accel emu --cpus 1 --memory MEM --kernel vmlinuz
       --initrd initrd.img --cmdline CMDLINE
QEMU:  qemu-system-x86_64 -accel tcg -M MACHINE -smp 1 -m MEM -nodefaults
       -no-user-config -nographic -serial stdio -no-reboot -kernel vmlinuz
       -initrd initrd.img -append CMDLINE
  MACHINE is microvm,acpi=off (with ACPI, Linux 6.1 hangs on microvm after
  "tsc: Marking TSC unstable"; without it the guest halts instead of
  powering off, so the run ends at "exit status"), pc and q35. The ratios
  use the fastest QEMU machine of each metric.

A VMM that fails a run (time-out, early exit, wrong digest) is reported and
left out of the later runs. Every VMM runs in its own process group, killed
at the end of its run, on a time-out, on an error and on Ctrl-C.

usage: bench_boot.py KUMO [--guest-dir DIR] [--runs 5] [--only kumo|qemu]
       [--machine microvm,pc,q35] [--skip-compute] [--memory 256M] [--json]
"""
import argparse, hashlib, json, os, re, selectors, shutil, signal, statistics, subprocess
import sys, tempfile, time

FILE_BYTES = 64 << 20
CMDLINE = "console=ttyS0 panic=-1"
# No double quote inside: the kernel cannot escape one (guest/README.md).
COMPUTE = ("head -c %d /dev/zero > /tmp/f; "
           "echo kumo-bench: fs $(grep ' /tmp ' /proc/mounts); "
           "echo kumo-bench: clocksource "
           "$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource); "
           "echo kumo-bench: t0 $(grep -m1 now /proc/timer_list); "
           "sha256sum /tmp/f; "
           "echo kumo-bench: t1 $(grep -m1 now /proc/timer_list)") % FILE_BYTES
QEMU_MACHINES = {"microvm": "microvm,acpi=off", "pc": "pc", "q35": "q35"}
MARKERS = {  # name -> start of a console line
    "run_init": re.compile(r"^\[ *[0-9.]+\] Run /init as init process"),
    "ready": re.compile(r"^kumo-guest: ready"),
    "t0": re.compile(r"^kumo-bench: t0 "),
    "t1": re.compile(r"^kumo-bench: t1 "),
    "exit": re.compile(r"^kumo-guest: exit status"),
}


class RunError(Exception):
    pass


def run_vm(argv, timeout, stop_at):
    """Runs argv until the console shows the marker stop_at. Returns the
    console text and {marker: seconds from exec to its line}."""
    seen, buf, lines = {}, b"", []
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                         start_new_session=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        while stop_at not in seen:
            left = t0 + timeout - time.perf_counter()
            if left <= 0:
                reached = ", ".join(f"{k} at {v:.1f} s" for k, v in seen.items()) or "no marker"
                raise RunError(f"timed out after {timeout:.0f} s ({reached})")
            if not sel.select(min(left, 1.0)):
                continue
            data = os.read(p.stdout.fileno(), 65536)
            now = time.perf_counter() - t0
            if not data:
                p.wait()
                raise RunError(f"exited with status {p.returncode} before '{stop_at}'")
            buf += data
            *done, buf = buf.split(b"\n")
            for raw in done:
                line = raw.decode(errors="replace").rstrip("\r")
                lines.append(line)
                for name, pat in MARKERS.items():
                    if name not in seen and pat.match(line):
                        seen[name] = now
        try:  # let it power off by itself; microvm without ACPI halts instead
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return "\n".join(lines), seen
    except RunError as e:
        lines.append(buf.decode(errors="replace"))
        err.seek(0)
        e.tail = "\n".join(lines[-15:]) + "\n" + err.read().decode(errors="replace")[-2000:]
        e.seen = seen
        raise
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        err.close()


def measure(argv, timeout, compute, want_digest):
    out, seen = run_vm(argv, timeout, "exit" if compute else "ready")
    r = {"run_init_s": seen.get("run_init"), "ready_s": seen["ready"]}
    if not compute:
        return r
    if "status 0" not in next(l for l in out.splitlines() if MARKERS["exit"].match(l)):
        raise RunError("the compute command failed in the guest:\n" + out[-2000:])
    if not re.search(r"^kumo-bench: fs tmpfs /tmp tmpfs ", out, re.M):
        raise RunError("/tmp is not a tmpfs in the guest")
    ns = [int(m) for m in re.findall(r"^kumo-bench: t[01] now at (\d+) nsecs", out, re.M)]
    digest = re.search(r"^([0-9a-f]{64})  /tmp/f$", out, re.M)
    if len(ns) != 2 or not digest:
        raise RunError("no timestamps or digest in the guest's output:\n" + out[-2000:])
    if digest.group(1) != want_digest:
        raise RunError(f"sha256 {digest.group(1)} in the guest, {want_digest} on the host")
    r["sha256_guest_s"] = (ns[1] - ns[0]) / 1e9
    r["sha256_host_s"] = seen["t1"] - seen["t0"]
    r["exit_s"] = seen["exit"]
    cs = re.search(r"^kumo-bench: clocksource (\S+)", out, re.M)
    r["clocksource"] = cs.group(1) if cs else None
    return r


def jiffies(v):
    return any("jiffies" in c for c in v["median"].get("clocksources", []))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kumo", help="the kumo binary (build/kumo)")
    ap.add_argument("--guest-dir", default=os.environ.get("KUMO_GUEST_DIR", "/var/cache/kumo/guest"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", choices=["kumo", "qemu"])
    ap.add_argument("--machine", default=",".join(QEMU_MACHINES),
                    help="QEMU machine types to run, comma-separated (default: all)")
    ap.add_argument("--skip-compute", action="store_true")
    ap.add_argument("--memory", default="256M")
    ap.add_argument("--kumo-timeout", type=float, default=1200, help="seconds per kumo run")
    ap.add_argument("--qemu-timeout", type=float, default=300, help="seconds per QEMU run")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that finally: kills the VMM
    machines = [m for m in a.machine.split(",") if m]
    for m in machines:
        if m not in QEMU_MACHINES:
            sys.exit(f"bench: unknown machine {m} (known: {', '.join(QEMU_MACHINES)})")
    kernel, initrd = f"{a.guest_dir}/vmlinuz", f"{a.guest_dir}/initrd.img"
    for f in (kernel, initrd):
        if not os.access(f, os.R_OK):
            sys.exit(f"bench: no {f} (make guest)")
    cmdline = f'{CMDLINE} kumo.run="{"true" if a.skip_compute else COMPUTE}"'

    vmms = {}  # name -> (argv, timeout)
    if a.only != "qemu":
        if not os.access(a.kumo, os.X_OK):
            sys.exit(f"bench: {a.kumo} is not executable")
        vmms["kumo"] = ([a.kumo, "run", "-q", "--accel", "emu", "--cpus", "1",
                         "--memory", a.memory, "--kernel", kernel, "--initrd", initrd,
                         "--cmdline", cmdline], a.kumo_timeout)
    if a.only != "kumo":
        qemu = shutil.which("qemu-system-x86_64")
        if not qemu:
            sys.exit("bench: qemu-system-x86_64 not found")
        for m in machines:
            vmms[f"qemu-{m}"] = ([qemu, "-accel", "tcg", "-M", QEMU_MACHINES[m], "-smp", "1",
                                  "-m", a.memory, "-nodefaults", "-no-user-config",
                                  "-nographic", "-serial", "stdio", "-no-reboot",
                                  "-kernel", kernel, "-initrd", initrd, "-append", cmdline],
                                 a.qemu_timeout)
    want = hashlib.sha256(bytes(FILE_BYTES)).hexdigest()

    samples = {v: [] for v in vmms}
    failures = {}
    for i in range(a.runs):  # alternate, so drift hits all
        for name, (argv, timeout) in vmms.items():
            if name in failures:
                continue
            if not a.json:
                print(f"run {i + 1}/{a.runs} {name}...", file=sys.stderr, flush=True)
            try:
                samples[name].append(measure(argv, timeout, not a.skip_compute, want))
            except RunError as e:
                seen = getattr(e, "seen", {})
                failures[name] = {"run": i + 1, "error": str(e),
                                  "run_init_s": seen.get("run_init"), "ready_s": seen.get("ready"),
                                  "console_tail": getattr(e, "tail", "")}

    keys = ["run_init_s", "ready_s", "sha256_guest_s", "sha256_host_s"]
    res = {"memory": a.memory, "cpus": 1, "runs": a.runs, "cmdline": cmdline,
           "file_bytes": FILE_BYTES, "sha256": want, "vmms": {}}
    for name, (argv, _) in vmms.items():
        med = {}
        for k in keys:
            vals = [s[k] for s in samples[name] if s.get(k) is not None]
            med[k] = statistics.median(vals) if vals else None
        # A failed run still tells how far it got: Run /init, if nothing else.
        f = failures.get(name)
        if med["run_init_s"] is None and f and f["run_init_s"] is not None:
            med["run_init_s"] = f["run_init_s"]
        med["clocksources"] = sorted({s["clocksource"] for s in samples[name]
                                      if s.get("clocksource")})
        res["vmms"][name] = {"argv": argv, "samples": samples[name], "median": med, "failure": f}

    def fastest_qemu(k):
        # A jiffies clock loses ticks when TCG runs late: on microvm (no
        # HPET, PM timer or PIT-calibrated TSC) the guest's sha256 time was
        # 2.0 s against 5.4 s by the host. Such a guest time is no reference.
        q = [(v["median"][k], n) for n, v in res["vmms"].items()
             if n.startswith("qemu") and v["median"][k] is not None
             and not (k == "sha256_guest_s" and jiffies(v))]
        return min(q) if q else (None, None)

    ratios = {}
    kumo = res["vmms"].get("kumo", {}).get("median", {})
    for k, inverse in (("run_init_s", False), ("ready_s", False),
                       ("sha256_guest_s", True), ("sha256_host_s", True)):
        qv, qn = fastest_qemu(k)
        kv = kumo.get(k)
        r = (qv / kv if inverse else kv / qv) if kv and qv else None
        ratios[k] = {"ratio": r, "qemu_reference": qn,
                     "direction": "QEMU/kumo, >1: kumo faster" if inverse
                     else "kumo/QEMU, >1: kumo slower"}
    res["ratios"] = ratios

    if a.json:
        print(json.dumps(res, indent=2))
    else:
        report(res, a)
    sys.exit(1 if failures else 0)


def report(res, a):
    def fmt(v, w, p=2):
        return f"{v:{w}.{p}f}" if v is not None else f"{'-':>{w}}"

    print(f"Linux boot on kumo emu vs QEMU TCG, 1 vCPU, {res['memory']}, "
          f"{res['runs']} runs each, medians")
    print(f"{'vmm':14}{'exec->Run /init s':>18}{'exec->ready s':>15}"
          f"{'sha256 64 MiB: guest s':>24}{'host s':>8}{'runs':>6}")
    for name, v in res["vmms"].items():
        m = v["median"]
        print(f"{name:14}{fmt(m['run_init_s'], 18)}{fmt(m['ready_s'], 15)}"
              f"{fmt(m['sha256_guest_s'], 24, 3)}{fmt(m['sha256_host_s'], 8, 3)}"
              f"{len(v['samples']):6d}" + (f"  FAILED run {v['failure']['run']}" if v["failure"] else ""))
    x = res["ratios"]
    if "kumo" in res["vmms"] and any(r["ratio"] for r in x.values()):
        print("ratios against the fastest QEMU machine of each metric:")
        for k, label in (("ready_s", "exec->ready"), ("run_init_s", "exec->Run /init"),
                         ("sha256_guest_s", "sha256, guest time"),
                         ("sha256_host_s", "sha256, host time")):
            r = x[k]
            if r["ratio"]:
                print(f"  {label:20}{r['ratio']:10.3f}  {r['direction']} (vs {r['qemu_reference']})")
    if any(v["failure"] and not v["samples"] for v in res["vmms"].values()):
        print("a VMM with no complete run shows what its failed run reached, if anything.")
    if not a.skip_compute:
        print(f"sha256: {res['file_bytes'] >> 20} MiB of zeros in the guest's /tmp (tmpfs), "
              f"digest checked against the host's ({res['sha256'][:16]}...); guest time from "
              "/proc/timer_list, host time from the arrival of the two marker lines.")
        print("guest clocksource: " + ", ".join(
            f"{n} {'/'.join(v['median']['clocksources']) or '-'}" for n, v in res["vmms"].items()))
    for name, v in res["vmms"].items():
        if jiffies(v) and v["median"]["sha256_guest_s"] is not None:
            print(f"{name}: the guest clock is jiffies, so its sha256 guest time is not to be"
                  " trusted (the host time is)"
                  + (" and is no reference for the ratio." if name != "kumo" else "."))
    for name, v in res["vmms"].items():
        f = v["failure"]
        if f:
            print(f"\nFAILED {name}, run {f['run']}: {f['error']}\nlast console lines:")
            print("  " + f["console_tail"].strip().replace("\n", "\n  "))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the running VMM is already killed
        sys.exit("bench: interrupted")
