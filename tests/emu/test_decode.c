/* Unit tests of the emu engine's instruction decoder (src/emu/decode.c).
 *
 * The core is a table of encodings with what emu_decode must say about
 * them. Every field of struct emu_insn is checked on each DECODE_OK entry:
 * those the entry does not name must have their default (no prefix, no
 * ModRM, base/index -1, scale 1, disp/imm 0, the mode's operand and
 * address size). Every OK entry is also decoded from every shorter prefix
 * of its bytes (each in an exactly-sized heap buffer, so ASan sees any read
 * past avail), which must all say DECODE_NEED_MORE.
 *
 * The lengths in the table were checked against binutils (objdump -D -b
 * binary -m i386:x86-64 -M intel64, -m i386, -m i8086); the last test does
 * that for a few thousand random byte strings at run time when objdump is
 * installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cpu.h"

enum { R = MODE_REAL, P16 = MODE_PROT16, P32 = MODE_PROT32, C16 = MODE_COMPAT16,
       C32 = MODE_COMPAT32, L64 = MODE_LONG64 };

#define OK DECODE_OK
#define UD DECODE_UD

struct tcase {
	int mode;
	const char *hex;
	int rc;
	/* key=value checks: len map op os as rex rep seg m=mod/reg/rm b i s d
	 * imm imm2; flags: lock osp sib rip. */
	const char *want;
};

