#!/usr/bin/env python3
"""Linux on kumo's emu engine, its root file system on qcow2 overlays over
one shared base image.

usage: linux-qcow2-overlay.py KUMO_VMM

1. The host makes the base: the guest's own initramfs tree (busybox, the
   e2fsprogs) plus /etc/kumo-rootfs and /etc/base-file.txt, put into a
   64 MiB ext4 image by `mke2fs -d` (no mount, no root needed), raw. Then
   two qcow2 overlays over it (`qemu-img create -b base.raw -F raw`).
2. Two VMs run at the same time, VM i on overlay i (the base opened
   read-only by both). Each boots with kumo.root=/dev/vda: the initramfs's
   /init mounts the overlay's file system and switch_roots to it, and the
   /init there (the same script) runs the commands, so / is /dev/vda and
   the shell and the programs come from the overlay: it checks / is
   /dev/vda, reads /etc/kumo-rootfs and the checksum of /etc/base-file.txt
   from the base, writes /root/vmI.txt, lists /root, syncs and remounts /
   read-only.
3. The host checks: the base's sha256 is unchanged; each overlay passes
   `qemu-img check` with nothing to report; read through `qemu-img convert
   -O raw`, each file system is clean (e2fsck -fn), holds its own VM's file
   with the right content and not the other VM's, and still the base file;
   the two overlays differ (qemu-img compare) and each differs from the
   base.
Every process is killed and every file removed on the way out.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

import linuxguest
from linuxguest import GUEST, fail, need_guest, print, run_cmdline, vmm_args

BOOT_TIMEOUT = 1500         # two guests at once
BASE_SIZE = "64M"
BASE_TEXT = "".join("base line %d\n" % i for i in range(1, 20001))
ROOTFS_MARK = "kumo-rootfs-on-vda"
procs = []


def sh(args, cwd=None, ok=(0,)):
    r = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode(errors="replace")
    if r.returncode not in ok:
        fail("%s: status %d" % (" ".join(args), r.returncode), out)
    return r.returncode, out


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def script(i):
    """Runs on the overlay's root file system: the initramfs's /init
    switched to /dev/vda (kumo.root=), whose own /init runs this."""
    return " && ".join([
        "echo ROOTMNT $(grep -c '^/dev/vda / ext4 ' /proc/mounts)",
        "echo ROOTFS $(cat /etc/kumo-rootfs)",
        "echo BASE $(sha256sum /etc/base-file.txt)",
        "echo vm%d-wrote-this > /root/vm%d.txt" % (i, i),
        "ls /root | sed s/^/LS/",
        "sync",
        "mount -o remount,ro /",
        "echo FS-DONE",
    ])


def start(vmm, disk, i):
    p = linuxguest.start(vmm_args(vmm, run_cmdline(script(i), "kumo.root=/dev/vda"), memory="256M",
                                  extra=["--disk", disk]))
    procs.append(p)
    return p


def finish(p, what):
    out = linuxguest.finish(p, what, BOOT_TIMEOUT)
    if "FS-DONE" not in out:
        fail("%s: the commands failed in the guest" % what, out)
    if re.search(r"I/O error|EXT4-fs error|virtio_blk.*(error|fail)", out, re.I):
        fail("%s: disk or file system errors in the guest" % what, out)
    return out


def debugfs(image, cmd):
    r = subprocess.run(["debugfs", "-R", cmd, image], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def main():
    vmm = sys.argv[1]
    need_guest()
    for tool in ("qemu-img", "mke2fs", "debugfs", "e2fsck", "cpio"):
        if shutil.which(tool) is None:
            print("SKIP: no %s" % tool)
            return 77

    tmp = tempfile.mkdtemp(prefix="kumo-overlay-")
    try:
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        sh(["sh", "-c", "zcat %s | cpio -idm --quiet --no-absolute-filenames" % os.path.join(GUEST, "initrd.img")],
           cwd=root)
        if not os.path.exists(os.path.join(root, "bin", "busybox")):
            fail("the initramfs has no /bin/busybox")
        os.makedirs(os.path.join(root, "root"), exist_ok=True)
        os.makedirs(os.path.join(root, "proc"), exist_ok=True)
        with open(os.path.join(root, "etc", "kumo-rootfs"), "w") as f:
            f.write(ROOTFS_MARK + "\n")
        with open(os.path.join(root, "etc", "base-file.txt"), "w") as f:
            f.write(BASE_TEXT)
        base = os.path.join(tmp, "base.raw")
        sh(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "kumobase", "-d", root, base, BASE_SIZE])
        shutil.rmtree(root)
        base_sha = sha256(base)
        print("base: %s, ext4 from the initramfs tree, sha256 %s" % (BASE_SIZE, base_sha[:16]))
        for i in (1, 2):
            sh(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw",
                "ov%d.qcow2" % i], cwd=tmp)

        vms = [start(vmm, os.path.join(tmp, "ov%d.qcow2" % i), i) for i in (1, 2)]
        outs = [finish(p, "vm%d" % (n + 1)) for n, p in enumerate(vms)]
        want_base = hashlib.sha256(BASE_TEXT.encode()).hexdigest()
        for i, out in zip((1, 2), outs):
            if not re.search(r"^ROOTMNT 1$", out, re.M) or \
                    not re.search(r"^ROOTFS %s$" % ROOTFS_MARK, out, re.M):
                fail("vm%d: / is not the overlay's file system on /dev/vda" % i, out)
            m = re.search(r"^BASE (\w+)\s", out, re.M)
            if not m or m.group(1) != want_base:
                fail("vm%d: the base file reads %s, want %s" % (i, m and m.group(1), want_base), out)
            listed = re.findall(r"^LS(\S+)$", out, re.M)
            if listed != ["vm%d.txt" % i]:
                fail("vm%d: /root holds %s, want only vm%d.txt" % (i, listed, i), out)
            print("ok: vm%d: root on its overlay, read the base file, wrote /root/vm%d.txt" % (i, i))

        if sha256(base) != base_sha:
            fail("the base image changed")
        print("ok: the base image is unchanged")
        for i in (1, 2):
            ov = os.path.join(tmp, "ov%d.qcow2" % i)
            st, out = sh(["qemu-img", "check", ov], ok=(0, 1, 2, 3))
            if st != 0 or "No errors were found" not in out:
                fail("qemu-img check ov%d: status %d" % (i, st), out)
            flat = os.path.join(tmp, "ov%d.raw" % i)
            sh(["qemu-img", "convert", "-O", "raw", ov, flat])
            sh(["e2fsck", "-fn", flat])
            got, err = debugfs(flat, "cat /root/vm%d.txt" % i)
            if got != "vm%d-wrote-this\n" % i:
                fail("ov%d: /root/vm%d.txt reads %r (%s)" % (i, i, got, err.strip()))
            other = 3 - i
            got, err = debugfs(flat, "stat /root/vm%d.txt" % other)
            if "File not found" not in err:
                fail("ov%d holds vm%d's file too: %r %r" % (i, other, got, err))
            got, err = debugfs(flat, "cat /etc/base-file.txt")
            if got != BASE_TEXT:
                fail("ov%d: the base file reads differently through the overlay" % i)
            st, out = sh(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", ov, base], ok=(0, 1))
            if st != 1:
                fail("qemu-img compare ov%d base: status %d, want 1 (they differ)" % (i, st), out)
            os.unlink(flat)
            print("ok: ov%d: qemu-img check clean, e2fsck clean, holds vm%d.txt only, "
                  "the base file through it" % (i, i))
        st, out = sh(["qemu-img", "compare", os.path.join(tmp, "ov1.qcow2"), os.path.join(tmp, "ov2.qcow2")],
                     ok=(0, 1))
        if st != 1:
            fail("qemu-img compare ov1 ov2: status %d, want 1" % st, out)
        print("ok: two VMs on one base, each write in its own overlay")
        return 0
    finally:
        for p in procs:
            linuxguest.kill(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
