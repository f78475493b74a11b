#!/usr/bin/env python3
"""qcow2 against raw on kumo, and kumo against QEMU TCG on qcow2: disk I/O
of a Linux guest (the benchmark initramfs, `guest/build.sh --bench`: busybox
+ fio) in one run, alternating the configurations, medians of N runs.

Configurations (each boot gets a fresh disk of --disk-size):
  kumo-raw     kumo emu, a sparse raw file (a fresh write fills holes)
  kumo-qcow2   kumo emu, a fresh qcow2 image (qemu-img create, 64 KiB clusters)
  qemu-qcow2   QEMU TCG q35, the same kind of image, virtio-blk-pci,
               format=qcow2,cache=none,aio=threads (as bench_io.py for raw)
  qemu-raw     QEMU TCG q35 on a sparse raw file (with --qemu-raw)

Per boot, in the guest (fio --output-format=json, O_DIRECT, /dev/vda,
over the first --size MiB of the disk):
  fresh-write  sequential 1 MiB writes, psync, once over the region: every
               write lands on clusters not yet allocated (qcow2) or holes (raw)
  alloc-write  the same again: every cluster now allocated
  seq-read     sequential 1 MiB reads of the region, psync
  rand-read    4 KiB random reads, io_uring, queue depth 32, --seconds s, IOPS
Ratios: kumo-qcow2/kumo-raw per test (target ≥ 0.9 on allocated data:
alloc-write, seq-read, rand-read) and kumo-qcow2/qemu-qcow2 (target ≥ 1.0).
After each kumo-qcow2 and qemu-qcow2 boot the image must pass
`qemu-img check` (a benchmark that corrupts its disk has no numbers).

usage: bench_qcow2.py KUMO_VMM [--guest-dir DIR] [--runs 1] [--memory 512M]
       [--disk-size 1024] [--size 256] [--seconds 10] [--qemu-raw] [--json]
KUMO_VMM is the kumo-vmm binary (build/kumo-vmm) or `kumo` (then `run` is
added).
"""
import argparse, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time

CMDLINE = "console=ttyS0 panic=-1 quiet"
TESTS = [("fresh-write", "write", "MB/s"), ("alloc-write", "write", "MB/s"),
         ("seq-read", "read", "MB/s"), ("rand-read", "read", "IOPS")]


def guest_script(size_mib, seconds):
    fio = "fio --name=b --filename=/dev/vda --direct=1 --size=%dM --output-format=json" % size_mib
    jobs = {
        "fresh-write": fio + " --rw=write --bs=1M --ioengine=psync",
        "alloc-write": fio + " --rw=write --bs=1M --ioengine=psync",
        "seq-read": fio + " --rw=read --bs=1M --ioengine=psync",
        "rand-read": fio + " --rw=randread --bs=4k --ioengine=io_uring --iodepth=32"
                           " --time_based --runtime=%d" % seconds,
    }
    return "; ".join("echo kumo-bench: %s-begin; %s; echo kumo-bench: %s-end" % (n, jobs[n], n)
                     for n, _, _ in TESTS)


class RunError(Exception):
    pass


def run_vm(argv, timeout):
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        e = RunError("timed out after %.0f s" % timeout)
        e.tail = out.decode(errors="replace")[-2000:]
        raise e
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    out = out.decode(errors="replace").replace("\r", "")
    if "kumo-guest: exit status" not in out:
        e = RunError("exited with status %d before the end (%.0f s)" % (p.returncode, time.monotonic() - t0))
        e.tail = out[-2000:]
        raise e
    return out


def section(out, name):
    m = re.search(r"^kumo-bench: %s-begin\n(.*?)^kumo-bench: %s-end" % (name, name), out, re.M | re.S)
    if not m:
        raise RunError("no %s section in the guest's output" % name)
    text = m.group(1)
    try:
        return json.loads(text[text.find("{"):text.rfind("}") + 1])
    except ValueError:
        raise RunError("%s: no JSON:\n%s" % (name, text[-1500:]))


def make_disk(tmp, fmt, disk_mib):
    path = os.path.join(tmp, "disk." + fmt)
    if os.path.exists(path):
        os.unlink(path)
    if fmt == "raw":
        with open(path, "wb") as f:
            f.truncate(disk_mib << 20)
    else:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "%dM" % disk_mib], check=True)
    return path


