/* Runs generated code on the host CPU with a given register file (diff.c),
 * and with fx non-zero also XMM0-15, MM0-7, MXCSR and the x87 (diff_sse.c).
 * void diff_native_run(void *io, void *code, int fx)
 * io: 16 GPRs (0), RFLAGS (128) and, with fx, the x87/MMX/SSE state in
 * FXSAVE64 layout (144, loaded with FXRSTOR64 and stored with FXSAVE64).
 * The code ends with an absolute jump to diff_native_back. */
	.text
	.globl diff_native_run
	.globl diff_native_back
diff_native_run:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, host_rsp(%rip)
	mov %rdi, io_ptr(%rip)
	mov %rsi, code_ptr(%rip)
	mov %edx, with_fx(%rip)
	test %edx, %edx
	jz 1f
	fxsave64 host_fx(%rip)
	fxrstor64 144(%rdi)
1:	pushq 128(%rdi)
	popfq
	mov 0(%rdi), %rax
	mov 8(%rdi), %rcx
	mov 16(%rdi), %rdx
	mov 24(%rdi), %rbx
	mov 32(%rdi), %rsp
	mov 40(%rdi), %rbp
	mov 48(%rdi), %rsi
	mov 64(%rdi), %r8
	mov 72(%rdi), %r9
	mov 80(%rdi), %r10
	mov 88(%rdi), %r11
	mov 96(%rdi), %r12
	mov 104(%rdi), %r13
	mov 112(%rdi), %r14
	mov 120(%rdi), %r15
	mov 56(%rdi), %rdi
	jmp *code_ptr(%rip)

diff_native_back:
	mov %rsp, out_rsp(%rip)
	mov host_rsp(%rip), %rsp
	pushfq
	push %rdi
	mov io_ptr(%rip), %rdi
	pop 56(%rdi)
	pop 128(%rdi)
	mov %rax, 0(%rdi)
	mov %rcx, 8(%rdi)
	mov %rdx, 16(%rdi)
	mov %rbx, 24(%rdi)
	mov out_rsp(%rip), %rax
	mov %rax, 32(%rdi)
	mov %rbp, 40(%rdi)
	mov %rsi, 48(%rdi)
	mov %r8, 64(%rdi)
	mov %r9, 72(%rdi)
	mov %r10, 80(%rdi)
	mov %r11, 88(%rdi)
	mov %r12, 96(%rdi)
	mov %r13, 104(%rdi)
	mov %r14, 112(%rdi)
	mov %r15, 120(%rdi)
	cmpl $0, with_fx(%rip)
	je 1f
	fxsave64 144(%rdi)
	fxrstor64 host_fx(%rip)
1:	cld
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

	.data
	.balign 8
host_rsp: .quad 0
io_ptr:   .quad 0
code_ptr: .quad 0
out_rsp:  .quad 0
with_fx:  .long 0
	.balign 16
host_fx: .fill 512, 1, 0
	.section .note.GNU-stack, "", @progbits
