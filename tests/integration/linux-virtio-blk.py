#!/usr/bin/env python3
"""Debian's kernel on the emu engine with virtio-blk disks on sparse files.

usage: linux-virtio-blk.py KUMO_VMM

Two boots of the busybox initramfs (guest/build.sh) with three disks: a
sparse 256 MiB image (vda, with an id), a read-only 1 MiB image (vdb) and
an image of 1 MiB + 100 bytes (vdc: not a multiple of 512).

1. the guest reads vda's serial (GET_ID) and vdb's bytes, fails to write
   vdb, reads vdc's partial last sector (its bytes, then zeros) and fails
   to write it, makes a file system on vda (mkfs.ext4 when the guest has
   it, else busybox mke2fs, mounted as ext4), writes files of known
   checksums, syncs and powers off; the host finds vdb and vdc unchanged
   and e2fsck -fn finds vda clean;
2. the guest mounts vda again, reads the same checksums, writes a 32 MiB
   file, syncs, deletes it and runs fstrim: the image's allocated blocks
   end up below what the file alone took; e2fsck -fn still finds it clean.

Every process this starts is killed and the images removed on the way out.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

from linuxguest import boot_run, fail, need_guest, print, run_cmdline, vmm_args

IMAGE_SIZE = 256 << 20
RO_SIZE = 1 << 20
ODD_SIZE = (1 << 20) + 100
SERIAL = "kumo-blk-test-01"
FILES = {"f1": 20000, "f2": 100000, "f3": 300000}   # name: seq 1 N
BIG_MIB = 32

MKFS = ("if command -v mkfs.ext4 >/dev/null; then mkfs.ext4 -q -F /dev/vda; "
        "else mke2fs -F /dev/vda >/dev/null; fi")
MOUNT = "mkdir -p /mnt && mount -t ext4 /dev/vda /mnt"
SUMS = "cd /mnt && sha256sum %s | sed 's/^/SUM /' && cd /" % " ".join(sorted(FILES))
DONE = "sync && umount /mnt && echo FS-DONE"

BOOT1 = "; ".join([
    "echo SERIAL $(cat /sys/block/vda/serial)",
    "echo RO-FLAG $(cat /sys/block/vdb/ro)",
    "echo RO-SUM $(dd if=/dev/vdb bs=64k 2>/dev/null | sha256sum)",
    "if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; "
    "then echo RO-WRITE accepted; else echo RO-WRITE refused; fi",
    "echo ODD-SIZE $(cat /sys/block/vdc/size)",
    "echo ODD-TAIL $(dd if=/dev/vdc bs=512 skip=2048 count=1 2>/dev/null | sha256sum)",
    "if dd if=/dev/zero of=/dev/vdc bs=512 seek=2048 count=1 conv=fsync 2>/dev/null; "
    "then echo ODD-WRITE accepted; else echo ODD-WRITE refused; fi",
    " && ".join([MKFS, MOUNT] + ["seq 1 %d > /mnt/%s" % (n, f) for f, n in sorted(FILES.items())]
                + [SUMS, DONE]),
])
BOOT2 = " && ".join([MOUNT, SUMS, "dd if=/dev/zero of=/mnt/big bs=1M count=%d 2>/dev/null" % BIG_MIB,
                     "sync", "rm /mnt/big", "sync", "fstrim -v /mnt", DONE])


def boot(vmm, disks, script, what):
    """One boot running script; returns the console output."""
    extra = []
    for d in disks:
        extra += ["--disk", d]
    out = boot_run(vmm_args(vmm, run_cmdline(script), extra=extra), what)
    if "FS-DONE" not in out:
        fail("%s: the commands failed in the guest" % what, out)
    if re.search(r"I/O error.*vda|vda.*I/O error|virtio_blk.*(error|fail)", out, re.I):
        fail("%s: disk errors in the guest" % what, out)
    return out


def check_sums(out, what):
    want = {f: hashlib.sha256("".join("%d\n" % i for i in range(1, n + 1)).encode()).hexdigest()
            for f, n in FILES.items()}
    got = dict((m.group(2), m.group(1)) for m in re.finditer(r"^SUM (\w+)\s+(\w+)$", out, re.M))
    if got != want:
        fail("%s: checksums in the guest %s, want %s" % (what, got, want), out)
    print("ok: %s: %d files with the host's checksums" % (what, len(want)))


def fsck(image, what):
    r = subprocess.run(["e2fsck", "-fn", image], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        fail("%s: e2fsck -fn says %d" % (what, r.returncode), r.stdout.decode(errors="replace"))
    print("ok: %s: e2fsck -fn finds the image clean" % what)


def sha_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def field(out, key):
    m = re.search(r"^%s (\S+)" % key, out, re.M)
    return m.group(1) if m else None


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    vmm = sys.argv[1]
    need_guest()
    if not shutil.which("e2fsck"):
        print("SKIP: no e2fsck on the host")
        sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="kumo-blk-") as tmp:
        image, ro = os.path.join(tmp, "vda.img"), os.path.join(tmp, "vdb.img")
        with open(image, "wb") as f:
            f.truncate(IMAGE_SIZE)
        odd = os.path.join(tmp, "vdc.img")
        with open(ro, "wb") as f:
            f.write(bytes((i * 131 + (i >> 12)) & 0xff for i in range(RO_SIZE)))
        with open(odd, "wb") as f:
            f.write(bytes((i * 7 + 3) & 0xff for i in range(ODD_SIZE)))
        ro_sum, odd_sum = sha_file(ro), sha_file(odd)
        with open(odd, "rb") as f:
            f.seek(ODD_SIZE // 512 * 512)
            tail = f.read()
        tail_sum = hashlib.sha256(tail + bytes(512 - len(tail))).hexdigest()
        disks = ["%s,id=%s" % (image, SERIAL), "%s,ro" % ro, odd]

        out = boot(vmm, disks, BOOT1, "boot 1")
        if field(out, "SERIAL") != SERIAL:
            fail("vda's serial is %r, want %r" % (field(out, "SERIAL"), SERIAL), out)
        print("ok: GET_ID: /sys/block/vda/serial is %s" % SERIAL)
        if field(out, "RO-FLAG") != "1" or field(out, "RO-WRITE") != "refused":
            fail("vdb is not read-only in the guest (ro %s, write %s)" %
                 (field(out, "RO-FLAG"), field(out, "RO-WRITE")), out)
        if field(out, "RO-SUM") != ro_sum:
            fail("the guest reads vdb as %s, want %s" % (field(out, "RO-SUM"), ro_sum), out)
        if sha_file(ro) != ro_sum:
            fail("the read-only image changed on the host")
        print("ok: the read-only disk reads right, refuses a write, and is unchanged")
        if field(out, "ODD-SIZE") != str(ODD_SIZE // 512 + 1) or field(out, "ODD-TAIL") != tail_sum:
            fail("vdc: %s sectors (want %d), last sector %s (want %s)" %
                 (field(out, "ODD-SIZE"), ODD_SIZE // 512 + 1, field(out, "ODD-TAIL"), tail_sum), out)
        if field(out, "ODD-WRITE") != "refused" or sha_file(odd) != odd_sum:
            fail("vdc: a write past the end of its file was %s" % field(out, "ODD-WRITE"), out)
        print("ok: a disk of 1 MiB + 100 bytes: %d sectors, the last one zero-padded and "
              "not writable" % (ODD_SIZE // 512 + 1))
        check_sums(out, "boot 1")
        fsck(image, "after boot 1")
        before = os.stat(image).st_blocks

        out = boot(vmm, disks, BOOT2, "boot 2")
        check_sums(out, "boot 2")
        after = os.stat(image).st_blocks
        m = re.search(r"/mnt: (\d+) bytes trimmed", out)
        print("image: %d KiB allocated before, %d KiB after writing, deleting a %d MiB file "
              "and fstrim (%s bytes trimmed)" % (before // 2, after // 2, BIG_MIB,
                                                 m.group(1) if m else "?"))
        if after > before + (BIG_MIB // 2) * 2048:
            fail("the image kept %d KiB of the deleted file after fstrim" %
                 ((after - before) // 2), out)
        print("ok: fstrim in the guest punched holes in the image")
        fsck(image, "after boot 2")
    print("ok: virtio-blk on emu: ext4, checksums across boots, read-only, fstrim, serial")


if __name__ == "__main__":
    main()
