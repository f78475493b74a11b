/* What the differential harnesses share: see diff_common.h. */
#include "diff_common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

uint64_t diff_rng_state;
sigjmp_buf diff_native_jmp;
volatile int diff_native_sig;
static stack_t diff_ss;

int diff_args_parse(struct diff_args *a, int argc, char **argv, const char *name)
{
	a->cases = 200000;
	a->seed = 0;
	a->verbose = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cases") && i + 1 < argc)
			a->cases = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			a->seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--verbose"))
			a->verbose = true;
		else {
			fprintf(stderr, "usage: %s [--cases N] [--seed S] [--verbose]\n", name);
			return 2;
		}
	}
	return 0;
}

void diff_seed(struct diff_args *a)
{
	if (!a->seed)
		a->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	/* splitmix64 of the seed: every seed its own non-zero stream */
	diff_rng_state = a->seed + 0x9e3779b97f4a7c15ULL;
	diff_rng_state = (diff_rng_state ^ (diff_rng_state >> 30)) * 0xbf58476d1ce4e5b9ULL;
	diff_rng_state = (diff_rng_state ^ (diff_rng_state >> 27)) * 0x94d049bb133111ebULL;
	diff_rng_state ^= diff_rng_state >> 31;
	if (!diff_rng_state)
		diff_rng_state = 1;
}

int diff_map_native(uint8_t **code, uint8_t **data)
{
	*code = mmap((void *)CODE_VA, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	*data = mmap((void *)DATA_VA, 8192, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (*code != (void *)CODE_VA || *data != (void *)DATA_VA) {
		printf("SKIP: cannot map the native test pages at fixed addresses\n");
		return 77;
	}
	return 0;
}

int diff_start(const char *name, int argc, char **argv, struct diff_args *a,
	       uint8_t **code, uint8_t **data)
{
	int rc;

	if ((rc = diff_args_parse(a, argc, argv, name)))
		return rc;
	diff_seed(a);
	printf("%s: seed %llu, %llu cases\n", name, (unsigned long long)a->seed,
	       (unsigned long long)a->cases);
	return diff_map_native(code, data);
}

static void on_signal(int sig)
{
	diff_native_sig = sig;
	siglongjmp(diff_native_jmp, 1);
}

void diff_signals_init(void)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_ONSTACK | SA_NODEFER };

	diff_ss.ss_sp = malloc(1 << 16);
	diff_ss.ss_size = 1 << 16;
	diff_ss.ss_flags = 0;
	sigaltstack(&diff_ss, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

void diff_signals_fini(void)
{
	diff_ss.ss_flags = SS_DISABLE;
	sigaltstack(&diff_ss, NULL);
	free(diff_ss.ss_sp);
}

void diff_place_code(uint8_t *dst, const uint8_t *insn, unsigned len, const void *back)
{
	static const uint8_t jmp[] = { 0xff, 0x25, 0, 0, 0, 0 };
	uint64_t target = (uint64_t)(uintptr_t)back;

	memcpy(dst, insn, len);
	memcpy(dst + len, jmp, sizeof(jmp));
	if (back)
		memcpy(dst + len + sizeof(jmp), &target, 8);
}

struct emu_cpu *diff_emu_user64_setup(const char *name, struct guest_mem *mem,
				      uint64_t cr0_extra, uint64_t cr4_extra)
{
	struct emu_cpu *cpu;
	uint64_t *pml4, *pdpt, *pd;

	if (guest_mem_init(mem, GUEST_MEM)) {
		fprintf(stderr, "%s: cannot map guest memory\n", name);
		return NULL;
	}
	cpu = aligned_alloc(64, ALIGN_UP(sizeof(*cpu), 64));
	memset(cpu, 0, sizeof(*cpu));
	pml4 = gpa_ptr(mem, PT_PA, 3 * 4096);
	pdpt = pml4 + 512;
	pd = pdpt + 512;
	memset(pml4, 0, 3 * 4096);
	pml4[0] = (PT_PA + 0x1000) | 0x7;
	pdpt[0] = (PT_PA + 0x2000) | 0x7;
	for (unsigned i = 0; i < 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x87; /* present, writable, user, 2 MiB */
	cpu->mem = mem;
	emu_cpu_reset(cpu);
	cpu->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | (1ULL << 16) | cr0_extra; /* WP */
	cpu->cr4 = X86_CR4_PAE | cr4_extra;
	cpu->cr3 = PT_PA;
	cpu->efer = X86_EFER_LME | X86_EFER_LMA | (1ULL << 11);
	for (unsigned i = 0; i < 6; i++)
		cpu->seg[i] = (struct x86_seg){ .limit = 0xffffffff, .type = 0x3, .s = 1, .dpl = 3,
						.present = 1, .db = 1, .g = 1 };
	cpu->seg[SR_CS] = (struct x86_seg){ .limit = 0xffffffff, .type = 0xb, .s = 1, .dpl = 3,
					    .present = 1, .l = 1, .g = 1 };
	emu_cpu_update_mode(cpu);
	emu_tlb_flush(cpu, true);
	return cpu;
}

void diff_emu_free(struct emu_cpu *cpu, struct guest_mem *mem)
{
	guest_mem_free(mem);
	free(cpu);
}

int diff_finish(const char *name, const struct diff_args *a, uint64_t faults, uint64_t failures,
		struct emu_cpu *cpu, struct guest_mem *mem)
{
	printf("%s: %llu cases, %llu faulted natively, %llu mismatches\n", name,
	       (unsigned long long)a->cases, (unsigned long long)faults, (unsigned long long)failures);
	diff_emu_free(cpu, mem);
	diff_signals_fini();
	return failures ? 1 : 0;
}
