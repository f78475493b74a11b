/*
 * CPL 3 for the guests that need it (sse, usermode): a GDT of the
 * library's four descriptors plus user code32/data/code64 and a 64-bit TSS,
 * the first 16 MiB (the image) user-accessible, and the IRETQ into CPL 3.
 */
#ifndef USER_H
#define USER_H

#include <stdbool.h>
#include <stdint.h>

#define SEL_UCODE32 (0x20 | 3)         /* STAR[63:48] = 0x20 */
#define SEL_UDATA   (0x28 | 3)
#define SEL_UCODE   (0x30 | 3)
#define SEL_TSS     0x38

/* The TSS, then its I/O permission bitmap for ports 0-0x3ff and the
 * terminating 0xff byte (used only with user_setup's io_bitmap). */
struct user_tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
	uint8_t iomap[0x400 / 8 + 1];
} __attribute__((packed));

extern struct user_tss user_tss;

/* Loads the GDT and the TSS (RSP0 rsp0, IST1 ist1 or 0) and makes the
 * first 16 MiB user-accessible. io_bitmap: the TSS has an I/O permission
 * bitmap that denies every port (see user_io_allow); else none. */
void user_setup(uint64_t rsp0, uint64_t ist1, bool io_bitmap);
/* Lets CPL 3 use port (with user_setup's io_bitmap). */
void user_io_allow(unsigned port);

/* user_enter(rip, rsp, rflags): saves the callee-saved registers and RSP
 * (in user_kernel_rsp) and IRETQs to rip at CPL 3. The way back: at CPL 0
 * with RSP = user_kernel_rsp, jump to user_return, which returns from
 * user_enter. */
void user_enter(uint64_t rip, uint64_t rsp, uint64_t rflags);
extern uint64_t user_kernel_rsp;
extern const uint8_t user_return[];

/* Stores the CPUID vendor string (12 characters and a NUL) in vendor;
 * true on kumo's emu (brand string "KumoEmuX86_6 ..."), where the CPL-3 guests must pass
 * every check (elsewhere they skip what the host cannot emulate). */
bool cpu_vendor_is_emu(char vendor[13]);

#endif