def check_image(path):
    r = subprocess.run(["qemu-img", "check", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RunError("qemu-img check after the run: status %d\n%s" % (r.returncode, r.stdout[-1500:]))


def measure(argv_for, fmt, tmp, a):
    disk = make_disk(tmp, fmt, a.disk_size)
    out = run_vm(argv_for(disk), a.timeout)
    r = {}
    for name, rw, unit in TESTS:
        job = section(out, name)["jobs"][0]
        if job.get("error"):
            raise RunError("fio %s: error %s" % (name, job["error"]))
        r[name] = job[rw]["iops"] if unit == "IOPS" else job[rw]["bw_bytes"] / 1e6
    if fmt == "qcow2":
        check_image(disk)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kumo")
    ap.add_argument("--guest-dir", default=os.environ.get("KUMO_GUEST_DIR", "/var/cache/kumo/guest"))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--memory", default="512M")
    ap.add_argument("--disk-size", type=int, default=1024, help="MiB")
    ap.add_argument("--size", type=int, default=256, help="MiB the jobs cover")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=1500)
    ap.add_argument("--qemu-raw", action="store_true")
    ap.add_argument("--only", help="comma-separated configurations")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    kernel, initrd = a.guest_dir + "/vmlinuz", a.guest_dir + "/initrd-bench.img"
    for f in (kernel, initrd):
        if not os.access(f, os.R_OK):
            sys.exit("bench: no %s (guest/build.sh --bench)" % f)
    for prog in ("qemu-img", "qemu-system-x86_64"):
        if not shutil.which(prog):
            sys.exit("bench: %s not found" % prog)
    cmdline = '%s kumo.run="%s"' % (CMDLINE, guest_script(a.size, a.seconds))
    kumo = [os.path.abspath(a.kumo)] + (["run"] if os.path.basename(a.kumo) == "kumo" else [])

    def kumo_argv(disk):
        return kumo + ["-q", "--accel", "emu", "--cpus", "1", "--memory", a.memory, "--kernel", kernel,
                       "--initrd", initrd, "--disk", disk, "--cmdline", cmdline]

    def qemu_argv(fmt):
        def argv(disk):
            return [shutil.which("qemu-system-x86_64"), "-accel", "tcg", "-M", "q35", "-smp", "1",
                    "-m", a.memory, "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
                    "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
                    "-drive", "file=%s,if=none,id=d0,format=%s,cache=none,aio=threads" % (disk, fmt),
                    "-device", "virtio-blk-pci,drive=d0"]
        return argv

    configs = {"kumo-raw": (kumo_argv, "raw"), "kumo-qcow2": (kumo_argv, "qcow2"),
               "qemu-qcow2": (qemu_argv("qcow2"), "qcow2")}
    if a.qemu_raw:
        configs["qemu-raw"] = (qemu_argv("raw"), "raw")
    if a.only:
        configs = {k: v for k, v in configs.items() if k in a.only.split(",")}
    tmp = tempfile.mkdtemp(prefix="kumo-bench-qcow2.")
    samples = {c: [] for c in configs}
    failures = {}
    try:
        for i in range(a.runs):
            for name, (argv_for, fmt) in configs.items():
                if name in failures:
                    continue
                if not a.json:
                    print("run %d/%d %s..." % (i + 1, a.runs, name), file=sys.stderr, flush=True)
                t0 = time.monotonic()
                try:
                    samples[name].append(measure(argv_for, fmt, tmp, a))
                except (RunError, subprocess.CalledProcessError) as e:
                    failures[name] = {"run": i + 1, "error": str(e), "tail": getattr(e, "tail", "")}
                if not a.json:
                    print("  %.0f s" % (time.monotonic() - t0), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {c: {t: statistics.median([s[t] for s in samples[c]]) if samples[c] else None
               for t, _, _ in TESTS} for c in configs}

    def ratio(x, y, t):
        return med[x][t] / med[y][t] if x in med and y in med and med[x][t] and med[y][t] else None

    ratios = {"qcow2/raw (kumo)": {t: ratio("kumo-qcow2", "kumo-raw", t) for t, _, _ in TESTS},
              "kumo/qemu (qcow2)": {t: ratio("kumo-qcow2", "qemu-qcow2", t) for t, _, _ in TESTS}}
    if "qemu-raw" in configs:
        ratios["qcow2/raw (qemu)"] = {t: ratio("qemu-qcow2", "qemu-raw", t) for t, _, _ in TESTS}
    res = {"memory": a.memory, "disk_mib": a.disk_size, "size_mib": a.size, "seconds": a.seconds,
           "runs": a.runs, "samples": samples, "median": med, "ratios": ratios, "failures": failures}
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print("qcow2 I/O: kumo emu and QEMU TCG (q35), 1 vCPU, %s, %d MiB region, %d run(s), medians"
              % (a.memory, a.size, a.runs))
        cols = list(configs) + list(ratios)
        print("%-18s" % "" + "".join("%19s" % c for c in cols))
        for t, _, unit in TESTS:
            row = "%-18s" % ("%s %s" % (t, unit))
            row += "".join("%19s" % ("%.1f" % med[c][t] if med[c][t] is not None else "-") for c in configs)
            row += "".join("%19s" % ("%.3f" % ratios[r][t] if ratios[r][t] else "-") for r in ratios)
            print(row)
        for n, f in failures.items():
            print("\nFAILED %s, run %d: %s\n  %s" % (n, f["run"], f["error"], f["tail"].strip().replace("\n", "\n  ")))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench: interrupted")
