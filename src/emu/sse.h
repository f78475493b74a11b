/* The emu engine's MMX, SSE..SSSE3 (sse.c) and x87 (x87.c) instructions.
 * Their state lives in cpu->fxsave in FXSAVE layout: FCW at 0, FSW at 2,
 * the abridged tag word at 4, MXCSR at 24, ST(i)/MMi at 32 + 16 * i,
 * XMMi at 160 + 16 * i. Internal to src/emu. */
#ifndef KUMO_EMU_SSE_H
#define KUMO_EMU_SSE_H

#include "exec_internal.h"

/* The floating-point instructions run on the host's SSE and x87 units
 * (exact results, flags and rounding): only on an x86-64 host. */
#if defined(__x86_64__)
#define EMU_HAVE_SIMD 1
#else
#define EMU_HAVE_SIMD 0
#endif

/* What CPUID leaf 1 advertises for this part: exactly what is implemented. */
#if EMU_HAVE_SIMD
/* EDX: FPU (0), MMX (23), FXSR (24), SSE (25), SSE2 (26) */
#define EMU_CPUID1_EDX_SIMD ((1u << 0) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26))
/* ECX: SSE3 (0: with x87.c's FISTTP), SSSE3 (9) */
#define EMU_CPUID1_ECX_SIMD ((1u << 0) | (1u << 9))
#else
#define EMU_CPUID1_EDX_SIMD 0u
#define EMU_CPUID1_ECX_SIMD 0u
#endif

/* x87 (D8-DF), MMX/SSE (0F map), SSSE3 (0F 38 00-1E, 0F 3A 0F): *handled
 * false when the instruction is none of those (nothing done). */
int emu_exec_simd(struct ctx *c, bool *handled) WUR;

/* x87.c: D8-DF. */
int emu_exec_x87(struct ctx *c) WUR;

#endif
