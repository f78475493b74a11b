/* The decoder's opcode tables (included by decode.c only): one 256-entry
 * table per opcode map, and the ModRM.reg groups. An entry that is not
 * listed is zero, which means undefined: #UD. See decode.c for what the
 * flags mean. Reference: Intel SDM vol. 2, appendix A (opcode maps). */
#ifndef KUMO_EMU_DECODE_TABLES_H
#define KUMO_EMU_DECODE_TABLES_H

/* Entry flags. */
enum {
	F_DEF = 1 << 0,   /* a defined opcode or group member (unlisted: #UD) */
	F_M = 1 << 1,     /* has a ModRM byte */
	F_I64 = 1 << 2,   /* #UD in 64-bit mode */
	F_D64 = 1 << 3,   /* 64-bit mode: operand size 8 by default, 66 gives 2 */
	F_F64 = 1 << 4,   /* 64-bit mode: operand size 8 whatever the prefixes */
	F_MEM = 1 << 5,   /* ModRM must name memory (mod != 3) */
	F_REG = 1 << 6,   /* ModRM must name a register (mod == 3) */
	F_LOCK = 1 << 7,  /* LOCK allowed (the memory form) */
	F_ZX = 1 << 8,    /* the immediate is zero-extended (else sign-extended) */
	F_CRDR = 1 << 9,  /* MOV CR/DR: a register form whatever ModRM.mod says */
	F_F3 = 1 << 10,   /* needs an F3 prefix (POPCNT, RDFSBASE...) */
	F_MOVBE = 1 << 11, /* 0F 38 F0/F1: memory only, except with F2 (CRC32) */
	F_EXT = 1 << 12,  /* ModRM.reg is an opcode extension: REX.R ignored */
	F_RMX = 1 << 13,  /* with mod 3, ModRM.rm is an opcode extension too */
};

struct opdesc {
	uint16_t f;       /* F_* */
	uint8_t imm;      /* enum emu_imm */
	uint8_t grp;      /* GRP_*: per-ModRM.reg details in groups[] */
};

/* Groups whose members differ in more than the operation. */
enum {
	GRP_NONE, GRP1, GRP1A, GRP3B, GRP3V, GRP4, GRP5, GRP11, GRP_SREG_ST, GRP_SREG_LD,
	GRP6, GRP7, GRP8, GRP9, GRP12, GRP13, GRP14, GRP15, GRP_D9, GRP_DB, GRP_DD, NR_GRPS
};

#define D(fl, im) { .f = (uint16_t)(F_DEF | (fl)), .imm = (im) }
#define G(fl, im, g) { .f = (uint16_t)(F_DEF | F_M | F_EXT | (fl)), .imm = (im), .grp = (g) }
#define M F_M
/* ALU ops 00-3D: Eb,Gb  Ev,Gv  Gb,Eb  Gv,Ev  AL,Ib  rAX,Iz. */
#define ALU(x, lock) \
	[(x) + 0] = D(M | (lock), IMM_NONE), [(x) + 1] = D(M | (lock), IMM_NONE), \
	[(x) + 2] = D(M, IMM_NONE), [(x) + 3] = D(M, IMM_NONE), \
	[(x) + 4] = D(0, IMM_B), [(x) + 5] = D(0, IMM_Z)

/* The one-byte map. Prefixes (26 2E 36 3E 64-67 F0 F2 F3, REX) and the 0F
 * escape never reach it. D6 (SALC) is left undefined as in the SDM. */