static const struct tcase cases[] = {
	/* ---- legacy prefixes ---- */
	{ L64, "90", OK, "len=1 op=0x90" },
	{ L64, "f3 90", OK, "len=2 rep=0xf3" },                       /* PAUSE */
	{ L64, "f2 f3 a4", OK, "len=3 rep=0xf3 op=0xa4" },            /* last of F2/F3 */
	{ L64, "f3 f2 a4", OK, "len=3 rep=0xf2" },
	{ L64, "f3 48 a5", OK, "len=3 rep=0xf3 rex=0x48 os=8" },      /* rep movsq */
	{ L64, "66 f3 ab", OK, "len=3 rep=0xf3 osp os=2" },           /* rep stosw */
	{ L64, "f2 ae", OK, "len=2 rep=0xf2" },
	{ L64, "64 8b 00", OK, "len=3 seg=fs m=0/0/0 b=0" },
	{ L64, "65 48 8b 04 25 28 00 00 00", OK,
	  "len=9 seg=gs rex=0x48 os=8 m=0/0/4 sib d=0x28" },
	{ L64, "26 8b 00", OK, "len=3 m=0/0/0 b=0" },                 /* ES/CS/SS/DS: none */
	{ L64, "2e 8b 00", OK, "len=3 m=0/0/0 b=0" },
	{ L64, "36 8b 00", OK, "len=3 m=0/0/0 b=0" },
	{ L64, "3e 8b 00", OK, "len=3 m=0/0/0 b=0" },
	{ L64, "64 2e 8b 00", OK, "len=4 seg=fs m=0/0/0 b=0" },       /* CS: ignored */
	{ L64, "65 3e 26 8b 00", OK, "len=5 seg=gs m=0/0/0 b=0" },
	{ P32, "64 2e 8b 00", OK, "len=4 seg=cs m=0/0/0 b=0" },       /* the last one counts */
	{ L64, "2e 64 8b 00", OK, "len=4 seg=fs m=0/0/0 b=0" },
	{ L64, "64 65 8b 00", OK, "len=4 seg=gs m=0/0/0 b=0" },
	{ P32, "26 8b 00", OK, "len=3 seg=es m=0/0/0 b=0" },
	{ P32, "2e 8b 00", OK, "len=3 seg=cs m=0/0/0 b=0" },
	{ P32, "36 8b 00", OK, "len=3 seg=ss m=0/0/0 b=0" },
	{ P32, "3e 8b 00", OK, "len=3 seg=ds m=0/0/0 b=0" },
	{ P32, "64 8b 00", OK, "len=3 seg=fs m=0/0/0 b=0" },
	{ P32, "65 8b 00", OK, "len=3 seg=gs m=0/0/0 b=0" },
	{ P32, "26 3e 8b 00", OK, "len=4 seg=ds m=0/0/0 b=0" },
	{ R, "26 8b 07", OK, "len=3 seg=es m=0/0/7 b=3" },
	{ L64, "66 89 c8", OK, "len=3 osp os=2 m=3/1/0" },
	{ L64, "67 8b 00", OK, "len=3 as=4 m=0/0/0 b=0" },
	{ L64, "66 67 8b 00", OK, "len=4 osp os=2 as=4 m=0/0/0 b=0" },
	{ L64, "66 66 66 90", OK, "len=4 osp os=2" },
	{ L64, "f0 f3 2e 66 67 ff 00", OK, "len=7 lock rep=0xf3 osp os=2 as=4 m=0/0/0 b=0" },
	{ L64, "66 66 66 66 66 66 66 66 66 66 66 66 66 66 90", OK, "len=15 osp os=2" },
	{ L64, "2e 64 67 48 c7 84 88 78 56 34 12 ef be ad de", OK,   /* 15 bytes */
	  "len=15 seg=fs as=4 rex=0x48 os=8 m=2/0/4 sib b=0 i=1 s=4 d=0x12345678 imm=-0x21524111" },

	/* ---- REX ---- */
	{ L64, "48 89 c8", OK, "len=3 rex=0x48 os=8 m=3/1/0" },
	{ L64, "48 66 89 c8", OK, "len=4 osp os=2 m=3/1/0" },         /* REX then 66: ignored */
	{ L64, "66 48 89 c8", OK, "len=4 osp rex=0x48 os=8 m=3/1/0" }, /* REX.W wins over 66 */
	{ L64, "48 f3 90", OK, "len=3 rep=0xf3" },
	{ L64, "41 48 89 c8", OK, "len=4 rex=0x48 os=8 m=3/1/0" },    /* the last REX counts */
	{ L64, "48 41 89 c8", OK, "len=4 rex=0x41 m=3/1/8" },
	{ L64, "44 89 c8", OK, "len=3 rex=0x44 m=3/9/0" },
	{ L64, "49 89 c7", OK, "len=3 rex=0x49 os=8 m=3/0/15" },
	{ L64, "4d 89 f8", OK, "len=3 rex=0x4d os=8 m=3/15/8" },
	{ L64, "40 88 c4", OK, "len=3 rex=0x40 m=3/0/4" },            /* mov spl, al */
	{ L64, "88 c4", OK, "len=2 m=3/0/4" },                        /* mov ah, al */
	{ L64, "40 90", OK, "len=2 rex=0x40" },
	{ L64, "41 90", OK, "len=2 rex=0x41" },                       /* xchg r8d, eax */
	{ L64, "44 80 c0 01", OK, "len=4 rex=0x44 m=3/0/0 imm=1" },   /* REX.R: /0 stays /0 */
	{ L64, "44 d1 e0", OK, "len=3 rex=0x44 m=3/4/0" },
	{ L64, "4c 8b 24 24", OK, "len=4 rex=0x4c os=8 m=0/12/4 sib b=4" },
	{ L64, "66 48 b8 88 77 66 55 44 33 22 11", OK,
	  "len=11 osp rex=0x48 os=8 imm=0x1122334455667788" },
	{ L64, "48 66 b8 34 12", OK, "len=5 osp os=2 imm=0x1234" },
	{ P32, "40", OK, "len=1 op=0x40" },                           /* INC/DEC outside 64-bit */
	{ P32, "4f", OK, "len=1 op=0x4f" },
	{ P32, "48", OK, "len=1 op=0x48" },

	/* ---- 16-bit addressing ---- */
	{ R, "8b 00", OK, "len=2 m=0/0/0 b=3 i=6" },
	{ R, "8b 01", OK, "len=2 m=0/0/1 b=3 i=7" },
	{ R, "8b 02", OK, "len=2 m=0/0/2 b=5 i=6" },
	{ R, "8b 03", OK, "len=2 m=0/0/3 b=5 i=7" },
	{ R, "8b 04", OK, "len=2 m=0/0/4 b=6" },
	{ R, "8b 05", OK, "len=2 m=0/0/5 b=7" },
	{ R, "8b 06 34 12", OK, "len=4 m=0/0/6 d=0x1234" },
	{ R, "8b 07", OK, "len=2 m=0/0/7 b=3" },
	{ R, "8b 40 80", OK, "len=3 m=1/0/0 b=3 i=6 d=-128" },
	{ R, "8b 46 fe", OK, "len=3 m=1/0/6 b=5 d=-2" },
	{ R, "8b 4f 7f", OK, "len=3 m=1/1/7 b=3 d=127" },
	{ R, "8b 86 00 80", OK, "len=4 m=2/0/6 b=5 d=-32768" },
	{ R, "8b 97 34 12", OK, "len=4 m=2/2/7 b=3 d=0x1234" },
	{ R, "8b 1e 00 80", OK, "len=4 m=0/3/6 d=-32768" },
	{ R, "8b c3", OK, "len=2 m=3/0/3" },
	{ R, "66 8b 00", OK, "len=3 osp os=4 m=0/0/0 b=3 i=6" },
	{ R, "67 8b 04 88", OK, "len=4 as=4 m=0/0/4 sib b=0 i=1 s=4" },
	{ R, "67 8b 05 78 56 34 12", OK, "len=7 as=4 m=0/0/5 d=0x12345678" },
	{ R, "67 66 8b 44 24 08", OK, "len=6 as=4 osp os=4 m=1/0/4 sib b=4 d=8" },
	{ P16, "8b 00", OK, "len=2 m=0/0/0 b=3 i=6" },
	{ P16, "8b 46 02", OK, "len=3 m=1/0/6 b=5 d=2" },
	{ C16, "8b 00", OK, "len=2 m=0/0/0 b=3 i=6" },
	{ C16, "67 8b 00", OK, "len=3 as=4 m=0/0/0 b=0" },
	{ P32, "67 8b 00", OK, "len=3 as=2 m=0/0/0 b=3 i=6" },
	{ P32, "67 8b 0e 34 12", OK, "len=5 as=2 m=0/1/6 d=0x1234" },
	{ C32, "67 8b 46 fe", OK, "len=4 as=2 m=1/0/6 b=5 d=-2" },

	/* ---- 32-bit addressing ---- */
	{ P32, "8b 00", OK, "len=2 m=0/0/0 b=0" },
	{ P32, "8b 03", OK, "len=2 m=0/0/3 b=3" },
	{ P32, "8b 04 24", OK, "len=3 m=0/0/4 sib b=4" },
	{ P32, "8b 04 88", OK, "len=3 m=0/0/4 sib b=0 i=1 s=4" },
	{ P32, "8b 04 48", OK, "len=3 m=0/0/4 sib b=0 i=1 s=2" },
	{ P32, "8b 04 c8", OK, "len=3 m=0/0/4 sib b=0 i=1 s=8" },
	{ P32, "8b 04 a0", OK, "len=3 m=0/0/4 sib b=0 s=4" },         /* index 4: none */
	{ P32, "8b 05 78 56 34 12", OK, "len=6 m=0/0/5 d=0x12345678" },
	{ P32, "8b 04 25 78 56 34 12", OK, "len=7 m=0/0/4 sib d=0x12345678" },
	{ P32, "8b 04 8d 78 56 34 12", OK, "len=7 m=0/0/4 sib i=1 s=4 d=0x12345678" },
	{ P32, "8b 44 24 08", OK, "len=4 m=1/0/4 sib b=4 d=8" },
	{ P32, "8b 45 fc", OK, "len=3 m=1/0/5 b=5 d=-4" },
	{ P32, "8b 45 00", OK, "len=3 m=1/0/5 b=5" },
	{ P32, "8b 44 8d 10", OK, "len=4 m=1/0/4 sib b=5 i=1 s=4 d=16" },
	{ P32, "8b 80 78 56 34 12", OK, "len=6 m=2/0/0 b=0 d=0x12345678" },
	{ P32, "8b 84 c8 00 00 00 80", OK, "len=7 m=2/0/4 sib b=0 i=1 s=8 d=-0x80000000" },
	{ P32, "8b 85 00 01 00 00", OK, "len=6 m=2/0/5 b=5 d=256" },
	{ P32, "8b c1", OK, "len=2 m=3/0/1" },
	{ C32, "8b 05 78 56 34 12", OK, "len=6 m=0/0/5 d=0x12345678" }, /* not RIP-relative */
	{ P16, "67 8b 04 88", OK, "len=4 as=4 m=0/0/4 sib b=0 i=1 s=4" },

	/* ---- 64-bit addressing ---- */
	{ L64, "8b 00", OK, "len=2 m=0/0/0 b=0" },
	{ L64, "8b 05 78 56 34 12", OK, "len=6 m=0/0/5 rip d=0x12345678" },
	{ L64, "8b 05 f8 ff ff ff", OK, "len=6 m=0/0/5 rip d=-8" },
	{ L64, "67 8b 05 f8 ff ff ff", OK, "len=7 as=4 m=0/0/5 rip d=-8" },
	{ L64, "41 8b 05 00 01 00 00", OK, "len=7 rex=0x41 m=0/0/13 rip d=256" }, /* REX.B: still RIP */
	{ L64, "48 8d 05 00 00 00 00", OK, "len=7 rex=0x48 os=8 m=0/0/5 rip" },
	{ L64, "41 8b 45 00", OK, "len=4 rex=0x41 m=1/0/13 b=13" },
	{ L64, "41 8b 44 24 08", OK, "len=5 rex=0x41 m=1/0/12 sib b=12 d=8" },
	{ L64, "42 8b 04 20", OK, "len=4 rex=0x42 m=0/0/4 sib b=0 i=12" }, /* REX.X: r12 index */
	{ L64, "43 8b 04 2c", OK, "len=4 rex=0x43 m=0/0/12 sib b=12 i=13" },
	{ L64, "41 8b 04 25 78 56 34 12", OK, "len=8 rex=0x41 m=0/0/12 sib d=0x12345678" },
	{ L64, "41 8b 04 24", OK, "len=4 rex=0x41 m=0/0/12 sib b=12" },
	{ L64, "41 8b 44 25 00", OK, "len=5 rex=0x41 m=1/0/12 sib b=13" },
	{ L64, "4a 8b 04 e5 00 10 00 00", OK, "len=8 rex=0x4a os=8 m=0/0/4 sib i=12 s=8 d=4096" },
	{ L64, "4e 8b 84 f9 00 ff ff ff", OK,
	  "len=8 rex=0x4e os=8 m=2/8/4 sib b=1 i=15 s=8 d=-256" },
	{ L64, "8b 44 24 f8", OK, "len=4 m=1/0/4 sib b=4 d=-8" },
	{ L64, "8b 84 24 00 00 00 80", OK, "len=7 m=2/0/4 sib b=4 d=-0x80000000" },
	{ L64, "48 8b 04 c5 00 00 00 00", OK, "len=8 rex=0x48 os=8 m=0/0/4 sib i=0 s=8" },
	{ L64, "67 8b 44 88 10", OK, "len=5 as=4 m=1/0/4 sib b=0 i=1 s=4 d=16" },
	{ L64, "8b c1", OK, "len=2 m=3/0/1" },
	{ L64, "45 8b c1", OK, "len=3 rex=0x45 m=3/8/9" },

	/* ---- immediates ---- */
	{ L64, "83 c0 ff", OK, "len=3 m=3/0/0 imm=-1" },
	{ L64, "48 83 c0 80", OK, "len=4 rex=0x48 os=8 m=3/0/0 imm=-128" },
	{ L64, "80 c1 ff", OK, "len=3 m=3/0/1 imm=-1" },
	{ L64, "04 7f", OK, "len=2 imm=127" },
	{ L64, "05 78 56 34 12", OK, "len=5 imm=0x12345678" },
	{ L64, "48 05 00 00 00 80", OK, "len=6 rex=0x48 os=8 imm=-0x80000000" },
	{ L64, "66 05 34 12", OK, "len=4 osp os=2 imm=0x1234" },
	{ L64, "66 05 00 80", OK, "len=4 osp os=2 imm=-0x8000" },
	{ L64, "66 81 c1 34 12", OK, "len=5 osp os=2 m=3/0/1 imm=0x1234" },
	{ L64, "81 38 78 56 34 12", OK, "len=6 m=0/7/0 b=0 imm=0x12345678" },
	{ L64, "81 84 24 00 01 00 00 ff ff ff ff", OK,
	  "len=11 m=2/0/4 sib b=4 d=256 imm=-1" },
	{ L64, "c7 05 00 00 00 00 01 00 00 00", OK, "len=10 m=0/0/5 rip imm=1" }, /* disp then imm */
	{ L64, "c7 c0 ff ff ff ff", OK, "len=6 m=3/0/0 imm=-1" },
	{ L64, "48 c7 c0 ff ff ff ff", OK, "len=7 rex=0x48 os=8 m=3/0/0 imm=-1" },
	{ L64, "66 c7 00 34 12", OK, "len=5 osp os=2 m=0/0/0 b=0 imm=0x1234" },
	{ L64, "c6 00 ff", OK, "len=3 m=0/0/0 b=0 imm=-1" },
	{ L64, "69 c1 00 01 00 00", OK, "len=6 m=3/0/1 imm=256" },
	{ L64, "6b c1 fe", OK, "len=3 m=3/0/1 imm=-2" },
	{ L64, "66 6b c1 fe", OK, "len=4 osp os=2 m=3/0/1 imm=-2" },
	{ L64, "a8 80", OK, "len=2 imm=-128" },
	{ L64, "a9 ff ff ff 7f", OK, "len=5 imm=0x7fffffff" },
	{ L64, "f6 c1 ff", OK, "len=3 m=3/0/1 imm=-1" },
	{ L64, "f6 c8 01", OK, "len=3 m=3/1/0 imm=1" },               /* F6 /1: TEST alias */
	{ L64, "f7 c1 78 56 34 12", OK, "len=6 m=3/0/1 imm=0x12345678" },
	{ L64, "f7 c9 78 56 34 12", OK, "len=6 m=3/1/1 imm=0x12345678" },
	{ L64, "66 f7 00 34 12", OK, "len=5 osp os=2 m=0/0/0 b=0 imm=0x1234" },
	{ L64, "f7 d1", OK, "len=2 m=3/2/1" },                         /* NOT: no immediate */
	{ L64, "f7 d9", OK, "len=2 m=3/3/1" },
	{ L64, "f7 e1", OK, "len=2 m=3/4/1" },
	{ L64, "f7 f9", OK, "len=2 m=3/7/1" },
	{ L64, "f6 30", OK, "len=2 m=0/6/0 b=0" },
	{ L64, "b0 ff", OK, "len=2 imm=0xff" },                        /* zero-extended */
	{ L64, "41 b0 01", OK, "len=3 rex=0x41 imm=1" },
	{ L64, "b8 78 56 34 12", OK, "len=5 imm=0x12345678" },
	{ L64, "b8 ff ff ff ff", OK, "len=5 imm=0xffffffff" },
	{ L64, "66 b8 ff ff", OK, "len=4 osp os=2 imm=0xffff" },
	{ L64, "48 b8 88 77 66 55 44 33 22 11", OK, "len=10 rex=0x48 os=8 imm=0x1122334455667788" },
	{ L64, "49 bf ff ff ff ff ff ff ff ff", OK, "len=10 rex=0x49 os=8 imm=-1" },
	{ R, "b8 34 12", OK, "len=3 imm=0x1234" },
	{ R, "66 b8 78 56 34 12", OK, "len=6 osp os=4 imm=0x12345678" },
	{ L64, "c0 e0 ff", OK, "len=3 m=3/4/0 imm=0xff" },             /* counts: zero-extended */
	{ L64, "c1 f8 1f", OK, "len=3 m=3/7/0 imm=31" },
	{ L64, "d1 e0", OK, "len=2 m=3/4/0" },
	{ L64, "d3 f8", OK, "len=2 m=3/7/0" },
	{ L64, "d0 30", OK, "len=2 m=0/6/0 b=0" },                     /* /6: SAL alias */
	{ L64, "cd 80", OK, "len=2 imm=0x80" },
	{ L64, "cc", OK, "len=1" },
	{ L64, "e4 80", OK, "len=2 imm=0x80" },
	{ L64, "e6 ff", OK, "len=2 imm=0xff" },
	{ L64, "e7 70", OK, "len=2 imm=0x70" },
	{ L64, "ec", OK, "len=1" },
	{ L64, "c2 08 80", OK, "len=3 os=8 imm=0x8008" },
	{ L64, "ca 00 80", OK, "len=3 imm=0x8000" },
	{ L64, "c8 10 00 01", OK, "len=4 os=8 imm2=0x10 imm=1" },       /* ENTER */
	{ L64, "c8 00 80 ff", OK, "len=4 os=8 imm2=0x8000 imm=0xff" },
	{ L64, "66 c8 08 00 00", OK, "len=5 osp os=2 imm2=8" },
	{ R, "c8 04 00 00", OK, "len=4 imm2=4" },
	{ P32, "c8 04 00 02", OK, "len=4 imm2=4 imm=2" },

	/* ---- relative branches ---- */
	{ L64, "74 fe", OK, "len=2 os=8 imm=-2" },
	{ L64, "eb 80", OK, "len=2 os=8 imm=-128" },
	{ L64, "e2 fe", OK, "len=2 os=8 imm=-2" },
	{ L64, "e3 00", OK, "len=2 os=8" },
	{ L64, "67 e3 05", OK, "len=3 os=8 as=4 imm=5" },
	{ L64, "e8 00 00 00 00", OK, "len=5 os=8" },
	{ L64, "e9 fb ff ff ff", OK, "len=5 os=8 imm=-5" },
	{ L64, "66 e8 00 00 00 00", OK, "len=6 osp os=8" },            /* Intel: 66 ignored */
	{ L64, "66 e9 00 01 00 00", OK, "len=6 osp os=8 imm=256" },
	{ L64, "66 74 00", OK, "len=3 osp os=8" },
	{ L64, "0f 84 00 01 00 00", OK, "len=6 map=0f op=0x84 os=8 imm=256" },
	{ L64, "66 0f 85 fa ff ff ff", OK, "len=7 map=0f osp os=8 imm=-6" },
	{ P32, "e8 00 00 00 00", OK, "len=5" },
	{ P32, "66 e8 fd ff", OK, "len=4 osp os=2 imm=-3" },
	{ P32, "0f 85 00 00 00 80", OK, "len=6 map=0f imm=-0x80000000" },
	{ P32, "66 0f 85 34 12", OK, "len=5 map=0f osp os=2 imm=0x1234" },
	{ R, "e8 fd ff", OK, "len=3 imm=-3" },
	{ R, "66 e8 00 00 00 00", OK, "len=6 osp os=4" },
	{ R, "0f 84 00 01", OK, "len=4 map=0f imm=256" },
	{ R, "eb fe", OK, "len=2 imm=-2" },
	{ R, "e9 00 80", OK, "len=3 imm=-0x8000" },

	/* ---- far pointers, moffs ---- */
	{ P32, "ea 78 56 34 12 08 00", OK, "len=7 imm=0x12345678 imm2=8" },
	{ P32, "66 ea 34 12 10 00", OK, "len=6 osp os=2 imm=0x1234 imm2=0x10" },
	{ P32, "9a 00 00 00 80 1b 00", OK, "len=7 imm=0x80000000 imm2=0x1b" },
	{ R, "ea 00 7c 00 00", OK, "len=5 imm=0x7c00" },
	{ R, "9a 00 80 00 f0", OK, "len=5 imm=0x8000 imm2=0xf000" },
	{ R, "66 ea 00 00 01 00 08 00", OK, "len=8 osp os=4 imm=0x10000 imm2=8" },
	{ L64, "a1 88 77 66 55 44 33 22 11", OK, "len=9 d=0x1122334455667788" },
	{ L64, "48 a3 00 00 00 00 00 00 00 80", OK, "len=10 rex=0x48 os=8 d=0x8000000000000000" },
	{ L64, "67 a0 78 56 34 12", OK, "len=6 as=4 d=0x12345678" },
	{ L64, "67 a0 00 00 00 80", OK, "len=6 as=4 d=0x80000000" },    /* zero-extended */
	{ L64, "65 48 a1 28 00 00 00 00 00 00 00", OK, "len=11 seg=gs rex=0x48 os=8 d=0x28" },
	{ P32, "a1 78 56 34 12", OK, "len=5 d=0x12345678" },
	{ P32, "a2 00 00 00 80", OK, "len=5 d=0x80000000" },
	{ P32, "67 a1 34 12", OK, "len=4 as=2 d=0x1234" },
	{ R, "a0 34 12", OK, "len=3 d=0x1234" },
	{ R, "a0 00 80", OK, "len=3 d=0x8000" },
	{ R, "67 a1 78 56 34 12", OK, "len=6 as=4 d=0x12345678" },

	/* ---- default 64-bit operand size ---- */
	{ L64, "50", OK, "len=1 os=8" },
	{ L64, "66 50", OK, "len=2 osp os=2" },
	{ L64, "41 57", OK, "len=2 rex=0x41 os=8" },
	{ L64, "58", OK, "len=1 os=8" },
	{ L64, "8f c0", OK, "len=2 os=8 m=3/0/0" },
	{ L64, "66 8f 00", OK, "len=3 osp os=2 m=0/0/0 b=0" },
	{ L64, "ff 30", OK, "len=2 os=8 m=0/6/0 b=0" },
	{ L64, "6a ff", OK, "len=2 os=8 imm=-1" },
	{ L64, "66 6a ff", OK, "len=3 osp os=2 imm=-1" },
	{ L64, "68 00 00 00 80", OK, "len=5 os=8 imm=-0x80000000" },
	{ L64, "66 68 34 12", OK, "len=4 osp os=2 imm=0x1234" },
	{ L64, "ff d0", OK, "len=2 os=8 m=3/2/0" },
	{ L64, "66 ff d0", OK, "len=3 osp os=8 m=3/2/0" },
	{ L64, "ff e0", OK, "len=2 os=8 m=3/4/0" },
	{ L64, "41 ff 24 24", OK, "len=4 rex=0x41 os=8 m=0/4/12 sib b=12" },
	{ L64, "ff 18", OK, "len=2 m=0/3/0 b=0" },                    /* CALLF m16:32 */
	{ L64, "48 ff 28", OK, "len=3 rex=0x48 os=8 m=0/5/0 b=0" },    /* JMPF m16:64 */
	{ L64, "ff c0", OK, "len=2 m=3/0/0" },
	{ L64, "9c", OK, "len=1 os=8" },
	{ L64, "66 9c", OK, "len=2 osp os=2" },
	{ L64, "9d", OK, "len=1 os=8" },
	{ L64, "c9", OK, "len=1 os=8" },
	{ L64, "c3", OK, "len=1 os=8" },
	{ L64, "66 c3", OK, "len=2 osp os=8" },
	{ L64, "cb", OK, "len=1" },
	{ L64, "48 cb", OK, "len=2 rex=0x48 os=8" },
	{ L64, "cf", OK, "len=1" },
	{ L64, "48 cf", OK, "len=2 rex=0x48 os=8" },
	{ L64, "0f a0", OK, "len=2 map=0f op=0xa0 os=8" },
	{ L64, "0f a1", OK, "len=2 map=0f op=0xa1 os=8" },
	{ L64, "0f a8", OK, "len=2 map=0f os=8" },
	{ L64, "66 0f a9", OK, "len=3 map=0f osp os=2" },
	{ P32, "50", OK, "len=1" },
	{ P32, "66 50", OK, "len=2 osp os=2" },
	{ R, "50", OK, "len=1" },
	{ R, "66 50", OK, "len=2 osp os=4" },
	{ R, "9c", OK, "len=1" },

	/* ---- MOV CR/DR: register forms, 64-bit (or 32-bit) ---- */
	{ L64, "0f 20 c0", OK, "len=3 map=0f op=0x20 os=8 m=3/0/0" },
	{ L64, "0f 20 00", OK, "len=3 map=0f op=0x20 os=8 m=3/0/0" },   /* mod 0: still a register */
	{ L64, "0f 22 5d", OK, "len=3 map=0f op=0x22 os=8 m=3/3/5" },   /* mod 1: no disp */
	{ L64, "0f 22 84", OK, "len=3 map=0f op=0x22 os=8 m=3/0/4" },   /* rm 4: no SIB */
	{ L64, "44 0f 20 c0", OK, "len=4 map=0f rex=0x44 os=8 m=3/8/0" }, /* CR8 */
	{ L64, "41 0f 22 c0", OK, "len=4 map=0f rex=0x41 os=8 m=3/0/8" },
	{ L64, "66 0f 20 c0", OK, "len=4 map=0f osp os=8 m=3/0/0" },
	{ L64, "0f 21 f8", OK, "len=3 map=0f op=0x21 os=8 m=3/7/0" },
	{ L64, "0f 23 c7", OK, "len=3 map=0f op=0x23 os=8 m=3/0/7" },
	{ P32, "0f 20 c0", OK, "len=3 map=0f os=4 m=3/0/0" },
	{ P32, "0f 22 18", OK, "len=3 map=0f os=4 m=3/3/0" },
	{ R, "0f 22 c0", OK, "len=3 map=0f os=4 m=3/0/0" },

	/* ---- groups and the 0F 01 zoo ---- */
	{ L64, "0f 01 10", OK, "len=3 map=0f op=1 os=8 m=0/2/0 b=0" },  /* LGDT */
	{ L64, "66 0f 01 18", OK, "len=4 map=0f osp os=8 m=0/3/0 b=0" },
	{ P32, "0f 01 10", OK, "len=3 map=0f m=0/2/0 b=0" },
	{ P32, "66 0f 01 10", OK, "len=4 map=0f osp os=2 m=0/2/0 b=0" },
	{ L64, "0f 01 00", OK, "len=3 map=0f os=8 m=0/0/0 b=0" },       /* SGDT */
	{ L64, "0f 01 f8", OK, "len=3 map=0f m=3/7/0" },                /* SWAPGS */
	{ L64, "41 0f 01 f8", OK, "len=4 map=0f rex=0x41 m=3/7/0" },    /* rm not extended */
	{ L64, "0f 01 f9", OK, "len=3 map=0f m=3/7/1" },                /* RDTSCP */
	{ L64, "0f 01 d0", OK, "len=3 map=0f m=3/2/0" },                /* XGETBV */
	{ L64, "0f 01 d1", OK, "len=3 map=0f m=3/2/1" },                /* XSETBV */
	{ L64, "0f 01 c8", OK, "len=3 map=0f m=3/1/0" },                /* MONITOR */
	{ L64, "0f 01 c9", OK, "len=3 map=0f m=3/1/1" },                /* MWAIT */
	{ L64, "0f 01 ca", OK, "len=3 map=0f m=3/1/2" },                /* CLAC */
	{ L64, "0f 01 c1", OK, "len=3 map=0f m=3/0/1" },                /* VMCALL */
	{ L64, "0f 01 d9", OK, "len=3 map=0f m=3/3/1" },                /* VMMCALL */
	{ L64, "0f 01 e0", OK, "len=3 map=0f m=3/4/0" },                /* SMSW eax */
	{ L64, "41 0f 01 e0", OK, "len=4 map=0f rex=0x41 m=3/4/8" },    /* SMSW r8d */
	{ L64, "0f 01 f0", OK, "len=3 map=0f m=3/6/0" },                /* LMSW */
	{ L64, "0f 01 38", OK, "len=3 map=0f m=0/7/0 b=0" },            /* INVLPG */
	{ L64, "0f 01 28", UD, "" },                                    /* /5 mem */
	{ L64, "0f 00 d8", OK, "len=3 map=0f op=0 m=3/3/0" },           /* LTR */
	{ L64, "0f 00 10", OK, "len=3 map=0f m=0/2/0 b=0" },            /* LLDT */
	{ L64, "0f 00 f0", UD, "" },
	{ L64, "0f 00 38", UD, "" },
	{ L64, "0f ae 00", OK, "len=3 map=0f op=0xae m=0/0/0 b=0" },    /* FXSAVE */
	{ L64, "48 0f ae 08", OK, "len=4 map=0f rex=0x48 os=8 m=0/1/0 b=0" },
	{ L64, "0f ae 10", OK, "len=3 map=0f m=0/2/0 b=0" },            /* LDMXCSR */
	{ L64, "0f ae 20", OK, "len=3 map=0f m=0/4/0 b=0" },            /* XSAVE */
	{ L64, "0f ae 38", OK, "len=3 map=0f m=0/7/0 b=0" },            /* CLFLUSH */
	{ L64, "0f ae e8", OK, "len=3 map=0f m=3/5/0" },                /* LFENCE */
	{ L64, "0f ae f0", OK, "len=3 map=0f m=3/6/0" },                /* MFENCE */
	{ L64, "0f ae f8", OK, "len=3 map=0f m=3/7/0" },                /* SFENCE */
	{ L64, "41 0f ae f8", OK, "len=4 map=0f rex=0x41 m=3/7/0" },
	{ L64, "f3 0f ae c0", OK, "len=4 map=0f rep=0xf3 m=3/0/0" },    /* RDFSBASE */
	{ L64, "f3 49 0f ae d8", OK, "len=5 map=0f rep=0xf3 rex=0x49 os=8 m=3/3/8" }, /* WRGSBASE */
	{ L64, "0f ae c0", UD, "" },
	{ L64, "0f ae e0", UD, "" },
	{ L64, "0f c7 08", OK, "len=3 map=0f op=0xc7 m=0/1/0 b=0" },    /* CMPXCHG8B */
	{ L64, "f0 48 0f c7 0f", OK, "len=5 map=0f lock rex=0x48 os=8 m=0/1/7 b=7" },
	{ L64, "0f c7 f0", OK, "len=3 map=0f m=3/6/0" },                /* RDRAND */
	{ L64, "48 0f c7 f8", OK, "len=4 map=0f rex=0x48 os=8 m=3/7/0" }, /* RDSEED */
	{ L64, "0f c7 c8", UD, "" },
	{ L64, "0f c7 c0", UD, "" },
	{ L64, "0f c7 30", UD, "" },                                    /* VMPTRLD */
	{ L64, "0f ba e0 05", OK, "len=4 map=0f op=0xba m=3/4/0 imm=5" },
	{ L64, "0f ba e0 ff", OK, "len=4 map=0f m=3/4/0 imm=0xff" },
	{ L64, "f0 0f ba 28 05", OK, "len=5 map=0f lock m=0/5/0 b=0 imm=5" },
	{ L64, "0f ba c0 05", UD, "" },
	{ L64, "66 0f 71 d0 04", OK, "len=5 map=0f op=0x71 osp os=2 m=3/2/0 imm=4" },
	{ L64, "0f 73 d0 04", OK, "len=4 map=0f m=3/2/0 imm=4" },
	{ L64, "66 0f 73 f8 08", OK, "len=5 map=0f osp os=2 m=3/7/0 imm=8" },
	{ L64, "66 41 0f 73 d9 04", OK, "len=6 map=0f osp os=2 rex=0x41 m=3/3/9 imm=4" },
	{ L64, "0f 71 10 04", UD, "" },
	{ L64, "0f 71 c0 04", UD, "" },
	{ L64, "0f 72 d8 04", UD, "" },
	{ L64, "8e d8", OK, "len=2 m=3/3/0" },                          /* MOV ds, eax */
	{ L64, "44 8e d8", OK, "len=3 rex=0x44 m=3/3/0" },
	{ L64, "8e 18", OK, "len=2 m=0/3/0 b=0" },
	{ L64, "8c c8", OK, "len=2 m=3/1/0" },
	{ L64, "8e c8", UD, "" },                                       /* MOV cs, eax */
	{ L64, "8e f0", UD, "" },
	{ L64, "8c f8", UD, "" },
	{ L64, "fe 10", UD, "" },
	{ L64, "ff f8", UD, "" },
	{ L64, "ff 38", UD, "" },
	{ L64, "8f 08", UD, "" },
	{ L64, "c6 08 01", UD, "" },
	{ L64, "c6 f8 00", UD, "" },                                    /* XABORT */
	{ L64, "c7 f8 00 00 00 00", UD, "" },                           /* XBEGIN */

	/* ---- LOCK ---- */
	{ L64, "f0 01 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ L64, "f0 80 00 01", OK, "len=4 lock m=0/0/0 b=0 imm=1" },
	{ L64, "f0 83 30 ff", OK, "len=4 lock m=0/6/0 b=0 imm=-1" },
	{ L64, "f0 08 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ L64, "f0 10 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ L64, "f0 18 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ L64, "f0 20 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ L64, "f0 28 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ L64, "f0 31 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ L64, "f0 86 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ L64, "f0 48 87 08", OK, "len=4 lock rex=0x48 os=8 m=0/1/0 b=0" },
	{ L64, "f0 ff 00", OK, "len=3 lock m=0/0/0 b=0" },
	{ L64, "f0 fe 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ L64, "f0 f7 18", OK, "len=3 lock m=0/3/0 b=0" },
	{ L64, "f0 f6 10", OK, "len=3 lock m=0/2/0 b=0" },
	{ L64, "f0 0f b1 08", OK, "len=4 lock map=0f m=0/1/0 b=0" },
	{ L64, "f0 0f b0 08", OK, "len=4 lock map=0f m=0/1/0 b=0" },
	{ L64, "f0 0f c1 08", OK, "len=4 lock map=0f m=0/1/0 b=0" },
	{ L64, "f0 0f c0 08", OK, "len=4 lock map=0f m=0/1/0 b=0" },
	{ L64, "f0 0f ab 08", OK, "len=4 lock map=0f m=0/1/0 b=0" },
	{ L64, "f0 0f b3 08", OK, "len=4 lock map=0f m=0/1/0 b=0" },
	{ L64, "f0 0f bb 08", OK, "len=4 lock map=0f m=0/1/0 b=0" },
	{ L64, "2e f0 66 01 08", OK, "len=5 lock osp os=2 m=0/1/0 b=0" },
	{ P32, "f0 01 08", OK, "len=3 lock m=0/1/0 b=0" },
	{ R, "f0 0f c7 0f", OK, "len=4 lock map=0f m=0/1/7 b=3" },
	{ L64, "f0 01 c8", UD, "" },                                    /* register destination */
	{ L64, "f0 03 08", UD, "" },
	{ L64, "f0 39 08", UD, "" },                                    /* CMP */
	{ L64, "f0 83 38 01", UD, "" },
	{ L64, "f0 8b 08", UD, "" },
	{ L64, "f0 90", UD, "" },
	{ L64, "f0 f7 00 01 00 00 00", UD, "" },                        /* TEST */
	{ L64, "f0 ff 20", UD, "" },
	{ L64, "f0 0f a3 08", UD, "" },                                 /* BT */
	{ L64, "f0 0f ba 20 05", UD, "" },
	{ L64, "f0 0f 20 c0", UD, "" },                                 /* MOV CR (Intel) */
	{ L64, "f0 86 c8", UD, "" },
	{ L64, "f0 d9 00", UD, "" },
	{ L64, "f0 0f c7 c8", UD, "" },

	/* ---- invalid in 64-bit mode, valid elsewhere ---- */
	{ L64, "06", UD, "" }, { L64, "07", UD, "" }, { L64, "0e", UD, "" }, { L64, "16", UD, "" },
	{ L64, "17", UD, "" }, { L64, "1e", UD, "" }, { L64, "1f", UD, "" }, { L64, "27", UD, "" },
	{ L64, "2f", UD, "" }, { L64, "37", UD, "" }, { L64, "3f", UD, "" }, { L64, "60", UD, "" },
	{ L64, "61", UD, "" }, { L64, "62 00", UD, "" }, { L64, "82 c0 01", UD, "" },
	{ L64, "9a 00 00 00 00 08 00", UD, "" }, { L64, "c4 00", UD, "" }, { L64, "c5 00", UD, "" },
	{ L64, "ce", UD, "" }, { L64, "d4 0a", UD, "" }, { L64, "d5 0a", UD, "" }, { L64, "d6", UD, "" },
	{ L64, "ea 00 00 00 00 08 00", UD, "" },
	{ L64, "c5 f8 77", UD, "" },                                    /* VEX vzeroupper */
	{ L64, "c4 e2 79 00 c0", UD, "" },
	{ L64, "62 f1 7c 48 28 c0", UD, "" },                           /* EVEX */
	{ P32, "06", OK, "len=1 op=6" }, { P32, "07", OK, "len=1 op=7" }, { P32, "0e", OK, "len=1" },
	{ P32, "16", OK, "len=1" }, { P32, "17", OK, "len=1" }, { P32, "1e", OK, "len=1" },
	{ P32, "1f", OK, "len=1" }, { P32, "27", OK, "len=1" }, { P32, "2f", OK, "len=1" },
	{ P32, "37", OK, "len=1" }, { P32, "3f", OK, "len=1" }, { P32, "60", OK, "len=1" },
	{ P32, "61", OK, "len=1" }, { P32, "ce", OK, "len=1" },
	{ P32, "62 00", OK, "len=2 m=0/0/0 b=0" },                      /* BOUND */
	{ P32, "82 c0 01", OK, "len=3 m=3/0/0 imm=1" },
	{ P32, "c4 00", OK, "len=2 m=0/0/0 b=0" },                      /* LES */
	{ P32, "c5 48 08", OK, "len=3 m=1/1/0 b=0 d=8" },               /* LDS */
	{ R, "c4 5e 04", OK, "len=3 m=1/3/6 b=5 d=4" },
	{ P32, "d4 0a", OK, "len=2 imm=10" },
	{ P32, "d5 0a", OK, "len=2 imm=10" },
	{ P32, "63 c1", OK, "len=2 m=3/0/1" },                          /* ARPL */
	{ L64, "48 63 c1", OK, "len=3 rex=0x48 os=8 m=3/0/1" },         /* MOVSXD */
	{ P32, "c4 c0", UD, "" },                                       /* VEX */
	{ P32, "c5 f8 77", UD, "" },
	{ P32, "62 c0", UD, "" },                                       /* BOUND with a register */
	{ P32, "d6", UD, "" },

	/* ---- memory-only / register-only forms ---- */
	{ L64, "8d 00", OK, "len=2 m=0/0/0 b=0" },
	{ L64, "8d c0", UD, "" },
	{ L64, "0f b2 00", OK, "len=3 map=0f m=0/0/0 b=0" },            /* LSS */
	{ L64, "0f b2 c0", UD, "" },
	{ L64, "0f b4 c0", UD, "" },
	{ L64, "0f b5 c0", UD, "" },
	{ L64, "ff d8", UD, "" },                                       /* CALLF reg */
	{ L64, "ff e8", UD, "" },
	{ L64, "0f 0d 08", OK, "len=3 map=0f m=0/1/0 b=0" },            /* PREFETCHW */
	{ L64, "0f 0d c8", UD, "" },
	{ L64, "0f c3 00", OK, "len=3 map=0f m=0/0/0 b=0" },            /* MOVNTI */
	{ L64, "0f c3 c0", UD, "" },
	{ L64, "0f 2b 00", OK, "len=3 map=0f m=0/0/0 b=0" },
	{ L64, "0f 2b c0", UD, "" },
	{ L64, "0f 13 00", OK, "len=3 map=0f m=0/0/0 b=0" },
	{ L64, "0f 13 c0", UD, "" },
	{ L64, "0f 50 c1", OK, "len=3 map=0f m=3/0/1" },                /* MOVMSKPS */
	{ L64, "0f 50 01", UD, "" },
	{ L64, "66 0f d7 c1", OK, "len=4 map=0f osp os=2 m=3/0/1" },    /* PMOVMSKB */
	{ L64, "0f d7 01", UD, "" },
	{ L64, "0f c5 c1 01", OK, "len=4 map=0f m=3/0/1 imm=1" },       /* PEXTRW */
	{ L64, "0f c5 01 01", UD, "" },
	{ L64, "0f f7 c1", OK, "len=3 map=0f m=3/0/1" },                /* MASKMOVQ */
	{ L64, "0f f7 01", UD, "" },

	/* ---- mandatory F3 ---- */
	{ L64, "f3 0f b8 c1", OK, "len=4 map=0f op=0xb8 rep=0xf3 m=3/0/1" }, /* POPCNT */
	{ L64, "f3 48 0f b8 c1", OK, "len=5 map=0f rep=0xf3 rex=0x48 os=8 m=3/0/1" },
	{ L64, "0f b8 c1", UD, "" },
	{ L64, "f2 0f b8 c1", UD, "" },
	{ L64, "f3 0f bc c1", OK, "len=4 map=0f rep=0xf3 m=3/0/1" },    /* TZCNT */
	{ L64, "0f bc c1", OK, "len=3 map=0f m=3/0/1" },                /* BSF */

	/* ---- x87 ---- */
	{ L64, "d9 c9", OK, "len=2 m=3/1/1" },                          /* FXCH st(1) */
	{ L64, "41 d9 c9", OK, "len=3 rex=0x41 m=3/1/1" },
	{ L64, "dd 00", OK, "len=2 m=0/0/0 b=0" },
	{ L64, "d9 e8", OK, "len=2 m=3/5/0" },                          /* FLD1 */
	{ L64, "df e0", OK, "len=2 m=3/4/0" },                          /* FNSTSW ax */
	{ L64, "d8 04 24", OK, "len=3 m=0/0/4 sib b=4" },
	{ L64, "dd 7d fe", OK, "len=3 m=1/7/5 b=5 d=-2" },
	{ L64, "db 2d 00 00 00 00", OK, "len=6 m=0/5/5 rip" },
	{ L64, "de c1", OK, "len=2 m=3/0/1" },
	{ L64, "9b", OK, "len=1" },
	{ L64, "d9 08", UD, "" },
	{ L64, "db 20", UD, "" },
	{ L64, "db 30", UD, "" },
	{ L64, "dd 28", UD, "" },

	/* ---- 0F 38 / 0F 3A ---- */
	{ L64, "66 0f 38 00 c1", OK, "len=5 map=38 op=0 osp os=2 m=3/0/1" }, /* PSHUFB */
	{ L64, "0f 38 00 c1", OK, "len=4 map=38 op=0 m=3/0/1" },
	{ L64, "66 0f 38 0b 04 24", OK, "len=6 map=38 op=0xb osp os=2 m=0/0/4 sib b=4" },
	{ L64, "66 0f 38 1c c1", OK, "len=5 map=38 op=0x1c osp os=2 m=3/0/1" },
	{ L64, "66 44 0f 38 1e c1", OK, "len=6 map=38 op=0x1e osp os=2 rex=0x44 m=3/8/1" },
	{ L64, "66 0f 3a 0f c1 08", OK, "len=6 map=3a op=0xf osp os=2 m=3/0/1 imm=8" },
	{ L64, "0f 3a 0f c1 ff", OK, "len=5 map=3a op=0xf m=3/0/1 imm=0xff" },
	{ L64, "66 0f 3a 0f 44 24 10 03", OK, "len=8 map=3a osp os=2 m=1/0/4 sib b=4 d=16 imm=3" },
	{ L64, "0f 38 f0 00", OK, "len=4 map=38 op=0xf0 m=0/0/0 b=0" },  /* MOVBE */
	{ L64, "66 0f 38 f1 00", OK, "len=5 map=38 op=0xf1 osp os=2 m=0/0/0 b=0" },
	{ L64, "f2 0f 38 f0 c1", OK, "len=5 map=38 op=0xf0 rep=0xf2 m=3/0/1" }, /* CRC32 */
	{ L64, "f2 48 0f 38 f1 c1", OK, "len=6 map=38 op=0xf1 rep=0xf2 rex=0x48 os=8 m=3/0/1" },
	{ L64, "0f 38 f0 c0", UD, "" },
	{ L64, "66 0f 38 10 c1", UD, "" },                              /* SSE4.1 */
	{ L64, "66 0f 38 0c c1", UD, "" },
	{ L64, "66 0f 3a 0e c1 00", UD, "" },
	{ L64, "0f 3a 00 c1 00", UD, "" },

	/* ---- the 0F map ---- */
	{ L64, "0f 05", OK, "len=2 map=0f op=5" },
	{ L64, "0f 07", OK, "len=2 map=0f op=7" },
	{ L64, "48 0f 07", OK, "len=3 map=0f rex=0x48 os=8" },
	{ L64, "0f 34", OK, "len=2 map=0f op=0x34" },
	{ L64, "0f 35", OK, "len=2 map=0f op=0x35" },
	{ L64, "0f a2", OK, "len=2 map=0f op=0xa2" },
	{ L64, "0f 30", OK, "len=2 map=0f op=0x30" },
	{ L64, "0f 31", OK, "len=2 map=0f op=0x31" },
	{ L64, "0f 32", OK, "len=2 map=0f op=0x32" },
	{ L64, "0f 33", OK, "len=2 map=0f op=0x33" },
	{ L64, "0f 06", OK, "len=2 map=0f op=6" },
	{ L64, "0f 08", OK, "len=2 map=0f op=8" },
	{ L64, "0f 09", OK, "len=2 map=0f op=9" },
	{ L64, "0f aa", OK, "len=2 map=0f op=0xaa" },
	{ L64, "0f 02 c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "0f 03 c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "0f 1f 00", OK, "len=3 map=0f op=0x1f m=0/0/0 b=0" },
	{ L64, "0f 1f 44 00 00", OK, "len=5 map=0f m=1/0/4 sib b=0 i=0" },
	{ L64, "66 0f 1f 84 00 00 00 00 00", OK, "len=9 map=0f osp os=2 m=2/0/4 sib b=0 i=0" },
	{ L64, "f3 0f 1e fa", OK, "len=4 map=0f rep=0xf3 m=3/7/2" },      /* ENDBR64 */
	{ L64, "0f 18 08", OK, "len=3 map=0f m=0/1/0 b=0" },
	{ L64, "0f 19 c0", OK, "len=3 map=0f m=3/0/0" },
	{ L64, "0f 44 c1", OK, "len=3 map=0f op=0x44 m=3/0/1" },
	{ L64, "48 0f 4f 04 24", OK, "len=5 map=0f rex=0x48 os=8 m=0/0/4 sib b=4" },
	{ L64, "0f 94 c0", OK, "len=3 map=0f op=0x94 m=3/0/0" },
	{ L64, "0f b6 c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "48 0f be c1", OK, "len=4 map=0f rex=0x48 os=8 m=3/0/1" },
	{ L64, "0f a3 c8", OK, "len=3 map=0f m=3/1/0" },
	{ L64, "0f a4 c1 04", OK, "len=4 map=0f m=3/0/1 imm=4" },
	{ L64, "0f a5 c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "0f ac c1 ff", OK, "len=4 map=0f m=3/0/1 imm=0xff" },
	{ L64, "0f ad c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "0f af c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "0f b0 c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "0f c1 c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "0f c8", OK, "len=2 map=0f op=0xc8" },
	{ L64, "49 0f cf", OK, "len=3 map=0f op=0xcf rex=0x49 os=8" },
	{ L64, "0f 10 c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "0f 28 c1", OK, "len=3 map=0f m=3/0/1" },
	{ L64, "66 0f 6f c1", OK, "len=4 map=0f osp os=2 m=3/0/1" },
	{ L64, "f3 0f 6f 04 24", OK, "len=5 map=0f rep=0xf3 m=0/0/4 sib b=4" },
	{ L64, "66 45 0f 6f c1", OK, "len=5 map=0f osp os=2 rex=0x45 m=3/8/9" },
	{ L64, "66 0f 70 c1 1b", OK, "len=5 map=0f osp os=2 m=3/0/1 imm=0x1b" },
	{ L64, "0f c2 c1 01", OK, "len=4 map=0f m=3/0/1 imm=1" },
	{ L64, "66 0f c6 c1 44", OK, "len=5 map=0f osp os=2 m=3/0/1 imm=0x44" },
	{ L64, "0f c4 c1 03", OK, "len=4 map=0f m=3/0/1 imm=3" },
	{ L64, "0f 77", OK, "len=2 map=0f op=0x77" },
	{ L64, "66 0f d6 c1", OK, "len=4 map=0f osp os=2 m=3/0/1" },
	{ L64, "66 0f ef c0", OK, "len=4 map=0f osp os=2 m=3/0/0" },
	{ L64, "0f fe 05 00 00 00 00", OK, "len=7 map=0f m=0/0/5 rip" },
	{ L64, "f2 0f 10 05 10 00 00 00", OK, "len=8 map=0f rep=0xf2 m=0/0/5 rip d=16" },
	{ L64, "0f 0b", UD, "" },                                       /* UD2 */
	{ L64, "0f b9 c0", UD, "" },                                    /* UD1 */
	{ L64, "0f ff c0", UD, "" },                                    /* UD0 */
	{ L64, "0f 04", UD, "" },
	{ L64, "0f 0e", UD, "" },                                       /* FEMMS */
	{ L64, "0f 0f c1 b4", UD, "" },                                 /* 3DNow */
	{ L64, "0f 78 c0", UD, "" },                                    /* VMREAD */
	{ L64, "0f 37", UD, "" },                                       /* GETSEC */
	{ L64, "0f 24 c0", UD, "" },
	{ L64, "0f a6", UD, "" },
	{ P32, "0f 05", OK, "len=2 map=0f" },                           /* the executor decides */

	/* ---- other one-byte opcodes ---- */
	{ L64, "f1", OK, "len=1" },
	{ L64, "f4", OK, "len=1" },
	{ L64, "d7", OK, "len=1" },
	{ L64, "98", OK, "len=1" },
	{ L64, "48 98", OK, "len=2 rex=0x48 os=8" },
	{ L64, "6c", OK, "len=1" },
	{ L64, "a6", OK, "len=1" },
	{ L64, "9e", OK, "len=1" },
	{ L64, "91", OK, "len=1" },
	{ L64, "87 c8", OK, "len=2 m=3/1/0" },
	{ L64, "84 c0", OK, "len=2 m=3/0/0" },
	{ L64, "3b 0d 00 00 00 00", OK, "len=6 m=0/1/5 rip" },
	{ L64, "fd", OK, "len=1" },
};

/* ---- helpers ---- */

static size_t parse_hex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (*s) {
		char *end;
		unsigned long v;

		if (*s == ' ') {
			s++;
			continue;
		}
		v = strtoul(s, &end, 16);
		assert_true(end == s + 2 && v <= 0xff && n < max);
		out[n++] = (uint8_t)v;
		s = end;
	}
	return n;
}

/* A copy of the bytes in an exactly-sized heap buffer. */
static uint8_t *exact_copy(const uint8_t *b, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	assert_non_null(p);
	memcpy(p, b, n);
	return p;
}

static int decode_exact(const uint8_t *b, size_t n, enum emu_mode mode, struct emu_insn *in)
{
	uint8_t *p = exact_copy(b, n);
	int rc = emu_decode(p, n, mode, in);

	free(p);
	return rc;
}

struct want {
	unsigned len, map, op, os, as, rex, rep, seg, mod, reg, rm;
	bool has_op, has_modrm, lock, osp, sib, rip;
	int base, index, scale;
	int64_t disp;
	uint64_t imm, imm2;
};

static bool is16(int mode)
{
	return mode == R || mode == P16 || mode == C16;
}

static void parse_want(const struct tcase *t, struct want *w)
{
	char buf[256], *save = NULL;

	memset(w, 0, sizeof(*w));
	w->os = is16(t->mode) ? 2 : 4;
	w->as = t->mode == L64 ? 8 : is16(t->mode) ? 2 : 4;
	w->seg = SR_NONE;
	w->base = w->index = -1;
	w->scale = 1;
	snprintf(buf, sizeof(buf), "%s", t->want);
	for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		const char *val = eq ? eq + 1 : "";
		uint64_t v = strtoull(val, NULL, 0);

		if (eq)
			*eq = 0;
		if (!strcmp(tok, "len")) w->len = (unsigned)v;
		else if (!strcmp(tok, "map"))
			w->map = !strcmp(val, "0f") ? MAP_0F : !strcmp(val, "38") ? MAP_0F38 :
				 !strcmp(val, "3a") ? MAP_0F3A : MAP_1B;
		else if (!strcmp(tok, "op")) { w->op = (unsigned)v; w->has_op = true; }
		else if (!strcmp(tok, "os")) w->os = (unsigned)v;
		else if (!strcmp(tok, "as")) w->as = (unsigned)v;
		else if (!strcmp(tok, "rex")) w->rex = (unsigned)v;
		else if (!strcmp(tok, "rep")) w->rep = (unsigned)v;
		else if (!strcmp(tok, "seg")) {
			static const char *const names[] = { "es", "cs", "ss", "ds", "fs", "gs" };

			for (unsigned i = 0; i < 6; i++)
				if (!strcmp(val, names[i]))
					w->seg = i;
			assert_int_not_equal(w->seg, SR_NONE);
		} else if (!strcmp(tok, "m")) {
			assert_int_equal(sscanf(val, "%u/%u/%u", &w->mod, &w->reg, &w->rm), 3);
			w->has_modrm = true;
		} else if (!strcmp(tok, "b")) w->base = (int)(int64_t)v;
		else if (!strcmp(tok, "i")) w->index = (int)(int64_t)v;
		else if (!strcmp(tok, "s")) w->scale = (int)v;
		else if (!strcmp(tok, "d")) w->disp = (int64_t)v;
		else if (!strcmp(tok, "imm")) w->imm = v;
		else if (!strcmp(tok, "imm2")) w->imm2 = v;
		else if (!strcmp(tok, "lock")) w->lock = true;
		else if (!strcmp(tok, "osp")) w->osp = true;
		else if (!strcmp(tok, "sib")) w->sib = true;
		else if (!strcmp(tok, "rip")) w->rip = true;
		else
			fail_msg("bad key '%s' in \"%s\"", tok, t->want);
	}
	assert_true(w->len >= 1 && w->len <= EMU_INSN_MAX);
}

#define CHECK(field, expect) do { \
		if ((uint64_t)(field) != (uint64_t)(expect)) \
			fail_msg("[%s] mode %d: %s is %#llx, want %#llx", t->hex, t->mode, #field, \
				 (unsigned long long)(field), (unsigned long long)(expect)); \
	} while (0)

static void check_insn(const struct tcase *t, const uint8_t *bytes, const struct emu_insn *in)
{
	struct want w;

	parse_want(t, &w);
	CHECK(in->len, w.len);
	CHECK(in->map, w.map);
	if (w.has_op)
		CHECK(in->op, w.op);
	CHECK(in->opsize, w.os);
	CHECK(in->addrsize, w.as);
	CHECK(in->rex, w.rex);
	CHECK(in->rep, w.rep);
	CHECK(in->lock, w.lock);
	CHECK(in->opsize_prefix, w.osp);
	CHECK(in->seg, w.seg);
	CHECK(in->has_modrm, w.has_modrm);
	if (w.has_modrm) {
		CHECK(in->mod, w.mod);
		CHECK(in->reg, w.reg);
		CHECK(in->rm, w.rm);
	}
	CHECK(in->has_sib, w.sib);
	CHECK(in->scale, w.scale);
	CHECK(in->index, w.index);
	CHECK(in->base, w.base);
	CHECK(in->rip_relative, w.rip);
	CHECK(in->disp, w.disp);
	CHECK(in->imm, w.imm);
	CHECK(in->imm2, w.imm2);
	assert_memory_equal(in->bytes, bytes, in->len);
}

/* ---- the table ---- */

static void test_table(void **state)
{
	unsigned ok = 0, ud = 0;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct tcase *t = &cases[c];
		uint8_t bytes[32], padded[48];
		struct emu_insn in;
		size_t n = parse_hex(t->hex, bytes, sizeof(bytes));
		int rc = decode_exact(bytes, n, t->mode, &in);

		if (rc != t->rc)
			fail_msg("[%s] mode %d: rc %d, want %d", t->hex, t->mode, rc, t->rc);
		if (rc == DECODE_OK) {
			ok++;
			check_insn(t, bytes, &in);
			assert_int_equal(in.len, n); /* the table holds whole instructions */
			/* The same with more bytes after it. */
			memcpy(padded, bytes, n);
			memset(padded + n, 0x0f, sizeof(padded) - n);
			assert_int_equal(emu_decode(padded, sizeof(padded), t->mode, &in), DECODE_OK);
			check_insn(t, bytes, &in);
		} else {
			ud++;
		}
	}
	print_message("decode table: %u valid encodings, %u invalid\n", ok, ud);
	assert_true(ok + ud >= 200);
}

/* Every truncation of a valid instruction asks for more; every truncation
 * of an invalid one asks for more or already says #UD. */
static void test_truncated(void **state)
{
	unsigned n_checks = 0;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct tcase *t = &cases[c];
		uint8_t bytes[32];
		struct emu_insn in;
		size_t n = parse_hex(t->hex, bytes, sizeof(bytes));

		for (size_t avail = 0; avail < n; avail++) {
			int rc = decode_exact(bytes, avail, t->mode, &in);

			if (t->rc == DECODE_OK && rc != DECODE_NEED_MORE)
				fail_msg("[%s] mode %d, %zu bytes: rc %d, want NEED_MORE",
					 t->hex, t->mode, avail, rc);
			if (t->rc != DECODE_OK && rc != DECODE_NEED_MORE && rc != t->rc)
				fail_msg("[%s] mode %d, %zu bytes: rc %d", t->hex, t->mode, avail, rc);
			n_checks++;
		}
	}
	assert_int_equal(emu_decode(NULL, 0, MODE_LONG64, &(struct emu_insn){ 0 }), DECODE_NEED_MORE);
	print_message("truncations: %u checked\n", n_checks);
}

/* 15 bytes at most, whatever avail says. */
static void test_too_long(void **state)
{
	uint8_t b[32];
	struct emu_insn in;

	(void)state;
	memset(b, 0x66, sizeof(b));
	b[15] = 0x90;
	/* 15 prefixes + opcode: known too long from the 16th byte on. */
	assert_int_equal(decode_exact(b, 16, MODE_LONG64, &in), DECODE_TOO_LONG);
	assert_int_equal(decode_exact(b, 15, MODE_LONG64, &in), DECODE_TOO_LONG);
	assert_int_equal(decode_exact(b, 14, MODE_LONG64, &in), DECODE_NEED_MORE);
	assert_int_equal(emu_decode(b, sizeof(b), MODE_LONG64, &in), DECODE_TOO_LONG);
	assert_int_equal(emu_decode(b, sizeof(b), MODE_REAL, &in), DECODE_TOO_LONG);
	/* 14 prefixes + opcode: 15, fine. */
	b[14] = 0x90;
	assert_int_equal(decode_exact(b, 15, MODE_LONG64, &in), DECODE_OK);
	assert_int_equal(in.len, 15);
	/* Too long because of a displacement and an immediate: known as soon
	 * as the ModRM byte says a disp32 follows at byte 12. */
	memset(b, 0x2e, 10);
	memcpy(b + 10, "\xc7\x80\x00\x00\x00\x00\x01\x00\x00\x00", 10);
	for (size_t avail = 0; avail <= 20; avail++)
		assert_int_equal(decode_exact(b, avail, MODE_PROT32, &in),
				 avail < 12 ? DECODE_NEED_MORE : DECODE_TOO_LONG);
	memmove(b, b + 5, 15); /* 5 prefixes: 15 bytes */
	assert_int_equal(decode_exact(b, 15, MODE_PROT32, &in), DECODE_OK);
	assert_int_equal(in.len, 15);
	/* REX prefixes count too. */
	memset(b, 0x48, 15);
	b[15] = 0x90;
	assert_int_equal(decode_exact(b, 16, MODE_LONG64, &in), DECODE_TOO_LONG);
	assert_int_equal(decode_exact(b + 1, 15, MODE_LONG64, &in), DECODE_OK);
	assert_int_equal(in.rex, 0x48);
}

/* Every one- and two-byte opcode in every mode: an answer, no over-read,
 * and for OK a consistent instruction. */
static void test_all_opcodes(void **state)
{
	static const uint8_t tails[][8] = {
		{ 0x00, 0, 0, 0, 0, 0, 0, 0 }, { 0xc0, 1, 2, 3, 4, 5, 6, 7 },
		{ 0x84, 0x88, 1, 2, 3, 4, 5, 6 }, { 0x05, 0xff, 0xff, 0xff, 0xff, 9, 9, 9 },
		{ 0x44, 0x24, 0x08, 1, 2, 3, 4, 5 }, { 0xf8, 0, 0, 0, 0, 0, 0, 0 },
	};
	unsigned ok = 0;

	(void)state;
	for (int mode = MODE_REAL; mode <= MODE_LONG64; mode++) {
		for (unsigned esc = 0; esc < 4; esc++) {
			for (unsigned op = 0; op < 256; op++) {
				for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
					uint8_t b[16];
					size_t n = 0;
					struct emu_insn in;
					int rc;

					if (esc)
						b[n++] = 0x0f;
					if (esc == 2)
						b[n++] = 0x38;
					if (esc == 3)
						b[n++] = 0x3a;
					b[n++] = (uint8_t)op;
					memcpy(b + n, tails[t], 8);
					n += 8;
					rc = decode_exact(b, n, mode, &in);
					assert_true(rc == DECODE_OK || rc == DECODE_UD ||
						    rc == DECODE_NEED_MORE);
					if (rc != DECODE_OK)
						continue;
					ok++;
					assert_true(in.len >= 1 && in.len <= n);
					assert_memory_equal(in.bytes, b, in.len);
					assert_true(in.opsize == 2 || in.opsize == 4 || in.opsize == 8);
					assert_true(in.addrsize == 2 || in.addrsize == 4 || in.addrsize == 8);
					assert_true(in.base >= -1 && in.base < 16);
					assert_true(in.index >= -1 && in.index < 16);
					assert_true(!in.rip_relative || mode == MODE_LONG64);
					if (mode != MODE_LONG64) {
						assert_int_not_equal(in.opsize, 8);
						assert_int_not_equal(in.addrsize, 8);
					}
				}
			}
		}
	}
	assert_true(ok > 1000);
}

