/*
 * The test-guest library: everything a guest includes. A guest is one C
 * file that says GUEST("name") and defines guest_main(), which ends with
 * pass() or fail(...) (or powers off / resets the machine).
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "io.h"
#include "kstring.h"
#include "print.h"
#include "serial.h"
#include "pvh.h"
#include "idt.h"
#include "paging.h"
#include "acpi.h"
#include "bench.h"
#include "lapic.h"
#include "ioapic.h"
#include "pic.h"
#include "pit.h"
#include "smp.h"
#include "power.h"
#include "spinlock.h"
#include "user.h"

#define GUEST(name) const char guest_name[] = name

extern const char guest_name[];
void guest_main(void);

/* The test-exit port: QEMU's isa-debug-exit at 0xf4, kumo's test exit. */
#define TEST_EXIT_PORT 0xf4

/* 32-bit write of code to port 0xf4; halts forever if that returns. */
__attribute__((noreturn)) void guest_exit(uint32_t code);
/* "TEST <name>: PASS", exit 0. */
__attribute__((noreturn)) void pass(void);
/* "TEST <name>: FAIL <reason>", exit 1. */
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);
/* "TEST <name>: FAIL <reason>", plus " (code N)" unless code is 1; exit
 * code. */
__attribute__((noreturn, format(printf, 2, 0))) void vfail_code(uint32_t code, const char *fmt, va_list ap);
/* Halts this CPU for good (interrupts off). */
__attribute__((noreturn)) void halt_forever(void);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
