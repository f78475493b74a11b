/* Guest memory as the executor sees it: segmentation, then paging through
 * the software TLB, then RAM or the machine's MMIO bus. */
#include "exec.h"
#include "flags.h"

#include "kumo/machine.h"

#include <errno.h>
#include <string.h>

static bool canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

int emu_linear(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size,
	       unsigned access, uint64_t *linear)
{
	const struct x86_seg *s = &cpu->seg[seg];
	bool stack = seg == SR_SS;

	if (cpu->mode == MODE_LONG64) {
		uint64_t a = offset + ((seg == SR_FS || seg == SR_GS) ? s->base : 0);
		if (!canonical(a) || !canonical(a + size - 1))
			return emu_fault(cpu, stack ? EXC_SS : EXC_GP, true, 0);
		*linear = a;
		return 0;
	}
	if (cpu->mode != MODE_REAL) {
		/* Protected and compatibility modes: usable, present, type and limit. */
		bool expand_down = (s->type & 0xc) == 0x4;
		uint64_t last = offset + size - 1;
		uint64_t max = s->db ? 0xffffffffULL : 0xffffULL;

		if (s->unusable || !s->present)
			return emu_fault(cpu, stack ? EXC_SS : EXC_GP, true, 0);
		if ((access & ACC_WRITE) && (s->type & 0xa) != 0x2 && !(access & ACC_EXEC))
			return emu_fault(cpu, stack ? EXC_SS : EXC_GP, true, 0);
		if (expand_down ? (offset <= s->limit || last > max) : last > s->limit)
			return emu_fault(cpu, stack ? EXC_SS : EXC_GP, true, 0);
	}
	*linear = (uint32_t)(s->base + offset);
	return 0;
}

static unsigned user_bit(const struct emu_cpu *cpu, unsigned access)
{
	return (cpu->cpl == 3 && !(access & ACC_IMPLICIT)) ? ACC_USER : 0;
}

/* One piece that does not cross a page. */
static int access_piece(struct emu_cpu *cpu, uint64_t linear, uint8_t *buf, unsigned size,
			unsigned access, bool write)
{
	uint64_t phys;
	uint8_t *host;
	int err = emu_mmu_translate(cpu, linear, access | user_bit(cpu, access), &phys, &host);

	if (err)
		return err;
	if (host) {
		host += linear & 0xfff;
		if (write) {
			memcpy(host, buf, size);
			emu_code_store(cpu, phys >> 12);
		} else {
			memcpy(buf, host, size);
		}
		return 0;
	}
	if (!cpu->machine) {
		if (!write)
			memset(buf, 0xff, size);
		return 0;
	}
	for (unsigned done = 0; done < size;) {
		unsigned n = size - done >= 8 ? 8 : size - done;
		machine_mmio(cpu->machine, phys + done, buf + done, n, write);
		done += n;
	}
	return 0;
}

static int access_linear(struct emu_cpu *cpu, uint64_t linear, uint8_t *buf, unsigned size,
			 unsigned access, bool write)
{
	unsigned first = 4096 - (linear & 0xfff);
	uint64_t phys;
	uint8_t *host;
	int err;

	if (size <= first)
		return access_piece(cpu, linear, buf, size, access, write);
	/* Crossing a page: both pages must translate before anything is written. */
	if (write && ((err = emu_mmu_translate(cpu, linear, access | user_bit(cpu, access), &phys, &host)) ||
		      (err = emu_mmu_translate(cpu, linear + first, access | user_bit(cpu, access), &phys, &host))))
		return err;
	if ((err = access_piece(cpu, linear, buf, first, access, write)))
		return err;
	return access_piece(cpu, linear + first, buf + first, size - first, access, write);
}

int emu_read_linear(struct emu_cpu *cpu, uint64_t linear, void *buf, unsigned size, unsigned access)
{
	return access_linear(cpu, linear, buf, size, access & ~ACC_WRITE, false);
}

int emu_write_linear(struct emu_cpu *cpu, uint64_t linear, const void *buf, unsigned size,
		     unsigned access)
{
	return access_linear(cpu, linear, (uint8_t *)buf, size, access | ACC_WRITE, true);
}

int emu_read(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size, uint64_t *val)
{
	uint64_t linear;
	int err;

	*val = 0;
	if (emu_read_fast(cpu, seg, offset, size, val))
		return 0;
	if ((err = emu_linear(cpu, seg, offset, size, ACC_READ, &linear)))
		return err;
	return access_linear(cpu, linear, (uint8_t *)val, size, ACC_READ, false);
}

int emu_write(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size, uint64_t val)
{
	uint64_t linear;
	int err;

	if (emu_write_fast(cpu, seg, offset, size, val))
		return 0;
	if ((err = emu_linear(cpu, seg, offset, size, ACC_WRITE, &linear)))
		return err;
	return access_linear(cpu, linear, (uint8_t *)&val, size, ACC_WRITE, true);
}

void *emu_host_ptr(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size,
		   unsigned access, int *err)
{
	uint64_t linear, phys;
	uint8_t *host;

	*err = emu_linear(cpu, seg, offset, size, access, &linear);
	if (*err || (linear & (size - 1)) || (linear & 0xfff) + size > 4096)
		return NULL;
	*err = emu_mmu_translate(cpu, linear, access | user_bit(cpu, access), &phys, &host);
	if (*err || !host)
		return NULL;
	if (access & ACC_WRITE) /* written right after: a new session already */
		emu_code_store(cpu, phys >> 12);
	return host + (linear & 0xfff);
}