static const struct opdesc map_1b[256] = {
	ALU(0x00, F_LOCK), [0x06] = D(F_I64, 0), [0x07] = D(F_I64, 0),
	ALU(0x08, F_LOCK), [0x0e] = D(F_I64, 0),
	ALU(0x10, F_LOCK), [0x16] = D(F_I64, 0), [0x17] = D(F_I64, 0),
	ALU(0x18, F_LOCK), [0x1e] = D(F_I64, 0), [0x1f] = D(F_I64, 0),
	ALU(0x20, F_LOCK), [0x27] = D(F_I64, 0),
	ALU(0x28, F_LOCK), [0x2f] = D(F_I64, 0),
	ALU(0x30, F_LOCK), [0x37] = D(F_I64, 0),
	ALU(0x38, 0),      [0x3f] = D(F_I64, 0),
	[0x40 ... 0x4f] = D(0, 0),              /* INC/DEC r (REX in 64-bit mode) */
	[0x50 ... 0x5f] = D(F_D64, 0),          /* PUSH/POP r */
	[0x60] = D(F_I64, 0), [0x61] = D(F_I64, 0),
	[0x62] = D(M | F_I64 | F_MEM, 0),       /* BOUND (EVEX in 64-bit mode) */
	[0x63] = D(M, 0),                       /* ARPL / MOVSXD */
	[0x68] = D(F_D64, IMM_Z), [0x69] = D(M, IMM_Z),
	[0x6a] = D(F_D64, IMM_B), [0x6b] = D(M, IMM_B),
	[0x6c ... 0x6f] = D(0, 0),              /* INS/OUTS */
	[0x70 ... 0x7f] = D(F_F64, IMM_B),      /* Jcc rel8 */
	[0x80] = G(0, IMM_B, GRP1), [0x81] = G(0, IMM_Z, GRP1),
	[0x82] = G(F_I64, IMM_B, GRP1), [0x83] = G(0, IMM_B, GRP1),
	[0x84] = D(M, 0), [0x85] = D(M, 0),     /* TEST */
	[0x86] = D(M | F_LOCK, 0), [0x87] = D(M | F_LOCK, 0), /* XCHG */
	[0x88 ... 0x8b] = D(M, 0),              /* MOV */
	[0x8c] = G(0, 0, GRP_SREG_ST),          /* MOV Ev,Sw */
	[0x8d] = D(M | F_MEM, 0),               /* LEA */
	[0x8e] = G(0, 0, GRP_SREG_LD),          /* MOV Sw,Ew */
	[0x8f] = G(F_D64, 0, GRP1A),            /* POP Ev */
	[0x90 ... 0x99] = D(0, 0),              /* NOP/PAUSE, XCHG, CBW, CWD */
	[0x9a] = D(F_I64, IMM_P),               /* CALLF Ap */
	[0x9b] = D(0, 0),                       /* FWAIT */
	[0x9c] = D(F_D64, 0), [0x9d] = D(F_D64, 0), /* PUSHF/POPF */
	[0x9e] = D(0, 0), [0x9f] = D(0, 0),     /* SAHF/LAHF */
	[0xa0 ... 0xa3] = D(0, IMM_MOFFS),      /* MOV AL/rAX <-> moffs */
	[0xa4 ... 0xa7] = D(0, 0),              /* MOVS, CMPS */
	[0xa8] = D(0, IMM_B), [0xa9] = D(0, IMM_Z), /* TEST */
	[0xaa ... 0xaf] = D(0, 0),              /* STOS, LODS, SCAS */
	[0xb0 ... 0xb7] = D(F_ZX, IMM_B),       /* MOV r8, imm8 */
	[0xb8 ... 0xbf] = D(F_ZX, IMM_V),       /* MOV r, imm16/32/64 */
	[0xc0] = D(M | F_EXT | F_ZX, IMM_B), [0xc1] = D(M | F_EXT | F_ZX, IMM_B), /* group 2 */
	[0xc2] = D(F_F64 | F_ZX, IMM_W), [0xc3] = D(F_F64, 0), /* RET */
	/* LES/LDS; with mod 3 they are VEX, unsupported: #UD either way. */
	[0xc4] = D(M | F_I64 | F_MEM, 0), [0xc5] = D(M | F_I64 | F_MEM, 0),
	[0xc6] = G(0, IMM_B, GRP11), [0xc7] = G(0, IMM_Z, GRP11), /* MOV E,I */
	[0xc8] = D(F_D64 | F_ZX, IMM_WB),       /* ENTER */
	[0xc9] = D(F_D64, 0),                   /* LEAVE */
	[0xca] = D(F_ZX, IMM_W), [0xcb] = D(0, 0), /* RETF */
	[0xcc] = D(0, 0), [0xcd] = D(F_ZX, IMM_B), [0xce] = D(F_I64, 0), /* INT3 INT INTO */
	[0xcf] = D(0, 0),                       /* IRET */
	[0xd0 ... 0xd3] = D(M | F_EXT, 0),      /* group 2 by 1 / CL */
	[0xd4] = D(F_I64 | F_ZX, IMM_B), [0xd5] = D(F_I64 | F_ZX, IMM_B), /* AAM AAD */
	[0xd7] = D(0, 0),                       /* XLAT */
	/* x87; D9 DB DD have reserved memory forms. */
	[0xd8] = D(M | F_EXT | F_RMX, 0), [0xd9] = G(F_RMX, 0, GRP_D9),
	[0xda] = D(M | F_EXT | F_RMX, 0), [0xdb] = G(F_RMX, 0, GRP_DB),
	[0xdc] = D(M | F_EXT | F_RMX, 0), [0xdd] = G(F_RMX, 0, GRP_DD),
	[0xde ... 0xdf] = D(M | F_EXT | F_RMX, 0),
	[0xe0 ... 0xe3] = D(F_F64, IMM_B),      /* LOOPcc, JrCXZ */
	[0xe4 ... 0xe7] = D(F_ZX, IMM_B),       /* IN/OUT imm8 */
	[0xe8] = D(F_F64, IMM_Z), [0xe9] = D(F_F64, IMM_Z), /* CALL, JMP rel */
	[0xea] = D(F_I64, IMM_P),               /* JMPF Ap */
	[0xeb] = D(F_F64, IMM_B),               /* JMP rel8 */
	[0xec ... 0xef] = D(0, 0),              /* IN/OUT DX */
	[0xf1] = D(0, 0),                       /* INT1 */
	[0xf4] = D(0, 0), [0xf5] = D(0, 0),     /* HLT CMC */
	[0xf6] = G(0, 0, GRP3B), [0xf7] = G(0, 0, GRP3V),
	[0xf8 ... 0xfd] = D(0, 0),              /* CLC STC CLI STI CLD STD */
	[0xfe] = G(0, 0, GRP4), [0xff] = G(0, 0, GRP5),
};

