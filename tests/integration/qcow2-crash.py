#!/usr/bin/env python3
"""Crash safety of a disk image under kumo-vmm: the blk_crash test guest
(tests/guests/blk_crash.c) writes an endless stream of generations, each
ended by a flush and a "blk_crash: durable G" line; this script kills
kumo-vmm with SIGKILL at a random moment, KILLS times in a row on the same
image, and after each kill checks:
  * qcow2: `qemu-img check` finds no corruption and no check error (leaked
    clusters are allowed: exit status 0, or 3 with leaks only);
  * the data, read through `qemu-img convert -O raw`: every sector is
    either what it was before any durable write touched it (zeros, or the
    backing file's pattern) or a valid sector of a generation that writes
    its block, never older than the last durable generation that wrote it.
Each run starts a fresh range of generations (run r: r * 100000 + 1 on),
so an unflushed write of an earlier run can never be taken for a later one.
At the end a last run with crash.gens=5 must end with PASS, and is checked
the same way (everything durable), and the backing file is unchanged.

usage: qcow2-crash.py KUMO_VMM BLK_CRASH_ELF ACCEL MODE [KILLS [SEED]]
  MODE: raw | qcow2 (a fresh image, 64 KiB clusters) | qcow2-4k (a fresh
  image, 4 KiB clusters: much more metadata) | overlay (a qcow2 overlay
  over a qcow2 backing file half filled with a known pattern)
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

MAGIC, MAGIC2 = 0x6b756d6f, 0x43524153
BLOCK, SECTOR = 4096, 512
SPB = BLOCK // SECTOR
SEQ_BLOCKS, SEQ_PER_REQ, SCATTER = 64, 16, 32
DISK = 64 << 20
NBLOCKS = DISK // BLOCK
RUN_GENS = 100000
ZERO = bytes(SECTOR)
M64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9e3779b97f4a7c15) & M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


_writes = {}


def writes(gen):
    """The blocks generation gen writes (as blk_crash.c's generation())."""
    s = _writes.get(gen)
    if s is None:
        start = gen * SEQ_BLOCKS % NBLOCKS
        s = {(start + i) % NBLOCKS for i in range(SEQ_BLOCKS)}
        s |= {splitmix64(gen << 32 | i) % NBLOCKS for i in range(SCATTER)}
        _writes[gen] = s
    return s


def record(sector, gen):
    return struct.pack("<4I", MAGIC, sector & 0xffffffff, gen, (sector ^ gen ^ MAGIC2) & 0xffffffff) * (SECTOR // 16)


def base_pattern_blocks():
    """Blocks the overlay's backing file holds (generation 0): the first half."""
    return NBLOCKS // 2


class Fail(Exception):
    pass


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


class Disk:
    def __init__(self, tmp, mode):
        self.tmp, self.mode = tmp, mode
        self.img = os.path.join(tmp, "disk." + ("raw" if mode == "raw" else "qcow2"))
        self.base = None
        self.base_blocks = 0
        if mode == "raw":
            with open(self.img, "wb") as f:
                f.truncate(DISK)
        elif mode in ("qcow2", "qcow2-4k"):
            opts = ["-o", "cluster_size=4096"] if mode == "qcow2-4k" else []
            self.qemu_img(["create", "-q", "-f", "qcow2", *opts, self.img, str(DISK)])
        elif mode == "overlay":
            self.base_blocks = base_pattern_blocks()
            raw = os.path.join(tmp, "base.raw")
            with open(raw, "wb") as f:
                for s in range(self.base_blocks * SPB):
                    f.write(record(s, 0))
                f.truncate(DISK)
            self.base = os.path.join(tmp, "base.qcow2")
            self.qemu_img(["convert", "-q", "-f", "raw", "-O", "qcow2", raw, self.base])
            os.unlink(raw)
            self.base_sha = sha256(self.base)
            self.qemu_img(["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", self.img])
        else:
            raise Fail("unknown mode " + mode)

    def qemu_img(self, args):
        r = run(["qemu-img", *args], cwd=self.tmp)
        if r.returncode:
            raise Fail("qemu-img %s: status %d: %s" % (" ".join(args), r.returncode, r.stdout))
        return r.stdout

    def check(self):
        """qemu-img check: no corruption; returns the leaked clusters."""
        if self.mode == "raw":
            return 0
        r = subprocess.run(["qemu-img", "check", "--output=json", self.img],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            rep = json.loads(r.stdout)
        except ValueError:
            raise Fail("qemu-img check: status %d, no JSON: %s%s" % (r.returncode, r.stdout, r.stderr))
        corrupt = rep.get("corruptions", 0)
        errors = rep.get("check-errors", 0)
        leaks = rep.get("leaks", 0)
        if corrupt or errors or r.returncode not in (0, 3) or (r.returncode == 3 and not leaks):
            raise Fail("qemu-img check: status %d, %d corruptions, %d check errors, %d leaks: %s"
                       % (r.returncode, corrupt, errors, leaks, r.stdout))
        return leaks

    def read(self):
        if self.mode == "raw":
            with open(self.img, "rb") as f:
                return f.read()
        out = os.path.join(self.tmp, "read.raw")
        self.qemu_img(["convert", "-q", "-O", "raw", self.img, out])
        with open(out, "rb") as f:
            data = f.read()
        os.unlink(out)
        return data


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Model:
    """What each block may hold: durable[b] is the last generation made
    durable (flushed) that wrote block b, 0 for none."""

    def __init__(self, base_blocks):
        self.durable = [0] * NBLOCKS
        self.base_blocks = base_blocks

    def add_durable(self, first, last):
        for g in range(first, last + 1):
            for b in writes(g):
                self.durable[b] = g

    def verify(self, data, run_now, flushed=0):
        """Raises Fail on a sector the model does not allow; returns the
        sectors newer than their block's durable generation, and those
        written by this run's generations after flushed (unflushed writes
        that reached the image)."""
        if len(data) != DISK:
            raise Fail("the disk reads %d bytes, want %d" % (len(data), DISK))
        bad = []
        newer = unflushed = 0
        for b in range(NBLOCKS):
            dur = self.durable[b]
            for i in range(SPB):
                s = b * SPB + i
                sec = data[s * SECTOR:(s + 1) * SECTOR]
                why = self.sector_bad(b, s, sec, dur, run_now)
                if why:
                    bad.append("block %d sector %d: %s" % (b, s, why))
                    break
                gen = struct.unpack_from("<I", sec, 8)[0] if sec != ZERO else 0
                if gen > dur:
                    newer += 1
                    if gen // RUN_GENS == run_now and gen > flushed:
                        unflushed += 1
            if len(bad) >= 10:
                break
        if bad:
            raise Fail("the disk does not hold what was written:\n  " + "\n  ".join(bad))
        return newer, unflushed

    def sector_bad(self, b, s, sec, dur, run_now):
        if sec == ZERO:
            if dur or b < self.base_blocks:
                return "zeros, want generation %d" % (dur or 0)
            return None
        magic, sn, gen, chk = struct.unpack_from("<4I", sec)
        if magic != MAGIC or sn != s or chk != (s ^ gen ^ MAGIC2) or sec != record(s, gen):
            return "not a sector the guest wrote (%s...)" % sec[:16].hex()
        if gen == 0:
            if dur or b >= self.base_blocks:
                return "the backing file's sector, want generation %d" % dur
            return None
        # Not bounded by the last "start" line: the console's last lines
        # die with the process, while the writes they announced may land.
        if gen // RUN_GENS > run_now:
            return "generation %d, of a run not started yet" % gen
        if b not in writes(gen):
            return "generation %d, which does not write this block" % gen
        if gen < dur:
            return "generation %d, older than the durable generation %d" % (gen, dur)
        return None


def self_test(model, data):
    """The check must catch a lost durable sector and a stale one."""
    b = next((b for b in range(NBLOCKS) if model.durable[b]), None)
    if b is None:
        return
    s = b * SPB
    stale = record(s, 0) if b < model.base_blocks else ZERO
    older = [g for g in range(model.durable[b] - 1, 0, -1) if b in writes(g)]
    for bad in [ZERO, stale, b"\x55" * SECTOR] + ([record(s, older[0])] if older else []):
        d = data[:s * SECTOR] + bad + data[(s + 1) * SECTOR:]
        try:
            model.verify(d, 0)
        except Fail:
            continue
        raise Fail("self-test: a damaged sector %d passed the check" % s)


def main():
    vmm, elf, accel, mode = sys.argv[1:5]
    kills = int(sys.argv[5]) if len(sys.argv) > 5 else 20
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else random.randrange(1 << 30)
    rng = random.Random(seed)
    print("mode %s, %d kills, seed %d" % (mode, kills, seed))
    if accel == "kvm" and not os.path.exists("/dev/kvm"):
        print("SKIP: no /dev/kvm on this host")
        return 77
    if shutil.which("qemu-img") is None:
        print("SKIP: no qemu-img")
        return 77

    tmp = tempfile.mkdtemp(prefix="kumo-crash-")
    proc = None
    try:
        disk = Disk(tmp, mode)
        model = Model(disk.base_blocks)
        mid_write = quiet = 0
        total_durable = 0
        for k in range(kills + 1):
            last = k == kills
            first = k * RUN_GENS + 1
            cmdline = "crash.base=%d" % first + (" crash.gens=5" if last else "")
            out_path = os.path.join(tmp, "out")
            with open(out_path, "w") as out, open(os.path.join(tmp, "err"), "w") as err:
                proc = subprocess.Popen([vmm, "--accel", accel, "--memory", "64M", "--kernel", elf,
                                         "--cmdline", cmdline, "--disk", disk.img],
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=err)
                if last:
                    status = proc.wait(timeout=120)
                else:
                    # the kill lands after the first write was issued, at a
                    # random moment of the stream
                    t0 = time.monotonic()
                    while "blk_crash: start" not in open(out_path).read():
                        if proc.poll() is not None or time.monotonic() - t0 > 60:
                            raise Fail("run %d: no write started (status %s): %s%s" % (
                                k, proc.poll(), open(out_path).read(), open(os.path.join(tmp, "err")).read()))
                        time.sleep(0.01)
                    time.sleep(rng.uniform(0.0, 1.5))
                    if proc.poll() is not None:
                        raise Fail("run %d: kumo-vmm ended by itself (status %d): %s" % (
                            k, proc.returncode, open(os.path.join(tmp, "err")).read()))
                    proc.send_signal(signal.SIGKILL)
                    status = proc.wait(timeout=30)
                proc = None
            text = open(out_path).read()
            errtext = open(os.path.join(tmp, "err")).read()
            if "AddressSanitizer" in errtext or "runtime error" in errtext:
                raise Fail("run %d: sanitizer report:\n%s" % (k, errtext))
            # whole lines only: the kill may cut the last one short
            lines = text.split("\n")[:-1]
            started = [int(m.group(1)) for m in map(re.compile(r"blk_crash: start (\d+)$").match, lines) if m]
            durable = [int(m.group(1)) for m in map(re.compile(r"blk_crash: durable (\d+)$").match, lines) if m]
            if last and (status != 64 or "TEST blk_crash: PASS" not in text):
                raise Fail("last run: status %d, want 64 and PASS:\n%s%s" % (status, text[-2000:], errtext))
            if not last and status != -signal.SIGKILL:
                raise Fail("run %d: status %d, want SIGKILL" % (k, status))
            if "FAIL" in text:
                raise Fail("run %d: the guest failed:\n%s" % (k, text[-2000:]))
            if durable:
                model.add_durable(first, max(durable))
                total_durable += len(durable)
            leaks = disk.check()
            data = disk.read()
            flushed = max(durable, default=0)
            newer, unflushed = model.verify(data, k, flushed)
            # In the middle of the writes: a generation started after the
            # last durable line, or its data on the disk (the console's
            # last lines may be lost with the process).
            state = "ended"
            if not last:
                if unflushed or (started and max(started) > flushed):
                    mid_write += 1
                    state = "killed mid-write after %d flushes (%d unflushed sectors landed)" % (
                        len(durable), unflushed)
                else:
                    quiet += 1
                    state = "killed after %d flushes, no unflushed write seen" % len(durable)
            if k == 0:
                self_test(model, data)
            print("run %2d: %s; check: %d leaked clusters; data ok (%d sectors newer than durable)"
                  % (k, state, leaks, newer), flush=True)
        if disk.base and sha256(disk.base) != disk.base_sha:
            raise Fail("the backing file changed")
        print("ok: %s on %s: %d kills (%d mid-write, %d with no unflushed write seen),"
              " %d flushes checked" % (mode, accel, kills, mid_write, quiet, total_durable))
        return 0
    except (Fail, subprocess.TimeoutExpired) as e:
        print("FAIL: %s (seed %d)" % (e, seed))
        return 1
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
