#!/usr/bin/env python3
"""Wraps a raw 64-bit kernel image in a bzImage setup block.

usage: mkbzimage.py [--compress xz|gzip|zstd] KERNEL.elf KERNEL.bin OUT

KERNEL.bin is `objcopy -O binary` of KERNEL.elf, which must be linked at
0x100000 with its 64-bit entry at 0x100200 (the Linux boot protocol's
startup_64). The ELF gives init_size: the memory the image needs from
0x100000 on, .bss included. OUT is two 512-byte sectors of setup (the boot
sector and one setup sector: setup_sects = 1) followed by KERNEL.bin.

With --compress, the image also carries KERNEL.elf compressed as Linux's
build does it (the stream, then the ELF's size as 4 little-endian bytes),
as the payload (payload_offset, payload_length) after KERNEL.bin and its
.bss, where the guest never looks: a loader that unpacks the payload on
the host enters the ELF at the same 0x100200; one that does not runs
KERNEL.bin itself. The guest tells which happened by whether the payload
is in its memory. xz and gzip come from Python; zstd from the zstd
program (exit status 77 when it is not installed).

The setup header (Documentation/arch/x86/boot.rst), protocol 2.15:
LOADED_HIGH, XLF_KERNEL_64, cmdline_size 2048, initrd_addr_max 0x37ffffff,
kernel_alignment 2 MiB, not relocatable. The real-mode entry (setup code
at 0x200) and the 32-bit entry are not supported: the first writes 1 to
the test-exit port (0xf4) and halts; the second is the image's business.
"""
import gzip
import lzma
import shutil
import struct
import subprocess
import sys

LOAD_ADDR = 0x100000
ENTRY64 = LOAD_ADDR + 0x200
SETUP_SECTS = 1
SETUP_SIZE = (SETUP_SECTS + 1) * 512
HDR_END = 0x26C  # end of the 2.15 header (kernel_info_offset)
VERSION_STRING = b"kumo bzimage test guest\0"

# Real mode, at 0x200 + 2 + jump: mov $1,%al; out %al,$0xf4; cli; 1: hlt; jmp 1b
REAL_MODE_STUB = bytes([0xB0, 0x01, 0xE6, 0xF4, 0xFA, 0xF4, 0xEB, 0xFD])


def die(msg):
    sys.exit(f"mkbzimage.py: {msg}")


def elf_memory_end(elf):
    """The highest p_vaddr + p_memsz of the ELF64's PT_LOAD segments."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        die("not a little-endian ELF64 file")
    (e_entry, e_phoff) = struct.unpack_from("<QQ", elf, 0x18)
    (e_phentsize, e_phnum) = struct.unpack_from("<HH", elf, 0x36)
    if e_entry != ENTRY64:
        die(f"the entry is 0x{e_entry:x}, not 0x{ENTRY64:x}")
    start, end = None, 0
    for i in range(e_phnum):
        p_type, _flags, _off, vaddr, _paddr, _filesz, memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", elf, e_phoff + i * e_phentsize)
        if p_type != 1 or memsz == 0:  # PT_LOAD
            continue
        start = vaddr if start is None else min(start, vaddr)
        end = max(end, vaddr + memsz)
    if start != LOAD_ADDR:
        die(f"the image starts at 0x{start or 0:x}, not 0x{LOAD_ADDR:x}")
    return end


def compress(fmt, data):
    """data as a Linux kernel payload: the stream, then its size."""
    if fmt == "xz":
        # As scripts/xz_wrap.sh: CRC32, the x86 BCJ filter, LZMA2.
        out = lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                            filters=[{"id": lzma.FILTER_X86},
                                     {"id": lzma.FILTER_LZMA2, "preset": 9}])
    elif fmt == "gzip":
        out = gzip.compress(data, compresslevel=9, mtime=0)
    elif fmt == "zstd":
        if not shutil.which("zstd"):
            print("mkbzimage.py: zstd is not installed", file=sys.stderr)
            sys.exit(77)
        out = subprocess.run(["zstd", "-19", "-q", "-c"], input=data, check=True,
                             stdout=subprocess.PIPE).stdout
    else:
        die(f"unknown format {fmt}")
    return out + struct.pack("<I", len(data))


def setup_block(payload_len, init_size, payload_offset=0, payload_length=0):
    s = bytearray(SETUP_SIZE)

    def put(off, fmt, *v):
        struct.pack_into("<" + fmt, s, off, *v)

    put(0x1F1, "B", SETUP_SECTS)           # setup_sects
    put(0x1F4, "I", (payload_len + 15) // 16)  # syssize, in 16-byte units
    put(0x1FE, "H", 0xAA55)                # boot_flag
    put(0x200, "BB", 0xEB, HDR_END - 0x202)  # jmp over the header
    s[0x202:0x206] = b"HdrS"               # header
    put(0x206, "H", 0x020F)                # version 2.15
    put(0x20E, "H", HDR_END + len(REAL_MODE_STUB) - 0x200)  # kernel_version
    put(0x211, "B", 0x01)                  # loadflags: LOADED_HIGH
    put(0x214, "I", LOAD_ADDR)             # code32_start
    put(0x22C, "I", 0x37FFFFFF)            # initrd_addr_max
    put(0x230, "I", 0x200000)              # kernel_alignment
    put(0x234, "B", 0)                     # relocatable_kernel
    put(0x235, "B", 21)                    # min_alignment (2 MiB)
    put(0x236, "H", 0x0001)                # xloadflags: XLF_KERNEL_64
    put(0x238, "I", 2048)                  # cmdline_size
    put(0x248, "I", payload_offset)        # payload_offset (from 0x100000)
    put(0x24C, "I", payload_length)        # payload_length
    put(0x258, "Q", LOAD_ADDR)             # pref_address
    put(0x260, "I", init_size)             # init_size
    s[HDR_END:HDR_END + len(REAL_MODE_STUB)] = REAL_MODE_STUB
    v = HDR_END + len(REAL_MODE_STUB)
    s[v:v + len(VERSION_STRING)] = VERSION_STRING
    return bytes(s)


def main():
    args = sys.argv[1:]
    fmt = None
    if len(args) == 5 and args[0] == "--compress":
        fmt = args[1]
        args = args[2:]
    if len(args) != 3:
        die("usage: mkbzimage.py [--compress xz|gzip|zstd] KERNEL.elf KERNEL.bin OUT")
    with open(args[0], "rb") as f:
        elf = f.read()
    with open(args[1], "rb") as f:
        raw = f.read()
    end = elf_memory_end(elf)
    if len(raw) < 0x200 + 1 or LOAD_ADDR + len(raw) > end:
        die(f"{args[1]} ({len(raw)} bytes) does not match {args[0]}")
    init_size = (end - LOAD_ADDR + 4095) & ~4095
    kernel, off, plen = raw, 0, 0
    if fmt:
        payload = compress(fmt, elf)
        off, plen = init_size, len(payload)
        kernel = raw + bytes(off - len(raw)) + payload
        # Room for the payload, and for the ELF a loader unpacks it to.
        init_size = (max(off + plen, len(elf)) + 4095) & ~4095
    with open(args[2], "wb") as f:
        f.write(setup_block(len(kernel), init_size, off, plen))
        f.write(kernel)


if __name__ == "__main__":
    main()
