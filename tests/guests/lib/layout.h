/* Constants shared by the assembly and C parts of the guest library. */
#ifndef GUEST_LAYOUT_H
#define GUEST_LAYOUT_H

#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA   0x18

#define PTE_P   0x001
#define PTE_W   0x002
#define PTE_PWT 0x008
#define PTE_PCD 0x010
#define PTE_PS  0x080

#define CR0_PE  0x00000001
#define CR0_PG  0x80000000
#define CR4_PAE 0x00000020
#define MSR_EFER 0xc0000080
#define EFER_LME 0x00000100

#define GDT_LIMIT (4 * 8 - 1) /* four descriptors, see entry.S */

#define BOOT_STACK_SIZE 16384

/* Where the AP trampoline is copied: SIPI vector 0x08. */
#define TRAMPOLINE_BASE 0x8000
#define AP_STACK_SIZE 8192

#endif
