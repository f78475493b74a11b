/*
 * PVH entry: 32-bit protected mode, paging off, EBX = hvm_start_info.
 * Zeroes .bss, identity-maps the first 4 GiB with 2 MiB pages (the top
 * GiB, the MMIO hole, uncached), enters long mode and calls
 * guest_start(start_info) on the boot stack.
 */
#include "layout.h"

/* The PVH note: XEN_ELFNOTE_PHYS32_ENTRY, a 32-bit physical address. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4			/* namesz */
	.long 4			/* descsz */
	.long 18		/* type: XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_entry

	.section .text.entry, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	lgdt gdt_desc
	ljmp $SEL_CODE32, $1f
1:	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs

	/* Zero .bss (not .noinit). EBX survives. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl

	/* PML4[0] -> PDPT; PDPT[0..3] -> the four page directories. */
	movl $boot_pdpt, %eax
	orl $(PTE_P | PTE_W), %eax
	movl %eax, boot_pml4
	movl $boot_pd, %eax
	orl $(PTE_P | PTE_W), %eax
	xorl %ecx, %ecx
2:	movl %eax, boot_pdpt(,%ecx,8)
	addl $4096, %eax
	incl %ecx
	cmpl $4, %ecx
	jb 2b

	/* 2048 2 MiB pages; from 3 GiB up also PCD|PWT (device memory). */
	xorl %ecx, %ecx
3:	movl %ecx, %eax
	shll $21, %eax
	orl $(PTE_P | PTE_W | PTE_PS), %eax
	cmpl $1536, %ecx
	jb 4f
	orl $(PTE_PWT | PTE_PCD), %eax
4:	movl %eax, boot_pd(,%ecx,8)
	movl $0, boot_pd+4(,%ecx,8)	/* .noinit: the high half too */
	incl %ecx
	cmpl $2048, %ecx
	jb 3b

	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $SEL_CODE64, $long_mode

	.code64
long_mode:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $boot_stack_top, %rsp
	movl %ebx, %edi
	call guest_start
5:	cli
	hlt
	jmp 5b

/* Shared by the BSP and the AP trampoline. */
	.section .rodata
	.balign 16
	.globl gdt
gdt:
	.quad 0				/* 0x00 null */
	.quad 0x00cf9a000000ffff	/* 0x08 32-bit code */
	.quad 0x00af9a000000ffff	/* 0x10 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x18 data */
gdt_end:
	.if gdt_end - gdt - 1 - GDT_LIMIT
	.error "GDT_LIMIT does not match the GDT"
	.endif
	.globl gdt_desc
gdt_desc:
	.word GDT_LIMIT
	.quad gdt

	.section .bss
	.balign 4096
	.globl boot_pml4, boot_pdpt, boot_pd
boot_pml4:
	.skip 4096
boot_pdpt:
	.skip 4096

	.section .noinit, "aw", @nobits
	.balign 4096
boot_pd:			/* every entry is written above */
	.skip 4 * 4096
	.balign 16
boot_stack:
	.skip BOOT_STACK_SIZE
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
