/* The x86 instruction decoder: bytes -> struct emu_insn (cpu.h). It only
 * decodes; it never looks at CPU state beyond the mode it is given.
 *
 * What the fields of struct emu_insn hold:
 *
 * - len: 1..15 on DECODE_OK; bytes[0..len) the instruction's bytes.
 * - Prefixes: any number in any order. rep is the last of F2/F3. seg is
 *   the last segment override, SR_NONE if none; in 64-bit mode ES/CS/SS/DS
 *   overrides are ignored (SDM vol. 1 3.3.7.1: as if absent, so 64 2E is
 *   FS, as binutils reads it too): only FS/GS count. rex is the REX byte
 *   (64-bit mode only) if it came right before the opcode: a REX followed
 *   by another prefix is ignored. LOCK is #UD but on the memory forms of
 *   the lockable instructions.
 * - opsize: 2/4 by the mode's default and 66, 8 with REX.W. In 64-bit mode
 *   near branches (Jcc JMP CALL RET LOOP JrCXZ, FF /2 /4) are always 8 (as
 *   on Intel: 66 does not make them 16-bit); PUSH/POP (registers, memory,
 *   immediates, FS/GS), PUSHF/POPF, ENTER/LEAVE are 8 unless 66 gives 2;
 *   SGDT/SIDT/LGDT/LIDT are 8. MOV to/from CR/DR: 8 in 64-bit mode, else 4.
 *   Byte instructions carry the size they would have as word instructions:
 *   the executor knows them from the opcode.
 * - addrsize: the mode's 2/4/8, toggled by 67 (8 <-> 4, 4 <-> 2).
 * - ModRM: mod as encoded (3 for MOV CR/DR whatever the encoding says:
 *   those are always register forms). reg includes REX.R and rm (for mod 3)
 *   REX.B, except where they are opcode extensions rather than registers:
 *   ModRM.reg of the group opcodes (80-83 8C 8E 8F C0 C1 C6 C7 D0-D3 F6 F7
 *   FE FF, 0F 00 01 0D 18-1F 71-73 AE BA C7) and of x87 (D8-DF) is the bare
 *   /digit 0-7, and so is rm of the x87 and 0F 01 register forms (ST(i),
 *   MONITOR/SWAPGS...) and of LFENCE/MFENCE/SFENCE: REX.R/REX.B do not
 *   change those instructions. For memory forms rm is informational
 *   (extended by REX.B); base/index/scale/disp say the address.
 * - Memory operands: address = base + index * scale + disp, wrapped to
 *   addrsize; base/index are GPR numbers (REX.B/REX.X included) or -1.
 *   16-bit addressing: BX+SI is base 3 index 6, BP+DI base 5 index 7,
 *   [SI] base 6, [BP] base 5 and so on; scale 1. The default segment is SS
 *   when base is 4 (SP) or 5 (BP), else DS. rip_relative (64-bit mode,
 *   mod 0 rm 5): base and index are -1 and the executor adds the address
 *   of the next instruction (rip + len) to disp. disp is sign-extended from
 *   its 1, 2 or 4 bytes. For mod 3, base and index are -1.
 * - moffs (A0-A3): the address-sized offset (2, 4 or 8 bytes) in disp,
 *   zero-extended; no ModRM, base and index -1.
 * - imm: sign-extended to 64 bits from its encoded size, except for those
 *   the SDM zero-extends or uses as unsigned, which are zero-extended:
 *   RET/RETF imm16, INT imm8, IN/OUT port imm8, AAM/AAD imm8, MOV r, imm
 *   (B0-BF), shift/rotate counts (C0 C1, SHLD/SHRD), BT* bit offsets
 *   (0F BA), the SSE/MMX imm8s (0F 70-73 C2 C4-C6, 0F 3A 0F) and far
 *   pointers. MOV r64, imm64 (REX.W B8+r) has 8 bytes.
 *   ENTER imm16, imm8: imm2 = the 16-bit frame size (the first operand),
 *   imm = the 8-bit nesting level.
 *   JMPF/CALLF ptr16:16/32 (EA/9A): imm = the offset, imm2 = the selector.
 *   Relative branches: imm is the signed displacement, from rip + len.
 *
 * Results: DECODE_TOO_LONG as soon as a byte past the 15th would be needed
 * (whatever avail is); DECODE_NEED_MORE when a byte past avail is needed
 * (nothing past avail is ever read). DECODE_UD for undefined opcodes and
 * opcodes invalid in the mode as soon as the opcode is read; the #UDs that
 * depend on ModRM (LOCK, register/memory-only forms, undefined group
 * members, a missing mandatory F3) only once the whole instruction is
 * there, since a fault fetching its later bytes would come first.
 * UD2, UD1 and UD0 are DECODE_UD. On anything but DECODE_OK the contents
 * of *insn are unspecified.
 * Not supported (#UD): VEX/EVEX (C4 C5 62 in 64-bit mode, C4/C5 with mod 3
 * elsewhere), 3DNow, VMX/SMX, RTM, SSE4.1 and up but CRC32.
 * Left to the executor: which 66/F2/F3 combinations of an SSE/MMX opcode
 * exist (the length does not depend on them; rep and opsize_prefix say
 * which were given), the x87 register forms the SDM leaves reserved, the
 * 0F 01 register forms, and CPUID-dependent instructions (SYSCALL outside
 * 64-bit mode, RDRAND, RDFSBASE...), which all decode. */