/* The two-byte map (0F xx). Left undefined: 04 0A 0C, 0B (UD2), 0E 0F
 * (3DNow), 24-27 (MOV TR), 36 37 (GETSEC), 78 79 (VMX), 7A 7B, A6 A7, B9
 * (UD1), FF (UD0). */
static const struct opdesc map_0f[256] = {
	[0x00] = G(0, 0, GRP6), [0x01] = G(0, 0, GRP7),
	[0x02] = D(M, 0), [0x03] = D(M, 0),     /* LAR LSL */
	[0x05 ... 0x09] = D(0, 0),              /* SYSCALL CLTS SYSRET INVD WBINVD */
	[0x0d] = D(M | F_EXT | F_MEM, 0),       /* PREFETCH/PREFETCHW */
	[0x10 ... 0x12] = D(M, 0), [0x13] = D(M | F_MEM, 0),
	[0x14 ... 0x16] = D(M, 0), [0x17] = D(M | F_MEM, 0),
	[0x18 ... 0x1f] = D(M | F_EXT, 0),      /* prefetch hints, hint NOPs, NOP Ev */
	[0x20 ... 0x23] = D(M | F_CRDR, 0),     /* MOV CR/DR */
	[0x28 ... 0x2a] = D(M, 0), [0x2b] = D(M | F_MEM, 0), [0x2c ... 0x2f] = D(M, 0),
	[0x30 ... 0x35] = D(0, 0),              /* WRMSR RDTSC RDMSR RDPMC SYSENTER SYSEXIT */
	[0x40 ... 0x4f] = D(M, 0),              /* CMOVcc */
	[0x50] = D(M | F_REG, 0),               /* MOVMSKPS/PD */
	[0x51 ... 0x6f] = D(M, 0),
	[0x70] = D(M | F_ZX, IMM_B),            /* PSHUF* */
	[0x71] = G(F_ZX, IMM_B, GRP12), [0x72] = G(F_ZX, IMM_B, GRP13),
	[0x73] = G(F_ZX, IMM_B, GRP14),
	[0x74 ... 0x76] = D(M, 0), [0x77] = D(0, 0), /* PCMPEQ, EMMS */
	[0x7c ... 0x7f] = D(M, 0),
	[0x80 ... 0x8f] = D(F_F64, IMM_Z),      /* Jcc rel16/32 */
	[0x90 ... 0x9f] = D(M, 0),              /* SETcc */
	[0xa0] = D(F_D64, 0), [0xa1] = D(F_D64, 0), /* PUSH/POP FS */
	[0xa2] = D(0, 0),                       /* CPUID */
	[0xa3] = D(M, 0),                       /* BT */
	[0xa4] = D(M | F_ZX, IMM_B), [0xa5] = D(M, 0), /* SHLD */
	[0xa8] = D(F_D64, 0), [0xa9] = D(F_D64, 0), /* PUSH/POP GS */
	[0xaa] = D(0, 0),                       /* RSM */
	[0xab] = D(M | F_LOCK, 0),              /* BTS */
	[0xac] = D(M | F_ZX, IMM_B), [0xad] = D(M, 0), /* SHRD */
	[0xae] = G(0, 0, GRP15),
	[0xaf] = D(M, 0),                       /* IMUL */
	[0xb0] = D(M | F_LOCK, 0), [0xb1] = D(M | F_LOCK, 0), /* CMPXCHG */
	[0xb2] = D(M | F_MEM, 0),               /* LSS */
	[0xb3] = D(M | F_LOCK, 0),              /* BTR */
	[0xb4] = D(M | F_MEM, 0), [0xb5] = D(M | F_MEM, 0), /* LFS LGS */
	[0xb6] = D(M, 0), [0xb7] = D(M, 0),     /* MOVZX */
	[0xb8] = D(M | F_F3, 0),                /* POPCNT (no F3: JMPE) */
	[0xba] = G(F_ZX, IMM_B, GRP8),
	[0xbb] = D(M | F_LOCK, 0),              /* BTC */
	[0xbc ... 0xbf] = D(M, 0),              /* BSF/TZCNT BSR/LZCNT MOVSX */
	[0xc0] = D(M | F_LOCK, 0), [0xc1] = D(M | F_LOCK, 0), /* XADD */
	[0xc2] = D(M | F_ZX, IMM_B),            /* CMPPS... */
	[0xc3] = D(M | F_MEM, 0),               /* MOVNTI */
	[0xc4] = D(M | F_ZX, IMM_B),            /* PINSRW */
	[0xc5] = D(M | F_REG | F_ZX, IMM_B),    /* PEXTRW */
	[0xc6] = D(M | F_ZX, IMM_B),            /* SHUFPS/PD */
	[0xc7] = G(0, 0, GRP9),
	[0xc8 ... 0xcf] = D(0, 0),              /* BSWAP */
	[0xd0 ... 0xd6] = D(M, 0), [0xd7] = D(M | F_REG, 0), /* PMOVMSKB */
	[0xd8 ... 0xe6] = D(M, 0), [0xe7] = D(M | F_MEM, 0), /* MOVNTQ/DQ */
	[0xe8 ... 0xef] = D(M, 0),
	[0xf0] = D(M | F_MEM, 0),               /* LDDQU */
	[0xf1 ... 0xf6] = D(M, 0), [0xf7] = D(M | F_REG, 0), /* MASKMOVQ/DQU */
	[0xf8 ... 0xfe] = D(M, 0),
};

