/*
 * The bzimage guest's entry: no PVH note, no 32-bit path. The Linux boot
 * protocol loads the protected-mode part of a bzImage at 0x100000 and a
 * 64-bit loader enters it at +0x200 (startup_64), in long mode with RSI =
 * boot_params and the interrupts off.
 *
 * 0x100000: the 32-bit entry (code32_start), which this guest does not
 *           support: it fails the test (exit code 1) and halts.
 * 0x100200: the 64-bit entry: switches to its own stack, zeroes .bss and
 *           calls bzimage_start(boot_params, entry RSP, entry RFLAGS). The
 *           loader's page tables and GDT stay until bzimage_start loads a
 *           GDT of its own.
 */
#include "layout.h"

	.section .head, "ax"
	.code32
	.globl bzimage_entry32
bzimage_entry32:
	cli
	movl $1, %eax
	outl %eax, $0xf4	/* the test-exit port: FAIL */
1:	hlt
	jmp 1b
	.org 0x200, 0xcc	/* the 64-bit entry is at +0x200 */

	.section .text.entry64, "ax"
	.code64
	.globl bzimage_entry64
bzimage_entry64:
	movq %rsp, %r12		/* what the loader left, for the report */
	movq %rsi, %r13		/* boot_params */
	movq $bz_stack_top, %rsp
	pushfq
	popq %r14		/* RFLAGS as entered (IF must be clear) */
	cld
	movq $__bss_start, %rdi
	movq $__bss_end, %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	xorl %eax, %eax
	rep stosq
	movq %r13, %rdi
	movq %r12, %rsi
	movq %r14, %rdx
	call bzimage_start
2:	cli
	hlt
	jmp 2b

	.section .noinit, "aw", @nobits
	.balign 16
bz_stack:
	.skip BOOT_STACK_SIZE
bz_stack_top:

	.section .note.GNU-stack, "", @progbits