#include <string.h>

#include "cpu.h"
#include "decode_tables.h"

struct dec {
	const uint8_t *buf;
	size_t avail;
	unsigned pos;
};

/* Reads n little-endian bytes at the current position. */
static int fetch(struct dec *d, unsigned n, uint64_t *out)
{
	uint64_t v = 0;

	if (d->pos + n > EMU_INSN_MAX)
		return DECODE_TOO_LONG;
	if (d->pos + n > d->avail)
		return DECODE_NEED_MORE;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)d->buf[d->pos + i] << (8 * i);
	d->pos += n;
	*out = v;
	return 0;
}

static int64_t sext(uint64_t v, unsigned bytes)
{
	unsigned shift = 64 - 8 * bytes;

	return bytes >= 8 ? (int64_t)v : (int64_t)(v << shift) >> shift;
}

static bool is_16bit(enum emu_mode mode)
{
	return mode == MODE_REAL || mode == MODE_PROT16 || mode == MODE_COMPAT16;
}

/* 16-bit addressing: the eight base/index pairs of ModRM.rm. */
static const int8_t base16[8] = { 3, 3, 5, 5, 6, 7, 5, 3 };
static const int8_t index16[8] = { 6, 7, 6, 7, -1, -1, -1, -1 };

/* The memory operand after a ModRM byte with mod != 3. */
static int decode_mem(struct dec *d, struct emu_insn *in, bool long_mode)
{
	unsigned rm = in->rm & 7, dispsize;
	uint64_t v;
	int rc;

	if (in->addrsize == 2) {
		dispsize = in->mod == 1 ? 1 : in->mod == 2 ? 2 : 0;
		in->base = base16[rm];
		in->index = index16[rm];
		if (in->mod == 0 && rm == 6) {
			in->base = -1;
			dispsize = 2;
		}
	} else {
		dispsize = in->mod == 1 ? 1 : in->mod == 2 ? 4 : 0;
		in->base = (int8_t)(rm | (in->rex & 1) << 3);
		if (rm == 4) {
			unsigned idx, base;

			rc = fetch(d, 1, &v);
			if (rc)
				return rc;
			in->has_sib = true;
			in->scale = (uint8_t)(1 << (v >> 6));
			idx = (v >> 3 & 7) | (in->rex & 2) << 2;
			base = v & 7;
			in->index = idx == 4 ? -1 : (int8_t)idx;
			in->base = (int8_t)(base | (in->rex & 1) << 3);
			if (base == 5 && in->mod == 0) {
				in->base = -1;
				dispsize = 4;
			}
		} else if (rm == 5 && in->mod == 0) {
			in->base = -1;
			in->rip_relative = long_mode;
			dispsize = 4;
		}
	}
	if (!dispsize)
		return 0;
	rc = fetch(d, dispsize, &v);
	if (rc)
		return rc;
	in->disp = sext(v, dispsize);
	return 0;
}

/* The immediate of kind imm, sized by opsize/addrsize. */
static int decode_imm(struct dec *d, struct emu_insn *in, unsigned kind, bool zx)
{
	unsigned n;
	uint64_t v, v2;
	int rc;

	switch (kind) {
	case IMM_NONE:
		return 0;
	case IMM_WB: /* ENTER */
		if ((rc = fetch(d, 2, &v2)) || (rc = fetch(d, 1, &v)))
			return rc;
		in->imm2 = (uint16_t)v2;
		in->imm = v;
		return 0;
	case IMM_P: /* ptr16:16 / ptr16:32: offset, then selector */
		if ((rc = fetch(d, in->opsize == 2 ? 2 : 4, &v)) || (rc = fetch(d, 2, &v2)))
			return rc;
		in->imm = v;
		in->imm2 = (uint16_t)v2;
		return 0;
	case IMM_MOFFS:
		if ((rc = fetch(d, in->addrsize, &v)))
			return rc;
		in->disp = (int64_t)v;
		return 0;
	case IMM_B:
		n = 1;
		break;
	case IMM_W:
		n = 2;
		break;
	case IMM_Z:
		n = in->opsize == 2 ? 2 : 4;
		break;
	default: /* IMM_V */
		n = in->opsize;
		break;
	}
	if ((rc = fetch(d, n, &v)))
		return rc;
	in->imm = zx ? v : (uint64_t)sext(v, n);
	return 0;
}