/* ---- cross-check with binutils ---- */

#define REC 64 /* record size: 16 random bytes, then NOPs to resync objdump */
#define NREC 4000

static uint64_t rng;

static uint64_t rnd(void) /* splitmix64 */
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* objdump prints prefixes it cannot attach to an instruction (a REX
 * followed by another prefix, say) on a line of their own. */
static bool prefix_only(const char *text)
{
	static const char *const names[] = {
		"data16", "data32", "addr16", "addr32", "cs", "ds", "es", "ss", "fs", "gs",
		"lock", "repz", "repnz", "rep", "bnd", "notrack", "xacquire", "xrelease",
	};
	char buf[128], *save = NULL;
	bool any = false;

	snprintf(buf, sizeof(buf), "%s", text);
	for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		bool known = !strncmp(tok, "rex", 3);

		for (size_t i = 0; !known && i < sizeof(names) / sizeof(names[0]); i++)
			known = !strcmp(tok, names[i]);
		if (!known)
			return false;
		any = true;
	}
	return any;
}

/* objdump's length of each record's first instruction: >0, -1 when objdump
 * finds it invalid, 0 when objdump's answer does not count (it dropped a
 * size prefix on a prefix-only line, so its length is not the CPU's). */
static void objdump_lengths(const char *path, const char *machine, int *len, size_t n)
{
	char cmd[512], line[512];
	FILE *p;
	long cur = -1;
	int acc = 0;
	bool done = true, dropped = false;

	snprintf(cmd, sizeof(cmd), "objdump -D -b binary %s --insn-width=16 %s 2>/dev/null",
		 machine, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		unsigned long addr;
		char *tab1 = strchr(line, '\t'), *tab2, *text;
		int nbytes = 0;

		if (!tab1 || sscanf(line, " %lx:", &addr) != 1)
			continue;
		tab2 = strchr(tab1 + 1, '\t');
		for (char *c = tab1 + 1; *c && *c != '\t' && *c != '\n'; c++)
			if (*c != ' ' && (c == tab1 + 1 || c[-1] == ' '))
				nbytes++;
		text = tab2 ? tab2 + 1 : (char *)"";
		text[strcspn(text, "\n")] = 0;
		for (size_t l = strlen(text); l && text[l - 1] == ' '; l--)
			text[l - 1] = 0;
		if (addr % REC == 0 && addr / REC < n) {
			cur = (long)(addr / REC);
			acc = 0;
			done = false;
			dropped = false;
		}
		if (done || cur < 0)
			continue;
		acc += nbytes;
		if (strstr(text, "(bad)") || !strncmp(text, ".byte", 5)) {
			len[cur] = -1;
			done = true;
		} else if (!prefix_only(text)) {
			len[cur] = dropped ? 0 : acc;
			done = true;
		} else if (strstr(text, "data") || strstr(text, "addr")) {
			dropped = true;
		}
	}
	assert_int_equal(pclose(p), 0);
}

