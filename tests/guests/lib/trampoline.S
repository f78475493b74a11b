/*
 * The AP start-up code, copied to TRAMPOLINE_BASE (0x8000) and entered by
 * SIPI vector 0x08 in real mode at 0800:0000. Goes real -> protected ->
 * long mode with the BSP's GDT and page tables, then calls
 * entry(arg) on stack, all three from the parameter block at its end,
 * which the BSP fills before each start.
 */
#include "layout.h"

#define T(sym) (TRAMPOLINE_BASE + (sym) - ap_trampoline)

	.section .text
	.globl ap_trampoline, ap_trampoline_params, ap_trampoline_end
	.code16
ap_trampoline:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl (tr_gdt_desc - ap_trampoline)
	movl %cr0, %eax
	orl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $T(tr_prot)

	.code32
tr_prot:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl T(tr_cr3), %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $CR0_PG, %eax
	movl %eax, %cr0
	ljmp $SEL_CODE64, $T(tr_long)

	.code64
tr_long:
	movq T(tr_stack), %rsp
	movq T(tr_arg), %rdi
	movq T(tr_entry), %rax
	call *%rax
1:	cli
	hlt
	jmp 1b

	.balign 8
tr_gdt_desc:
	.word GDT_LIMIT
	.long gdt

	.balign 8
ap_trampoline_params:		/* struct ap_params in smp.c */
tr_cr3:
	.quad 0
tr_stack:
	.quad 0
tr_entry:
	.quad 0
tr_arg:
	.quad 0
ap_trampoline_end:

	.section .note.GNU-stack, "", @progbits