int emu_decode(const uint8_t *buf, size_t avail, enum emu_mode mode, struct emu_insn *insn)
{
	struct dec d = { .buf = buf, .avail = avail };
	bool long_mode = mode == MODE_LONG64, mode16 = is_16bit(mode);
	bool osp = false, asp = false, ud = false;
	const struct opdesc *op;
	unsigned f, imm, os;
	uint64_t b;
	int rc;

	memset(insn, 0, sizeof(*insn));
	insn->seg = SR_NONE;
	insn->base = insn->index = -1;
	insn->scale = 1;

	/* Prefixes; a REX counts only right before the opcode. */
	for (;;) {
		if ((rc = fetch(&d, 1, &b)))
			return rc;
		switch (b) {
		case 0xf0:
			insn->lock = true;
			break;
		case 0xf2:
		case 0xf3:
			insn->rep = (uint8_t)b;
			break;
		case 0x26: case 0x2e: case 0x36: case 0x3e:
			if (!long_mode)
				insn->seg = (uint8_t)(b >> 3 & 3);
			break;
		case 0x64: case 0x65:
			insn->seg = (uint8_t)(SR_FS + (b - 0x64));
			break;
		case 0x66:
			osp = true;
			break;
		case 0x67:
			asp = true;
			break;
		default:
			if (long_mode && (b & 0xf0) == 0x40) {
				insn->rex = (uint8_t)b;
				continue;
			}
			goto opcode;
		}
		insn->rex = 0;
	}

opcode:
	insn->map = MAP_1B;
	if (b == 0x0f) {
		insn->map = MAP_0F;
		if ((rc = fetch(&d, 1, &b)))
			return rc;
		if (b == 0x38 || b == 0x3a) {
			insn->map = b == 0x38 ? MAP_0F38 : MAP_0F3A;
			if ((rc = fetch(&d, 1, &b)))
				return rc;
		}
	}
	insn->op = (uint8_t)b;
	op = &maps[insn->map][b];
	f = op->f;
	imm = op->imm;
	if (!(f & F_DEF) || (long_mode && (f & F_I64)))
		return DECODE_UD;

	insn->opsize_prefix = osp;
	if (long_mode)
		insn->addrsize = asp ? 4 : 8;
	else
		insn->addrsize = mode16 != asp ? 2 : 4;

	if (f & F_M) {
		if ((rc = fetch(&d, 1, &b)))
			return rc;
		insn->has_modrm = true;
		insn->mod = (uint8_t)(b >> 6);
		insn->reg = (uint8_t)(b >> 3 & 7);
		insn->rm = (uint8_t)(b & 7);
		if (op->grp) {
			const struct opdesc *m = &groups[op->grp][insn->mod == 3][insn->reg];

			ud = !(m->f & F_DEF);
			f |= m->f;
			if (m->imm)
				imm = m->imm;
		}
		if (!(f & F_EXT))
			insn->reg |= (insn->rex & 4) << 1;
		if (f & F_CRDR)
			insn->mod = 3;
		if (insn->mod != 3 || !(f & F_RMX))
			insn->rm |= (insn->rex & 1) << 3;
		if (insn->mod != 3 && (rc = decode_mem(&d, insn, long_mode)))
			return rc;
	}

	os = mode16 ? 2 : 4;
	if (osp)
		os ^= 6; /* 2 <-> 4 */
	if (long_mode) {
		if ((insn->rex & 8) || (f & F_F64) || ((f & F_D64) && !osp))
			os = 8;
	}
	if (f & F_CRDR)
		os = long_mode ? 8 : 4;
	insn->opsize = (uint8_t)os;

	if ((rc = decode_imm(&d, insn, imm, f & F_ZX)))
		return rc;

	/* The #UDs that need the whole instruction. */
	if (insn->lock && (!(f & F_LOCK) || insn->mod == 3))
		ud = true;
	if (insn->has_modrm) {
		if ((f & F_MEM) && insn->mod == 3)
			ud = true;
		if ((f & F_REG) && insn->mod != 3)
			ud = true;
		if ((f & F_MOVBE) && insn->mod == 3 && insn->rep != 0xf2)
			ud = true;
	}
	if ((f & F_F3) && insn->rep != 0xf3)
		ud = true;
	if (ud)
		return DECODE_UD;

	insn->len = (uint8_t)d.pos;
	memcpy(insn->bytes, buf, d.pos);
	return DECODE_OK;
}