/* 0F 38: SSSE3, MOVBE, CRC32. */
static const struct opdesc map_0f38[256] = {
	[0x00 ... 0x0b] = D(M, 0),
	[0x1c ... 0x1e] = D(M, 0),
	[0xf0] = D(M | F_MOVBE, 0), [0xf1] = D(M | F_MOVBE, 0),
};

/* 0F 3A: PALIGNR. */
static const struct opdesc map_0f3a[256] = {
	[0x0f] = D(M | F_ZX, IMM_B),
};

static const struct opdesc *const maps[4] = {
	[MAP_1B] = map_1b, [MAP_0F] = map_0f, [MAP_0F38] = map_0f38, [MAP_0F3A] = map_0f3a,
};

/* Group members by [mod == 3][ModRM.reg & 7]; their flags add to the
 * opcode's, their immediate (if any) replaces it. */
#define BOTH(...) { { __VA_ARGS__ }, { __VA_ARGS__ } }
static const struct opdesc groups[NR_GRPS][2][8] = {
	/* 80-83: ADD OR ADC SBB AND SUB XOR lockable, CMP not. */
	[GRP1] = BOTH(D(F_LOCK, 0), D(F_LOCK, 0), D(F_LOCK, 0), D(F_LOCK, 0),
		      D(F_LOCK, 0), D(F_LOCK, 0), D(F_LOCK, 0), D(0, 0)),
	[GRP1A] = BOTH(D(0, 0)),                /* 8F: POP Ev */
	/* F6/F7: TEST (and its /1 alias) NOT NEG MUL IMUL DIV IDIV. */
	[GRP3B] = BOTH(D(0, IMM_B), D(0, IMM_B), D(F_LOCK, 0), D(F_LOCK, 0),
		       D(0, 0), D(0, 0), D(0, 0), D(0, 0)),
	[GRP3V] = BOTH(D(0, IMM_Z), D(0, IMM_Z), D(F_LOCK, 0), D(F_LOCK, 0),
		       D(0, 0), D(0, 0), D(0, 0), D(0, 0)),
	[GRP4] = BOTH(D(F_LOCK, 0), D(F_LOCK, 0)), /* FE: INC DEC */
	/* FF: INC DEC CALL CALLF JMP JMPF PUSH. */
	[GRP5] = {
		{ D(F_LOCK, 0), D(F_LOCK, 0), D(F_F64, 0), D(0, 0),
		  D(F_F64, 0), D(0, 0), D(F_D64, 0) },
		{ D(0, 0), D(0, 0), D(F_F64, 0), [4] = D(F_F64, 0), [6] = D(F_D64, 0) },
	},
	/* C6/C7: MOV (XABORT/XBEGIN at /7: no RTM). */
	[GRP11] = BOTH(D(0, 0)),
	/* 8C: ES CS SS DS FS GS; 8E: the same but CS. */
	[GRP_SREG_ST] = BOTH(D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0)),
	[GRP_SREG_LD] = BOTH(D(0, 0), [2] = D(0, 0), D(0, 0), D(0, 0), D(0, 0)),
	/* 0F 00: SLDT STR LLDT LTR VERR VERW. */
	[GRP6] = BOTH(D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0)),
	/* 0F 01: SGDT SIDT LGDT LIDT (operand 8+2 bytes in 64-bit mode) SMSW
	 * LMSW INVLPG; the register forms are a zoo (VMCALL MONITOR MWAIT
	 * XGETBV XSETBV SWAPGS RDTSCP CLAC STAC...) left to the executor. */
	[GRP7] = {
		{ D(F_F64, 0), D(F_F64, 0), D(F_F64, 0), D(F_F64, 0), D(0, 0), [6] = D(0, 0), D(0, 0) },
		{ D(F_RMX, 0), D(F_RMX, 0), D(F_RMX, 0), D(F_RMX, 0), D(0, 0), D(F_RMX, 0),
		  D(0, 0), D(F_RMX, 0) },
	},
	/* 0F BA: BT BTS BTR BTC imm8. */
	[GRP8] = BOTH([4] = D(0, 0), D(F_LOCK, 0), D(F_LOCK, 0), D(F_LOCK, 0)),
	/* 0F C7: CMPXCHG8B/16B XRSTORS XSAVEC XSAVES (VMX at /6 /7: none);
	 * RDRAND RDSEED (RDPID) in the register forms. */
	[GRP9] = {
		{ [1] = D(F_LOCK, 0), [3] = D(0, 0), D(0, 0), D(0, 0) },
		{ [6] = D(0, 0), D(0, 0) },
	},
	/* 0F 71-73: MMX/SSE shifts by imm8, register forms only. */
	[GRP12] = { [1] = { [2] = D(0, 0), [4] = D(0, 0), [6] = D(0, 0) } },
	[GRP13] = { [1] = { [2] = D(0, 0), [4] = D(0, 0), [6] = D(0, 0) } },
	[GRP14] = { [1] = { [2] = D(0, 0), D(0, 0), [6] = D(0, 0), D(0, 0) } },
	/* 0F AE: FXSAVE FXRSTOR LDMXCSR STMXCSR XSAVE XRSTOR XSAVEOPT CLFLUSH;
	 * F3 RDFSBASE RDGSBASE WRFSBASE WRGSBASE, LFENCE MFENCE SFENCE. */
	[GRP15] = {
		{ D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0) },
		{ D(F_F3, 0), D(F_F3, 0), D(F_F3, 0), D(F_F3, 0), [5] = D(F_RMX, 0),
		  D(F_RMX, 0), D(F_RMX, 0) },
	},
	/* x87: D9 /1, DB /4 /6 and DD /5 are reserved with a memory operand. */
	[GRP_D9] = { { D(0, 0), [2] = D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0) },
		     { D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0) } },
	[GRP_DB] = { { D(0, 0), D(0, 0), D(0, 0), D(0, 0), [5] = D(0, 0), [7] = D(0, 0) },
		     { D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0) } },
	[GRP_DD] = { { D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), [6] = D(0, 0), D(0, 0) },
		     { D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0), D(0, 0) } },
};

#undef D
#undef G
#undef M
#undef ALU
#undef BOTH

#endif