static void cross_check(enum emu_mode mode, const char *machine, uint64_t seed)
{
	static const uint8_t prefixes[] = {
		0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x3e, 0x26, 0x36, 0x64, 0x65,
		0x40, 0x41, 0x42, 0x44, 0x48, 0x4c, 0x4f,
	};
	char path[] = "/tmp/kumo-decode-XXXXXX";
	uint8_t *buf = calloc(NREC, REC);
	int *olen = calloc(NREC, sizeof(int));
	unsigned both = 0, agree = 0, emu_only = 0, objdump_only = 0, skipped = 0;
	int fd;

	assert_non_null(buf);
	assert_non_null(olen);
	rng = seed;
	for (size_t k = 0; k < NREC; k++) {
		uint8_t *r = buf + k * REC;
		unsigned kind = rnd() % 3, p = 0;

		for (unsigned i = 0; i < 16; i++)
			r[i] = (uint8_t)rnd();
		memset(r + 16, 0x90, REC - 16);
		/* A third random, a third prefixes + random, a third prefixes + 0F. */
		if (kind) {
			for (unsigned np = rnd() % 4; p < np; p++)
				r[p] = prefixes[rnd() % sizeof(prefixes)];
			if (kind == 2) {
				r[p++] = 0x0f;
				if (rnd() % 4 == 0)
					r[p++] = rnd() & 1 ? 0x38 : 0x3a;
			}
		}
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, NREC * REC), NREC * REC);
	close(fd);
	objdump_lengths(path, machine, olen, NREC);
	unlink(path);

	for (size_t k = 0; k < NREC; k++) {
		struct emu_insn in;
		int rc = decode_exact(buf + k * REC, 16, mode, &in);

		/* FWAIT: objdump folds it into the x87 instruction after it. */
		if (olen[k] == 0 || (rc == DECODE_OK && in.map == MAP_1B && in.op == 0x9b)) {
			skipped++;
		} else if (rc == DECODE_OK && olen[k] > 0) {
			both++;
			if (in.len == olen[k]) {
				agree++;
			} else {
				char hex[64];

				for (unsigned i = 0; i < 16; i++)
					snprintf(hex + 3 * i, 4, "%02x ", buf[k * REC + i]);
				print_message("mode %d: %s: emu_decode %u bytes, objdump %d\n",
					      mode, hex, in.len, olen[k]);
			}
		} else if (rc == DECODE_OK) {
			emu_only++;     /* objdump: (bad) (SSE forms, x87 aliases...) */
		} else if (olen[k] > 0) {
			objdump_only++; /* ours #UD: LOCK misuse, VEX, VMX, SSE4... */
		}
	}
	print_message("objdump %s: %u records, both valid %u, same length %u (%.2f%%); "
		      "valid only for kumo %u, only for objdump %u, not compared %u\n",
		      machine, NREC, both, agree, both ? 100.0 * agree / both : 0.0,
		      emu_only, objdump_only, skipped);
	free(buf);
	free(olen);
	assert_true(both > NREC / 2);
	assert_int_equal(agree, both);
}

static void test_objdump(void **state)
{
	(void)state;
	if (system("objdump --help 2>/dev/null | grep -q 'architectures:.* i386:x86-64'") != 0) {
		print_message("no objdump for x86-64: skipped\n");
		skip();
	}
	cross_check(MODE_LONG64, "-m i386:x86-64 -M intel64", 1);
	cross_check(MODE_LONG64, "-m i386:x86-64 -M intel64", 2);
	cross_check(MODE_PROT32, "-m i386", 3);
	cross_check(MODE_REAL, "-m i8086", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_all_opcodes),
		cmocka_unit_test(test_objdump),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
